"""Mangled plans never crash the loader: every outcome is a PlanSpec or a PlanInvalid."""

from __future__ import annotations

import random
from pathlib import Path

from elax_plan.spec import PlanInvalid, PlanSpec, parse_plan

REPO = Path(__file__).resolve().parents[2]
TOKENS = [
    "[]",
    "{}",
    "null",
    "-1",
    "x",
    "1e999",
    "~",
    "&a x",
    "*a",
    "!!binary aGk=",
    "0",
    "true",
    "'${X}'",
    "${",
    "[1, [2]]",
    "{a: {b: c}}",
    '"\\q"',
    "- 1",
    ": :",
    "1:30",
    "0x10",
    ".nan",
    "\t",
    "2026-01-01",
    "1MiB",
    "500ms",
    "s3://b/k",
    "''",
]


def _mutate(lines: list[str], rng: random.Random) -> str:
    lines = list(lines)
    for _ in range(rng.randint(1, 4)):
        if not lines:
            break
        index = rng.randrange(len(lines))
        choice = rng.random()
        if choice < 0.3:
            del lines[index]
        elif choice < 0.5:
            lines.insert(index, lines[rng.randrange(len(lines))])
        elif choice < 0.8 and ":" in lines[index]:
            lines[index] = lines[index].split(":", 1)[0] + ": " + rng.choice(TOKENS)
        else:
            lines[index] = " " * rng.randint(0, 4) + lines[index].lstrip()
    return "\n".join(lines) + "\n"


def test_mutated_plans_never_raise_anything_but_plan_invalid(tmp_path: Path) -> None:
    """600 seeded mutations of the committed plans each load or fail with positioned issues."""
    sources = [p.read_text().splitlines() for p in sorted((REPO / "plans").rglob("*.yaml"))]
    env = {"AWS_ACCESS_KEY_ID": "AKIAFUZZ", "AWS_SECRET_ACCESS_KEY": "fuzz-secret-value"}
    rng = random.Random(20261125)
    outcomes = {"valid": 0, "invalid": 0}
    for _ in range(600):
        text = _mutate(rng.choice(sources), rng)
        try:
            assert isinstance(parse_plan(text, env=env, base_dir=tmp_path), PlanSpec)
            outcomes["valid"] += 1
        except PlanInvalid as exc:
            outcomes["invalid"] += 1
            assert exc.issues
            assert all(issue.message for issue in exc.issues)
    assert outcomes["valid"] > 0
    assert outcomes["invalid"] > 0
