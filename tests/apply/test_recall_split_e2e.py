"""A recall sample far over one request body (issue 14): `elax-plan apply` against an emulator
over a socket with its real 2 MiB body cap.

2,000 sampled vectors at 768 dims are ~14 MB of JSON: the gate sends them in several
``_debug/recall`` calls, each body (as it arrived at the server) at most 2 MiB, after one
warm-up query, and combines the answers weighted by ``evaluated`` (the arithmetic itself is
``test_recall_calls``'s). Measured on the shared 2-core machine: the emulator answers the
2,000 queries in ~6-16 s depending on load (it searches one query at a time), apply's own
part is ~3 s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import check, last_record, run_cli, write_plan
from tests.conftest import RunningEmulator

MIB2 = 2 * 1024 * 1024
ROWS, DIMS = 2000, 768


def clustered_source(folder: Path) -> None:
    """2,000 vectors of 768 dims around 40 centres, as embeddings cluster: the default
    ann_params (ERQ, target_recall 0.1) reach ~0.97 on them, and probe few lists, which
    keeps the emulator's 2,000-query recall to seconds (random gaussians need far more)."""
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((40, DIMS))
    vectors = centres[rng.integers(40, size=ROWS)] + 0.3 * rng.standard_normal((ROWS, DIMS))
    folder.mkdir()
    lines = [
        orjson.dumps({"id": i, "vector": np.round(v, 5).tolist()}) for i, v in enumerate(vectors)
    ]
    (folder / "part-000.ndjson").write_bytes(b"\n".join(lines) + b"\n")


class Recorder:
    """ASGI app around the emulator's: the path and body size of each request that arrived."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, int]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = 0

        async def counted() -> Any:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)
        self.requests.append((scope["path"], size))

    def sizes(self, suffix: str) -> list[int]:
        return [size for path, size in self.requests if path.endswith(suffix)]


@pytest.fixture
def recorded(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> tuple[RunningEmulator, Recorder]:
    recorders: list[Recorder] = []

    def wrap(app: Any) -> Recorder:
        recorders.append(Recorder(app))
        return recorders[0]

    # The background indexer is asked for explicitly: the wait for the index needs one.
    config = EmulatorConfig(
        (tmp_path / "store").as_uri(), indexer="background", index_interval=0.02
    )
    assert config.max_body_bytes == MIB2, "the real server's cap"
    emu = serve_emulator(config, wrap=wrap)
    return emu, recorders[0]


def test_recall_of_2000_vectors_at_768_dims_passes_in_several_calls_under_2_mib(
    tmp_path: Path, recorded: tuple[RunningEmulator, Recorder]
) -> None:
    emu, recorder = recorded
    clustered_source(tmp_path / "src")
    plan = write_plan(
        tmp_path / "plan.yaml",
        url=emu.url,
        store=(tmp_path / "store").as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        dims=DIMS,
        extra="throttle:\n  poll_interval: 50ms\n"
        "verify:\n  recall:\n    num: 2000\n    min_avg_recall: 0.95\n",
    )
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr

    recall = check(last_record(tmp_path / "state"), "recall")
    evidence = recall["evidence"]
    calls = evidence["calls"]
    assert recall["passed"] and calls > 1
    assert evidence["evaluated"] == evidence["queries"] == sum(evidence["call_evaluated"]) == 2000
    detail = recall["detail"]
    assert f"over 2000 queries in {calls} calls (combined, weighted by evaluated)" in detail
    # What arrived: one body per call, each under the cap, all answered 200; and exactly one
    # query before the first call, the warm-up, whose outcome is the check's evidence.
    arrived = recorder.sizes("/_debug/recall")
    assert arrived == evidence["call_bytes"] and max(arrived) <= MIB2
    assert emu.emulator.metrics.requests[("recall", 200)] == calls
    paths = [path for path, _ in recorder.requests]
    first_call = next(i for i, path in enumerate(paths) if path.endswith("/_debug/recall"))
    # Before it, besides the capability probe's small vector-less queries (plan time), exactly
    # one query carries a vector: the warm-up.
    with_vector = [
        size
        for path, size in recorder.requests[:first_call]
        if path == "/v2/namespaces/docs/query" and size > 1_000
    ]
    assert len(with_vector) == 1
    assert evidence["warm_up"]["outcome"] == "ok"
