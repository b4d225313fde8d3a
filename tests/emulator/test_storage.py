"""The store layout read back with fsspec on memory://, file:// and s3:// (CONTRACT §4)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from elax_plan.emulator import EmbeddedTransport, Emulator, EmulatorConfig
from tests.conftest import StoreLocation


def client_for(emulator: Emulator) -> httpx.Client:
    return httpx.Client(transport=EmbeddedTransport(emulator), base_url="http://embedded")


@pytest.fixture
def idle(store_location: StoreLocation) -> Iterator[Emulator]:
    """An emulator with no indexer daemon (the default): its indexer runs only when a test
    calls it."""
    config = EmulatorConfig(store_location.url, dict(store_location.storage_options))
    with Emulator(config) as emulator:
        yield emulator


def write(client: httpx.Client, ns: str, ids: range, dims: int = 4) -> int:
    body = {
        "upserts": [
            {"id": str(i), "vector": [float(i)] * dims, "attributes": {"title": f"t{i}", "n": i}}
            for i in ids
        ]
    }
    r = client.post(f"/v2/namespaces/{ns}", json=body)
    assert r.status_code == 200, r.text
    return int(r.json()["wal_sequence"])


def test_wal_files_and_router_are_laid_out_as_contract(
    idle: Emulator, store_location: StoreLocation
) -> None:
    """WAL-{seq:020}.json files in wal/, compact router.json with the contract's key order."""
    with client_for(idle) as c:
        write(c, "docs", range(0, 3))
        write(c, "docs", range(3, 5))
    fs = store_location.filesystem()
    wal = sorted(
        p.rsplit("/", 1)[-1]
        for p in fs.ls(store_location.path("namespaces/docs/wal"), detail=False)
    )
    assert wal == ["WAL-00000000000000000001.json", "WAL-00000000000000000002.json"]
    first = fs.cat_file(store_location.path("namespaces/docs/wal/WAL-00000000000000000001.json"))
    assert first.startswith(
        b'{"namespace":"docs","operations":[{"op":"upsert","document":{"id":"0",'
        b'"vector":[0.0,0.0,0.0,0.0],"attributes":{"n":0,"title":"t0"}}}'
    )
    raw = fs.cat_file(store_location.path("namespaces/docs/router.json"))
    router = orjson.loads(raw)
    assert list(router) == [
        "namespace",
        "epoch",
        "wal_highwater",
        "updated_at",
        "indexed_wal",
        "parts",
        "pin_hot",
    ]
    assert b" " not in raw
    assert router["namespace"] == "docs"
    assert router["wal_highwater"] == 2 and router["epoch"] == 2 and router["indexed_wal"] == 0
    assert router["updated_at"] > 1_600_000_000_000  # Unix milliseconds
    assert not [p for p in fs.find(store_location.path("namespaces")) if ".tmp" in p]


def test_indexer_writes_parts_manifests_and_assets(
    idle: Emulator, store_location: StoreLocation
) -> None:
    """A run cuts parts at 256 upserts on batch boundaries and writes manifest + assets."""
    with client_for(idle) as c:
        write(c, "docs", range(0, 200))
        write(c, "docs", range(200, 300))
        write(c, "docs", range(300, 350))
        c.post("/v2/namespaces/docs", json={"deletes": ["1", "2"]})
    ns = idle.namespaces.get("docs")
    assert idle.indexer.run_once(ns)
    fs = store_location.filesystem()
    router = orjson.loads(fs.cat_file(store_location.path("namespaces/docs/router.json")))
    assert router["indexed_wal"] == 4 and router["wal_highwater"] == 4
    parts = router["parts"]
    assert [(p["wal_start"], p["wal_end"], p["rows"]) for p in parts] == [(1, 2, 300), (3, 4, 50)]
    assert parts[1]["tombstones"] == 2 and "tombstones" not in parts[0]
    for p in parts:
        assert re.fullmatch(r"part-docs-\d{16}-\d{16}", p["id"])
        manifest = fs.cat_file(store_location.path(f"namespaces/docs/parts/{p['id']}.json"))
        assert orjson.loads(manifest) == p
        assert manifest.startswith(b'{\n  "id": ') and not manifest.endswith(b"\n")
        base = store_location.path(f"namespaces/docs/parts/{p['id']}")
        with fs.open(f"{base}/segment/rows.parquet", "rb") as f:
            table = pq.read_table(f)
        assert table.num_rows == p["rows"]
        assert table.schema.names == ["id", "vector", "attributes"]
        assert str(table.schema.field("vector").type) == "list<item: float>"
        assert str(table.schema.field("attributes").type) == "large_string"
        meta = orjson.loads(fs.cat_file(f"{base}/ivf/meta.json"))
        assert list(meta) == ["generated_at", "lists", "tombstones", "vectors"]
        assert fs.cat_file(f"{base}/ivf/centroids.bin") == b""
        assert fs.exists(f"{base}/ivf/postings/.keep")
        assert fs.exists(f"{base}/filters/bitmaps/.keep")
    tomb = store_location.path(f"namespaces/docs/parts/{parts[1]['id']}/segment/tombstones.json")
    assert orjson.loads(fs.cat_file(tomb)) == ["1", "2"]


def test_restart_serves_the_same_data(idle: Emulator, store_location: StoreLocation) -> None:
    """A second emulator on the same store rebuilds the namespace from the WAL."""
    with client_for(idle) as c:
        write(c, "docs", range(0, 20))
        c.post("/v2/namespaces/docs", json={"deletes": ["3"]})
        before = c.post("/v2/namespaces/docs/query", json={"vector": [5.0] * 4, "top_k": 30})
    config = EmulatorConfig(store_location.url, dict(store_location.storage_options))
    with Emulator(config) as second, client_for(second) as c2:
        after = c2.post("/v2/namespaces/docs/query", json={"vector": [5.0] * 4, "top_k": 30})
        assert after.json() == before.json()
        assert len(after.json()["hits"]) == 19
        assert write(c2, "docs", range(20, 21)) == 3


def test_strong_read_sees_another_nodes_writes(
    idle: Emulator, store_location: StoreLocation
) -> None:
    """A node that loaded a namespace earlier sees another node's write only with min_wal_sequence."""
    config = EmulatorConfig(store_location.url, dict(store_location.storage_options))
    with Emulator(config) as other, client_for(idle) as c, client_for(other) as c2:
        write(c, "docs", range(0, 2))
        assert (
            len(c2.post("/v2/namespaces/docs/query", json={"vector": [1.0] * 4}).json()["hits"])
            == 2
        )
        seq = write(c, "docs", range(2, 4))
        stale = c2.post("/v2/namespaces/docs/query", json={"vector": [1.0] * 4})
        assert len(stale.json()["hits"]) == 2
        fresh = c2.post(
            "/v2/namespaces/docs/query", json={"vector": [1.0] * 4, "min_wal_sequence": seq}
        )
        assert len(fresh.json()["hits"]) == 4


def test_foreign_file_in_wal_dir_breaks_the_namespace(
    idle: Emulator, store_location: StoreLocation
) -> None:
    """Any file in wal/ not named WAL-<digits>.json makes a fresh node answer 500 for it."""
    with client_for(idle) as c:
        write(c, "docs", range(0, 2))
    idle.store.write("namespaces/docs/wal/notes.txt", b"x")
    config = EmulatorConfig(store_location.url, dict(store_location.storage_options))
    with Emulator(config) as second, client_for(second) as c2:
        r = c2.post("/v2/namespaces/docs/query", json={"vector": [1.0] * 4})
        assert r.status_code == 500
        assert "notes.txt" in r.json()["error"]
