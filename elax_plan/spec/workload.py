"""The query workload (``verify.workload``) and the expected-results file of a results
baseline: their lines parsed into queries and results, or every bad line as an issue.

Pure: bytes in, frozen data or ``WorkloadInvalid`` out (``FILE:LINE:COL: message`` per bad
line, like the plan file's). Owns the shape of a workload line (``name``?, exactly one of
``vector`` and ``bm25``, ``filters``?, ``top_k``?, ``ann_params``?; the ``workloadQuery`` of
``schemas/plan.schema.json``) and of a result line (``name`` or ``line``, ``ids``,
``scores``?), each query's kind (``vector_ann``, ``vector_exact``, ``bm25``, ``filtered``),
the seeded sample of a large workload, and matching results to queries. Reading the files is
``live.workload``'s job; running the queries is ``apply``'s.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from elax_plan.errors import WorkloadInvalid
from elax_plan.spec.issues import PlanIssue
from elax_plan.spec.model import AnnParams, Bm25Query, FilterSpec, QueryKind
from elax_plan.spec.schema import plan_schema

FLOAT32_MAX = 3.4028234663852886e38
DEFAULT_TOP_K = 10
RESULTS_HINT = (
    'Fix the lines named (one JSON object a line: "name" or "line", "ids", optional "scores"), '
    "then run `elax-plan validate` again."
)


@dataclass(frozen=True, slots=True)
class WorkloadQuery:
    """One query of the workload; ``line`` is its 1-based line in the file."""

    line: int
    name: str  # as written, or "line N" for an unnamed query
    named: bool
    vector: tuple[float, ...] | None
    bm25: Bm25Query | None
    filters: FilterSpec | None
    top_k: int
    ann_params: AnnParams

    @property
    def kind(self) -> QueryKind:
        """filtered (any query with filters), bm25, vector_exact (use_ivf: false), vector_ann."""
        if self.filters is not None:
            return "filtered"
        if self.bm25 is not None:
            return "bm25"
        if self.ann_params.params.get("use_ivf") is False:
            return "vector_exact"
        return "vector_ann"


@dataclass(frozen=True, slots=True)
class Workload:
    """Every query of a workload file, in file order, and the sha256 of its bytes."""

    file: str
    digest: str
    queries: tuple[WorkloadQuery, ...]

    def sample(self, n: int, seed: int) -> tuple[WorkloadQuery, ...]:
        """At most ``n`` queries: all of them, or a ``seed``-ed choice kept in file order."""
        if len(self.queries) <= n:
            return self.queries
        picked = sorted(random.Random(seed).sample(range(len(self.queries)), n))
        return tuple(self.queries[i] for i in picked)

    def kinds(self) -> dict[str, int]:
        """How many queries of each kind, in a fixed order (kinds with none left out)."""
        counts: dict[str, int] = {}
        for q in self.queries:
            counts[q.kind] = counts.get(q.kind, 0) + 1
        order = ("vector_ann", "vector_exact", "bm25", "filtered")
        return {k: counts[k] for k in order if k in counts}


@dataclass(frozen=True, slots=True)
class ExpectedResult:
    """What the baseline system returned for one query: ids best first, scores if given."""

    line: int  # in the results file
    ids: tuple[str, ...]
    scores: tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class ExpectedResults:
    """A results file, keyed by the workload line of the query each result answers."""

    file: str
    digest: str
    by_query_line: Mapping[int, ExpectedResult]


@dataclass(frozen=True, slots=True)
class LoadedWorkload:
    """The plan's workload and, with a results baseline, the expected results."""

    workload: Workload
    results: ExpectedResults | None


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def _validator(definition: str) -> Any:
    # jsonschema is imported here: only plans with a workload need it.
    import jsonschema

    schema = {"$defs": plan_schema()["$defs"], "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


def _lines(data: bytes, file: str) -> list[tuple[int, bytes]]:
    """The non-blank lines of ``data`` with their 1-based numbers; undecodable text is an issue."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        issue = PlanIssue(file, "is not UTF-8 text here; save the file as UTF-8", line, 1)
        raise WorkloadInvalid(file, [issue]) from None
    return [(n, raw) for n, raw in enumerate(data.split(b"\n"), start=1) if raw.strip()]


def _load(raw: bytes, file: str, line: int, issues: list[PlanIssue]) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        issues.append(PlanIssue(file, f"not valid JSON ({exc.msg})", line, exc.colno or 1))
        return None
    if not isinstance(value, dict):
        issues.append(PlanIssue(file, "each line must be one JSON object", line, 1))
        return None
    return value


def _schema_issues(
    value: dict[str, Any], definition: str, file: str, line: int, issues: list[PlanIssue]
) -> bool:
    """Schema problems of one line as issues; True when there were none."""
    found = sorted(_validator(definition).iter_errors(value), key=lambda e: list(e.path))
    for error in found:
        where = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties" and not error.absolute_path:
            allowed = ", ".join(plan_schema()["$defs"][definition]["properties"])
            message = f"{error.message}; a line may hold {allowed}"
        else:
            message = f"{where}: {error.message}" if where else error.message
        issues.append(PlanIssue(file, message, line, 1))
    return not found


def _vector_issue(vector: list[Any], dims: int | None) -> str | None:
    if dims is not None and len(vector) != dims:
        return f"vector has {len(vector)} numbers; target.vector_dims is {dims}"
    for i, v in enumerate(vector):
        if not math.isfinite(v) or abs(v) > FLOAT32_MAX:
            return f"vector[{i}] is outside the float32 range elacsym stores"
    return None


def _query(value: dict[str, Any], line: int, dims: int | None) -> WorkloadQuery | str:
    """The query of a schema-valid line, or what is wrong with it."""
    vector, bm25 = value.get("vector"), value.get("bm25")
    if (vector is None) == (bm25 is None):
        return "a query has exactly one of vector and bm25" + (
            " (hybrid queries are not compared)" if vector is not None else ""
        )
    if vector is not None:
        problem = _vector_issue(vector, dims)
        if problem is not None:
            return problem
    filters = value.get("filters")
    name = value.get("name")
    return WorkloadQuery(
        line=line,
        name=name if name is not None else f"line {line}",
        named=name is not None,
        vector=tuple(float(v) for v in vector) if vector is not None else None,
        bm25=Bm25Query(field=bm25["field"], text=bm25["text"]) if bm25 is not None else None,
        filters=FilterSpec(
            op=filters["op"],
            field=filters["field"],
            value=filters.get("value"),
            values=tuple(filters["values"]) if filters.get("values") is not None else None,
        )
        if filters is not None
        else None,
        top_k=int(value.get("top_k") or DEFAULT_TOP_K),
        ann_params=AnnParams(params=dict(value.get("ann_params") or {})),
    )


def parse_workload(data: bytes, file: str, *, vector_dims: int | None = None) -> Workload:
    """Every query of a workload file; ``WorkloadInvalid`` naming each bad line."""
    issues: list[PlanIssue] = []
    queries: list[WorkloadQuery] = []
    names: dict[str, int] = {}
    for line, raw in _lines(data, file):
        value = _load(raw, file, line, issues)
        if value is None or not _schema_issues(value, "workloadQuery", file, line, issues):
            continue
        query = _query(value, line, vector_dims)
        if isinstance(query, str):
            issues.append(PlanIssue(file, query, line, 1))
            continue
        if query.named and query.name in names:
            issues.append(
                PlanIssue(
                    file,
                    f'name "{query.name}" is already used on line {names[query.name]}; give each '
                    "query its own name (results are matched by it)",
                    line,
                    1,
                )
            )
            continue
        names[query.name] = line
        queries.append(query)
    if not issues and not queries:
        issues.append(PlanIssue(file, "holds no queries; write one JSON query a line", None))
    if issues:
        raise WorkloadInvalid(file, issues)
    return Workload(file, digest_of(data), tuple(queries))


def parse_results(data: bytes, file: str, workload: Workload) -> ExpectedResults:
    """A results file matched to ``workload``'s queries (by name, else line number);
    ``WorkloadInvalid`` naming each bad line and each query without a result."""
    issues: list[PlanIssue] = []
    by_name = {q.name: q for q in workload.queries if q.named}
    by_line = {q.line: q for q in workload.queries}
    found: dict[int, ExpectedResult] = {}
    for line, raw in _lines(data, file):
        value = _load(raw, file, line, issues)
        if value is None or not _schema_issues(value, "expectedResult", file, line, issues):
            continue
        problem, query = _match(value, by_name, by_line, workload.file)
        if query is None:
            issues.append(PlanIssue(file, problem, line, 1))
            continue
        ids, scores = value["ids"], value.get("scores")
        if scores is not None and len(scores) != len(ids):
            issues.append(
                PlanIssue(file, f"{len(scores)} scores for {len(ids)} ids; give one each", line, 1)
            )
            continue
        if query.line in found:
            issues.append(
                PlanIssue(
                    file,
                    f"a second result for {query.name} (the first is on line "
                    f"{found[query.line].line}); keep one",
                    line,
                    1,
                )
            )
            continue
        found[query.line] = ExpectedResult(
            line,
            tuple(str(i) for i in ids),
            tuple(float(s) for s in scores) if scores is not None else None,
        )
    missing = [q for q in workload.queries if q.line not in found]
    for q in missing:
        issues.append(
            PlanIssue(
                file,
                f"no result for the query {_label(q)} ({workload.file}:{q.line}); add a line "
                f'{{"{"name" if q.named else "line"}": …, "ids": […]}}',
                None,
            )
        )
    if issues:
        raise WorkloadInvalid(file, issues, what="results file", hint=RESULTS_HINT)
    return ExpectedResults(file, digest_of(data), found)


def _label(q: WorkloadQuery) -> str:
    return f'"{q.name}"' if q.named else f"on line {q.line}"


def _match(
    value: dict[str, Any],
    by_name: Mapping[str, WorkloadQuery],
    by_line: Mapping[int, WorkloadQuery],
    workload_file: str,
) -> tuple[str, WorkloadQuery | None]:
    name, line = value.get("name"), value.get("line")
    if (name is None) == (line is None):
        return 'a result names its query by exactly one of "name" and "line"', None
    if name is not None:
        query = by_name.get(name)
        return f'no query named "{name}" in {workload_file}', query
    query = by_line.get(int(line or 0))
    return f"no query on line {line} of {workload_file}", query
