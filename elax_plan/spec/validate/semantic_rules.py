"""Semantic rules the schema cannot express, each reported at the offending node.

Owns the checks across keys: ``chunk_bytes ≤ max_request_bytes``, sizes and durations that
parse and lie within their bounds (the constants below: every duration at most 30d, so apply's
clocks cannot overflow), ``resume_wal_lag < max_wal_lag``, ingest and verify consistency
(smoke queries, filters, ANN parameters), WAL trim only on a node asserted to recover from
its parts (``_wal_trim_checks``: the real node rebuilds from the WAL alone), and hands ``source`` to ``source_rules``, the
workload and comparison to ``compare_rules``, and the
URLs and paths to ``location_rules``. Runs on defaulted data, after the schema check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elax_plan.spec.model import EMBEDDED, RESERVED_PLAN_NAMES
from elax_plan.spec.units import format_duration, format_size, parse_duration, parse_size
from elax_plan.spec.validate.checker import Checker, path_text, value_at
from elax_plan.spec.validate.compare_rules import compare_checks
from elax_plan.spec.validate.location_rules import location_checks
from elax_plan.spec.validate.source_rules import source_checks
from elax_plan.spec.yaml_loader import NodePath

# The bounds of every size and duration (README "Limits"; the schema describes them too).
MIN_REQUEST_BYTES = 1024
MAX_REQUEST_BYTES = 1024**3  # target.max_request_bytes and ingest.chunk_bytes: 1GiB
MAX_STORE_BUDGET = 1024**5  # preconditions.store_budget: 1024TiB
MAX_DURATION_SECONDS = 30 * 86400  # every duration but wal_trim.older_than: 30d
MAX_TRIM_AGE_SECONDS = 365 * 86400  # wal_trim.older_than: 365d
MIN_POLL_INTERVAL_SECONDS = 0.01  # throttle.poll_interval: 10ms


def semantic_issues(
    checker: Checker, d: dict[str, Any], base_dir: Path, *, allow_memory_state: bool = False
) -> None:
    """Every cross-key rule on the defaulted data ``d``."""
    name = d.get("name")
    if isinstance(name, str) and name in RESERVED_PLAN_NAMES:
        checker.add(
            ("name",),
            f"name {name!r} is reserved: <state.uri>/{name}/ holds the namespace records; "
            "choose another plan name",
        )
    _size_checks(checker, d)
    durations = _duration_checks(checker, d)
    _throttle_checks(checker, d, durations)
    _ingest_checks(checker, d)
    _indexer_checks(checker, d)
    source_checks(checker, d)
    _verify_checks(checker, d)
    compare_checks(checker, d)
    _wal_trim_checks(checker, d)
    location_checks(checker, d, base_dir, allow_memory_state=allow_memory_state)


def _size(checker: Checker, d: dict[str, Any], path: NodePath) -> int | None:
    value = value_at(d, path)
    if value is None or isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        if path not in checker.flagged:
            checker.add(path, f"{path_text(path)}{checker.shown(path, value)} {exc}")
        return None


def _duration(checker: Checker, d: dict[str, Any], path: NodePath) -> float | None:
    value = value_at(d, path)
    if not isinstance(value, str):
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        if path not in checker.flagged:
            checker.add(path, f"{path_text(path)}{checker.shown(path, value)} {exc}")
        return None


def _size_checks(checker: Checker, d: dict[str, Any]) -> None:
    chunk_path: NodePath = ("ingest", "chunk_bytes")
    cap_path: NodePath = ("target", "max_request_bytes")
    budget_path: NodePath = ("preconditions", "store_budget")
    chunk = _bounded_size(checker, d, chunk_path, MAX_REQUEST_BYTES)
    cap = _bounded_size(checker, d, cap_path, MAX_REQUEST_BYTES)
    budget = _bounded_size(checker, d, budget_path, MAX_STORE_BUDGET)
    for path, value in ((chunk_path, chunk), (cap_path, cap)):
        if value is not None and value < MIN_REQUEST_BYTES:
            checker.add(
                path,
                f"{path_text(path)} is {value} bytes, below the minimum of 1KiB; a request must "
                "hold at least one row (write e.g. 1MiB)",
            )
    if chunk is not None and cap is not None and chunk > cap and chunk >= MIN_REQUEST_BYTES:
        checker.add(
            chunk_path,
            f"ingest.chunk_bytes ({format_size(chunk)}) is above target.max_request_bytes "
            f"({format_size(cap)}); the server would refuse such requests (413). Lower chunk_bytes "
            "to at most max_request_bytes",
        )
    if budget is not None and budget == 0:
        checker.add(
            budget_path,
            "preconditions.store_budget is 0, so no backfill can fit; give a budget such as "
            "50GiB, or remove the key for no budget check",
        )


def _bounded_size(checker: Checker, d: dict[str, Any], path: NodePath, maximum: int) -> int | None:
    """The size at ``path`` in bytes, or ``None`` when absent, unparsable or above ``maximum``."""
    value = _size(checker, d, path)
    if value is not None and value > maximum:
        checker.add(
            path,
            f"{path_text(path)}{checker.shown(path, value_at(d, path))} is above the maximum of "
            f"{format_size(maximum)}; write a smaller size",
        )
        return None
    return value


# (path, minimum, maximum) in seconds; a minimum of 0 means "longer than 0".
_DURATIONS: tuple[tuple[NodePath, float, float], ...] = (
    (("target", "timeout"), 0, MAX_DURATION_SECONDS),
    (("ingest", "retry", "initial"), 0, MAX_DURATION_SECONDS),
    (("ingest", "retry", "max"), 0, MAX_DURATION_SECONDS),
    (("throttle", "poll_interval"), MIN_POLL_INTERVAL_SECONDS, MAX_DURATION_SECONDS),
    (("throttle", "stall_timeout"), 0, MAX_DURATION_SECONDS),
    (("verify", "index_timeout"), 0, MAX_DURATION_SECONDS),
    (("verify", "timeout"), 0, MAX_DURATION_SECONDS),
    (("indexer", "timeout"), 0, MAX_DURATION_SECONDS),
)


def _duration_checks(checker: Checker, d: dict[str, Any]) -> dict[NodePath, float]:
    """Check every duration's bounds; return those that are within them, in seconds."""
    good: dict[NodePath, float] = {}
    for path, minimum, maximum in _DURATIONS:
        seconds = _duration(checker, d, path)
        if seconds is None:
            continue
        if seconds <= 0:
            checker.add(path, f"{path_text(path)} must be longer than 0 (e.g. 1s)")
        elif seconds < minimum:
            checker.add(
                path,
                f"{path_text(path)}{checker.shown(path, value_at(d, path))} is shorter than the "
                f"minimum of {format_duration(minimum)}; polling faster only loads the target "
                "(the default is 1s)",
            )
        elif not _within_maximum(checker, d, path, seconds, maximum):
            continue
        else:
            good[path] = seconds
    trim_path: NodePath = ("wal_trim", "older_than")
    older_than = _duration(checker, d, trim_path)
    if older_than is not None:
        _within_maximum(checker, d, trim_path, older_than, MAX_TRIM_AGE_SECONDS)
    initial = good.get(("ingest", "retry", "initial"))
    longest = good.get(("ingest", "retry", "max"))
    if initial is not None and longest is not None and longest < initial:
        checker.add(
            ("ingest", "retry", "max"),
            "ingest.retry.max is shorter than ingest.retry.initial; the longest backoff must be "
            "at least the first one",
        )
    return good


