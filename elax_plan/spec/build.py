"""Validated, defaulted plan data → ``PlanSpec``.

Owns the conversions from what the user wrote to what the tool uses: sizes to
bytes, durations to seconds, ``cosine_distance`` to ``cosine``, credentials to
``Secret`` (empty ones left out), integer ids to strings, local paths to absolute ``file://`` URLs,
lists and mappings to tuples and read-only mappings. It runs only on data that
``validate.check`` accepted and must not report problems (an exception here is
a bug, not a user error).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from elax_plan.source_format import resolve
from elax_plan.spec.locations import local_path, resolve_location
from elax_plan.spec.model import (
    EMBEDDED,
    AnnParams,
    AttributesSpec,
    BaselineSpec,
    Bm25Query,
    CompareSpec,
    FilterSpec,
    IndexerSpec,
    IngestSpec,
    Metric,
    PlanSpec,
    PreconditionsSpec,
    RecallSpec,
    RetrySpec,
    SmokeKind,
    SmokeQuery,
    SourceSpec,
    StateSpec,
    SummarySpec,
    TargetSpec,
    ThrottleSpec,
    VerifySpec,
    WalTrimSpec,
)
from elax_plan.spec.secrets import Secret, is_credential_name
from elax_plan.spec.units import parse_duration, parse_size

# The design documents' spelling and the wire spelling (CONTRACT §8.3).
METRIC_ALIASES: dict[str, Metric] = {
    "cosine_distance": "cosine",
    "cosine": "cosine",
    "euclidean_squared": "euclidean_squared",
}


def normalise_metric(name: str) -> Metric:
    """``cosine_distance``/``cosine`` → ``cosine``; ``euclidean_squared`` stays."""
    return METRIC_ALIASES[name]


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _options(raw: Any) -> Mapping[str, Any]:
    """Storage options, frozen, with credential values wrapped in ``Secret``.

    An empty credential (``key: ${AWS_ACCESS_KEY_ID:-}`` with the variable unset) is left
    out, so the filesystem driver falls back to its own credential chain (environment,
    profile, instance role) instead of signing with an empty key.
    """

    def wrap(value: Any, key: str) -> Any:
        if isinstance(value, Mapping):
            return MappingProxyType(
                {k: wrap(v, k) for k, v in value.items() if not _empty_credential(k, v)}
            )
        if isinstance(value, list):
            return tuple(wrap(v, key) for v in value)
        if isinstance(value, str) and value and is_credential_name(key):
            return Secret(value)
        return value

    return cast(Mapping[str, Any], wrap(dict(raw or {}), ""))


def _empty_credential(key: str, value: Any) -> bool:
    return value == "" and is_credential_name(key)


def build_plan(
    data: Mapping[str, Any], *, source_path: Path, digest: str, base_dir: Path
) -> PlanSpec:
    """The ``PlanSpec`` for validated data (relative local paths resolved against ``base_dir``)."""
    target = _target(data["target"], base_dir)
    return PlanSpec(
        version=int(data["version"]),
        name=data["name"],
        description=data.get("description") or None,
        target=target,
        source=_source(data["source"], base_dir),
        ingest=_ingest(data["ingest"]),
        indexer=_indexer(data["indexer"], embedded=target.embedded),
        throttle=_throttle(data["throttle"]),
        preconditions=_preconditions(data["preconditions"]),
        verify=_verify(data["verify"], base_dir),
        wal_trim=_wal_trim(data["wal_trim"]),
        state=StateSpec(
            uri=resolve_location(data["state"]["uri"], base_dir),
            storage_options=_options(data["state"].get("storage_options")),
        ),
        summary=SummarySpec(
            path=local_path(data["summary"]["path"], base_dir)
            if data["summary"].get("path")
            else None
        ),
        source_path=source_path,
        digest=digest,
        base_dir=base_dir,
    )


def _target(raw: Mapping[str, Any], base_dir: Path) -> TargetSpec:
    url = raw["url"].strip()
    api_key = raw.get("api_key")
    return TargetSpec(
        url=EMBEDDED if url == EMBEDDED else url.rstrip("/"),
        api_key=Secret(api_key) if api_key else None,
        store=resolve_location(raw["store"], base_dir),
        storage_options=_options(raw.get("storage_options")),
        namespace=raw["namespace"],
        distance_metric=normalise_metric(raw["distance_metric"]),
        vector_dims=raw.get("vector_dims"),
        max_request_bytes=parse_size(raw["max_request_bytes"]),
        timeout=parse_duration(raw["timeout"]),
        assume_existing_metric=(
            normalise_metric(raw["assume_existing_metric"])
            if raw.get("assume_existing_metric")
            else None
        ),
        serialises_appends=bool(raw.get("serialises_appends")),
    )


def _source(raw: Mapping[str, Any], base_dir: Path) -> SourceSpec:
    uri = raw["uri"]
    written = (uri,) if isinstance(uri, str) else tuple(uri)
    fmt = resolve(written[0], raw.get("format"), raw["compression"]).format  # validated
    attributes = raw.get("attributes") or {}
    include = attributes.get("include")
    return SourceSpec(
        uris=tuple(resolve_location(u, base_dir) for u in written),
        format=fmt,
        compression=raw["compression"],
        storage_options=_options(raw.get("storage_options")),
        id_field=raw["id_field"],
        vector_field=raw.get("vector_field"),
        attributes=AttributesSpec(
            include=tuple(include) if include is not None else None,
            rename=MappingProxyType(dict(attributes.get("rename") or {})),
        ),
        fingerprint=raw["fingerprint"],
    )


def _ingest(raw: Mapping[str, Any]) -> IngestSpec:
    retry = raw["retry"]
    return IngestSpec(
        chunk_bytes=parse_size(raw["chunk_bytes"]),
        concurrency=raw["concurrency"],
        on_invalid_row=raw["on_invalid_row"],
        max_invalid_rows=raw["max_invalid_rows"],
        retry=RetrySpec(
            attempts=retry["attempts"],
            initial=parse_duration(retry["initial"]),
            max=parse_duration(retry["max"]),
        ),
    )


def _indexer(raw: Mapping[str, Any], *, embedded: bool) -> IndexerSpec:
    command = raw.get("command")
    return IndexerSpec(
        mode=raw.get("mode") or ("command" if embedded else "external"),
        command=tuple(command) if command is not None else None,
        timeout=parse_duration(raw["timeout"]),
    )


def _throttle(raw: Mapping[str, Any]) -> ThrottleSpec:
    return ThrottleSpec(
        max_wal_lag=raw["max_wal_lag"],
        resume_wal_lag=raw["resume_wal_lag"],
        poll_interval=parse_duration(raw["poll_interval"]),
        stall_timeout=parse_duration(raw["stall_timeout"]),
    )


def _preconditions(raw: Mapping[str, Any]) -> PreconditionsSpec:
    budget = raw.get("store_budget")
    return PreconditionsSpec(
        max_initial_wal_lag=raw["max_initial_wal_lag"],
        store_budget=parse_size(budget) if budget is not None else None,
    )


def _ann(raw: Any) -> AnnParams:
    return AnnParams(params=_freeze(dict(raw or {})))


def _filter(raw: Any) -> FilterSpec | None:
    if raw is None:
        return None
    values = raw.get("values")
    return FilterSpec(
        op=raw["op"],
        field=raw["field"],
        value=_freeze(raw.get("value")),
        values=_freeze(values) if values is not None else None,
    )


def _smoke(raw: Mapping[str, Any]) -> SmokeQuery:
    kind: SmokeKind
    if raw.get("sample_vectors") is not None:
        kind = "sample_vectors"
    elif raw.get("vector") is not None:
        kind = "vector"
    else:
        kind = "bm25"
    bm25 = raw.get("bm25")
    vector = raw.get("vector")
    return SmokeQuery(
        name=raw["name"],
        kind=kind,
        sample_vectors=raw.get("sample_vectors"),
        vector=tuple(float(v) for v in vector) if vector is not None else None,
        bm25=Bm25Query(field=bm25["field"], text=bm25["text"]) if bm25 else None,
        top_k=raw["top_k"],
        min_hits=raw["min_hits"],
        # Ids are strings on the wire (CONTRACT §2.1); integer ids become their decimal form.
        expect_ids=tuple(str(i) for i in raw.get("expect_ids") or ()),
        filters=_filter(raw.get("filters")),
        ann_params=_ann(raw.get("ann_params")),
    )


def _compare(raw: Mapping[str, Any] | None, base_dir: Path) -> CompareSpec | None:
    if raw is None:
        return None
    baseline = raw["baseline"]
    api_key = baseline.get("api_key")
    results = baseline.get("results")
    url = baseline.get("url")
    return CompareSpec(
        baseline=BaselineSpec(
            url=url.strip().rstrip("/") if url else None,
            namespace=baseline.get("namespace"),
            api_key=Secret(api_key) if api_key else None,
            ann_params=_ann(baseline.get("ann_params")),
            results=resolve_location(results, base_dir) if results else None,
        ),
        min_overlap_at_k=float(raw["min_overlap_at_k"]),
        min_overlap_by_kind=MappingProxyType(
            {k: float(v) for k, v in (raw.get("min_overlap_by_kind") or {}).items()}
        ),
        concurrency=raw["concurrency"],
    )


def _verify(raw: Mapping[str, Any], base_dir: Path) -> VerifySpec:
    recall = raw.get("recall")
    workload = raw.get("workload")
    return VerifySpec(
        wait_for_index=raw["wait_for_index"],
        index_timeout=parse_duration(raw["index_timeout"]),
        timeout=parse_duration(raw["timeout"]),
        delivery=raw["delivery"],
        smoke_queries=tuple(_smoke(q) for q in raw.get("smoke_queries") or ()),
        recall=RecallSpec(
            num=recall["num"],
            top_k=recall["top_k"],
            min_avg_recall=float(recall["min_avg_recall"]),
            ann_params=_ann(recall.get("ann_params")),
            tune=recall["tune"],
            seed=recall["seed"],
            queries=recall["queries"],
        )
        if recall is not None
        else None,
        workload=resolve_location(workload, base_dir) if workload else None,
        workload_sample=raw["workload_sample"],
        workload_seed=raw["workload_seed"],
        compare=_compare(raw.get("compare"), base_dir),
    )


def _wal_trim(raw: Mapping[str, Any]) -> WalTrimSpec:
    return WalTrimSpec(
        enabled=raw["enabled"],
        mode=raw["mode"],
        older_than=parse_duration(raw["older_than"]),
        keep_last=raw["keep_last"],
        node_recovers_from_parts=raw["node_recovers_from_parts"],
    )
