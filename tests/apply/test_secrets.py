"""Secrets never leave the process: sentinel credentials through ``${ENV}`` in a whole apply.

``target.api_key`` and the S3 credentials of ``source.storage_options`` and
``state.storage_options`` (moto server; the credentials really are used) are
sentinels. They must appear nowhere: not in any command's stdout or stderr
(console logs, JSON logs at debug level, errors), not in the saved plan, and
not in any file under the state (``state.json``, ``events.ndjson``,
``rejects.ndjson``, ``summary.json``, ``summary.md``) or ``summary.path``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import s3fs

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import make_dataset, run_cli, write_plan
from tests.conftest import RunningEmulator, S3Server, make_bucket

SENTINELS = {
    "ELAX_TEST_API_KEY": "sentinel-api-key-3c8f1e9a77",
    "ELAX_TEST_SOURCE_KEY": "sentinel-source-key-id-52aa",
    "ELAX_TEST_SOURCE_SECRET": "sentinel-source-secret-b41d0c",
    "ELAX_TEST_STATE_SECRET": "sentinel-state-secret-e07f93",
}


def test_sentinel_secrets_appear_in_no_output_state_or_summary(
    tmp_path: Path, s3_server: S3Server, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """validate, plan --out, apply (JSON debug logs), status, summary, an error: no sentinel."""
    bucket = make_bucket(s3_server)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options())
    data = make_dataset(tmp_path / "src", files=2, rows=100)
    for path in data.files:
        fs.put_file(str(path), f"{bucket}/source/{path.name}")
    fs.pipe_file(f"{bucket}/source/part-009.ndjson", b'{"id": "bad", "vector": [1]}\n')
    emu = serve_emulator(
        EmulatorConfig((tmp_path / "store").as_uri(), indexer="background", index_interval=0.02)
    )
    s3 = s3_server.endpoint_url
    plan = write_plan(
        tmp_path / "plan.yaml",
        url="${var.target}",
        store=(tmp_path / "store").as_uri(),
        source=f"s3://{bucket}/source/*.ndjson\n  storage_options:\n    endpoint_url: {s3}\n"
        "    key: ${ELAX_TEST_SOURCE_KEY}\n    secret: ${ELAX_TEST_SOURCE_SECRET}",
        state=f"s3://{bucket}/state\n  storage_options:\n    endpoint_url: {s3}\n"
        "    key: ${ELAX_TEST_SOURCE_KEY}\n    secret: ${ELAX_TEST_STATE_SECRET}",
        target_extra="  api_key: ${ELAX_TEST_API_KEY}\n",
        extra=f"""ingest:
  on_invalid_row: skip
  max_invalid_rows: 5
throttle:
  poll_interval: 20ms
verify:
  smoke_queries:
    - name: cannot match
      bm25: {{field: title, text: jacket}}
      expect_ids: [nope]
  recall:
    num: 10
    min_avg_recall: 1.0
    ann_params: {{target_recall: 0.01}}
    tune: true
summary:
  path: {tmp_path / "out" / "summary.md"}
""",
    )
    text = plan.read_text()
    assert not any(value in text for value in SENTINELS.values()), "secrets come from ${ENV}"
    target = ("--var", f"target={emu.url}")
    json_debug = ("--log-format", "json", "--log-level", "debug")
    saved = tmp_path / "saved.elaxplan"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    commands = [
        ("validate", str(plan), *target),
        ("--log-level", "debug", "plan", str(plan), *target, "--out", str(saved)),
        (*json_debug, "apply", str(saved), *target),
        ("--log-level", "debug", "status", str(plan), *target),
        ("summary", str(plan), *target),
        ("--log-level", "debug", "apply", str(plan), "--var", f"target={closed}", "--auto-approve"),
    ]
    outputs = []
    for args in commands:
        done = run_cli(*args, env=SENTINELS)
        outputs.append((args, done.returncode, done.stdout + done.stderr))
    codes = [code for _, code, _ in outputs]
    assert codes == [0, 0, 3, 0, 0, 1], outputs
    applied = outputs[2][2]
    assert '"level":"debug"' in applied and "row(s) skipped" in applied, "logs and summary shown"
    assert "Cheapest setting that meets the SLO" in applied
    assert "elacsym target reachable: unreachable" in outputs[5][2], "the error path ran"
    # what the apply wrote: the state on S3 (ledger, run files) and the local summary copy
    fs.invalidate_cache()
    state_files = {p: fs.cat_file(p).decode() for p in fs.find(f"{bucket}/state")}
    names = {p.rsplit("/", 1)[-1] for p in state_files}
    assert {"state.json", "events.ndjson", "rejects.ndjson", "summary.json", "summary.md"} <= names
    written = {
        **state_files,
        "saved plan": saved.read_text(),
        "summary.path": (tmp_path / "out" / "summary.md").read_text(),
    }
    for name, value in SENTINELS.items():
        for args, _, output in outputs:
            assert value not in output, f"{name} in the output of {' '.join(args)}"
        for where, content in written.items():
            assert value not in content, f"{name} in {where}"
