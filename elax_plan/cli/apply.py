"""``elax-plan apply``: plan, confirm, write with checkpoints, verify, summarise."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click
import orjson

from elax_plan.cli._group import GlobalOptions, main
from elax_plan.cli._plan_args import load_plan_from_cli, plan_argument, var_option
from elax_plan.cli.emulator import Duration
from elax_plan.errors import EXIT_INTERRUPTED, ElaxError, PlanFileError


def read_saved_plan(path: str) -> dict[str, Any] | None:
    """The saved plan in ``path``, or None when the file is not one (a YAML plan)."""
    try:
        head = Path(path).read_bytes()[:4096].lstrip()
    except OSError:
        return None
    if not head.startswith(b"{"):
        return None
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise PlanFileError(
            f"{path} looks like a saved plan but is not valid JSON ({exc}).",
            hint="Save it again with `elax-plan plan PLAN.yaml --out FILE`.",
        ) from exc
    if not isinstance(doc, dict) or doc.get("format_version") != "1.0" or "inputs" not in doc:
        raise PlanFileError(
            f"{path} is not a saved elax-plan plan (format_version 1.0).",
            hint="Save one with `elax-plan plan PLAN.yaml --out FILE`.",
        )
    return doc


class _Signals:
    """SIGINT/SIGTERM set ``stop``: in-flight writes finish, the checkpoint is saved."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.stop.is_set():
            click.echo(
                "\nStopping: finishing in-flight writes and saving the checkpoint…", err=True
            )
        self.stop.set()

    def __exit__(self, *_: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@main.command("apply")
@plan_argument
@var_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--no-progress", is_flag=True, help="Log progress lines instead of a live bar.")
@click.option(
    "--summary-out",
    type=click.Path(dir_okay=False),
    help="Also write the run's markdown summary here (besides summary.path and the state).",
)
@click.option(
    "--lock-timeout",
    type=Duration(),
    default="0s",
    show_default=True,
    help="Wait this long for another apply's lease before giving up.",
)
@click.pass_obj
def apply_command(
    options: GlobalOptions,
    plan_file: str,
    var_items: tuple[str, ...],
    auto_approve: bool,
    no_progress: bool,
    summary_out: str | None,
    lock_timeout: float,
) -> None:
    """Apply a plan: write the source into the namespace, then verify.

    PLAN.yaml is planned afresh and shown; on a terminal you confirm with
    "yes", elsewhere --auto-approve is required. A saved plan (from
    `elax-plan plan --out FILE`) is applied exactly, without a prompt, and
    refused when anything it was computed from has changed. An interrupted
    or failed run resumes from its checkpoint when apply runs again.
    Ctrl-C / SIGTERM stop cleanly (exit 130).
    """
    from elax_plan.apply.progress import ProgressReporter
    from elax_plan.apply.run import ApplyHooks, ApplyOptions, apply_plan
    from elax_plan.cli.plan import use_colour
    from elax_plan.report.plan_render import render_text

    saved = read_saved_plan(plan_file)
    if saved is not None:
        spec = load_plan_from_cli(saved["plan"]["file"], var_items)
    else:
        spec = load_plan_from_cli(plan_file, var_items)
        if not auto_approve and not sys.stdin.isatty():
            raise ElaxError(
                "Refusing to apply without confirmation: standard input is not a terminal.",
                hint="Review `elax-plan plan` and re-run with --auto-approve, or apply a saved "
                "plan (`elax-plan plan --out FILE`, then `elax-plan apply FILE`).",
            )
    live_bar = not no_progress and sys.stderr.isatty() and not options.quiet
    reporter: list[ProgressReporter] = []

    def show_plan(doc: dict[str, Any]) -> None:
        if not options.quiet:
            click.echo(render_text(doc, colour=use_colour(options)), nl=False)

    def confirm(doc: dict[str, Any]) -> bool:
        if auto_approve:
            return True
        answer = click.prompt(
            "\nDo you want to apply this plan? Only 'yes' will be accepted",
            default="",
            show_default=False,
        )
        return bool(answer.strip() == "yes")

    def on_start(doc: dict[str, Any]) -> None:
        totals = doc["totals"]
        reporter.append(ProgressReporter(live_bar, totals["rows"], totals["bytes"]))

    def on_progress(stats: Any, throttle: Any) -> None:
        if reporter:
            reporter[0](stats, throttle)

    stop = threading.Event()
    hooks = ApplyHooks(
        show_plan=show_plan, confirm=confirm, on_start=on_start, on_progress=on_progress
    )
    try:
        with _Signals(stop):
            outcome = apply_plan(
                spec,
                saved=saved,
                hooks=hooks,
                options=ApplyOptions(
                    lock_timeout=lock_timeout,
                    summary_out=Path(summary_out) if summary_out else None,
                ),
                stop=stop,
                plan_file=plan_file,
            )
    finally:
        for r in reporter:
            r.close()
    if outcome.record is not None and not options.quiet:
        from elax_plan.report.run_record import render_summary

        click.echo("")
        click.echo(render_summary(outcome.record), nl=False)
    if outcome.message and not (options.quiet and outcome.exit_code == 0):
        click.echo(outcome.message, err=outcome.exit_code == EXIT_INTERRUPTED)
    sys.exit(outcome.exit_code)
