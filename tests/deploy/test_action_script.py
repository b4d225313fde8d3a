"""scripts/github_action.sh, the GitHub Action's run step, with a stand-in elax-plan that
records its command lines: what plan and apply run, what they comment, the outputs and the
exit code. When the CLI has the commands the action uses, every recorded command line is
also parsed by elax-plan's own click commands, so a renamed flag fails here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from elax_plan.cli import main

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "github_action.sh"

# The stand-in: logs argv (and a comment's body), answers as STUB_* in the environment say.
STUB = """#!{python}
import json, os, pathlib, sys
args = sys.argv[1:]
entry = {{"argv": args}}
codes = json.loads(os.environ.get("STUB_CODES", "{{}}"))
rc = 0
if args[:1] == ["plan"]:
    print("<!-- elax-plan:report -->\\nthe plan report")
    rc = int(os.environ.get("STUB_PLAN_RC", "2"))
elif args[:2] == ["--quiet", "plan"]:
    rc = codes.get("pending:" + pathlib.Path(args[2]).name, 2)
elif args[:1] == ["apply"]:
    out = pathlib.Path(args[args.index("--summary-out") + 1])
    out.write_text(f"# summary of {{pathlib.Path(args[1]).name}}\\n")
    rc = codes.get("apply:" + pathlib.Path(args[1]).name, 0)
