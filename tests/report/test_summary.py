"""The run record and its markdown summary: golden rendering, schema, markdown validity, size.

``tests/cases/summary/record.json`` is a run record from a real apply (paths
and one BM25 text rewritten) with throttling, retries, rejected rows, a failed smoke query and a
missed recall SLO with tuning; it must render byte for byte to
``expected.md``. ``ELAX_UPDATE_GOLDEN=1 pytest tests/report/test_summary.py``
rewrites the expected file after a deliberate change; review the diff.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from elax_plan.report.run_record import SUMMARY_LIMIT, build_run_record, render_summary
from tests.apply.support import SUMMARY_SECTIONS
from tests.report.markdown_check import markdown_problems

CASE = Path(__file__).parents[1] / "cases" / "summary"
REPO = Path(__file__).parents[2]
SCHEMA = json.loads(
    resources.files("elax_plan").joinpath("schemas/run-record.schema.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def sections_in_order(text: str) -> bool:
    positions = [text.find(s) for s in SUMMARY_SECTIONS]
    return -1 not in positions and positions == sorted(positions)


# --- the golden record ---------------------------------------------------------------------------


def golden_record() -> dict[str, Any]:
    record: dict[str, Any] = json.loads((CASE / "record.json").read_text())
    return record


def test_golden_record_renders_byte_for_byte() -> None:
    """The committed run record renders exactly to the committed markdown."""
    rendered = render_summary(golden_record())
    expected = CASE / "expected.md"
    if os.environ.get("ELAX_UPDATE_GOLDEN") == "1":
        expected.write_text(rendered, encoding="utf-8")
    assert rendered == expected.read_text(encoding="utf-8")


def test_golden_record_matches_the_schema() -> None:
    """The packaged schema (read as the wheel carries it) is valid 2020-12, and the golden
    record conforms to it."""
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    VALIDATOR.validate(golden_record())


def test_wal_section_shows_unknown_sizes_and_older_records() -> None:
    """A WAL listing that failed shows – (and says so); a record from before 1.2, which has
    no wal, still renders (`elax-plan summary` of an old run)."""
    record = golden_record()
    record["wal"] = {
        "namespace": "docs",
        "start": None,
        "end": {"objects": 2, "bytes": 10},
        "growth": None,
    }
    VALIDATOR.validate(record)
    text = render_summary(record)
    assert "| at the start | – | – |" in text and "| growth | – | – |" in text
    assert "A WAL listing failed" in text
    del record["wal"]
    record["record_version"] = "1.1"
    text = render_summary(record)
    assert "## WAL\n\nWAL trim: not enabled.\n" in text


def test_schema_rejects_a_record_with_a_wrong_shape() -> None:
    """The schema is not a rubber stamp: unknown keys, bad outcomes and types are refused."""
    changes: list[Callable[[dict[str, Any]], object]] = [
        lambda r: r.update(extra=1),
        lambda r: r.update(outcome="fine"),
        lambda r: r["workload"].update(rows="1200"),
        lambda r: r["verification"][0].pop("evidence"),
        lambda r: r["charts"]["lag"].append([1.0]),
    ]
    for change in changes:
        record = golden_record()
        change(record)
        assert not VALIDATOR.is_valid(record)


def test_golden_markdown_is_valid_and_readable() -> None:
    """Every table row has the header's columns, fences pair up, both charts are well formed."""
    text = (CASE / "expected.md").read_text()
    assert markdown_problems(text) == []
    assert text.count("```mermaid\n%%{init: ") == 3 and text.count("\nxychart-beta\n") == 3
    assert sections_in_order(text)
    # The outcome comes first, and evidence JSON is shown as written, not HTML-escaped.
    assert text.startswith("# ❌ Data written, verification failed: `backfill`")
    assert "| Smoke query: men's jacket &lt;b> |" in text, "names are text, not HTML"
    assert "\"jacket -'<b>'\"" in text and "\\u00" not in text


