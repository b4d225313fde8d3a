"""``StateBackend``: a tiny versioned object store with compare-and-swap, over an fsspec URL.

Owns how state bytes reach ``file://``, ``memory://`` and ``s3://`` and the one
guarantee everything above relies on: **a conditional write succeeds only if the
object is exactly as the caller last read it** (``create`` only if absent,
``replace``/``delete`` only if the version token still matches). It knows
nothing about what the bytes mean (ledger, lease, records live elsewhere) and
must not retry a failed condition itself: a ``Conflict`` (``elax_plan.errors``)
goes back to the caller, who re-reads and decides.

- ``base``: ``StateBackend``, ``Versioned``, the key rules and the default
  compare-and-swap ``append_lines``.
- ``local``: ``file://`` — flock-guarded compare-and-swap, atomic renames.
- ``memory``: ``memory://`` — one process-wide lock and a never-repeating counter.
- ``s3``: ``s3://`` — conditional PUT/DELETE through s3fs.

``open_backend`` (here) picks one from the URL. Errors: a missing bucket,
refused credentials, an unreachable endpoint or an unwritable directory become
``StateError`` naming the state URL (never the credentials) and what to check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import fsspec

from elax_plan.errors import StateError
from elax_plan.spec.secrets import display_url, redact, reveal
from elax_plan.state.backend.base import StateBackend, Versioned
from elax_plan.state.backend.local import LocalBackend
from elax_plan.state.backend.memory import MemoryBackend
from elax_plan.state.backend.s3 import S3Backend

__all__ = [
    "LocalBackend",
    "MemoryBackend",
    "S3Backend",
    "StateBackend",
    "Versioned",
    "open_backend",
]

_SUPPORTED_SCHEMES = frozenset({"file", "local", "memory", "s3", "s3a"})


def open_backend(url: str, storage_options: Mapping[str, Any] | None = None) -> StateBackend:
    """The backend for ``state.uri``; ``storage_options`` may hold ``Secret`` values."""
    options = dict(reveal(dict(storage_options or {})))
    scheme = urlsplit(url).scheme.lower() if "://" in url else "file"
    if scheme not in _SUPPORTED_SCHEMES:
        raise StateError(
            f"The state location {display_url(url)} uses '{scheme}://', which has no"
            " compare-and-swap support in elax-plan.",
            "The ledger and lease need conditional writes.",
            "Use a file://, s3:// or memory:// state.uri.",
        )
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except (ValueError, ImportError, TypeError) as exc:
        raise StateError(
            f"Cannot open the state location {display_url(url)}: {redact(str(exc))}.",
            None,
            "Check state.uri and state.storage_options in the plan.",
        ) from exc
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "file" in protocols or "local" in protocols:
        return LocalBackend(url, root)
    if "memory" in protocols:
        return MemoryBackend(url, fs, root)
    if "s3" in protocols or "s3a" in protocols:
        if not root.strip("/"):
            raise StateError(
                f"The state location {display_url(url)} names no bucket.",
                None,
                "Use state.uri: s3://BUCKET[/PREFIX].",
            )
        endpoint = options.get("endpoint_url") or dict(options.get("client_kwargs") or {}).get(
            "endpoint_url"
        )
        return S3Backend(url, fs, root, endpoint)
    raise StateError(
        f"The state location {display_url(url)} uses '{protocols[0]}', which has no"
        " compare-and-swap support in elax-plan.",
        "The ledger and lease need conditional writes.",
        "Use a file://, s3:// or memory:// state.uri.",
    )
