"""The plans in plans/ run: the quickstart from a clean directory, the examples against an
emulator and the moto S3 server.

The examples wait for the index; the real server has no indexer, so their emulators run
``indexer="background"`` in place of the operator's indexer fleet (``indexer.mode:
external``)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import run_cli
from tests.conftest import RunningEmulator, S3Server

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_applies_then_has_no_changes(tmp_path: Path) -> None:
    """`make demo`'s command: the quickstart applies, verifies and summarises; the re-run is a no-op."""
    (tmp_path / "plans").symlink_to(REPO / "plans")
    # The comment a reviewer sees first: the filtered check names its value, and nothing
    # needs attention, so there is no Warnings section.
    review = run_cli(
        "plan", "plans/quickstart.yaml", "--format", "markdown", cwd=tmp_path, timeout=300
    ).stdout
    assert 'filter category = "outerwear"' in review
    assert "#### Warnings" not in review and "<!-- elax-plan:quickstart -->" in review
    assert "| estimate | ~" in review and "| throttle | pause above a WAL lag of 8" in review
    first = run_cli("apply", "plans/quickstart.yaml", "--auto-approve", cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "Plan: 1 file to write" in first.stdout
    assert "Backfill succeeded" in first.stdout
    summary = (tmp_path / ".elax-demo" / "summary.md").read_text()
    assert summary.startswith("# ✅ Backfill succeeded: `quickstart`")
    # No indexer daemon: apply compacted in-process (indexer.mode: command), and says so.
    assert "`command`: the embedded emulator compacts in-process" in summary
    assert "| after writes |" in summary and "compacted namespace 'quickstart-products'" in summary
    # Runbook step 5: the workload against the exact results shipped with the data.
    assert "Compare with the baseline" in first.stdout and "12 workload queries" in first.stdout
    comparison = summary[summary.index("## Comparison") : summary.index("## WAL")]
    assert "mean overlap@k 1.0000 over 12 of 12 queries" in comparison
    assert "| vector_exact | 6 | 1.0000 |" in comparison
    second = run_cli("apply", "plans/quickstart.yaml", "--auto-approve", cwd=tmp_path, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "No changes" in second.stdout
    plan = run_cli(
        "plan", "plans/quickstart.yaml", "--detailed-exitcode", cwd=tmp_path, timeout=300
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
    # The pull-request comment of the finished plan: its marker, the last run (not a
    # warning: it passed), paths as the plan file writes them, a legend, the filter's value.
    comment = run_cli(
        "plan", "plans/quickstart.yaml", "--format", "markdown", cwd=tmp_path, timeout=300
    ).stdout
    assert comment.startswith("<!-- elax-plan:quickstart -->\n")
    assert "#### Warnings" not in comment and "verification passed" in comment
    assert "| `=` | `plans/data/quickstart.ndjson` |" in comment and "file://" not in comment
    assert "`+` new · `~` changed" in comment and "| what | value |" in comment


# --- the examples, against an emulator and the moto S3 server -------------------------------


def s3_with_buckets(server: S3Server, *buckets: str) -> Any:
    """An s3fs filesystem on the moto server in which ``buckets`` exist."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options())
    for bucket in buckets:
        if not fs.exists(bucket):
            fs.mkdir(bucket)
    return fs


def clustered(n: int, dims: int, seed: int) -> np.ndarray:
    """Vectors in tight clusters, so an IVF index finds true neighbours (recall near 1)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((10, dims)) * 5
    return (centres[rng.integers(0, 10, n)] + rng.standard_normal((n, dims)) * 0.1).astype(
        np.float32
    )


def test_wal_trim_example_runs(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """plans/examples/wal-trim.yaml applies against an emulator that recovers from its parts,
    as the example asserts (nothing is old enough to trim). The served emulator models an
    indexer fleet (the example leaves indexer.mode external for a remote URL)."""
    emu = serve_emulator(
        EmulatorConfig(
            (tmp_path / "elacsym-data").as_uri(), indexer="background", recover_from_parts=True
        )
    )
    (tmp_path / "exports").mkdir()
    vectors = clustered(300, 16, 1)
    lines = [
        orjson.dumps(
            {"id": i, "vector": v, "title": f"item {i}"}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        for i, v in enumerate(vectors)
    ]
    (tmp_path / "exports" / "catalogue-001.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    plan = REPO / "plans" / "examples" / "wal-trim.yaml"
    env = {"ELACSYM_URL": emu.url}
    done = run_cli("apply", str(plan), "--auto-approve", cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Backfill succeeded" in done.stdout
    assert "WAL trim" in done.stdout


def test_migration_example_runs_against_s3(
    tmp_path: Path, s3_server: S3Server, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """plans/examples/migration-verified.yaml: gzipped NDJSON and state on S3, every check passes."""
    fs = s3_with_buckets(s3_server, "exports", "elax-plan-state")
    vectors = clustered(400, 8, 2)
    vectors[0] = np.array([0.12, -0.3, 0.44, 0.05, -0.21, 0.33, 0.0, 0.9], dtype=np.float32)
    for part in range(2):
        rows = []
        for i in range(part * 200, part * 200 + 200):
            rows.append(
                orjson.dumps(
                    {
                        "doc_id": "kb-1042" if i == 0 else f"kb-{i}",
                        "embedding": vectors[i],
                        "title": "How to reset password" if i % 7 == 0 else f"Article {i}",
                        "lang": "en" if i % 2 == 0 else "de",
                        "status": "published",
                    },
                    option=orjson.OPT_SERIALIZE_NUMPY,
                )
            )
        fs.pipe(f"exports/legacy-docs/part-{part:03d}.ndjson.gz", gzip.compress(b"\n".join(rows)))
    config = tmp_path / "aws-config"
    config.write_text("[profile migration]\nregion = us-east-1\n")
    creds = tmp_path / "aws-credentials"
    creds.write_text("[migration]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    emu = serve_emulator(EmulatorConfig((tmp_path / "store").as_uri(), indexer="background"))
    env = {
        "ELACSYM_URL": emu.url,
        "ELACSYM_DATA_ROOT": (tmp_path / "store").as_uri(),
        "AWS_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
    }
    plan = REPO / "plans" / "examples" / "migration-verified.yaml"
    done = run_cli("apply", str(plan), "--auto-approve", cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Backfill succeeded" in done.stdout
    assert fs.exists("elax-plan-state/migrations/docs-migration-2026/state.json")
    assert (tmp_path / "migration-summary.md").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_s3_parquet_example_runs(
    tmp_path: Path, s3_server: S3Server, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """plans/examples/s3-parquet.yaml: a Parquet snapshot on S3 (include + rename) applies."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = s3_with_buckets(s3_server, "datasets", "elax-plan-state")
    n = 300
    vectors = clustered(n, 768, 3)
    table = pa.table(
        {
            "product_id": pa.array(range(n), type=pa.int64()),
            "embedding_v3": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 768),
            "title_v2": [f"product {i}" for i in range(n)],
            "category": ["outdoor" if i % 2 else "home" for i in range(n)],
            "price": [float(i) for i in range(n)],
            "brand": ["acme"] * n,
            "internal_note": ["not copied"] * n,
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=100)
    fs.pipe("datasets/products/2026-11/part-0.parquet", sink.getvalue().to_pybytes())
    emu = serve_emulator(EmulatorConfig((tmp_path / "store").as_uri(), indexer="background"))
    env = {
        "ELACSYM_URL": emu.url,
        "ELACSYM_DATA_ROOT": (tmp_path / "store").as_uri(),
        "AWS_ENDPOINT_URL": s3_server.endpoint_url,
    }
    plan = REPO / "plans" / "examples" / "s3-parquet.yaml"
    done = run_cli("apply", str(plan), "--auto-approve", cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Backfill succeeded" in done.stdout
    hits = emu.query("products", {"vector": vectors[5].tolist(), "top_k": 1}).json()["hits"]
    assert hits[0]["id"] == "5"
    assert hits[0]["attributes"] == {
        "brand": "acme",
        "category": "outdoor",
        "price": 5.0,
        "title": "product 5",
    }
