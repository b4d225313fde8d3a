"""How a run that reached its end says so: the exit code and the one closing message.

Pure: given the outcome (``succeeded``, ``verification_failed``, ``interrupted``), the
run's numbers and where its files are, it returns the words the operator reads last —
also for a run stopped during its writes, or one whose every row was rejected.
``ApplyRun.finish`` decides the outcome; this module only tells it.
"""

from __future__ import annotations

from dataclasses import dataclass

from elax_plan.apply.pipeline import PipelineStats
from elax_plan.apply.verify import CheckResult
from elax_plan.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_VERIFY_FAILED, NothingWritten


@dataclass(frozen=True, slots=True)
class RunFilesAt:
    """Where the run's lists are, for the message to point at."""

    summary: str
    rejects: str
    duplicates: str


def rows(n: int, what: str = "row") -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def written_text(stats: PipelineStats, duplicates: str) -> str:
    """``N rows written``, and how many unique ids when some rows repeated an id."""
    text = f"{rows(stats.rows_acked)} written"
    if stats.duplicate_rows:
        text += (
            f" for {stats.unique_ids:,} unique ids: {rows(stats.duplicate_rows)} repeated "
            f"an id read earlier in this run, and the last one wins (listed in {duplicates})"
        )
    return text


def interrupted_writes(ledger: str) -> tuple[int, str]:
    """A run stopped during its writes: where the checkpoint is, and how to go on."""
    return EXIT_INTERRUPTED, (
        f"Interrupted: the checkpoint is saved in {ledger}; run `elax-plan apply` again to resume."
    )


def nothing_written(stats: PipelineStats, rejects: str) -> NothingWritten:
    """A run that read rows and had every one rejected."""
    return NothingWritten(
        f"Apply read {rows(stats.rows_read)} and wrote none: "
        f"{'it was' if stats.rows_read == 1 else f'all {stats.rows_read:,} were'} rejected "
        f"(ingest.on_invalid_row: skip); every one is listed in {rejects} with its reason.",
        "Nothing was verified, and the files this run read are not marked done.",
        "Fix those rows, or the plan's source settings (source.id_field, "
        "source.vector_field, target.vector_dims), and run `elax-plan apply` again.",
    )


def closing(
    outcome: str,
    stats: PipelineStats,
    checks: list[CheckResult],
    rejected: int,
    at: RunFilesAt,
) -> tuple[int, str]:
    """The exit code and message of a run that wrote (or had written) its data."""
    if outcome == "interrupted":
        return EXIT_INTERRUPTED, (
            "Interrupted during verification: the data is written; run `elax-plan apply` "
            f"again to finish the verification. Summary: {at.summary}"
        )
    written = written_text(stats, at.duplicates)
    if outcome == "succeeded":
        if rejected:
            return EXIT_OK, (
                f"Apply completed with {rows(rejected, 'rejected row')} (listed in "
                f"{at.rejects}): {written}; every check passed. Summary: {at.summary}"
            )
        return EXIT_OK, f"Apply complete: {written}; every check passed. Summary: {at.summary}"
    failed = "; ".join(f"{c.title}: {c.detail}" for c in checks if not c.passed)
    also = (
        f" {rows(rejected, 'rejected row')} {'is' if rejected == 1 else 'are'} listed "
        f"in {at.rejects}."
        if rejected
        else ""
    )
    return EXIT_VERIFY_FAILED, (
        f"The data was written but verification failed: {failed}.{also} Summary: {at.summary}"
    )
