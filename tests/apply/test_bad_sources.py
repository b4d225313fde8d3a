"""Bad source files through `elax-plan apply` against an emulator over a socket."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import run_cli, write_plan
from tests.conftest import RunningEmulator


def plan_for(
    tmp_path: Path,
    serve_emulator: Callable[..., RunningEmulator],
    source: str,
    extra: str = "",
) -> Path:
    """An emulator (store under tmp_path) and tmp_path/plan.yaml writing ``source`` to "docs"."""
    store = tmp_path / "store"
    emu = serve_emulator(EmulatorConfig(store.as_uri(), index_interval=0.02))
    return write_plan(
        tmp_path / "plan.yaml",
        url=emu.url,
        store=store.as_uri(),
        source=source,
        state=(tmp_path / "state").as_uri(),
        dims=2,
        extra=extra,
    )


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_a_truncated_gzip_source_is_a_located_source_error(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator], mode: str
) -> None:
    """A cut-off .ndjson.gz ends apply with exit 1 naming the file and the line it reached,
    under both row policies; never a traceback or an internal error."""
    lines = [
        orjson.dumps({"id": i, "vector": [i, 1.5], "pad": "x" * (i % 40)}) for i in range(5000)
    ]
    packed = gzip.compress(b"\n".join(lines) + b"\n")
    cut = tmp_path / "src" / "cut.ndjson.gz"
    cut.parent.mkdir()
    cut.write_bytes(packed[: len(packed) // 2])
    extra = "ingest:\n  on_invalid_row: skip\n  max_invalid_rows: 10\n" if mode == "skip" else ""
    plan = plan_for(tmp_path, serve_emulator, str(cut), extra)
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr.lower()
    assert f"Cannot read {cut.as_uri()} at line " in done.stderr, done.stderr
    assert "bytes into the decompressed data): its gzip stream ends before it is complete" in (
        done.stderr
    )
