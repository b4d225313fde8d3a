"""``elax-plan plan``: read live state and print the execution plan; change nothing.

The document printed (any ``--format``) and saved (``--out``) is redacted first and
its checksum taken after that, so a saved plan holds no secret and still loads.

Given one plan file, it prints that plan as it always has. Given several plans — more
than one argument, a directory, a glob, or ``--changed-from`` — it prints one report
(``report.plan_report``) with a section per plan, computed by ``_plan_many``; a plan
that fails is a section with its error and does not stop the others.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click
import orjson

from elax_plan.cli._group import GlobalOptions, main
from elax_plan.cli._output import echo, write_file
from elax_plan.cli._plan_args import load_plan_from_cli, var_option
from elax_plan.cli._plan_many import collect_report, redacted_document
from elax_plan.cli._plan_set import is_glob
from elax_plan.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, ElaxError, PlanFileError

__all__ = ["plan_command", "redacted_document", "use_colour"]


def use_colour(options: GlobalOptions) -> bool:
    return options.color and sys.stdout.isatty()


def is_report(plan_args: Sequence[str], changed_from: str | None) -> bool:
    """Whether ``plan`` prints the several-plans report rather than one plan as always:
    decided by the arguments' shape, never by how many plans a directory holds today."""
    if changed_from is not None or len(plan_args) != 1:
        return True
    arg = plan_args[0]
    return Path(arg).is_dir() or is_glob(arg)


@main.command("plan")
@click.argument("plan_args", nargs=-1, metavar="PLAN...")
@var_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for a terminal, markdown for a pull-request comment, json for machines.",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Also save the plan (JSON with what it was computed from) for `elax-plan apply FILE`."
    " One plan file only: with several plans, --out is refused.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error. With several"
    " plans: 1 if any failed, else 2 if any has changes, else 0.",
)
@click.option(
    "--changed-from",
    "changed_from",
    metavar="GIT_REF",
    help="Keep only the plans whose file, or a local file it reads (source files, the"
    " query workload, baseline results) in the same git repository, differs from GIT_REF:"
    " committed since the branch forked from it, uncommitted or untracked.",
)
@click.pass_obj
def plan_command(
    options: GlobalOptions,
    plan_args: tuple[str, ...],
    var_items: tuple[str, ...],
    output_format: str,
    out_file: str | None,
    detailed_exitcode: bool,
    changed_from: str | None,
) -> int:
    """Show what `apply` would do, without changing anything.

    Reads the target (GET /metrics), the namespace's router.json and parts in
    target.store, the plan's ledger under state.uri and the source listing,
    then prints per source file: + new, ~ changed, > resumes, = unchanged,
    - gone; the preconditions with their live values; the verification and
    WAL-trim steps; and a closing `Plan: …` line. Source data is never read
    in full: estimates come from file sizes and a small sample.

    PLAN is a plan file, a directory (every *.yaml / *.yml directly in it that
    says `version: 1`) or a quoted glob ('plans/**/*.yaml'); name several to
    plan them together. Several plans (or a directory, a glob, --changed-from)
    print one report: a section per plan with its apply command and any lease
    held, then a closing line such as `3 plans: 2 with changes (…), 1 without;
    1 failed.` A plan that fails is shown with its error and the others are
    still planned. --var applies to every plan. In markdown the report stays
    under GitHub's comment limit, folding what does not fit and saying so; in
    JSON it is a plan report (schemas/plan-report.schema.json) holding each
    plan's execution-plan document. One plan file prints exactly one plan.

    --changed-from GIT_REF keeps the plans a change since GIT_REF touches (in
    a pull request: the base branch, e.g. origin/main) and names the others
    in one line.
    """
    if is_report(plan_args, changed_from):
        if out_file and plan_args:
            raise PlanFileError(
                "--out saves one plan, and this `plan` names several (or a directory, a glob "
                "or --changed-from).",
                hint="Run `elax-plan plan PLAN.yaml --out FILE` for each plan to save; "
                "`elax-plan apply PLAN.yaml` plans afresh without a saved plan.",
            )
        return _plan_report(
            options, plan_args, var_items, output_format, detailed_exitcode, changed_from
        )
    return _plan_file(options, plan_args[0], var_items, output_format, out_file, detailed_exitcode)


def _plan_file(
    options: GlobalOptions,
    plan_file: str,
    var_items: Sequence[str],
    output_format: str,
    out_file: str | None,
    detailed_exitcode: bool,
) -> int:
    """One plan file: printed (and saved with ``--out``) exactly as ``plan`` always has."""
    from elax_plan.live.snapshot import observe
    from elax_plan.planner import build_plan
    from elax_plan.report.plan_render import render_markdown, render_text
    from elax_plan.state import open_backend

    spec = load_plan_from_cli(plan_file, var_items)
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    snapshot = observe(spec, backend)
    execution_plan = build_plan(spec, snapshot.live)
    doc = redacted_document(execution_plan.to_json())
    if output_format == "json":
        echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    elif output_format == "markdown":
        echo(render_markdown(doc), nl=False)
    else:
        echo(render_text(doc, colour=use_colour(options)), nl=False)
    if out_file:
        try:
            write_file(out_file, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as exc:
            raise ElaxError(
                f"Cannot write the saved plan to {out_file}: {exc.strerror or exc}.",
                hint="Choose a writable path for --out.",
            ) from exc
        if output_format == "text" and not options.quiet:
            echo(f"\nSaved the plan to {out_file}; apply it with `elax-plan apply {out_file}`.")
    if not execution_plan.preconditions_ok:
        echo(
            f"Error: a precondition failed: {execution_plan.failed_preconditions()}. "
            "`apply` would stop before writing; fix it and run `elax-plan plan` again.",
            err=True,
        )
        return EXIT_ERROR
    if detailed_exitcode and doc["totals"]["changes"]:
        return EXIT_CHANGES
    return EXIT_OK


def _plan_report(
    options: GlobalOptions,
    plan_args: Sequence[str],
    var_items: Sequence[str],
    output_format: str,
    detailed_exitcode: bool,
    changed_from: str | None,
) -> int:
    """Several plans: one report on stdout, failures named on stderr, the combined code."""
    from elax_plan.report.plan_report import (
        render_report_markdown,
        render_report_text,
        report_exit_code,
    )

    report = collect_report(plan_args, var_items, changed_from=changed_from)
    if output_format == "json":
        echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    elif output_format == "markdown":
        echo(render_report_markdown(report), nl=False)
    else:
        echo(render_report_text(report, colour=use_colour(options)), nl=False)
    failed = [e["file"] for e in report["plans"] if e["status"] == "failed"]
    if failed:
        echo(
            f"Error: {len(failed)} of {len(report['plans'])} plans failed: {', '.join(failed)}. "
            "Each one's error is in its section above; fix them and run `elax-plan plan` again.",
            err=True,
        )
    return report_exit_code(report, detailed=detailed_exitcode)
