"""Verification after the writes (SPEC §5 step 6): index caught up, parts, smoke queries, recall.

Owns each check's request and its verdict with evidence: what was asked,
what came back, what was expected, and for a failure the likely cause and
what to try. Queries always carry ``min_wal_sequence`` = the last
acknowledged sequence and use the portable body of CONTRACT §3.9. Query
vectors are sampled from the source with a fixed seed, reading a bounded
number of rows, never the whole source. It only reads: the namespace is not
changed here.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from elax_plan.apply.readers import open_source
from elax_plan.apply.rows import MappedRow, RowMapper
from elax_plan.apply.throttle import RouterReading
from elax_plan.errors import ElaxError
from elax_plan.live.model import NamespaceLive
from elax_plan.spec import PlanSpec, SmokeQuery, redact, reveal

SAMPLE_POOL_PER_QUERY = 20
SAMPLE_POOL_MIN = 1_000
TUNE_TARGET_RECALLS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass
class CheckResult:
    """One verification step's verdict and the numbers behind it."""

    key: str
    title: str
    passed: bool
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)
    advice: str = ""
    # No verdict on the data (the index never caught up, the check could not run): the run's
    # verification stays pending, so the next apply runs it again, as the advice promises.
    incomplete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "passed": self.passed,
            "detail": self.detail,
            "evidence": self.evidence,
            "advice": self.advice,
        }


@dataclass(frozen=True, slots=True)
class SampledRow:
    id: str
    vector: list[float]


def sample_source_rows(spec: PlanSpec, urls: Sequence[str], n: int, seed: int) -> list[SampledRow]:
    """``n`` valid rows with vectors, chosen with ``seed`` from a bounded read of the source."""
    if n <= 0 or not urls:
        return []
    rng = random.Random(seed)
    order = list(urls)
    rng.shuffle(order)
    a = spec.source.attributes
    mapper = RowMapper(
        spec.source.id_field, spec.source.vector_field, a.include, a.rename, spec.target.vector_dims
    )
    pool: list[MappedRow] = []
    want = max(SAMPLE_POOL_MIN, n * SAMPLE_POOL_PER_QUERY)
    options = dict(reveal(dict(spec.source.storage_options)))
    for url in order:
        rows = open_source(url, spec.source.format, spec.source.compression, options, None)
        for raw in rows:
            mapped = mapper.map(raw)
            if isinstance(mapped, MappedRow):
                pool.append(mapped)
            if len(pool) >= want:
                break
        if len(pool) >= want:
            break
    picked = rng.sample(pool, min(n, len(pool)))
    out = []
    for row in picked:
        doc = orjson.loads(row.document)
        vector = doc.get("vector")
        if vector:
            out.append(SampledRow(doc["id"], [float(v) for v in vector]))
    return out


