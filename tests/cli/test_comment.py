"""``elax-plan comment`` against a fake GitHub (``tests/github_server.py``) over a real socket.

The must-show runs are real subprocesses (``python -m elax_plan``) with
``GITHUB_API_URL`` pointing at the fake and a sentinel token: the first call creates,
the second updates the same comment (found on page 2), a 502 then a 201 is retried, a
403 secondary rate limit's ``Retry-After`` is waited out (measured by the server's
arrival times) and the token appears in no output, logs at debug level and ``--debug``
included. The rest run in-process (``run``) for speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from elax_plan.cli._group import run
from elax_plan.errors import GitHubError
from elax_plan.github import (
    DEFAULT_MARKER,
    CommentTarget,
    carries_marker,
    marker_line,
    post_or_update_comment,
)
from elax_plan.spec import Secret
from tests.github_server import FakeGitHub, serve_github
from tests.leaks.support import haystack, leaks, sentinel

REPO = "acme/search"
PR = 7
# ``sig`` values are masked by ``spec.redact`` wherever they are: the body is redacted too.
SIGNED = "https://data.example/part-000.ndjson?sv=1&sig=c2lnbmF0dXJl"


@pytest.fixture
def token() -> str:
    return sentinel("github-token")


@pytest.fixture
def github(token: str) -> Iterator[FakeGitHub]:
    """The fake API with 120 comments by reviewers on PR 7, so ours lands on page 2."""
    with serve_github(token) as fake:
        for i in range(120):
            fake.add_comment(PR, f"looks good {i}")
        yield fake


def _cli(
    github: FakeGitHub, token: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GITHUB_TOKEN": token,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": REPO,
    }
    return subprocess.run(
        [sys.executable, "-m", "elax_plan", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env=env,
    )


def _no_token(token: str, github: FakeGitHub, *runs: subprocess.CompletedProcess[str]) -> None:
    """The token is in no output and reached the server only in the Authorization header."""
    outputs = [(f"run {i}", r.stdout + r.stderr) for i, r in enumerate(runs)]
    recorded = [("requests", orjson.dumps([vars(r) for r in github.requests]).decode())]
    assert leaks({"GITHUB_TOKEN": token}, haystack(outputs + recorded)) == []
    assert github.requests and all(r.token_ok for r in github.requests)


def test_the_first_call_creates_and_the_second_updates_the_same_comment(
    github: FakeGitHub, token: str, tmp_path: Path
) -> None:
    """Create (body from stdin, marker prepended, redacted), then update it on page 2."""
    first = _cli(github, token, "comment", "--pr", str(PR), stdin=f"## Plan\n\n{SIGNED}\n{token}\n")
    assert first.returncode == 0, first.stderr
    ours = github.comments[PR][-1]
    assert first.stdout == f"Created the comment on {REPO}#{PR}: {ours['html_url']}\n"
    assert ours["body"].startswith(f"{DEFAULT_MARKER}\n## Plan\n")
    assert "sig=***" in ours["body"] and "\n***\n" in ours["body"], "redacted before sending"
    assert [c for _, _, c in github.calls()] == [403, 200, 200, 201]
    pages = [r.query for r in github.requests if r.method == "GET" and r.path != "/user"]
    assert pages == ["per_page=100", "per_page=100&page=2"]

    report = tmp_path / "report.md"
    report.write_text(f"{DEFAULT_MARKER}\n## Plan, again\n")
    args = ("--log-level", "debug", "comment", "--pr", str(PR), "--body-file", str(report))
    second = _cli(github, token, *args, "--format", "json")
    assert second.returncode == 0, second.stderr
    assert orjson.loads(second.stdout) == {
        "action": "updated",
        "id": ours["id"],
        "url": ours["html_url"],
        "repo": REPO,
        "pr": PR,
    }
    assert len(github.comments[PR]) == 121, "no second comment"
    assert ours["body"] == f"{DEFAULT_MARKER}\n## Plan, again\n", "the marker is not doubled"
    method, path, _ = github.calls()[-1]
    assert (method, path) == ("PATCH", f"/repos/{REPO}/issues/comments/{ours['id']}")
    sent = github.requests[-1]
    assert sent.headers["accept"] == "application/vnd.github+json"
    assert sent.headers["user-agent"].startswith("elax-plan/")
    _no_token(token, github, first, second)


def test_a_502_and_a_secondary_rate_limit_are_retried(
    github: FakeGitHub, token: str, tmp_path: Path
) -> None:
    """502 then 201: created once; a 403 with Retry-After: 1 is waited out, then updated."""
    report = tmp_path / "report.md"
    report.write_text("## Plan\n")
    github.fail_next("POST", 502, "Bad Gateway")
    created = _cli(github, token, "comment", "--pr", str(PR), "--body-file", str(report))
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(f"Created the comment on {REPO}#{PR}: ")
    posts = [c for m, _, c in github.calls() if m == "POST"]
    assert posts == [502, 201]
    assert sum(carries_marker(c["body"], DEFAULT_MARKER) for c in github.comments[PR]) == 1

    github.fail_next(
        "PATCH", 403, "You have exceeded a secondary rate limit.", {"Retry-After": "1"}
    )
    debug = ("--debug", "--log-format", "json", "--log-level", "debug")
    updated = _cli(github, token, *debug, "comment", "--pr", str(PR), "--body-file", str(report))
    assert updated.returncode == 0, updated.stderr
    assert updated.stdout.startswith(f"Updated the comment on {REPO}#{PR}: ")
    patches = [r for r in github.requests if r.method == "PATCH"]
    assert [p.status for p in patches] == [403, 200]
    limited = github.requests.index(patches[0])
    waited = github.requests[limited + 1].at - patches[0].at
    assert waited >= 1.0, f"Retry-After: 1 honoured, the next request came after {waited:.2f}s"
    retry = next(
        orjson.loads(line) for line in updated.stderr.splitlines() if "github_retry" in line
    )
    assert retry["cause"] == "secondary_rate_limit" and retry["retry_after_s"] == 1.0
    _no_token(token, github, created, updated)


def test_a_create_that_landed_despite_a_502_is_not_posted_twice(
    github: FakeGitHub, token: str, tmp_path: Path
) -> None:
    """The retry looks for the comment again: it updates the one that landed."""
    github.fail_next("POST", 502, "Bad Gateway", after_work=True)
    done = _cli(github, token, "comment", "--pr", str(PR), stdin="## Plan\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Updated the comment")
    assert [m for m, _, _ in github.calls() if m in ("POST", "PATCH")] == ["POST", "PATCH"]
    assert sum(carries_marker(c["body"], DEFAULT_MARKER) for c in github.comments[PR]) == 1
    _no_token(token, github, done)


@pytest.fixture
def env(github: FakeGitHub, token: str, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    monkeypatch.setenv("GITHUB_TOKEN", token)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    return github


def test_a_missing_token_names_the_variable_and_the_permission(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """No GITHUB_TOKEN: exit 1, no traceback, the variable and `pull-requests: write` named."""
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    (tmp_path / "r.md").write_text("## Plan\n")
    assert run(["comment", "--pr", "1", "--repo", REPO, "--body-file", str(tmp_path / "r.md")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: GITHUB_TOKEN is not set")
    assert "pull-requests: write" in err and "Traceback" not in err


def test_a_permission_refusal_is_not_retried(
    env: FakeGitHub, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A 403 without rate-limit headers is the token's permissions: one try, a clear hint."""
    env.fail_next("POST", 403, "Resource not accessible by integration")
    (tmp_path / "r.md").write_text("## Plan\n")
    assert run(["comment", "--pr", str(PR), "--body-file", str(tmp_path / "r.md")]) == 1
    err = capsys.readouterr().err
    assert "HTTP 403 (Resource not accessible by integration)" in err
    assert "pull-requests: write" in err
    assert [m for m, _, _ in env.calls()].count("POST") == 1


