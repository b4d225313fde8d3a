"""Every exception elax-plan raises on purpose, whether it is worth retrying, and its exit code.

::

    ElaxError                   a user-facing failure: one-line summary + detail + next step
    ├── PlanFileError           the plan file cannot be read, parsed or validated      (exit 1)
    │   ├── PlanInvalid         … with one located issue or more (file:line:col)
    │   └── WorkloadInvalid     verify.workload or its results file: bad lines (file:line)
    ├── SavedPlanError          a saved plan (.elaxplan) is corrupt or hand-edited       (exit 1)
    │   └── StalePlan           … or was computed from inputs that changed since         (exit 1)
    ├── PreconditionFailed      a precondition failed; nothing was written               (exit 1)
    ├── NotApproved             the operator declined (or no TTY, no --auto-approve)     (exit 1)
    ├── TargetError             the elacsym target answered badly or not at all          (exit 1)
    │   ├── TargetUnavailable   … transiently: connect error, timeout, 429, 5xx, store
    │   │                         read failure                              (retryable)
    │   ├── WriteRejected       a write refused for good, or its retries ran out
    │   ├── IndexerStalled      paused on WAL lag and the indexer made no progress
    │   ├── IndexerFailed       the indexer command (indexer.mode: command) failed or timed out
    │   ├── NotTheDataRoot      target.store does not show the writes the node acknowledged
    │   ├── WritesOverwritten   acknowledged, checkpointed writes overwritten (hazard H1)
    │   └── WalRestoreConflict  `wal restore` found wal/ holding other bytes for an archived object
    ├── StateError              the state store / ledger / lease cannot be used          (exit 1)
    │   ├── StateUnavailable    … transiently                                (retryable)
    │   ├── Conflict            a compare-and-swap write lost
    │   ├── LeaseHeld           another run holds the plan's (or namespace's) lease
    │   ├── LeaseLost           our lease was taken over or could not be renewed
    │   └── LeaseCorrupt        a lock file is no lease (`unlock PLAN [--namespace] corrupt`)
    ├── GitHubError             `comment`: GitHub refused a request or cannot be asked   (exit 1)
    │   └── GitHubUnavailable   … transiently: connect error, 5xx, rate limit   (retryable)
    ├── SourceError             a source file cannot be listed, opened or read           (exit 1)
    ├── InvalidRowError         a source row is invalid and the policy stops the run     (exit 1)
    ├── NothingWritten          the run read rows and wrote none (every row rejected)    (exit 1)
    └── RowsUnaccounted         rows read ≠ acknowledged + rejected for a file (a bug)   (exit 1)

A run whose data was written but whose verification failed is not an exception:
``apply`` returns its outcome with exit code 3.

``retryable`` is the one place that decides retry versus fail: ``elax_plan.retry``
retries exactly the errors that say so. Anything that is not an ``ElaxError`` is
a bug: the CLI prints a short report request instead of a traceback unless
``--debug`` is given. ``exit_code_for`` is the one mapping from an outcome to
the process exit code (SPEC §2).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_VERIFY_FAILED = 3
EXIT_INTERRUPTED = 130


class ElaxError(Exception):
    """A failure the user can act on; ``str()`` is the full one-paragraph message."""

    exit_code: int = EXIT_ERROR
    retryable: bool = False

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


def describe(exc: BaseException) -> str:
    """One line for any exception: an ``ElaxError``'s message, else its type and text."""
    return exc.message if isinstance(exc, ElaxError) else f"{type(exc).__name__}: {exc}"


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an exception that ended a command (SPEC §2)."""
    if isinstance(exc, ElaxError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_ERROR


# --- the plan file ---------------------------------------------------------------------------


class PlanFileError(ElaxError):
    """The plan file is missing, unreadable, not YAML, or not a valid plan."""


class LocatedIssue(Protocol):
    """What ``PlanInvalid`` needs of an issue (``elax_plan.spec.issues.PlanIssue``)."""

    @property
    def message(self) -> str: ...
    @property
    def line(self) -> int | None: ...
    @property
    def column(self) -> int | None: ...
    def format(self) -> str: ...


def sort_issues(issues: Iterable[LocatedIssue]) -> list[Any]:
    """Issues in file order, without exact duplicates."""
    unique = dict.fromkeys(issues)
    return sorted(unique, key=lambda i: (i.line or 0, i.column or 0, i.message))


class PlanInvalid(PlanFileError):
    """A plan file with one or more problems; ``issues`` holds each with its position."""

    def __init__(self, file: str, issues: Iterable[Any]) -> None:
        self.file = file
        self.issues: tuple[Any, ...] = tuple(sort_issues(issues))
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


# Bad lines listed in one message; the rest are counted (a wrong file can have millions).
MAX_LISTED_ISSUES = 50


class WorkloadInvalid(PlanFileError):
    """The plan's query workload (``verify.workload``) or expected-results file cannot be used:
    unreadable, or lines that are no query; ``issues`` holds each with its position."""

    def __init__(
        self,
        file: str,
        issues: Iterable[Any],
        *,
        what: str = "query workload",
        hint: str = "Fix the lines named (one JSON query a line: vector or bm25, optional name, "
        "filters, top_k, ann_params), then run `elax-plan validate` again.",
    ) -> None:
        self.file = file
        self.issues: tuple[Any, ...] = tuple(sort_issues(issues))
        shown = "\n".join(issue.format() for issue in self.issues[:MAX_LISTED_ISSUES])
        more = len(self.issues) - MAX_LISTED_ISSUES
        if more > 0:
            shown += f"\n… and {more:,} more"
        count = len(self.issues)
        located = any(issue.line is not None for issue in self.issues)
        if count == 1 and not located:
            summary = shown
        else:
            lines = f"{count:,} bad line{'s' if count != 1 else ''}"
            summary = f"{file}: the {what} has {lines}:\n{shown}"
        super().__init__(summary, hint=hint if located else None)


class SavedPlanError(ElaxError):
    """A saved execution plan that cannot be used as it is (corrupt, edited, other version)."""


class StalePlan(SavedPlanError):
    """A saved plan whose inputs changed since it was computed."""


# --- before any write ------------------------------------------------------------------------


class PreconditionFailed(ElaxError):
    """A precondition failed; nothing was written."""


class NotApproved(ElaxError):
    """The operator declined, or no TTY and no ``--auto-approve``."""


# --- the target ------------------------------------------------------------------------------


class TargetError(ElaxError):
    """The elacsym target (HTTP API or store) failed or answered unexpectedly."""


class TargetUnavailable(TargetError):
    """A transient failure of the target or its store; worth retrying.

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one;
    ``status`` the HTTP status (``None`` for a connection-level failure); ``cause``
    a short token for events (``http_503``, ``ConnectTimeout``); ``text`` what the
    server or the transport said.
    """

    retryable = True

    def __init__(
        self,
        summary: str,
        detail: str | None = None,
        hint: str | None = None,
        *,
        cause: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        text: str = "",
    ) -> None:
        self.cause = cause
        self.text = text
        self.status = status
        self.retry_after = retry_after
        super().__init__(summary, detail, hint)


class WriteRejected(TargetError):
    """A write the server refused for good (4xx other than 413/429), or retries ran out."""

    def __init__(self, summary: str, status: int | None, server_text: str, hint: str) -> None:
        self.status = status
        self.server_text = server_text
        super().__init__(summary, hint=hint)


class IndexerStalled(TargetError):
    """Paused on lag and the indexer made no progress for ``stall_timeout``."""


class IndexerFailed(TargetError):
    """The indexer command apply runs (``indexer.mode: command``) failed or timed out."""


class NotTheDataRoot(TargetError):
    """``target.store`` does not show a write the node acknowledged: it is not its data root."""


class WritesOverwritten(TargetError):
    """Acknowledged, checkpointed writes were overwritten on the server (hazard H1)."""


class WalRestoreConflict(TargetError):
    """``wal restore`` would replace a WAL object with different bytes; nothing was replaced."""


# --- state -----------------------------------------------------------------------------------


class StateError(ElaxError):
    """The state location, ledger or lease cannot be used."""


class StateUnavailable(StateError):
    """A transient failure of the state store; worth retrying."""

    retryable = True


class Conflict(StateError):
    """A conditional write lost: the object was not in the state the caller expected.

    ``current`` is what the object holds now (``None`` when absent; an
    ``elax_plan.state.backend.Versioned``), read right after the failure so the caller
    can decide without another round trip — e.g. recognise its own write when a
    retried request already landed.
    """

    def __init__(self, location: str, operation: str, current: Any) -> None:
        self.location = location
        self.operation = operation
        self.current = current
        if current is None:
            state = "does not exist (any more)"
        elif operation == "create":
            state = "already exists"
        else:
            state = "was changed by another writer since it was read"
        super().__init__(
            f"State object {location} {state}, so the {operation} was refused (compare-and-swap).",
            "Another elax-plan process may be using the same state.",
            "Run the command again; if it keeps failing, check with `elax-plan status`"
            " who holds the lease.",
        )


class LeaseHeld(StateError):
    """Another run holds the lease (a plan's, or a namespace's); ``info`` (an
    ``elax_plan.state.LeaseInfo``) says who."""

    def __init__(self, summary: str, detail: str, hint: str, info: Any) -> None:
        super().__init__(summary, detail, hint)
        self.info = info


class LeaseLost(StateError):
    """Our lease was taken over, force-released or could not be renewed in time."""


class LeaseCorrupt(StateError):
    """A lock file (``lock.json``, ``<ns>.lock``) cannot be read as a lease (not JSON, or fields
    missing or wrong)."""

    def __init__(self, summary: str, detail: str, hint: str, reason: str) -> None:
        super().__init__(summary, detail, hint)
        self.reason = reason


# --- GitHub (the pull-request comment) -------------------------------------------------------


class GitHubError(ElaxError):
    """The GitHub REST API refused a request of ``elax-plan comment``, or it cannot be made
    (no token, no repository, a body GitHub would refuse)."""


class GitHubUnavailable(GitHubError):
    """A transient GitHub failure worth retrying: a connect error, a 5xx, a secondary rate
    limit (403/429 with ``Retry-After``) or a used-up primary one (until ``x-ratelimit-reset``).

    ``retry_after`` is how long GitHub asked us to wait, in seconds, when it said;
    ``status`` the HTTP status (``None`` for a connection-level failure); ``cause`` a
    short token for logs (``http_502``, ``secondary_rate_limit``, ``ConnectError``).
    """

    retryable = True

    def __init__(
        self,
        summary: str,
        detail: str | None = None,
        hint: str | None = None,
        *,
        cause: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.cause = cause
        self.status = status
        self.retry_after = retry_after
        super().__init__(summary, detail, hint)


# --- source and rows -------------------------------------------------------------------------


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


class NothingWritten(ElaxError):
    """The run read rows and acknowledged none of them: every one was rejected."""


class RowsUnaccounted(ElaxError):
    """For a file, rows read ≠ rows acknowledged + rows rejected: a bug in elax-plan."""
