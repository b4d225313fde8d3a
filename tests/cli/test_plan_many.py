"""`elax-plan plan` with several plans: one report, a failing plan among good ones, the
combined exit code, --out refused, a held lease shown, and one plan printed as always."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from elax_plan.cli._group import run
from elax_plan.cli._plan_many import markdown_report
from elax_plan.report.plan_report import REPORT_MARKER
from tests.apply.support import make_dataset, write_plan
from tests.report.test_plan_report import report_validator


def plans_dir(tmp_path: Path) -> Path:
    """plans/: `fresh` (changes), `done` (applied: no changes), `broken` (no target
    section) and `tight` (a store budget the data cannot fit: a precondition fails)."""
    plans = tmp_path / "plans"
    plans.mkdir()
    for name in ("fresh", "done", "tight"):
        make_dataset(tmp_path / "data" / name, files=2, rows=20)
        write_plan(
            plans / f"{name}.yaml",
            name=name,
            url="embedded",
            store=(tmp_path / "store").as_uri(),
            namespace=name,
            source=f"{tmp_path / 'data' / name}/*.ndjson",
            state=(tmp_path / "state").as_uri(),
            extra="preconditions:\n  store_budget: 1KiB\n" if name == "tight" else "",
        )
    (plans / "broken.yaml").write_text("version: 1\nname: broken\nsource:\n  uri: x.ndjson\n")
    assert run(["apply", str(plans / "done.yaml"), "--auto-approve"]) == 0
    return plans


def test_a_directory_of_plans_is_one_report_and_failures_do_not_stop_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four plans, two failing: every plan has its section, the failures their errors; the
    JSON report fits its schema; the exit code combines (1 with a failure, else 2 / 0)."""
    plans = plans_dir(tmp_path)
    capsys.readouterr()
    assert run(["--no-color", "plan", str(plans), "--detailed-exitcode"]) == 1
    out, err = capsys.readouterr()
    for name in ("broken", "done", "fresh", "tight"):
        assert f"══ {plans / name}.yaml ══" in out
    assert "Error: " in out.split(f"══ {plans / 'broken'}.yaml ══")[1]
    assert "a precondition failed: projected store growth fits the budget" in out
    closing = out.rstrip().splitlines()[-1]
    assert closing.startswith("4 plans: 1 with changes (2 files to write, ~"), closing
    assert closing.endswith("), 1 without; 2 failed."), closing
    assert f"2 of 4 plans failed: {plans / 'broken'}.yaml, {plans / 'tight'}.yaml" in err
    assert "Traceback" not in err

    assert run(["plan", str(plans), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    report_validator().validate(report)
    status = {Path(e["file"]).stem: e["status"] for e in report["plans"]}
    assert status == {
        "broken": "failed",
        "done": "no_changes",
        "fresh": "changes",
        "tight": "failed",
    }
    tight = next(e for e in report["plans"] if e["name"] == "tight")
    assert tight["execution_plan"]["totals"]["changes"]  # shown, though it failed

    good = [str(plans / "fresh.yaml"), str(plans / "done.yaml")]
    assert run(["plan", *good, "--detailed-exitcode"]) == 2
    assert run(["plan", *good]) == 0
    assert run(["plan", str(plans / "done.yaml"), f"{plans}/d*.yaml", "--detailed-exitcode"]) == 0


def test_markdown_report_has_the_marker_apply_commands_and_a_held_lease(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The comment opens with the report marker; each plan keeps its own marker and shows
    its apply command (with --var); a run holding a plan's lease is named with its holder."""
    from elax_plan.state import acquire, open_backend

    plans = plans_dir(tmp_path)
    lease = acquire(open_backend((tmp_path / "state").as_uri(), {}), "fresh", "apply")
    try:
        args = [str(plans / "fresh.yaml"), str(plans / "done.yaml")]
        md, report = markdown_report(args, ["unused=1"])
    finally:
        lease.release()
    assert md.startswith(REPORT_MARKER + "\n")
    assert "<!-- elax-plan:fresh -->" in md and "<!-- elax-plan:done -->" in md
    assert f"elax-plan apply {plans / 'fresh.yaml'} --var unused=1" in md
    assert "🔒 **plan lease held**: apply by user " in md
    fresh = next(e for e in report["plans"] if e["name"] == "fresh")
    assert (
        fresh["leases"][0]["lease"] == "plan" and lease.info.lock_id in fresh["leases"][0]["detail"]
    )
    capsys.readouterr()
    assert run(["plan", *args, "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith(REPORT_MARKER)


def test_out_is_refused_with_several_plans_and_one_plan_prints_as_always(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out with a directory is refused before planning; one plan file prints the single
    plan (its own marker first, the execution-plan JSON, not a report)."""
    plans = plans_dir(tmp_path)
    capsys.readouterr()
    saved = tmp_path / "saved.elaxplan"
    assert run(["plan", str(plans), "--out", str(saved)]) == 1
    assert "--out saves one plan" in capsys.readouterr().err
    assert not saved.exists()
    assert run(["plan", str(plans / "fresh.yaml"), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("<!-- elax-plan:fresh -->\n### elax-plan: `fresh`")
    assert run(["plan", str(plans / "fresh.yaml"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["format_version"] == "1.2"
    assert run(["plan"]) == 1
    assert "No plan given." in capsys.readouterr().err
