"""Query vectors sampled from the source, for the smoke queries and the recall gate.

Owns the seeded choice of rows: a bounded read of the source (never all of
it) through the same readers and row mapper apply writes with, so a sampled
row is exactly the document that was written. Read-only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from elax_plan.apply.readers import open_source
from elax_plan.apply.rows import MappedRow, RowMapper
from elax_plan.spec import PlanSpec, reveal

SAMPLE_POOL_PER_QUERY = 20
SAMPLE_POOL_MIN = 1_000


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


def sampler(spec: PlanSpec, urls: Sequence[str]) -> Callable[[int, int], list[SampledRow]]:
    """``sample_source_rows`` over ``urls``, each (n, seed) sampled once."""
    cache: dict[tuple[int, int], list[SampledRow]] = {}

    def sample(n: int, seed: int) -> list[SampledRow]:
        if (n, seed) not in cache:
            cache[(n, seed)] = sample_source_rows(spec, urls, n, seed)
        return cache[(n, seed)]

    return sample
