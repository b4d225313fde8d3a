"""The pull-request comment on GitHub: update the one elax-plan posted before, or post it.

Owns the GitHub REST API calls ``elax-plan comment`` makes — ``GET /user`` (whose comments
are ours), the issue comments listed page by page (``Link: rel="next"``), create, update —
the marker that finds our comment again, and what counts as transient: a connect error,
a 5xx, a secondary rate limit (403/429 with ``Retry-After``) or a used-up primary one
(``x-ratelimit-remaining: 0``, wait until ``x-ratelimit-reset``). Such answers become a
retryable ``GitHubUnavailable`` for ``elax_plan.retry``; its policy bounds both the
attempts and the total wait. A retry repeats the whole look-up, so a create that
landed despite a 502 is found and updated, not posted twice.

Which comment is ours: the newest whose body opens with the marker line — anywhere else
it does not count, because the multi-plan report carries each plan's own marker
(``<!-- elax-plan:NAME -->``) inside it, and a quote (``> <!-- … -->``) is someone else's —
and, when ``GET /user`` tells who the token is, written by that user. A GitHub App's installation token (Actions'
``GITHUB_TOKEN``) may not call ``GET /user``; then the marker alone decides.

The token is a ``spec.Secret`` (registered for redaction) and leaves the process only in
the ``Authorization`` header, only to ``GITHUB_API_URL``'s origin: a pagination link to
another host is refused. Errors carry no request, header or httpx exception (``from
None``). The body is redacted before it is sent. It must not print, read files or render
reports: the CLI reads the body, ``report`` renders it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx
import structlog

from elax_plan import __version__
from elax_plan.errors import GitHubError, GitHubUnavailable
from elax_plan.retry import Retrier, RetryPolicy, parse_retry_after
from elax_plan.spec.secrets import Secret, redact

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_MARKER",
    "MAX_BODY_CHARS",
    "PERMISSIONS_HINT",
    "CommentTarget",
    "PostedComment",
    "carries_marker",
    "marker_line",
    "post_or_update_comment",
    "prepare_body",
]

log = structlog.get_logger(__name__)

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_MARKER = "<!-- elax-plan:report -->"
# GitHub refuses a comment body longer than this (HTTP 422 "body is too long").
MAX_BODY_CHARS = 65_536
# Five tries; backoffs of ~1, 2, 4, 8 s, or what Retry-After asks, within ``max_wait``.
RETRY_POLICY = RetryPolicy(attempts=5, initial=1.0, max=16.0, max_wait=120.0)
# A secondary rate limit without Retry-After: GitHub's documented "wait at least a minute".
SECONDARY_LIMIT_DEFAULT_WAIT_S = 60.0
PER_PAGE = 100
MAX_PAGES = 100
TIMEOUT_S = 30.0
PERMISSIONS_HINT = (
    "The token needs `pull-requests: write` on the repository (in a workflow: "
    "`permissions: {pull-requests: write, contents: read}`; a fine-grained token: "
    '"Pull requests: Read and write"). A pull request from a fork gets a read-only '
    "GITHUB_TOKEN."
)


@dataclass(frozen=True, slots=True)
class CommentTarget:
    """Where the comment goes: ``repo`` is ``owner/name``, ``pr`` the pull request number."""

    repo: str
    pr: int
    api_url: str = DEFAULT_API_URL

    def __str__(self) -> str:
        return f"{self.repo}#{self.pr}"


@dataclass(frozen=True, slots=True)
class PostedComment:
    """What ``post_or_update_comment`` did: ``action``, the comment's ``id`` and ``url``."""

    action: Literal["created", "updated"]
    id: int
    url: str
    target: CommentTarget

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "id": self.id,
            "url": self.url,
            "repo": self.target.repo,
            "pr": self.target.pr,
        }


def marker_line(text: str) -> str:
    """The hidden marker line for ``text``: an HTML comment as given, or ``text`` wrapped in
    one (``orders`` → ``<!-- orders -->``). ``ValueError`` for text that cannot be one."""
    text = text.strip()
    inner = text[4:-3] if text.startswith("<!--") and text.endswith("-->") else text
    inner = inner.strip()
    if not inner or "\n" in inner or "--" in inner or ">" in inner:
        raise ValueError(
            f"{text!r} cannot be a marker: give one line of text without '--' or '>' "
            f"(it becomes an HTML comment, like {DEFAULT_MARKER})"
        )
    return f"<!-- {inner} -->"


def carries_marker(body: str, marker: str) -> bool:
    """Whether ``body``'s first line (blank lines and surrounding spaces aside) is ``marker``."""
    first = next((line.strip() for line in body.splitlines() if line.strip()), "")
    return first == marker


