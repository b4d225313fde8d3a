"""Plan texts shared by the spec and CLI tests."""

from __future__ import annotations

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
