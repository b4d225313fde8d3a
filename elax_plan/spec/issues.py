"""What is wrong with a plan file, and where: ``PlanIssue`` and the ``PlanInvalid`` error.

Owns the one shape every plan problem takes (file, line, column, dotted key
path, plain-words message) and how a list of them becomes one error message.
It must not find problems itself; the YAML loader, the interpolator and the
validator do, and they never put an interpolated value into a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elax_plan.errors import PlanInvalid, sort_issues
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


__all__ = ["PlanInvalid", "PlanIssue", "sort_issues"]
