"""Vector distances, exact top-k and the IVF + ERQ approximate index, vectorised with numpy.

Owns the numbers of vector search (CONTRACT §3.4-§3.5): cosine distance
(1 − cos, 1.0 when either norm is zero) and squared euclidean distance in f32;
ordering by (score, id); the IVF index (k-means++ with a fixed seed, ≤ 50
iterations, tolerance 1e-4; nlist = min(⌈√n⌉, n, 256)); the ERQ scalar
quantiser (per-dimension min/max, y-bit fine codes stored in 8 bits, x-bit
coarse codes by downsampling); probing and candidate budgets.

Must not know about requests, filters, BM25 or documents' attributes
(``search.py`` composes those); built from arrays, never mutated, no I/O.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from elax_plan.emulator.model import ServerError
from elax_plan.emulator.query_model import Metric, RerankMode

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

MIN_TRAINING_POINTS = 8
MAX_LISTS = 256
TRAIN_SEED = 20240921
MAX_ITERATIONS = 50
TOLERANCE = 1e-4
MAX_BITS = 16
_CHUNK_ROWS = 8192  # rows per block when computing euclidean distances, to bound temporaries


def norms(matrix: FloatArray) -> FloatArray:
    """Row L2 norms in f32."""
    with np.errstate(all="ignore"):
        out: FloatArray = np.sqrt(np.einsum("ij,ij->i", matrix, matrix)).astype(np.float32)
    return out


def distances(
    metric: Metric, query: FloatArray, matrix: FloatArray, row_norms: FloatArray
) -> FloatArray:
    """Distance from ``query`` to every row; lower is better; same formulas as the real code."""
    with np.errstate(all="ignore"):
        if metric == "cosine":
            query_norm = np.float32(np.sqrt(np.dot(query, query)))
            dots = matrix @ query
            out = np.float32(1.0) - dots / (row_norms * query_norm)
            out[(row_norms == 0) | (query_norm == 0)] = np.float32(1.0)
            return out.astype(np.float32, copy=False)
        out = np.empty(matrix.shape[0], dtype=np.float32)
        for start in range(0, matrix.shape[0], _CHUNK_ROWS):
            diff = matrix[start : start + _CHUNK_ROWS] - query
            out[start : start + _CHUNK_ROWS] = np.einsum("ij,ij->i", diff, diff)
        return out


def top_k_order(scores: FloatArray, ids: Sequence[str], k: int) -> list[int]:
    """Indices of the ``k`` best scores, ascending, ties broken by id (byte order).

    NaN sorts last (the real comparator treats it as equal, which is not a total order).
    """
    n = len(scores)
    if k <= 0 or n == 0:
        return []
    key = np.where(np.isnan(scores), np.float32(np.inf), scores)
    if n > k:
        threshold = np.partition(key, k - 1)[k - 1]
        candidates = np.nonzero(key <= threshold)[0]
    else:
        candidates = np.arange(n)
    ordered = sorted(candidates.tolist(), key=lambda i: (float(key[i]), ids[i]))
    return ordered[:k]


def compute_nlist(samples: int) -> int:
    """min(⌈√n⌉, n, 256), at least 1 (0 for no samples)."""
    if samples == 0:
        return 0
    approx = math.ceil(float(np.sqrt(np.float32(samples))))
    return max(1, min(max(approx, 1), samples, MAX_LISTS))


def nprobe_for(target_recall: float, nprobe: int | None, nlist: int) -> int:
    """Lists to probe: ``nprobe`` if > 0, else ⌈clamp(target_recall)·nlist⌉ clamped to 1..nlist."""
    if nprobe is not None and nprobe > 0:
        return min(nprobe, nlist)
    if nlist == 0:
        return 0
    recall = np.float32(min(max(target_recall, 0.0), 1.0))
    return min(max(math.ceil(float(recall * np.float32(nlist))), 1), nlist)


def validate_bits(coarse_bits: int, rerank_bits: int) -> None:
    """The checks the real node makes before training, with its messages (500s)."""
    if coarse_bits == 0:
        raise ServerError("coarse bits must be > 0")
    if rerank_bits == 0:
        raise ServerError("rerank bits must be > 0")
    if rerank_bits < coarse_bits:
        raise ServerError(f"rerank bits ({rerank_bits}) must be >= coarse bits ({coarse_bits})")


@dataclass(frozen=True, slots=True)
class Erq:
    """Per-dimension min/max scalar quantiser; reconstructions are kept as f32 matrices."""

    coarse: FloatArray
    coarse_norms: FloatArray
    fine: FloatArray
    fine_norms: FloatArray


def train_erq(samples: FloatArray, coarse_bits: int, fine_bits: int) -> Erq:
    """Fit ranges on ``samples`` and reconstruct every sample from its coarse and fine codes."""
    if coarse_bits > MAX_BITS:
        raise ServerError("coarse bits exceed support")
    if fine_bits > MAX_BITS:
        raise ServerError("fine bits exceed support")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mins = np.nanmin(samples, axis=0).astype(np.float32)
        maxs = np.nanmax(samples, axis=0).astype(np.float32)
        bad = ~(np.isfinite(mins) & np.isfinite(maxs))
        mins[bad] = 0.0
        maxs[bad] = 0.0
        flat = maxs <= mins
        span = maxs - mins
        fine_levels = 1 << fine_bits
        coarse_levels = 1 << coarse_bits
        normalized = np.clip((samples - mins) / np.where(flat, 1, span), 0.0, 1.0)
        # Rust's f32::round rounds half away from zero; values here are non-negative.
        levels = np.floor(normalized * np.float32(fine_levels - 1) + np.float32(0.5))
        levels = np.nan_to_num(levels, nan=0.0)  # `NaN as u32` is 0
        levels = np.minimum(levels.astype(np.int64), fine_levels - 1)
        levels[:, flat] = 0
        # Codes are stored as u8: rerank_bits above 8 wrap around (CONTRACT §3.3).
        fine_codes = levels & 0xFF
        coarse_codes = np.minimum((fine_codes * coarse_levels) // fine_levels, coarse_levels - 1)
        fine = _dequantize(fine_codes, fine_bits, mins, span, flat)
        coarse = _dequantize(coarse_codes, coarse_bits, mins, span, flat)
    return Erq(coarse, norms(coarse), fine, norms(fine))


def _dequantize(
    codes: IntArray, bits: int, mins: FloatArray, span: FloatArray, flat: npt.NDArray[np.bool_]
) -> FloatArray:
    denom = np.float32(max((1 << bits) - 1, 1))
    out = (mins + (codes.astype(np.float32) / denom) * span).astype(np.float32)
    out[:, flat] = np.broadcast_to(mins[flat], (out.shape[0], int(flat.sum())))
    return out


def _centroid_distances(metric: Metric, data: FloatArray, centroids: FloatArray) -> FloatArray:
    """n × k distance matrix; NaN becomes +inf so it never wins (the real `<` skips NaN)."""
    with np.errstate(all="ignore"):
        out: FloatArray = (data @ centroids.T).astype(np.float32, copy=False)
        if metric == "cosine":
            dn = norms(data)[:, None]
            cn = norms(centroids)[None, :]
            out /= dn
            out /= cn
            np.subtract(np.float32(1.0), out, out=out)
            if not (dn.all() and cn.all()):
                out[np.broadcast_to((dn == 0) | (cn == 0), out.shape)] = np.float32(1.0)
        else:
            out *= np.float32(-2.0)
            out += np.einsum("ij,ij->i", data, data)[:, None]
            out += np.einsum("ij,ij->i", centroids, centroids)[None, :]
            np.maximum(out, np.float32(0.0), out=out)
    nan = np.isnan(out)
    if nan.any():
        out[nan] = np.float32(np.inf)
    return out


def _nearest(metric: Metric, data: FloatArray, centroids: FloatArray) -> IntArray:
    out: IntArray = np.argmin(_centroid_distances(metric, data, centroids), axis=1)
    return out.astype(np.int64)


def _normalize(rows: FloatArray) -> FloatArray:
    n = norms(rows)
    with np.errstate(all="ignore"):
        scaled = rows / np.where(n > 0, n, 1)[:, None]
    return scaled.astype(np.float32)


def _cluster_sums(samples: FloatArray, assignments: IntArray, counts: IntArray) -> FloatArray:
    # Segment sums over rows sorted by cluster: far faster than np.add.at.
    sums = np.zeros((counts.shape[0], samples.shape[1]), dtype=np.float32)
    live = counts > 0
    if samples.shape[1] == 0 or not live.any():
        return sums
    ordered = samples[np.argsort(assignments, kind="stable")]
    starts = (np.cumsum(counts) - counts)[live]
    with np.errstate(all="ignore"):
        sums[live] = np.add.reduceat(ordered, starts, axis=0)
    return sums


def train_kmeans(samples: FloatArray, nlist: int, metric: Metric) -> FloatArray:
    """k-means++ initialisation then Lloyd iterations, as the real IVF trainer does.

    Cosine keeps centroids unit-length. Dead lists are reseeded with a random sample.
    The seed is fixed, but the sample order (dict order here, hash-map order in the
    real code) decides the outcome, so centroids do not match the real node's.
    """
    rng = np.random.default_rng(TRAIN_SEED)
    n = samples.shape[0]
    k = min(nlist, n)
    adjust = _normalize if metric == "cosine" else (lambda rows: rows)
    chosen = [int(rng.integers(n))]
    centroids = adjust(samples[chosen[0] : chosen[0] + 1].copy())
    nearest = _centroid_distances(metric, samples, centroids)[:, 0]
    while centroids.shape[0] < k:
        with np.errstate(all="ignore"):
            weights = nearest.astype(np.float64) ** 2  # the real code squares the distance
        weights = np.where(np.isfinite(weights), weights, 0.0)
        total = weights.sum()
        if total <= np.finfo(np.float32).eps:
            pick = int(rng.integers(n))
        else:
            target = rng.random() * total
            pick = min(int(np.searchsorted(np.cumsum(weights), target, side="left")), n - 1)
        new = adjust(samples[pick : pick + 1].copy())
        centroids = np.vstack([centroids, new]).astype(np.float32)
        nearest = np.minimum(nearest, _centroid_distances(metric, samples, new)[:, 0])
    assignments = np.full(n, -1, dtype=np.int64)
    for _ in range(MAX_ITERATIONS):
        fresh = _nearest(metric, samples, centroids)
        changed = bool((fresh != assignments).any())
        assignments = fresh
        counts = np.bincount(assignments, minlength=k)
        sums = _cluster_sums(samples, assignments, counts)
        with np.errstate(all="ignore"):
            means = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        if metric == "cosine":
            means = _normalize(means)
        live = counts > 0
        with np.errstate(all="ignore"):
            shifts = norms(centroids[live] - means[live])
        shift = float(np.nanmax(shifts)) if shifts.size and not np.isnan(shifts).all() else 0.0
        centroids = np.where(live[:, None], means, centroids).astype(np.float32)
        for dead in np.nonzero(~live)[0]:
            pick = int(rng.integers(n))
            centroids[dead] = adjust(samples[pick : pick + 1].copy())[0]
        if not changed or shift <= TOLERANCE:
            break
    return centroids


@dataclass(frozen=True, slots=True)
class AnnResult:
    """Rows (indices into the index) with their scores, ordered by (score, id)."""

    rows: list[int]
    scores: list[float]


class IvfIndex:
    """An IVF + ERQ index over rows of one dimension (the dimension of the first vector)."""

    def __init__(
        self,
        metric: Metric,
        coarse_bits: int,
        rerank_bits: int,
        ids: list[str],
        positions: IntArray,
        vectors: FloatArray,
    ) -> None:
        self.metric: Metric = metric
        self.coarse_bits = coarse_bits
        self.rerank_bits = rerank_bits
        self.ids = ids
        self.positions = positions  # snapshot position of each indexed row
        self.vectors = vectors
        self.vector_norms = norms(vectors)
        self.dimension = int(vectors.shape[1])
        nlist = compute_nlist(len(ids))
        self.centroids = train_kmeans(vectors, nlist, metric)
        self.centroid_norms = norms(self.centroids)
        assignment = _nearest(metric, vectors, self.centroids)
        order = np.argsort(assignment, kind="stable")
        bounds = np.searchsorted(assignment[order], np.arange(self.centroids.shape[0] + 1))
        self.lists = [order[bounds[i] : bounds[i + 1]] for i in range(self.centroids.shape[0])]
        self.erq = train_erq(vectors, coarse_bits, rerank_bits)

    @property
    def nlist(self) -> int:
        """Number of inverted lists."""
        return len(self.lists)

    def matches(self, metric: Metric, coarse_bits: int, rerank_bits: int) -> bool:
        """Whether this index was built for these settings (else the node rebuilds it)."""
        return (metric, coarse_bits, rerank_bits) == (
            self.metric,
            self.coarse_bits,
            self.rerank_bits,
        )

    def search(
        self,
        query: FloatArray,
        top_k: int,
        *,
        target_recall: float,
        nprobe: int | None,
        rerank_scale: int,
        rerank_mode: RerankMode,
    ) -> AnnResult:
        """Probe lists, keep the coarse-code budget, rescore, keep ``top_k``.

        Deviation, on purpose: with ``rerank_mode: "fp32"`` every member of the probed
        lists is rescored exactly. The real code first cuts the probed members to the
        candidate budget (top_k·rerank_scale) by 1-bit coarse distance, so at scale even
        ``{"rerank_mode":"fp32","target_recall":1.0}`` stays below recall 1.0 there
        (its own test reaches 1.0 only because 12 rows fit in the budget). Runbooks and
        the recall endpoint treat that combination as "exact", and so does the emulator.
        ``erq`` mode follows the real code: coarse cut first, then 8-bit reconstruction.
        """
        if top_k <= 0 or query.shape[0] != self.dimension or not self.lists:
            return AnnResult([], [])
        probes = nprobe_for(target_recall, nprobe, self.nlist)
        if probes == 0:
            return AnnResult([], [])
        to_centroids = distances(self.metric, query, self.centroids, self.centroid_norms)
        to_centroids = np.where(np.isnan(to_centroids), np.float32(np.inf), to_centroids)
        probed = np.argsort(to_centroids, kind="stable")[:probes]
        members = np.concatenate([self.lists[i] for i in probed])
        if members.size == 0:
            return AnnResult([], [])
        member_ids = [self.ids[i] for i in members.tolist()]
        if rerank_mode == "fp32":
            scores = distances(
                self.metric, query, self.vectors[members], self.vector_norms[members]
            )
        else:
            coarse = distances(
                self.metric, query, self.erq.coarse[members], self.erq.coarse_norms[members]
            )
            budget = max(top_k if rerank_scale == 0 else top_k * rerank_scale, top_k)
            keep = np.asarray(top_k_order(coarse, member_ids, budget), dtype=np.int64)
            members = members[keep]
            member_ids = [member_ids[i] for i in keep.tolist()]
            scores = distances(
                self.metric, query, self.erq.fine[members], self.erq.fine_norms[members]
            )
        best = top_k_order(scores, member_ids, top_k)
        return AnnResult([int(members[i]) for i in best], [float(scores[i]) for i in best])


def build_ivf(
    metric: Metric,
    coarse_bits: int,
    rerank_bits: int,
    ids: list[str],
    positions: IntArray,
    vectors: Sequence[FloatArray],
) -> IvfIndex | None:
    """The index over rows with a non-empty vector, or None below 8 usable rows.

    Rows whose dimension differs from the first such row are left out. Bits are
    validated only when an index actually gets built, like the real node.
    """
    usable = [i for i, v in enumerate(vectors) if v.shape[0] > 0]
    if len(usable) < MIN_TRAINING_POINTS:
        return None
    dim = vectors[usable[0]].shape[0]
    usable = [i for i in usable if vectors[i].shape[0] == dim]
    if len(usable) < MIN_TRAINING_POINTS:
        return None
    validate_bits(coarse_bits, rerank_bits)
    matrix = np.vstack([vectors[i] for i in usable]).astype(np.float32)
    return IvfIndex(
        metric,
        coarse_bits,
        rerank_bits,
        [ids[i] for i in usable],
        positions[np.asarray(usable, dtype=np.int64)],
        matrix,
    )
