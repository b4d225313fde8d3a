"""The emulator's object store: a key/value view of any fsspec URL, and where each file lives.

Owns how bytes reach the store, not what they mean (that is ``layout``).
``write`` is atomic: local files are written to a unique temporary name,
fsynced and renamed; ``memory://`` and ``s3://`` take a single PUT, which is
atomic on both. The real node is less careful, and ``create_truncate`` /
``replace_via_shared_tmp`` do what it does (CONTRACT §2.4): WAL files are
created with truncate and written in place, ``router.json`` goes through the
one ``router.json.tmp`` every writer shares, so racing writers can tear a
file or lose a rename.

``Stores`` pairs the two places of CONTRACT §4.1: ``meta`` (WAL, router,
manifests: the local data root) and ``assets`` (part assets: the object
store, or the data root when there is none). In the original one-URL layout
both are the same store.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
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
            _write_synced(tmp, data, exclusive=True)
            os.replace(tmp, path)
            return
        self.fs.pipe_file(path, data)

    def create_truncate(self, key: str, data: bytes) -> None:
        """Write as the real node writes a WAL file: create with truncate, write, fsync, no rename.

        A reader (or a crash) in between sees an empty or partial file; two writers on one
        key can leave a mix of both (hazard H1).
        """
        path = self.path(key)
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_synced(path, data)

    def replace_via_shared_tmp(self, key: str, data: bytes) -> None:
        """Write as the real node writes ``router.json``: through ``<key>.tmp``, shared by all.

        Create ``<key>.tmp`` with truncate, write, fsync, rename over ``key``. A writer
        whose temporary file was renamed away by another gets ``SharedTmpRenameError``
        (the real node answers that request with 500 after its WAL file was written).
        """
        path = self.path(key)
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        tmp = f"{path}.tmp"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_synced(tmp, data)
        try:
            os.rename(tmp, path)
        except FileNotFoundError as exc:
            raise SharedTmpRenameError(tmp, path) from exc

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


class SharedTmpRenameError(OSError):
    """Another writer renamed the shared temporary file away before this one could."""

    def __init__(self, tmp: str, path: str) -> None:
        # The real node's top-level message (a Rust Debug-formatted PathBuf is quoted).
        super().__init__(f'renaming router file: "{tmp}" -> "{path}"')
        self.tmp = tmp
        self.target = path

    def __str__(self) -> str:
        return str(self.args[0])


def _write_synced(path: str, data: bytes, *, exclusive: bool = False) -> None:
    """Create ``path`` (truncating it, or failing if it exists when ``exclusive``), write
    ``data`` whole and fsync it."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


@dataclass(frozen=True)
class Stores:
    """Where each file lives: ``meta`` (WAL, router.json, manifests) and ``assets`` (parts)."""

    meta: Store
    assets: Store

    @property
    def split(self) -> bool:
        return self.meta is not self.assets


def open_data_root(data_root: str) -> Store:
    """The local data root (a path or ``file://`` URL); anything else is a ``ValueError``."""
    store = Store(data_root)
    if not store.local:
        raise ValueError(f"data_root {data_root!r} is not a local directory")
    return store


def open_stores(
    store_url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    data_root: str | None = None,
    object_store: str | None = None,
) -> Stores:
    """The stores of a config: one URL for everything, or a data root plus an object store."""
    if data_root is None:
        one = Store(store_url, storage_options)
        return Stores(one, one)
    meta = open_data_root(data_root)
    if object_store is None:
        return Stores(meta, meta)
    return Stores(meta, Store(object_store, storage_options))