def prepare_body(body: str, marker: str = DEFAULT_MARKER) -> str:
    """The comment as it is sent: redacted, the marker as its first line unless it opens
    with it already. ``GitHubError`` when it is empty or longer than GitHub accepts (it is
    refused, never cut: a cut report would hide plans from the review)."""
    text = redact(body)
    if not text.strip():
        raise GitHubError(
            "The comment body is empty.", hint="Pass the report with --body-file FILE (or -)."
        )
    if not carries_marker(text, marker):
        text = f"{marker}\n{text}"
    if len(text) > MAX_BODY_CHARS:
        raise GitHubError(
            f"The comment body is {len(text):,} characters; GitHub accepts at most "
            f"{MAX_BODY_CHARS:,}, so nothing was posted.",
            hint="Render a shorter report (`elax-plan plan … --format markdown` folds many "
            "plans to fit), or post one comment per plan with --marker.",
        )
    return text


def post_or_update_comment(
    target: CommentTarget,
    body: str,
    *,
    token: Secret,
    marker: str = DEFAULT_MARKER,
    max_wait: float | None = None,
    transport: httpx.BaseTransport | None = None,
) -> PostedComment:
    """Update our comment on ``target`` (found by ``marker``) to ``body``, or create it.

    ``body`` goes through ``prepare_body``. ``max_wait``: seconds all retries may wait
    together (None: ``RETRY_POLICY``'s). ``transport``: for tests of protocol edge cases.
    """
    text = prepare_body(body, marker)
    policy = RETRY_POLICY if max_wait is None else replace(RETRY_POLICY, max_wait=max_wait)
    retrier = Retrier(policy, on_retry=_log_retry)
    with _GitHub(target.api_url, token, transport) as github:
        # One call, one wait budget: each try asks who we are, lists, then creates or updates.
        return retrier.call(
            lambda: _upsert(github, target, text, marker, github.login()), what="comment"
        )


def _upsert(
    github: _GitHub, target: CommentTarget, text: str, marker: str, login: str | None
) -> PostedComment:
    ours = [
        c
        for c in github.comments(target)
        if carries_marker(str(c.get("body") or ""), marker)
        and (login is None or (c.get("user") or {}).get("login") == login)
    ]
    if not ours:
        created = github.send("POST", f"{_issue(target)}/comments", text, f"comment on {target}")
        return PostedComment("created", created[0], created[1], target)
    newest = max(ours, key=lambda c: int(c["id"]))
    path = f"/repos/{target.repo}/issues/comments/{int(newest['id'])}"
    updated = github.send("PATCH", path, text, f"update comment {newest['id']} on {target}")
    return PostedComment("updated", updated[0], updated[1], target)


def _issue(target: CommentTarget) -> str:
    return f"/repos/{target.repo}/issues/{target.pr}"


def _log_retry(retry: dict[str, Any]) -> None:
    log.warning(
        "github_retry",
        what=retry["what"],
        cause=retry["cause"],
        attempt=retry["attempt"],
        delay_s=retry["delay_s"],
        retry_after_s=retry["retry_after_s"],
    )


class _GitHub:
    """One httpx client to ``api_url`` with the token; each method is one API call."""

    def __init__(self, api_url: str, token: Secret, transport: httpx.BaseTransport | None) -> None:
        self.base = api_url.rstrip("/")
        parts = urlsplit(self.base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise GitHubError(
                f"GITHUB_API_URL {api_url!r} is not an http(s) URL.",
                hint=f"Leave it unset for github.com ({DEFAULT_API_URL}); for GitHub "
                "Enterprise Server it is https://HOST/api/v3.",
            )
        self.origin = f"{parts.scheme}://{parts.netloc}".lower()
        self._client = httpx.Client(
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": f"elax-plan/{__version__}",
                "Authorization": f"Bearer {token.reveal()}",
            },
            timeout=TIMEOUT_S,
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> _GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def login(self) -> str | None:
        """The token's user, or None when GitHub will not say (an App installation token)."""
        response = self._request("GET", f"{self.base}/user", "read the token's user")
        if response.status_code == 200:
            login = _json(response, "GET /user").get("login")
            return str(login) if login else None
        if response.status_code == 401:
            raise _refused(response, "accept the token")
        return None

    def comments(self, target: CommentTarget) -> list[dict[str, Any]]:
        """Every comment of the pull request, following ``Link: rel="next"``."""
        url = f"{self.base}{_issue(target)}/comments?per_page={PER_PAGE}"
        found: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            response = self._request("GET", url, f"list the comments of {target}")
            if response.status_code != 200:
                raise _refused(response, f"list the comments of {target}")
            page = _parsed(response)
            if not isinstance(page, list):
                raise _unexpected(response, f"listing the comments of {target}")
            found.extend(c for c in page if isinstance(c, dict) and "id" in c)
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return found
            url = self._same_origin(urljoin(url, next_url))
        raise GitHubError(
            f"{target} has more than {MAX_PAGES * PER_PAGE:,} comments; elax-plan stopped "
            "listing them.",
            hint="Post with another --marker, or delete old comments.",
        )

    def send(self, method: str, path: str, text: str, what: str) -> tuple[int, str]:
        """POST or PATCH ``{"body": text}``; the comment's id and html_url."""
        response = self._request(method, f"{self.base}{path}", what, {"body": text})
        if response.status_code not in (200, 201):
            raise _refused(response, what)
        data = _json(response, what)
        if not isinstance(data.get("id"), int) or not isinstance(data.get("html_url"), str):
            raise _unexpected(response, what)
        return data["id"], data["html_url"]

    def _request(
        self, method: str, url: str, what: str, json: dict[str, Any] | None = None
    ) -> httpx.Response:
        path = urlsplit(url).path
        try:
            response = self._client.request(method, url, json=json)
        except httpx.TransportError as exc:
            # ``from None``: the httpx exception holds the request, headers included.
            raise GitHubUnavailable(
                f"Could not {what}: {method} {path} on {self.origin} failed "
                f"({type(exc).__name__}: {exc or 'no detail'}).",
                hint="Retries gave up (attempts or --max-wait used up); check GITHUB_API_URL "
                "and the network.",
                cause=type(exc).__name__,
            ) from None
        log.debug("github_request", method=method, path=path, status=response.status_code)
        _raise_if_transient(response, method, path, what)
        return response

    def _same_origin(self, url: str) -> str:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}".lower() != self.origin:
            raise GitHubError(
                f"GitHub's next-page link points to {parts.scheme}://{parts.hostname}, not "
                f"{self.origin}; elax-plan sends the token only to GITHUB_API_URL.",
                hint="Check GITHUB_API_URL (GitHub Enterprise Server: https://HOST/api/v3).",
            )
        return url


