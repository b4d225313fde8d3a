"""Fixtures for the emulator tests: real `elax-plan emulator` processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulator.processes import EmulatorProcess, stop_all


@pytest.fixture
def processes() -> Iterator[list[EmulatorProcess]]:
    """Emulator processes started by a test; any still running are killed afterwards."""
    started: list[EmulatorProcess] = []
    yield started
    stop_all(started)
