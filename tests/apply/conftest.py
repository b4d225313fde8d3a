"""The apply tests' common setup: an emulator over a socket, a dataset and a plan for it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import Dataset, make_dataset, write_plan
from tests.conftest import RunningEmulator

Setup = Callable[..., tuple[RunningEmulator, Path, Dataset]]


@pytest.fixture
def setup(tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]) -> Setup:
    """Factory: an emulator with the given config (store under tmp_path), a dataset in
    tmp_path/src and tmp_path/plan.yaml writing it into namespace "docs".

    The emulator runs a fast background indexer unless ``indexer="none"`` is given: these
    plans throttle on WAL lag and wait for the index, as they would beside an operator's
    indexer fleet (the real server has no indexer of its own)."""

    def make(
        extra: str = "",
        target_extra: str = "",
        dataset: Dataset | None = None,
        **config: object,
    ) -> tuple[RunningEmulator, Path, Dataset]:
        store = tmp_path / "store"
        options: dict[str, Any] = {"indexer": "background", "index_interval": 0.02, **config}
        emu = serve_emulator(EmulatorConfig(store.as_uri(), **options))
        data = dataset or make_dataset(tmp_path / "src")
        plan = write_plan(
            tmp_path / "plan.yaml",
            url=emu.url,
            store=store.as_uri(),
            source=f"{tmp_path / 'src'}/*.ndjson",
            state=(tmp_path / "state").as_uri(),
            extra=extra,
            target_extra=target_extra,
        )
        return emu, plan, data

    return make
