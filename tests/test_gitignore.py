"""What elax-plan and its tests write into a checkout stays out of git: the demo's folder,
saved plans, the render check's npm packages and screenshots."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def ignored(path: str) -> bool:
    """Whether a top-level pattern of .gitignore matches ``path`` or one of its folders."""
    patterns = [
        line.strip().rstrip("/")
        for line in (REPO / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))] + parts
    return any(fnmatch(c, p) for c in candidates for p in patterns)


@pytest.mark.parametrize(
    "path",
    [
        ".elax-demo/state/quickstart/state.json",
        "plan.elaxplan",
        "plans/prod.elaxplan",
        "tests/render/node_modules/.installed",
        ".artifacts/render/summary_golden.md.png",
    ],
)
def test_files_elax_plan_writes_are_ignored(path: str) -> None:
    """`make demo`'s .elax-demo/, saved plans (`plan --out X.elaxplan`), tests/render's
    node_modules/ and the screenshots in .artifacts/ are git-ignored."""
    assert ignored(path), f"{path} is not in .gitignore"
