"""`plan --changed-from GIT_REF`: a repository of five plans and two commits; exactly the
plans whose file, source files or workload changed are planned, the others named once."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import orjson
import pytest

from elax_plan.cli._group import run
from tests.apply.support import make_dataset, write_plan

NAMES = ("alpha", "bravo", "charlie", "delta", "echo")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def repository(tmp_path: Path) -> Path:
    """repo/plans/NAME.yaml for five plans over repo/data/NAME/*.ndjson (charlie with a
    query workload in repo/queries/), store and state outside; one commit."""
    repo = tmp_path / "repo"
    (repo / "plans").mkdir(parents=True)
    (repo / "queries").mkdir()
    (repo / "queries" / "charlie.ndjson").write_bytes(orjson.dumps({"vector": [0.5] * 8}) + b"\n")
    for name in NAMES:
        make_dataset(repo / "data" / name, files=1, rows=5)
        write_plan(
            repo / "plans" / f"{name}.yaml",
            name=name,
            url="embedded",
            store=(tmp_path / "store").as_uri(),
            namespace=name,
            source=f"data/{name}/*.ndjson",  # relative: resolved against the repository root
            state=(tmp_path / "state").as_uri(),
            extra="verify:\n  workload: queries/charlie.ndjson\n" if name == "charlie" else "",
        )
    (repo / "README.md").write_text("plans\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "five plans")
    return repo


def planned(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert run(["plan", "plans/", "--format", "json", *args]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_changed_from_picks_exactly_the_changed_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Second commit: alpha's plan file, bravo's source file, charlie's workload and the
    README change; --changed-from HEAD~1 plans alpha, bravo, charlie and leaves out delta
    and echo. Then uncommitted work: a new untracked source file of delta and an edited one
    of echo are changes since HEAD."""
    repo = repository(tmp_path)
    monkeypatch.chdir(repo)
    alpha = repo / "plans" / "alpha.yaml"
    alpha.write_text(alpha.read_text() + "description: edited\n")
    make_dataset(repo / "data" / "bravo", files=1, rows=6, seed=2)
    (repo / "queries" / "charlie.ndjson").write_bytes(orjson.dumps({"vector": [0.25] * 8}) + b"\n")
    (repo / "README.md").write_text("plans, edited\n")
    git(repo, "commit", "-q", "-am", "change three plans")

    report = planned(capsys, "--changed-from", "HEAD~1")
    assert [e["name"] for e in report["plans"]] == ["alpha", "bravo", "charlie"]  # type: ignore[index]
    assert report["unchanged"] == ["plans/delta.yaml", "plans/echo.yaml"]
    assert report["changed_from"] == "HEAD~1"
    assert planned(capsys, "--changed-from", "HEAD")["plans"] == []

    make_dataset(repo / "data" / "delta", files=1, rows=5, prefix="extra")  # untracked
    make_dataset(repo / "data" / "echo", files=1, rows=7, seed=3)  # edited, not committed
    report = planned(capsys, "--changed-from", "HEAD")
    assert [e["name"] for e in report["plans"]] == ["delta", "echo"]  # type: ignore[index]

    assert run(["--no-color", "plan", "plans/", "--changed-from", "HEAD"]) == 0
    text = capsys.readouterr().out
    assert (
        "Left out, unchanged since HEAD: 3 plans (plans/alpha.yaml, plans/bravo.yaml, "
        "plans/charlie.yaml)." in text
    )


@pytest.mark.parametrize(
    ("where", "ref", "message"),
    [
        ("repo", "no-such-branch", "--changed-from no-such-branch: no such commit, branch or tag"),
        ("outside", "HEAD", "is not in a git repository"),
    ],
)
def test_changed_from_errors_name_git_and_the_next_step(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
    ref: str,
    message: str,
) -> None:
    """An unknown ref or a plan outside a repository: exit 1, git's message and a hint."""
    repo = repository(tmp_path)
    plans = repo / "plans"
    if where == "outside":
        plans = tmp_path / "loose"
        plans.mkdir()
        (plans / "p.yaml").write_text((repo / "plans" / "alpha.yaml").read_text())
    monkeypatch.chdir(repo)
    capsys.readouterr()
    assert run(["plan", str(plans), "--changed-from", ref]) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert "git said: fatal:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("pattern", "changed", "hit"),
    [
        ("data/*.ndjson", "data/a.ndjson", True),
        ("data/*.ndjson", "data/sub/a.ndjson", False),  # * stays within a folder
        ("data/**/*.ndjson", "data/a.ndjson", True),  # ** may match no folder
        ("data/**/*.ndjson", "data/x/y/a.ndjson", True),
        ("data/**/*.ndjson", "other/a.ndjson", False),
        ("data/part-00[0-4].ndjson", "data/part-003.ndjson", True),
        ("data/part-00[0-4].ndjson", "data/part-007.ndjson", False),
        ("queries/q.ndjson", "queries/q.ndjson", True),
        ("queries/q.ndjson", "queries/q.ndjson.bak", False),
    ],
)
def test_a_changed_file_touches_a_path_or_glob(
    tmp_path: Path, pattern: str, changed: str, hit: bool
) -> None:
    """Globs match as the source reader expands them; plain paths match exactly."""
    from elax_plan.cli._changed_from import touches

    root = Path(os.path.realpath(tmp_path))
    assert touches(str(tmp_path / pattern), {root / changed}) is hit
