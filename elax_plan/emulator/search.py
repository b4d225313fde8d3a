"""The query side of one namespace: answers parsed query and recall requests from RAM.

Owns execution as the real node does it (CONTRACT §3.2-§3.10): clause
selection, the filter planner (filter-first exact vs ANN then post-filter),
the IVF path with brute-force fill-up, BM25 and hybrid scoring, ``group_by``,
the response JSON, and ``_debug/recall``. Indexes (document snapshot, IVF,
BM25) are built lazily on first use after ``invalidate()`` and cached; the IVF
index is also rebuilt when the metric or ERQ bits differ from the cached one.

Must not parse bodies (``query_model.py``), do I/O, lock, or mutate the
documents: the caller owns the live ``documents`` dict, mutates it under the
namespace lock and calls ``invalidate()`` after every write batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from elax_plan.emulator.filtering import group_value, matches
from elax_plan.emulator.model import Document, ServerError
from elax_plan.emulator.query_model import (
    AnnParams,
    AnnRank,
    Bm25Rank,
    GroupBy,
    Metric,
    QueryRequest,
    RecallRequest,
)
from elax_plan.emulator.text_index import TextIndex
from elax_plan.emulator.vector_index import (
    FloatArray,
    IntArray,
    IvfIndex,
    build_ivf,
    distances,
    norms,
    top_k_order,
)

__all__ = ["SearchIndex"]

DEFAULT_COARSE_BITS = 1
DEFAULT_RERANK_BITS = 8
_BM25_WEIGHT = np.float32(0.01)  # hybrid: distance − 0.01·bm25
_SELECTIVE = np.float32(0.2)  # filter planner: filtered/total at or below this → filter-first

Hit = tuple[int, float]  # (snapshot position, f32 score)


@dataclass(frozen=True, slots=True)
class _DimGroup:
    positions: IntArray
    ids: list[str]
    matrix: FloatArray
    norms: FloatArray


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The documents frozen in dict order, with their vectors stacked per dimension."""

    docs: list[Document]
    ids: list[str]
    position: dict[str, int]
    vector_positions: IntArray  # documents that have a vector (possibly empty)
    vectors: list[FloatArray]
    by_dim: dict[int, _DimGroup]

    @classmethod
    def of(cls, documents: dict[str, Document]) -> _Snapshot:
        docs = list(documents.values())
        ids = [d.id for d in docs]
        with_vectors = [i for i, d in enumerate(docs) if d.vector is not None]
        vectors = [_as_f32(docs[i].vector) for i in with_vectors]
        members: dict[int, list[int]] = {}
        for slot, vec in enumerate(vectors):
            members.setdefault(int(vec.shape[0]), []).append(slot)
        by_dim = {}
        for dim, slots in members.items():
            positions = np.asarray([with_vectors[s] for s in slots], dtype=np.int64)
            matrix = (
                np.vstack([vectors[s] for s in slots]).astype(np.float32)
                if dim
                else np.zeros((len(slots), 0), dtype=np.float32)
            )
            group_ids = [ids[p] for p in positions.tolist()]
            by_dim[dim] = _DimGroup(positions, group_ids, matrix, norms(matrix))
        return cls(
            docs,
            ids,
            {doc_id: i for i, doc_id in enumerate(ids)},
            np.asarray(with_vectors, dtype=np.int64),
            vectors,
            by_dim,
        )


@dataclass(frozen=True, slots=True)
class _Bitmap:
    """Allowed snapshot positions, and the bitmap's size as the real planner counts it."""

    mask: npt.NDArray[np.bool_]
    count: int


def _as_f32(vector: Any) -> FloatArray:
    return np.asarray(vector, dtype=np.float32).reshape(-1)


def _json_score(score: float) -> float:
    # The real node serialises an f32; its shortest decimal parsed back as a double is
    # what a client sees, so "0.3" rather than 0.30000001192092896.
    return float(str(np.float32(score)))