def _within_maximum(
    checker: Checker, d: dict[str, Any], path: NodePath, seconds: float, maximum: float
) -> bool:
    if seconds <= maximum:
        return True
    checker.add(
        path,
        f"{path_text(path)}{checker.shown(path, value_at(d, path))} is longer than the maximum "
        f"of {format_duration(maximum)}; write a shorter duration",
    )
    return False


def _int(d: dict[str, Any], path: NodePath) -> int | None:
    value = value_at(d, path)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _throttle_checks(checker: Checker, d: dict[str, Any], durations: dict[NodePath, float]) -> None:
    high = _int(d, ("throttle", "max_wal_lag"))
    low = _int(d, ("throttle", "resume_wal_lag"))
    if high is not None and low is not None and high >= 1 and low >= high:
        checker.add(
            ("throttle", "resume_wal_lag"),
            f"throttle.resume_wal_lag ({low}) must be below throttle.max_wal_lag ({high}): writes "
            "pause while the lag is above max_wal_lag and resume once it is at most "
            "resume_wal_lag (and below max_wal_lag)",
        )
    poll = durations.get(("throttle", "poll_interval"))
    stall = durations.get(("throttle", "stall_timeout"))
    if poll is not None and stall is not None and stall < poll:
        checker.add(
            ("throttle", "stall_timeout"),
            "throttle.stall_timeout is shorter than throttle.poll_interval; a stall could be "
            "declared before the lag is polled once. Raise stall_timeout",
        )


