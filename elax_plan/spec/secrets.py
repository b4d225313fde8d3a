"""Secrets in a plan (``api_key``, storage credentials, signed URLs): ``Secret`` and redaction.

Owns four things:

- ``Secret``, a value that prints as ``***`` everywhere (``repr``, ``str``,
  f-strings, log lines) and refuses to be pickled;
- a process-wide registry of secret *values* (``register_secret``), filled by
  the plan loader by field (``spec.secret_fields``) and by variable name;
- ``redact``, the one function every output path calls as its last step
  (console, logs, tracebacks, saved plans, state objects, summaries). It
  replaces (a) every registered value and (b) every credential-shaped URL part
  with ``***``, whether or not its value was registered;
- ``display_url``, the one way a URL (target, store, state, a source file) is
  shown to people and keyed in saved plans and ledgers.

The URL rule (b): the value of a query or fragment parameter whose name looks
like a credential (``is_credential_param``: ``sig``, ``signature``, ``token``,
``access_token``, ``X-Amz-Signature``, ``X-Amz-Credential``,
``X-Amz-Security-Token``, ``key``, ``api_key``, ``apikey``, ``password``,
``secret``, ``client_secret``, ``AWSAccessKeyId``… compared case-insensitively
without ``_`` and ``-``), and the whole user info of a URL (``user:pass@``).
Everything else of the URL stays as written, so a reviewer still sees which
host and file it names: ``https://h/c1.ndjson?sig=abc&sv=1`` is shown as
``https://h/c1.ndjson?sig=***&sv=1``.

It must not decide which plan fields are secret (``secret_fields`` does), and
it must never log or print anything itself.
"""

from __future__ import annotations

import functools
import hmac
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn
from urllib.parse import unquote

REDACTED = "***"

# Shorter values are not registered for text redaction: scrubbing every "abc"
# from every log line would mangle output and protect nothing. They are still
# wrapped in ``Secret`` and so never printed through the spec objects.
MIN_REDACT_LENGTH = 4

_lock = threading.Lock()
_registered: set[str] = set()
_pattern: re.Pattern[str] | None = None

# Exact key names (lowercase, without "_" and "-") that hold credentials in
# fsspec/s3fs/gcsfs/adlfs storage options, and suffixes that do.
_CREDENTIAL_NAMES = frozenset(
    {
        "key",
        "secret",
        "token",
        "password",
        "passwd",
        "pwd",
        "credentials",
        "credential",
        "authorization",
    }
)
_CREDENTIAL_SUFFIXES = (
    "secret",
    "token",
    "password",
    "passwd",
    "secretkey",
    "accesskey",
    "accesskeyid",
    "accountkey",
    "apikey",
    "privatekey",
    "credentials",
    "connectionstring",
    "sastoken",
    "authorization",
)
# URL query/fragment parameter names, beyond the storage-option names above, that carry a
# credential: Azure SAS ``sig``, S3 v2 ``Signature``, v4 ``X-Amz-Signature``/``-Credential``,
# GCS ``X-Goog-Signature``/``-Credential``, ``auth``.
_CREDENTIAL_PARAMS = frozenset({"sig", "signature", "auth", "sas"})
_CREDENTIAL_PARAM_SUFFIXES = ("signature", "credential", "credentials")
# Environment variable names that suggest a credential, wherever the plan uses them.
_CREDENTIAL_ENV_WORDS = ("key", "secret", "token", "password", "passwd", "credential")
# In free text: ``scheme://USERINFO@`` (user info holds no "/", "?", "#" or "@")...
_TEXT_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\s'\"<>`\\]+)@")
# ... and ``?name=value`` / ``&name=value`` (also after ";" and "#"). A value ends where
# a URL in text usually ends: whitespace, quotes, brackets, a backslash (JSON escapes).
_TEXT_PARAM = re.compile(r"([?&;#])([A-Za-z0-9_.%+-]{1,80})=([^&;#\s'\"<>`\\()\[\]{}]+)")
# A URL's user info: everything between "scheme://" and the last "@" before the path.
_URL_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")
# An HTTP bearer token in text (a header dict in a repr, a curl line), registered or not.
_TEXT_BEARER = re.compile(r"\b(Bearer\s+)(?!\*\*\*)[A-Za-z0-9._~+/=-]+")


