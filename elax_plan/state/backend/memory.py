"""``MemoryBackend``: ``memory://``, fsspec's process-wide in-memory store, for tests and demos.

Every operation runs under one process-wide lock, with a version counter that
never repeats (so there is no ABA even after delete + re-create), giving the
same compare-and-swap semantics as the other backends. Only writes through this
module bump the counter, so other code must not write state keys behind its
back. It must not know what the bytes mean.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from elax_plan.errors import Conflict
from elax_plan.state.backend.base import StateBackend, Versioned, check_key

__all__ = ["MemoryBackend"]

# One lock and one counter for the whole process: memory:// is process-wide.
_MEMORY_LOCK = threading.RLock()
_MEMORY_COUNTER = itertools.count(1)
_MEMORY_VERSIONS: dict[str, str] = {}


class MemoryBackend(StateBackend):
    """``memory://``: fsspec's in-process store with the same semantics as the others."""

    def __init__(self, url: str, fs: Any, root: str) -> None:
        super().__init__(url)
        self._fs = fs
        self.root = root.rstrip("/")

    def _path(self, key: str) -> str:
        check_key(key)
        return f"{self.root}/{key}"

    def _read_path(self, path: str) -> Versioned | None:
        try:
            data: bytes = self._fs.cat_file(path)
        except FileNotFoundError:
            return None
        version = _MEMORY_VERSIONS.get(path)
        if version is None:
            # Written by someone other than this module: give it a fresh version.
            version = _MEMORY_VERSIONS[path] = f"mem:{next(_MEMORY_COUNTER)}"
        return Versioned(data, version)

    def _write(self, path: str, data: bytes) -> str:
        self._fs.pipe_file(path, data)
        version = _MEMORY_VERSIONS[path] = f"mem:{next(_MEMORY_COUNTER)}"
        return version

    def read(self, key: str) -> Versioned | None:
        path = self._path(key)
        with _MEMORY_LOCK:
            return self._read_path(path)

    def _create(self, key: str, data: bytes) -> str:
        path = self._path(key)
        with _MEMORY_LOCK:
            current = self._read_path(path)
            if current is not None:
                raise Conflict(self.location(key), "create", current)
            return self._write(path, data)

    def _replace(self, key: str, data: bytes, expected_version: str) -> str:
        path = self._path(key)
        with _MEMORY_LOCK:
            current = self._read_path(path)
            if current is None or current.version != expected_version:
                raise Conflict(self.location(key), "replace", current)
            return self._write(path, data)

    def _put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        with _MEMORY_LOCK:
            return self._write(path, data)

    def _append(self, key: str, chunk: bytes) -> None:
        path = self._path(key)
        with _MEMORY_LOCK:
            current = self._read_path(path)
            self._write(path, chunk if current is None else current.data + chunk)

    def delete(self, key: str, expected_version: str | None = None) -> None:
        path = self._path(key)
        with _MEMORY_LOCK:
            current = self._read_path(path)
            if expected_version is not None and (
                current is None or current.version != expected_version
            ):
                raise Conflict(self.location(key), "delete", current)
            if current is None:
                return
            self._fs.rm_file(path)
            _MEMORY_VERSIONS.pop(path, None)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/"))
        with _MEMORY_LOCK:
            try:
                found = self._fs.find(base)
            except FileNotFoundError:
                return []
        start = len(self.root) + 1
        return sorted(str(p)[start:] for p in found if str(p).startswith(base + "/"))
