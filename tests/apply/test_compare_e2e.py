"""The comparison with a baseline end to end (runbook step 5, ``verify.compare``): `elax-plan
apply` against emulators over sockets, a query workload file and a baseline.

Two emulators, the target queried with low-recall ANN settings and the baseline exactly,
give overlap below 1.0 for ANN queries and exactly 1.0 for exact ones, and the SLO fails and
passes accordingly; a title attribute renamed on the target is named as "hits on baseline
only" (exit 3); a numpy exact-results file matches the emulator's exact search (overlap 1.0);
a baseline that cannot be reached leaves the comparison pending, and the next apply runs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import orjson
import pytest

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import Dataset, check, last_record, make_dataset, run_cli, write_plan
from tests.conftest import RunningEmulator
from tests.report.markdown_check import markdown_problems

RECORD_SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "run-record.schema.json").read_text()
)
DIMS = 8
ROWS = 200  # per file, two files


@dataclass
class Env:
    target: RunningEmulator
    plan: Path
    data: Dataset
    tmp: Path

    def apply(self) -> Any:
        return run_cli("apply", str(self.plan), "--auto-approve")

    def record(self) -> dict[str, Any]:
        record = last_record(self.tmp / "state")
        jsonschema.validate(record, RECORD_SCHEMA)
        return record

    def summary(self) -> str:
        return (self.tmp / "summary.md").read_text()


@pytest.fixture
def env(tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]) -> Callable[..., Env]:
    """Factory: a target emulator (fast background indexer), a dataset, and a plan whose
    ``verify`` section is ``verify`` and whose ``source`` gets ``source_extra``."""

    def make(verify: str, source_extra: str = "") -> Env:
        store = tmp_path / "store"
        target = serve_emulator(
            EmulatorConfig(store.as_uri(), indexer="background", index_interval=0.02)
        )
        data = make_dataset(tmp_path / "src", files=2, rows=ROWS, dims=DIMS, seed=11)
        plan = write_plan(
            tmp_path / "plan.yaml",
            url=target.url,
            store=store.as_uri(),
            source=f"{tmp_path / 'src'}/*.ndjson\n{source_extra}",
            state=(tmp_path / "state").as_uri(),
            dims=DIMS,
            extra=f"summary:\n  path: {tmp_path / 'summary.md'}\n"
            "throttle:\n  poll_interval: 20ms\n"
            "ingest:\n  retry: {attempts: 2, initial: 10ms, max: 20ms}\n" + verify,
        )
        return Env(target, plan, data, tmp_path)

    return make


def load_baseline(emu: RunningEmulator, data: Dataset, *, namespace: str = "docs") -> None:
    """The dataset written straight into a baseline emulator (as the system being replaced)."""
    upserts = [
        {"id": i, "vector": vec, "attributes": attrs} for i, (vec, attrs) in data.docs.items()
    ]
    assert emu.write(namespace, {"upserts": upserts}).status_code == 200


def query_vectors(n: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [[round(float(v), 5) for v in rng.standard_normal(DIMS)] for _ in range(n)]


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def test_low_recall_ann_against_an_exact_baseline(
    env: Callable[..., Env], serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """ANN queries probing one IVF list overlap < 1.0 with an exact baseline, exact queries
    exactly 1.0; an ANN SLO of 0.99 fails (exit 3, worst queries listed), and a plan whose SLOs
    the figures meet passes (the changed SLO verifies again without writing)."""
    baseline = serve_emulator(EmulatorConfig((tmp_path / "base").as_uri()))
    vectors = query_vectors(24, seed=3)
    ann = {"nprobe": 1, "rerank_scale": 1}
    workload = write_lines(
        tmp_path / "queries.ndjson",
        [{"name": f"ann-{i}", "vector": v, "ann_params": ann} for i, v in enumerate(vectors[:12])]
        + [
            {"name": f"exact-{i}", "vector": v, "ann_params": {"use_ivf": False}}
            for i, v in enumerate(vectors[12:])
        ],
    )
    verify = f"""verify:
  workload: {workload}
  recall: {{num: 5, min_avg_recall: 0.01, queries: workload, ann_params: {{target_recall: 1.0}}}}
  compare:
    baseline: {{url: {baseline.url}, namespace: docs, ann_params: {{use_ivf: false}}}}
    min_overlap_at_k: 0.5
    min_overlap_by_kind: {{vector_ann: 0.99, vector_exact: 1.0}}
    concurrency: 3
