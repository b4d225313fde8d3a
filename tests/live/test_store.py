"""The store reader: router.json, part manifests and the WAL listing, as an emulator wrote them."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from elax_plan.emulator import EmbeddedTransport, Emulator, EmulatorConfig
from elax_plan.errors import TargetError
from elax_plan.live.model import PartInfo
from elax_plan.live.store import StoreReader, read_namespace
from elax_plan.spec.secrets import Secret
from tests.conftest import S3Server, StoreLocation


def _batch(ids: range, deletes: tuple[str, ...] = ()) -> dict[str, object]:
    body: dict[str, object] = {
        "upserts": [{"id": str(i), "vector": [float(i), 1.0], "attributes": {"n": i}} for i in ids]
    }
    if deletes:
        body["deletes"] = list(deletes)
    return body


@pytest.fixture
def written(store_location: StoreLocation) -> Iterator[tuple[StoreLocation, Emulator]]:
    """A store holding namespace "docs": 5 writes (one with deletes), indexed into parts."""
    config = EmulatorConfig(
        store_url=store_location.url,
        storage_options=store_location.storage_options,
        rows_per_part=4,
    )
    with Emulator(config) as emulator:
        with httpx.Client(transport=EmbeddedTransport(emulator), base_url="http://e") as client:
            for b in range(4):
                client.post("/v2/namespaces/docs", json=_batch(range(b * 3, b * 3 + 3)))
            client.post("/v2/namespaces/docs", json=_batch(range(12, 14), deletes=("0", "1")))
        emulator.indexer.run_once(emulator.namespaces.get("docs"))
        yield store_location, emulator


def test_router_matches_what_the_emulator_wrote(
    written: tuple[StoreLocation, Emulator],
) -> None:
    """Every router.json field and part manifest is read back as the emulator published it."""
    location, emulator = written
    router = emulator.namespaces.get("docs").router
    live = read_namespace(location.url, location.storage_options, "docs")
    assert live.exists and live.name == "docs"
    assert (live.epoch, live.wal_highwater, live.indexed_wal, live.updated_at) == (
        router.epoch,
        router.wal_highwater,
        router.indexed_wal,
        router.updated_at,
    )
    assert live.wal_highwater == 5 and live.indexed_wal == 5 and live.wal_lag == 0
    assert live.parts == tuple(
        PartInfo(p.id, p.wal_start, p.wal_end, p.rows, p.tombstones) for p in router.parts
    )
    assert sum(p.rows for p in live.parts) == 14
    assert sum(p.tombstones for p in live.parts) == 2
    assert live.wal_objects == ()  # only listed on request


def test_part_manifest_files_are_read(written: tuple[StoreLocation, Emulator]) -> None:
    """parts/{id}.json reads as the router's entry; an unknown id is None."""
    location, _ = written
    reader = StoreReader(location.url, location.storage_options)
    live = reader.read_namespace("docs")
    assert live.parts
    for part in live.parts:
        assert reader.read_part_manifest("docs", part.id) == part
    assert reader.read_part_manifest("docs", "part-docs-0-0000000000000000") is None


def test_wal_listing_has_every_batch_with_size_and_time(
    written: tuple[StoreLocation, Emulator],
) -> None:
    """with_wal lists WAL-<seq>.json objects in sequence order with their sizes and mtimes."""
    location, _ = written
    fs = location.filesystem()
    fs.pipe_file(location.path("namespaces/docs/wal/WAL-00000000000000000006.json.tmp"), b"{}")
    live = read_namespace(location.url, location.storage_options, "docs", with_wal=True)
    assert [w.sequence for w in live.wal_objects] == [1, 2, 3, 4, 5]
    for wal in live.wal_objects:
        path = location.path(f"namespaces/docs/wal/WAL-{wal.sequence:020d}.json")
        assert wal.size == fs.size(path) > 0
        assert abs(wal.modified - time.time()) < 600


def test_missing_namespace_is_empty(store_location: StoreLocation) -> None:
    """A namespace never written reads as exists=False with zero counters, on every backend."""
    live = read_namespace(
        store_location.url, store_location.storage_options, "fresh", with_wal=True
    )
    assert not live.exists
    assert (live.epoch, live.wal_highwater, live.indexed_wal, live.parts) == (0, 0, 0, ())
    assert live.wal_objects == ()


def test_missing_local_store_directory_is_an_empty_namespace(tmp_path: Path) -> None:
    """A local store directory that does not exist yet (first run) is an empty namespace."""
    live = read_namespace((tmp_path / "not" / "yet").as_uri(), {}, "docs")
    assert not live.exists