class Verifier:
    """Runs the checks of ``spec.verify`` against the target after a run's writes."""

    def __init__(
        self,
        spec: PlanSpec,
        client: httpx.Client,
        read_namespace: Callable[[], NamespaceLive],
        *,
        last_acked_seq: int | None,
        wal_range: tuple[int, int] | None,
        upserts_acked: int,
        resends: int,
        epoch_at_start: int,
        source_urls: Sequence[str],
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[str, dict[str, Any]], None] = lambda *_: None,
    ) -> None:
        self.spec = spec
        self.client = client
        self.read_namespace = read_namespace
        self.last_acked_seq = last_acked_seq
        self.wal_range = wal_range
        self.upserts_acked = upserts_acked
        self.resends = resends
        self.epoch_at_start = epoch_at_start
        self.source_urls = source_urls
        # Waiting on ``stop`` (set by SIGINT/SIGTERM) keeps a long index_timeout interruptible.
        self.stop = stop or threading.Event()
        self.clock = clock
        self.on_event = on_event
        ns = quote(spec.target.namespace, safe="")
        self.query_path = f"/v2/namespaces/{ns}/query"
        self.recall_path = f"/v1/namespaces/{ns}/_debug/recall"
        self._samples: dict[tuple[int, int], list[SampledRow]] = {}

    # --- the whole sequence -------------------------------------------------------------------

    def run(self) -> list[CheckResult]:
        """Every check in order; stops early after a failed wait or when ``stop`` is set."""
        v = self.spec.verify
        steps: list[tuple[str, str, Callable[[], CheckResult]]] = []
        if v.wait_for_index:
            steps.append(("wait_for_index", "Wait for the index", self.wait_for_index))
        steps.append(("verify_parts", "Verify parts and epoch", self.verify_parts))
        for q in v.smoke_queries:
            steps.append((f"smoke:{q.name}", f"Smoke query: {q.name}", partial(self.smoke, q)))
        if v.recall is not None:
            steps.append(("recall", "Recall SLO", self.recall))
        results: list[CheckResult] = []
        for key, title, step in steps:
            if self.stop.is_set():
                break  # interrupted: the run records its verification as unfinished
            result = self._guarded(key, title, step)
            results.append(result)
            if key == "wait_for_index" and not result.passed:
                break  # parts cannot add up before the index caught up
        return results

    def _guarded(self, key: str, title: str, step: Callable[[], CheckResult]) -> CheckResult:
        # A target or store that fails mid-verification fails that check with the cause,
        # so the run still ends with a complete summary instead of a traceback.
        try:
            return step()
        except (ElaxError, httpx.HTTPError, OSError) as exc:
            cause = exc.message if isinstance(exc, ElaxError) else f"{type(exc).__name__}: {exc}"
            return CheckResult(
                key,
                title,
                False,
                f"the check could not run: {redact(cause)}",
                {},
                "Check that the target and its store are reachable, then run `elax-plan apply` "
                "again to verify.",
                incomplete=True,
            )

    # --- wait for the index -------------------------------------------------------------------

    def wait_for_index(self) -> CheckResult:
        """Poll router.json until indexed_wal ≥ the last acknowledged sequence."""
        title = "Wait for the index"
        target = self.last_acked_seq
        if target is None:
            return CheckResult("wait_for_index", title, True, "nothing was acknowledged")
        timeout = self.spec.verify.index_timeout
        poll = self.spec.throttle.poll_interval
        start = self.clock()
        first = last = self.read_namespace()
        while last.indexed_wal < target:
            if self.clock() - start >= timeout:
                moved = last.indexed_wal != first.indexed_wal
                cause = (
                    "indexed_wal moved but too slowly: the indexer is behind; raise "
                    "verify.index_timeout or give the indexer more capacity"
                    if moved
                    else "indexed_wal never moved: the likely cause is that no indexer is "
                    "running (the real elacsym only indexes when `elax-cli compact` runs)"
                )
                return CheckResult(
                    "wait_for_index",
                    title,
                    False,
                    f"indexed_wal is {last.indexed_wal} after {timeout:g}s, below the last "
                    f"acknowledged wal_sequence {target}",
                    {
                        "indexed_wal_start": first.indexed_wal,
                        "indexed_wal": last.indexed_wal,
                        "wal_highwater": last.wal_highwater,
                        "target": target,
                        "waited_s": round(self.clock() - start, 3),
                    },
                    advice=cause + ". Once it has caught up, run `elax-plan apply` again "
                    "to finish the verification.",
                    incomplete=True,
                )
            if self.stop.wait(poll):
                return CheckResult(
                    "wait_for_index",
                    title,
                    False,
                    f"interrupted while indexed_wal was {last.indexed_wal}, below the last "
                    f"acknowledged wal_sequence {target}",
                    {"indexed_wal": last.indexed_wal, "target": target},
                    "Run `elax-plan apply` again to finish the verification.",
                    incomplete=True,
                )
            last = self.read_namespace()
            self.on_event(
                "lag",
                {
                    "wal_highwater": last.wal_highwater,
                    "indexed_wal": last.indexed_wal,
                    "lag": last.wal_lag,
                    "paused": False,
                },
            )
        return CheckResult(
            "wait_for_index",
            title,
            True,
            f"indexed_wal {last.indexed_wal} ≥ last acknowledged wal_sequence {target}",
            {
                "indexed_wal": last.indexed_wal,
                "target": target,
                "waited_s": round(self.clock() - start, 3),
            },
        )

    # --- parts and epoch ----------------------------------------------------------------------

    def verify_parts(self) -> CheckResult:
        title = "Verify parts and epoch"
        ns = self.read_namespace()
        if self.wal_range is None:
            return CheckResult("verify_parts", title, True, "nothing was acknowledged")
        lo, hi = self.wal_range
        covering = [p for p in ns.parts if p.wal_end >= lo and p.wal_start <= hi]
        part_rows = sum(p.rows for p in covering)
        rows_ok = part_rows >= self.upserts_acked
        epoch_ok = ns.epoch > self.epoch_at_start
        evidence = {
            "wal_range": [lo, hi],
            "parts": len(covering),
            "part_rows": part_rows,
            "upserts_acknowledged": self.upserts_acked,
            "resends": self.resends,
            "epoch_at_start": self.epoch_at_start,
            "epoch": ns.epoch,
        }
        detail = (
            f"Σ rows of {len(covering)} parts covering WAL {lo}–{hi} = {part_rows:,} "
            f"{'≥' if rows_ok else '<'} {self.upserts_acked:,} upserts acknowledged "
            f"({self.resends:,} resends); epoch {self.epoch_at_start} → {ns.epoch}"
        )
        advice = ""
        if not rows_ok:
            advice = (
                "The parts do not account for every acknowledged upsert: the indexer may have "
                "dropped a batch, or a write was lost after its acknowledgement. Compare the WAL "
                "range with `elax-cli export-wal` and re-run the affected files."
            )
        elif not epoch_ok:
            advice = "router.json's epoch did not advance: is the indexer publishing parts?"
        return CheckResult("verify_parts", title, rows_ok and epoch_ok, detail, evidence, advice)

    # --- smoke queries ------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body; the answer object, or ``QueryFailed`` with status and text."""
        response = self.client.post(
            path, content=orjson.dumps(body), headers={"content-type": "application/json"}
        )
        if response.status_code != 200:
            raise QueryFailed(response.status_code, response.text[:500])
        data = orjson.loads(response.content)
        return data if isinstance(data, dict) else {}

    def _query(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._post(self.query_path, body)

    def _base_body(self, q: SmokeQuery) -> dict[str, Any]:
        body: dict[str, Any] = {"top_k": q.top_k, "metric": self.spec.target.distance_metric}
        if self.last_acked_seq is not None:
            body["min_wal_sequence"] = self.last_acked_seq
        ann = q.ann_params.to_wire()
        if ann:
            body["ann_params"] = ann
        if q.filters is not None:
            body["filters"] = q.filters.to_wire()
        return body

    def samples(self, n: int, seed: int) -> list[SampledRow]:
        key = (n, seed)
        if key not in self._samples:
            self._samples[key] = sample_source_rows(self.spec, self.source_urls, n, seed)
        return self._samples[key]

    def smoke(self, q: SmokeQuery) -> CheckResult:
        key, title = f"smoke:{q.name}", f"Smoke query: {q.name}"
        try:
            if q.kind == "sample_vectors":
                return self._smoke_samples(q, key, title)
            body = self._base_body(q)
            if q.kind == "bm25" and q.bm25 is not None:
                body["rank_by"] = [q.bm25.field, "BM25", q.bm25.text]
            elif q.vector is not None:
                body["vector"] = list(q.vector)
                body["rank_by"] = ["vector", "ANN", list(q.vector)]
            hits = self._query(body).get("hits", [])
        except QueryFailed as exc:
            return CheckResult(
                key,
                title,
                False,
                f"the query failed: HTTP {exc.status}: {exc.text}",
                {"status": exc.status},
                "Check the query fields and the target.",
            )
        ids = [str(h.get("id")) for h in hits]
        missing = [i for i in q.expect_ids if i not in ids]
        passed = len(hits) >= q.min_hits and not missing
        shown = [{"id": h.get("id"), "score": h.get("score")} for h in hits[:10]]
        evidence = {
            "query": _redacted_body(body),
            "hits": len(hits),
            "top": shown,
            "expected_min_hits": q.min_hits,
            "expected_ids": list(q.expect_ids),
        }
        if passed:
            return CheckResult(key, title, True, f"{len(hits)} hits (≥ {q.min_hits})", evidence)
        problems = []
        if len(hits) < q.min_hits:
            problems.append(f"{len(hits)} hits, expected at least {q.min_hits}")
        if missing:
            problems.append(f"expected ids not in the top {q.top_k}: {', '.join(missing)}")
        return CheckResult(
            key,
            title,
            False,
            "; ".join(problems),
            evidence,
            "Check that the rows were written (ids, attribute names) and that "
            "the query matches the data.",
        )

    def _smoke_samples(self, q: SmokeQuery, key: str, title: str) -> CheckResult:
        n = q.sample_vectors or 0
        rows = self.samples(n, seed=_seed(self.spec, q.name))
        misses = []
        body = self._base_body(q)
        for row in rows:
            body = self._base_body(q)
            body["vector"] = row.vector
            body["rank_by"] = ["vector", "ANN", row.vector]
            hits = self._query(body).get("hits", [])
            ids = [str(h.get("id")) for h in hits]
            if row.id not in ids:
                misses.append({"id": row.id, "top": ids[:5]})
        found = len(rows) - len(misses)
        evidence = {
            # What was asked (one of the bodies; they differ only in the vector).
            "query": _redacted_body(body),
            "sampled": len(rows),
            "found": found,
            "misses": misses[:10],
            "top_k": q.top_k,
        }
        if not rows:
            return CheckResult(
                key,
                title,
                False,
                "no source row with a vector could be sampled",
                evidence,
                "Check source.vector_field.",
            )
        if misses:
            return CheckResult(
                key,
                title,
                False,
                f"{len(misses)} of {len(rows)} sampled rows did not find their own id in the "
                f"top {q.top_k}",
                evidence,
                "Rows may be missing from the namespace, or ANN settings miss them: try "
                "ann_params {use_ivf: false} to tell the two apart.",
            )
        return CheckResult(
            key,
            title,
            True,
            f"all {len(rows)} sampled rows found their own id in the top {q.top_k}",
            evidence,
        )

    # --- recall -------------------------------------------------------------------------------

    def _recall_call(self, vectors: list[list[float]], ann: dict[str, Any]) -> dict[str, Any]:
        r = self.spec.verify.recall
        assert r is not None
        body: dict[str, Any] = {
            "num": len(vectors),
            "top_k": r.top_k,
            "queries": vectors,
            "metric": self.spec.target.distance_metric,
        }
        if ann:
            body["ann_params"] = ann
        return self._post(self.recall_path, body)

    def recall(self) -> CheckResult:
        r = self.spec.verify.recall
        assert r is not None
        title = "Recall SLO"
        rows = self.samples(r.num, seed=r.seed)
        vectors = [row.vector for row in rows]
        ann = r.ann_params.to_wire()
        try:
            stats = self._recall_call(vectors, ann)
        except QueryFailed as exc:
            return CheckResult(
                "recall",
                title,
                False,
                f"_debug/recall failed: HTTP {exc.status}: {exc.text}",
                {"status": exc.status},
                "Check verify.recall.ann_params.",
            )
        avg = float(stats.get("avg_recall", 0.0))
        evaluated = int(stats.get("evaluated", 0))
        evidence: dict[str, Any] = {
            "avg_recall": avg,
            "min_avg_recall": r.min_avg_recall,
            "evaluated": evaluated,
            "queries": len(vectors),
            "top_k": r.top_k,
            "ann_params": ann,
            "avg_ann_count": stats.get("avg_ann_count"),
            "avg_exhaustive_count": stats.get("avg_exhaustive_count"),
        }
        if evaluated == 0:
            return CheckResult(
                "recall",
                title,
                False,
                "_debug/recall evaluated 0 queries",
                evidence,
                "Check that the sampled vectors have the namespace's dims.",
            )
        if avg >= r.min_avg_recall:
            return CheckResult(
                "recall",
                title,
                True,
                f"avg_recall {avg:.4f} ≥ {r.min_avg_recall} over {evaluated} queries",
                evidence,
            )
        gap = r.min_avg_recall - avg
        advice = (
            "Follow the recall-drift runbook: raise ann_params.target_recall (the probe "
            "fraction; the design calls it nprobe_ratio) or set nprobe, use rerank_mode: fp32, "
            "or raise rerank_scale."
        )
        # Tuning only on a miss (it costs a dozen recall calls), and it only measures: the
        # gate is judged on the plan's ann_params, so it still fails, and the advice says
        # which setting to adopt.
        tuned = self._tune(vectors, ann) if r.tune else None
        if tuned is not None:
            evidence["tuning"] = tuned
            if tuned["cheapest"] is not None:
                setting = json.dumps(tuned["cheapest"], sort_keys=True)
                advice += (
                    f" Tuning found the cheapest setting that meets the SLO: {setting}. "
                    "The gate still fails: tuning only measures, and nothing changed in "
                    "elacsym. Send these ann_params with your queries, and put them in "
                    "verify.recall.ann_params so that later runs gate on what you serve."
                )
            else:
                advice += " Tuning found no passing setting up to target_recall 1.0 with fp32."
        return CheckResult(
            "recall",
            title,
            False,
            f"avg_recall {avg:.4f} is {gap:.4f} below the SLO {r.min_avg_recall} "
            f"over {evaluated} queries",
            evidence,
            advice,
        )

    def _tune(self, vectors: list[list[float]], ann: dict[str, Any]) -> dict[str, Any]:
        """Probe increasing target_recall, then fp32 rerank; the cheapest setting that passes."""
        r = self.spec.verify.recall
        assert r is not None
        tried: list[dict[str, Any]] = []
        cheapest: dict[str, Any] | None = None
        for mode in (ann.get("rerank_mode", "erq"), "fp32"):
            for target in TUNE_TARGET_RECALLS:
                candidate = {k: v for k, v in ann.items() if k not in ("nprobe", "nprobe_ratio")}
                candidate.update({"target_recall": target, "rerank_mode": mode})
                try:
                    stats = self._recall_call(vectors, candidate)
                except QueryFailed as exc:
                    tried.append({"ann_params": candidate, "error": f"HTTP {exc.status}"})
                    continue
                avg = float(stats.get("avg_recall", 0.0))
                tried.append({"ann_params": candidate, "avg_recall": avg})
                if avg >= r.min_avg_recall:
                    cheapest = candidate
                    break
            if cheapest is not None or mode == "fp32":
                break
        return {"tried": tried, "cheapest": cheapest}


class QueryFailed(Exception):
    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(f"HTTP {status}: {text}")


def _seed(spec: PlanSpec, name: str) -> int:
    seed = spec.verify.recall.seed if spec.verify.recall is not None else 0
    return seed + sum(name.encode())


def _redacted_body(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for key in ("vector",):
        if key in out:
            out[key] = f"[{len(out[key])} numbers]"
    if "rank_by" in out and out["rank_by"] and out["rank_by"][1] == "ANN":
        out["rank_by"] = [out["rank_by"][0], "ANN", f"[{len(out['rank_by'][2])} numbers]"]
    return out


def overall(results: Iterable[CheckResult]) -> bool:
    return all(r.passed for r in results)


__all__ = ["CheckResult", "RouterReading", "Verifier", "overall", "sample_source_rows"]
