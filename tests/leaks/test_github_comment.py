"""``elax-plan comment``: GITHUB_TOKEN reaches no output on any path — created (from a body
that holds it), updated after a 502, refused for permissions, a wrong token, an empty body,
a bug (``tests.leaks.fault``), GitHub unreachable.

Every run is a real subprocess with ``--debug`` and debug logs (console and JSON); the
haystack is its stdout and stderr and everything the fake GitHub recorded (requests
minus their ``Authorization`` header, which must carry the token and only it).
"""

from __future__ import annotations

import os
import subprocess
import sys

import orjson

from elax_plan.emulator.server import bind
from tests.github_server import serve_github
from tests.leaks.support import haystack, leaks, run_faulty_cli, sentinel

DEBUG_JSON = ("--debug", "--log-format", "json", "--log-level", "debug")
DEBUG = ("--debug", "--log-level", "debug")


def _run(
    env: dict[str, str], *args: str, body: str = "## Plan\n"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elax_plan", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=body,
        env={**os.environ, **env},
    )


def test_no_github_token_in_any_output_of_comment() -> None:
    """Every outcome of `comment`, under --debug and debug logs: the token is never shown."""
    token, wrong = sentinel("github-token"), sentinel("wrong-github-token")
    comment = ("comment", "--pr", "5", "--repo", "acme/search")
    outputs: list[tuple[str, str]] = []
    with serve_github(token) as fake:
        env = {"GITHUB_TOKEN": token, "GITHUB_API_URL": fake.url}
        runs = [
            (_run(env, *DEBUG_JSON, *comment, body=f"## Plan\ntoken: {token}\n"), 0, "Created"),
        ]
        fake.fail_next("PATCH", 502, "Bad Gateway")
        runs.append((_run(env, *DEBUG, *comment), 0, "Updated"))
        fake.fail_next("PATCH", 403, "Resource not accessible by integration")
        runs.append((_run(env, *DEBUG_JSON, *comment), 1, "pull-requests: write"))
        wrong_env = {**env, "GITHUB_TOKEN": wrong}
        runs.append((_run(wrong_env, *DEBUG, *comment), 1, "HTTP 401 (Bad credentials)"))
        fault = run_faulty_cli(*DEBUG_JSON, *comment, "--body-file", os.devnull, env=env)
        runs.append((fault, 1, "Error: The comment body is empty"))
        fault = run_faulty_cli(*DEBUG, *comment, "--body-file", __file__, env=env)
        runs.append((fault, 1, "RuntimeError: test fault: <Request('PATCH'"))
        recorded = orjson.dumps([vars(r) for r in fake.requests]).decode()
        refused = [r.path for r in fake.requests if not r.token_ok]
        assert refused == ["/user"], "only the wrong token's first request was refused"
    closed = bind("127.0.0.1", 0)
    dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    gone = _run({**env, "GITHUB_API_URL": dead}, *DEBUG, *comment, "--max-wait", "1s")
    runs.append((gone, 1, "ConnectError"))
    for i, (done, code, said) in enumerate(runs):
        text = done.stdout + done.stderr
        assert done.returncode == code and said in text, (i, text)
        outputs.append((f"run {i}", text))
    assert "'authorization': 'Bearer ***'" in runs[5][0].stderr, "the fault's headers, redacted"
    places = haystack([*outputs, ("recorded requests", recorded)])
    assert leaks({"GITHUB_TOKEN": token, "wrong token": wrong}, places) == []
