"""Secret rules: credentials written in the plan file are refused, never quoted."""

from __future__ import annotations

from pathlib import Path

from tests.spec.helpers import MINIMAL_PLAN, issues_of


def test_literal_storage_credentials_are_refused(tmp_path: Path) -> None:
    """Credential-like storage options must come from ${ENV}; profile names are fine."""
    text = MINIMAL_PLAN.replace(
        "  uri: data/*.ndjson\n",
        "  uri: data/*.ndjson\n  storage_options:\n    profile: prod\n    secret: abc123\n"
        "    client_kwargs: {aws_session_token: tok}\n    SSEKMSKeyId: arn:kms\n",
    )
    issues = issues_of(text, tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(12, 13), (13, 40)]
    assert all("abc123" not in m and '"tok"' not in m for _, _, m in issues)


def test_literal_password_in_url_is_refused(tmp_path: Path) -> None:
    """A password written in a URL's userinfo is a literal secret."""
    text = MINIMAL_PLAN.replace("url: embedded", "url: http://admin:hunter22@host:3000")
    [(_, _, message)] = issues_of(text, tmp_path)
    assert "password written in the URL" in message
    assert "hunter22" not in message
