"""`apply` over several plans, and N `apply --queue` workers sharing a directory of plans."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from elax_plan.cli.apply_many import combined_exit
from elax_plan.emulator import EmulatorConfig
from tests.apply.support import Dataset, assert_exact, make_dataset, run_cli, run_dirs, write_plan
from tests.conftest import RunningEmulator

SHARED = "shared"


def plans_for(
    tmp_path: Path, url: str, store: Path, count: int, shared: tuple[int, ...] = ()
) -> tuple[Path, dict[str, Dataset]]:
    """``count`` plans in tmp_path/plans, each its own dataset and namespace, except the plans
    numbered in ``shared``, which write one namespace (other ids each)."""
    folder = tmp_path / "plans"
    folder.mkdir()
    data: dict[str, Dataset] = {}
    for i in range(count):
        name = f"p{i}"
        source = tmp_path / "src" / name
        data[name] = make_dataset(source, files=1, rows=120, start_id=i * 1000, seed=i)
        write_plan(
            folder / f"{name}.yaml",
            url=url,
            store=store.as_uri(),
            source=f"{source}/*.ndjson",
            state=(tmp_path / "state").as_uri(),
            namespace=SHARED if i in shared else f"ns{i}",
            name=name,
            extra="ingest:\n  chunk_bytes: 2KiB\nthrottle:\n  poll_interval: 20ms\n",
        )
    (folder / "README.yaml").write_text("not: a plan\n")  # other YAML there is left out
    return folder, data


def events(state: Path, plan: str) -> list[dict[str, object]]:
    [run] = run_dirs(state, plan)  # each plan ran exactly once
    return [orjson.loads(line) for line in (run / "events.ndjson").read_bytes().splitlines()]


def test_three_queue_workers_share_eight_plans_one_writer_per_namespace(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """Every plan ends done, each ran exactly once, and the two plans on one namespace never
    ran at the same time: the namespace lease serialised them across workers."""
    store = tmp_path / "store"
    emu = serve_emulator(
        EmulatorConfig(store.as_uri(), indexer="background", index_interval=0.02, latency=0.01)
    )
    folder, data = plans_for(tmp_path, emu.url, store, 8, shared=(2, 5))
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "elax_plan", "apply", "--queue", str(folder), "--auto-approve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [w.communicate(timeout=240) for w in workers]
    for w, (out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, out + err
    state = tmp_path / "state"
    for name in data:
        ledger = orjson.loads((state / name / "state.json").read_bytes())
        assert {f["status"] for f in ledger["files"].values()} == {"done"}, name
        assert ledger["run"]["verification"]["status"] == "passed", name
    spans = []
    for name in ("p2", "p5"):
        times = [float(e["ts"]) for e in events(state, name)]  # type: ignore[arg-type]
        spans.append((min(times), max(times)))
    (_, first_end), (second_start, _) = sorted(spans)
    assert first_end <= second_start, f"the two plans on namespace {SHARED} overlapped: {spans}"
    for i, name in enumerate(data):
        if i not in (2, 5):
            assert_exact(store, f"ns{i}", data[name])
    both = Dataset(data["p2"].files + data["p5"].files, {**data["p2"].docs, **data["p5"].docs})
    assert_exact(store, SHARED, both)
    ran = sum(int(out.rsplit(": ", 1)[1].split()[0]) for out, _ in outputs)
    assert ran >= 8  # every plan by some worker (a finished one may plan again: no changes)


def test_several_plans_run_in_order_and_one_failure_does_not_stop_the_rest(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    store = tmp_path / "store"
    emu = serve_emulator(EmulatorConfig(store.as_uri(), indexer="background", index_interval=0.02))
    folder, data = plans_for(tmp_path, emu.url, store, 2)
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nname: broken\n")  # no target: refused by the loader
    done = run_cli("apply", str(broken), str(folder), "--auto-approve")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"Error: {broken}:" in done.stderr
    assert done.stdout.index("Plan 2 of 3") < done.stdout.index("Plan 3 of 3")
    assert "2 of 3 plans applied; failed or failed verification: " + str(broken) in done.stdout
    for i, name in enumerate(data):
        assert_exact(store, f"ns{i}", data[name])
    again = run_cli("apply", str(folder / "p0.yaml"), "--queue", str(folder), "--auto-approve")
    assert again.returncode == 1 and "--queue takes its plans from DIR" in again.stderr


def test_the_combined_exit_code_says_the_worst() -> None:
    assert combined_exit([0, 0]) == 0
    assert combined_exit([0, 3, 0]) == 3
    assert combined_exit([3, 1, 0]) == 1
    assert combined_exit([1, 130]) == 130
    assert combined_exit([]) == 0
