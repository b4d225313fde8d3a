"""Secrets: Secret never prints, redaction of text and log lines, repr(PlanSpec) stays clean."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
from pathlib import Path

import pytest
import structlog

from elax_plan.log import configure_logging
from elax_plan.spec import PlanInvalid, PlanSpec, Secret, display_url, parse_plan, redact, reveal
from elax_plan.spec.secrets import (
    is_credential_env_name,
    is_credential_name,
    is_credential_param,
    register_secret,
    url_credentials,
)
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


def test_display_url_masks_user_info() -> None:
    """user:password@ in a URL is shown as ***@; host and path stay readable."""
    assert display_url("https://bob:hunter22@node:8080/x") == "https://***@node:8080/x"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "s3://AKIAX:abcd1234@bucket/prefix?X-Amz-Signature=f00d#frag",
            "s3://***@bucket/prefix?X-Amz-Signature=***#frag",
        ),
        (
            "https://acct.blob.core.windows.net/c/c1.ndjson?sv=2022-11-02&sp=r&sig=AbC%2Bd%3D",
            "https://acct.blob.core.windows.net/c/c1.ndjson?sv=2022-11-02&sp=r&sig=***",
        ),
        (
            "https://b.s3.amazonaws.com/k.ndjson?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIA%2F20261201&X-Amz-Security-Token=IQo&X-Amz-Signature=9f",
            "https://b.s3.amazonaws.com/k.ndjson?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=***&X-Amz-Security-Token=***&X-Amz-Signature=***",
        ),
        ("https://h/x?ACCESS_TOKEN=t0k3n&page=2", "https://h/x?ACCESS_TOKEN=***&page=2"),
        (
            "https://h/x?api-key=k3y1&apikey=k3y2&key=k3y3",
            "https://h/x?api-key=***&apikey=***&key=***",
        ),
        (
            "https://h/x?password=pw12&secret=s3cr&versionId=7",
            "https://h/x?password=***&secret=***&versionId=7",
        ),
        ("file:///tmp/state", "file:///tmp/state"),
        ("file:///data/part-?.ndjson", "file:///data/part-?.ndjson"),
        ("memory://state/plan", "memory://state/plan"),
        ("embedded", "embedded"),
        ("/tmp/relative/path", "/tmp/relative/path"),
        ("http://bob:pw@[::1/x?token=1", "http://***@[::1/x?token=***"),
    ],
)
def test_display_url_masks_credential_parts_only(url: str, shown: str) -> None:
    """display_url masks user info and credential parameters and keeps the rest as written."""
    assert display_url(url) == shown
    assert display_url(shown) == shown, "idempotent"


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        (
            "GET URL('https://h:1/v2/x?a=1&access_token=raw-tok-9') failed",
            "GET URL('https://h:1/v2/x?a=1&access_token=***') failed",
        ),
        ('{"url": "https://h/c1.ndjson?sig=abc%3D"}', '{"url": "https://h/c1.ndjson?sig=***"}'),
        ("headers={'authorization': 'Bearer tok-123'}", "headers={'authorization': 'Bearer ***'}"),
        ("see s3://AKIA:pw@bucket/k and ftp://user@h/x", "see s3://***@bucket/k and ftp://***@h/x"),
        ("no url here: a=b, mail me@example.com", "no url here: a=b, mail me@example.com"),
        ("https://h/x?page=2&sort=asc", "https://h/x?page=2&sort=asc"),
    ],
)
def test_redact_masks_credential_shaped_url_parts_in_any_text(text: str, clean: str) -> None:
    """Unregistered credentials in URL shape (query, user info) and bearer tokens become ***."""
    assert redact(text) == clean
    assert redact(clean) == clean, "idempotent"


@pytest.mark.parametrize(
    "name",
    [
        "sig",
        "Signature",
        "token",
        "access_token",
        "X-Amz-Signature",
        "x-amz-credential",
        "X-Amz-Security-Token",
        "X-Goog-Signature",
        "key",
        "api_key",
        "APIKEY",
        "password",
        "secret",
        "client_secret",
        "AWSAccessKeyId",
        "X%2DAmz%2DSignature",
    ],
)
def test_credential_url_parameter_names(name: str) -> None:
    """Query parameters named like credentials are recognised, whatever their case."""
    assert is_credential_param(name)


@pytest.mark.parametrize(
    "name", ["sv", "sp", "se", "page", "versionId", "X-Amz-Date", "Key-Pair-Id"]
)
def test_ordinary_url_parameter_names(name: str) -> None:
    """Ordinary query parameters (SAS version, expiry, paging) are not credentials."""
    assert not is_credential_param(name)


def test_url_credentials_are_the_values_to_register() -> None:
    """The credential parts of a URL, as written and decoded; the user name only as a token."""
    assert url_credentials("https://u:p%40ss@h/x?sig=a%2Bb&sv=1") == [
        "p%40ss",
        "a%2Bb",
        "p@ss",
        "a+b",
    ]
    assert url_credentials("https://ghp_tokenvalue@github.com/x") == ["ghp_tokenvalue"]
    assert url_credentials("file:///data/x.ndjson") == []


def test_values_are_registered_by_field_not_by_variable_name(tmp_path: Path) -> None:
    """A value in a URL's sig, a storage credential or api_key is a secret, whatever its name."""
    plan = MINIMAL_PLAN.replace(
        "url: embedded",
        "url: embedded\n  api_key: ${PLAIN_A}\n"
        "  storage_options: {client_kwargs: {aws_secret_access_key: '${PLAIN_B}'}}",
    )
    plan = plan.replace(
        "uri: ", "storage_options: {credentials: {anything: '${PLAIN_C}'}}\n  uri: ", 1
    )
    env = {
        "PLAIN_A": "field-value-aaaa1",
        "PLAIN_B": "field-value-bbbb2",
        "PLAIN_C": "field-value-cccc3",
        "PLAIN_D": "field-value-dddd4",
        "PLAIN_E": "field-value-eeee5",
    }
    plan = plan.replace(".ndjson", ".ndjson?sv=1&sig=x${PLAIN_D}", 1)
    plan = plan.replace("state:\n  uri: ", "state:\n  uri: s3://${PLAIN_E}@bucket/", 1)
    # Registration happens before validation, so even an invalid plan registers its secrets.
    with contextlib.suppress(PlanInvalid):
        parse_plan(plan, env=env, base_dir=tmp_path)
    for name, value in env.items():
        assert redact(f"said {value} and {value[6:]}") == f"said *** and {value[6:]}", name
    assert redact("sig=xfield-value-dddd4") == "sig=***"


def test_display_url_redacts_registered_secrets_in_the_path() -> None:
    """A registered secret value inside a shown URL's path becomes ***."""
    register_secret("pathsecret-0f1e2d")
    assert display_url("s3://bucket/pathsecret-0f1e2d/x") == "s3://bucket/***/x"
