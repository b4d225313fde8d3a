"""The namespace record and the per-run files: everything in state besides ledger and lease.

Owns ``<state.uri>/namespaces/<ns>.json`` (the distance metric and vector
dims every plan so far has written into a namespace — elacsym itself does not
store them) and ``<plan>/runs/<run_id>/`` (``events.ndjson``,
``rejects.ndjson``, ``duplicates.ndjson``, ``summary.md``, ``summary.json``), plus finding a plan's
runs. It must not render summaries or decide what an event means, and must
not touch the ledger or lease.

The namespace record is shared by every plan that writes the namespace, so
it is updated by compare-and-swap only. Run files belong to the run that
holds the plan's lease; events and rejects are appended (see
``StateBackend.append_lines`` for what that costs on S3 — batch them).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from elax_plan.errors import Conflict, StateError
from elax_plan.spec.secrets import redact, redact_value
from elax_plan.state.backend import StateBackend
from elax_plan.state.layout import (
    RUN_ID,
    Clock,
    dumps,
    iso,
    loads_object,
    namespace_key,
    parse_iso,
    run_key,
    runs_prefix,
)

RECORD_VERSION = 1
_RECORD_ATTEMPTS = 20

# ----------------------------------------------------------------- namespace record


@dataclass(frozen=True, slots=True)
class NamespaceRecord:
    """What plans have written into an elacsym namespace."""

    namespace: str
    metric: str
    vector_dims: int | None
    plans: tuple[str, ...]
    updated: float

    def conflict(self, metric: str, vector_dims: int | None) -> str | None:
        """Why a plan with ``metric``/``vector_dims`` may not write here; None when it may."""
        if metric != self.metric:
            return (
                f"namespace '{self.namespace}' holds {self.metric} vectors (written by"
                f" {', '.join(self.plans)}) and this plan uses {metric}; mixing metrics across"
                " parts is unsupported"
            )
        if None not in (vector_dims, self.vector_dims) and vector_dims != self.vector_dims:
            return (
                f"namespace '{self.namespace}' holds {self.vector_dims}-dimensional"
                f" vectors and this plan declares {vector_dims}"
            )
        return None

    def to_json(self) -> bytes:
        return dumps(
            {
                "record_version": RECORD_VERSION,
                "namespace": self.namespace,
                "metric": self.metric,
                "vector_dims": self.vector_dims,
                "plans": list(self.plans),
                "updated": iso(self.updated),
            }
        )

    @classmethod
    def from_json(cls, data: bytes, location: str) -> NamespaceRecord:
        raw = loads_object(data, location, "namespace record")
        try:
            version = raw["record_version"]
            if version != RECORD_VERSION:
                raise ValueError(f"record_version {version!r} is not {RECORD_VERSION}")
            dims = raw.get("vector_dims")
            plans = raw["plans"]
            if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool)):
                raise ValueError("vector_dims must be an integer or null")
            if not isinstance(plans, list) or not all(isinstance(p, str) for p in plans):
                raise ValueError("plans must be a list of names")
            namespace, metric = raw["namespace"], raw["metric"]
            if not isinstance(namespace, str) or not isinstance(metric, str):
                raise ValueError("namespace and metric must be strings")
            return cls(
                namespace=namespace,
                metric=metric,
                vector_dims=dims,
                plans=tuple(plans),
                updated=parse_iso(raw["updated"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"The namespace record at {location} is not valid ({exc}).",
                "It was edited by hand or written by a newer elax-plan.",
                "Restore it, or upgrade elax-plan if a newer version wrote it.",
            ) from None


def read_namespace_record(backend: StateBackend, namespace: str) -> NamespaceRecord | None:
    """The namespace's record, or ``None`` when no plan has written it yet."""
    key = namespace_key(namespace)
    current = backend.read(key)
    if current is None:
        return None
    return NamespaceRecord.from_json(current.data, backend.location(key))


def record_namespace_use(
    backend: StateBackend,
    namespace: str,
    *,
    metric: str,
    vector_dims: int | None,
    plan_name: str,
    clock: Clock = time.time,
) -> NamespaceRecord:
    """Record that ``plan_name`` writes ``metric``/``vector_dims`` into ``namespace``.

    Creates the record, or adds the plan (and dims, when first known) by
    compare-and-swap. Raises ``StateError`` when the namespace already holds
    another metric or dims, and writes nothing then.
    """
    key = namespace_key(namespace)
    location = backend.location(key)
    for _ in range(_RECORD_ATTEMPTS):
        current = backend.read(key)
        if current is None:
            record = NamespaceRecord(namespace, metric, vector_dims, (plan_name,), clock())
            try:
                backend.create(key, record.to_json())
            except Conflict:
                continue
            return record
        existing = NamespaceRecord.from_json(current.data, location)
        problem = existing.conflict(metric, vector_dims)
        if problem is not None:
            raise StateError(
                f"Plan '{plan_name}' cannot write into namespace '{namespace}': {problem}.",
                f"The namespace record is {location}.",
                "Use a new namespace for this metric/dims, or fix target.distance_metric"
                " and target.vector_dims in the plan.",
            )
        plans = existing.plans if plan_name in existing.plans else (*existing.plans, plan_name)
        dims = existing.vector_dims if existing.vector_dims is not None else vector_dims
        if plans == existing.plans and dims == existing.vector_dims:
            return existing
        record = NamespaceRecord(namespace, existing.metric, dims, plans, clock())
        try:
            backend.replace(key, record.to_json(), current.version)
        except Conflict:
            continue
        return record
    raise StateError(
        f"Could not update the namespace record {location}: other plans kept changing it.",
        None,
        "Retry; if it keeps failing, check which plans are applying to this namespace.",
    )