def _indexer_checks(checker: Checker, d: dict[str, Any]) -> None:
    mode = value_at(d, ("indexer", "mode"))
    command = value_at(d, ("indexer", "command"))
    embedded = value_at(d, ("target", "url")) == EMBEDDED
    if mode == "command" and command is None and not embedded:
        checker.add(
            ("indexer", "command"),
            "indexer.mode: command needs indexer.command, the argv that indexes the namespace "
            "on the node's data root (e.g. [elax-cli, --root, /var/lib/elacsym, compact, "
            '"{namespace}"]); or use mode: external when something else runs it',
        )
    elif command is not None and mode not in ("command", None):
        checker.add(
            ("indexer", "command"),
            f"indexer.command is only run with mode: command (this plan says {mode}); set "
            "mode: command or remove the command",
        )


def _wal_trim_checks(checker: Checker, d: dict[str, Any]) -> None:
    """``wal_trim.enabled: true`` only with ``node_recovers_from_parts: true``.

    validate has no network, and nothing a node answers says how it rebuilds a namespace
    anyway; every released elacsym version replays the WAL alone at restart (CONTRACT §4.1,
    §5), so trimming is refused unless the plan says, in so many words, that its node
    recovers from its parts. ``plan`` and ``apply`` load the plan through this check, so a
    saved plan with a trim step is refused too.
    """
    if value_at(d, ("wal_trim", "enabled")) is not True:
        return
    if value_at(d, ("wal_trim", "node_recovers_from_parts")) is True:
        return
    checker.add(
        ("wal_trim", "enabled"),
        "wal_trim.enabled: true is refused: every released elacsym version (72e6998, ac782e1, "
        "c152c2d) rebuilds a namespace from its WAL alone when a node restarts, so the "
        "documents of trimmed WAL objects are gone after the next restart. Remove wal_trim "
        "(the summary reports the WAL's size and growth; `elax-plan wal restore PLAN` puts "
        "back objects an earlier run archived). Only a node that recovers from its parts may "
        "trim — `elax-plan emulator --recover-from-parts`, or target.url: embedded — and the "
        "plan must say so with wal_trim.node_recovers_from_parts: true",
    )


def _ingest_checks(checker: Checker, d: dict[str, Any]) -> None:
    mode = value_at(d, ("ingest", "on_invalid_row"))
    limit = _int(d, ("ingest", "max_invalid_rows"))
    if mode == "fail" and limit:
        checker.add(
            ("ingest", "max_invalid_rows"),
            "ingest.max_invalid_rows only applies with on_invalid_row: skip (with fail, the "
            "first invalid row stops the run); set on_invalid_row: skip or remove "
            "max_invalid_rows",
        )


def _verify_checks(checker: Checker, d: dict[str, Any]) -> None:
    dims = _int(d, ("target", "vector_dims"))
    queries = value_at(d, ("verify", "smoke_queries"))
    if isinstance(queries, list):
        names: dict[str, int] = {}
        for index, query in enumerate(queries):
            if isinstance(query, dict):
                _smoke_checks(checker, ("verify", "smoke_queries", index), query, dims, names)
    recall = value_at(d, ("verify", "recall"))
    if isinstance(recall, dict):
        path: NodePath = ("verify", "recall", "ann_params")
        params = recall.get("ann_params")
        if isinstance(params, dict):
            _ann_checks(checker, path, params)
            if params.get("use_ivf") is False:
                checker.add(
                    (*path, "use_ivf"),
                    "recall with use_ivf: false compares exact search with itself and elacsym "
                    "reports avg_recall 0.0; remove use_ivf from the recall gate's ann_params",
                )


