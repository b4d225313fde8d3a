"""``elax-plan plan``: read live state and print the execution plan; change nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from elax_plan.cli._group import GlobalOptions, main
from elax_plan.cli._plan_args import load_plan_from_cli, plan_argument, var_option
from elax_plan.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, ElaxError


def use_colour(options: GlobalOptions) -> bool:
    return options.color and sys.stdout.isatty()


@main.command("plan")
@plan_argument
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
    help="Also save the plan (JSON with what it was computed from) for `elax-plan apply FILE`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@click.pass_obj
def plan_command(
    options: GlobalOptions,
    plan_file: str,
    var_items: tuple[str, ...],
    output_format: str,
    out_file: str | None,
    detailed_exitcode: bool,
) -> int:
    """Show what `apply` would do, without changing anything.

    Reads the target (GET /metrics), the namespace's router.json and parts in
    target.store, the plan's ledger under state.uri and the source listing,
    then prints per source file: + new, ~ changed, > resumes, = unchanged,
    - gone; the preconditions with their live values; the verification and
    WAL-trim steps; and a closing `Plan: …` line. Source data is never read
    in full: estimates come from file sizes and a small sample.
    """
    from elax_plan.live.snapshot import observe
    from elax_plan.planner import build_plan
    from elax_plan.report.plan_render import render_markdown, render_text
    from elax_plan.state import open_backend

    spec = load_plan_from_cli(plan_file, var_items)
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    snapshot = observe(spec, backend)
    execution_plan = build_plan(spec, snapshot.live)
    doc = execution_plan.to_json()
    if output_format == "json":
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    elif output_format == "markdown":
        click.echo(render_markdown(doc), nl=False)
    else:
        click.echo(render_text(doc, colour=use_colour(options)), nl=False)
    if out_file:
        try:
            Path(out_file).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as exc:
            raise ElaxError(
                f"Cannot write the saved plan to {out_file}: {exc.strerror or exc}.",
                hint="Choose a writable path for --out.",
            ) from exc
        if output_format == "text" and not options.quiet:
            click.echo(
                f"\nSaved the plan to {out_file}; apply it with `elax-plan apply {out_file}`."
            )
    if not execution_plan.preconditions_ok:
        click.echo(
            f"Error: a precondition failed: {execution_plan.failed_preconditions()}. "
            "`apply` would stop before writing; fix it and run `elax-plan plan` again.",
            err=True,
        )
        return EXIT_ERROR
    if detailed_exitcode and doc["totals"]["changes"]:
        return EXIT_CHANGES
    return EXIT_OK
