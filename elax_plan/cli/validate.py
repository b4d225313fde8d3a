"""``elax-plan validate PLAN.yaml``: parse, schema-check and semantically check a plan.

Thin: one call to ``elax_plan.spec.load_plan``, then reading the plan's query workload
and expected-results file (``live.workload``: every line checked), then printing. No state
store, no target; the workload files are the only thing read besides the plan. Exit 0 when the plan is valid, 1 otherwise; every
problem is listed at once as ``FILE:LINE:COL: message``. With ``--format json``
stdout is always one JSON document, an internal error included (``--debug``
adds its traceback on stderr). Everything printed goes through ``_output.echo``
(redacted) so an interpolated secret cannot reach the terminal.
"""

from __future__ import annotations

from typing import Any

import click
import orjson

from elax_plan.cli._group import main
from elax_plan.cli._output import echo, format_traceback
from elax_plan.cli._plan_args import parse_vars, plan_argument, var_option
from elax_plan.errors import EXIT_ERROR, EXIT_OK, PlanFileError, WorkloadInvalid
from elax_plan.live.workload import read_workload
from elax_plan.spec import PlanInvalid, PlanSpec, format_size, load_plan, redact_value

FORMAT_VERSION = "1.0"


@main.command("validate")
@plan_argument
@var_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line, or the problems; json: a document with every problem.",
)
def validate_command(plan_file: str, var_items: tuple[str, ...], output_format: str) -> int:
    """Check PLAN.yaml without touching the target: YAML, schema and semantic checks.

    Also reads the query workload (verify.workload) and expected results, if any, and
    checks every line. Reports every problem at once as FILE:LINE:COL: message. ${ENV},
    ${ENV:-default} and ${var.NAME} (from --var NAME=VALUE) are interpolated
    first. Exit code 0 when the plan is valid, 1 otherwise.
    """
    if output_format != "json":
        spec = load_plan(plan_file, parse_vars(var_items))
        read_workload(spec)
        echo(f"{plan_file}: valid. {describe(spec)}")
        return EXIT_OK
    # --format json: stdout is one JSON document whatever happens, a bug included.
    try:
        spec = load_plan(plan_file, parse_vars(var_items))
        read_workload(spec)
        document = _document(plan_file, spec, [])
    except (PlanInvalid, WorkloadInvalid) as exc:
        document = _document(plan_file, None, [issue.to_dict() for issue in exc.issues])
    except PlanFileError as exc:
        document = _document(plan_file, None, [_problem(exc.message)])
    except Exception as exc:
        document = _internal_error(plan_file, exc)
    try:
        _echo_json(document)
    except Exception as exc:  # the document itself could not be written as JSON
        _echo_json(_internal_error(plan_file, exc))
        return EXIT_ERROR
    return EXIT_OK if document["valid"] else EXIT_ERROR


def _problem(message: str) -> dict[str, Any]:
    return {"file": None, "line": None, "column": None, "path": None, "message": message}


def _internal_error(file: str, exc: Exception) -> dict[str, Any]:
    """The JSON document for a bug; ``--debug`` adds the traceback on stderr."""
    root = click.get_current_context().find_root()
    if getattr(root.obj, "debug", False):
        echo(format_traceback(exc), err=True, nl=False)
    message = (
        f"internal error ({type(exc).__name__}: {exc}). This is a bug in elax-plan; re-run "
        "with --debug and report the traceback."
    )
    return _document(file, None, [_problem(message)])


def describe(spec: PlanSpec) -> str:
    """One sentence saying what the plan does, for the ``validate`` success line."""
    target = spec.target
    where = "the embedded emulator" if target.embedded else target.url
    dims = f", {target.vector_dims} dims" if target.vector_dims else ""
    count = len(spec.source.uris)
    parts = [
        f'Plan "{spec.name}" loads {count} {spec.source.format} source '
        f"{'URI' if count == 1 else 'URIs'} into namespace {target.namespace} on {where} "
        f"({target.distance_metric}{dims}) in chunks of {format_size(spec.ingest.chunk_bytes)}",
    ]
    queries = len(spec.verify.smoke_queries)
    checks = [f"{queries} smoke {'query' if queries == 1 else 'queries'}"]
    if spec.verify.recall is not None:
        checks.append(f"recall gate ≥ {spec.verify.recall.min_avg_recall:g}")
    if spec.verify.compare is not None:
        checks.append(
            f"comparison with a baseline (mean overlap@k ≥ "
            f"{spec.verify.compare.min_overlap_at_k:g})"
        )
    if spec.wal_trim.enabled:
        checks.append(f"WAL trim ({spec.wal_trim.mode})")
    return f"{parts[0]}; then {', '.join(checks)}."


def _document(file: str, spec: PlanSpec | None, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "file": file,
        "valid": spec is not None,
        "digest": f"sha256:{spec.digest}" if spec is not None else None,
        "errors": errors,
        "plan": spec.to_dict() if spec is not None else None,
    }


def _echo_json(document: dict[str, Any]) -> None:
    echo(orjson.dumps(redact_value(document), option=orjson.OPT_INDENT_2).decode())
