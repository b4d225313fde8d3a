"""Small real source files for the reader tests: NDJSON rows and a Parquet file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from elax_plan.apply.readers import ParquetRecord, RawRow


def ndjson(*records: Any) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return path.as_uri()


def ids(rows: list[RawRow]) -> list[Any]:
    return [r.record["id"] if isinstance(r.record, dict) else r.record for r in rows]


ROWS = [{"id": i, "vector": [i, i + 0.5], "title": f"t{i}"} for i in range(10)]


def parquet_file(tmp_path: Path, rows: int = 25, dims: int = 4, group: int = 10) -> str:
    vectors = np.arange(rows * dims, dtype=np.float32).reshape(rows, dims)
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dims),
            "title": [f"t{i}" for i in range(rows)],
        }
    )
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path, row_group_size=group)
    return path.as_uri()


def parquet_ids(rows: list[RawRow]) -> list[int]:
    out = []
    for r in rows:
        assert isinstance(r.record, ParquetRecord)
        out.append(r.record.get("id"))
    return out
