"""How an emulator instance is set up: layout, body cap, indexer, compat version, injected faults.

Two layouts. The original one (``store_url``) keeps every file under one fsspec
URL. The real one (``data_root``, optionally ``object_store``) keeps WAL,
``router.json`` and part manifests on a local directory and only part assets
on the object store, as CONTRACT §4.1 says.

"Real store" behaviour is switched on by any of ``data_root``, ``indexer="none"``
(the default), ``reread_router=True`` or ``recover_from_parts=True`` (part-based recovery
is a way of loading the real store; the original layout would silently ignore it): every
append re-reads ``router.json`` from disk
(so a ``compact`` beside it can set ``wal_highwater`` back, hazard H2), WAL
files are created with truncate and no rename, ``router.json`` goes through the
one shared ``router.json.tmp``, catch-up reads list the WAL directory, a load
failure is retried on the next request, and errors carry the real messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024  # axum's default body limit, which elacsym never raises

Compat: TypeAlias = Literal["72e6998", "ac782e1", "c152c2d"]
COMPAT_VERSIONS: tuple[Compat, ...] = ("72e6998", "ac782e1", "c152c2d")
IndexerMode: TypeAlias = Literal["none", "background"]
MetricsMode: TypeAlias = Literal["rich", "real"]
RaceModel: TypeAlias = Literal["overwrite", "real"]


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes one emulator; the CLI flags map onto these fields.

    - ``store_url`` (original layout) or ``data_root`` (+ ``object_store``): exactly one.
      ``data_root`` must be a local directory (a path or ``file://`` URL);
      ``object_store`` is any fsspec URL and defaults to the data root.
    - ``indexer``: ``"none"`` (default) is the real server: ``indexed_wal`` moves only
      when ``elax-plan emulator compact`` runs. ``"background"`` runs the design's indexer
      daemon (paced by ``index_rows_per_s`` and ``index_interval``), standing in for an
      operator's indexer fleet.
    - ``recover_from_parts``: rebuild a namespace from its parts plus the WAL after
      ``indexed_wal`` (the one opt-in exception; the real node replays the WAL alone).
    - ``metrics``: ``"real"`` (default): ``GET /metrics`` answers the real stub byte for
      byte; ``"rich"`` serves the emulator's series there too. The rich series are always
      at ``/_emulator/metrics``.
    - ``compat``: which elacsym tip to answer as (CONTRACT §0).
    - ``race_appends`` with ``race_model``: ``"real"`` (default) lets overlapping appends
      share a sequence and overwrite each other, tear WAL files, or answer 500 after
      writing, seeded by ``seed`` (CONTRACT §7 H1); ``"overwrite"`` produces only the
      first outcome (two 200s for one sequence), with thread timing deciding.
    - ``crash_during_append``: the N-th append writes half its WAL file and kills the
      process; only ``serve()`` (the ``elax-plan emulator`` process) accepts it.
    """

    store_url: str = ""
    storage_options: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    object_store: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    indexer: IndexerMode = "none"
    reread_router: bool = False
    recover_from_parts: bool = False
    index_rows_per_s: float | None = None
    index_interval: float = 0.2
    rows_per_part: int = 256
    max_active_parts: int = 4
    metrics: MetricsMode = "real"
    compat: Compat = "ac782e1"
    fail_rate: float = 0.0
    latency: float = 0.0
    race_appends: bool = False
    race_model: RaceModel = "real"
    regress_highwater_after: int | None = None
    crash_during_append: int | None = None
    seed: int | None = None
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        if bool(self.store_url) == (self.data_root is not None):
            raise ValueError("give exactly one of store_url and data_root")
        if self.object_store is not None and self.data_root is None:
            raise ValueError("object_store needs data_root (store_url holds everything)")
        if self.data_root is not None and not _is_local(self.data_root):
            raise ValueError(
                f"data_root {self.data_root!r} is not a local directory: the real node keeps "
                "WAL, router.json and part manifests on its local disk; put part assets on an "
                "object store with object_store=URL"
            )
        if self.indexer not in ("none", "background"):
            raise ValueError("indexer must be 'none' or 'background'")
        if self.metrics not in ("rich", "real"):
            raise ValueError("metrics must be 'rich' or 'real'")
        if self.compat not in COMPAT_VERSIONS:
            raise ValueError(f"compat must be one of {', '.join(COMPAT_VERSIONS)}")
        if self.race_model not in ("overwrite", "real"):
            raise ValueError("race_model must be 'overwrite' or 'real'")
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
        if self.crash_during_append is not None and self.crash_during_append < 1:
            raise ValueError("crash_during_append must be at least 1")
        if self.latency < 0:
            raise ValueError("latency must not be negative")

    @property
    def real_store(self) -> bool:
        """Whether namespaces behave as the real store does (see the module docstring)."""
        return (
            self.data_root is not None
            or self.reread_router
            or self.indexer == "none"
            or self.recover_from_parts
        )

    @property
    def layout_description(self) -> str:
        """Where the data lives, for the listening line."""
        if self.data_root is None:
            return f"store: {self.store_url}"
        assets = f", object store: {self.object_store}" if self.object_store else ""
        return f"data root: {self.data_root}{assets}"


def _is_local(url: str) -> bool:
    scheme, sep, _ = url.partition("://")
    return not sep or scheme == "file"
