"""Read-only reader of the elacsym store: ``router.json``, part manifests and the WAL listing.

Owns reading ``namespaces/{ns}/router.json`` (CONTRACT §4.3), part manifests
(``parts/{id}.json``, §4.4) and listing ``wal/`` (names, sizes, times; one listing
call, no per-file reads) from ``target.store`` through fsspec, and turning what
it finds into ``NamespaceLive``. A namespace never written is an empty namespace,
not an error. It must never write, move or delete anything: readers of live state
are read-only, so the opened filesystem stays private (the WAL trim opens the
store itself, through ``apply.wal_store``). Failures become a ``TargetError``
naming the store URL or file and the cause — a ``TargetUnavailable`` (retryable)
when the failure looks transient; storage credentials never appear in them. It
does not retry: callers that poll (the throttle, the verification) wrap it in
``elax_plan.retry``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import orjson

from elax_plan.errors import TargetError, TargetUnavailable
from elax_plan.live._fs import describe, info_mtime, is_local_fs, is_object_store, open_fs
from elax_plan.live.model import NamespaceLive, PartInfo, WalObject
from elax_plan.spec.secrets import redact

__all__ = ["StoreReader", "read_namespace"]

_WAL_NAME = re.compile(r"^WAL-(\d+)\.json$")
_STORE_HINT = (
    "Check target.store and target.storage_options (endpoint, bucket, credentials) and that "
    "the store is up and readable by this user."
)


def read_namespace(
    store_url: str,
    storage_options: Mapping[str, Any],
    namespace: str,
    *,
    with_wal: bool = False,
) -> NamespaceLive:
    """``router.json`` of ``namespace`` (and, with ``with_wal``, its WAL listing)."""
    return StoreReader(store_url, storage_options).read_namespace(namespace, with_wal=with_wal)


class StoreReader:
    """One store, opened once; cheap to call repeatedly (e.g. to poll ``router.json``)."""

    def __init__(self, store_url: str, storage_options: Mapping[str, Any]) -> None:
        self.url = store_url.rstrip("/")
        try:
            self._fs, root = open_fs(store_url, storage_options)
        except (ImportError, ValueError, TypeError, OSError) as exc:
            raise TargetError(
                f"Cannot open the store {self._shown(self.url)}: {describe(exc)}.",
                hint=_STORE_HINT,
            ) from exc
        self._root = root.rstrip("/")
        self._local = is_local_fs(self._fs)

    # --- public ---------------------------------------------------------------------------

    def read_namespace(self, namespace: str, *, with_wal: bool = False) -> NamespaceLive:
        """The namespace as ``router.json`` describes it; ``exists=False`` when there is none."""
        key = f"namespaces/{namespace}/router.json"
        data = self._read(key)
        if data is None:
            self._check_container()
            return NamespaceLive(name=namespace, exists=False)
        fields = _parse_router(data, self._shown_key(key))
        wal = self.list_wal(namespace) if with_wal else ()
        return NamespaceLive(name=namespace, exists=True, wal_objects=wal, **fields)

    def read_part_manifest(self, namespace: str, part_id: str) -> PartInfo | None:
        """The manifest file ``namespaces/{ns}/parts/{id}.json``; None when it is missing."""
        key = f"namespaces/{namespace}/parts/{part_id}.json"
        data = self._read(key)
        if data is None:
            return None
        where = self._shown_key(key)
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _corrupt(where, f"not JSON ({exc})") from exc
        return _part(raw, where, "the manifest")

    def read_wal(self, namespace: str, sequence: int) -> bytes | None:
        """The bytes of ``WAL-<sequence>.json``; None when it does not exist."""
        return self._read(f"namespaces/{namespace}/wal/WAL-{sequence:020d}.json")

    def list_wal(self, namespace: str) -> tuple[WalObject, ...]:
        """``WAL-<seq>.json`` objects under ``namespaces/{ns}/wal/``, by sequence.

        Other names (temporary files) are left out. One listing call; no object is read.
        """
        key = f"namespaces/{namespace}/wal"
        path = self._path(key)
        out: list[WalObject] = []
        try:
            if self._local:
                with os.scandir(path) as entries:
                    for entry in entries:
                        m = _WAL_NAME.match(entry.name)
                        if m is None or not entry.is_file():
                            continue
                        st = entry.stat()
                        out.append(WalObject(int(m[1]), st.st_size, st.st_mtime))
            else:
                self._fs.invalidate_cache(path)
                for info in self._fs.ls(path, detail=True):
                    name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
                    m = _WAL_NAME.match(name)
                    if m is None or info.get("type") != "file":
                        continue
                    moment = info_mtime(info)
                    modified = moment.timestamp() if moment is not None else 0.0
                    out.append(WalObject(int(m[1]), int(info.get("size") or 0), modified))
        except (FileNotFoundError, NotADirectoryError):
            return ()
        except Exception as exc:  # every fsspec backend has its own error types
            raise self._unreadable(key, exc) from exc
        out.sort(key=lambda w: w.sequence)
        return tuple(out)

    # --- internals ------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}" if self._root else key

    @staticmethod
    def _shown(url: str) -> str:
        return redact(url)

    def _shown_key(self, key: str) -> str:
        return redact(f"{self.url}/{key}")

    def _read(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            if self._local:
                with open(path, "rb") as f:
                    return f.read()
            data: bytes = self._fs.cat_file(path)
            return data
        except FileNotFoundError:
            return None
        except Exception as exc:  # every fsspec backend has its own error types
            raise self._unreadable(key, exc) from exc

    def _check_container(self) -> None:
        """On an object store, a missing router is only "no namespace" if the bucket exists."""
        if not is_object_store(self._fs) or not self._root:
            return
        bucket = self._root.split("/", 1)[0]
        try:
            found = self._fs.exists(bucket)
        except Exception as exc:  # every fsspec backend has its own error types
            raise self._unreadable("", exc) from exc
        if not found:
            raise TargetError(
                f"Cannot read the store {self._shown(self.url)}: bucket {bucket!r} does not "
                "exist or is not visible with these credentials.",
                hint=_STORE_HINT,
            )

    def _unreadable(self, key: str, exc: BaseException) -> TargetError:
        where = self._shown_key(key) if key else self._shown(self.url)
        summary = f"Cannot read {where}: {describe(exc)}."
        if _transient(exc):
            return TargetUnavailable(summary, hint=_STORE_HINT, cause=type(exc).__name__)
        return TargetError(summary, hint=_STORE_HINT)


def _transient(exc: BaseException) -> bool:
    """A store failure worth retrying: I/O errors, timeouts and resets (an S3 503 or a
    dropped connection arrives as one), not access, path or configuration problems."""
    if isinstance(exc, PermissionError | IsADirectoryError | NotADirectoryError):
        return False
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


def _corrupt(where: str, what: str) -> TargetError:
    return TargetError(
        f"{where} is not a valid elacsym file: {what}.",
        hint=(
            "elacsym writes it; check that target.store points at the elacsym data root, and "
            "inspect the file (a partial copy or another tool's file would look like this)."
        ),
    )


def _int(raw: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = raw.get(key, default)
    if value is None:
        raise _corrupt(where, f'"{key}" is missing')
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _corrupt(where, f'"{key}" is {value!r}, not a non-negative integer')
    return value


def _part(raw: Any, where: str, what: str) -> PartInfo:
    if not isinstance(raw, dict):
        raise _corrupt(where, f"{what} is not a JSON object")
    part_id = raw.get("id")
    if not isinstance(part_id, str) or not part_id:
        raise _corrupt(where, f'{what} has no string "id"')
    return PartInfo(
        id=part_id,
        wal_start=_int(raw, "wal_start", where),
        wal_end=_int(raw, "wal_end", where),
        rows=_int(raw, "rows", where),
        tombstones=_int(raw, "tombstones", where, default=0),
    )


def _parse_router(data: bytes, where: str) -> dict[str, Any]:
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _corrupt(where, f"not JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise _corrupt(where, "not a JSON object")
    if not isinstance(raw.get("namespace"), str):
        raise _corrupt(where, '"namespace" is missing or not a string')
    parts_raw = raw.get("parts")
    if parts_raw is None:
        parts_raw = []
    if not isinstance(parts_raw, list):
        raise _corrupt(where, '"parts" is not a list')
    parts = tuple(_part(p, where, f"parts[{i}]") for i, p in enumerate(parts_raw))
    return {
        "epoch": _int(raw, "epoch", where),
        "wal_highwater": _int(raw, "wal_highwater", where),
        "updated_at": _int(raw, "updated_at", where),
        "indexed_wal": _int(raw, "indexed_wal", where, default=0),
        "parts": tuple(sorted(parts, key=lambda p: (p.wal_start, p.wal_end, p.id))),
    }
