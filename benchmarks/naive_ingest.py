"""The straightforward backfill script that issue #7's ``ingest.ratio_vs_naive`` compares with.

What an operator writes in ten minutes: stdlib ``json`` to read each NDJSON line, the same row
checks elax-plan makes (id present and non-empty, vector of the declared length, every element
a number — not a boolean — finite and within float32 range), 100 rows per request, one request
at a time over one keep-alive connection, every answer checked for a ``wal_sequence``. Bodies
are written compactly (no spaces), which favours this script: it sends fewer bytes.

    python -m benchmarks.naive_ingest --url URL --namespace NS [--dims 768] FILE...

Prints one JSON line: rows, bytes, requests, seconds (first file opened to last answer).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import time
from typing import Any
from urllib.parse import urlsplit

FLOAT32_LIMIT = 3.4028235677973366e38  # the smallest magnitude that narrows to ±inf (as elax-plan)
BATCH_ROWS = 100


def check_row(row: Any, dims: int) -> dict[str, Any]:
    """The row as an upsert, or ValueError saying what is wrong with it."""
    if not isinstance(row, dict):
        raise ValueError("line is not a JSON object")
    doc_id = row.get("id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, int | str) or doc_id == "":
        raise ValueError(f"bad id {doc_id!r}")
    vector = row.get("vector")
    if not isinstance(vector, list) or len(vector) != dims:
        raise ValueError("vector missing or of the wrong length")
    for x in vector:
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise ValueError("vector element is not a number")
        if not math.isfinite(x) or abs(x) >= FLOAT32_LIMIT:
            raise ValueError("vector element outside float32 range")
    attributes = {k: v for k, v in row.items() if k not in ("id", "vector")}
    doc: dict[str, Any] = {"id": str(doc_id), "vector": vector}
    if attributes:
        doc["attributes"] = attributes
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    parts = urlsplit(args.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    path = f"/v2/namespaces/{args.namespace}"
    rows = sent_bytes = requests = 0

    def send(batch: list[dict[str, Any]]) -> None:
        nonlocal sent_bytes, requests
        body = json.dumps({"upserts": batch}, separators=(",", ":")).encode()
        conn.request("POST", path, body=body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200 or "wal_sequence" not in json.loads(answer):
            raise SystemExit(f"POST {path} answered {response.status}: {answer[:200]!r}")
        sent_bytes += len(body)
        requests += 1

    start = time.perf_counter()
    for name in args.files:
        batch: list[dict[str, Any]] = []
        with open(name, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                batch.append(check_row(json.loads(line), args.dims))
                rows += 1
                if len(batch) == BATCH_ROWS:
                    send(batch)
                    batch = []
        if batch:
            send(batch)
    elapsed = time.perf_counter() - start
    conn.close()
    print(json.dumps({"rows": rows, "bytes": sent_bytes, "requests": requests, "seconds": elapsed}))


if __name__ == "__main__":
    main()
