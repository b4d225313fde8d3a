"""``elax-plan comment``: post the markdown report to a pull request, or update our comment.

Reads the environment (``GITHUB_TOKEN``, ``GITHUB_API_URL``, ``GITHUB_REPOSITORY``) and
the body (``--body-file``, a file or ``-`` for stdin), then calls
``github.post_or_update_comment`` once. The body is a finished report (``plan --format
markdown``); rendering plans here later only adds another source of the body string.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click
import orjson

from elax_plan.cli._group import main
from elax_plan.cli._output import echo
from elax_plan.cli._plan_args import var_option
from elax_plan.cli.emulator import Duration
from elax_plan.errors import EXIT_OK, GitHubError
from elax_plan.github import (
    DEFAULT_API_URL,
    DEFAULT_MARKER,
    PERMISSIONS_HINT,
    CommentTarget,
    marker_line,
    post_or_update_comment,
)
from elax_plan.spec import Secret

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def _marker(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return marker_line(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("comment")
@click.argument("plan_args", nargs=-1, metavar="[PLAN]...")
@var_option
@click.option(
    "--changed-from",
    metavar="GIT_REF",
    help="With PLAN: keep only the plans changed since GIT_REF (as `plan --changed-from`).",
)
@click.option(
    "--pr",
    type=click.IntRange(min=1),
    required=True,
    metavar="N",
    help="The pull request's number.",
)
@click.option(
    "--repo",
    envvar="GITHUB_REPOSITORY",
    show_envvar=True,
    metavar="OWNER/NAME",
    help="The pull request's repository (GitHub Actions sets GITHUB_REPOSITORY).",
)
@click.option(
    "--body-file",
    default=None,
    metavar="FILE|-",
    help="The markdown to post: a file, or - to read standard input (the default without PLAN).",
)
@click.option(
    "--marker",
    default=DEFAULT_MARKER,
    show_default=True,
    callback=_marker,
    help="The hidden line that finds our comment again; one per comment (e.g. one per plan). "
    "Plain text is wrapped as <!-- TEXT -->.",
)
@click.option(
    "--max-wait",
    type=Duration(),
    default="2m",
    show_default=True,
    help="The most all retries may wait together (Retry-After, rate-limit resets, backoff).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: a sentence with the comment's URL; json: action, id, url, repo, pr.",
)
def comment_command(
    plan_args: tuple[str, ...],
    var_items: tuple[str, ...],
    changed_from: str | None,
    pr: int,
    repo: str | None,
    body_file: str | None,
    marker: str,
    max_wait: float,
    output_format: str,
) -> int:
    """Post a markdown report to a pull request, or update the comment posted before.

    With PLAN (files, directories of plans, globs; --var and --changed-from as
    for `plan`), the body is the markdown report `elax-plan plan PLAN...
    --format markdown` prints; otherwise it is read from --body-file or
    standard input. The body is redacted, given the hidden
    marker line (default <!-- elax-plan:report -->) as its first line unless it
    opens with it, and posted as a comment on pull request --pr. If the pull
    request already has a comment opening with that marker line, the newest such
    comment is edited instead, so each run updates one comment. When GitHub
    says whose the token is (GET /user), only that user's comments count; Actions'
    GITHUB_TOKEN cannot ask, and then the marker alone decides.

    Environment: GITHUB_TOKEN (required): a token with `pull-requests: write` on
    the repository (in a workflow: `permissions: pull-requests: write` and
    `contents: read`). GITHUB_API_URL: the REST API, for GitHub Enterprise Server
    https://HOST/api/v3 (default https://api.github.com). GITHUB_REPOSITORY: the
    default --repo.

    Connection errors, 5xx answers and rate limits (403/429 with Retry-After, or
    x-ratelimit-remaining 0 until x-ratelimit-reset) are retried, up to 5 tries
    within --max-wait; a retry looks for the comment again, so it is never posted
    twice. A body over 65,536 characters (GitHub's limit) is refused, not cut.
    Prints the comment's URL and whether it was created or updated. Exit codes:
    0 posted, 1 error.

    In CI: `elax-plan comment --pr $PR plans/ --changed-from origin/main`, or
    `elax-plan plan plans/ --format markdown --changed-from origin/main >
    report.md && elax-plan comment --pr $PR --body-file report.md`.
    """
    if changed_from is not None and not plan_args:
        raise GitHubError(
            "--changed-from picks among plans: give PLAN arguments with it.",
            hint="For example: `elax-plan comment --pr N plans/ --changed-from origin/main`.",
        )
    if plan_args and body_file is not None:
        raise GitHubError(
            "Give either PLAN arguments or --body-file, not both.",
            hint="With PLAN the report is rendered here; --body-file posts one made before.",
        )
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise GitHubError(
            "GITHUB_TOKEN is not set: `elax-plan comment` needs a GitHub token to post.",
            hint=f"{PERMISSIONS_HINT} In a workflow step: "
            "`env: {GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}}`.",
        )
    secret = Secret(token)
    target = CommentTarget(_repo(repo), pr, os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL)
    if plan_args:
        from elax_plan.cli._plan_many import markdown_report

        body, _ = markdown_report(plan_args, var_items, changed_from=changed_from)
    else:
        body = _read_body(body_file or "-")
    posted = post_or_update_comment(target, body, token=secret, marker=marker, max_wait=max_wait)
    if output_format == "json":
        echo(orjson.dumps(posted.to_json()).decode())
    else:
        echo(f"{posted.action.capitalize()} the comment on {target}: {posted.url}")
    return EXIT_OK


def _repo(repo: str | None) -> str:
    if not repo:
        raise GitHubError(
            "No repository: give --repo owner/name.",
            hint="In GitHub Actions GITHUB_REPOSITORY is set and is the default.",
        )
    if not _REPO.match(repo):
        raise GitHubError(f"--repo {repo!r} is not owner/name.", hint="For example: acme/search.")
    return repo


def _read_body(body_file: str) -> str:
    if body_file == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise GitHubError(
                "No report to post: --body-file is - (standard input), which is a terminal.",
                hint="Pipe the report in, or give --body-file report.md.",
            )
        return sys.stdin.read()
    try:
        return Path(body_file).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GitHubError(f"{body_file} is not UTF-8 text ({exc.reason}).") from None
    except OSError as exc:
        raise GitHubError(
            f"Cannot read --body-file {body_file}: {exc.strerror or exc}.",
            hint="Write the report first: `elax-plan plan … --format markdown > report.md`.",
        ) from None
