"""No secret leaves the process: every command × every output × every kind of secret.

The plan carries sentinels in ``target.api_key``, ``target.storage_options``
(an S3 store on the moto server: the credentials are really used),
``state.storage_options`` (S3 state), ``source.storage_options`` (an
``Authorization`` header) and a signed ``source.uri``
(``…/part-000.ndjson?sv=…&sig=${…}`` served by ``SignedSource``, which refuses
a request without the right signature and header, so rows that arrive prove the
real URL was used). The variables holding them are named ``LEAK_*``, nothing
like a credential: they are secrets because of the fields they are in.

Every command runs as a real subprocess (``validate``, ``plan`` in text,
markdown and json and with ``--out``, ``apply`` of the saved plan and of the
plan file, ``status``, ``summary``, ``unlock``, a refused apply), with
``--debug``, console and ``--log-format json`` logs at debug level; the haystack
is their stdout and stderr, every file under the test's folder (saved plan,
``summary.path`` and ``--summary-out`` copies, a ``file://`` state, temporary
files: ``TMPDIR`` points inside it) and every object in the buckets (S3 state,
target store): zero hits of any sentinel, raw, percent-encoded or JSON-escaped.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import s3fs

from elax_plan.emulator import EmulatorConfig
from elax_plan.state import acquire, open_backend
from tests.apply.support import make_dataset, run_cli
from tests.conftest import RunningEmulator, S3Server, make_bucket
from tests.leaks.support import (
    SignedSource,
    bucket_objects,
    haystack,
    leaks,
    run_faulty_cli,
    sentinel,
)

ROWS = 40


@dataclass
class Setup:
    """A plan full of sentinel secrets, what it runs against, and where its outputs land."""

    root: Path
    plan: Path
    env: dict[str, str]
    secrets: dict[str, str]
    source: SignedSource
    fs: Any
    buckets: tuple[str, ...]
    state_options: dict[str, Any]
    state_uri: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env)

    def places(self, outputs: list[tuple[str, str]]) -> dict[str, bytes]:
        return haystack(outputs, [self.root], bucket_objects(self.fs, *self.buckets))


@pytest.fixture
def signed_source(tmp_path: Path) -> Iterator[SignedSource]:
    """Two NDJSON files (one with a bad row) behind a signature-checking HTTP server."""
    data = make_dataset(tmp_path / "served", files=2, rows=ROWS, dims=8)
    with data.files[1].open("ab") as f:
        f.write(b'{"id": "bad-row", "vector": [1, 2]}\n')
    server = SignedSource(tmp_path / "served")
    yield server
    server.close()


def _setup(
    tmp_path: Path,
    s3_server: S3Server,
    serve_emulator: Callable[..., RunningEmulator],
    source: SignedSource,
    state_kind: str,
) -> Setup:
    secrets = {
        "LEAK_API": sentinel("api") + "+/=",
        "LEAK_TARGET_KEY": sentinel("target-key"),
        "LEAK_TARGET_SECRET": sentinel("target-secret"),
        "LEAK_STATE_KEY": sentinel("state-key"),
        "LEAK_STATE_SECRET": sentinel("state-secret"),
        "LEAK_SIG": sentinel("sig"),
        "LEAK_SOURCE_BEARER": sentinel("source-bearer"),
    }
    source.expect(secrets["LEAK_SIG"], secrets["LEAK_SOURCE_BEARER"])
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options())
    store_bucket = make_bucket(s3_server)
    target_options = {
        "endpoint_url": s3_server.endpoint_url,
        "key": secrets["LEAK_TARGET_KEY"],
        "secret": secrets["LEAK_TARGET_SECRET"],
    }
    store = f"s3://{store_bucket}/store"
    emu = serve_emulator(
        EmulatorConfig(
            store, storage_options=target_options, indexer="background", index_interval=0.02
        )
    )
    buckets: tuple[str, ...] = (store_bucket,)
    state_options: dict[str, Any] = {}
    if state_kind == "s3":
        state_bucket = make_bucket(s3_server)
        buckets += (state_bucket,)
        state_uri = f"s3://{state_bucket}/state"
        state_options = {
            "endpoint_url": s3_server.endpoint_url,
            "key": secrets["LEAK_STATE_KEY"],
            "secret": secrets["LEAK_STATE_SECRET"],
        }
        state_yaml = (
            f"{state_uri}\n  storage_options:\n    endpoint_url: {s3_server.endpoint_url}\n"
            "    key: ${LEAK_STATE_KEY}\n    secret: ${LEAK_STATE_SECRET}"
        )
    else:
        state_uri = (tmp_path / "state").as_uri()
        state_yaml = state_uri
    signed = [
        f"{source.base_url}/part-00{i}.ndjson?sv=2024-05-04&sp=r&sig=${{LEAK_SIG}}" for i in (0, 1)
    ]
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"""version: 1
name: leaky
target:
  url: {emu.url}
  api_key: ${{LEAK_API}}
  store: {store}
  storage_options:
    endpoint_url: {s3_server.endpoint_url}
    key: ${{LEAK_TARGET_KEY}}
    secret: ${{LEAK_TARGET_SECRET}}
  namespace: docs
  distance_metric: cosine
  vector_dims: 8
source:
  uri:
    - {signed[0]}
    - {signed[1]}
  format: ndjson
  storage_options:
    headers: {{Authorization: "Bearer ${{LEAK_SOURCE_BEARER}}"}}
ingest:
  on_invalid_row: skip
  max_invalid_rows: 5
throttle:
  poll_interval: 20ms
verify:
  smoke_queries:
    - name: jackets
      bm25: {{field: title, text: jacket}}
      min_hits: 1
