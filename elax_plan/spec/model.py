"""``PlanSpec``: what the user wrote in the plan file, typed, defaulted and frozen.

Owns the shape of a loaded plan and nothing else: every field already has its
final type (sizes in bytes as ``int``, durations in seconds as ``float``,
metric in elacsym's wire spelling, secrets as ``Secret``, local paths made
absolute). Building these from YAML is ``build``'s job; this module must not
parse, validate or do I/O. ``repr`` of every class is redacted.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from elax_plan.source_format import Format
from elax_plan.spec.secrets import REDACTED, Secret, redact

Metric = Literal["cosine", "euclidean_squared"]
SourceFormat = Format  # one home: source_format, the table validate, plan and apply share
DeliveryMode = Literal["full", "sample", "off"]
FilterOp = Literal["eq", "not_eq", "in", "not_in", "gt", "gte", "lt", "lte", "exists"]
SmokeKind = Literal["sample_vectors", "vector", "bm25"]
QueryKind = Literal["vector_ann", "vector_exact", "bm25", "filtered"]
QUERY_KINDS: tuple[QueryKind, ...] = ("vector_ann", "vector_exact", "bm25", "filtered")

EMBEDDED = "embedded"
RESERVED_PLAN_NAMES = frozenset({"namespaces"})
"""Plan names that cannot name a state folder: <state.uri>/namespaces/ holds the namespace records."""


class _Spec:
    """Shared redacted ``repr`` and JSON-ready ``to_dict`` for the spec dataclasses."""

    __slots__ = ()

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{f.name}={_repr(getattr(self, f.name))}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )
        return redact(f"{type(self).__name__}({fields})")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; secrets appear as ``***``."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        }


def _repr(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_repr(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, _Spec):
        return value.to_dict()
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class TargetSpec(_Spec):
    """``target``: the elacsym deployment and namespace."""

    url: str
    api_key: Secret | None
    store: str
    storage_options: Mapping[str, Any]
    namespace: str
    distance_metric: Metric
    vector_dims: int | None
    max_request_bytes: int
    timeout: float
    # What the operator asserts existing documents were written with (no record of them).
    assume_existing_metric: Metric | None = None
    # The operator asserts the node serialises WAL appends (hazard H1 cannot happen).
    serialises_appends: bool = False

    @property
    def embedded(self) -> bool:
        """Whether the target is the in-process emulator (``url: embedded``)."""
        return self.url == EMBEDDED


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AttributesSpec(_Spec):
    """``source.attributes``: ``include`` is ``None`` for every other field."""

    include: tuple[str, ...] | None
    rename: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class SourceSpec(_Spec):
    """``source``: where the rows come from and how fields map to documents."""

    uris: tuple[str, ...]
    format: SourceFormat
    compression: str
    storage_options: Mapping[str, Any]
    id_field: str
    vector_field: str | None
    attributes: AttributesSpec
    fingerprint: Literal["auto", "content"] = "auto"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class RetrySpec(_Spec):
    """``ingest.retry``: attempts include the first; backoff bounds in seconds."""

    attempts: int
    initial: float
    max: float


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class IngestSpec(_Spec):
    """``ingest``: chunking, concurrency and what to do with bad rows."""

    chunk_bytes: int
    concurrency: int
    on_invalid_row: Literal["fail", "skip"]
    max_invalid_rows: int
    retry: RetrySpec


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ThrottleSpec(_Spec):
    """``throttle``: WAL-lag thresholds (batches) and timings (seconds)."""

    max_wal_lag: int
    resume_wal_lag: int
    poll_interval: float
    stall_timeout: float


IndexerMode = Literal["command", "external", "none"]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class IndexerSpec(_Spec):
    """``indexer``: who advances ``indexed_wal`` (the real elacsym has no indexer daemon).

    ``mode`` is resolved (``command`` for an embedded target, else ``external``, when the
    file leaves it out). ``command`` is the argv with ``{namespace}`` still in it; ``None``
    with mode ``command`` means the embedded emulator compacts in-process.
    """

    mode: IndexerMode
    command: tuple[str, ...] | None
    timeout: float

    def argv(self, namespace: str) -> list[str] | None:
        """The command to run for ``namespace``, or ``None`` when compaction is in-process."""
        if self.command is None:
            return None
        return [arg.replace("{namespace}", namespace) for arg in self.command]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class PreconditionsSpec(_Spec):
    """``preconditions``: ``store_budget`` in bytes, ``None`` for no budget check."""

    max_initial_wal_lag: int
    store_budget: int | None


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AnnParams(_Spec):
    """elacsym ``ann_params`` exactly as written (only the keys given)."""

    params: Mapping[str, Any]

    def to_wire(self) -> dict[str, Any]:
        """The request object: as given, plus ``target_recall`` from ``nprobe_ratio``.

        elacsym ignores the design name ``nprobe_ratio``; its code reads
        ``target_recall`` as the probe fraction (CONTRACT §3.3).
        """
        wire = dict(self.params)
        if "nprobe_ratio" in wire and "target_recall" not in wire:
            wire["target_recall"] = wire["nprobe_ratio"]
        return wire


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class FilterSpec(_Spec):
    """An elacsym leaf filter (CONTRACT §3.6)."""

    op: FilterOp
    field: str
    value: Any = None
    values: tuple[Any, ...] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``filters`` object of a query request."""
        wire: dict[str, Any] = {"op": self.op, "field": self.field}
        if self.op in ("in", "not_in"):
            wire["values"] = list(self.values or ())
        elif self.op != "exists":
            wire["value"] = self.value
        return wire


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Bm25Query(_Spec):
    """A BM25 clause: full-text ``text`` on attribute ``field``."""

    field: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class SmokeQuery(_Spec):
    """One ``verify.smoke_queries`` entry; ``kind`` says which of the three forms it is."""

    name: str
    kind: SmokeKind
    sample_vectors: int | None
    vector: tuple[float, ...] | None
    bm25: Bm25Query | None
    top_k: int
    min_hits: int
    expect_ids: tuple[str, ...]
    filters: FilterSpec | None
    ann_params: AnnParams

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SmokeQuery:
        """The inverse of ``to_dict`` (as the execution plan carries it)."""
        bm25, filters = raw.get("bm25"), raw.get("filters")
        vector = raw.get("vector")
        return cls(
            name=raw["name"],
            kind=raw["kind"],
            sample_vectors=raw.get("sample_vectors"),
            vector=tuple(float(v) for v in vector) if vector is not None else None,
            bm25=Bm25Query(field=bm25["field"], text=bm25["text"]) if bm25 else None,
            top_k=int(raw["top_k"]),
            min_hits=int(raw["min_hits"]),
            expect_ids=tuple(str(i) for i in raw.get("expect_ids") or ()),
            filters=FilterSpec(
                op=filters["op"],
                field=filters["field"],
                value=filters.get("value"),
                values=tuple(filters["values"]) if filters.get("values") is not None else None,
            )
            if filters
            else None,
            ann_params=AnnParams(params=dict((raw.get("ann_params") or {}).get("params") or {})),
        )


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class RecallSpec(_Spec):
    """``verify.recall``: the recall gate (absent means no gate)."""

    num: int
    top_k: int
    min_avg_recall: float
    ann_params: AnnParams
    tune: bool
    seed: int
    # Where the sample's vectors come from: source rows, or the workload's vector queries.
    queries: Literal["source", "workload"] = "source"

    def checks_dict(self) -> dict[str, Any]:
        """``to_dict`` without ``queries`` when it is the default, so a verdict recorded
        before ``queries`` existed still matches (``VerifySpec.checks_digest``)."""
        data = self.to_dict()
        if self.queries == "source":
            data.pop("queries")
        return data


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class BaselineSpec(_Spec):
    """``verify.compare.baseline``: another elacsym (``url`` and ``namespace``, ``api_key`` and
    ``ann_params`` optional), or ``results``, a file of expected results (absolute URL)."""

    url: str | None = None
    namespace: str | None = None
    api_key: Secret | None = None
    ann_params: AnnParams = dataclasses.field(default_factory=lambda: AnnParams(params={}))
    results: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class CompareSpec(_Spec):
    """``verify.compare``: the workload against a baseline, and the overlap SLOs."""

    baseline: BaselineSpec
    min_overlap_at_k: float
    min_overlap_by_kind: Mapping[str, float]
    concurrency: int


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class VerifySpec(_Spec):
    """``verify``: waiting for the indexer, smoke queries and the recall gate."""

    wait_for_index: bool
    index_timeout: float
    # One verification request's HTTP timeout in seconds (not target.timeout): the first
    # vector query after writes rebuilds the IVF under the namespace lock (CONTRACT §3.5).
    timeout: float
    smoke_queries: tuple[SmokeQuery, ...]
    recall: RecallSpec | None
    # Which acknowledged writes are read back from target.store and matched to what was
    # sent (``live.delivery``): every one, a seeded share of them, or none.
    delivery: DeliveryMode = "full"
    # The query workload (an absolute URL), its sample size and seed, and the comparison.
    workload: str | None = None
    workload_sample: int = 200
    workload_seed: int = 0
    compare: CompareSpec | None = None

    def checks_digest(self) -> str:
        """sha256 of what decides the verdict (smoke queries, recall gate, workload and
        comparison): a verification done with other checks says nothing about these. Waiting
        settings are left out, and so are the workload keys when unused (digests recorded
        before they existed still match)."""
        checks: dict[str, Any] = {
            "smoke_queries": [q.to_dict() for q in self.smoke_queries],
            "recall": self.recall.checks_dict() if self.recall is not None else None,
        }
        if self.workload is not None:
            checks["workload"] = [self.workload, self.workload_sample, self.workload_seed]
        if self.compare is not None:
            checks["compare"] = self.compare.to_dict()
        return hashlib.sha256(orjson.dumps(checks, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class WalTrimSpec(_Spec):
    """``wal_trim``: off unless ``enabled``, and only for a node that recovers from its parts.

    ``node_recovers_from_parts`` is the operator's assertion that the target rebuilds a
    namespace from its parts (plus the WAL after them) at restart. No released elacsym
    version does (each replays the WAL alone, CONTRACT §4.1, §5); only ``elax-plan emulator
    --recover-from-parts`` and the embedded emulator, which the assertion starts that way.
    Validation refuses ``enabled`` without it.
    """

    enabled: bool
    mode: Literal["archive", "delete"]
    older_than: float
    keep_last: int
    node_recovers_from_parts: bool = False

    @property
    def allowed(self) -> bool:
        """Whether a trim may run: enabled, on a node asserted to recover from its parts."""
        return self.enabled and self.node_recovers_from_parts


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class StateSpec(_Spec):
    """``state``: the location of this plan's ledger, lease and runs."""

    uri: str
    storage_options: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class SummarySpec(_Spec):
    """``summary``: ``path`` is an absolute local path, or ``None``."""

    path: Path | None


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class PlanSpec(_Spec):
    """A whole plan file, loaded and validated; ``digest`` is the sha256 of the file bytes."""

    version: int
    name: str
    description: str | None
    target: TargetSpec
    source: SourceSpec
    ingest: IngestSpec
    indexer: IndexerSpec
    throttle: ThrottleSpec
    preconditions: PreconditionsSpec
    verify: VerifySpec
    wal_trim: WalTrimSpec
    state: StateSpec
    summary: SummarySpec
    source_path: Path
    digest: str
    # What relative local paths in the file were resolved against (the working directory
    # of the command): the plan shows local paths under it as the file writes them.
    base_dir: Path | None = None
