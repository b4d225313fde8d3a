"""Secrets: Secret never prints, redaction of text and log lines, repr(PlanSpec) stays clean."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import pytest
import structlog

from elax_plan.log import configure_logging
from elax_plan.spec import PlanSpec, Secret, display_url, parse_plan, redact, reveal
from elax_plan.spec.secrets import is_credential_env_name, is_credential_name, register_secret
from tests.spec.helpers import MINIMAL_PLAN

API_KEY = "sk-test-0f1e2d3c4b5a6978-secrets"
STORE_SECRET = "Zm9vYmFy/secret+value==-secrets"

PLAN_WITH_SECRETS = MINIMAL_PLAN.replace(
    "url: embedded",
    'url: embedded\n  api_key: ${ELAX_API_KEY}\n  storage_options: {secret: "${STORE_SECRET}"}',
)


def _spec(tmp_path: Path) -> PlanSpec:
    return parse_plan(
        PLAN_WITH_SECRETS,
        env={"ELAX_API_KEY": API_KEY, "STORE_SECRET": STORE_SECRET},
        base_dir=tmp_path,
    )


def test_secret_never_prints_its_value() -> None:
    """repr, str and f-strings of a Secret show ***; reveal() gives the value back."""
    secret = Secret("hunter2-but-longer")
    assert repr(secret) == "Secret('***')"
    assert str(secret) == "***"
    assert f"{secret}|{secret!r}" == "***|Secret('***')"
    assert secret.reveal() == "hunter2-but-longer"


def test_secret_cannot_be_pickled() -> None:
    """Pickling a Secret fails, so it cannot slip into a saved plan or state file."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret("do-not-save-me"))


def test_plan_spec_repr_and_dict_hide_secrets(tmp_path: Path) -> None:
    """repr(PlanSpec), str(PlanSpec) and to_dict() never contain an interpolated secret."""
    spec = _spec(tmp_path)
    rendered = [repr(spec), str(spec), json.dumps(spec.to_dict()), repr(spec.target)]
    for text in rendered:
        assert API_KEY not in text
        assert STORE_SECRET not in text
    assert spec.to_dict()["target"]["api_key"] == "***"
    assert spec.target.api_key is not None
    assert spec.target.api_key.reveal() == API_KEY
    assert reveal(spec.target.storage_options) == {"secret": STORE_SECRET}


def test_redact_scrubs_registered_values_from_any_text(tmp_path: Path) -> None:
    """Once a plan is loaded, its secrets are scrubbed from arbitrary text."""
    _spec(tmp_path)
    assert redact(f"Authorization: Bearer {API_KEY}") == "Authorization: Bearer ***"
    assert redact(f"opts={{'secret': '{STORE_SECRET}'}}") == "opts={'secret': '***'}"


def test_short_values_are_not_registered_for_text_redaction() -> None:
    """Very short values are not scrubbed from text (that would mangle output)."""
    register_secret("ab")
    assert redact("tab") == "tab"


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_log_lines_are_redacted(log_format: str, tmp_path: Path) -> None:
    """Every log line, in both formats, has registered secrets replaced by ***."""
    _spec(tmp_path)
    stream = io.StringIO()
    configure_logging(log_format=log_format, level="debug", color=False, stream=stream)
    try:
        log = structlog.get_logger("test")
        log.info("calling target", header=f"Bearer {API_KEY}", nested={"s": [STORE_SECRET]})
        log.debug(f"message with {API_KEY} inside")
        try:
            raise RuntimeError(f"failed with {STORE_SECRET}")
        except RuntimeError:
            log.exception("boom")
    finally:
        configure_logging(stream=io.StringIO())
    output = stream.getvalue()
    assert "calling target" in output
    assert API_KEY not in output
    assert STORE_SECRET not in output
    assert output.count("***") >= 4


def test_log_level_filters(tmp_path: Path) -> None:
    """configure_logging drops events below the chosen level."""
    stream = io.StringIO()
    configure_logging(level="warning", color=False, stream=stream)
    try:
        log = structlog.get_logger("test")
        log.info("quiet")
        log.warning("loud")
    finally:
        configure_logging(stream=io.StringIO())
    assert "loud" in stream.getvalue()
    assert "quiet" not in stream.getvalue()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("key", True),
        ("secret", True),
        ("token", True),
        ("password", True),
        ("aws_secret_access_key", True),
        ("aws_session_token", True),
        ("account_key", True),
        ("sas_token", True),
        ("api_key", True),
        ("connection_string", True),
        ("endpoint_url", False),
        ("profile", False),
        ("anon", False),
        ("SSEKMSKeyId", False),
        ("region_name", False),
    ],
)
def test_credential_option_names(name: str, expected: bool) -> None:
    """Credential-like storage option names are recognised; ordinary options are not."""
    assert is_credential_name(name) is expected


def test_credential_env_names() -> None:
    """Environment variables named like credentials are treated as secrets wherever used."""
    assert is_credential_env_name("ELAX_API_KEY")
    assert is_credential_env_name("GITHUB_TOKEN")
    assert not is_credential_env_name("AWS_REGION")


def test_display_url_drops_credentials() -> None:
    """user:password@ in a URL is never shown."""
    assert display_url("https://bob:hunter22@node:8080/x") == "https://node:8080/x"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("s3://AKIAX:abcd1234@bucket/prefix?X-Amz-Signature=f00d#frag", "s3://bucket/prefix"),
        ("file:///tmp/state", "file:///tmp/state"),
        ("memory://state/plan", "memory://state/plan"),
        ("embedded", "embedded"),
        ("/tmp/relative/path", "/tmp/relative/path"),
        ("http://bob:pw@[::1/x?token=1", "http://[::1/x"),
    ],
)
def test_display_url_drops_user_info_query_and_fragment(url: str, shown: str) -> None:
    """display_url keeps scheme, host and path only, even for a URL urlsplit refuses."""
    assert display_url(url) == shown


def test_display_url_redacts_registered_secrets_in_the_path() -> None:
    """A registered secret value inside a shown URL's path becomes ***."""
    register_secret("pathsecret-0f1e2d")
    assert display_url("s3://bucket/pathsecret-0f1e2d/x") == "s3://bucket/***/x"
