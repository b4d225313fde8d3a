"""``StateBackend``, the contract every state backend keeps, and what they share.

Owns the abstract interface (``read``, ``create``, ``replace``, ``put``,
``delete``, ``list``, ``append_lines``), ``Versioned`` (bytes plus the opaque
token of exactly that version), the key rules, and the default
``append_lines``. The one guarantee everything above relies on: **a
conditional write succeeds only if the object is exactly as the caller last
read it** (``create`` only if absent, ``replace``/``delete`` only if the
version token still matches); a failed condition raises ``Conflict`` (from
``elax_plan.errors``) and is never retried here: the caller re-reads and
decides. It knows nothing about what the bytes mean (ledger, lease, records
live elsewhere in ``state``) and does no I/O itself.

Content-derived tokens (S3's ETag is an MD5 for single PUTs; the local token
is a SHA-256) mean two writes of identical bytes share a version. That is
sound for compare-and-swap on values — nothing the reader saw has changed —
and the documents that need identity (lease, ledger) carry a unique lock id
and serial anyway.

``append_lines`` (``events.ndjson``, ``rejects.ndjson``): S3 has no append, so
the default here is a read-modify-write loop with a conditional write —
correct under any number of concurrent appenders, never loses a line, but
rewrites the whole object, so callers batch lines (a flush every few seconds,
not one per event). Local files and memory override it with a real append.
The object stays one readable NDJSON file on every backend.

Every byte written goes through ``redact_bytes`` here, in the public write
methods, before a backend's ``_create``/``_replace``/``_put``/``_append``
sees it: the last step of every state output (``state.json``, ``lock.json``,
namespace records, ``summary.json``/``.md``, ``events.ndjson``,
``rejects.ndjson``), on every backend. Documents are redacted before this too
(``layout.dumps``), so what a caller wrote and what is stored are the same
bytes, and comparing them after a ``Conflict`` stays sound.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from elax_plan.errors import Conflict, StateError
from elax_plan.spec.secrets import display_url, redact_bytes

__all__ = ["StateBackend", "Versioned", "check_key", "encode_lines"]

# How many times append_lines re-reads and retries on S3 when other appenders
# keep winning; far above any real contention on one run's files.
_APPEND_ATTEMPTS = 50


@dataclass(frozen=True, slots=True)
class Versioned:
    """An object's bytes and the opaque token of exactly that version."""

    data: bytes
    version: str


def check_key(key: str) -> None:
    """Refuse a key that is empty, absolute, has empty/./.. parts or a dot-name component."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid state key {key!r}")
    if any(p.startswith(".") for p in parts):
        # Dot-names are the local backend's temporary and lock files.
        raise ValueError(f"state key {key!r} has a component starting with '.'")


def encode_lines(lines: Iterable[bytes]) -> bytes:
    """``lines`` joined, each newline-terminated; a line holding a newline is refused."""
    out = bytearray()
    for line in lines:
        if b"\n" in line:
            raise ValueError("a line passed to append_lines contains a newline")
        out += line
        out += b"\n"
    return bytes(out)


class StateBackend(ABC):
    """Versioned objects under one root URL; keys are relative ``/``-separated paths."""

    def __init__(self, url: str) -> None:
        self.url = display_url(url).rstrip("/")

    def location(self, key: str) -> str:
        """The URL of ``key`` for messages (no credentials)."""
        return f"{self.url}/{key}"

    @abstractmethod
    def read(self, key: str) -> Versioned | None:
        """The object and its version, or ``None`` when it does not exist."""

    def create(self, key: str, data: bytes) -> str:
        """Write ``data`` only if ``key`` does not exist; the new version, or ``Conflict``."""
        return self._create(key, redact_bytes(data))

    def replace(self, key: str, data: bytes, expected_version: str) -> str:
        """Write ``data`` only if ``key`` is still at ``expected_version``; else ``Conflict``."""
        return self._replace(key, redact_bytes(data), expected_version)

    def put(self, key: str, data: bytes) -> str:
        """Write ``data`` unconditionally (run artefacts only, never ledger or lease)."""
        return self._put(key, redact_bytes(data))

    def append_lines(self, key: str, lines: Iterable[bytes]) -> None:
        """Append newline-terminated ``lines`` to ``key`` (created when absent)."""
        chunk = redact_bytes(encode_lines(lines))
        if chunk:
            self._append(key, chunk)

    @abstractmethod
    def _create(self, key: str, data: bytes) -> str:
        """``create`` of bytes already redacted."""

    @abstractmethod
    def _replace(self, key: str, data: bytes, expected_version: str) -> str:
        """``replace`` of bytes already redacted."""

    @abstractmethod
    def _put(self, key: str, data: bytes) -> str:
        """``put`` of bytes already redacted."""

    @abstractmethod
    def delete(self, key: str, expected_version: str | None = None) -> None:
        """Remove ``key``; with ``expected_version``, only if it still matches (else
        ``Conflict``). Without it, a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key under the folder ``prefix`` (recursively), sorted; [] when none."""

    def _append(self, key: str, chunk: bytes) -> None:
        """Append ``chunk`` (whole redacted lines) to ``key``, creating it when absent.

        The default is the compare-and-swap loop used on S3; local and memory
        override it with a real append.
        """
        for _ in range(_APPEND_ATTEMPTS):
            current = self.read(key)
            new = chunk if current is None else current.data + chunk
            try:
                if current is None:
                    self._create(key, new)
                else:
                    self._replace(key, new, current.version)
                return
            except Conflict as exc:
                # A retried PUT whose first attempt landed shows up as a
                # conflict whose current bytes are exactly ours: done.
                if exc.current is not None and exc.current.data == new:
                    return
        raise StateError(
            f"Could not append to {self.location(key)}: other writers kept changing it.",
            f"{_APPEND_ATTEMPTS} compare-and-swap attempts in a row were refused.",
            "Check that only one elax-plan run writes this run's files, then retry.",
        )
