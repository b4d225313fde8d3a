"""Hazard H1 as the real code has it (CONTRACT §7), and a crash in the middle of an append.

`--race-appends` makes overlapping appends end as the unlocked real append
does: a clean overwrite with two 200s, a torn WAL file that fails every later
replay, or a 500 answered after the WAL file was written. The decisions come
from a generator seeded by `--seed`, so a run is reproducible.
"""

from __future__ import annotations

import re
import signal
import threading
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from elax_plan.emulator import EmbeddedTransport, Emulator, EmulatorConfig
from elax_plan.emulator.races import OUTCOMES, RaceModel, torn_bytes
from tests.emulator.processes import EmulatorProcess, read_router, wal_path

RENAME_ERROR = re.compile(
    r'^renaming router file: ".*/namespaces/n/router\.json\.tmp" -> ".*/namespaces/n/router\.json"$'
)


def decisions(seed: int | None, appends: int, overlapping: bool) -> list[str | None]:
    """The outcomes a model draws for ``appends`` appends in a row."""
    model = RaceModel(seed, "n")
    out: list[str | None] = []
    previous = None
    for _ in range(appends):
        if previous is not None and not overlapping:
            model.answer(previous)
        current = model.arrive()
        out.append(model.decide(current))
        if previous is not None and overlapping:
            model.answer(previous)
        previous = current
    return out


def test_race_decisions_are_seeded_and_need_overlap() -> None:
    """Same seed, same outcomes; another seed, others; a sequential writer never races."""
    first = decisions(3, 300, overlapping=True)
    assert first == decisions(3, 300, overlapping=True)
    assert first != decisions(4, 300, overlapping=True)
    assert set(first) == {None, *OUTCOMES}
    assert set(decisions(3, 300, overlapping=False)) == {None}


def test_torn_bytes_keep_the_tail_of_the_longer_write() -> None:
    """A shorter write landing last over a longer one leaves the longer one's tail."""
    assert torn_bytes(b'{"a":"long"}', b'{"b":1}') == b'{"b":1}ong"}'
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(torn_bytes(b'{"a":"long"}', b'{"b":1}'))


def test_race_appends_produces_all_three_outcomes(
    tmp_path: Path, processes: list[EmulatorProcess]
) -> None:
    """--race-appends at concurrency 4 (seeded): two 200s for one sequence, torn WAL files and
    500s after the write all happen; a restarted emulator then answers 500 for the namespace."""
    root = tmp_path / "root"
    args = ("--data-root", str(root), "--race-appends", "--seed", "11")
    server = EmulatorProcess(*args)
    processes.append(server)
    answers: list[tuple[int, dict[str, object]]] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(40):
                # Bodies of different lengths, so that a torn file keeps a visible tail.
                doc = {"id": f"{w}-{i}", "vector": [1.0] * (1 + (w + i) % 4)}
                r = client.post("/v2/namespaces/n", json={"upserts": [doc]})
                with lock:
                    answers.append((r.status_code, r.json()))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == 160
    errors = [body["error"] for status, body in answers if status == 500]
    assert errors and all(RENAME_ERROR.match(str(e)) for e in errors)
    acked = Counter(body["wal_sequence"] for status, body in answers if status == 200)
    shared = [seq for seq, n in acked.items() if n > 1]
    wal_dir = root / "namespaces" / "n" / "wal"
    torn = []
    for file in sorted(wal_dir.iterdir()):
        try:
            orjson.loads(file.read_bytes())
        except orjson.JSONDecodeError:
            torn.append(file.name)
    counted = {
        m.group(1): int(m.group(2))
        for m in re.finditer(
            r'elax_emulator_append_races_total\{namespace="n",outcome="(\w+)"\} (\d+)',
            httpx.get(f"{server.url}/_emulator/metrics").text,
        )
    }
    assert set(counted) == {"overwrite", "torn", "error_after_write"}, counted
    assert counted["error_after_write"] == len(errors)
    assert shared, "no sequence was acknowledged twice"
    assert torn, "no WAL file was torn"
    assert len(torn) <= counted["torn"]  # a later overwrite can repair a torn file
    # The in-memory state still serves; the files are what a restart sees.
    assert server.stop() == 0
    restarted = EmulatorProcess(*args)
    processes.append(restarted)
    r = httpx.post(f"{restarted.url}/v2/namespaces/n/query", json={"vector": [1.0]})
    assert r.status_code == 500
    assert r.json()["error"].startswith('decoding WAL batch from "')
    assert restarted.stop() == 0


def test_c152c2d_serialises_appends_even_with_race_appends(tmp_path: Path) -> None:
    """PR #11 serialises appends inside a node: --race-appends has no effect there."""
    config = EmulatorConfig(
        data_root=str(tmp_path / "r"), compat="c152c2d", race_appends=True, seed=1
    )
    acked: list[int] = []
    lock = threading.Lock()
    with Emulator(config) as e:

        def writer(w: int) -> None:
            with httpx.Client(transport=EmbeddedTransport(e), base_url="http://e") as c:
                for i in range(15):
                    r = c.post("/v2/namespaces/n", json={"upserts": [{"id": f"{w}-{i}"}]})
                    with lock:
                        acked.append(r.json()["wal_sequence"])

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert sorted(acked) == list(range(1, 61))


def test_crash_during_append_leaves_a_truncated_wal_file(
    tmp_path: Path, processes: list[EmulatorProcess]
) -> None:
    """--crash-during-append 3: the third append writes half its WAL file and the process
    dies by SIGKILL; router.json still says 2, and a restart answers 500 for the namespace."""
    root = tmp_path / "root"
    server = EmulatorProcess("--data-root", str(root), "--crash-during-append", "3")
    processes.append(server)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for i in range(2):
            r = c.post("/v2/namespaces/n", json={"upserts": [{"id": str(i), "vector": [1.0]}]})
            assert r.json() == {"wal_sequence": i + 1}
        with pytest.raises(httpx.TransportError):
            c.post("/v2/namespaces/n", json={"upserts": [{"id": "2", "vector": [1.0]}]})
    assert server.stop() == -signal.SIGKILL
    third = wal_path(root, "n", 3).read_bytes()
    assert third and b'"id":"2"' not in third
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(third)
    assert read_router(root, "n")["wal_highwater"] == 2
    restarted = EmulatorProcess("--data-root", str(root))
    processes.append(restarted)
    r = httpx.post(f"{restarted.url}/v2/namespaces/n", json={"upserts": [{"id": "3"}]})
    assert r.status_code == 500
    assert r.json() == {"error": f'decoding WAL batch from "{wal_path(root, "n", 3)}"'}
    assert restarted.stop() == 0


def test_crash_fault_is_refused_in_process(tmp_path: Path) -> None:
    """Only the `elax-plan emulator` process may kill itself: in-process it is an error."""
    with pytest.raises(ValueError, match="crash_during_append"):
        Emulator(EmulatorConfig(data_root=str(tmp_path / "r"), crash_during_append=1))
