"""The issue collector every validation rule reports to, and how a node is shown.

Owns ``Checker`` (the file's issues; where each node is; how a value may be quoted: never
one that came from interpolation, which may be a secret) and the small helpers all rule
modules share to read the plan data (``value_at``) and name a place (``path_text``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elax_plan.spec.issues import PlanIssue
from elax_plan.spec.secrets import is_credential_name
from elax_plan.spec.yaml_loader import Mark, NodePath, format_path


class Checker:
    """Collects issues for one document; knows where every node is and how to show it."""

    def __init__(
        self,
        file: str,
        marks: Mapping[NodePath, Mark],
        sources: Mapping[NodePath, tuple[str, ...]],
    ) -> None:
        self.file = file
        self.marks = marks
        self.sources = sources
        self.issues: list[PlanIssue] = []
        self.flagged: set[NodePath] = set()
        self.silenced: frozenset[NodePath] = frozenset()

    def add(self, path: NodePath, message: str, *, at_key: bool = False) -> None:
        if path in self.silenced:
            # Its ${…} already failed; the raw "${X}" text is not the user's value.
            return
        line, column = self.position(path, at_key=at_key)
        self.flagged.add(path)
        self.issues.append(PlanIssue(self.file, message, line, column, format_path(path) or None))

    def position(self, path: NodePath, *, at_key: bool = False) -> tuple[int | None, int | None]:
        probe = path
        while True:
            mark = self.marks.get(probe)
            if mark is not None:
                if at_key or probe != path:
                    return mark.key_position
                return mark.line, mark.column
            if not probe:
                return (1, 1) if self.marks else (None, None)
            probe = probe[:-1]

    def interpolated(self, path: NodePath) -> bool:
        return path in self.sources

    def value_text(self, path: NodePath, value: Any) -> str | None:
        """``"four"`` for a literal; ``the value from ${X}`` when interpolated; else ``None``.

        An interpolated value is never shown: it may be a secret.
        """
        refs = self.sources.get(path)
        if refs:
            names = ", ".join(f"${{{r}}}" for r in refs)
            return f"the value from {names}"
        if _is_secret_path(path):
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str):
            text = value if len(value) <= 40 else value[:37] + "..."
            return f'"{text}"'
        return None

    def shown(self, path: NodePath, value: Any) -> str:
        """`` ("four")`` / `` (the value from ${X})`` to follow a key path; ``""`` if hidden."""
        text = self.value_text(path, value)
        return f" ({text})" if text else ""


def _is_secret_path(path: NodePath) -> bool:
    if path[-1:] == ("api_key",):
        return True
    return "storage_options" in path and any(
        isinstance(p, str) and is_credential_name(p) for p in path
    )


def path_text(path: NodePath) -> str:
    """``target.store``, or ``the plan`` for the root."""
    return format_path(path) or "the plan"


def section_text(path: NodePath) -> str:
    """``in target.storage_options``, or ``at the top level``."""
    return f"in {format_path(path)}" if path else "at the top level"


def value_at(data: Any, path: NodePath) -> Any:
    """The value at ``path`` in ``data``; ``None`` where the path does not exist."""
    for key in path:
        in_list = isinstance(key, int) and isinstance(data, list) and 0 <= key < len(data)
        in_dict = isinstance(key, str) and isinstance(data, dict) and key in data
        if not (in_list or in_dict):
            return None
        data = data[key]
    return data


def set_value_at(data: Any, path: NodePath, value: Any) -> None:
    """Replace the value at ``path`` (its parent must exist)."""
    parent = value_at(data, path[:-1])
    if isinstance(parent, dict | list):
        parent[path[-1]] = value  # type: ignore[index]
