"""The committed quickstart dataset: reproducible from its script, small, and as promised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "plans" / "data" / "quickstart.ndjson"


def test_dataset_is_reproducible_from_the_script(tmp_path: Path) -> None:
    """scripts/make_quickstart_data.py with its fixed seed recreates the committed file exactly."""
    out = tmp_path / "q.ndjson"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_quickstart_data.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == DATA.read_bytes()


def test_query_workload_and_exact_results_are_reproducible(tmp_path: Path) -> None:
    """scripts/make_quickstart_queries.py recreates the committed workload and its numpy
    exact results (the quickstart's comparison baseline) exactly."""
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_quickstart_queries.py"),
            "--out-dir",
            tmp_path,
        ],
        check=True,
        capture_output=True,
    )
    for name in ("quickstart-queries.ndjson", "quickstart-expected.ndjson"):
        assert (tmp_path / name).read_bytes() == (DATA.parent / name).read_bytes(), name


def test_dataset_shape() -> None:
    """At least 2,000 rows of 64-d vectors with id, title and category, under 3 MB."""
    assert DATA.stat().st_size < 3 * 1024 * 1024
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    assert len(rows) >= 2000
    assert len({row["id"] for row in rows}) == len(rows)
    assert all(len(row["vector"]) == 64 for row in rows)
    assert all(isinstance(row["title"], str) and isinstance(row["category"], str) for row in rows)


def test_bm25_smoke_query_has_a_guaranteed_hit() -> None:
    """Row 1 matches the quickstart's "ultralight jacket" BM25 query and its category filter."""
    first = json.loads(DATA.read_text().splitlines()[0])
    assert first["id"] == 1
    assert {"ultralight", "jacket"} <= set(first["title"].lower().split())
    assert first["category"] == "outerwear"
