"""``ExecutionPlan``: what the planner decided, as typed steps and as a versioned JSON document.

Pure: no I/O, no clock. Owns the step dataclasses (one per source file, one per
precondition, one per post-step), the closing ``Plan: …`` line, the JSON form
(``"format_version": "1.2"``, described by ``schemas/execution-plan.schema.json``)
that every renderer reads and ``apply`` executes, and the staleness check of a
saved plan: ``PlanInputs`` records what a plan was computed from, and
``stale_reasons`` names exactly what changed since.

``to_json`` and ``from_json`` are exact inverses: ``apply`` runs the steps of the
document it showed (or was given), never a plan re-derived from the plan file.
A document carries a ``checksum`` of everything else in it, so ``load_document``
refuses a corrupt or hand-edited saved plan with the place that is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import orjson

from elax_plan.errors import SavedPlanError

FORMAT_VERSION = "1.2"  # 1.1: the indexer the applier drives; 1.2: delivery proof, recall calls

FileAction = Literal["create", "update", "resume", "skip", "gone"]
SYMBOLS: Mapping[str, str] = {
    "create": "+",
    "update": "~",
    "resume": ">",
    "skip": "=",
    "gone": "-",
}
WRITING_ACTIONS = ("create", "update", "resume")


@dataclass(frozen=True, slots=True)
class FileStep:
    """One source file and what apply will do with it."""

    url: str
    action: FileAction
    size: int
    fingerprint: str | None  # None for a file that is gone from the source
    previous_fingerprint: str | None = None
    resume_from: Mapping[str, Any] | None = None  # the ledger's resume point, for "resume"
    est_rows: int = 0  # rows still to write (0 for skip/gone)
    est_bytes: int = 0  # request bytes still to send
    est_requests: int = 0
    reason: str = ""

    @property
    def id(self) -> str:
        return f"file:{self.url}"

    @property
    def writes(self) -> bool:
        return self.action in WRITING_ACTIONS

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "symbol": SYMBOLS[self.action],
            "url": self.url,
            "size": self.size,
            "fingerprint": self.fingerprint,
            "previous_fingerprint": self.previous_fingerprint,
            "resume_from": dict(self.resume_from) if self.resume_from is not None else None,
            "est_rows": self.est_rows,
            "est_bytes": self.est_bytes,
            "est_requests": self.est_requests,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FileStep:
        return cls(
            url=raw["url"],
            action=raw["action"],
            size=int(raw["size"]),
            fingerprint=raw.get("fingerprint"),
            previous_fingerprint=raw.get("previous_fingerprint"),
            resume_from=raw.get("resume_from"),
            est_rows=int(raw.get("est_rows", 0)),
            est_bytes=int(raw.get("est_bytes", 0)),
            est_requests=int(raw.get("est_requests", 0)),
            reason=raw.get("reason", ""),
        )


@dataclass(frozen=True, slots=True)
class Check:
    """A precondition with the live value it was judged on."""

    key: str
    title: str
    ok: bool
    live: str
    required: str
    detail: str = ""

    @property
    def id(self) -> str:
        return f"pre:{self.key}"

    def describe(self) -> str:
        """``title: live (required …) — detail``, for messages about a failed check."""
        return f"{self.title}: {self.live} (required {self.required})" + (
            f" — {self.detail}" if self.detail else ""
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "ok": self.ok,
            "live": self.live,
            "required": self.required,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Check:
        return cls(
            key=str(raw["id"]).removeprefix("pre:"),
            title=raw["title"],
            ok=bool(raw["ok"]),
            live=raw["live"],
            required=raw["required"],
            detail=raw.get("detail", ""),
        )


PostKind = Literal[
    "wait_for_index",
    "verify_parts",
    "wal_replayable",
    "smoke_query",
    "recall",
    "compare",
    "wal_trim",
]


@dataclass(frozen=True, slots=True)
class PostStep:
    """A step after the writes: a verification (a check) or the WAL trim."""

    kind: PostKind
    key: str
    title: str
    detail: str
    destructive: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    warning: str = ""

    @property
    def id(self) -> str:
        return f"post:{self.key}"

    @property
    def is_check(self) -> bool:
        return self.kind != "wal_trim"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "symbol": "-" if self.kind == "wal_trim" else "?",
            "title": self.title,
            "detail": self.detail,
            "check": self.is_check,
            "destructive": self.destructive,
            "params": dict(self.params),
            "warning": self.warning,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PostStep:
        return cls(
            kind=raw["kind"],
            key=str(raw["id"]).removeprefix("post:"),
            title=raw["title"],
            detail=raw["detail"],
            destructive=bool(raw["destructive"]),
            params=dict(raw.get("params") or {}),
            warning=raw.get("warning", ""),
        )


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """What a plan was computed from; any difference makes a saved plan stale."""

    plan_digest: str  # sha256 of the plan file's bytes
    spec_digest: str  # sha256 of the effective plan (after --var and ${ENV}), secrets hidden
    ledger_lineage: str | None
    ledger_serial: int | None
    source_fingerprints: Mapping[str, str]
    namespace_metric: str | None
    namespace_dims: int | None
    # The query workload's and expected results' sha256 by file (empty without a workload;
    # then left out of the document, so plans without one read and checksum as before).
    workload_digests: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "plan_digest": self.plan_digest,
            "spec_digest": self.spec_digest,
            "ledger_lineage": self.ledger_lineage,
            "ledger_serial": self.ledger_serial,
            "source_fingerprints": dict(sorted(self.source_fingerprints.items())),
            "namespace_metric": self.namespace_metric,
            "namespace_dims": self.namespace_dims,
        }
        if self.workload_digests:
            doc["workload_digests"] = dict(sorted(self.workload_digests.items()))
        return doc

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PlanInputs:
        return cls(
            plan_digest=raw["plan_digest"],
            spec_digest=raw["spec_digest"],
            ledger_lineage=raw.get("ledger_lineage"),
            ledger_serial=raw.get("ledger_serial"),
            source_fingerprints=dict(raw.get("source_fingerprints") or {}),
            namespace_metric=raw.get("namespace_metric"),
            namespace_dims=raw.get("namespace_dims"),
            workload_digests=dict(raw.get("workload_digests") or {}),
        )


def stale_reasons(saved: PlanInputs, current: PlanInputs) -> list[str]:
    """Every difference between a saved plan's inputs and the current ones, in plain words."""
    reasons: list[str] = []
    if saved.plan_digest != current.plan_digest:
        reasons.append("the plan file changed")
    elif saved.spec_digest != current.spec_digest:
        reasons.append("the effective plan changed (a --var or environment value differs)")
    if saved.ledger_lineage != current.ledger_lineage:
        reasons.append(
            f"the state ledger was replaced (lineage {saved.ledger_lineage} → "
            f"{current.ledger_lineage})"
        )
    elif saved.ledger_serial != current.ledger_serial:
        reasons.append(
            f"the state ledger changed (serial {saved.ledger_serial} → {current.ledger_serial})"
        )
    old, new = saved.source_fingerprints, current.source_fingerprints
    for url in sorted(set(old) | set(new)):
        if url not in new:
            reasons.append(f"source file {url} is gone")
        elif url not in old:
            reasons.append(f"source file {url} is new")
        elif old[url] != new[url]:
            reasons.append(f"source file {url} changed ({old[url]} → {new[url]})")
    if (saved.namespace_metric, saved.namespace_dims) != (
        current.namespace_metric,
        current.namespace_dims,
    ):
        reasons.append(
            "the namespace record changed (metric/dims "
            f"{saved.namespace_metric}/{saved.namespace_dims} → "
            f"{current.namespace_metric}/{current.namespace_dims})"
        )
    old, new = saved.workload_digests, current.workload_digests
    for file in sorted(set(old) | set(new)):
        if old.get(file) != new.get(file):
            reasons.append(f"the query workload file {file} changed")
    return reasons


