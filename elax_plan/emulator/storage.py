"""The emulator's object store: a key/value view of any fsspec URL with atomic writes.

Owns how bytes reach the store, not what they mean (that is ``layout``). Local
files are written to a temporary name, fsynced and renamed (the real node does
the same for ``router.json``); ``memory://`` and ``s3://`` take a single PUT,
which is atomic on both.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


class Store:
    """Keys are ``/``-separated paths relative to the store root URL."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = root.rstrip("/")
        self.local = isinstance(fs, LocalFileSystem)
        if self.local:
            os.makedirs(self.root, exist_ok=True)

    def path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        path = self.path(key)
        if self.local:
            try:
                with open(path, "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return None
        try:
            data: bytes = self.fs.cat_file(path)
            return data
        except FileNotFoundError:
            return None

    def write(self, key: str, data: bytes) -> None:
        """Replace the object atomically: readers see the old bytes or the new, never a mix."""
        path = self.path(key)
        if self.local:
            directory = os.path.dirname(path)
            os.makedirs(directory, exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            return
        self.fs.pipe_file(path, data)

    def list_files(self, prefix: str) -> list[str]:
        """Names (not keys) of the objects directly under ``prefix``; [] when it is absent."""
        path = self.path(prefix).rstrip("/")
        if self.local:
            try:
                return sorted(e.name for e in os.scandir(path) if e.is_file())
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            self.fs.invalidate_cache(path)
            entries = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        names = []
        for entry in entries:
            if entry.get("type") == "file":
                names.append(str(entry["name"]).rstrip("/").rsplit("/", 1)[-1])
        return sorted(names)

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the "directories" directly under ``prefix``."""
        path = self.path(prefix).rstrip("/")
        if self.local:
            try:
                return sorted(e.name for e in os.scandir(path) if e.is_dir())
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            self.fs.invalidate_cache(path)
            entries = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        return sorted(
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]
            for e in entries
            if e.get("type") == "directory"
        )

    def delete(self, key: str) -> None:
        """Remove one object; a missing one is not an error."""
        path = self.path(key)
        try:
            if self.local:
                os.remove(path)
            else:
                self.fs.rm_file(path)
        except FileNotFoundError:
            pass

    def delete_tree(self, prefix: str) -> None:
        """Remove everything under ``prefix``; errors are ignored, as the real indexer does."""
        path = self.path(prefix)
        with contextlib.suppress(OSError):
            self.fs.rm(path, recursive=True)
