"""``WalStoreWriter``: the WAL trim's and restore's handle on the elacsym store, the only one that writes.

Owns the store operations of the one destructive step (SPEC §5 step 7):
copying a WAL object under ``namespaces/<ns>/wal-archive/``, checking the copy
holds the same bytes, and deleting a WAL object; and those of ``wal restore``,
which undoes an archive: listing the archive, and moving an archived object back
into ``wal/`` without ever replacing a WAL object that is already there, nor
leaving a partial one in ``wal/`` (the node fails to replay a torn WAL file, and
any file in ``wal/`` is one it replays). It opens the store itself,
through the same fsspec helper the readers use (credentials revealed only into
fsspec), and reads the namespace afresh through a ``live.StoreReader`` of its
own — the readers stay read-only and never hand out their filesystem. It must
not decide which objects go (``live.model.eligible_wal_objects`` and
``apply.trim`` do) or come back (``apply.wal_restore``), and must not touch
anything but WAL objects and their archived copies.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from typing import Any

from elax_plan.errors import TargetError
from elax_plan.live._fs import describe, is_local_fs, open_fs
from elax_plan.live.model import NamespaceLive, WalObject
from elax_plan.live.store import StoreReader
from elax_plan.spec import display_url

__all__ = ["WalObjectDiffers", "WalStoreWriter", "archive_prefix", "wal_name"]

_WAL_NAME = re.compile(r"^WAL-(\d+)\.json$")


class WalObjectDiffers(Exception):
    """``wal/`` already holds a different object of the sequence being restored."""

    def __init__(self, sequence: int, archived: int, present: int) -> None:
        self.sequence, self.archived, self.present = sequence, archived, present
        super().__init__(f"{wal_name(sequence)} differs from its archived copy")


def wal_name(sequence: int) -> str:
    """The file name of WAL object ``sequence`` (``WAL-<20 digits>.json``, CONTRACT §4.2)."""
    return f"WAL-{sequence:020d}.json"


def archive_prefix(namespace: str) -> str:
    """Where ``archive`` mode moves a namespace's WAL objects, relative to the store root."""
    return f"namespaces/{namespace}/wal-archive"


class WalStoreWriter:
    """One store opened for the WAL trim: read the namespace, archive or delete WAL objects."""

    def __init__(self, store_url: str, storage_options: Mapping[str, Any]) -> None:
        self.url = store_url.rstrip("/")
        self._reader = StoreReader(store_url, storage_options)
        try:
            self._fs, root = open_fs(store_url, storage_options)
        except (ImportError, ValueError, TypeError, OSError) as exc:
            raise TargetError(
                f"Cannot open the store {display_url(self.url)} for the WAL trim: {describe(exc)}.",
                hint="Check target.store and target.storage_options.",
            ) from exc
        self._root = root.rstrip("/")
        self._local = is_local_fs(self._fs)

    def read_namespace(self, namespace: str) -> NamespaceLive:
        """``router.json`` of ``namespace`` with its WAL listing, read now."""
        return self._reader.read_namespace(namespace, with_wal=True)

    def archive(self, namespace: str, sequence: int) -> None:
        """Copy WAL object ``sequence`` to the archive, verify the copy, then delete the original.

        ``FileNotFoundError`` when the original is gone (an earlier run trimmed it); any
        other backend error propagates with the original still in place unless the
        verified copy exists.
        """
        name = wal_name(sequence)
        source = self._path(f"namespaces/{namespace}/wal/{name}")
        data = self._fs.cat_file(source)
        destination = self._path(f"{archive_prefix(namespace)}/{name}")
        if self._local:
            self._fs.makedirs(destination.rsplit("/", 1)[0], exist_ok=True)
        self._fs.pipe_file(destination, data)
        if self._fs.cat_file(destination) != data:
            raise OSError(f"the archived copy of {name} does not match the original")
        self._fs.rm_file(source)

    def delete(self, namespace: str, sequence: int) -> None:
        """Delete WAL object ``sequence``; ``FileNotFoundError`` when it is already gone."""
        self._fs.rm_file(self._path(f"namespaces/{namespace}/wal/{wal_name(sequence)}"))

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}" if self._root else key

    # --- restore --------------------------------------------------------------------------

    def list_archive(self, namespace: str) -> tuple[tuple[WalObject, ...], tuple[str, ...]]:
        """The WAL objects under ``wal-archive/`` by sequence, and the other names found there."""
        folder = self._path(archive_prefix(namespace))
        self._fs.invalidate_cache(folder)
        try:
            infos = self._fs.ls(folder, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return (), ()
        objects: list[WalObject] = []
        others: list[str] = []
        for info in infos:
            name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
            m = _WAL_NAME.match(name)
            if m is None or info.get("type") != "file":
                others.append(name)
            else:
                objects.append(WalObject(int(m[1]), int(info.get("size") or 0), 0.0))
        return tuple(sorted(objects, key=lambda o: o.sequence)), tuple(sorted(others))

    def read_wal_object(self, namespace: str, sequence: int) -> bytes | None:
        """The bytes of ``wal/WAL-<sequence>.json``; None when there is none."""
        return self._read(f"namespaces/{namespace}/wal/{wal_name(sequence)}")

    def read_archived(self, namespace: str, sequence: int) -> bytes | None:
        """The bytes of the archived copy of ``sequence``; None when there is none."""
        return self._read(f"{archive_prefix(namespace)}/{wal_name(sequence)}")

    def restore(self, namespace: str, sequence: int) -> int:
        """Move the archived copy of ``sequence`` back into ``wal/``; its size in bytes.

        Never replaces an object in ``wal/``: one with the same bytes completes an earlier,
        interrupted move (the archived copy is removed); a different one raises
        ``WalObjectDiffers`` and both stay as they are. ``FileNotFoundError`` when the
        archived copy is gone (an earlier run restored it).
        """
        name = wal_name(sequence)
        source = self._path(f"{archive_prefix(namespace)}/{name}")
        destination = self._path(f"namespaces/{namespace}/wal/{name}")
        data: bytes = self._fs.cat_file(source)
        present = self.read_wal_object(namespace, sequence)
        if present is None:
            if self._local:
                self._link_into_wal(source, destination)
            else:
                # One PUT: an object store shows the whole object or none of it.
                self._fs.pipe_file(destination, data)
            present = self._fs.cat_file(destination)
        if present != data:
            raise WalObjectDiffers(sequence, len(data), len(present or b""))
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm_file(source)  # a hard link: wal/ keeps the bytes
        return len(data)

    def _link_into_wal(self, source: str, destination: str) -> None:
        """A hard link, so the object appears in ``wal/`` whole and at once (a copy could
        be cut short and leave a torn WAL file the node cannot replay), and only if no
        object of that name is there (``link`` never replaces one, unlike ``rename``)."""
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        try:
            os.link(source, destination)
        except FileExistsError:
            return  # compared with the archived copy by the caller
        except OSError:
            # A filesystem without hard links: a rename is atomic too, but would replace an
            # object that appeared since the caller looked (nothing writes sequences this
            # old; the plan's lease keeps apply away).
            if not os.path.exists(destination):
                os.rename(source, destination)

    def _read(self, key: str) -> bytes | None:
        try:
            data: bytes = self._fs.cat_file(self._path(key))
        except FileNotFoundError:
            return None
        return data