state:
  uri: {state_yaml}
summary:
  path: {tmp_path / "out" / "summary.md"}
"""
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**secrets, "TMPDIR": str(tmp)}
    return Setup(tmp_path, plan, env, secrets, source, fs, buckets, state_options, state_uri)


@pytest.mark.s3
@pytest.mark.parametrize("state_kind", ["file", "s3"])
def test_no_secret_in_any_output_of_any_command(
    state_kind: str,
    tmp_path: Path,
    s3_server: S3Server,
    serve_emulator: Callable[..., RunningEmulator],
    signed_source: SignedSource,
) -> None:
    """Every command, every output, every secret field, file:// and s3:// state: no sentinel."""
    s = _setup(tmp_path, s3_server, serve_emulator, signed_source, state_kind)
    assert not any(v in s.plan.read_text() for v in s.secrets.values()), "only ${…} in the plan"
    plan, saved, copy = str(s.plan), str(tmp_path / "saved.elaxplan"), str(tmp_path / "copy.md")
    json_debug = ("--log-format", "json", "--log-level", "debug")
    commands: list[tuple[str, ...]] = [
        ("--log-level", "debug", "validate", plan),
        ("validate", plan, "--format", "json"),
        ("--log-level", "debug", "plan", plan, "--out", saved),
        ("plan", plan, "--format", "markdown"),
        (*json_debug, "plan", plan, "--format", "json"),
        ("--debug", *json_debug, "apply", saved, "--summary-out", copy),
        ("--debug", "--log-level", "debug", "apply", plan, "--auto-approve"),
        ("--log-level", "debug", "status", plan),
        ("--debug", "summary", plan),
    ]
    outputs: list[tuple[str, str]] = []
    codes: list[int] = []
    for args in commands:
        done = s.run(*args)
        codes.append(done.returncode)
        outputs.append((" ".join(args), done.stdout + done.stderr))
    assert codes == [0] * len(commands), outputs
    # A lease left behind: status shows it, apply is refused, unlock (wrong id, then right).
    backend = open_backend(s.state_uri, s.state_options)
    lock_id = acquire(backend, "leaky", "apply").lock_id
    for args, code in [
        (("--debug", "apply", plan, "--auto-approve"), 1),
        (("status", plan), 0),
        (("--debug", "unlock", plan, "not-the-lock-id"), 1),
        (("unlock", plan, lock_id), 0),
    ]:
        done = s.run(*args)
        assert done.returncode == code, (args, done.stdout + done.stderr)
        outputs.append((" ".join(args), done.stdout + done.stderr))

    text = dict(outputs)
    shown = f"{s.source.base_url}/part-000.ndjson?sv=2024-05-04&sp=r&sig=***"
    assert shown in text[" ".join(commands[2])], "the plan names the file, signature masked"
    assert f"{2 * ROWS:,} rows written" in text[" ".join(commands[5])], "read with the real URL"
    assert "No changes" in text[" ".join(commands[6])], "ledger keys match the next listing"
    held = text[f"--debug apply {plan} --auto-approve"]
    assert "is locked by another run" in held and "Traceback" in held, "--debug shows it"
    assert s.source.refused == 0 and s.source.served
    places = s.places(outputs)
    stored = {p.rsplit("/", 1)[-1] for p in places}
    assert {"state.json", "events.ndjson", "rejects.ndjson", "summary.json", "summary.md"} <= stored
    assert {"saved.elaxplan", "copy.md"} <= stored
    state_json = next(v for k, v in places.items() if k.endswith("leaky/state.json"))
    assert shown.encode() in state_json, "the ledger keys the file by its display URL"
    rejects = next(v for k, v in places.items() if k.endswith("rejects.ndjson"))
    assert b"sig=***" in rejects, "a rejected row names its file, masked"
    assert leaks(s.secrets, places) == []


@pytest.mark.s3
def test_internal_error_under_debug_shows_the_traceback_without_secrets(
    tmp_path: Path,
    s3_server: S3Server,
    serve_emulator: Callable[..., RunningEmulator],
    signed_source: SignedSource,
) -> None:
    """--debug on a bug: the traceback is shown, its Bearer token and access_token are ***."""
    s = _setup(tmp_path, s3_server, serve_emulator, signed_source, "s3")
    token = sentinel("fault-url-token")
    done = run_faulty_cli(
        "--debug", "--log-level", "debug", "apply", str(s.plan), "--auto-approve",
        env={**s.env, "LEAK_FAULT_TOKEN": token},
    )  # fmt: skip
    err = done.stderr
    assert done.returncode == 1, done.stdout + err
    traceback = err[err.index("Traceback (most recent call last)") : err.index("Error: internal")]
    assert s.secrets["LEAK_API"] not in traceback, "the Bearer token in the headers' repr"
    assert token not in traceback, "the access_token in the request's URL"
    assert "RuntimeError: test fault: <Request('POST'" in traceback, "the traceback is shown"
    assert "'authorization': 'Bearer ***'" in traceback
    assert "access_token=***" in traceback and "while sending to" in traceback
    assert "ValueError: upstream refused key ***" in traceback, "the chained cause is shown too"
    assert "re-run with --debug" in err[err.index("Error: internal") :]
    summary = orjson.loads(next(v for k, v in s.places([]).items() if k.endswith("summary.json")))
    assert "access_token=***" in summary["error"], "the run record keeps the redacted message"
    places = s.places([("stdout", done.stdout), ("stderr", err)])
    assert leaks({**s.secrets, "LEAK_FAULT_TOKEN": token}, places) == []
