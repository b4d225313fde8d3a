"""``StateBackend``: a tiny versioned object store with compare-and-swap, over an fsspec URL.

Owns how state bytes reach ``file://``, ``memory://`` and ``s3://`` and the one
guarantee everything above relies on: **a conditional write succeeds only if the
object is exactly as the caller last read it** (``create`` only if absent,
``replace``/``delete`` only if the version token still matches). It knows
nothing about what the bytes mean (ledger, lease, records live elsewhere) and
must not retry a failed condition itself: a ``Conflict`` goes back to the caller,
who re-reads and decides.

How each backend keeps that promise:

* ``s3://`` — single-request PUTs with ``If-None-Match: *`` (create) and
  ``If-Match: <ETag>`` (replace), ``DeleteObject`` with ``If-Match``; reads are
  one ``GetObject`` so the bytes and the ETag come from the same object
  version. The calls go through s3fs's ``_call_s3`` (its session, retries and
  error translation); s3fs forwards ``IfNoneMatch``/``IfMatch`` to botocore
  unchanged. A 412 ``PreconditionFailed`` (or a 409
  ``ConditionalRequestConflict``, which AWS returns when two conditional
  writes race) becomes ``Conflict``. Objects are always below the 5 GB
  single-PUT limit, so s3fs never switches to a multipart upload that would
  drop the condition.
* ``file://`` — the version token is the SHA-256 of the content. ``create``
  writes a temporary file, fsyncs it and ``os.link``\\ s it into place (link
  fails atomically when the name exists). ``replace``/``delete``/``put``/
  ``append_lines`` hold an exclusive ``fcntl.flock`` on a per-directory
  sidecar (``.elax-state.lock``) while they compare and then swap with
  temp file + fsync + ``os.replace`` (+ fsync of the directory), so the
  compare and the swap are one step for every process on the host. Readers
  take no lock: ``os.replace`` means they see the old file or the new, never a
  mix. Needs a local POSIX filesystem (flock and atomic rename/link); NFS is
  not supported.
* ``memory://`` — fsspec's process-wide memory store, every operation under
  one process-wide lock, and a version counter that never repeats (so there is
  no ABA even after delete + re-create). Only writes through this module bump
  the counter, so other code must not write state keys behind its back.

Content-derived tokens (S3's ETag is an MD5 for single PUTs; the local token
is a SHA-256) mean two writes of identical bytes share a version. That is
sound for compare-and-swap on values — nothing the reader saw has changed —
and the documents that need identity (lease, ledger) carry a unique lock id
and serial anyway.

``append_lines`` (``events.ndjson``, ``rejects.ndjson``): S3 has no append, so
on S3 it is a read-modify-write loop with ``If-Match`` — correct under any
number of concurrent appenders, never loses a line, but rewrites the whole
object, so callers batch lines (a flush every few seconds, not one per event).
Local files append under the directory lock with ``O_APPEND`` + fsync; memory
appends under the process lock. The object stays one readable NDJSON file on
every backend.

Errors: a missing bucket, refused credentials, an unreachable endpoint or an
unwritable directory become ``StateError`` naming the state URL (never the
credentials) and what to check.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import fsspec
import fsspec.asyn

from elax_plan.errors import Conflict, StateError
from elax_plan.spec.secrets import display_url, redact, reveal

# How many times append_lines re-reads and retries on S3 when other appenders
# keep winning; far above any real contention on one run's files.
_APPEND_ATTEMPTS = 50
_LOCAL_LOCK_NAME = ".elax-state.lock"
_SUPPORTED_SCHEMES = frozenset({"file", "local", "memory", "s3", "s3a"})


@dataclass(frozen=True, slots=True)
class Versioned:
    """An object's bytes and the opaque token of exactly that version."""

    data: bytes
    version: str


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid state key {key!r}")
    if any(p.startswith(".") for p in parts):
        # Dot-names are this module's temporary and lock files on local disks.
        raise ValueError(f"state key {key!r} has a component starting with '.'")


