"""``LocalBackend``: state on a local POSIX filesystem (``file://`` or a plain path).

The version token is the SHA-256 of the content. ``create`` writes a temporary
file, fsyncs it and ``os.link``\\ s it into place (link fails atomically when the
name exists). ``replace``/``delete``/``put``/``append_lines`` hold an exclusive
``fcntl.flock`` on a per-directory sidecar (``.elax-state.lock``) while they
compare and then swap with temp file + fsync + ``os.replace`` (+ fsync of the
directory), so the compare and the swap are one step for every process on the
host. Readers take no lock: ``os.replace`` means they see the old file or the
new, never a mix. ``append_lines`` appends under the directory lock with
``O_APPEND`` + fsync. Needs a local POSIX filesystem (flock and atomic
rename/link); NFS is not supported. An unwritable directory becomes a
``StateError`` naming the state location and what to check. It must not know
what the bytes mean.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator

from elax_plan.errors import Conflict, StateError
from elax_plan.state.backend.base import StateBackend, Versioned, check_key

__all__ = ["LocalBackend"]

_LOCAL_LOCK_NAME = ".elax-state.lock"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackend(StateBackend):
    """``file://`` (or a plain path): flock-guarded compare-and-swap, atomic renames."""

    def __init__(self, url: str, root: str) -> None:
        super().__init__(url)
        self.root = root.rstrip("/") or "/"

    def _path(self, key: str) -> str:
        check_key(key)
        return os.path.join(self.root, *key.split("/"))

    def _fail(self, exc: OSError, key: str, action: str) -> StateError:
        return StateError(
            f"Cannot {action} state file {self.location(key)}: {exc.strerror or exc}.",
            f"The state directory is {self.root}.",
            "Check that it exists or can be created, is writable by this user, and is on a"
            " local filesystem (state.uri).",
        )

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[str]:
        """Exclusive flock on the key's directory sidecar; yields the key's path."""
        import fcntl  # POSIX only; imported here so the module imports everywhere

        path = self._path(key)
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(os.path.join(directory, _LOCAL_LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._fail(exc, key, "lock") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield path
        finally:
            # Closing the descriptor releases the flock.
            os.close(fd)

    def _read_path(self, path: str) -> Versioned | None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return Versioned(data, _sha256(data))

    def _write_temp(self, path: str, data: bytes) -> str:
        directory, name = os.path.split(path)
        tmp = os.path.join(directory, f".{name}.tmp-{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return tmp

    def read(self, key: str) -> Versioned | None:
        path = self._path(key)
        try:
            return self._read_path(path)
        except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            raise self._fail(exc, key, "read") from exc

    def _create(self, key: str, data: bytes) -> str:
        with self._locked(key) as path:
            try:
                tmp = self._write_temp(path, data)
                try:
                    # link() refuses an existing name atomically: the create-if-absent.
                    os.link(tmp, path)
                finally:
                    os.unlink(tmp)
                _fsync_dir(os.path.dirname(path))
            except FileExistsError:
                raise Conflict(self.location(key), "create", self._read_path(path)) from None
            except OSError as exc:
                raise self._fail(exc, key, "create") from exc
        return _sha256(data)

    def _swap(self, key: str, path: str, data: bytes) -> str:
        try:
            tmp = self._write_temp(path, data)
            os.replace(tmp, path)
            _fsync_dir(os.path.dirname(path))
        except OSError as exc:
            raise self._fail(exc, key, "write") from exc
        return _sha256(data)

    def _replace(self, key: str, data: bytes, expected_version: str) -> str:
        with self._locked(key) as path:
            current = self._read_path(path)
            if current is None or current.version != expected_version:
                raise Conflict(self.location(key), "replace", current)
            return self._swap(key, path, data)

    def _put(self, key: str, data: bytes) -> str:
        with self._locked(key) as path:
            return self._swap(key, path, data)

    def _append(self, key: str, chunk: bytes) -> None:
        # The lock keeps a concurrent os.replace from orphaning the inode we append to.
        with self._locked(key) as path:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                try:
                    _write_all(fd, chunk)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise self._fail(exc, key, "append to") from exc

    def delete(self, key: str, expected_version: str | None = None) -> None:
        with self._locked(key) as path:
            current = self._read_path(path)
            if expected_version is not None and (
                current is None or current.version != expected_version
            ):
                raise Conflict(self.location(key), "delete", current)
            if current is None:
                return
            try:
                os.unlink(path)
                _fsync_dir(os.path.dirname(path))
            except OSError as exc:
                raise self._fail(exc, key, "delete") from exc

    def list(self, prefix: str) -> list[str]:
        check_key(prefix.rstrip("/"))
        base = self._path(prefix.rstrip("/"))
        keys: list[str] = []
        for directory, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = os.path.relpath(directory, self.root).replace(os.sep, "/")
            keys.extend(f"{rel}/{name}" for name in files if not name.startswith("."))
        return sorted(keys)
