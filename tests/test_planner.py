"""Golden planner cases: plan + live state + ledger → what a reviewer checks in the plan.

Each folder under ``tests/cases/planner/`` is one case: ``plan.yaml``,
``live.json`` (what the readers observed, ledger included) and
``expected.json``. The expected file is not the whole execution-plan document
but ``reviewed(doc)``: per file its url, action, symbol, reason, resume point
and estimate; the preconditions' verdicts on live values; the post-steps; the
totals, closing line, warnings and verification reason. Digests, inputs,
``observed_at`` and other incidental fields stay out, so a new plan field does
not rewrite every case; the whole document's shape is checked against the
schema instead. ``ELAX_UPDATE_GOLDEN=1 pytest tests/test_planner.py`` writes
the expected files (a missing one included) and prints which; review the diff.
Without it a missing or different expected file fails the test.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from elax_plan.execution_plan import PlanInputs, stale_reasons
from elax_plan.live.model import (
    NamespaceLive,
    PartInfo,
    SourceFile,
    SourceListing,
    SourceSample,
    TargetLive,
    WalObject,
)
from elax_plan.live.state_view import FileProgress, LedgerView, LiveState
from elax_plan.planner import build_plan
from elax_plan.planner.files import total_requests
from elax_plan.report.plan_render import render_markdown, render_text, shown_path
from elax_plan.spec import load_plan
from elax_plan.state import NamespaceRecord

CASES = Path(__file__).parent / "cases" / "planner"
REPO = Path(__file__).parents[1]
CASE_NAMES = sorted(p.name for p in CASES.iterdir() if p.is_dir())
SCHEMA = json.loads(
    resources.files("elax_plan").joinpath("schemas/execution-plan.schema.json").read_text()
)
UPDATE_GOLDEN = os.environ.get("ELAX_UPDATE_GOLDEN") == "1"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def live_state(raw: dict[str, Any]) -> LiveState:
    ns = raw["namespace"]
    ledger = raw.get("ledger")
    record = raw.get("namespace_record")
    return LiveState(
        observed_at=raw["observed_at"],
        target=TargetLive(**raw["target"]),
        namespace=NamespaceLive(
            name=ns["name"],
            exists=ns["exists"],
            epoch=ns.get("epoch", 0),
            wal_highwater=ns.get("wal_highwater", 0),
            indexed_wal=ns.get("indexed_wal", 0),
            updated_at=ns.get("updated_at", 0),
            parts=tuple(PartInfo(**p) for p in ns.get("parts", ())),
            wal_objects=tuple(WalObject(**w) for w in ns.get("wal_objects", ())),
        ),
        source=SourceListing(
            files=tuple(SourceFile(**f) for f in raw["source"]["files"]),
            sample=SourceSample(**raw["source"]["sample"]),
        ),
        ledger=None
        if ledger is None
        else LedgerView(
            lineage=ledger["lineage"],
            serial=ledger["serial"],
            files={u: FileProgress(**p) for u, p in ledger["files"].items()},
            target=ledger.get("target", {}),
            verification=ledger.get("verification", "none"),
            verified_checks=ledger.get("verified_checks"),
            last_run_id=ledger.get("last_run_id"),
            summary_location=ledger.get("summary_location"),
            run_in_progress=ledger.get("run_in_progress", False),
        ),
        namespace_record=None
        if record is None
        else NamespaceRecord(namespace=ns["name"], plans=(), updated=0.0, **record),
    )


def compute(case: Path) -> dict[str, Any]:
    spec = load_plan(case / "plan.yaml", env={})
    doc = build_plan(spec, live_state(json.loads((case / "live.json").read_text()))).to_json()
    doc["plan"]["file"] = "plan.yaml"  # the absolute path depends on the checkout
    return doc


def reviewed(doc: dict[str, Any]) -> dict[str, Any]:
    """The parts of an execution-plan document a reviewer checks: what is done, why, and how
    much; not digests, inputs, ``observed_at`` or header facts copied from the plan file."""
    return {
        "files": [_reviewed_file(f) for f in doc["files"]],
        "preconditions": [
            {
                "key": c["id"].removeprefix("pre:"),
                "ok": c["ok"],
                "live": c["live"],
                "required": c["required"],
            }
            for c in doc["preconditions"]
        ],
        "post_steps": [_reviewed_post_step(s) for s in doc["post_steps"]],
        "verification_reason": doc["verification_reason"],
        "totals": doc["totals"],
        "summary_line": doc["summary_line"],
        "warnings": doc["warnings"],
    }


def _reviewed_file(f: dict[str, Any]) -> dict[str, Any]:
    out = {k: f[k] for k in ("url", "action", "symbol", "reason")}
    if f["resume_from"] is not None:
        out["resume_from"] = f["resume_from"]
    if f["action"] in ("create", "update", "resume"):  # skip and gone estimate nothing
        out["est_rows"] = f["est_rows"]
        out["est_requests"] = f["est_requests"]
    return out


def _reviewed_post_step(s: dict[str, Any]) -> dict[str, Any]:
    out = {
        "kind": s["kind"],
        "key": s["id"].removeprefix("post:"),
        "title": s["title"],
        "detail": s["detail"],
        "destructive": s["destructive"],
    }
    if s["warning"]:
        out["warning"] = s["warning"]
    return out


def _golden_text(projection: dict[str, Any]) -> str:
    return json.dumps(projection, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("case", CASE_NAMES)
def test_golden_case(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The reviewed parts of each case's plan equal the committed expectation."""
    actual = reviewed(compute(CASES / case))
    expected_file = CASES / case / "expected.json"
    if UPDATE_GOLDEN:
        text = _golden_text(actual)
        before = expected_file.read_text() if expected_file.exists() else None
        if before != text:
            expected_file.write_text(text)
            with capsys.disabled():
                verb = "created" if before is None else "rewrote"
                print(f"\nELAX_UPDATE_GOLDEN=1: {verb} {expected_file}; review the diff")
    if not expected_file.exists():
        pytest.fail(
            f"{expected_file} is missing; write it with "
            "ELAX_UPDATE_GOLDEN=1 pytest tests/test_planner.py and review it"
        )
    expected = json.loads(expected_file.read_text())
    if actual != expected:
        diff = difflib.unified_diff(
            _golden_text(expected).splitlines(),
            _golden_text(actual).splitlines(),
            f"{case}/expected.json",
            "the planner now",
            lineterm="",
        )
        pytest.fail(
            "\n".join(diff) + "\nIf the change is deliberate, rewrite the expected file with "
            "ELAX_UPDATE_GOLDEN=1 pytest tests/test_planner.py and review the diff.",
            pytrace=False,
        )


