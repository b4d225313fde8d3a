"""The in-process httpx transports answer exactly like the socket server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from elax_plan.emulator import AsyncEmbeddedTransport, EmbeddedTransport, Emulator, EmulatorConfig


def test_sync_transport_round_trip_and_errors(tmp_path: Path) -> None:
    """EmbeddedTransport serves writes, queries, 413, 415 and 404 in-process."""
    config = EmulatorConfig((tmp_path / "s").as_uri(), max_body_bytes=200)
    with (
        Emulator(config) as emulator,
        httpx.Client(transport=EmbeddedTransport(emulator), base_url="http://embedded") as c,
    ):
        r = c.post("/v2/namespaces/n", json={"upserts": [{"id": "a", "vector": [1.0, 0.0]}]})
        assert r.json() == {"wal_sequence": 1}
        hits = c.post("/v2/namespaces/n/query", json={"vector": [1.0, 0.0]}).json()["hits"]
        assert [h["id"] for h in hits] == ["a"]
        big = {"upserts": [{"id": str(i)} for i in range(50)]}
        assert c.post("/v2/namespaces/n", json=big).status_code == 413
        assert c.post("/v2/namespaces/n", content=b"{}").status_code == 415
        assert c.get("/nope").status_code == 404


def test_async_transport_serves_concurrent_requests(tmp_path: Path) -> None:
    """AsyncEmbeddedTransport handles many concurrent writes with distinct sequences."""

    async def run(emulator: Emulator) -> list[int]:
        transport = AsyncEmbeddedTransport(emulator)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as c:
            responses = await asyncio.gather(
                *(c.post("/v2/namespaces/n", json={"upserts": [{"id": str(i)}]}) for i in range(20))
            )
        return sorted(r.json()["wal_sequence"] for r in responses)

    with Emulator(EmulatorConfig((tmp_path / "s").as_uri())) as emulator:
        assert asyncio.run(run(emulator)) == list(range(1, 21))
