"""`elax-plan emulator`: a real process that announces its address, serves, and stops on signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import S3Server, make_bucket
from tests.emulator.processes import EmulatorProcess, stop_all


@pytest.fixture
def processes() -> Iterator[list[EmulatorProcess]]:
    started: list[EmulatorProcess] = []
    yield started
    stop_all(started)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_then_stops_cleanly_on_signal(
    tmp_path: Path, processes: list[EmulatorProcess], sig: int
) -> None:
    """It prints the listening line, answers requests, and exits 0 on SIGTERM/SIGINT."""
    store = (tmp_path / "store").as_uri()
    p = EmulatorProcess("--store", store)
    processes.append(p)
    assert p.line.startswith("elacsym emulator listening on http://127.0.0.1:")
    assert p.line.endswith(f"(store: {store})")
    r = httpx.post(f"{p.url}/v2/namespaces/docs", json={"upserts": [{"id": "a", "vector": [1.0]}]})
    assert r.json() == {"wal_sequence": 1}
    assert p.stop(sig) == 0
    assert "Traceback" not in p.stderr


def test_regress_highwater_after_makes_the_next_append_reuse_a_sequence(
    tmp_path: Path, processes: list[EmulatorProcess]
) -> None:
    """--regress-highwater-after 2: the third append gets sequence 2 and overwrites WAL 2."""
    store = tmp_path / "store"
    p = EmulatorProcess("--store", store.as_uri(), "--regress-highwater-after", "2")
    processes.append(p)
    seqs = [
        httpx.post(
            f"{p.url}/v2/namespaces/docs", json={"upserts": [{"id": str(i), "vector": [1.0]}]}
        ).json()["wal_sequence"]
        for i in range(4)
    ]
    assert seqs == [1, 2, 2, 3]
    wal = store / "namespaces" / "docs" / "wal" / f"WAL-{2:020}.json"
    assert '"id":"2"' in wal.read_text().replace(" ", "")  # the second write is gone
    assert p.stop() == 0


def test_second_process_on_same_store_serves_same_data(
    tmp_path: Path, processes: list[EmulatorProcess]
) -> None:
    """Data written through one process is served by the next one started on the store."""
    store = (tmp_path / "store").as_uri()
    first = EmulatorProcess("--store", store)
    processes.append(first)
    docs = [{"id": str(i), "vector": [float(i), 1.0], "attributes": {"i": i}} for i in range(30)]
    httpx.post(f"{first.url}/v2/namespaces/docs", json={"upserts": docs})
    body = {"vector": [3.0, 1.0], "top_k": 30, "metric": "euclidean_squared"}
    before = httpx.post(f"{first.url}/v2/namespaces/docs/query", json=body).json()
    assert first.stop() == 0
    second = EmulatorProcess("--store", store)
    processes.append(second)
    after = httpx.post(f"{second.url}/v2/namespaces/docs/query", json=body).json()
    assert after == before and len(after["hits"]) == 30


def test_s3_store_with_storage_options(
    s3_server: S3Server, processes: list[EmulatorProcess]
) -> None:
    """--storage-option passes the S3 endpoint and keys to fsspec; the WAL lands in the bucket."""
    import s3fs

    bucket = make_bucket(s3_server)
    p = EmulatorProcess(
        "--store",
        f"s3://{bucket}/data",
        "--storage-option",
        f"endpoint_url={s3_server.endpoint_url}",
        "--storage-option",
        "key=testing",
        "--storage-option",
        "secret=testing",
    )
    processes.append(p)
    r = httpx.post(f"{p.url}/v2/namespaces/docs", json={"upserts": [{"id": "a"}]})
    assert r.json() == {"wal_sequence": 1}
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options())
    assert fs.ls(f"{bucket}/data/namespaces/docs/wal") == [
        f"{bucket}/data/namespaces/docs/wal/WAL-00000000000000000001.json"
    ]
    assert p.stop() == 0


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    """A busy port ends with exit 1 and a message naming the port, no traceback."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "elax_plan",
                "emulator",
                "--store",
                (tmp_path / "s").as_uri(),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    assert done.returncode == 1
    assert f"127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr


def _emulator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elax_plan", "emulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.mark.parametrize("args", [(), ("--store", "memory://a", "--data-root", "d")])
def test_store_or_data_root_exactly_one(args: tuple[str, ...]) -> None:
    """Neither or both of --store and --data-root: exit 1 with a one-line error, no traceback."""
    done = _emulator(*args)
    assert done.returncode == 1
    assert "Error: Give the emulator exactly one of --store URL and --data-root DIR." in done.stderr
    assert "Traceback" not in done.stderr


def test_emulator_help_documents_the_new_options_and_compact() -> None:
    """`emulator --help` lists the real-store options and the compact subcommand, and shows
    the real server's behaviour as the defaults."""
    done = _emulator("--help")
    assert done.returncode == 0
    for option in (
        "--data-root",
        "--object-store",
        "--indexer",
        "--reread-router",
        "--recover-from-parts",
        "--metrics",
        "--compat",
        "--race-appends",
        "--crash-during-append",
        "compact",
    ):
        assert option in done.stdout, option
    text = " ".join(done.stdout.split())
    # The real server's behaviour is the default; the design's indexer is the opt-in.
    assert "daemon, standing in for an operator's indexer fleet. [default: none]" in text
    assert "They are always at /_emulator/metrics. [default: real]" in text
    assert "--stall-indexer" not in text
    compact = _emulator("compact", "--help")
    assert compact.returncode == 0 and "--data-root" in compact.stdout


def test_compact_without_data_root_is_a_usage_error() -> None:
    """`emulator compact NAMESPACE` needs --data-root."""
    done = _emulator("compact", "docs")
    assert done.returncode != 0 and "--data-root" in done.stderr