class Secret:
    """A credential read from the environment; only ``reveal()`` gives the value back."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        """The real value, for the one place that sends it (an HTTP header, fsspec)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, format_spec: str) -> str:
        return format(REDACTED, format_spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:
        # Pickling is how a secret would sneak into a saved plan or a state file.
        raise TypeError("a Secret cannot be pickled or saved; it is read from the environment")


def register_secret(value: str) -> None:
    """Remember ``value`` so that ``redact`` removes it from any text from now on."""
    global _pattern
    if len(value) < MIN_REDACT_LENGTH:
        return
    with _lock:
        if value in _registered:
            return
        _registered.add(value)
        # Longest first, so a secret that contains another is removed whole.
        ordered = sorted(_registered, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def redact(text: str) -> str:
    """``text`` with every registered secret value, credential-shaped URL part and bearer
    token as ``***``.

    Idempotent: ``redact(redact(t)) == redact(t)``.
    """
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if "=" in text:
        text = _TEXT_PARAM.sub(_mask_text_param, text)
    if "@" in text and "://" in text:
        text = _TEXT_USERINFO.sub(_mask_text_userinfo, text)
    if "Bearer" in text:
        text = _TEXT_BEARER.sub(rf"\g<1>{REDACTED}", text)
    return text


def redact_bytes(data: bytes) -> bytes:
    """``redact`` for UTF-8 bytes (a file's or an object's content); other bytes pass through."""
    if not data:
        return data
    text = data.decode("utf-8", errors="surrogateescape")
    clean = redact(text)
    return data if clean == text else clean.encode("utf-8", errors="surrogateescape")


def _mask_text_param(match: re.Match[str]) -> str:
    lead, name, value = match.groups()
    if value == REDACTED or not is_credential_param(name):
        return match.group(0)
    return f"{lead}{name}={REDACTED}"


def _mask_text_userinfo(match: re.Match[str]) -> str:
    return f"{match.group(1)}{REDACTED}@"


def display_url(url: str) -> str:
    """``url`` as shown to people: credential parts (user info, credential parameters) and
    registered secrets become ``***``; scheme, host, path and other parameters stay.

    Unlike ``redact`` on free text, this parses the URL, so a parameter value holding
    characters that end a URL in prose (quotes, brackets) is still masked whole.
    """
    shown = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", url, count=1)
    head, hash_, fragment = shown.partition("#")
    path, question, query = head.partition("?")
    if question:
        path = f"{path}?{_mask_params(query)}"
    if hash_:
        path = f"{path}#{_mask_params(fragment)}"
    return redact(path)


def _mask_params(params: str) -> str:
    """``a=1&sig=x`` → ``a=1&sig=***``: each ``&``/``;``-separated credential value masked."""
    pieces = re.split(r"([&;])", params)
    for index, piece in enumerate(pieces):
        name, equals, value = piece.partition("=")
        if equals and value and is_credential_param(name):
            pieces[index] = f"{name}={REDACTED}"
    return "".join(pieces)


def url_credentials(url: str) -> list[str]:
    """The credential parts of ``url``, as written and percent-decoded: the values of
    credential parameters, and the password of its user info (the user name when there
    is no password: ``https://TOKEN@host``). For registering them as secrets."""
    found: list[str] = []
    userinfo = _URL_USERINFO.match(url)
    if userinfo is not None:
        user, colon, password = userinfo.group(2).partition(":")
        found.append(password if colon else user)
    head, _, fragment = url.partition("#")
    query = head.partition("?")[2]
    for params in (query, fragment):
        for piece in re.split(r"[&;]", params):
            name, equals, value = piece.partition("=")
            if equals and value and is_credential_param(name):
                found.append(value)
    decoded = [unquote(v) for v in found]
    return [v for v in dict.fromkeys(found + decoded) if v and v != REDACTED]


def redact_value(value: Any) -> Any:
    """Deep copy of ``value`` (str, Secret, mappings, sequences) with secrets redacted."""
    # Exact types first: a plan document of 10,000 files is ~140,000 values.
    kind = type(value)
    if kind is str:
        return redact(value)
    if kind is dict:
        return {
            redact(k) if type(k) is str else redact(str(k)): redact_value(v)
            for k, v in value.items()
        }
    if kind is list:
        return [redact_value(v) for v in value]
    if value is None or kind is int or kind is bool or kind is float:
        return value
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def reveal(value: Any) -> Any:
    """Plain data with every ``Secret`` revealed, for handing options to fsspec or httpx."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, Mapping):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reveal(v) for v in value]
    return value


def _normalise(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def is_credential_name(name: str) -> bool:
    """Whether a storage-option key such as ``secret`` or ``aws_session_token`` holds a credential.

    ``SSEKMSKeyId`` and ``key_prefix``-style names are not credentials, so a
    bare substring "key" is not enough.
    """
    normalised = _normalise(name)
    return normalised in _CREDENTIAL_NAMES or normalised.endswith(_CREDENTIAL_SUFFIXES)


@functools.lru_cache(maxsize=4096)
def is_credential_param(name: str) -> bool:
    """Whether a URL query/fragment parameter such as ``sig`` or ``X-Amz-Signature`` holds a
    credential (case-insensitive, ignoring ``_`` and ``-``; percent-encoded names decoded).

    Cached: redacting a plan of 10,000 files asks about the same few names (``mtime``,
    ``blocks`` of each fingerprint) tens of thousands of times."""
    normalised = _normalise(unquote(name))
    return (
        is_credential_name(normalised)
        or normalised in _CREDENTIAL_PARAMS
        or normalised.endswith(_CREDENTIAL_PARAM_SUFFIXES)
    )


def is_credential_env_name(name: str) -> bool:
    """Whether an environment variable's name suggests a credential (``*_KEY``, ``*_TOKEN``…)."""
    lowered = name.lower()
    return any(word in lowered for word in _CREDENTIAL_ENV_WORDS)


def registered_count() -> int:
    """How many values are registered (for tests and diagnostics; never the values)."""
    return len(_registered)


def register_all(values: Iterable[str]) -> None:
    """``register_secret`` for each value."""
    for value in values:
        register_secret(value)