@dataclass(frozen=True, slots=True)
class PlanTotals:
    """The numbers of the closing line."""

    files_to_write: int
    resumed: int
    rows: int
    bytes: int
    requests: int
    skipped: int
    gone: int
    checks: int
    destructive: int
    changes: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "files_to_write": self.files_to_write,
            "resumed": self.resumed,
            "rows": self.rows,
            "bytes": self.bytes,
            "requests": self.requests,
            "skipped": self.skipped,
            "gone": self.gone,
            "checks": self.checks,
            "destructive": self.destructive,
            "changes": self.changes,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PlanTotals:
        return cls(**{f: raw[f] for f in cls.__dataclass_fields__})


def format_count(n: int) -> str:
    return f"{n:,}"


def format_bytes(n: int) -> str:
    """Binary units with two decimals, as in the SPEC's example line (``4.71 GiB``)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{format_count(n)} {word if n == 1 else (many or word + 's')}"


def summary_line(t: PlanTotals) -> str:
    """``Plan: 12 files to write (3 resumed), ~1,204,332 rows, 4.71 GiB in ~4,820 requests; …``
    (rows and requests are estimates until the files are read)."""
    if not t.changes:
        return (
            f"No changes. {plural(t.skipped, 'file')} unchanged"
            + (f", {plural(t.gone, 'file')} gone from the source" if t.gone else "")
            + "; the last run's verification completed."
        )
    head = f"Plan: {plural(t.files_to_write, 'file')} to write"
    if t.resumed:
        head += f" ({format_count(t.resumed)} resumed)"
    head += (
        f", ~{plural(t.rows, 'row')}, {format_bytes(t.bytes)} in ~{plural(t.requests, 'request')}"
    )
    parts = [head, f"{format_count(t.skipped)} skipped"]
    if t.gone:
        parts.append(f"{format_count(t.gone)} gone")
    parts.append(plural(t.checks, "check"))
    parts.append(plural(t.destructive, "destructive step"))
    return "; ".join(parts) + "."


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """The planner's decision: header facts, file steps, preconditions, post-steps, inputs."""

    plan: Mapping[str, Any]  # name, description, file, digest
    target: Mapping[str, Any]  # url (no credentials), store, namespace, metric, vector_dims
    namespace: Mapping[str, Any]  # live router facts
    observed_at: str  # ISO-8601 UTC of the live-state reading
    files: Sequence[FileStep]
    preconditions: Sequence[Check]
    post_steps: Sequence[PostStep]
    totals: PlanTotals
    inputs: PlanInputs
    warnings: Sequence[str] = ()
    verification_reason: str = ""
    # Who advances indexed_wal, as apply will treat it: mode, the argv (None: in-process),
    # timeout_s and a sentence for reviewers (``planner.indexer``).
    indexer: Mapping[str, Any] = field(default_factory=dict)
    # How apply proves its writes landed: mode, sample_every (None: off) and a sentence for
    # reviewers (``planner.delivery``).
    delivery: Mapping[str, Any] = field(default_factory=dict)
    # The settings a reviewer approves and the write-time estimate (``planner.settings``).
    settings: Mapping[str, Any] = field(default_factory=dict)
    # The plan's last run (run_id, verification, summary), if it has one.
    last_run: Mapping[str, Any] | None = None

    @property
    def changes(self) -> bool:
        return self.totals.changes

    @property
    def preconditions_ok(self) -> bool:
        return all(c.ok for c in self.preconditions)

    def post_step(self, kind: PostKind) -> PostStep | None:
        """The first post-step of ``kind``, if the plan has one."""
        return next((p for p in self.post_steps if p.kind == kind), None)

    def failed_preconditions(self) -> str:
        """Every failed precondition, described, joined by ``; ``.

        A detail is often whole sentences (the target's says what to check): its closing
        period is left off, so the caller ends the text once."""
        return "; ".join(c.describe().rstrip(".") for c in self.preconditions if not c.ok)

    def to_json(self) -> dict[str, Any]:
        doc = self._document()
        doc["checksum"] = checksum(doc)
        return doc

    def _document(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "plan": dict(self.plan),
            "target": dict(self.target),
            "namespace": dict(self.namespace),
            "indexer": dict(self.indexer),
            "delivery": dict(self.delivery),
            "settings": dict(self.settings),
            "last_run": dict(self.last_run) if self.last_run is not None else None,
            "observed_at": self.observed_at,
            "files": [f.to_json() for f in self.files],
            "preconditions": [c.to_json() for c in self.preconditions],
            "post_steps": [p.to_json() for p in self.post_steps],
            "verification_reason": self.verification_reason,
            "totals": self.totals.to_json(),
            "summary_line": summary_line(self.totals),
            "warnings": list(self.warnings),
            "inputs": self.inputs.to_json(),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ExecutionPlan:
        """The plan a document describes; the document must be valid (``load_document``)."""
        return cls(
            plan=dict(doc["plan"]),
            target=dict(doc["target"]),
            namespace=dict(doc["namespace"]),
            indexer=dict(doc["indexer"]),
            delivery=dict(doc["delivery"]),
            settings=dict(doc["settings"]),
            last_run=dict(doc["last_run"]) if doc["last_run"] is not None else None,
            observed_at=doc["observed_at"],
            files=[FileStep.from_json(f) for f in doc["files"]],
            preconditions=[Check.from_json(c) for c in doc["preconditions"]],
            post_steps=[PostStep.from_json(p) for p in doc["post_steps"]],
            totals=PlanTotals.from_json(doc["totals"]),
            inputs=PlanInputs.from_json(doc["inputs"]),
            warnings=list(doc["warnings"]),
            verification_reason=doc["verification_reason"],
        )


# --- documents ---------------------------------------------------------------------------------


def checksum(doc: Mapping[str, Any]) -> str:
    """sha256 of a document without its ``checksum`` field, keys sorted."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@cache
def _schema_validator() -> Any:
    # jsonschema is imported here: only loading a saved plan needs it, not every command.
    import jsonschema

    raw = resources.files("elax_plan").joinpath("schemas/execution-plan.schema.json").read_bytes()
    schema = orjson.loads(raw)
    validator = jsonschema.validators.validator_for(schema)
    return validator(schema)


_RESAVE = "Save the plan again with `elax-plan plan PLAN.yaml --out FILE` and apply that file."


def check_document(doc: Any, where: str) -> dict[str, Any]:
    """``doc`` if it is a valid execution-plan document; else ``SavedPlanError`` naming the
    JSON path that is wrong (``/post_steps/2/params: 'num' is a required property``)."""
    if not isinstance(doc, dict):
        raise SavedPlanError(f"{where} is not an elax-plan execution plan (not a JSON object).")
    if doc.get("format_version") != FORMAT_VERSION:
        raise SavedPlanError(
            f"{where} has format_version {doc.get('format_version')!r}; this elax-plan "
            f"reads {FORMAT_VERSION!r}.",
            hint=_RESAVE,
        )
    from jsonschema.exceptions import best_match

    error = best_match(_schema_validator().iter_errors(doc))
    if error is not None:
        pointer = "/" + "/".join(str(p) for p in error.absolute_path)
        raise SavedPlanError(
            f"{where}: at {pointer}: {error.message}.",
            detail="The saved plan is corrupt or was edited by hand.",
            hint=_RESAVE,
        )
    if doc["checksum"] != checksum(doc):
        raise SavedPlanError(
            f"{where} was changed after `elax-plan plan --out` wrote it (its checksum does "
            "not match its content).",
            detail="A saved plan is applied exactly as reviewed, so it must not be edited.",
            hint=_RESAVE,
        )
    return doc


def load_document(data: bytes, where: str) -> ExecutionPlan:
    """Parse, validate and check a saved plan's bytes; errors are ``SavedPlanError``."""
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise SavedPlanError(f"{where} is not UTF-8 text ({exc.reason}).", hint=_RESAVE) from exc
    except json.JSONDecodeError as exc:
        raise SavedPlanError(
            f"{where}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}).", hint=_RESAVE
        ) from exc
    return ExecutionPlan.from_json(check_document(doc, where))
