"""`apply SAVED` carries out the saved plan's own steps, and refuses a stale, corrupt or edited one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from elax_plan.apply.run import apply_plan
from elax_plan.errors import SavedPlanError
from elax_plan.execution_plan import ExecutionPlan, checksum, load_document
from elax_plan.spec import load_plan
from tests.apply.conftest import Setup
from tests.apply.support import last_record, run_cli

CHECKS = (
    "verify:\n"
    "  smoke_queries:\n"
    "    - name: self\n"
    "      sample_vectors: 3\n"
    "    - name: text\n"
    "      bm25: {field: title, text: jacket}\n"
    "  recall:\n"
    "    num: 5\n"
    "    min_avg_recall: 0.1\n"
)


def save(plan: Path, tmp_path: Path) -> Path:
    saved = tmp_path / "p.elaxplan"
    done = run_cli("plan", str(plan), "--out", str(saved))
    assert done.returncode == 0, done.stderr
    return saved


def refused(saved: Path, tmp_path: Path) -> str:
    """Apply ``saved``; assert exit 1, no traceback, nothing written; the error message."""
    done = run_cli("apply", str(saved))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "store" / "namespaces" / "docs" / "wal").exists()
    return done.stderr


def test_a_saved_plan_round_trips_exactly(setup: Setup, tmp_path: Path) -> None:
    """from_json(to_json()) is the identity on a real plan with every kind of post-step."""
    _, plan, _ = setup(extra=CHECKS)
    doc = json.loads(save(plan, tmp_path).read_text())
    assert {p["kind"] for p in doc["post_steps"]} == {
        "wait_for_index",
        "verify_parts",
        "wal_replayable",
        "smoke_query",
        "recall",
    }
    assert ExecutionPlan.from_json(doc).to_json() == doc


def test_apply_runs_the_saved_steps_not_a_fresh_plans(setup: Setup, tmp_path: Path) -> None:
    """A saved plan without the BM25 check runs without it, although the plan file has it."""
    _, plan, _ = setup(extra=CHECKS)
    saved = load_document(save(plan, tmp_path).read_bytes(), "p.elaxplan")
    fewer = [p for p in saved.post_steps if p.key != "smoke:text"]
    edited = dataclasses.replace(saved, post_steps=fewer)
    outcome = apply_plan(load_plan(plan, env={}), saved=edited)
    assert outcome.exit_code == 0, outcome.message
    ran = [c["key"] for c in last_record(tmp_path / "state")["verification"]]
    assert ran == ["wait_for_index", "verify_parts", "wal_replayable", "smoke:self", "recall"]


def test_a_check_removed_from_the_plan_file_after_saving_makes_it_stale(
    setup: Setup, tmp_path: Path
) -> None:
    """Removing the recall gate after `plan --out`: the saved plan is refused, never re-planned."""
    _, plan, _ = setup(extra=CHECKS)
    saved = save(plan, tmp_path)
    text = plan.read_text()
    plan.write_text(text[: text.index("  recall:")])
    assert "Saved plan is stale: the plan file changed" in refused(saved, tmp_path)


def test_a_hand_edited_step_is_refused_by_its_checksum(setup: Setup, tmp_path: Path) -> None:
    """Lowering the recall SLO by hand in the saved file: refused, with what to do."""
    _, plan, _ = setup(extra=CHECKS)
    saved = save(plan, tmp_path)
    doc = json.loads(saved.read_text())
    [gate] = [p for p in doc["post_steps"] if p["kind"] == "recall"]
    gate["params"]["min_avg_recall"] = 0.0
    saved.write_text(json.dumps(doc, indent=2))
    message = refused(saved, tmp_path)
    assert "p.elaxplan was changed after `elax-plan plan --out` wrote it" in message
    assert "elax-plan plan PLAN.yaml --out FILE" in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda doc: doc["inputs"].pop("plan_digest"),
            "p.elaxplan: at /inputs: 'plan_digest' is a required property.",
        ),
        (
            lambda doc: doc["post_steps"][-1]["params"].pop("num"),
            "p.elaxplan: at /post_steps/5/params: 'num' is a required property.",
        ),
        (
            lambda doc: doc["files"][0].update(action="explode"),
            "p.elaxplan: at /files/0/action: 'explode' is not one of",
        ),
        (
            lambda doc: doc.update(format_version="0.9"),
            "p.elaxplan has format_version '0.9'; this elax-plan reads '1.2'.",
        ),
    ],
)
def test_a_corrupt_saved_plan_names_the_place(
    setup: Setup, tmp_path: Path, edit: object, expected: str
) -> None:
    """Missing keys, unknown values and other versions: a located error, exit 1, no traceback."""
    _, plan, _ = setup(extra=CHECKS)
    saved = save(plan, tmp_path)
    doc = json.loads(saved.read_text())
    edit(doc)  # type: ignore[operator]
    doc["checksum"] = checksum(doc)  # so that only the shape is wrong
    saved.write_text(json.dumps(doc, indent=2))
    assert expected in refused(saved, tmp_path)


def test_a_truncated_saved_plan_gives_line_and_column(tmp_path: Path) -> None:
    """A saved plan cut short is not JSON: file:line:col and the way to save it again."""
    saved = tmp_path / "p.elaxplan"
    saved.write_text('{\n  "format_version": "1.0",\n  "plan": {\n')
    with pytest.raises(SavedPlanError) as raised:
        load_document(saved.read_bytes(), "p.elaxplan")
    assert raised.value.message.startswith("p.elaxplan:4:1: not valid JSON")
    assert "elax-plan plan PLAN.yaml --out FILE" in raised.value.message
    done = run_cli("apply", str(saved))
    assert done.returncode == 1 and "p.elaxplan:4:1: not valid JSON" in done.stderr
