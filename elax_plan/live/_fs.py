"""fsspec plumbing shared by the store and source readers: open, describe failures, read times.

Owns how a URL plus storage options becomes a filesystem (credentials revealed
only into fsspec), how a backend failure is worded for people (no credentials,
no traceback), and how a listing entry's modification time is read across
backends. It must not read or write objects itself, and must not decide which
error class a failure becomes: callers do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from elax_plan.spec.secrets import redact, reveal

LOCAL_PREFIX = "file://"


def open_fs(url: str, storage_options: Mapping[str, Any]) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem for ``url`` and the path inside it (fsspec's ``url_to_fs``)."""
    options = dict(reveal(storage_options))
    fs, path = fsspec.core.url_to_fs(url, **options)
    return fs, str(path)


def is_local_fs(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def is_object_store(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether the first path segment is a bucket/container that must exist (s3, gcs, az…)."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return not is_local_fs(fs) and not {"memory", "file", "local"} & set(protocols)


def describe(exc: BaseException) -> str:
    """A short, credential-free description of a backend failure (no path: callers name it)."""
    reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), "")
    if isinstance(exc, OSError) and exc.filename is not None:
        # "[Errno 13] Permission denied: '/x'": the caller names the path already.
        text = reason or str(exc.strerror or type(exc).__name__)
    elif reason:
        said = str(exc).strip()
        text = f"{reason} ({said})" if said and said.lower() != reason else reason
    else:
        said = str(exc).strip()
        text = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
    return redact(text)


_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (PermissionError, "permission denied"),
    (FileNotFoundError, "not found"),
    (IsADirectoryError, "is a directory"),
    (NotADirectoryError, "a path component is not a directory"),
)


def info_mtime(info: Mapping[str, Any]) -> datetime | None:
    """The last-modified time of a listing entry (any backend), as an aware UTC datetime."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.astimezone(UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), tz=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    return None


def mtime_from_ns(ns: int) -> datetime:
    """A local ``st_mtime_ns`` as a UTC datetime, exact to the microsecond."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)


def iso_utc(moment: datetime) -> str:
    """``2026-11-25T19:24:58.123456Z``: ISO-8601, UTC, always with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_path_of(url: str) -> str:
    """The path of a ``file://`` URL or a plain path (already absolute after plan loading)."""
    path = url[len(LOCAL_PREFIX) :] if url.startswith(LOCAL_PREFIX) else url
    if path.startswith("localhost/"):
        path = path.removeprefix("localhost")
    return os.path.abspath(os.path.expanduser(path))