def test_checker_catches_broken_markdown() -> None:
    """The checker used above flags a ragged table, an open fence and a bad chart."""
    good = (CASE / "expected.md").read_text()
    ragged = good.replace("| 1 | ", "| 1 | extra | ", 1)
    assert any("cells, the header has" in p for p in markdown_problems(ragged))
    assert "a code fence is never closed" in markdown_problems(good + "\n```json\n{}\n")
    short_line = re.sub(r"line \[([^\]]*), [^,\]]+\]", r"line [\1]", good, count=1)
    assert any("different numbers of values" in p for p in markdown_problems(short_line))
    bad_init = good.replace('%%{init: {"xyChart"', "%%{init: {xyChart", 1)
    assert any("not JSON" in p for p in markdown_problems(bad_init))
    exponent = re.sub(r"line \[\d+", "line [1.2e+06", good, count=1)
    assert any("malformed" in p for p in markdown_problems(exponent))


# --- records built from events ----------------------------------------------------------------

PLAN_DOC: dict[str, Any] = {
    "plan": {"name": "big", "description": None, "file": "/srv/plan.yaml", "digest": "0" * 64},
    "target": {
        "url": "http://elacsym:3000",
        "store": "s3://elacsym-data",
        "namespace": "products",
        "metric": "cosine",
        "vector_dims": 768,
    },
    "summary_line": "Plan: 10,000 files to write, 120,000,000 rows, 4.71 TiB in ~4,820,000 "
    "requests; 0 skipped; 8 checks; 0 destructive steps.",
    "totals": {"files_to_write": 10_000, "skipped": 0, "rows": 120_000_000},
}
START = 1_764_100_000.0


