"""Transient failures of the target and of its store are retried everywhere a run reads or writes."""

from __future__ import annotations

import errno
import itertools
import threading
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

from elax_plan.apply.run import apply_plan
from elax_plan.spec import load_plan
from tests.apply.conftest import Setup
from tests.apply.support import assert_exact, last_record


class FlakyFileSystem(fsspec.AbstractFileSystem):  # type: ignore[misc]
    """A local directory behind ``flaky://`` whose every third file read fails with EIO,
    the way an object store answers 503 now and then."""

    protocol = "flaky"
    reads = itertools.count(1)
    failures: ClassVar[list[str]] = []
    lock = threading.Lock()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.local = LocalFileSystem()

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return "/" + str(path).removeprefix("flaky://").lstrip("/")

    def cat_file(self, path: str, start: Any = None, end: Any = None, **kwargs: Any) -> bytes:
        with self.lock:
            n = next(self.reads)
        if n % 3 == 0:
            self.failures.append(path)
            raise OSError(errno.EIO, "injected store fault: service unavailable", path)
        data: bytes = self.local.cat_file(self._strip_protocol(path), start, end, **kwargs)
        return data

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        return self.local.ls(self._strip_protocol(path), detail=detail, **kwargs)

    def info(self, path: str, **kwargs: Any) -> Any:
        return self.local.info(self._strip_protocol(path), **kwargs)


@pytest.fixture
def flaky_store() -> type[FlakyFileSystem]:
    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
    FlakyFileSystem.failures.clear()
    return FlakyFileSystem


def test_a_run_with_throttling_and_verification_completes_through_failures(
    setup: Setup, tmp_path: Path, flaky_store: type[FlakyFileSystem]
) -> None:
    """Target failing 30 % of API calls, store failing one read in three: the run still writes
    the exact dataset, throttles, passes every check, and reports the retries."""
    _, plan, data = setup(
        extra=(
            "ingest:\n"
            "  chunk_bytes: 4KiB\n"
            "  retry: {attempts: 12, initial: 5ms, max: 20ms}\n"
            "throttle:\n"
            "  max_wal_lag: 2\n"
            "  resume_wal_lag: 1\n"
            "  poll_interval: 10ms\n"
            "verify:\n"
            "  smoke_queries:\n"
            "    - name: self\n"
            "      sample_vectors: 5\n"
            "  recall:\n"
            "    num: 10\n"
            "    min_avg_recall: 0.5\n"
        ),
        fail_rate=0.3,
        retry_after_s=0,
        seed=7,
    )
    plan.write_text(
        plan.read_text().replace(
            f"store: {(tmp_path / 'store').as_uri()}", f"store: flaky://{tmp_path / 'store'}"
        )
    )
    spec = load_plan(plan, env={})
    assert spec.target.store.startswith("flaky://")
    outcome = apply_plan(spec)
    assert outcome.exit_code == 0, outcome.message
    assert_exact(tmp_path / "store", "docs", data)
    assert flaky_store.failures, "the store never failed: the test proves nothing"
    assert any(p.endswith("router.json") for p in flaky_store.failures)
    record = last_record(tmp_path / "state")
    assert all(c["passed"] for c in record["verification"])
    assert record["throttle"]["pauses"] > 0, "no throttling happened"
    causes = set(record["retries"]["by_cause"])
    assert "OSError" in causes, causes  # the store's failures, retried
    assert causes & {"http_503", "http_429"}, causes  # the target's, retried
