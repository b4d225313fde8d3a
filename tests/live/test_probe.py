"""The capability probe: two harmless queries tell the three elacsym tips apart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from elax_plan.emulator import EmulatorConfig
from elax_plan.live.target import check_target
from tests.conftest import RunningEmulator
from tests.live.conftest import CannedServer, target_spec


@pytest.mark.parametrize(
    ("compat", "rank_by", "consistency"),
    [("72e6998", False, False), ("ac782e1", True, False), ("c152c2d", True, True)],
)
def test_each_tip_is_recognised_and_nothing_is_written(
    compat: str,
    rank_by: bool,
    consistency: bool,
    serve_emulator: Callable[..., RunningEmulator],
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    emu = serve_emulator(EmulatorConfig(data_root=str(root), indexer="none", compat=compat))  # type: ignore[arg-type]
    server = check_target(target_spec(emu.url)).capabilities
    assert (server.family, server.rank_by, server.consistency) == (compat, rank_by, consistency)
    assert server.serialises_appends == (compat == "c152c2d")
    assert not (root / "namespaces").exists() or not any((root / "namespaces").iterdir())


def test_an_answer_the_probe_does_not_know_is_unknown(
    http_server: Callable[..., CannedServer],
) -> None:
    """Something that answers GET /metrics but not queries (here 501): reachable, unknown."""
    server = http_server(200, b"elax_up 1\n")
    live = check_target(target_spec(server.url))
    assert live.reachable
    assert live.capabilities.family == "unknown" and live.capabilities.rank_by is None
    assert "501" in live.capabilities.detail


def test_embedded_is_known_without_starting_it(tmp_path: Path) -> None:
    store = tmp_path / "not-yet"
    server = check_target(target_spec("embedded", store.as_uri())).capabilities
    assert server.family == "ac782e1" and server.rank_by is True
    assert not store.exists()
