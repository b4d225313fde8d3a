"""Parts as the real indexer builds them (CONTRACT §4.4, §5): buckets of WAL batches, assets, merges.

Owns the bucket a run accumulates (upserts, deletes, and PR #11's patches and
delete-by-filter applied inside the bucket), the rows Parquet file and the
other assets, the manifest, and reading a part back (for a merge, or to rebuild
a namespace with ``recover_from_parts``). Assets go to ``Stores.assets`` (the
object store), manifests to ``Stores.meta`` (the data root).

Used by the background indexer (``indexer.py``) and by ``compact``
(``elax-plan emulator compact``); must not decide when to run or touch
``router.json``.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from elax_plan.emulator.filtering import matches
from elax_plan.emulator.layout import (
    REMOVE_VECTOR,
    Delete,
    DeleteByFilter,
    PartManifest,
    Patch,
    Upsert,
    WalBatch,
    encode_attributes,
    encode_manifest,
    manifest_key,
    part_asset_prefix,
    part_id_for,
)
from elax_plan.emulator.model import Document, ServerError
from elax_plan.emulator.storage import Stores

_PART_COUNTER = itertools.count(1)
ROWS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.utf8(), nullable=False),
        pa.field("vector", pa.list_(pa.float32())),
        pa.field("attributes", pa.large_utf8()),
    ]
)


def new_part_id(ns_name: str) -> str:
    """``part-{ns}-{unix micros}-{counter:016}``; the counter is per process, from 1."""
    return part_id_for(ns_name, time.time_ns() // 1000, next(_PART_COUNTER))


@dataclass
class Bucket:
    """The operations of consecutive non-empty batches that will become one part."""

    start: int = 0
    end: int = 0
    upserts: list[Document] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.upserts and not self.deletes

    def add(self, seq: int, batch: WalBatch) -> int:
        """Take one non-empty batch; returns its upsert count (at least 1, for pacing)."""
        if self.empty:
            self.start = seq
        self.end = seq
        n = 0
        for op in batch.operations:
            if isinstance(op, Upsert):
                self.upserts.append(op.document)
                n += 1
            elif isinstance(op, Delete):
                self.deletes.append(op.id)
            elif isinstance(op, Patch):
                self._patch(op)
            elif isinstance(op, DeleteByFilter):
                self.deletes.extend(sorted({d.id for d in self.upserts if matches(op.filter, d)}))
        return max(n, 1)

    def _patch(self, op: Patch) -> None:
        # PR #11's indexer patches the first bucket row with that id; others are untouched.
        for i, doc in enumerate(self.upserts):
            if doc.id == op.id:
                self.upserts[i] = patched(doc, op, for_indexer=True)
                return


def patched(doc: Document, op: Patch, *, for_indexer: bool = False) -> Document:
    """``doc`` with ``op`` applied (a new object); PR #11's rules for attribute objects.

    The query node and the indexer differ in one corner: the node keeps an empty
    object it did not change, the indexer always turns an empty object into none.
    """
    vector = doc.vector
    if op.vector is REMOVE_VECTOR:
        vector = None
    elif isinstance(op.vector, np.ndarray):
        vector = op.vector
    attributes = doc.attributes
    if op.attributes is not None:
        attributes = _patch_attributes(doc.attributes, op, for_indexer)
    return dataclasses.replace(doc, vector=vector, attributes=attributes)


def _patch_attributes(target: Any, op: Patch, for_indexer: bool) -> Any:
    patch = op.attributes
    assert patch is not None
    if target is None:
        obj: dict[str, Any] = {}
    elif isinstance(target, dict):
        obj = dict(target)
    else:
        shown = orjson.dumps(target).decode()
        raise ServerError(f"cannot apply attribute patch to non-object value: {shown}")
    had_value = target is not None
    changed = False
    if patch.clear:
        changed = had_value
        obj.clear()
    for key in patch.remove:
        if obj.pop(key, _GONE) is not _GONE:
            changed = True
    for key, value in patch.set:
        if key not in obj or obj[key] != value:
            changed = True
        obj[key] = value
    if obj:
        return obj
    if for_indexer or changed or patch.clear or not had_value:
        return None
    return obj


_GONE = object()


def rows_table(upserts: list[Document]) -> pa.Table:
    """The rows Parquet table: id, vector (list<f32>, null when absent), attributes as JSON."""
    ids = [d.id for d in upserts]
    lengths = np.zeros(len(upserts) + 1, dtype=np.int32)
    chunks = []
    mask = np.zeros(len(upserts), dtype=bool)
    for i, d in enumerate(upserts):
        vec = d.vector
        if vec is None:
            mask[i] = True
        else:
            chunks.append(vec)
            lengths[i + 1] = len(vec)
    offsets = np.cumsum(lengths, dtype=np.int32)
    values = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float32)
    vectors = pa.ListArray.from_arrays(
        pa.array(offsets, type=pa.int32()),
        pa.array(values, type=pa.float32()),
        mask=pa.array(mask) if mask.any() else None,
    )
    attributes = pa.array(
        [None if d.attributes is None else encode_attributes(d.attributes) for d in upserts],
        type=pa.large_binary(),
    ).cast(pa.large_utf8())
    return pa.Table.from_arrays(
        [pa.array(ids, type=pa.utf8()), vectors, attributes], schema=ROWS_SCHEMA
    )


def table_documents(table: pa.Table) -> list[Document]:
    """The rows of a part's Parquet table as documents, in WAL order."""
    out: list[Document] = []
    ids = table.column("id").to_pylist()
    vectors = table.column("vector").to_pylist()
    attributes = table.column("attributes").to_pylist()
    for doc_id, vec, attrs in zip(ids, vectors, attributes, strict=True):
        vector = None if vec is None else np.asarray(vec, dtype=np.float32)
        out.append(Document(doc_id, vector, None if attrs is None else orjson.loads(attrs)))
    return out