@pytest.mark.parametrize("case", CASE_NAMES)
def test_golden_case_document_fits_the_schema(case: str) -> None:
    """Each case's whole execution-plan document validates against the packaged schema."""
    jsonschema.Draft202012Validator(SCHEMA).validate(compute(CASES / case))


@pytest.mark.parametrize("case", CASE_NAMES)
def test_golden_case_text_shows_every_step(case: str) -> None:
    """The terminal text lists each file, verdict and post-step; colour only adds ANSI codes."""
    doc = compute(CASES / case)
    plain = render_text(doc)
    coloured = render_text(doc, colour=True)
    assert ANSI.search(coloured) is not None
    assert ANSI.sub("", coloured) == plain
    assert "more unchanged files" not in plain  # a few files: every one is listed
    lines = plain.splitlines()
    for f in doc["files"]:
        shown = shown_path(f["url"], doc["plan"].get("base"))
        assert f"  {f['symbol']} {shown}" in lines, f["url"]
    for c in doc["preconditions"]:
        mark = "✓" if c["ok"] else "✗"
        assert any(line.startswith(f"  {mark} {c['title']}: {c['live']}") for line in lines)
    for s in doc["post_steps"]:
        assert f"{s['title']}: {s['detail']}" in plain
    for w in doc["warnings"]:
        assert f"! {w}" in lines
    assert lines[-1] == doc["summary_line"]


# A count of one before a plural noun ("~1 requests", "1 parts", "≥ 1 hits", "1 file(s)").
ONE_WITH_PLURAL = re.compile(
    r"(?<![\d.,])1 (?:[a-z]+ ){0,2}"
    r"(?:rows|requests|parts|hits|files|vectors|checks|steps|objects|queries)\b"
    r"|(?<![\d.,])1 [a-z ]*\(s\)"
)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_golden_case_counts_of_one_are_singular(case: str) -> None:
    """Text and markdown say "1 row", "~1 request", "1 part", "≥ 1 hit": never a plural after 1."""
    doc = compute(CASES / case)
    for rendering in (render_text(doc), render_markdown(doc)):
        assert ONE_WITH_PLURAL.findall(rendering) == [], rendering


