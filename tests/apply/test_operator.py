"""The summary's operator header: the CI job, and the plan repository's commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from elax_plan.apply.operator import ci_job, operator_facts


def test_a_github_actions_job_is_named_with_its_url() -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "acme/backfills",
        "GITHUB_RUN_ID": "7741",
        "GITHUB_WORKFLOW": "elax-plan",
        "GITHUB_JOB": "apply",
        "GITHUB_TOKEN": "ghs_secret",
    }
    job = ci_job(env)
    assert job == {
        "system": "GitHub Actions",
        "job": "elax-plan / apply",
        "url": "https://github.com/acme/backfills/actions/runs/7741",
    }
    assert "ghs_secret" not in str(operator_facts(Path("/nowhere/plan.yaml"), env))
    assert ci_job({"CI": "true"}) == {"system": "CI", "job": "", "url": ""}
    assert ci_job({}) is None


def test_the_plan_files_commit_and_whether_it_was_edited_since(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@e", *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    plan = tmp_path / "plans" / "p.yaml"
    plan.parent.mkdir()
    plan.write_text("version: 1\n")
    assert operator_facts(plan, {})["git"] is None  # not a repository yet
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "plan")
    facts = operator_facts(plan, {})
    assert facts["git"] == {"commit": git("rev-parse", "HEAD"), "plan_file_modified": False}
    plan.write_text("version: 1\nname: edited\n")
    assert operator_facts(plan, {})["git"]["plan_file_modified"] is True
    assert facts["ci"] is None and facts["user"] and facts["host"]
