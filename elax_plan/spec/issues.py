"""What is wrong with a plan file, and where: ``PlanIssue`` and the ``PlanInvalid`` error.

Owns the one shape every plan problem takes (file, line, column, dotted key
path, plain-words message) and how a list of them becomes one error message.
It must not find problems itself; the YAML loader, the interpolator and the
validator do, and they never put an interpolated value into a message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from elax_plan.errors import PlanFileError
from elax_plan.spec.secrets import redact


@dataclass(frozen=True, slots=True)
class PlanIssue:
    """One problem in a plan file; ``line``/``column`` are 1-based, ``None`` when unknown."""

    file: str
    message: str
    line: int | None = None
    column: int | None = None
    path: str | None = None

    def format(self) -> str:
        """``FILE:LINE:COL: message`` (or ``FILE: message`` without a position)."""
        if self.line is None:
            return redact(f"{self.file}: {self.message}")
        return redact(f"{self.file}:{self.line}:{self.column or 1}: {self.message}")

    def to_dict(self) -> dict[str, Any]:
        """The issue as JSON-ready data (``validate --format json``)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": redact(self.message),
        }


def sort_issues(issues: Iterable[PlanIssue]) -> list[PlanIssue]:
    """Issues in file order, without exact duplicates."""
    unique = dict.fromkeys(issues)
    return sorted(unique, key=lambda i: (i.line or 0, i.column or 0, i.message))


class PlanInvalid(PlanFileError):
    """A plan file with one or more problems; ``issues`` holds each with its position."""

    def __init__(self, file: str, issues: Iterable[PlanIssue]) -> None:
        self.file = file
        self.issues: tuple[PlanIssue, ...] = tuple(sort_issues(issues))
        count = len(self.issues)
        # File-level problems (missing, binary…) carry their own next step.
        in_content = any(issue.line is not None for issue in self.issues)
        again = f"Fix the plan and run `elax-plan validate {file}` again." if in_content else ""
        if count == 1 and not again:
            summary = self.issues[0].format()
        elif count == 1:
            first = self.issues[0].format()
            summary = f"{first}{' ' if first.endswith(('.', '?', '!')) else '. '}{again}"
        else:
            lines = "\n".join(issue.format() for issue in self.issues)
            summary = f"{file} is not a valid plan ({count} problems):\n{lines}\n{again}"
        super().__init__(summary)
