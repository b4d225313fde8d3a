"""Generate the quickstart's query workload and its exact results:
``plans/data/quickstart-queries.ndjson`` and ``plans/data/quickstart-expected.ndjson``.

Owns only those two files. The queries are what users of the catalogue would send: vectors
near a product (a row's vector plus noise, fixed seed) searched exactly (``use_ivf: false``)
and by ANN with the recall gate's settings, and a filtered one per category. The expected
results are a numpy exact search (cosine distance in float32, ties by id, like elacsym) over
``plans/data/quickstart.ndjson``: the "source system" the quickstart compares the emulator
with. Reproducible byte for byte: ``python scripts/make_quickstart_queries.py`` and ``git
diff`` shows nothing.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "plans" / "data"
SEED = 20261126
TOP_K = 10
ANN = {"target_recall": 0.5, "rerank_mode": "fp32", "rerank_scale": 10}


def _rows() -> list[dict[str, Any]]:
    text = (DATA / "quickstart.ndjson").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


def _near(rng: random.Random, vector: list[float]) -> list[float]:
    noisy = [v + rng.gauss(0.0, 0.05) for v in vector]
    norm = sum(v * v for v in noisy) ** 0.5
    return [round(v / norm, 4) for v in noisy]


def _queries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    picked = rng.sample(rows, 12)
    queries: list[dict[str, Any]] = []
    for row in picked[:6]:
        queries.append(
            {
                "name": f"near {row['title'].lower()} (exact)",
                "vector": _near(rng, row["vector"]),
                "top_k": TOP_K,
                "ann_params": {"use_ivf": False},
            }
        )
    for row in picked[6:10]:
        queries.append(
            {
                "name": f"near {row['title'].lower()} (ann)",
                "vector": _near(rng, row["vector"]),
                "top_k": TOP_K,
                "ann_params": ANN,
            }
        )
    for row in picked[10:]:
        queries.append(
            {
                "name": f"{row['category']} near {row['title'].lower()}",
                "vector": _near(rng, row["vector"]),
                "top_k": TOP_K,
                "filters": {"op": "eq", "field": "category", "value": row["category"]},
                "ann_params": {"use_ivf": False},
            }
        )
    return queries


def _exact(rows: list[dict[str, Any]], query: dict[str, Any]) -> dict[str, Any]:
    keep = [
        r
        for r in rows
        if "filters" not in query or r[query["filters"]["field"]] == query["filters"]["value"]
    ]
    matrix = np.asarray([r["vector"] for r in keep], dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    q = np.asarray(query["vector"], dtype=np.float32)
    distance = np.float32(1.0) - matrix @ (q / np.linalg.norm(q))
    ids = [str(r["id"]) for r in keep]
    order = sorted(range(len(keep)), key=lambda i: (float(distance[i]), ids[i]))[: query["top_k"]]
    return {
        "name": query["name"],
        "ids": [ids[i] for i in order],
        "scores": [round(float(distance[i]), 6) for i in order],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DATA, help="where to write both files")
    out = parser.parse_args().out_dir
    rows = _rows()
    queries = _queries(rows)
    lines = [json.dumps(q, separators=(",", ":")) for q in queries]
    (out / "quickstart-queries.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = [json.dumps(_exact(rows, q), separators=(",", ":")) for q in queries]
    (out / "quickstart-expected.ndjson").write_text("\n".join(expected) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