# ------------------------------------------------------------------------ run files


def new_run_id(clock: Clock = time.time) -> str:
    """A run id that sorts by start time: ``20261125T190000.123Z-1a2b3c``."""
    moment = datetime.fromtimestamp(clock(), UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f".{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{secrets.token_hex(3)}"


def list_runs(backend: StateBackend, plan_name: str) -> list[str]:
    """The plan's run ids that have stored files, oldest first."""
    prefix = runs_prefix(plan_name)
    ids = {key[len(prefix) + 1 :].split("/", 1)[0] for key in backend.list(prefix)}
    return sorted(run_id for run_id in ids if RUN_ID.fullmatch(run_id))


def last_run_id(backend: StateBackend, plan_name: str) -> str | None:
    """The newest run id with stored files, or ``None``."""
    runs = list_runs(backend, plan_name)
    return runs[-1] if runs else None


def _json_line(record: Mapping[str, Any]) -> bytes:
    return orjson.dumps(redact_value(dict(record)))


class RunFiles:
    """The files of one run under ``<plan>/runs/<run_id>/``."""

    EVENTS = "events.ndjson"
    REJECTS = "rejects.ndjson"
    DUPLICATES = "duplicates.ndjson"
    SUMMARY_MD = "summary.md"
    SUMMARY_JSON = "summary.json"

    def __init__(self, backend: StateBackend, plan_name: str, run_id: str) -> None:
        self.backend = backend
        self.plan = plan_name
        self.run_id = run_id
        run_key(plan_name, run_id, self.EVENTS)  # validates both names now

    def key(self, name: str) -> str:
        return run_key(self.plan, self.run_id, name)

    def location(self, name: str) -> str:
        return self.backend.location(self.key(name))

    def append_events(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Append events (lag samples, throttle actions, retries); batch them on S3."""
        self.backend.append_lines(self.key(self.EVENTS), [_json_line(e) for e in events])

    def append_rejects(self, rejects: Iterable[Mapping[str, Any]]) -> None:
        """Append skipped rows (file, line/row, reason)."""
        self.backend.append_lines(self.key(self.REJECTS), [_json_line(r) for r in rejects])

    def append_duplicates(self, duplicates: Iterable[Mapping[str, Any]]) -> None:
        """Append ids read more than once (id, rows, first and last file and line/row)."""
        self.backend.append_lines(self.key(self.DUPLICATES), [_json_line(d) for d in duplicates])

    def read_events(self) -> list[dict[str, Any]]:
        return self._read_lines(self.EVENTS)

    def read_rejects(self) -> list[dict[str, Any]]:
        return self._read_lines(self.REJECTS)

    def read_duplicates(self) -> list[dict[str, Any]]:
        return self._read_lines(self.DUPLICATES)

    def _read_lines(self, name: str) -> list[dict[str, Any]]:
        current = self.backend.read(self.key(name))
        if current is None:
            return []
        out: list[dict[str, Any]] = []
        for number, line in enumerate(current.data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise StateError(
                    f"Line {number} of {self.location(name)} is not valid JSON ({exc}).",
                    None,
                    "The file was damaged or edited; repair or remove that line.",
                ) from None
            if not isinstance(value, dict):
                raise StateError(
                    f"Line {number} of {self.location(name)} is not a JSON object.",
                    None,
                    "The file was damaged or edited; repair or remove that line.",
                )
            out.append(value)
        return out

    def write_summary(self, markdown: str, record: Mapping[str, Any]) -> None:
        """Store the rendered summary and the record it was rendered from."""
        self.backend.put(self.key(self.SUMMARY_JSON), dumps(dict(record)))
        self.backend.put(self.key(self.SUMMARY_MD), redact(markdown).encode())

    def read_summary_markdown(self) -> str | None:
        current = self.backend.read(self.key(self.SUMMARY_MD))
        if current is None:
            return None
        try:
            return current.data.decode()
        except UnicodeDecodeError:
            raise StateError(
                f"The summary {self.location(self.SUMMARY_MD)} is not UTF-8 text.",
                None,
                f"Read the record {self.location(self.SUMMARY_JSON)} instead.",
            ) from None

    def read_summary_record(self) -> dict[str, Any] | None:
        current = self.backend.read(self.key(self.SUMMARY_JSON))
        if current is None:
            return None
        return loads_object(current.data, self.location(self.SUMMARY_JSON), "summary record")
