"""Datasets, plans and WAL read-back for the apply tests."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson


@dataclass
class Dataset:
    """Source files and the exact documents they should produce (id → (vector, attributes))."""

    files: list[Path]
    docs: dict[str, tuple[list[float], dict[str, Any]]]


def make_dataset(
    folder: Path,
    files: int = 2,
    rows: int = 200,
    dims: int = 8,
    seed: int = 1,
    start_id: int = 0,
    prefix: str = "part",
) -> Dataset:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    words = ["red", "blue", "jacket", "boot", "hat", "down", "wool", "light"]
    pick = random.Random(seed)
    out: list[Path] = []
    docs: dict[str, tuple[list[float], dict[str, Any]]] = {}
    next_id = start_id
    for f in range(files):
        path = folder / f"{prefix}-{f:03d}.ndjson"
        lines = []
        for _ in range(rows):
            vec = [round(float(v), 5) for v in rng.standard_normal(dims)]
            attrs = {"title": " ".join(pick.sample(words, 3)), "n": next_id}
            lines.append(orjson.dumps({"id": next_id, "vector": vec, **attrs}))
            docs[str(next_id)] = (vec, attrs)
            next_id += 1
        path.write_bytes(b"\n".join(lines) + b"\n")
        out.append(path)
    return Dataset(out, docs)


def write_plan(
    path: Path,
    *,
    url: str,
    store: str,
    source: str,
    state: str,
    namespace: str = "docs",
    dims: int | None = 8,
    extra: str = "",
    target_extra: str = "",
    name: str = "backfill",
) -> Path:
    dims_line = f"  vector_dims: {dims}\n" if dims is not None else ""
    path.write_text(
        f"""version: 1
name: {name}
target:
  url: {url}
  store: {store}
  namespace: {namespace}
  distance_metric: cosine
{dims_line}{target_extra}source:
  uri: {source}
state:
  uri: {state}
{extra}"""
    )
    return path


def wal_documents(
    store_dir: Path, namespace: str, *, skip_torn: bool = False
) -> dict[str, tuple[list[float], Any]]:
    """Last-write-wins documents from the namespace's WAL files, read straight from disk;
    with ``skip_torn`` a file that does not parse (torn by racing appends) adds nothing."""
    docs: dict[str, tuple[list[float], Any]] = {}
    wal = store_dir / "namespaces" / namespace / "wal"
    for f in sorted(wal.glob("WAL-*.json")):
        try:
            batch = orjson.loads(f.read_bytes())
        except orjson.JSONDecodeError:
            if skip_torn:
                continue
            raise
        for op in batch["operations"]:
            if op["op"] == "upsert":
                d = op["document"]
                docs[d["id"]] = (d.get("vector"), d.get("attributes"))
            else:
                docs.pop(op["id"], None)
    return docs


def wal_count(store_dir: Path, namespace: str = "docs") -> int:
    """How many WAL objects the namespace has on disk."""
    wal = store_dir / "namespaces" / namespace / "wal"
    return len(list(wal.glob("WAL-*.json"))) if wal.exists() else 0


def torn_objects(store_dir: Path, namespace: str) -> set[int]:
    """The sequences of WAL files that do not parse (a node's replay would stop at them)."""
    torn = set()
    for f in (store_dir / "namespaces" / namespace / "wal").glob("WAL-*.json"):
        try:
            orjson.loads(f.read_bytes())
        except orjson.JSONDecodeError:
            torn.add(int(f.stem.split("-")[1]))
    return torn


def assert_exact(store_dir: Path, namespace: str, expected: Dataset) -> None:
    """The namespace holds exactly the dataset: same ids, float32-equal vectors, same attributes."""
    got = wal_documents(store_dir, namespace)
    assert set(got) == set(expected.docs), (
        f"missing {sorted(set(expected.docs) - set(got))[:5]}, "
        f"extra {sorted(set(got) - set(expected.docs))[:5]}"
    )
    for doc_id, (vec, attrs) in expected.docs.items():
        gv, ga = got[doc_id]
        assert np.array_equal(
            np.asarray(gv, dtype=np.float32), np.asarray(vec, dtype=np.float32)
        ), doc_id
        assert ga == attrs, doc_id


def run_cli(
    *args: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m elax_plan ARGS`` in a subprocess, output captured, standard input empty;
    ``env`` adds variables, ``cwd`` is where a plan's relative paths resolve. The one runner
    of the CLI as a process that the tests share."""
    return subprocess.run(
        [sys.executable, "-m", "elax_plan", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=None if env is None else {**os.environ, **env},
    )


# The summary's sections, in order: a summary is complete when it has every one.
SUMMARY_SECTIONS = (
    "## Workload",
    "## Ingest",
    "## Throttling",
    "## Indexer",
    "## Delivery",
    "## Retries",
    "## Rejected rows",
    "## Verification",
    "## Recall",
    "## WAL\n",
    "## Charts",
)


def run_dirs(state_dir: Path, plan_name: str = "backfill") -> list[Path]:
    """The plan's run folders under a file:// state, oldest first."""
    runs = state_dir / plan_name / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.exists() else []


def last_record(state_dir: Path, plan_name: str = "backfill") -> dict[str, Any]:
    """The newest run's ``summary.json`` under a file:// state."""
    runs = [r for r in run_dirs(state_dir, plan_name) if (r / "summary.json").exists()]
    assert runs, f"no run with a summary under {state_dir}"
    record: dict[str, Any] = orjson.loads((runs[-1] / "summary.json").read_bytes())
    return record


def check(record: dict[str, Any], key: str) -> dict[str, Any]:
    """The verification verdict ``key`` (``wait_for_index``, ``smoke:NAME``, ``recall``…)."""
    found: list[dict[str, Any]] = [c for c in record["verification"] if c["key"] == key]
    assert found, f"no check {key!r} in {[c['key'] for c in record['verification']]}"
    return found[0]
