"""Every exception elax-plan raises on purpose, and the exit code each one maps to.

::

    ElaxError                 a user-facing failure: one-line summary + detail + next step
    ├── PlanFileError         the plan file cannot be read, parsed or validated (exit 1)
    ├── TargetError           the elacsym target answered badly or not at all (exit 1)
    ├── StateError            the state store / ledger / lease cannot be used (exit 1)
    ├── SourceError           a source file cannot be listed, opened or read (exit 1)
    ├── InvalidRowError       a source row is invalid (on_invalid_row: fail, or too many) (exit 1)
    └── VerificationFailed    data written, but verification failed (exit 3)

Anything that is not an ``ElaxError`` is a bug: the CLI prints a short report
request instead of a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_VERIFY_FAILED = 3
EXIT_INTERRUPTED = 130


class ElaxError(Exception):
    """A failure the user can act on; ``str()`` is the full one-paragraph message."""

    exit_code: int = EXIT_ERROR

    def __init__(self, summary: str, detail: str | None = None, hint: str | None = None) -> None:
        self.summary = summary
        self.detail = detail
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [self.summary]
        if self.detail:
            parts.append(self.detail)
        if self.hint:
            parts.append(self.hint)
        return " ".join(p.rstrip() for p in parts)


class PlanFileError(ElaxError):
    """The plan file is missing, unreadable, not YAML, or not a valid plan."""


class TargetError(ElaxError):
    """The elacsym target (HTTP API or store) failed or answered unexpectedly."""


class StateError(ElaxError):
    """The state location, ledger or lease cannot be used."""


class VerificationFailed(ElaxError):
    """The data was written but a verification step failed."""

    exit_code = EXIT_VERIFY_FAILED


class SourceError(ElaxError):
    """A source file cannot be opened, read or resumed (missing, wrong format, changed)."""


class InvalidRowError(ElaxError):
    """A source row is invalid and the policy stops the run (``on_invalid_row: fail`` or limit)."""

    def __init__(
        self,
        summary: str,
        detail: str | None = None,
        hint: str | None = None,
        *,
        location: str = "",
        reason: str = "",
    ) -> None:
        self.location = location
        self.reason = reason
        super().__init__(summary, detail, hint)
