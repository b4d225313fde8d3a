"""`elax-plan plan` end to end against an emulator and sources on file:// and S3 (moto)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import make_dataset, run_cli, write_plan
from tests.conftest import RunningEmulator, S3Server, make_bucket

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "execution-plan.schema.json").read_text()
)


@pytest.fixture
def plan_file(tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]) -> Path:
    """A plan for 2 local NDJSON files into an emulator over a socket, with a background
    indexer (the plan waits for the index, as beside an operator's indexer fleet)."""
    store = tmp_path / "store"
    emu = serve_emulator(EmulatorConfig(store.as_uri(), indexer="background", index_interval=0.02))
    make_dataset(tmp_path / "src")
    return write_plan(
        tmp_path / "plan.yaml",
        url=emu.url,
        store=store.as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        extra="verify:\n  smoke_queries:\n    - name: self\n      sample_vectors: 3\n",
    )


def test_three_formats_and_detailed_exit_codes(plan_file: Path) -> None:
    """text, markdown and JSON show the same plan; exit 2 with changes, 0 once applied."""
    text = run_cli("--no-color", "plan", str(plan_file), "--detailed-exitcode")
    assert text.returncode == 2, text.stderr
    source = plan_file.parent / "src"
    assert f"  + {source}/" in text.stdout  # outside the working directory: a plain path
    assert text.stdout.rstrip().endswith("0 destructive steps.")
    assert "\x1b[" not in text.stdout
    md = run_cli("plan", str(plan_file), "--format", "markdown")
    assert md.returncode == 0
    assert md.stdout.startswith("<!-- elax-plan:backfill -->\n### elax-plan: `backfill`")
    assert "| `+` |" in md.stdout
    js = run_cli("plan", str(plan_file), "--format", "json")
    doc = json.loads(js.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["format_version"] == "1.2"
    assert [f["symbol"] for f in doc["files"]] == ["+", "+"]
    assert doc["summary_line"] in text.stdout and doc["summary_line"] in md.stdout
    applied = run_cli("apply", str(plan_file), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    again = run_cli("plan", str(plan_file), "--detailed-exitcode")
    assert again.returncode == 0, again.stderr
    assert "No changes" in again.stdout


def test_plan_changes_nothing(plan_file: Path, tmp_path: Path) -> None:
    """Planning writes neither to the store nor to the state."""
    assert run_cli("plan", str(plan_file)).returncode == 0
    assert not (tmp_path / "store" / "namespaces").exists()
    assert not (tmp_path / "state" / "backfill").exists()


def test_saved_plan_staleness_names_each_change(plan_file: Path, tmp_path: Path) -> None:
    """--out records the inputs; a changed ledger, source file or plan file is named."""
    saved = tmp_path / "p.elaxplan"
    assert run_cli("plan", str(plan_file), "--out", str(saved)).returncode == 0
    doc = json.loads(saved.read_text())
    assert set(doc["inputs"]) >= {"plan_digest", "ledger_serial", "source_fingerprints"}
    from elax_plan.execution_plan import PlanInputs, stale_reasons

    def reasons() -> list[str]:
        current = json.loads(run_cli("plan", str(plan_file), "--format", "json").stdout)
        return stale_reasons(
            PlanInputs.from_json(doc["inputs"]), PlanInputs.from_json(current["inputs"])
        )

    assert reasons() == []
    src = tmp_path / "src" / "part-000.ndjson"
    src.write_bytes(src.read_bytes() + b"\n")
    os.utime(src, (time.time() + 3, time.time() + 3))
    assert [r for r in reasons() if "part-000.ndjson changed" in r]
    plan_file.write_text(plan_file.read_text() + "# edited\n")
    assert "the plan file changed" in reasons()
    assert run_cli("apply", str(plan_file), "--auto-approve").returncode == 0
    assert any("state ledger" in r for r in reasons())


def test_s3_source_and_state(
    tmp_path: Path, s3_server: S3Server, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """Sources and state on S3 (moto server) plan like local ones, with ETag fingerprints."""
    import s3fs

    bucket = make_bucket(s3_server)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options())
    data = make_dataset(tmp_path / "src")
    for f in data.files:
        fs.put_file(str(f), f"{bucket}/src/{f.name}")
    store = tmp_path / "store"
    emu = serve_emulator(EmulatorConfig(store.as_uri(), indexer="background"))
    opts = (
        f"  storage_options:\n    endpoint_url: {s3_server.endpoint_url}\n"
        "    key: ${AWS_ACCESS_KEY_ID}\n    secret: ${AWS_SECRET_ACCESS_KEY}\n"
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"""version: 1
name: s3-plan
target:
  url: {emu.url}
  store: {store.as_uri()}
  namespace: docs
  distance_metric: cosine
source:
  uri: s3://{bucket}/src/*.ndjson
{opts}state:
  uri: s3://{bucket}/state
{opts}"""
    )
    js = run_cli("plan", str(plan), "--format", "json")
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    assert [f["url"] for f in doc["files"]] == [
        f"s3://{bucket}/src/part-000.ndjson",
        f"s3://{bucket}/src/part-001.ndjson",
    ]
    assert all("etag=" in f["fingerprint"] for f in doc["files"])
    assert "testing" not in js.stdout  # the credentials never show
    applied = run_cli("apply", str(plan), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert fs.exists(f"{bucket}/state/s3-plan/state.json")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unreachable", "127.0.0.1:1/metrics"),
        ("empty_glob", "matched no files"),
        ("bad_store", "Cannot"),
    ],
)
def test_failures_are_one_paragraph_without_traceback(
    tmp_path: Path, case: str, expected: str
) -> None:
    """Unreachable target, empty glob and an unusable store: exit 1, what failed, no traceback."""
    make_dataset(tmp_path / "src")
    url = "http://127.0.0.1:1"
    source = f"{tmp_path / 'src'}/*.ndjson"
    store = (tmp_path / "store").as_uri()
    if case == "empty_glob":
        source = f"{tmp_path / 'src'}/*.parquet"
    if case == "bad_store":
        (tmp_path / "afile").write_text("x")
        store = (tmp_path / "afile" / "store").as_uri()
    plan = write_plan(
        tmp_path / "plan.yaml",
        url=url,
        store=store,
        source=source,
        state=(tmp_path / "state").as_uri(),
    )
    done = run_cli("plan", str(plan))
    assert done.returncode == 1
    assert expected in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_unreachable_target_error_ends_each_sentence_once(tmp_path: Path, command: str) -> None:
    """The refused-connection error of plan and apply has no doubled period ("port..")."""
    make_dataset(tmp_path / "src", files=1, rows=2)
    plan = write_plan(
        tmp_path / "plan.yaml",
        url="http://127.0.0.1:1",
        store=(tmp_path / "store").as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
    )
    done = run_cli(command, str(plan), *(["--auto-approve"] if command == "apply" else []))
    assert done.returncode == 1
    error = next(line for line in done.stderr.splitlines() if line.startswith("Error:"))
    assert "Cannot connect to http://127.0.0.1:1/metrics" in error, error
    assert ".." not in error and ".;" not in error and ". ." not in error, error


def test_a_source_glob_over_the_state_folder_leaves_the_state_out(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """source.uri covering state.uri: the plan's own state and run files (events.ndjson, …)
    are never planned as source; the plan warns, naming what it left out."""
    store = tmp_path / "store"
    emu = serve_emulator(EmulatorConfig(store.as_uri(), indexer="background", index_interval=0.02))
    data = tmp_path / "data"
    make_dataset(data / "src")
    plan = write_plan(
        tmp_path / "plan.yaml",
        url=emu.url,
        store=store.as_uri(),
        source=f"{data}/**/*.ndjson",
        state=(data / "state").as_uri(),
    )
    applied = run_cli("apply", str(plan), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    events = sorted((data / "state" / "backfill" / "runs").glob("*/events.ndjson"))
    assert events
    again = run_cli("--no-color", "plan", str(plan), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout
    files = again.stdout.split("Source files:", 1)[1].split("\n\n", 1)[0]
    assert "events.ndjson" not in files and "+ " not in files
    warning = (
        f"source.uri also matched {len(events)} file(s) of this plan's own state under "
        f"{(data / 'state').as_uri()}/backfill/ (such as {events[0].as_uri()}); "
        "they are left out of the source."
    )
    assert warning in " ".join(again.stdout.split()), again.stdout