def write_part(
    stores: Stores, ns_name: str, part: PartManifest, rows: pa.Table, tombstones: list[str]
) -> None:
    """Assets first (object store), manifest last (data root): a manifest never names missing assets."""
    assets = stores.assets
    prefix = part_asset_prefix(ns_name, part.id)
    sink = pa.BufferOutputStream()
    # Dictionary encoding of random floats only costs time (6x slower, larger files).
    pq.write_table(
        rows, sink, compression="zstd", use_compliant_nested_type=False, use_dictionary=False
    )
    assets.write(f"{prefix}/segment/rows.parquet", sink.getvalue().to_pybytes())
    if tombstones:
        assets.write(
            f"{prefix}/segment/tombstones.json",
            orjson.dumps(tombstones, option=orjson.OPT_INDENT_2),
        )
    meta: dict[str, Any] = {
        "generated_at": time.time_ns() // 1_000_000,
        "lists": 0,
        "tombstones": len(tombstones),
        "vectors": rows.num_rows,
    }
    assets.write(f"{prefix}/ivf/meta.json", orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    assets.write(f"{prefix}/ivf/centroids.bin", b"")
    assets.write(f"{prefix}/ivf/postings/.keep", b"")
    assets.write(f"{prefix}/filters/bitmaps/.keep", b"")
    stores.meta.write(manifest_key(ns_name, part.id), encode_manifest(part))


def flush_bucket(stores: Stores, ns_name: str, bucket: Bucket) -> tuple[PartManifest, pa.Table]:
    """Write ``bucket`` as a new part; its manifest and rows table."""
    part = PartManifest(
        id=new_part_id(ns_name),
        wal_start=bucket.start,
        wal_end=bucket.end,
        rows=len(bucket.upserts),
        tombstones=len(bucket.deletes),
    )
    rows = rows_table(bucket.upserts)
    write_part(stores, ns_name, part, rows, bucket.deletes)
    return part, rows


def read_part(stores: Stores, ns_name: str, part: PartManifest) -> tuple[pa.Table, list[str]]:
    """A part's rows table and tombstones; missing assets read as empty, as the real code does."""
    prefix = part_asset_prefix(ns_name, part.id)
    data = stores.assets.read(f"{prefix}/segment/rows.parquet")
    if data is None:
        table = rows_table([])
    else:
        table = pq.read_table(pa.BufferReader(data), schema=ROWS_SCHEMA)
    raw = stores.assets.read(f"{prefix}/segment/tombstones.json")
    tombstones: list[str] = [] if raw is None else list(orjson.loads(raw))
    return table, tombstones


def merge_parts(
    stores: Stores,
    ns_name: str,
    old: tuple[PartManifest, ...],
    cached: dict[str, tuple[pa.Table, list[str]]] | None = None,
) -> PartManifest:
    """Concatenate every part (no dedupe, tombstones not applied) into one; delete the old ones.

    ``cached`` holds rows and tombstones of parts this process wrote, so a merge need
    not read and decompress them again.
    """
    tables = []
    tombstones: list[str] = []
    for p in sorted(old, key=lambda p: p.wal_start):
        hit = cached.pop(p.id, None) if cached is not None else None
        table, deletes = hit if hit is not None else read_part(stores, ns_name, p)
        tables.append(table)
        tombstones.extend(deletes)
    rows = pa.concat_tables(tables) if tables else rows_table([])
    merged = PartManifest(
        id=new_part_id(ns_name),
        wal_start=min(p.wal_start for p in old),
        wal_end=max(p.wal_end for p in old),
        rows=rows.num_rows,
        compacted_from=tuple(p.id for p in sorted(old, key=lambda p: p.wal_start)),
        tombstones=len(tombstones),
    )
    write_part(stores, ns_name, merged, rows, tombstones)
    for p in old:
        stores.meta.delete(manifest_key(ns_name, p.id))
        stores.assets.delete_tree(part_asset_prefix(ns_name, p.id))
    if cached is not None:
        cached[merged.id] = (rows, tombstones)
    return merged