def big_run_record() -> dict[str, Any]:
    """A 10,000-file run: 3,000 pauses, hundreds of retries, 50,000 lag samples, failed checks."""
    events: list[dict[str, Any]] = []
    t = START
    rows = 0
    for i in range(50_000):
        fast = i < 500  # fast polls at first: many samples share a 0.1 s, at 1.5M rows/s
        t += 0.02 if fast else 1.0
        rows += 30_000 if fast else 2_400
        events.append({"ts": round(t, 3), "event": "lag", "lag": i % 9, "rows_acked": rows})
        if i % 16 == 0 and i < 48_000:
            events.append(
                {"ts": round(t, 3), "event": "throttle_pause", "lag": 7, "estimated_lag": 9}
            )
            events.append({"ts": round(t + 0.4, 3), "event": "throttle_resume", "lag": 2})
        if i % 97 == 0:
            cause = ("http_503", "http_429", "ReadTimeout", "ConnectError")[i % 4]
            events.append({"ts": round(t, 3), "event": "retry", "cause": cause})
    smoke_failures = [
        {
            "key": f"smoke:query {n}",
            "title": f"Smoke query: query {n}",
            "passed": False,
            "detail": f"{n} of 20 sampled rows did not find their own id in the top 10",
            "evidence": {
                "query": {"top_k": 10, "metric": "cosine", "min_wal_sequence": 4_820_000},
                "sampled": 20,
                "found": 20 - n,
                "misses": [
                    {"id": f"doc-{n}-{m}", "top": [f"doc-{k}" for k in range(5)]} for m in range(10)
                ],
                "top_k": 10,
            },
            "advice": "Rows may be missing from the namespace, or ANN settings miss them.",
        }
        for n in range(1, 6)
    ]
    tried = [
        {"ann_params": {"target_recall": tr, "rerank_mode": mode}, "avg_recall": 0.5 + tr / 3}
        for mode in ("erq", "fp32")
        for tr in (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
    ]
    recall = {
        "key": "recall",
        "title": "Recall SLO",
        "passed": False,
        "detail": "avg_recall 0.5100 is 0.4800 below the SLO 0.99 over 25 queries",
        "evidence": {
            "avg_recall": 0.51,
            "min_avg_recall": 0.99,
            "evaluated": 25,
            "queries": 25,
            "top_k": 10,
            "ann_params": {"target_recall": 0.05},
            "avg_ann_count": 10.0,
            "avg_exhaustive_count": 10.0,
            "tuning": {"tried": tried, "cheapest": None},
        },
        "advice": "Follow the recall-drift runbook.",
    }
    return build_run_record(
        run_id="20261125T190000Z-abcdef",
        plan_doc=PLAN_DOC,
        outcome="verification_failed",
        started=START,
        writes_finished=t,
        finished=t + 60,
        stats={
            "rows_acked": rows,
            "bytes_acked": rows * 3_300,
            "requests": 4_820_000,
            "files_done": 10_000,
            "max_acked_seq": 4_820_000,
        },
        events=events,
        checks=[*smoke_failures, recall],
        trim=None,
        rejects={
            "count": 1_234,
            "location": "s3://state/big/runs/20261125T190000Z-abcdef/rejects.ndjson",
        },
    )


def test_charts_cover_the_writes_in_even_buckets() -> None:
    """One time base (seconds since the writes started), even buckets over the writes only:
    mean rows/s, the highest estimated lag (a pause's peak is never dropped), % paused."""
    events = [
        {"ts": START - 0.5, "event": "plan_started"},
        {"ts": START + 0.0, "event": "run_started"},
        {"ts": START + 0.0, "event": "lag", "lag": 0, "estimated_lag": 0, "rows_acked": 0},
        {"ts": START + 0.1, "event": "lag", "lag": 1, "estimated_lag": 2, "rows_acked": 500},
        {"ts": START + 0.12, "event": "throttle_pause", "lag": 1, "estimated_lag": 4},
        {"ts": START + 0.17, "event": "throttle_resume", "lag": 0},
        {"ts": START + 0.2, "event": "lag", "lag": 0, "estimated_lag": 1, "rows_acked": 1_000},
        {"ts": START + 0.3, "event": "writes_finished", "rows": 2_000},
        {"ts": START + 1.3, "event": "lag", "lag": 0, "rows_acked": 2_000},
        {"ts": START + 2.3, "event": "lag", "lag": 0, "rows_acked": 2_000},
    ]
    record = build_run_record(
        run_id="20261125T190000.000Z-abcdef",
        plan_doc={**PLAN_DOC, "settings": {"max_wal_lag": 4, "resume_wal_lag": 1}},
        outcome="succeeded",
        started=START,
        writes_finished=START + 0.3,
        finished=START + 2.5,
        stats={"rows_acked": 2_000, "bytes_acked": 20_000, "requests": 2, "max_acked_seq": 2},
        events=events,
        checks=[],
        trim=None,
        rejects={"count": 0, "location": "file:///state/p/runs/r/rejects.ndjson"},
    )
    VALIDATOR.validate(record)
    charts = record["charts"]
    assert charts["buckets"] == 6 and charts["bucket_s"] == 0.05
    assert charts["throughput"] == [5_000, 5_000, 5_000, 5_000, 10_000, 10_000]
    assert charts["lag"] == [0, 0, 4, 0, 1, 1]  # the pause at 0.12 s peaks its bucket
    assert charts["paused_pct"] == [0, 0, 60, 40, 0, 0]
    throttle = record["throttle"]
    assert throttle["write_s"] == 0.3 and throttle["paused_share"] == round(0.05 / 0.3, 4)
    assert throttle["actions"][0]["start_s"] == 0.12
    assert [p["phase"] for p in record["phases"]] == ["plan", "write", "delivery proof"]
    text = render_summary(record)
    assert "Writes were paused 1 time: 0.05 s of 0.30 s of writing (17 %)" in text
    assert "| 1 | t+0.12 s → t+0.17 s (0.05 s) | 4 | 0 |" in text
    assert markdown_problems(text) == []


def test_a_run_too_short_for_charts_says_so_in_a_sentence() -> None:
    events = [
        {"ts": START, "event": "run_started"},
        {"ts": START + 0.1, "event": "writes_finished", "rows": 10},
    ]
    record = build_run_record(
        run_id="20261125T190000.000Z-abcdef",
        plan_doc=PLAN_DOC,
        outcome="succeeded",
        started=START,
        writes_finished=START + 0.1,
        finished=START + 0.2,
        stats={"rows_acked": 10, "bytes_acked": 100, "requests": 1, "max_acked_seq": 1},
        events=events,
        checks=[],
        trim=None,
        rejects={"count": 0, "location": "file:///state/p/runs/r/rejects.ndjson"},
    )
    VALIDATOR.validate(record)
    assert record["charts"]["buckets"] == 2
    text = render_summary(record)
    assert "The writes took 0.10 s: too short for charts." in text
    assert "```mermaid" not in text


def test_ten_thousand_file_run_stays_under_60000_characters_and_valid() -> None:
    """A 10,000-file run's summary fits a PR comment without cutting: long tables fold."""
    record = big_run_record()
    VALIDATOR.validate(record)
    assert len(record["throttle"]["actions"]) == 3_000, "the record keeps every pause"
    text = render_summary(record)
    assert len(text) < SUMMARY_LIMIT
    assert "cut from" not in text
    assert markdown_problems(text) == []
    assert sections_in_order(text)
    assert "| … | 2,800 more, listed in summary.json | | |" in text
    assert "| 200 | " in text and "| 201 | " not in text, "the first 200 pauses are shown"
    # Large numbers in plain digits, which mermaid's number syntax requires.
    assert re.search(r"line \[\d{5}", text) and "e+" not in text


def test_an_oversized_summary_is_cut_into_valid_markdown() -> None:
    """The last-resort cut ends at a line, closes an open fence and keeps under the limit."""
    record = golden_record()
    check = next(c for c in record["verification"] if not c["passed"])
    check["evidence"]["top"] = [{"id": f"id-{i}", "score": 0.5} for i in range(3_000)]
    text = render_summary(record)
    assert len(text) < SUMMARY_LIMIT
    assert "characters to stay under 60,000" in text
    assert markdown_problems(text) == []


@pytest.mark.parametrize(
    "outcome, error, keep",
    [
        ("failed", "POST /v2/namespaces/docs failed 8 times; the last answer was HTTP 503.", 0),
        ("interrupted", None, 0),
        ("verification_failed", None, 1),
    ],
)
def test_every_section_renders_whatever_the_outcome(
    outcome: str, error: str | None, keep: int
) -> None:
    """A failed, interrupted or unverified run still renders every section, validly."""
    record = copy.deepcopy(golden_record())
    record.update(outcome=outcome, error=error, recall=None)
    record["verification"] = [
        {
            "key": "wait_for_index",
            "title": "Wait for the index",
            "passed": False,
            "detail": "indexed_wal is 0 after 1s, below the last acknowledged wal_sequence 33",
            "evidence": {"indexed_wal_start": 0, "indexed_wal": 0, "target": 33},
            "advice": "indexed_wal never moved: the likely cause is that no indexer is running",
        }
    ][:keep]
    record["charts"] = {
        "bucket_s": 0.0,
        "buckets": 0,
        "lag": [],
        "throughput": [],
        "paused_pct": [],
        "max_wal_lag": 4,
        "resume_wal_lag": 1,
    }
    VALIDATOR.validate(record)
    text = render_summary(record)
    assert markdown_problems(text) == []
    assert sections_in_order(text)
    if error:
        assert f"**Error:** {error}" in text
    if keep:
        assert "indexed_wal never moved" in text
    else:
        assert "Verification did not run." in text
    assert "too short for charts" in text


def test_a_pending_check_renders_paused_with_how_to_finish() -> None:
    """A check without a verdict (incomplete: an interrupted index wait) shows ⏸️ pending and
    how to finish it, never ❌ failed; the record with it still fits the schema."""
    record = copy.deepcopy(golden_record())
    record.update(outcome="interrupted", recall=None)
    record["verification"] = [
        {
            "key": "wait_for_index",
            "title": "Wait for the index",
            "passed": False,
            "incomplete": True,
            "detail": "interrupted while indexed_wal was 3, below the last acknowledged "
            "wal_sequence 33",
            "evidence": {"indexed_wal": 3, "target": 33},
            "advice": "Run `elax-plan apply` again to finish the verification.",
        }
    ]
    VALIDATOR.validate(record)
    text = render_summary(record)
    assert markdown_problems(text) == []
    verification = text[text.index("## Verification") : text.index("## Recall")]
    assert "❌" not in verification and "failed" not in verification, verification
    assert "| ⏸️ | Wait for the index | pending: interrupted while indexed_wal was 3" in text
    assert "run `elax-plan apply` again to finish" in verification, verification
