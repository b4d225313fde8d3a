"""Secrets in a plan (``api_key``, storage credentials): the ``Secret`` type and redaction.

Owns three things: ``Secret``, a value that prints as ``***`` everywhere
(``repr``, ``str``, f-strings, log lines) and refuses to be pickled; a
process-wide registry of secret *values* so that text produced anywhere (log
events, error messages, CLI output) can be scrubbed with ``redact``; and
``display_url``, the one way a URL (target, store, state) is shown to people.
It must not decide which plan keys are secret beyond the name rules below, and
it must never log or print anything itself.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

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
    {"key", "secret", "token", "password", "passwd", "pwd", "credentials", "credential"}
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
)
# Environment variable names that suggest a credential, wherever the plan uses them.
_CREDENTIAL_ENV_WORDS = ("key", "secret", "token", "password", "passwd", "credential")
# ``scheme://user:password@``, for URLs ``urlsplit`` refuses (a malformed IPv6 host).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


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
    """``text`` with every registered secret value replaced by ``***``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


def display_url(url: str) -> str:
    """``url`` as shown to people: no user info, query or fragment; registered secrets redacted.

    A presigned query string or a ``user:password@`` part is a credential even when it was
    never registered, so both are dropped, not just scrubbed.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1": still never show what precedes an "@"
        return redact(_USERINFO.sub(r"\1", url).split("#", 1)[0].split("?", 1)[0])
    netloc = parts.netloc.rsplit("@", 1)[-1]
    shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if parts.scheme and "://" in url and "://" not in shown:
        shown = shown.replace(":", "://", 1)
    return redact(shown)


def redact_value(value: Any) -> Any:
    """Deep copy of ``value`` (str, Secret, mappings, sequences) with secrets redacted."""
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