def test_reader_hands_out_no_filesystem_or_path_to_write_through(tmp_path: Path) -> None:
    """StoreReader keeps its filesystem and paths private: readers of live state are read-only."""
    reader = StoreReader(tmp_path.as_uri(), {})
    public = {name for name in dir(reader) if not name.startswith("_")}
    assert public == {"url", "read_namespace", "read_part_manifest", "list_wal", "read_wal"}


def test_corrupt_router_names_the_file(store_location: StoreLocation) -> None:
    """A router.json that is not JSON is a TargetError naming that file."""
    fs = store_location.filesystem()
    fs.makedirs(store_location.path("namespaces/docs"), exist_ok=True)
    fs.pipe_file(store_location.path("namespaces/docs/router.json"), b'{"namespace": "docs", "ep')
    with pytest.raises(TargetError) as raised:
        read_namespace(store_location.url, store_location.storage_options, "docs")
    message = raised.value.message
    assert f"{store_location.url}/namespaces/docs/router.json" in message
    assert "not JSON" in message and "target.store" in message


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b'{"namespace":"docs","epoch":1,"wal_highwater":1}', '"updated_at" is missing'),
        (b'{"namespace":"docs","epoch":-1,"wal_highwater":1,"updated_at":1}', '"epoch" is -1'),
        (b'{"namespace":"docs","epoch":1,"wal_highwater":"2","updated_at":1}', '"wal_highwater"'),
        (b'{"namespace":"docs","epoch":1,"wal_highwater":1,"updated_at":1,"parts":{}}', '"parts"'),
        (
            b'{"namespace":"docs","epoch":1,"wal_highwater":1,"updated_at":1,'
            b'"parts":[{"id":"p","wal_start":1,"wal_end":1}]}',
            '"rows" is missing',
        ),
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_router_with_bad_fields_is_rejected(tmp_path: Path, content: bytes, complaint: str) -> None:
    """The first four router keys are required and typed; parts need id, WAL range and rows."""
    router = tmp_path / "namespaces" / "docs" / "router.json"
    router.parent.mkdir(parents=True)
    router.write_bytes(content)
    with pytest.raises(TargetError) as raised:
        read_namespace(tmp_path.as_uri(), {}, "docs")
    assert str(router) in raised.value.message
    assert complaint in raised.value.message


def test_optional_router_keys_default(tmp_path: Path) -> None:
    """indexed_wal, parts and pin_hot may be absent (CONTRACT §4.3): they default."""
    router = tmp_path / "namespaces" / "docs" / "router.json"
    router.parent.mkdir(parents=True)
    router.write_bytes(b'{"namespace":"docs","epoch":3,"wal_highwater":2,"updated_at":17}')
    live = read_namespace(tmp_path.as_uri(), {}, "docs")
    assert live.exists and (live.epoch, live.wal_highwater, live.updated_at) == (3, 2, 17)
    assert live.indexed_wal == 0 and live.parts == () and live.wal_lag == 2


def test_store_path_through_a_file_is_unreadable(tmp_path: Path) -> None:
    """A store URL whose path runs through a regular file is a TargetError naming it."""
    (tmp_path / "plain").write_text("not a directory")
    url = (tmp_path / "plain").as_uri()
    with pytest.raises(TargetError) as raised:
        read_namespace(url, {}, "docs")
    assert f"Cannot read {url}/namespaces/docs/router.json" in raised.value.message


def test_missing_bucket_is_a_target_error(s3_server: S3Server) -> None:
    """On S3 a missing bucket is not an empty namespace: the error names the bucket."""
    with pytest.raises(TargetError) as raised:
        read_namespace("s3://no-such-bucket-here/root", s3_server.storage_options(), "docs")
    assert "bucket 'no-such-bucket-here' does not exist" in raised.value.message
    assert "s3://no-such-bucket-here/root" in raised.value.message


def test_endpoint_down_is_a_target_error_without_credentials() -> None:
    """An S3 endpoint nobody listens on: TargetError naming the store; the secret never shows."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "s3cret-value-never-shown"
    options = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "key": "testing",
        "secret": Secret(secret),
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
    }
    with pytest.raises(TargetError) as raised:
        read_namespace("s3://bucket/root", options, "docs")
    message = raised.value.message
    assert message.startswith("Cannot read s3://bucket/root/namespaces/docs/router.json:")
    assert f"127.0.0.1:{port}" in message and "target.storage_options" in message
    assert secret not in message
