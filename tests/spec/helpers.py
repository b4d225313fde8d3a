"""Plan texts shared by the spec and CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from elax_plan.spec import PlanInvalid, parse_plan

# Line numbers matter: the bad-input corpus edits this plan and asserts LINE:COL.
MINIMAL_PLAN = """\
version: 1
name: demo
target:
  url: embedded
  store: ./store
  namespace: products
  distance_metric: cosine
source:
  uri: data/*.ndjson
state:
  uri: ./state
"""


def minimal_with(extra: str) -> str:
    """The minimal plan with ``extra`` YAML appended (new top-level sections)."""
    return MINIMAL_PLAN + extra


def issues_of(text: str, tmp_path: Path, **env: str) -> list[tuple[int | None, int | None, str]]:
    """(line, column, message) of every issue ``text`` has, loaded as ``p.yaml``."""
    with pytest.raises(PlanInvalid) as caught:
        parse_plan(text, file="p.yaml", base_dir=tmp_path, env=env)
    return [(i.line, i.column, i.message) for i in caught.value.issues]