@pytest.mark.parametrize("case", CASE_NAMES)
def test_golden_case_markdown_lists_every_file(case: str) -> None:
    """The pull-request comment shows the closing line, one row per file and every verdict."""
    doc = compute(CASES / case)
    markdown = render_markdown(doc)
    assert f"**{doc['summary_line']}**" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| `")]
    base = doc["plan"].get("base")
    assert [row.split(" | ")[1] for row in rows] == [
        f"`{shown_path(f['url'], base)}`" for f in doc["files"]
    ]
    assert "more files" not in markdown and "(truncated" not in markdown
    verdicts = [line[2] for line in markdown.splitlines() if line.startswith(("| ✅", "| ❌"))]
    assert verdicts == ["✅" if c["ok"] else "❌" for c in doc["preconditions"]]


def test_golden_cases_cover_the_issue() -> None:
    """The cases the issue names are all present."""
    names = {p.name for p in CASES.iterdir()}
    assert {
        "fresh-namespace",
        "half-done-run",
        "changed-file",
        "removed-file",
        "new-file-after-finished-run",
        "metric-mismatch",
        "lagging-indexer",
        "store-budget-too-small",
        "everything-done",
    } <= names


def test_symbols_per_case() -> None:
    """Each case shows the file actions it is about."""

    def symbols(case: str) -> list[str]:
        return [f["symbol"] for f in compute(CASES / case)["files"]]

    assert symbols("fresh-namespace") == ["+", "+", "+"]
    assert symbols("half-done-run") == ["=", ">", "+"]
    assert symbols("changed-file") == ["=", "~", "="]
    assert symbols("removed-file") == ["=", "=", "-"]
    assert symbols("new-file-after-finished-run") == ["=", "=", "=", "+"]
    assert symbols("everything-done") == ["=", "=", "="]


def test_half_done_file_resumes_at_its_offset_with_remaining_estimate() -> None:
    """A partial file resumes at the ledger's offset and only the rest is estimated."""
    doc = compute(CASES / "half-done-run")
    partial = doc["files"][1]
    assert partial["resume_from"] == {"offset": 4_200_000, "line": 500, "row": 0}
    full = doc["files"][2]
    assert partial["est_rows"] == full["est_rows"] // 2
    assert doc["totals"]["resumed"] == 1
    indexer = next(c for c in doc["preconditions"] if c["id"] == "pre:indexer_caught_up")
    assert indexer["ok"]  # resuming: the throttle, not the precondition, handles lag


def test_failed_preconditions_name_live_values() -> None:
    """Metric mismatch, lagging indexer, small budget and unreachable target fail with values."""
    cases = {
        "metric-mismatch": ("pre:metric", "euclidean_squared"),
        "lagging-indexer": ("pre:indexer_caught_up", "20 (wal_highwater 60, indexed_wal 40)"),
        "store-budget-too-small": ("pre:store_budget", "MiB"),
        "unreachable-target": ("pre:target_reachable", "unreachable"),
    }
    for case, (check_id, live_value) in cases.items():
        doc = compute(CASES / case)
        failed = [c for c in doc["preconditions"] if not c["ok"]]
        assert [c["id"] for c in failed] == [check_id], case
        assert live_value in failed[0]["live"], case


def test_changed_checks_verify_again_without_writing() -> None:
    """A verdict given by other smoke queries or another recall gate: verification only."""
    doc = compute(CASES / "verify-checks-changed")
    assert [f["action"] for f in doc["files"]] == ["skip", "skip", "skip"]
    assert doc["totals"]["changes"] is True and doc["totals"]["files_to_write"] == 0
    assert doc["verification_reason"] == (
        "the smoke queries, the recall gate or the comparison changed since the last verification"
    )
    assert [p["id"] for p in doc["post_steps"] if p["check"]][:1] == ["post:wait_for_index"]
    # The same checks as the verdict's: nothing to do.
    raw = json.loads((CASES / "verify-checks-changed" / "live.json").read_text())
    spec = load_plan(CASES / "verify-checks-changed" / "plan.yaml", env={})
    raw["ledger"]["verified_checks"] = spec.verify.checks_digest()
    same = build_plan(spec, live_state(raw)).to_json()
    assert same["totals"]["changes"] is False and same["verification_reason"] == ""


def test_no_changes_when_everything_is_done() -> None:
    """Every file unchanged and verification passed: no changes, no post-steps."""
    doc = compute(CASES / "everything-done")
    assert doc["totals"]["changes"] is False
    assert doc["post_steps"] == []
    assert doc["summary_line"].startswith("No changes.")


def test_summary_line_shape() -> None:
    """The closing line reads like the SPEC's example."""
    doc = compute(CASES / "half-done-run")
    assert doc["summary_line"] == (
        "Plan: 2 files to write (1 resumed), ~1,500 rows, 11.87 MiB in ~12 requests; "
        "1 skipped; 6 checks; 0 destructive steps."
    )


def test_wal_trim_counts_only_eligible_objects() -> None:
    """Trim counts indexed objects older than older_than, keeping the newest keep_last."""
    doc = compute(CASES / "wal-trim-after-finished-run")
    (trim,) = [s for s in doc["post_steps"] if s["kind"] == "wal_trim"]
    # sequences 1-5 are old; 6 is new and unindexed; keep_last 2 keeps 5 and 6
    assert trim["params"]["objects"] == 4
    assert (trim["params"]["first_sequence"], trim["params"]["last_sequence"]) == (1, 4)
    assert "rebuild" in trim["warning"]


def test_no_trim_step_without_the_recovery_assertion() -> None:
    """A PlanSpec with wal_trim enabled but no node_recovers_from_parts (built around the
    validation, e.g. by library code) plans no trim: the node would lose those documents."""
    case = CASES / "wal-trim-after-finished-run"
    spec = load_plan(case / "plan.yaml", env={})
    unasserted = dataclasses.replace(
        spec, wal_trim=dataclasses.replace(spec.wal_trim, node_recovers_from_parts=False)
    )
    assert unasserted.wal_trim.enabled and not unasserted.wal_trim.allowed
    live = live_state(json.loads((case / "live.json").read_text()))
    doc = build_plan(unasserted, live).to_json()
    assert [s for s in doc["post_steps"] if s["kind"] == "wal_trim"] == []


_EVERY_CASE = """
import json, sys
from tests.test_planner import CASES, CASE_NAMES, compute
with open(sys.argv[1], "w") as out:
    json.dump([compute(CASES / name) for name in CASE_NAMES], out)
"""


def test_planner_is_deterministic_whatever_the_hash_seed(tmp_path: Path) -> None:
    """Every case plans byte for byte the same in two processes with different
    PYTHONHASHSEED values: no order leaks from set or hash iteration into a plan."""
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"seed-{seed}.json"
        subprocess.run(
            [sys.executable, "-c", _EVERY_CASE, str(out)],
            cwd=REPO,
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        outputs.append(out.read_text())
    assert len(outputs[0]) > 1000 and outputs[0] == outputs[1]


def test_stale_reasons_name_each_change() -> None:
    """Every input difference is named: plan, ledger, source files, namespace record."""
    base = PlanInputs("a" * 64, "b" * 64, "L", 3, {"f1": "x", "f2": "y"}, "cosine", 8)
    assert stale_reasons(base, base) == []
    changed = PlanInputs("c" * 64, "b" * 64, "L", 4, {"f1": "z", "f3": "w"}, "cosine", 16)
    reasons = stale_reasons(base, changed)
    assert reasons == [
        "the plan file changed",
        "the state ledger changed (serial 3 → 4)",
        "source file f1 changed (x → z)",
        "source file f2 is gone",
        "source file f3 is new",
        "the namespace record changed (metric/dims cosine/8 → cosine/16)",
    ]


def test_trim_is_shown_and_destructive_before_any_object_is_eligible() -> None:
    """A delete-mode trim on a run that writes is in the plan (and counted) even with no WAL yet."""
    doc = compute(CASES / "wal-trim-delete-on-first-run")
    (trim,) = [s for s in doc["post_steps"] if s["kind"] == "wal_trim"]
    assert trim["destructive"] and trim["params"]["objects"] == 0
    assert "none are now" in trim["detail"]
    assert doc["totals"]["destructive"] == 1
    assert doc["summary_line"].endswith("1 destructive step.")


def test_markdown_folds_ten_thousand_files_under_the_limit() -> None:
    """10,000 source files: markdown lists the first ones, folds the rest with counts, < 60,000."""
    raw = json.loads((CASES / "fresh-namespace" / "live.json").read_text())
    template = raw["source"]["files"][0]
    raw["source"]["files"] = [
        {**template, "url": f"file:///data/products/very/long/prefix/part-{i:05d}.ndjson"}
        for i in range(10_000)
    ]
    spec = load_plan(CASES / "fresh-namespace" / "plan.yaml", env={})
    doc = build_plan(spec, live_state(raw)).to_json()
    md = render_markdown(doc)
    assert len(md) < 60_000
    assert "… and 9,950 more files: 9,950 new (+)." in md
    assert "(truncated" not in md
    text = render_text(doc)
    assert "part-09999.ndjson" in text  # the terminal lists every file to be written


def test_total_requests_count_the_requests_small_files_share() -> None:
    """Last chunks of consecutive files share requests; a full chunk sends the shared one first."""
    assert total_requests([100] * 40, 1000) == 4  # per file it would be 40
    # 2 full, then 500+100+100 shared, then 2 full and the last 500: 6 (per file: 8).
    assert total_requests([2500, 100, 100, 2500], 1000) == 6
    assert total_requests([1000, 1000], 1000) == 2
    assert total_requests([], 1000) == 0
