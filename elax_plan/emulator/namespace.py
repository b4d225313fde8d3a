"""One namespace as a query node holds it, and the registry of namespaces.

Owns the in-memory documents (rebuilt from the WAL on first touch, as the real
node does), the authoritative ``router.json`` of this process, WAL appends and
strong-read catch-up. Every append and every router update by the indexer runs
under the namespace's lock, so the emulator has none of the real code's races
(H1, H2) unless ``race_appends`` asks for H1, or ``regress_highwater_after`` for
the late router update of a racing append (H1 too: ``wal_highwater`` goes back,
and the next append overwrites an acknowledged WAL file).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from elax_plan.emulator.layout import (
    WAL_NAME,
    Delete,
    PartManifest,
    Router,
    Upsert,
    WalBatch,
    WalDecodeError,
    decode_router,
    decode_wal_batch,
    encode_router,
    encode_wal_batch,
    router_key,
    wal_dir,
    wal_key,
)
from elax_plan.emulator.model import BadRequest, Document, ServerError
from elax_plan.emulator.query_model import QueryRequest, RecallRequest
from elax_plan.emulator.search import SearchIndex
from elax_plan.emulator.storage import Store

# Batches appended but not yet indexed are kept for the indexer so it need not re-read and
# re-parse them from the store; beyond this many it reads the store like a real indexer.
_RECENT_BATCHES = 64


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_namespace_name(name: str) -> None:
    """Reject names that could escape the store (the real server does not check; we do)."""
    if not name:
        raise BadRequest("namespace must not be empty")
    if name in (".", ".."):
        raise BadRequest(f"invalid namespace {name!r}: must not be '.' or '..'")
    if "/" in name or "\\" in name:
        raise BadRequest(f"invalid namespace {name!r}: must not contain '/' or '\\'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise BadRequest(f"invalid namespace {name!r}: must not contain control characters")
    if len(name.encode()) > 255:
        raise BadRequest("invalid namespace: longer than 255 bytes")


class Namespace:
    """Documents, router and search index of one namespace; all access under ``lock``."""

    def __init__(
        self,
        name: str,
        store: Store,
        race_appends: bool = False,
        regress_highwater_after: int | None = None,
    ) -> None:
        self.name = name
        self.store = store
        self.race_appends = race_appends
        self.regress_highwater_after = regress_highwater_after
        self.lock = threading.RLock()
        self.router = Router(namespace=name, updated_at=now_ms())
        self.documents: dict[str, Document] = {}
        self.index = SearchIndex(self.documents)
        self.recent: OrderedDict[int, WalBatch] = OrderedDict()
        self.loaded = False
        self.broken: str | None = None
        self.write_count = 0
        self.query_count = 0

    # --- loading and replay ---------------------------------------------------------------

    def ensure_loaded(self) -> None:
        """Replay the whole WAL on first touch; a WAL that cannot be replayed breaks the ns."""
        with self.lock:
            if self.broken is not None:
                raise ServerError(self.broken)
            if self.loaded:
                return
            try:
                self._load()
            except (WalDecodeError, ValueError, KeyError) as exc:
                self.broken = f"failed to load namespace {self.name}: {exc}"
                raise ServerError(self.broken) from exc
            self.loaded = True

    def _load(self) -> None:
        raw = self.store.read(router_key(self.name))
        if raw is not None:
            self.router = decode_router(raw)
        seqs = []
        for file_name in self.store.list_files(wal_dir(self.name)):
            m = WAL_NAME.match(file_name)
            if m is None:
                raise ValueError(f"unexpected file in WAL directory: {file_name}")
            seqs.append(int(m.group(1)))
        for seq in sorted(seqs):
            self._apply(self._read_batch(seq))
        if seqs and max(seqs) > self.router.wal_highwater:
            self.router = dataclasses.replace(self.router, wal_highwater=max(seqs))

    def _read_batch(self, seq: int) -> WalBatch:
        key = wal_key(self.name, seq)
        data = self.store.read(key)
        if data is None:
            raise ValueError(f"WAL batch {key} is missing")
        return decode_wal_batch(data, key)

    def _apply(self, batch: WalBatch) -> None:
        docs = self.documents
        for op in batch.operations:
            if isinstance(op, Upsert):
                docs[op.document.id] = op.document
            elif isinstance(op, Delete):
                docs.pop(op.id, None)
        self.index.invalidate()

    # --- writes -----------------------------------------------------------------------------

    def append(self, batch: WalBatch) -> int:
        """Write ``batch`` as the next WAL file, bump the router, apply it; return its seq."""
        if self.race_appends:
            return self._racy_append(batch)
        data = encode_wal_batch(batch)
        with self.lock:
            self.ensure_loaded()
            seq = self.router.wal_highwater + 1
            self.store.write(wal_key(self.name, seq), data)
            self._publish_append(seq, batch)
            return seq

    def _racy_append(self, batch: WalBatch) -> int:
        # Hazard H1: the next sequence is computed from the router without holding a lock,
        # so two concurrent appends can pick the same number and the later file wins.
        data = encode_wal_batch(batch)
        with self.lock:
            self.ensure_loaded()
            seq = self.router.wal_highwater + 1
        time.sleep(random.uniform(0.0, 0.003))  # widen the window the real code leaves open
        self.store.write(wal_key(self.name, seq), data)
        with self.lock:
            self._publish_append(seq, batch)
        return seq

    def _publish_append(self, seq: int, batch: WalBatch) -> None:
        r = self.router
        self.router = dataclasses.replace(
            r, epoch=r.epoch + 1, wal_highwater=seq, updated_at=now_ms()
        )
        self.store.write(router_key(self.name), encode_router(self.router))
        self._apply(batch)
        self.recent[seq] = batch
        while len(self.recent) > _RECENT_BATCHES:
            self.recent.popitem(last=False)
        self.write_count += 1
        if self.write_count == self.regress_highwater_after and seq > 1:
            # What a racing append's late `wal_highwater = its seq` leaves (once).
            self.router = dataclasses.replace(self.router, wal_highwater=seq - 1)
            self.store.write(router_key(self.name), encode_router(self.router))

    # --- reads ------------------------------------------------------------------------------

    def catch_up(self, min_wal_sequence: int | None) -> None:
        """Strong read: apply newer WAL files written by other nodes; never waits.

        Like the real node, it looks for the files themselves (``WAL-{hw+1}``, …), not at
        ``router.json``, which can lag behind them.
        """
        if min_wal_sequence is None or min_wal_sequence <= self.router.wal_highwater:
            return
        seq = self.router.wal_highwater + 1
        while True:
            data = self.store.read(wal_key(self.name, seq))
            if data is None:
                break
            try:
                self._apply(decode_wal_batch(data, wal_key(self.name, seq)))
            except WalDecodeError as exc:
                raise ServerError(str(exc)) from exc
            self.router = dataclasses.replace(self.router, wal_highwater=seq)
            seq += 1
        have = self.router.wal_highwater
        if min_wal_sequence > have:
            raise ServerError(f"consistency level unmet: wal={have}, required={min_wal_sequence}")

    def query(self, req: QueryRequest) -> dict[str, Any]:
        with self.lock:
            self.ensure_loaded()
            self.catch_up(req.min_wal_sequence)
            self.query_count += 1
            return self.index.search(req)

    def recall(self, req: RecallRequest) -> dict[str, Any]:
        with self.lock:
            self.ensure_loaded()
            return self.index.recall(req)

    # --- for the indexer --------------------------------------------------------------------

    def batch(self, seq: int) -> WalBatch:
        """WAL batch ``seq`` from the recent cache, else from the store."""
        with self.lock:
            cached = self.recent.get(seq)
        if cached is not None:
            return cached
        return self._read_batch(seq)

    def publish_index(
        self,
        indexed_wal: int | None,
        new_parts: tuple[PartManifest, ...] = (),
        replace_parts: bool = False,
    ) -> Router:
        """Record an indexer run in the router: parts, ``indexed_wal``, epoch + 1."""
        with self.lock:
            r = self.router
            parts = new_parts if replace_parts else r.parts + new_parts
            self.router = dataclasses.replace(
                r,
                epoch=r.epoch + 1,
                updated_at=now_ms(),
                indexed_wal=r.indexed_wal if indexed_wal is None else indexed_wal,
                parts=tuple(sorted(parts, key=lambda p: p.wal_start)),
            )
            self.store.write(router_key(self.name), encode_router(self.router))
            for seq in [s for s in self.recent if s <= self.router.indexed_wal]:
                del self.recent[seq]
            return self.router


class Namespaces:
    """The namespaces this emulator process serves, created on first use."""

    def __init__(
        self, store: Store, race_appends: bool = False, regress_highwater_after: int | None = None
    ) -> None:
        self.store = store
        self.race_appends = race_appends
        self.regress_highwater_after = regress_highwater_after
        self._lock = threading.Lock()
        self._by_name: dict[str, Namespace] = {}
        self.on_create: Callable[[Namespace], None] | None = None

    def get(self, name: str) -> Namespace:
        check_namespace_name(name)
        with self._lock:
            ns = self._by_name.get(name)
            if ns is None:
                ns = Namespace(name, self.store, self.race_appends, self.regress_highwater_after)
                self._by_name[name] = ns
            return ns

    def discover(self) -> None:
        """Register every namespace already in the store (loaded lazily)."""
        for name in self.store.list_dirs("namespaces"):
            try:
                self.get(name)
            except BadRequest:
                continue

    def __iter__(self) -> Iterator[Namespace]:
        with self._lock:
            return iter(list(self._by_name.values()))
