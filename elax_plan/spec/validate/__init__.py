"""Is this plan valid? Every problem at once, each at its node, in plain words.

Owns ``check``: the three checks a plan goes through after YAML and interpolation, in order:
the JSON Schema (``schemas/plan.schema.json``, ``schema_messages`` words its errors with "did
you mean" hints), the secret rules (``secret_rules``: credentials only from interpolation) and
the semantic rules the schema cannot express (``semantic_rules``, ``source_rules``,
``location_rules``:
``resume_wal_lag < max_wal_lag``, ``chunk_bytes ≤ max_request_bytes``, state outside the
store's ``namespaces/``…). Interpolated text is first given its schema type (``coercion``).

It must not build ``PlanSpec`` objects (``build`` does) and never quotes a value that came
from interpolation: that value may be a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from elax_plan.spec import schema as plan_schema_mod
from elax_plan.spec.issues import PlanIssue
from elax_plan.spec.validate.checker import Checker
from elax_plan.spec.validate.coercion import coerce_interpolated
from elax_plan.spec.validate.schema_messages import (
    NAME_PATTERN,
    NAMESPACE_PATTERN,
    PATTERN_MESSAGES,
    URL_PATTERN,
    schema_issues,
)
from elax_plan.spec.validate.secret_rules import secret_issues
from elax_plan.spec.validate.semantic_rules import MIN_REQUEST_BYTES, semantic_issues
from elax_plan.spec.validate.source_rules import MAX_ATTRIBUTE_NAME_BYTES
from elax_plan.spec.yaml_loader import Mark, NodePath

__all__ = [
    "MAX_ATTRIBUTE_NAME_BYTES",
    "MIN_REQUEST_BYTES",
    "NAMESPACE_PATTERN",
    "NAME_PATTERN",
    "PATTERN_MESSAGES",
    "URL_PATTERN",
    "check",
]


def check(
    data: Any,
    marks: Mapping[NodePath, Mark],
    sources: Mapping[NodePath, tuple[str, ...]],
    *,
    file: str,
    base_dir: Path,
    silenced: Iterable[NodePath] = (),
    allow_memory_state: bool = False,
) -> tuple[dict[str, Any] | None, list[PlanIssue]]:
    """Validate ``data`` (YAML already interpolated); return it with defaults, and the issues.

    The data is ``None`` when there are issues. ``base_dir`` resolves relative
    local paths for the location checks. Paths in ``silenced`` (their
    interpolation failed and was reported) get no further issues.
    ``allow_memory_state`` accepts ``state.uri: memory://`` (tests, library use).
    """
    checker = Checker(file, marks, sources)
    checker.silenced = frozenset(silenced)
    if data is None:
        checker.issues.append(
            PlanIssue(
                file,
                "the file is empty; a plan needs at least version, name, target, source and "
                "state (start from plans/quickstart.yaml)",
                1,
                1,
            )
        )
        return None, checker.issues
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        checker.add(
            (),
            f"the plan must be a mapping of keys (version: 1, name: …), but the file holds {kind}",
        )
        return None, checker.issues
    data = coerce_interpolated(data, sources)
    schema_issues(checker, data)
    secret_issues(checker, data)
    defaulted: dict[str, Any] = plan_schema_mod.apply_defaults(data)
    semantic_issues(checker, defaulted, base_dir, allow_memory_state=allow_memory_state)
    if checker.issues:
        return None, checker.issues
    return defaulted, []
