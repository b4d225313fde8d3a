"""The real node's ``NamespaceStore`` on the data root: router and WAL reads and writes.

Mirrors ``lqhl/elacsym:crates/elax-store`` (CONTRACT §2.4, §4): ``load_router``
(defaults when the file is absent), ``store_router`` (through the one shared
``router.json.tmp``), ``append_wal`` (create with truncate, write in place),
and ``load_batches_since`` (list ``wal/``: every regular file must be named
``WAL-<digits>.json`` or the whole listing fails; gaps are fine; batches come
back sorted). Failures are ``RealStoreError`` with the real top-level message
and, where the real code has one, its cause.

Used by a namespace in the real-store behaviour and by ``compact``; knows
nothing about HTTP.
"""

from __future__ import annotations

from elax_plan.emulator.layout import (
    Router,
    WalBatch,
    WalDecodeError,
    decode_router,
    decode_wal_batch,
    encode_router,
    router_key,
    wal_dir,
    wal_key,
)
from elax_plan.emulator.storage import SharedTmpRenameError, Store

_U64_MAX = 2**64 - 1


class RealStoreError(Exception):
    """A store failure: ``message`` is what the real node answers, ``causes`` its chain."""

    def __init__(self, message: str, *causes: str) -> None:
        super().__init__(message)
        self.message = message
        self.causes = causes


def load_router(store: Store, ns: str, now_ms: int) -> Router:
    """``router.json``, or the defaults (epoch 0, updated_at now) when there is none."""
    key = router_key(ns)
    raw = store.read(key)
    if raw is None:
        return Router(namespace=ns, updated_at=now_ms)
    try:
        return decode_router(raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise RealStoreError(f'decoding router state: "{store.path(key)}"', str(exc)) from exc


def store_router(store: Store, router: Router) -> None:
    """Rewrite ``router.json`` through the shared temporary file."""
    try:
        store.replace_via_shared_tmp(router_key(router.namespace), encode_router(router))
    except SharedTmpRenameError as exc:
        raise RealStoreError(str(exc), "No such file or directory (os error 2)") from exc


def append_wal(store: Store, ns: str, seq: int, data: bytes) -> None:
    """Create ``WAL-{seq}.json`` with truncate and write it in place (no rename)."""
    store.create_truncate(wal_key(ns, seq), data)


def wal_entries(store: Store, ns: str) -> list[tuple[int, str]]:
    """(sequence, file name) of every file in ``wal/``, sorted; any other name fails."""
    out = []
    for file_name in store.list_files(wal_dir(ns)):
        if not (file_name.startswith("WAL-") and file_name.endswith(".json")):
            raise RealStoreError(f"unexpected WAL filename: {file_name}")
        digits = file_name[4:-5].removeprefix("+")  # Rust's u64 parse takes a leading +
        if not (digits.isascii() and digits.isdigit()) or int(digits) > _U64_MAX:
            raise RealStoreError("parsing WAL filename sequence", "invalid digit found in string")
        out.append((int(digits), file_name))
    return sorted(out)


def load_batches_since(store: Store, ns: str, since: int) -> list[tuple[int, WalBatch]]:
    """Every batch with sequence ≥ ``since``, in order, gaps and all."""
    out = []
    for seq, file_name in wal_entries(store, ns):
        if seq < since:
            continue
        key = f"{wal_dir(ns)}/{file_name}"
        data = store.read(key)
        if data is None:  # removed between the listing and the read
            raise RealStoreError("No such file or directory (os error 2)")
        try:
            out.append((seq, decode_wal_batch(data, key)))
        except WalDecodeError as exc:
            cause = str(exc.__cause__ or exc)
            raise RealStoreError(f'decoding WAL batch from "{store.path(key)}"', cause) from exc
    return out
