"""The background indexer: lag, part row sums, merging and the epoch/updated_at rules (CONTRACT §4.3, §5)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from elax_plan.emulator import EmbeddedTransport, Emulator, EmulatorConfig
from tests.conftest import RunningEmulator, wait_until


@pytest.fixture
def idle(tmp_path: Path) -> Iterator[Emulator]:
    """No indexer daemon (the default): the tests run the indexer one pass at a time."""
    with Emulator(EmulatorConfig((tmp_path / "s").as_uri())) as e:
        yield e


def put(client: httpx.Client, ns: str, ids: range) -> int:
    body = {"upserts": [{"id": str(i), "vector": [float(i), 1.0]} for i in ids]}
    return int(client.post(f"/v2/namespaces/{ns}", json=body).json()["wal_sequence"])


def test_lag_returns_to_zero_and_part_rows_add_up(emu: RunningEmulator) -> None:
    """With a running indexer the lag drains to 0 and Σ part rows = upserts written (resends too)."""
    upserts = 0
    for b in range(12):
        upserts += 100
        put(emu.client, "docs", range(b * 50, b * 50 + 100))  # overlapping ids: resends count
    ns = emu.emulator.namespaces.get("docs")

    def settled() -> bool:
        # A run publishes its parts, then merges if more than 4 are active: wait for both.
        r = ns.router
        return r.indexed_wal == r.wal_highwater == 12 and len(r.parts) <= 4

    wait_until(settled, what="lag 0 with at most 4 active parts")
    assert sum(p.rows for p in ns.router.parts) == upserts


def test_merge_when_more_than_four_parts(idle: Emulator) -> None:
    """Five parts are merged into one with compacted_from; old manifests and assets are removed."""
    ns = idle.namespaces.get("docs")
    with httpx.Client(transport=EmbeddedTransport(idle), base_url="http://e") as c:
        for b in range(4):
            put(c, "docs", range(b * 10, b * 10 + 10))
            idle.indexer.run_once(ns)
        assert len(ns.router.parts) == 4
        old = [p.id for p in ns.router.parts]
        epoch = ns.router.epoch
        put(c, "docs", range(40, 50))
        idle.indexer.run_once(ns)
    (merged,) = ns.router.parts
    assert merged.compacted_from[:4] == tuple(old) and len(merged.compacted_from) == 5
    assert (merged.wal_start, merged.wal_end, merged.rows) == (1, 5, 50)
    assert ns.router.indexed_wal == 5
    # append +1, index run +1, compaction +1
    assert ns.router.epoch == epoch + 3
    names = idle.store.list_files("namespaces/docs/parts")
    assert names == [f"{merged.id}.json"]
    assert idle.store.list_dirs("namespaces/docs/parts") == [merged.id]


def test_epoch_and_updated_at_rules(idle: Emulator) -> None:
    """Epoch +1 per append and per indexer run that saw a batch; nothing without new batches."""
    ns = idle.namespaces.get("docs")
    with httpx.Client(transport=EmbeddedTransport(idle), base_url="http://e") as c:
        put(c, "docs", range(3))
        assert ns.router.epoch == 1
        first_update = ns.router.updated_at
        put(c, "docs", range(3, 6))
        assert ns.router.epoch == 2 and ns.router.wal_highwater == 2
        assert idle.indexer.run_once(ns)
        assert ns.router.epoch == 3 and ns.router.indexed_wal == 2
        assert ns.router.updated_at >= first_update
        assert not idle.indexer.run_once(ns)
        assert ns.router.epoch == 3


def test_trailing_empty_batch_never_advances_indexed_wal(idle: Emulator) -> None:
    """Hazard H3: an empty batch at the end leaves indexed_wal behind and each run bumps epoch."""
    ns = idle.namespaces.get("docs")
    with httpx.Client(transport=EmbeddedTransport(idle), base_url="http://e") as c:
        put(c, "docs", range(3))
        c.post("/v2/namespaces/docs", json={})
    idle.indexer.run_once(ns)
    assert (ns.router.indexed_wal, ns.router.wal_highwater) == (1, 2)
    epoch = ns.router.epoch
    assert idle.indexer.run_once(ns)
    assert ns.router.epoch == epoch + 1 and ns.router.indexed_wal == 1


def test_paced_indexer_lets_lag_build_then_drain(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """--index-rows-per-s limits indexing speed: lag is visible, then returns to 0."""
    emu = serve_emulator(
        EmulatorConfig(
            (tmp_path / "s").as_uri(),
            indexer="background",
            index_rows_per_s=2000,
            index_interval=0.02,
        )
    )
    for b in range(10):
        put(emu.client, "docs", range(b * 200, b * 200 + 200))
    ns = emu.emulator.namespaces.get("docs")
    assert ns.router.wal_highwater - ns.router.indexed_wal > 2
    wait_until(lambda: ns.router.indexed_wal == 10, timeout=30, what="paced indexer to catch up")
    assert sum(p.rows for p in ns.router.parts) == 2000


def test_no_indexer_runs_by_default(tmp_path: Path) -> None:
    """Like the real server, the emulator starts no indexer thread unless asked: indexed_wal
    stays at 0 however many writes land."""
    with Emulator(EmulatorConfig((tmp_path / "s").as_uri())) as e:
        assert e.config.indexer == "none"
        assert "elacsym-indexer" not in {t.name for t in threading.enumerate()}
        with httpx.Client(transport=EmbeddedTransport(e), base_url="http://e") as c:
            for b in range(20):
                put(c, "docs", range(b * 10, b * 10 + 10))
        ns = e.namespaces.get("docs")
        assert (ns.router.indexed_wal, ns.router.wal_highwater, ns.router.parts) == (0, 20, ())
        assert e.indexer.ticks == 0
