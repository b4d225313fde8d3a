"""How an emulator instance is set up: store, body cap, indexer pace, injected faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024  # axum's default body limit, which elacsym never raises


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes one emulator; the CLI flags map one to one onto these fields."""

    store_url: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    index_rows_per_s: float | None = None
    index_interval: float = 0.2
    stall_indexer: bool = False
    rows_per_part: int = 256
    max_active_parts: int = 4
    fail_rate: float = 0.0
    latency: float = 0.0
    race_appends: bool = False
    regress_highwater_after: int | None = None
    seed: int | None = None
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if self.index_rows_per_s is not None and self.index_rows_per_s <= 0:
            raise ValueError("index_rows_per_s must be positive")
        if self.index_interval <= 0:
            raise ValueError("index_interval must be positive")
        if self.rows_per_part < 1 or self.max_active_parts < 1:
            raise ValueError("rows_per_part and max_active_parts must be at least 1")
        if self.regress_highwater_after is not None and self.regress_highwater_after < 1:
            raise ValueError("regress_highwater_after must be at least 1")
        if self.latency < 0:
            raise ValueError("latency must not be negative")
