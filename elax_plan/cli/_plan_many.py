"""Plan several plans into one report: each loaded, observed and planned on its own.

Owns ``collect_report``, what ``plan`` runs for several plans (and what ``elax-plan
comment`` calls for the markdown of a pull request): resolve the arguments
(``_plan_set``), keep the changed plans (``--changed-from``, ``_changed_from``), then for
each plan read its live state, build its execution plan and read who holds its leases.
A plan that fails — its file is invalid, its target or state cannot be read, a
precondition fails — becomes an entry with its error; the others are still planned.
Every document in the report is redacted. It writes nothing and prints nothing: the
``plan`` command renders and prints the report (``report.plan_report``).

Also ``redacted_document``: the one execution-plan document every ``plan`` output shows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elax_plan.cli._changed_from import Loaded, keep_changed
from elax_plan.cli._plan_args import parse_vars
from elax_plan.cli._plan_set import resolve_plan_args
from elax_plan.errors import ElaxError
from elax_plan.execution_plan import checksum
from elax_plan.report.plan_report import apply_command, build_report, plan_entry
from elax_plan.spec import PlanSpec, load_plan, redact_value

if TYPE_CHECKING:
    from elax_plan.state import LeaseStatus, StateBackend

__all__ = ["collect_report", "markdown_report", "redacted_document"]


def redacted_document(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with secrets redacted; its checksum re-taken if that changed anything."""
    clean: dict[str, Any] = redact_value(doc)
    if clean != doc:
        clean["checksum"] = checksum(clean)
    return clean


def collect_report(
    plan_args: Sequence[str],
    var_items: Sequence[str] = (),
    *,
    changed_from: str | None = None,
) -> dict[str, Any]:
    """The plan-report document for ``plan_args`` (files, directories, globs) planned with
    the ``--var`` values ``var_items`` (``NAME=VALUE``), each plan on its own.

    Raises ``ElaxError`` only for what concerns every plan: no plan found, a malformed
    ``--var``, a ``--changed-from`` git cannot answer. A failing plan is an entry."""
    paths = resolve_plan_args(plan_args)
    variables = parse_vars(var_items)
    loaded: list[Loaded] = [(path, _load(path, variables)) for path in paths]
    unchanged: list[str] = []
    if changed_from is not None:
        loaded, unchanged = keep_changed(loaded, changed_from)
    entries = [_plan_one(str(path), spec, var_items) for path, spec in loaded]
    return build_report(entries, changed_from=changed_from, unchanged=unchanged)


def markdown_report(
    plan_args: Sequence[str],
    var_items: Sequence[str] = (),
    *,
    changed_from: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The pull-request comment for ``plan_args`` and the report document it renders."""
    from elax_plan.report.plan_report import render_report_markdown

    report = collect_report(plan_args, var_items, changed_from=changed_from)
    return render_report_markdown(report), report


def _load(path: Path, variables: dict[str, str]) -> PlanSpec | ElaxError:
    try:
        return load_plan(path, variables)
    except ElaxError as exc:
        return exc


def _plan_one(
    plan_file: str, loaded: PlanSpec | ElaxError, var_items: Sequence[str]
) -> dict[str, Any]:
    from elax_plan.live.snapshot import observe
    from elax_plan.planner import build_plan
    from elax_plan.state import open_backend

    command = apply_command(plan_file, var_items)
    if isinstance(loaded, ElaxError):
        return plan_entry(plan_file, command, error=loaded.message)
    spec = loaded
    try:
        backend = open_backend(spec.state.uri, spec.state.storage_options)
        execution_plan = build_plan(spec, observe(spec, backend).live)
    except ElaxError as exc:
        return plan_entry(plan_file, command, name=spec.name, error=exc.message)
    except Exception as exc:  # a bug planning one plan must not hide the others' plans
        return plan_entry(
            plan_file,
            command,
            name=spec.name,
            error=f"internal error ({type(exc).__name__}: {exc}). This is a bug in elax-plan; "
            f"run `elax-plan --debug plan {plan_file}` and report the traceback.",
        )
    error = None
    if not execution_plan.preconditions_ok:
        error = (
            f"a precondition failed: {execution_plan.failed_preconditions()}. `apply` would "
            "stop before writing; fix it and run `elax-plan plan` again."
        )
    return plan_entry(
        plan_file,
        command,
        execution_plan=redacted_document(execution_plan.to_json()),
        error=error,
        leases=held_leases(backend, spec, plan_file),
    )


def held_leases(backend: StateBackend, spec: PlanSpec, plan_file: str) -> list[dict[str, str]]:
    """The plan's lease and its namespace's lease when held, expired, orphaned or corrupt
    (what ``elax-plan status`` shows), as report entries; an unreadable lease is said so."""
    from elax_plan.state import read_status

    try:
        status = read_status(
            backend, spec.name, namespace=spec.target.namespace, plan_file=plan_file
        )
    except ElaxError as exc:
        return [{"lease": "plan", "state": "unknown", "detail": f"cannot read it: {exc.summary}"}]
    out = [lease for lease in (_lease("plan", status.lease),) if lease]
    ns = status.namespace_lease
    same_run = (
        ns is not None
        and ns.info is not None
        and status.lease.info is not None
        and ns.info.plan == spec.name
    )
    if ns is not None and not same_run:
        out += [lease for lease in (_lease("namespace", ns),) if lease]
    return out


def _lease(label: str, lease: LeaseStatus) -> dict[str, str] | None:
    if lease.corrupt is not None:
        return {
            "lease": label,
            "state": "corrupt",
            "detail": f"{lease.key.file_name} is no lease ({lease.corrupt.reason}); "
            "`elax-plan status` shows how to clear it",
        }
    if lease.info is None:
        return None
    state = "expired" if lease.expired else ("holder_gone" if lease.holder_gone else "held")
    return {"lease": label, "state": state, "detail": lease.info.describe(time.time())}