def test_a_body_over_githubs_limit_is_refused_before_any_request(
    env: FakeGitHub, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Over 65,536 characters: refused with the count, never cut, nothing sent."""
    (tmp_path / "r.md").write_text("x" * 65_600)
    assert run(["comment", "--pr", str(PR), "--body-file", str(tmp_path / "r.md")]) == 1
    err = capsys.readouterr().err
    assert "65,626 characters; GitHub accepts at most 65,536" in err
    assert env.requests == []


def test_a_wait_longer_than_max_wait_fails_at_once(
    env: FakeGitHub, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Retry-After: 60 with --max-wait 2s: no waiting, a message saying what GitHub asked."""
    env.fail_next("POST", 429, "API rate limit exceeded", {"Retry-After": "60"})
    (tmp_path / "r.md").write_text("## Plan\n")
    started = time.monotonic()
    args = ["comment", "--pr", str(PR), "--body-file", str(tmp_path / "r.md"), "--max-wait", "2s"]
    assert run(args) == 1
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert "rate-limited POST" in err and "asked to wait 60 s" in err and "--max-wait" in err


def test_only_the_token_users_comments_count_when_github_says_who(
    token: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """GET /user answers: a marker comment by someone else is left alone; a quote never counts."""
    with serve_github(token, login="elax-bot") as fake:
        fake.add_comment(PR, f"{DEFAULT_MARKER}\nmine, says mallory", login="mallory")
        fake.add_comment(PR, f"> {DEFAULT_MARKER}\n> quoted", login="elax-bot")
        monkeypatch.setenv("GITHUB_TOKEN", token)
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        (tmp_path / "r.md").write_text("## Plan\n")
        args = ["comment", "--pr", str(PR), "--repo", REPO, "--body-file", str(tmp_path / "r.md")]
        assert run(args) == 0
        assert run(args) == 0
        bodies = [(c["user"]["login"], c["body"]) for c in fake.comments[PR]]
    assert bodies[:2] == [
        ("mallory", f"{DEFAULT_MARKER}\nmine, says mallory"),
        ("elax-bot", f"> {DEFAULT_MARKER}\n> quoted"),
    ]
    assert bodies[2:] == [("elax-bot", f"{DEFAULT_MARKER}\n## Plan\n")], "created, then updated"


def test_a_next_page_on_another_host_gets_no_token() -> None:
    """A Link: rel="next" to another origin is refused before anything is sent there."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path.endswith("/user"):
            return httpx.Response(403, json={"message": "Resource not accessible"})
        link = '<https://elsewhere.example/repos/acme/search/issues/7/comments?page=2>; rel="next"'
        return httpx.Response(200, json=[], headers={"link": link})

    target = CommentTarget(REPO, PR, "https://ghe.example/api/v3")
    with pytest.raises(GitHubError, match="sends the token only to GITHUB_API_URL"):
        post_or_update_comment(
            target, "## Plan", token=Secret("t0ken-value"), transport=httpx.MockTransport(handler)
        )
    assert all(url.startswith("https://ghe.example/api/v3/") for url in seen)


def test_markers() -> None:
    """Plain text becomes an HTML comment; a marker must be one line without '--'."""
    assert marker_line("elax-plan:orders") == "<!-- elax-plan:orders -->"
    assert marker_line(DEFAULT_MARKER) == DEFAULT_MARKER
    for bad in ("", "a -- b", "two\nlines", "<!-- x --> y -->"):
        with pytest.raises(ValueError):
            marker_line(bad)
    assert carries_marker(f"\n  {DEFAULT_MARKER}  \r\n## Plan", DEFAULT_MARKER)
    assert not carries_marker(f"> {DEFAULT_MARKER}", DEFAULT_MARKER)
    assert not carries_marker(f"text\n{DEFAULT_MARKER}", DEFAULT_MARKER), "first line only"


def test_the_report_marker_is_the_one_comment_looks_for() -> None:
    """`plan --format markdown` opens with the marker `comment` finds, and fits its limit."""
    from elax_plan.github import MAX_BODY_CHARS
    from elax_plan.report.plan_report import GITHUB_COMMENT_LIMIT, REPORT_MARKER

    assert REPORT_MARKER == DEFAULT_MARKER and GITHUB_COMMENT_LIMIT == MAX_BODY_CHARS


def test_a_per_plan_marker_finds_only_the_comment_it_opens(env: FakeGitHub, tmp_path: Path) -> None:
    """The multi-plan report holds each plan's marker inside: a per-plan comment is its own."""
    report = env.add_comment(PR, f"{DEFAULT_MARKER}\n## 2 plans\n<!-- elax-plan:orders -->\n…")
    (tmp_path / "r.md").write_text("## orders\n")
    args = ["comment", "--pr", str(PR), "--marker", "elax-plan:orders"]
    assert run([*args, "--body-file", str(tmp_path / "r.md")]) == 0
    assert run([*args, "--body-file", str(tmp_path / "r.md")]) == 0
    assert report["body"].startswith(DEFAULT_MARKER), "the report comment is left alone"
    assert env.comments[PR][-1]["body"] == "<!-- elax-plan:orders -->\n## orders\n"
    assert [m for m, _, _ in env.calls() if m in ("POST", "PATCH")] == ["POST", "PATCH"]


def test_a_moved_repository_is_not_followed_with_the_token() -> None:
    """A 301 (renamed repository) is reported with a hint, never followed."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.path.endswith("/user"):
            return httpx.Response(200, json={"login": "elax-bot"})
        moved = "https://elsewhere.example/repositories/1/issues/7/comments"
        return httpx.Response(
            301, json={"message": "Moved Permanently"}, headers={"location": moved}
        )

    target = CommentTarget(REPO, PR, "https://ghe.example/api/v3")
    with pytest.raises(GitHubError, match=r"HTTP 301 .* give its new owner/name with --repo"):
        post_or_update_comment(
            target, "## Plan", token=Secret("t0ken-value"), transport=httpx.MockTransport(handler)
        )
    assert seen == ["ghe.example", "ghe.example"]


def test_plan_arguments_post_the_plan_report(
    github: FakeGitHub, token: str, tmp_path: Path
) -> None:
    """With PLAN arguments the command renders `plan --format markdown`'s report itself."""
    repo_root = Path(__file__).resolve().parents[2]
    (tmp_path / "plans").symlink_to(repo_root / "plans")
    (tmp_path / "broken.yaml").write_text("version: 1\nname: broken\n")  # no target
    env = {**os.environ, "GITHUB_TOKEN": token, "GITHUB_API_URL": github.url}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "elax_plan", "comment", "--pr", str(PR), "--repo", REPO),
            *("plans/quickstart.yaml", "broken.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    body = github.comments[PR][-1]["body"]
    assert body.startswith(f"{DEFAULT_MARKER}\n")
    assert "<!-- elax-plan:quickstart -->" in body
    assert "```sh\nelax-plan apply plans/quickstart.yaml\n```" in body
    assert "broken.yaml" in body  # a plan that failed is named, not dropped
    both = _cli(github, token, "comment", "--pr", "1", "x.yaml", "--body-file", "x.md")
    assert both.returncode == 1 and "either PLAN arguments or --body-file" in both.stderr
    _no_token(token, github, done, both)