class SearchIndex:
    """Answers queries and recall over a live, insertion-ordered ``documents`` dict."""

    def __init__(self, documents: dict[str, Document]) -> None:
        self._documents = documents
        self._snapshot: _Snapshot | None = None
        self._text: TextIndex | None = None
        self._ivf: IvfIndex | None = None
        self._ivf_dirty = True

    def invalidate(self) -> None:
        """Forget every derived index; the next query rebuilds what it needs."""
        self._snapshot = None
        self._text = None
        self._ivf = None
        self._ivf_dirty = True

    # --- public entry points --------------------------------------------------------------

    def search(self, req: QueryRequest) -> dict[str, Any]:
        """The response object ``{"hits": […], "groups"?: […]}`` for a parsed query."""
        hits = self._search(req)
        snap = self._snap()
        out: dict[str, Any] = {"hits": [self._render(snap, hit) for hit in hits]}
        groups = self._groups(snap, hits, req.group_by)
        if groups is not None:
            out["groups"] = groups
        return out

    def recall(self, req: RecallRequest) -> dict[str, Any]:
        """``_debug/recall``: pure IVF hits (no fill-up, no filters) against exact top_k."""
        ann = req.ann_params
        if ann.use_ivf:
            self._ensure_ivf(req.metric, ann)
        snap = self._snap()
        target = max(req.num, 1)
        # Without explicit queries: the first `num` stored vectors in dict order (the real
        # node takes hash-map order); explicit queries are capped by `num` too.
        explicit = req.queries
        queries = snap.vectors[:target] if explicit is None else list(explicit[:target])
        top_k = max(req.top_k, 1)
        evaluated = 0
        total_recall = np.float32(0.0)
        total_ann = total_exact = 0
        for query in queries:
            if query.shape[0] == 0:
                continue
            ann_hits = self._ann(query, req.metric, top_k, ann)
            exact = self._exact(query, req.metric, top_k, None)
            if not exact:
                continue
            exact_positions = {pos for pos, _ in exact}
            found = sum(1 for pos, _ in ann_hits if pos in exact_positions)
            total_recall += np.float32(found) / np.float32(max(1, min(len(exact), top_k)))
            total_ann += len(ann_hits)
            total_exact += len(exact)
            evaluated += 1
        if evaluated == 0:
            return {
                "avg_recall": 0.0,
                "avg_ann_count": 0.0,
                "avg_exhaustive_count": 0.0,
                "evaluated": 0,
            }
        n = np.float32(evaluated)
        return {
            "avg_recall": _json_score(float(total_recall / n)),
            "avg_ann_count": _json_score(float(np.float32(total_ann) / n)),
            "avg_exhaustive_count": _json_score(float(np.float32(total_exact) / n)),
            "evaluated": evaluated,
        }

    # --- query execution ------------------------------------------------------------------

    def _search(self, req: QueryRequest) -> list[Hit]:
        if req.top_k == 0:
            return []
        snap = self._snap()
        bitmap = self._bitmap(snap, req)
        if bitmap is not None and bitmap.count == 0:
            return []
        vector_query: tuple[FloatArray, int] | None = None
        if isinstance(req.rank_by, AnnRank):
            vector_query = (req.rank_by.vector, req.top_k)
        for clause in req.queries:
            if isinstance(clause.rank_by, AnnRank):
                top = clause.top_k if clause.top_k is not None else req.top_k
                vector_query = (clause.rank_by.vector, top)
                break
        bm25_clauses: list[tuple[Bm25Rank, int]] = []
        if isinstance(req.rank_by, Bm25Rank):
            bm25_clauses.append((req.rank_by, req.top_k))
        for clause in req.queries:
            if isinstance(clause.rank_by, Bm25Rank):
                top = clause.top_k if clause.top_k is not None else req.top_k
                bm25_clauses.append((clause.rank_by, top))
        if vector_query is None and not bm25_clauses:
            raise ServerError("rank_by or queries must include a supported search clause")

        vector_hits: list[Hit] = []
        if vector_query is not None:
            query, clause_top_k = vector_query
            if query.shape[0] == 0:
                raise ServerError("query vector must not be empty")
            candidates = max(clause_top_k, req.top_k)
            vector_hits = self._vector_search(query, req.metric, candidates, req.ann_params, bitmap)

        bm25: dict[int, float] = {}
        if bm25_clauses:
            text = self._text_index()
            for rank, clause_top_k in bm25_clauses:
                for pos, score in text.search(rank.field, rank.query, clause_top_k):
                    if bitmap is not None and not bitmap.mask[pos]:
                        continue
                    if pos not in bm25 or score > bm25[pos]:
                        bm25[pos] = score

        if not vector_hits:
            # BM25 only (also when the vector clause found nothing): score = −bm25.
            hits = [(pos, float(-np.float32(score))) for pos, score in bm25.items()]
            return self._sorted(snap, hits)[: req.top_k]

        merged = dict(vector_hits)
        if bm25:
            assert vector_query is not None
            query = vector_query[0]
            for pos, score in bm25.items():
                if pos in merged:
                    merged[pos] = _boost(merged[pos], score)
                else:
                    base = self._distance_to(snap, pos, query, req.metric)
                    merged[pos] = _boost(1.0 if base is None else base, score)
        return self._sorted(snap, list(merged.items()))[: req.top_k]

    def _vector_search(
        self,
        query: FloatArray,
        metric: Metric,
        top_k: int,
        ann: AnnParams,
        bitmap: _Bitmap | None,
    ) -> list[Hit]:
        if top_k == 0:
            return []
        snap = self._snap()
        if bitmap is not None and _filter_first(
            len(snap.docs), bitmap.count, _budget(ann, top_k), ann.use_ivf
        ):
            return self._exact(query, metric, top_k, bitmap.mask)
        if ann.use_ivf:
            self._ensure_ivf(metric, ann)
        results = self._ann(query, metric, top_k, ann)
        if bitmap is not None:
            results = [hit for hit in results if bitmap.mask[hit[0]]]
        if len(results) >= top_k:
            return results[:top_k]
        brute = self._exact(query, metric, top_k, None if bitmap is None else bitmap.mask)
        if not results:
            return brute
        # Fill-up keeps the ANN score of a document both paths found.
        seen = {pos for pos, _ in results}
        results += [hit for hit in brute if hit[0] not in seen]
        return self._sorted(snap, results)[:top_k]

    def _exact(
        self,
        query: FloatArray,
        metric: Metric,
        top_k: int,
        mask: npt.NDArray[np.bool_] | None,
    ) -> list[Hit]:
        """Brute force over documents whose vector has the query's dimension."""
        group = self._snap().by_dim.get(int(query.shape[0]))
        if group is None or top_k <= 0:
            return []
        positions, matrix, row_norms, ids = group.positions, group.matrix, group.norms, group.ids
        if mask is not None:
            keep = np.nonzero(mask[positions])[0]
            positions, matrix, row_norms = positions[keep], matrix[keep], row_norms[keep]
            ids = [ids[i] for i in keep.tolist()]
        scores = distances(metric, query, matrix, row_norms)
        return [(int(positions[i]), float(scores[i])) for i in top_k_order(scores, ids, top_k)]

    def _ann(self, query: FloatArray, metric: Metric, top_k: int, ann: AnnParams) -> list[Hit]:
        """Hits of the cached IVF index (none when disabled, unbuilt or for another metric)."""
        index = self._ivf
        if not ann.use_ivf or top_k == 0 or index is None or index.metric != metric:
            return []
        result = index.search(
            query,
            top_k,
            target_recall=ann.target_recall,
            nprobe=ann.nprobe,
            rerank_scale=ann.rerank_scale,
            rerank_mode=ann.rerank_mode,
        )
        return [
            (int(index.positions[row]), score)
            for row, score in zip(result.rows, result.scores, strict=True)
        ]

    def _ensure_ivf(self, metric: Metric, ann: AnnParams) -> None:
        coarse = DEFAULT_COARSE_BITS if ann.coarse_bits is None else ann.coarse_bits
        rerank = DEFAULT_RERANK_BITS if ann.rerank_bits is None else ann.rerank_bits
        index = self._ivf
        if not self._ivf_dirty and index is not None and index.matches(metric, coarse, rerank):
            return
        snap = self._snap()
        # On a bit-validation error the old index and the dirty flag stay, as in the real code.
        self._ivf = build_ivf(
            metric,
            coarse,
            rerank,
            [snap.ids[p] for p in snap.vector_positions.tolist()],
            snap.vector_positions,
            snap.vectors,
        )
        self._ivf_dirty = False

    def _distance_to(
        self, snap: _Snapshot, pos: int, query: FloatArray, metric: Metric
    ) -> float | None:
        vector = snap.docs[pos].vector
        if vector is None:
            return None
        vec = _as_f32(vector)
        if vec.shape[0] != query.shape[0]:
            return None
        return float(distances(metric, query, vec[None, :], norms(vec[None, :]))[0])

    # --- filters, text, snapshot ------------------------------------------------------------

    def _bitmap(self, snap: _Snapshot, req: QueryRequest) -> _Bitmap | None:
        mask: npt.NDArray[np.bool_] | None = None
        count = 0
        if req.filter_bitmap_ids is not None:
            wanted = set(req.filter_bitmap_ids)
            mask = np.zeros(len(snap.docs), dtype=bool)
            known = [snap.position[i] for i in wanted if i in snap.position]
            mask[np.asarray(known, dtype=np.int64)] = True
            # The real bitmap counts ids, known or not; the planner sees that number.
            count = len(wanted)
        if req.filters is not None:
            expr = req.filters
            matched = np.fromiter(
                (matches(expr, doc) for doc in snap.docs), dtype=bool, count=len(snap.docs)
            )
            mask = matched if mask is None else mask & matched
            count = int(mask.sum())
        return None if mask is None else _Bitmap(mask, count)

    def _text_index(self) -> TextIndex:
        if self._text is None:
            self._text = TextIndex(self._snap().docs)
        return self._text

    def _snap(self) -> _Snapshot:
        if self._snapshot is None:
            self._snapshot = _Snapshot.of(self._documents)
        return self._snapshot

    # --- rendering ------------------------------------------------------------------------

    @staticmethod
    def _sorted(snap: _Snapshot, hits: list[Hit]) -> list[Hit]:
        """Score ascending, then id (NaN last)."""
        return sorted(hits, key=lambda h: (math.inf if math.isnan(h[1]) else h[1], snap.ids[h[0]]))

    @staticmethod
    def _render(snap: _Snapshot, hit: Hit) -> dict[str, Any]:
        doc = snap.docs[hit[0]]
        out: dict[str, Any] = {"id": doc.id, "score": _json_score(hit[1])}
        if doc.attributes is not None:
            out["attributes"] = doc.attributes
        return out

    def _groups(
        self, snap: _Snapshot, hits: list[Hit], group_by: GroupBy | None
    ) -> list[dict[str, Any]] | None:
        """Groups over the returned hits: count desc, then value; ``None`` when empty."""
        if group_by is None or not hits or group_by.limit == 0:
            return None
        groups: dict[str, dict[str, Any]] = {}
        for hit in hits:
            key = group_value(snap.docs[hit[0]].attributes, group_by.field)
            if key is None:
                continue
            group = groups.setdefault(key, {"value": key, "count": 0, "hits": []})
            group["count"] += 1
            if len(group["hits"]) < group_by.per_group_limit:
                group["hits"].append(self._render(snap, hit))
        if not groups:
            return None
        ordered = sorted(groups.values(), key=lambda g: (-g["count"], g["value"]))
        return ordered[: group_by.limit]


def _budget(ann: AnnParams, top_k: int) -> int:
    """Candidate budget: top_k·rerank_scale, or top_k when the scale is 0."""
    return top_k if ann.rerank_scale == 0 else top_k * ann.rerank_scale


def _filter_first(total: int, filtered: int, budget: int, use_ivf: bool) -> bool:
    """The real planner: exact over the filtered set unless ANN + post-filter pays off."""
    if not use_ivf or filtered == 0 or total == 0:
        return True
    if filtered <= max(budget, 1):
        return True
    return bool(np.float32(filtered) / np.float32(total) <= _SELECTIVE)


def _boost(base: float, bm25: float) -> float:
    """distance − 0.01·bm25 in f32; a non-finite result keeps the distance."""
    adjusted = np.float32(base) - np.float32(bm25) * _BM25_WEIGHT
    return float(adjusted) if math.isfinite(adjusted) else float(np.float32(base))
