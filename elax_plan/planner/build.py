"""``build_plan``: the pieces (file steps, preconditions, post-steps) put together into one
``ExecutionPlan``, with its totals, warnings and the inputs ``stale_reasons`` compares.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from elax_plan.execution_plan import (
    ExecutionPlan,
    FileStep,
    PlanInputs,
    PlanTotals,
    PostStep,
    format_count,
    plural,
)
from elax_plan.live.model import (
    NamespaceLive,
)
from elax_plan.live.state_view import LiveState
from elax_plan.planner.delivery import delivery_facts, delivery_warning
from elax_plan.planner.files import file_steps, same_target, total_requests
from elax_plan.planner.indexer import indexer_facts
from elax_plan.planner.post_steps import post_steps, verification_reason
from elax_plan.planner.preconditions import preconditions
from elax_plan.planner.settings import settings_facts
from elax_plan.spec import PlanSpec, is_node_local, redact


def spec_digest(spec: PlanSpec) -> str:
    """sha256 of the effective plan (after interpolation), secrets hidden."""
    data = spec.to_dict()
    data.pop("source_path", None)
    data.pop("digest", None)
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def plan_inputs(spec: PlanSpec, live: LiveState) -> PlanInputs:
    """What a plan computed now depends on (compared by ``stale_reasons``)."""
    ledger, record = live.ledger, live.namespace_record
    digests: dict[str, str] = {}
    if live.workload is not None:
        w, r = live.workload.workload, live.workload.results
        digests[w.file] = w.digest
        if r is not None:
            digests[r.file] = r.digest
    return PlanInputs(
        plan_digest=spec.digest,
        spec_digest=spec_digest(spec),
        ledger_lineage=ledger.lineage if ledger else None,
        ledger_serial=ledger.serial if ledger else None,
        source_fingerprints={f.url: f.fingerprint for f in live.source.files},
        namespace_metric=record.metric if record else None,
        namespace_dims=record.vector_dims if record else None,
        workload_digests=digests,
    )


def build_plan(spec: PlanSpec, live: LiveState) -> ExecutionPlan:
    """The execution plan for ``spec`` given ``live``; pure and deterministic."""
    files = file_steps(spec, live)
    writes = any(s.writes for s in files)
    resuming = any(s.action == "resume" for s in files) or bool(
        live.ledger and live.ledger.run_in_progress and writes
    )
    reason = verification_reason(spec, live, writes)
    post = post_steps(spec, live, verify=bool(reason))
    checks = preconditions(spec, live, files, resuming)
    totals = _totals(spec, files, post)
    return ExecutionPlan(
        plan={
            "name": spec.name,
            "description": spec.description,
            "file": str(spec.source_path),
            "digest": spec.digest,
            **({"base": spec.base_dir.absolute().as_uri()} if spec.base_dir else {}),
        },
        target={
            "url": redact(spec.target.url),
            "store": redact(spec.target.store),
            "namespace": spec.target.namespace,
            "metric": spec.target.distance_metric,
            "vector_dims": spec.target.vector_dims,
            "server": live.target.capabilities.to_json(),
        },
        namespace=_namespace_facts(live.namespace),
        indexer=indexer_facts(spec),
        delivery=delivery_facts(spec),
        settings=settings_facts(spec, totals),
        last_run=_last_run(live),
        observed_at=datetime.fromtimestamp(live.observed_at, UTC).isoformat(),
        files=files,
        preconditions=checks,
        post_steps=post,
        totals=totals,
        inputs=plan_inputs(spec, live),
        warnings=_warnings(spec, live, writes, totals),
        verification_reason=reason,
    )


def _totals(spec: PlanSpec, files: list[FileStep], post: list[PostStep]) -> PlanTotals:
    """The numbers of the closing line; requests counted as apply packs the writing files."""
    writing = [s for s in files if s.writes]
    return PlanTotals(
        files_to_write=len(writing),
        resumed=sum(1 for s in files if s.action == "resume"),
        rows=sum(s.est_rows for s in writing),
        bytes=sum(s.est_bytes for s in writing),
        requests=total_requests([s.est_bytes for s in writing], spec.ingest.chunk_bytes),
        skipped=sum(1 for s in files if s.action == "skip"),
        gone=sum(1 for s in files if s.action == "gone"),
        checks=sum(1 for p in post if p.is_check),
        destructive=sum(1 for p in post if p.destructive),
        changes=bool(writing) or bool(post),
    )


def _warnings(spec: PlanSpec, live: LiveState, writes: bool, totals: PlanTotals) -> list[str]:
    """What the reviewer should know that is not a step: another target's ledger, the
    concurrency hazard, files gone from the source, and the last run when nothing changes."""
    ledger = live.ledger
    warnings: list[str] = []
    if ledger is not None and not same_target(spec, ledger):
        warnings.append(
            "The state ledger was written for another store or namespace "
            f"({ledger.target.get('store')} / {ledger.target.get('namespace')}); "
            "every file is planned as new."
        )
    if not spec.target.embedded and not is_node_local(spec.target.store):
        warnings.append(
            f"target.store is {spec.target.store.split('://', 1)[0]}://…: elacsym keeps "
            "router.json and the WAL on the node's local disk (CONTRACT §4.1), so point "
            "target.store at its data root (a local path, a mounted volume or sftp://); "
            "apply stops after its first write if the store does not show it."
        )
    if spec.indexer.mode == "none" and writes:
        warnings.append(
            "indexer.mode none: nobody indexes during this run, so writes are not paused on "
            "WAL lag and verification neither waits for the index nor checks parts."
        )
    off = delivery_warning(spec)
    if off is not None and writes:
        warnings.append(off)
    if totals.gone:
        warnings.append(
            f"{plural(totals.gone, 'file')} in the ledger "
            + ("is" if totals.gone == 1 else "are")
            + " gone from the source; "
            + ("its" if totals.gone == 1 else "their")
            + " rows stay in the namespace (nothing is deleted)."
        )
    excluded = live.source.excluded
    if excluded:
        warnings.append(
            f"source.uri also matched {format_count(len(excluded))} file(s) of this plan's own "
            f"state under {live.source.state_root} (such as {excluded[0]}); they are left out "
            "of the source."
        )
    listed = {f.url for f in live.source.files}
    for url, lost in sorted(live.lost_writes.items()):
        if url not in listed:
            warnings.append(
                f"Acknowledged rows of {url} were lost on the server ({lost.reason}), and the "
                "file is gone from the source, so they cannot be written again."
            )
    if not totals.changes and ledger is not None and ledger.verification != "passed":
        where = ledger.summary_location
        warnings.append(
            f"Last run {ledger.last_run_id or ''}: verification {ledger.verification}"
            + (f"; summary at {where}" if where else "")
            + "."
        )
    return warnings


def _last_run(live: LiveState) -> dict[str, Any] | None:
    """The plan's last run as its ledger records it (shown, not warned about, when its
    verification passed)."""
    ledger = live.ledger
    if ledger is None or ledger.last_run_id is None:
        return None
    return {
        "run_id": ledger.last_run_id,
        "verification": ledger.verification,
        "summary": ledger.summary_location,
    }


def _namespace_facts(ns: NamespaceLive) -> dict[str, Any]:
    """The live router facts the plan's header shows."""
    return {
        "exists": ns.exists,
        "epoch": ns.epoch,
        "wal_highwater": ns.wal_highwater,
        "indexed_wal": ns.indexed_wal,
        "wal_lag": ns.wal_lag,
        "parts": len(ns.parts),
        "part_rows": sum(p.rows for p in ns.parts),
    }
