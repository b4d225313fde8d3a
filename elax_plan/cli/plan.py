"""``elax-plan plan``: read live state and print the execution plan; change nothing.

The document printed (any ``--format``) and saved (``--out``) is redacted first and
its checksum taken after that, so a saved plan holds no secret and still loads.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from elax_plan.cli._group import GlobalOptions, main
from elax_plan.cli._output import echo, write_file
from elax_plan.cli._plan_args import load_plan_from_cli, plan_argument, var_option
from elax_plan.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, ElaxError
from elax_plan.execution_plan import checksum
from elax_plan.spec import redact_value


def use_colour(options: GlobalOptions) -> bool:
    return options.color and sys.stdout.isatty()


def redacted_document(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with secrets redacted; its checksum re-taken if that changed anything."""
    clean: dict[str, Any] = redact_value(doc)
    if clean != doc:
        clean["checksum"] = checksum(clean)
    return clean


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