"""
    e = env(verify)
    load_baseline(baseline, e.data)
    done = e.apply()
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Compare with the baseline" in done.stdout
    assert "24 workload queries from" in done.stdout and "namespace docs" in done.stdout
    record = e.record()
    cmp = record["comparison"]
    kinds = {k["kind"]: k for k in cmp["figures"]["kinds"]}
    assert kinds["vector_ann"]["queries"] == kinds["vector_exact"]["queries"] == 12
    assert kinds["vector_ann"]["mean_overlap"] < 1.0
    assert kinds["vector_ann"]["passed"] is False
    assert kinds["vector_exact"]["mean_overlap"] == 1.0 and kinds["vector_exact"]["passed"]
    assert not cmp["passed"] and not cmp["incomplete"]
    assert any("vector_ann" in m for m in cmp["figures"]["misses"])
    worst = cmp["figures"]["worst"]
    assert worst and all(w["name"].startswith("ann-") and w["overlap"] < 1.0 for w in worst)
    assert all(w["target_top"] != w["baseline_top"] for w in worst)
    # recall.queries: workload: the recall gate measured the workload's vectors, not rows
    recall = check(record, "recall")["evidence"]
    assert recall["queries"] == recall["evaluated"] == 5
    summary = e.summary()
    assert markdown_problems(summary) == []
    assert "## Comparison" in summary and "xychart-beta" in summary
    assert f"| `{worst[0]['name']}` | vector_ann |" in summary
    # SLOs the figures meet: the comparison runs again (nothing is written) and passes.
    e.plan.write_text(
        e.plan.read_text().replace("vector_ann: 0.99, vector_exact: 1.0", "vector_exact: 1.0")
    )
    again = e.apply()
    assert again.returncode == 0, again.stdout + again.stderr
    record = e.record()
    assert record["workload"]["rows"] == 0 and record["comparison"]["passed"]


def test_bm25_on_a_renamed_title_has_hits_on_the_baseline_only(
    env: Callable[..., Env], serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """The baseline holds titles, the target the same documents with title renamed: BM25
    queries on title find nothing on the target, are named "hits on baseline only", exit 3."""
    baseline = serve_emulator(EmulatorConfig((tmp_path / "base").as_uri()))
    words = ["jacket", "boot", "wool"]
    workload = write_lines(
        tmp_path / "queries.ndjson",
        [{"name": f"title {w}", "bm25": {"field": "title", "text": w}} for w in words]
        + [{"name": "near", "vector": query_vectors(1, 5)[0], "ann_params": {"use_ivf": False}}],
    )
    verify = f"""verify:
  workload: {workload}
  compare:
    baseline: {{url: {baseline.url}, namespace: docs}}
    min_overlap_at_k: 0.1
"""
    e = env(verify, source_extra="  attributes:\n    rename: {title: headline}\n")
    load_baseline(baseline, e.data)
    done = e.apply()
    assert done.returncode == 3, done.stdout + done.stderr
    figures = e.record()["comparison"]["figures"]
    assert figures["hits_baseline_only"] == [f"title {w}" for w in words]
    bm25 = next(k for k in figures["kinds"] if k["kind"] == "bm25")
    assert bm25["zero_hits_target"] == 3 and bm25["zero_hits_baseline"] == 0
    assert any("hits on the baseline only" in m for m in figures["misses"])
    summary = e.summary()
    assert "**Hits on baseline only**" in summary
    assert "`title jacket`, `title boot`, `title wool`." in summary


def test_numpy_exact_results_match_the_emulators_exact_search(
    env: Callable[..., Env], tmp_path: Path
) -> None:
    """Expected results computed with numpy (cosine, float32) over the loaded vectors: exact
    queries (one filtered) overlap 1.0 with the emulator, matched by name and by line."""
    vectors = query_vectors(10, seed=9)
    lines: list[dict[str, Any]] = [
        {"name": f"q{i}", "vector": v, "ann_params": {"use_ivf": False}, "top_k": 5}
        for i, v in enumerate(vectors)
    ]
    lines.append({"vector": vectors[0], "ann_params": {"use_ivf": False}, "top_k": 5})
    workload = write_lines(tmp_path / "queries.ndjson", lines)
    e = env(f"""verify:
  workload: {workload}
  compare:
    baseline: {{results: {tmp_path / "expected.ndjson"}}}
    min_overlap_at_k: 1.0
""")
    ids = list(e.data.docs)
    matrix = np.asarray([e.data.docs[i][0] for i in ids], dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    expected = []
    for n, line in enumerate(lines, start=1):
        q = np.asarray(line["vector"], dtype=np.float32)
        distance = 1.0 - matrix @ (q / np.linalg.norm(q))
        top = np.argsort(distance, kind="stable")[:5]
        key = {"name": line["name"]} if "name" in line else {"line": n}
        scores = [round(float(distance[j]), 6) for j in top]
        expected.append({**key, "ids": [ids[j] for j in top], "scores": scores})
    write_lines(tmp_path / "expected.ndjson", expected)
    done = e.apply()
    assert done.returncode == 0, done.stdout + done.stderr
    cmp = e.record()["comparison"]
    assert cmp["passed"] and cmp["baseline"]["kind"] == "results"
    assert cmp["figures"]["compared"] == 11 and cmp["figures"]["mean_overlap"] == 1.0
    assert all(q["overlap"] == 1.0 and q["rbo"] == 1.0 for q in cmp["figures"]["per_query"])
    scores = cmp["figures"]["kinds"][0]["scores"]
    assert scores["target"]["count"] == scores["baseline"]["count"] == 55
    assert abs(scores["target"]["p50"] - scores["baseline"]["p50"]) < 1e-3


def test_an_unreachable_baseline_leaves_the_comparison_pending(
    env: Callable[..., Env], tmp_path: Path
) -> None:
    """A baseline nobody answers: the comparison "could not run" (pending, not passed), and
    the next apply runs it again."""
    from elax_plan.emulator.server import bind

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    workload = write_lines(tmp_path / "queries.ndjson", [{"vector": query_vectors(1, 1)[0]}])
    e = env(f"""verify:
  workload: {workload}
  compare:
    baseline: {{url: "http://127.0.0.1:{port}", namespace: docs}}
""")
    done = e.apply()
    assert done.returncode == 3, done.stdout + done.stderr
    cmp = e.record()["comparison"]
    assert cmp["incomplete"] and not cmp["passed"] and cmp["figures"] is None
    assert "did not answer" in cmp["detail"]
    assert "Could not run" in e.summary()
    again = e.apply()
    assert "the last run stopped before its verification finished" in again.stdout
    assert e.record()["comparison"]["incomplete"]
