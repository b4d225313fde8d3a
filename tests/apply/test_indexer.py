"""``indexer``: who advances indexed_wal when the server, like the real elacsym, has no daemon.

The emulator here runs with ``indexer="none"``: ``indexed_wal`` moves only when
``elax-plan emulator compact`` runs on its data root — as a real subprocess, started by
apply itself with ``indexer.mode: command`` — or, for ``target.url: embedded``, when
apply compacts in-process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import (
    assert_exact,
    check,
    last_record,
    make_dataset,
    run_cli,
    run_dirs,
    write_plan,
)
from tests.conftest import RunningEmulator

COMPACT = [sys.executable, "-m", "elax_plan", "emulator", "compact"]


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(orjson.dumps(i).decode() for i in items) + "]"


def _served(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> tuple[RunningEmulator, Path]:
    root = tmp_path / "node"
    emu = serve_emulator(EmulatorConfig(data_root=str(root), indexer="none"))
    return emu, root


def _plan(tmp_path: Path, emu: RunningEmulator, root: Path, indexer: str, extra: str = "") -> Path:
    return write_plan(
        tmp_path / "plan.yaml",
        url=emu.url,
        store=root.as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        extra=f"indexer:\n{indexer}{extra}",
    )


def _events(state: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for run in run_dirs(state):
        path = run / "events.ndjson"
        if path.exists():
            out += [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
    return out


def _router(root: Path, ns: str = "docs") -> dict[str, Any]:
    router: dict[str, Any] = orjson.loads((root / "namespaces" / ns / "router.json").read_bytes())
    return router


def test_command_mode_indexes_50000_rows_beside_a_server_without_an_indexer(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """50,000 rows against a server with no indexer daemon: apply runs `elax-plan emulator
    compact` itself whenever the lag reaches max_wal_lag and once after the last write; the
    run verifies, the summary lists every compaction, and the lag never passes max + 1."""
    emu, root = _served(tmp_path, serve_emulator)
    data = make_dataset(tmp_path / "src", files=5, rows=10_000)
    command = [*COMPACT, "--data-root", str(root), "{namespace}"]
    plan = _plan(
        tmp_path,
        emu,
        root,
        f"  mode: command\n  command: {_flow(command)}\n",
        "ingest:\n  chunk_bytes: 128KiB\n"
        "throttle:\n  max_wal_lag: 8\n  resume_wal_lag: 2\n  poll_interval: 50ms\n"
        "verify:\n  index_timeout: 30s\n  smoke_queries:\n"
        # Exact search: at 50,000 rows the emulator's IVF at default settings misses some
        # rows' own ids, and this test is about indexing, not recall.
        "    - {name: self, sample_vectors: 5, top_k: 5, ann_params: {use_ivf: false}}\n",
    )
    shown = run_cli("plan", str(plan))
    assert shown.returncode == 0, shown.stderr
    assert "  indexer:      command: elax-plan runs `" in shown.stdout
    assert "emulator compact --data-root" in shown.stdout and " docs` " in shown.stdout

    done = run_cli("apply", str(plan), "--auto-approve", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_exact(root, "docs", data)
    record = last_record(tmp_path / "state")
    compactions = record["indexer"]["compactions"]
    triggers = [c["trigger"] for c in compactions]
    assert triggers.count("lag") >= 2 and triggers[-1] == "after_writes", triggers
    assert all(c["exit_code"] == 0 for c in compactions)
    assert all(c["stdout"].startswith("compacted namespace 'docs' to ") for c in compactions)
    summary = (run_dirs(tmp_path / "state")[-1] / "summary.md").read_text()
    assert "## Indexer" in summary and "| after writes |" in summary
    lags = [e["lag"] for e in _events(tmp_path / "state") if e["event"] == "lag"]
    assert lags and max(lags) <= 8 + 1
    router = _router(root)
    assert router["indexed_wal"] == router["wal_highwater"]
    assert check(record, "wait_for_index")["passed"] and check(record, "verify_parts")["passed"]


def test_embedded_target_compacts_in_process_by_default(tmp_path: Path) -> None:
    """`target.url: embedded` without an indexer section: mode command, in-process."""
    make_dataset(tmp_path / "src", rows=300)
    store = tmp_path / "store"
    plan = write_plan(
        tmp_path / "plan.yaml",
        url="embedded",
        store=store.as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        extra="ingest:\n  chunk_bytes: 16KiB\nthrottle:\n  max_wal_lag: 4\n"
        "  resume_wal_lag: 1\n  poll_interval: 20ms\n",
    )
    shown = run_cli("plan", str(plan), "--format", "json")
    doc = orjson.loads(shown.stdout)
    assert doc["indexer"]["mode"] == "command" and doc["indexer"]["command"] is None
    assert "compacts in-process" in doc["indexer"]["detail"]
    done = run_cli("apply", str(plan), "--auto-approve", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    record = last_record(tmp_path / "state")
    triggers = [c["trigger"] for c in record["indexer"]["compactions"]]
    assert "lag" in triggers and triggers[-1] == "after_writes"
    router = _router(store)
    assert router["indexed_wal"] == router["wal_highwater"] > 0


def test_mode_none_neither_pauses_nor_waits_and_the_plan_says_so(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    emu, root = _served(tmp_path, serve_emulator)
    data = make_dataset(tmp_path / "src", rows=300)
    plan = _plan(
        tmp_path,
        emu,
        root,
        "  mode: none\n",
        "ingest:\n  chunk_bytes: 8KiB\nthrottle:\n  max_wal_lag: 2\n  resume_wal_lag: 1\n"
        "  stall_timeout: 1s\n  poll_interval: 20ms\n"
        "verify:\n  smoke_queries:\n    - {name: self, sample_vectors: 3, top_k: 5}\n",
    )
    doc = orjson.loads(run_cli("plan", str(plan), "--format", "json").stdout)
    kinds = [p["kind"] for p in doc["post_steps"]]
    assert "wait_for_index" not in kinds and "verify_parts" not in kinds
    assert "smoke_query" in kinds
    assert any("indexer.mode none" in w for w in doc["warnings"])
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_exact(root, "docs", data)
    record = last_record(tmp_path / "state")
    assert record["throttle"]["pauses"] == 0 and record["indexer"]["compactions"] == []
    assert _router(root)["indexed_wal"] == 0  # nobody indexed, and nothing waited for it


def test_external_mode_stalls_and_names_command_mode_as_the_fix(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    emu, root = _served(tmp_path, serve_emulator)
    make_dataset(tmp_path / "src", rows=300)
    plan = _plan(
        tmp_path,
        emu,
        root,
        "  mode: external\n",
        "ingest:\n  chunk_bytes: 8KiB\nthrottle:\n  max_wal_lag: 2\n  resume_wal_lag: 1\n"
        "  stall_timeout: 500ms\n  poll_interval: 20ms\n",
    )
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 1
    assert "indexed_wal did not move" in done.stderr
    assert "indexer.mode: command" in done.stderr


def test_a_failing_command_stops_resumably_with_its_stderr(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """Exit 3 and its stderr in the message; the next apply, with a working command,
    resumes from the checkpoint and ends with the source exactly."""
    emu, root = _served(tmp_path, serve_emulator)
    data = make_dataset(tmp_path / "src", rows=300)
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('disk full'); sys.exit(3)"]
    settings = (
        "ingest:\n  chunk_bytes: 8KiB\nthrottle:\n  max_wal_lag: 3\n  resume_wal_lag: 1\n"
        "  poll_interval: 20ms\n"
    )
    plan = _plan(tmp_path, emu, root, f"  mode: command\n  command: {_flow(failing)}\n", settings)
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 1
    assert "exited with 3" in done.stderr and "disk full" in done.stderr
    assert "resumes from its checkpoint" in done.stderr
    state = orjson.loads((tmp_path / "state" / "backfill" / "state.json").read_bytes())
    assert state["run"]["current_run_id"]  # the run stays open: the next apply resumes it
    record = last_record(tmp_path / "state")
    assert record["outcome"] == "failed"
    assert record["indexer"]["compactions"][-1]["exit_code"] == 3

    working = [*COMPACT, "--data-root", str(root), "{namespace}"]
    plan = _plan(tmp_path, emu, root, f"  mode: command\n  command: {_flow(working)}\n", settings)
    again = run_cli("apply", str(plan), "--auto-approve", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_exact(root, "docs", data)


def test_a_command_over_its_timeout_is_stopped(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    emu, root = _served(tmp_path, serve_emulator)
    make_dataset(tmp_path / "src", rows=300)
    slow = [sys.executable, "-c", "import time; time.sleep(60)"]
    plan = _plan(
        tmp_path,
        emu,
        root,
        f"  mode: command\n  command: {_flow(slow)}\n  timeout: 500ms\n",
        "ingest:\n  chunk_bytes: 8KiB\nthrottle:\n  max_wal_lag: 3\n  resume_wal_lag: 1\n"
        "  poll_interval: 20ms\n",
    )
    done = run_cli("apply", str(plan), "--auto-approve", timeout=60)
    assert done.returncode == 1
    assert "did not finish within 500ms (indexer.timeout)" in done.stderr


def test_validate_refuses_a_command_mode_without_command_and_a_stray_command(
    tmp_path: Path,
) -> None:
    make_dataset(tmp_path / "src", rows=10)
    plan = write_plan(
        tmp_path / "plan.yaml",
        url="http://127.0.0.1:9",
        store=(tmp_path / "node").as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        extra="indexer:\n  mode: command\n",
    )
    done = run_cli("validate", str(plan))
    assert done.returncode == 1
    assert "plan.yaml:" in done.stderr and "indexer.mode: command needs indexer.command" in (
        done.stderr
    )
    plan.write_text(
        plan.read_text().replace("  mode: command\n", "  mode: external\n  command: [x]\n")
    )
    done = run_cli("validate", str(plan))
    assert done.returncode == 1
    assert "indexer.command is only run with mode: command" in done.stderr


def test_a_command_that_cannot_start_is_named(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    emu, root = _served(tmp_path, serve_emulator)
    make_dataset(tmp_path / "src", rows=300)
    missing = str(tmp_path / "no-such-elax-cli")
    plan = _plan(
        tmp_path,
        emu,
        root,
        f"  mode: command\n  command: {_flow([missing, 'compact', '{namespace}'])}\n",
        "ingest:\n  chunk_bytes: 8KiB\nthrottle:\n  max_wal_lag: 3\n  resume_wal_lag: 1\n"
        "  poll_interval: 20ms\n",
    )
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 1
    assert f"`{missing} compact docs` could not be started: No such file or directory" in (
        done.stderr
    )