def _raise_if_transient(response: httpx.Response, method: str, path: str, what: str) -> None:
    status = response.status_code
    wait = _rate_limit_wait(response)
    secondary = "secondary rate limit" in _message(response).lower()
    if status in (403, 429) and (wait is not None or secondary or status == 429):
        cause, seconds = wait or ("secondary_rate_limit", SECONDARY_LIMIT_DEFAULT_WAIT_S)
        raise GitHubUnavailable(
            f"Could not {what}: GitHub rate-limited {method} {path} (HTTP {status}: "
            f"{_message(response)}) and asked to wait {seconds:.0f} s.",
            hint="Retries gave up (attempts or --max-wait used up); run the command again "
            "later, or raise --max-wait.",
            cause=cause,
            status=status,
            retry_after=seconds,
        )
    if status >= 500:
        raise GitHubUnavailable(
            f"Could not {what}: GitHub answered {method} {path} with HTTP {status} "
            f"({_message(response)}).",
            hint="GitHub may be having trouble (https://www.githubstatus.com); run the "
            "command again later.",
            cause=f"http_{status}",
            status=status,
            retry_after=wait[1] if wait else None,
        )


def _rate_limit_wait(response: httpx.Response) -> tuple[str, float] | None:
    """(cause, seconds) GitHub asked us to wait: ``Retry-After``, or until the primary
    limit's ``x-ratelimit-reset`` when ``x-ratelimit-remaining`` is 0; else None."""
    after = parse_retry_after(response.headers.get("retry-after"))
    if after is not None:
        return "secondary_rate_limit", after
    if response.headers.get("x-ratelimit-remaining") == "0":
        try:
            reset = float(response.headers.get("x-ratelimit-reset", ""))
        except ValueError:
            return "rate_limit", SECONDARY_LIMIT_DEFAULT_WAIT_S
        return "rate_limit", max(0.0, reset - time.time()) + 1.0
    return None


_MOVED = (
    "The repository was renamed or transferred (GitHub redirects, elax-plan does not follow "
    "with the token): give its new owner/name with --repo."
)
_HINTS = {
    301: _MOVED,
    302: _MOVED,
    307: _MOVED,
    401: "GITHUB_TOKEN was refused: it may have expired, or be for another GitHub than "
    "GITHUB_API_URL.",
    403: PERMISSIONS_HINT,
    404: "Check --repo and --pr: the pull request must exist and the token must see the "
    "repository (`contents: read` for a private one).",
    422: "GitHub refused the comment itself (its message says why).",
}


def _refused(response: httpx.Response, what: str) -> GitHubError:
    status = response.status_code
    return GitHubError(
        f"GitHub refused to {what}: HTTP {status} ({_message(response)}).",
        hint=_HINTS.get(status, "See GitHub's message."),
    )


def _unexpected(response: httpx.Response, what: str) -> GitHubError:
    return GitHubError(
        f"GitHub's answer to {what} is not what its REST API returns "
        f"(HTTP {response.status_code}, {response.text[:200]!r}).",
        hint="Check GITHUB_API_URL: it must be GitHub's REST API (https://HOST/api/v3 on "
        "GitHub Enterprise Server).",
    )


def _parsed(response: httpx.Response) -> Any:
    """The JSON body, or None when it is none."""
    try:
        return response.json()
    except ValueError:
        return None


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    data = _parsed(response)
    if not isinstance(data, dict):
        raise _unexpected(response, what)
    return data


def _message(response: httpx.Response) -> str:
    """GitHub's ``message`` (the JSON error body), or the start of the text."""
    data = _parsed(response)
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])[:300]
    return response.text[:200].strip() or response.reason_phrase
