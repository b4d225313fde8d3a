"""What the real node's versions allow: concurrency only where appends are serialised, BM25
only where rank_by exists, and a target.store that really is the node's data root."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import assert_exact, make_dataset, run_cli, write_plan
from tests.conftest import RunningEmulator

NO_INDEXER = "indexer:\n  mode: none\n"


def _plan(tmp_path: Path, emu: RunningEmulator, store: Path, extra: str, **kw: str) -> Path:
    return write_plan(
        tmp_path / "plan.yaml",
        url=emu.url,
        store=store.as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        extra=extra,
        **kw,
    )


def test_concurrency_4_is_refused_on_ac782e1_and_exact_on_c152c2d(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    data = make_dataset(tmp_path / "src", files=2, rows=400)
    extra = NO_INDEXER + "ingest:\n  chunk_bytes: 4KiB\n  concurrency: 4\n"
    root = tmp_path / "ac"
    emu = serve_emulator(EmulatorConfig(data_root=str(root), indexer="none"))
    plan = _plan(tmp_path, emu, root, extra)
    shown = run_cli("plan", str(plan))
    assert shown.returncode == 1
    assert "looks like elacsym ac782e1" in shown.stdout
    assert "the node serialises appends (ingest.concurrency 4)" in shown.stdout
    assert "hazard H1" in shown.stdout and "ingest.concurrency: 1" in shown.stdout
    refused = run_cli("apply", str(plan), "--auto-approve")
    assert refused.returncode == 1 and "nothing was written" in refused.stderr
    assert not (root / "namespaces").exists() or not list(root.glob("namespaces/*/wal/*"))

    root = tmp_path / "c1"
    emu = serve_emulator(EmulatorConfig(data_root=str(root), indexer="none", compat="c152c2d"))
    plan = _plan(tmp_path, emu, root, extra)
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "looks like elacsym c152c2d" in done.stdout
    assert_exact(root, "docs", data)


def test_bm25_smoke_queries_are_refused_on_72e6998(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    make_dataset(tmp_path / "src", rows=50)
    root = tmp_path / "root"
    emu = serve_emulator(EmulatorConfig(data_root=str(root), indexer="none", compat="72e6998"))
    plan = _plan(
        tmp_path,
        emu,
        root,
        NO_INDEXER + "verify:\n  smoke_queries:\n"
        "    - {name: jackets, bm25: {field: title, text: jacket}, min_hits: 1}\n",
    )
    shown = run_cli("plan", str(plan), "--format", "json")
    assert shown.returncode == 1
    doc = orjson.loads(shown.stdout)
    assert doc["target"]["server"]["family"] == "72e6998"
    [check] = [c for c in doc["preconditions"] if c["id"] == "pre:bm25_supported"]
    assert not check["ok"] and "'jackets' would be 422 there" in check["detail"]


def test_a_store_that_is_not_the_data_root_stops_after_the_first_write(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """target.store pointing elsewhere (an empty folder): the router there never shows the
    write, so apply stops after the first acknowledgement instead of never throttling."""
    make_dataset(tmp_path / "src", rows=300)
    node = tmp_path / "node"
    emu = serve_emulator(EmulatorConfig(data_root=str(node), indexer="none"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plan = _plan(tmp_path, emu, elsewhere, NO_INDEXER + "ingest:\n  chunk_bytes: 8KiB\n")
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 1
    assert "target.store is not this node's data root" in done.stderr
    assert "acknowledged a write as wal_sequence 1" in done.stderr
    assert "shows wal_highwater 0" in done.stderr and "(no router.json there)" in done.stderr
    assert len(list(node.glob("namespaces/docs/wal/WAL-*"))) <= 2  # stopped at once


def test_plan_warns_when_the_store_cannot_be_a_data_root(tmp_path: Path) -> None:
    make_dataset(tmp_path / "src", rows=10)
    plan = write_plan(
        tmp_path / "plan.yaml",
        url="http://127.0.0.1:9",
        store="memory://elacsym-node",
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
    )
    done = run_cli("plan", str(plan), "--format", "json")
    doc = orjson.loads(done.stdout)
    assert any(
        w.startswith("target.store is memory://…: elacsym keeps router.json and the WAL")
        for w in doc["warnings"]
    ), doc["warnings"]


def test_bm25_workload_queries_of_a_comparison_are_refused_on_72e6998(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """The comparison's workload sample counts too: its BM25 queries would be 422 there."""
    make_dataset(tmp_path / "src", rows=50)
    root = tmp_path / "root"
    emu = serve_emulator(EmulatorConfig(data_root=str(root), indexer="none", compat="72e6998"))
    workload = tmp_path / "queries.ndjson"
    workload.write_text(
        '{"name": "near", "vector": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}\n'
        '{"name": "jackets", "bm25": {"field": "title", "text": "jacket"}}\n'
    )
    expected = tmp_path / "expected.ndjson"
    expected.write_text('{"name": "near", "ids": ["1"]}\n{"name": "jackets", "ids": ["2"]}\n')
    plan = _plan(
        tmp_path,
        emu,
        root,
        NO_INDEXER + f"verify:\n  workload: {workload}\n"
        f"  compare:\n    baseline: {{results: {expected}}}\n",
    )
    shown = run_cli("plan", str(plan), "--format", "json")
    assert shown.returncode == 1, shown.stdout + shown.stderr
    doc = orjson.loads(shown.stdout)
    [check] = [c for c in doc["preconditions"] if c["id"] == "pre:bm25_supported"]
    assert not check["ok"] and "query 'jackets' would be 422 there" in check["detail"]
