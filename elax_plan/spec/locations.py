"""Where a plan's URLs point: local paths made absolute, and "is this inside that".

Owns the rule of SPEC §1: a relative local path in a plan (``./.elax-demo/store``,
``file://data/x.ndjson``) is resolved against the current directory, as a shell
would (``~`` expanded too), and becomes ``file:///absolute/path``. URLs with any
other scheme (``s3://``, ``memory://``, ``gs://``…) are left as written. It must
not touch the filesystem or the network: nothing here checks that a path exists.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

_SCHEME_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.S)


def scheme_of(url: str) -> str:
    """``"s3"`` for ``s3://b/k``; ``"file"`` for ``file://…`` and for plain local paths."""
    match = _SCHEME_RE.match(url)
    return match["scheme"].lower() if match else "file"


def is_local(url: str) -> bool:
    """Whether ``url`` names the local filesystem (a plain path or ``file://``)."""
    return scheme_of(url) == "file"


# Where a node's data root can be read from another process: its own disk (or a mounted
# volume, which is a local path too) or over SSH. Object stores hold only part assets.
NODE_LOCAL_SCHEMES = frozenset({"file", "sftp", "ssh"})


def is_node_local(url: str) -> bool:
    """Whether ``url`` can be a node's data root (CONTRACT §4.1): local, mounted or sftp."""
    return scheme_of(url) in NODE_LOCAL_SCHEMES


def local_path(url: str, base_dir: Path) -> Path:
    """The absolute local path for a plain path or ``file://`` URL, relative to ``base_dir``."""
    match = _SCHEME_RE.match(url)
    raw = match["rest"] if match else url
    # file://localhost/x is the RFC spelling of file:///x.
    if raw.startswith("localhost/"):
        raw = raw.removeprefix("localhost")
    expanded = os.path.expanduser(raw)
    return Path(os.path.normpath(os.path.join(base_dir, expanded)))


def resolve_location(url: str, base_dir: Path | None = None) -> str:
    """``url`` with a local path made absolute (``file:///…``); other URLs unchanged.

    ``base_dir`` defaults to the current directory. Glob characters are kept.
    """
    if not is_local(url):
        return url
    path = local_path(url, base_dir if base_dir is not None else Path.cwd())
    return f"file://{path.as_posix()}"


def _parts(url: str) -> tuple[str, tuple[str, ...]]:
    match = _SCHEME_RE.match(url)
    scheme = match["scheme"].lower() if match else "file"
    rest = match["rest"] if match else url
    return scheme, tuple(p for p in rest.split("/") if p not in ("", "."))


@functools.lru_cache(maxsize=64)
def _parent_parts(parent: str) -> tuple[str, tuple[str, ...]]:
    return _parts(parent)


def is_within(url: str, parent: str) -> bool:
    """Whether ``url`` is ``parent`` or below it (both already resolved)."""
    parent_scheme, parent_parts = _parent_parts(parent)
    if parent_parts and parent_parts[-1] not in url:
        return False  # the cheap answer for most of a long listing
    scheme, parts = _parts(url)
    if {scheme, parent_scheme} <= {"s3", "s3a"}:
        scheme = parent_scheme
    return scheme == parent_scheme and parts[: len(parent_parts)] == parent_parts


def join(url: str, *names: str) -> str:
    """``url`` with path segments appended (``join("s3://b/x", "namespaces")``)."""
    return "/".join([url.rstrip("/"), *names])
