"""The plan file: schema, ``${…}`` interpolation, YAML with line marks → ``PlanSpec``.

Pure apart from reading the plan file itself and looking up ``summary.path``
on the local filesystem (``stat``/``access``, nothing created): nothing here
touches the network, the target or the state store. The public surface is ``__all__``;
the submodules are private.

``load_plan(path, variables, env)`` returns a frozen ``PlanSpec`` or raises
``PlanInvalid`` (a ``PlanFileError``) whose ``issues`` list every problem as
``FILE:LINE:COL: message``.
"""

from __future__ import annotations

from elax_plan.spec.build import normalise_metric
from elax_plan.spec.interpolate import parse_var_assignments
from elax_plan.spec.issues import PlanInvalid, PlanIssue
from elax_plan.spec.loader import load_plan, parse_plan
from elax_plan.spec.locations import (
    is_local,
    is_node_local,
    is_within,
    local_path,
    resolve_location,
)
from elax_plan.spec.model import (
    AnnParams,
    AttributesSpec,
    Bm25Query,
    FilterSpec,
    IndexerSpec,
    IngestSpec,
    Metric,
    PlanSpec,
    PreconditionsSpec,
    RecallSpec,
    RetrySpec,
    SmokeQuery,
    SourceSpec,
    StateSpec,
    SummarySpec,
    TargetSpec,
    ThrottleSpec,
    VerifySpec,
    WalTrimSpec,
)
from elax_plan.spec.schema import plan_schema
from elax_plan.spec.secrets import (
    Secret,
    display_url,
    is_credential_env_name,
    redact,
    redact_bytes,
    redact_value,
    reveal,
)
from elax_plan.spec.units import format_duration, format_size, parse_duration, parse_size

__all__ = [
    "AnnParams",
    "AttributesSpec",
    "Bm25Query",
    "FilterSpec",
    "IndexerSpec",
    "IngestSpec",
    "Metric",
    "PlanInvalid",
    "PlanIssue",
    "PlanSpec",
    "PreconditionsSpec",
    "RecallSpec",
    "RetrySpec",
    "Secret",
    "SmokeQuery",
    "SourceSpec",
    "StateSpec",
    "SummarySpec",
    "TargetSpec",
    "ThrottleSpec",
    "VerifySpec",
    "WalTrimSpec",
    "display_url",
    "format_duration",
    "format_size",
    "is_credential_env_name",
    "is_local",
    "is_node_local",
    "is_within",
    "load_plan",
    "local_path",
    "normalise_metric",
    "parse_duration",
    "parse_plan",
    "parse_size",
    "parse_var_assignments",
    "plan_schema",
    "redact",
    "redact_bytes",
    "redact_value",
    "resolve_location",
    "reveal",
]