def _encode_lines(lines: Iterable[bytes]) -> bytes:
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

    @abstractmethod
    def create(self, key: str, data: bytes) -> str:
        """Write ``data`` only if ``key`` does not exist; the new version, or ``Conflict``."""

    @abstractmethod
    def replace(self, key: str, data: bytes, expected_version: str) -> str:
        """Write ``data`` only if ``key`` is still at ``expected_version``; else ``Conflict``."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> str:
        """Write ``data`` unconditionally (run artefacts only, never ledger or lease)."""

    @abstractmethod
    def delete(self, key: str, expected_version: str | None = None) -> None:
        """Remove ``key``; with ``expected_version``, only if it still matches (else
        ``Conflict``). Without it, a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key under the folder ``prefix`` (recursively), sorted; [] when none."""

    def append_lines(self, key: str, lines: Iterable[bytes]) -> None:
        """Append newline-terminated ``lines`` to ``key`` (created when absent).

        The default is the compare-and-swap loop used on S3; local and memory
        override it with a real append.
        """
        chunk = _encode_lines(lines)
        if not chunk:
            return
        for _ in range(_APPEND_ATTEMPTS):
            current = self.read(key)
            new = chunk if current is None else current.data + chunk
            try:
                if current is None:
                    self.create(key, new)
                else:
                    self.replace(key, new, current.version)
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


# --------------------------------------------------------------------------- local


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
        _check_key(key)
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

    def create(self, key: str, data: bytes) -> str:
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

    def replace(self, key: str, data: bytes, expected_version: str) -> str:
        with self._locked(key) as path:
            current = self._read_path(path)
            if current is None or current.version != expected_version:
                raise Conflict(self.location(key), "replace", current)
            return self._swap(key, path, data)

    def put(self, key: str, data: bytes) -> str:
        with self._locked(key) as path:
            return self._swap(key, path, data)

    def append_lines(self, key: str, lines: Iterable[bytes]) -> None:
        chunk = _encode_lines(lines)
        if not chunk:
            return
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
        _check_key(prefix.rstrip("/"))
        base = self._path(prefix.rstrip("/"))
        keys: list[str] = []
        for directory, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = os.path.relpath(directory, self.root).replace(os.sep, "/")
            keys.extend(f"{rel}/{name}" for name in files if not name.startswith("."))
        return sorted(keys)


# -------------------------------------------------------------------------- memory

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
        _check_key(key)
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

    def create(self, key: str, data: bytes) -> str:
        path = self._path(key)
        with _MEMORY_LOCK:
            current = self._read_path(path)
            if current is not None:
                raise Conflict(self.location(key), "create", current)
            return self._write(path, data)

    def replace(self, key: str, data: bytes, expected_version: str) -> str:
        path = self._path(key)
        with _MEMORY_LOCK:
            current = self._read_path(path)
            if current is None or current.version != expected_version:
                raise Conflict(self.location(key), "replace", current)
            return self._write(path, data)

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        with _MEMORY_LOCK:
            return self._write(path, data)

    def append_lines(self, key: str, lines: Iterable[bytes]) -> None:
        chunk = _encode_lines(lines)
        if not chunk:
            return
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


# ------------------------------------------------------------------------------ s3

_CONDITION_FAILED = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_ACCESS_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
    "403",
}


def _client_error(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) of the botocore ``ClientError`` behind an s3fs exception, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, Mapping):
            error = response.get("Error") or {}
            code = str(error.get("Code") or "")
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return code or str(status or ""), str(error.get("Message") or "")
        current = current.__cause__ or current.__context__
    return None


def _is_unreachable(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        if name in {
            "EndpointConnectionError",
            "ConnectTimeoutError",
            "ReadTimeoutError",
            "ConnectionClosedError",
            "ClientConnectorError",
            "ServerDisconnectedError",
        } or isinstance(current, ConnectionError | TimeoutError):
            return True
        current = current.__cause__ or current.__context__
    return False


class S3Backend(StateBackend):
    """``s3://``: conditional PUT/DELETE through s3fs's client (``If-None-Match``/``If-Match``)."""

    def __init__(self, url: str, fs: Any, root: str, endpoint: str | None) -> None:
        super().__init__(url)
        self._fs = fs
        bucket, _, prefix = root.strip("/").partition("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._endpoint = display_url(endpoint) if endpoint else "the default AWS endpoint"

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, method: str, key: str, action: str, **kwargs: Any) -> dict[str, Any]:
        """One S3 call; missing objects and failed conditions come back as codes."""
        fs = self._fs

        async def run() -> dict[str, Any]:
            resp: dict[str, Any] = await fs._call_s3(method, Bucket=self.bucket, **kwargs)
            body = resp.get("Body")
            if body is not None:
                try:
                    resp["Data"] = await body.read()
                finally:
                    body.close()
            return resp

        try:
            return dict(fsspec.asyn.sync(fs.loop, run))
        except Exception as exc:
            raise self._translate(exc, key, action) from exc

    def _translate(self, exc: Exception, key: str, action: str) -> Exception:
        where = self.location(key)
        error = _client_error(exc)
        code, message = error if error else ("", "")
        if code in _CONDITION_FAILED:
            return _ConditionFailed()
        if code in {"NoSuchKey", "404"} or (not code and isinstance(exc, FileNotFoundError)):
            return _Missing()
        if code == "NoSuchBucket":
            return StateError(
                f"Cannot {action} {where}: bucket '{self.bucket}' does not exist"
                f" at {self._endpoint}.",
                None,
                "Create the bucket, or fix state.uri (and endpoint_url in state.storage_options)"
                " in the plan.",
            )
        if code in _ACCESS_DENIED or isinstance(exc, PermissionError):
            return StateError(
                f"Cannot {action} {where}: access denied by {self._endpoint}"
                f" ({redact(message or code or str(exc))}).",
                "elax-plan needs s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket"
                " on the state location.",
                "Check the credentials (state.storage_options, AWS_PROFILE or the environment)"
                " and the bucket policy.",
            )
        if _is_unreachable(exc):
            return StateError(
                f"Cannot {action} {where}: the S3 endpoint {self._endpoint} is unreachable"
                f" ({type(exc).__name__}).",
                None,
                "Check endpoint_url in state.storage_options, the network, and that the"
                " S3 service is running; then retry.",
            )
        detail = f"{code}: {message}" if code else f"{type(exc).__name__}: {exc}"
        return StateError(
            f"Cannot {action} {where}: S3 answered {redact(detail)}.",
            None,
            "Check state.uri and state.storage_options in the plan, then retry.",
        )

    def read(self, key: str) -> Versioned | None:
        try:
            resp = self._call("get_object", key, "read", Key=self._key(key))
        except _Missing:
            return None
        return Versioned(bytes(resp["Data"]), str(resp["ETag"]))

    def _conditional_put(self, key: str, data: bytes, operation: str, **cond: str) -> str:
        try:
            resp = self._call("put_object", key, "write", Key=self._key(key), Body=data, **cond)
        except (_ConditionFailed, _Missing):
            raise Conflict(self.location(key), operation, self.read(key)) from None
        return str(resp["ETag"])

    def create(self, key: str, data: bytes) -> str:
        return self._conditional_put(key, data, "create", IfNoneMatch="*")

    def replace(self, key: str, data: bytes, expected_version: str) -> str:
        return self._conditional_put(key, data, "replace", IfMatch=expected_version)

    def put(self, key: str, data: bytes) -> str:
        resp = self._call("put_object", key, "write", Key=self._key(key), Body=data)
        return str(resp["ETag"])

    def delete(self, key: str, expected_version: str | None = None) -> None:
        cond = {} if expected_version is None else {"IfMatch": expected_version}
        try:
            self._call("delete_object", key, "delete", Key=self._key(key), **cond)
        except (_ConditionFailed, _Missing):
            if expected_version is None:
                return
            raise Conflict(self.location(key), "delete", self.read(key)) from None

    def list(self, prefix: str) -> list[str]:
        base = self._key(prefix.rstrip("/"))
        path = f"{self.bucket}/{base}"
        try:
            self._fs.invalidate_cache(path)
            found = self._fs.find(path)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self._translate(exc, prefix, "list") from exc
        start = len(self.bucket) + 1 + (len(self.prefix) + 1 if self.prefix else 0)
        return sorted(str(p)[start:] for p in found if str(p).startswith(path + "/"))


class _ConditionFailed(Exception):
    """Internal: S3 refused a condition (412/409); turned into ``Conflict`` by the caller."""


class _Missing(Exception):
    """Internal: S3 said NoSuchKey."""


# ------------------------------------------------------------------------- factory


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


__all__ = [
    "Conflict",
    "LocalBackend",
    "MemoryBackend",
    "S3Backend",
    "StateBackend",
    "Versioned",
    "open_backend",
]