def _smoke_checks(
    checker: Checker,
    path: NodePath,
    query: dict[str, Any],
    dims: int | None,
    names: dict[str, int],
) -> None:
    name = query.get("name")
    if isinstance(name, str):
        if name in names:
            checker.add(
                (*path, "name"),
                f'smoke query name "{name}" is already used by verify.smoke_queries'
                f"[{names[name]}]; give each query its own name",
            )
        names.setdefault(name, path[-1] if isinstance(path[-1], int) else 0)
    forms = [k for k in ("sample_vectors", "vector", "bm25") if query.get(k) is not None]
    if not forms:
        checker.add(
            path,
            f"{path_text(path)} needs exactly one of sample_vectors: N, vector: […] or "
            "bm25: {field, text}",
        )
    elif len(forms) > 1:
        checker.add(
            (*path, forms[1]),
            f"{path_text(path)} has both {forms[0]} and {forms[1]}; a smoke query is one of "
            "sample_vectors, vector or bm25. Split it into two queries",
            at_key=True,
        )
    vector = query.get("vector")
    if isinstance(vector, list) and dims is not None and len(vector) != dims:
        checker.add(
            (*path, "vector"),
            f"{path_text((*path, 'vector'))} has {len(vector)} numbers but target.vector_dims is "
            f"{dims}",
        )
    top_k = query.get("top_k")
    min_hits = query.get("min_hits")
    if isinstance(top_k, int) and isinstance(min_hits, int) and min_hits > top_k:
        checker.add(
            (*path, "min_hits"),
            f"min_hits ({min_hits}) is above top_k ({top_k}); a query returns at most top_k "
            "hits. Raise top_k or lower min_hits",
        )
    expect = query.get("expect_ids")
    if isinstance(expect, list) and expect:
        if query.get("sample_vectors") is not None:
            checker.add(
                (*path, "expect_ids"),
                "expect_ids does not apply to sample_vectors (each sampled row must find "
                "itself); use it with vector or bm25 queries",
                at_key=True,
            )
        elif isinstance(top_k, int) and len(expect) > top_k:
            checker.add(
                (*path, "expect_ids"),
                f"expect_ids lists {len(expect)} ids but top_k is {top_k}; they cannot all be "
                "among the hits. Raise top_k",
                at_key=True,
            )
    filters = query.get("filters")
    if isinstance(filters, dict):
        _filter_checks(checker, (*path, "filters"), filters)
    params = query.get("ann_params")
    if isinstance(params, dict):
        _ann_checks(checker, (*path, "ann_params"), params)


def _filter_checks(checker: Checker, path: NodePath, flt: dict[str, Any]) -> None:
    op = flt.get("op")
    if op in ("in", "not_in") and "value" in flt:
        checker.add(
            (*path, "value"),
            f"op {op} takes values: [a list], not value; rename the key",
            at_key=True,
        )
    elif op in ("eq", "not_eq", "gt", "gte", "lt", "lte") and "values" in flt:
        checker.add(
            (*path, "values"),
            f"op {op} takes one value:, not values; use op in for a list",
            at_key=True,
        )
    elif op == "exists":
        for key in ("value", "values"):
            if key in flt:
                checker.add((*path, key), f"op exists takes no {key}; remove it", at_key=True)
    value = flt.get("value")
    if op in ("gt", "gte", "lt", "lte") and isinstance(value, bool):
        checker.add(
            (*path, "value"),
            f"op {op} compares numbers; true/false cannot be compared. Use op eq",
        )


def _ann_checks(checker: Checker, path: NodePath, params: dict[str, Any]) -> None:
    coarse = params.get("coarse_bits")
    rerank = params.get("rerank_bits")
    if isinstance(coarse, int) and isinstance(rerank, int) and rerank < coarse:
        checker.add(
            (*path, "rerank_bits"),
            f"rerank_bits ({rerank}) must be ≥ coarse_bits ({coarse}); elacsym rejects the "
            "query otherwise",
        )
    ratio = params.get("nprobe_ratio")
    target = params.get("target_recall")
    if isinstance(ratio, int | float) and isinstance(target, int | float) and ratio != target:
        checker.add(
            (*path, "nprobe_ratio"),
            "nprobe_ratio and target_recall are the same setting (elacsym reads target_recall) "
            "but differ here; keep one of them",
            at_key=True,
        )
