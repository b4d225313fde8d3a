"""Fixtures for the state suite: a backend on each store kind and a clock tests can move."""

from __future__ import annotations

import pytest

from elax_plan.state import StateBackend, open_backend
from tests.conftest import StoreLocation


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self, start: float = 1_795_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def backend(store_location: StoreLocation) -> StateBackend:
    """A state backend on an empty store: memory://, file:// and s3:// (moto server)."""
    return open_backend(store_location.url, store_location.storage_options)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that stands still until ``advance``."""
    return FakeClock()