elif args[:1] == ["comment"]:
    entry["body"] = pathlib.Path(args[args.index("--body-file") + 1]).read_text()
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
sys.exit(rc)
"""


def run_action(tmp_path: Path, **env: str) -> tuple[int, list[dict[str, Any]], dict[str, str]]:
    stub = tmp_path / "elax-plan"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(0o755)
    log, outputs = tmp_path / "calls.ndjson", tmp_path / "github-output"
    done = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=tmp_path / "repo",
        env={
            **os.environ,
            "ELAX_PLAN": str(stub),
            "ELAX_PYTHON": sys.executable,
            "ELAX_OUT_DIR": str(tmp_path / "out"),
            "STUB_LOG": str(log),
            "GITHUB_OUTPUT": str(outputs),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return done.returncode, calls, values


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    plans = tmp_path / "repo" / "plans"
    (plans / "team").mkdir(parents=True)
    for name in ("a.yaml", "b.yaml", "team/c.yaml"):
        (plans / name).write_text(f"version: 1\nname: {Path(name).stem}\n")
    (plans / "notes.yaml").write_text("not: a plan\n")
    return tmp_path


def test_plan_reports_the_changed_plans_and_comments(repo: Path) -> None:
    code, calls, out = run_action(
        repo,
        ELAX_COMMAND="plan",
        ELAX_PLANS="plans/ plans/**/*.yaml",
        ELAX_CHANGED_FROM="origin/main",
        ELAX_PR="7",
    )
    assert code == 0  # changes pending is not a failure
    assert [c["argv"] for c in calls] == [
        [
            "plan",
            "plans/",
            "plans/**/*.yaml",
            "--changed-from",
            "origin/main",
            "--format",
            "markdown",
            "--detailed-exitcode",
        ],
        ["comment", "--pr", "7", "--body-file", str(repo / "out" / "report.md")],
    ]
    assert calls[1]["body"].startswith("<!-- elax-plan:report -->")
    assert out == {
        "exit-code": "2",
        "has-changes": "true",
        "report": str(repo / "out" / "report.md"),
        "summaries-dir": str(repo / "out" / "summaries"),
    }


def test_plan_globs_reach_elax_plan_unexpanded_and_errors_fail_the_step(repo: Path) -> None:
    code, calls, out = run_action(
        repo,
        ELAX_COMMAND="plan",
        ELAX_PLANS="plans/*.yaml\nplans/team/c.yaml",
        STUB_PLAN_RC="1",
        ELAX_REPO="acme/search",
        ELAX_PR="9",
    )
    assert code == 1 and out["exit-code"] == "1" and out["has-changes"] == "false"
    assert calls[0]["argv"][:3] == ["plan", "plans/*.yaml", "plans/team/c.yaml"]
    # The report of a failed plan is still what reviewers should see.
    assert calls[1]["argv"][:5] == ["comment", "--pr", "9", "--repo", "acme/search"]


def test_apply_applies_the_pending_plans_and_comments_their_summaries(repo: Path) -> None:
    code, calls, out = run_action(
        repo,
        ELAX_COMMAND="apply",
        ELAX_PLANS="plans/ plans/team/",
        ELAX_CHANGED_FROM="abc123",
        ELAX_PR="12",
        STUB_CODES=json.dumps({"pending:b.yaml": 0}),
    )
    assert code == 0, calls
    summaries = repo / "out" / "summaries"
    assert [c["argv"] for c in calls] == [
        ["--quiet", "plan", "plans/a.yaml", "--changed-from", "abc123", "--detailed-exitcode"],
        ["apply", "plans/a.yaml", "--auto-approve", "--no-progress", "--summary-out",
         str(summaries / "plans_a.md")],
        ["--quiet", "plan", "plans/b.yaml", "--changed-from", "abc123", "--detailed-exitcode"],
        ["--quiet", "plan", "plans/team/c.yaml", "--changed-from", "abc123", "--detailed-exitcode"],
        ["apply", "plans/team/c.yaml", "--auto-approve", "--no-progress", "--summary-out",
         str(summaries / "plans_team_c.md")],
        ["comment", "--pr", "12", "--body-file", str(repo / "out" / "report.md")],
    ]  # fmt: skip
    assert calls[-1]["body"] == "# summary of a.yaml\n\n\n# summary of c.yaml\n\n\n"
    assert sorted(p.name for p in summaries.iterdir()) == ["plans_a.md", "plans_team_c.md"]
    assert out["exit-code"] == "0" and out["has-changes"] == "true"
    assert out["summaries-dir"] == str(summaries)


def test_apply_goes_on_after_a_failure_and_exits_with_the_worst(repo: Path) -> None:
    """Like `apply` over several plans: 3 (verification failed) then 1 (error) gives 1; every
    plan is tried, and the summaries are still commented."""
    code, calls, out = run_action(
        repo,
        ELAX_COMMAND="apply",
        ELAX_PLANS="plans/",
        ELAX_PR="12",
        STUB_CODES=json.dumps({"apply:a.yaml": 3, "apply:b.yaml": 1}),
    )
    assert code == 1 and out["exit-code"] == "1"
    assert [c["argv"][:2] for c in calls] == [
        ["apply", "plans/a.yaml"],
        ["apply", "plans/b.yaml"],
        ["comment", "--pr"],
    ]


def test_apply_without_a_pull_request_does_not_comment(repo: Path) -> None:
    code, calls, _ = run_action(repo, ELAX_COMMAND="apply", ELAX_PLANS="plans/a.yaml")
    assert code == 0 and [c["argv"][0] for c in calls] == ["apply"]


def test_an_unknown_command_fails(repo: Path) -> None:
    code, calls, out = run_action(repo, ELAX_COMMAND="destroy")
    assert code == 1 and calls == [] and out == {"exit-code": "1"}


def _parse(argv: list[str]) -> None:
    """Parse ``argv`` as elax-plan does, without running it: unknown flags raise."""
    i = next(i for i, arg in enumerate(argv) if arg in main.commands)
    ctx = main.make_context("elax-plan", argv[: i + 1])
    main.commands[argv[i]].make_context(argv[i], argv[i + 1 :], parent=ctx)


@pytest.mark.skipif(
    "comment" not in main.commands,
    reason="the action needs `elax-plan comment` and `plan --changed-from` (issue #17)",
)
def test_every_command_line_the_action_runs_is_one_elax_plan_accepts(repo: Path) -> None:
    _, plan_calls, _ = run_action(
        repo, ELAX_COMMAND="plan", ELAX_PLANS="plans/", ELAX_CHANGED_FROM="HEAD", ELAX_PR="3"
    )
    _, apply_calls, _ = run_action(
        repo, ELAX_COMMAND="apply", ELAX_PLANS="plans/", ELAX_CHANGED_FROM="HEAD", ELAX_PR="3"
    )
    seen = set()
    for call in plan_calls + apply_calls:
        try:
            _parse(call["argv"])
        except click.ClickException as exc:
            pytest.fail(f"elax-plan {' '.join(call['argv'])}: {exc.format_message()}")
        seen.add(next(a for a in call["argv"] if not a.startswith("-")))
    assert seen == {"plan", "apply", "comment"}
