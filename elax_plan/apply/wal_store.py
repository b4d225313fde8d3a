"""``WalStoreWriter``: the WAL trim's own handle on the elacsym store, and the only one that writes.

Owns the store operations of the one destructive step (SPEC §5 step 7):
copying a WAL object under ``namespaces/<ns>/wal-archive/``, checking the copy
holds the same bytes, and deleting a WAL object. It opens the store itself,
through the same fsspec helper the readers use (credentials revealed only into
fsspec), and reads the namespace afresh through a ``live.StoreReader`` of its
own — the readers stay read-only and never hand out their filesystem. It must
not decide which objects go (``live.model.eligible_wal_objects`` and
``apply.trim`` do), and must not touch anything but WAL objects and their
archived copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elax_plan.errors import TargetError
from elax_plan.live._fs import describe, is_local_fs, open_fs
from elax_plan.live.model import NamespaceLive
from elax_plan.live.store import StoreReader
from elax_plan.spec import display_url

__all__ = ["WalStoreWriter", "archive_prefix", "wal_name"]


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
