"""Plan arguments: files, directories of plans and globs, each plan once, in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from elax_plan.cli._plan_set import resolve_plan_args
from elax_plan.errors import PlanFileError


def tree(root: Path) -> None:
    (root / "plans" / "team").mkdir(parents=True)
    for name in ("b.yaml", "a.yml", "team/c.yaml"):
        (root / "plans" / name).write_text("# a plan\nversion: 1\nname: x\n")
    (root / "plans" / "job.yaml").write_text("apiVersion: batch/v1\nkind: Job\n")
    (root / "plans" / "notes.txt").write_text("version: 1\n")


def test_a_directory_is_its_plans_and_a_glob_what_it_matches(tmp_path: Path) -> None:
    tree(tmp_path)
    plans = tmp_path / "plans"
    assert resolve_plan_args([str(plans)]) == [plans / "a.yml", plans / "b.yaml"]
    assert resolve_plan_args([f"{plans}/**/*.yaml"]) == [
        plans / "b.yaml",
        plans / "team" / "c.yaml",
    ]
    # Order of the arguments, each plan once; a file is taken as given.
    assert resolve_plan_args([str(plans / "b.yaml"), str(plans), str(plans / "x.yaml")]) == [
        plans / "b.yaml",
        plans / "a.yml",
        plans / "x.yaml",
    ]


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("empty", "is a directory with no plan in it"),
        ("plans/*.json", "matches no plan file"),
    ],
)
def test_nothing_to_plan_is_an_error_naming_the_argument(
    tmp_path: Path, arg: str, message: str
) -> None:
    tree(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlanFileError, match=message):
        resolve_plan_args([str(tmp_path / arg)])
    with pytest.raises(PlanFileError, match="No plan given"):
        resolve_plan_args([])
