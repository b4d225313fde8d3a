"""One namespace as a query node holds it, and the registry of namespaces.

Owns the in-memory documents (rebuilt from the WAL on first touch, as the real
node does), this process's view of ``router.json``, WAL appends and
strong-read catch-up. Two behaviours, chosen by ``NamespaceOptions.real_store``:

- original: the router held in memory is authoritative and files are written
  atomically. Appends and indexer router updates run under the namespace's
  lock, so there are none of the real code's races unless ``race_appends``
  asks for H1, or ``regress_highwater_after`` for a racing append's late
  router update.
- real store: every append re-reads ``router.json`` from disk (a ``compact``
  beside it can set ``wal_highwater`` back: H2), creates its WAL file with
  truncate and writes ``router.json`` through the shared ``router.json.tmp``;
  loading lists the WAL directory (gaps tolerated, a stray file name is a 500);
  catch-up reads list the directory too. Error messages are the real node's
  top-level messages.

Both rebuild a namespace from its WAL alone (``recover_from_parts`` restores
the parts first and replays only the WAL after ``indexed_wal``), and both retry
a failed load on the next request: the real node keeps nothing of a namespace
it could not load.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from elax_plan.emulator import real_store
from elax_plan.emulator.config import RaceModel as RaceModelName
from elax_plan.emulator.filtering import matches
from elax_plan.emulator.layout import (
    WAL_NAME,
    Delete,
    PartManifest,
    Patch,
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
from elax_plan.emulator.model import BadRequest, Document, EmulatorError, ServerError
from elax_plan.emulator.parts import patched, read_part, table_documents
from elax_plan.emulator.query_model import QueryRequest, RecallRequest
from elax_plan.emulator.races import Outcome, RaceModel, torn_bytes
from elax_plan.emulator.search import SearchIndex
from elax_plan.emulator.storage import SharedTmpRenameError, Store, Stores
from elax_plan.emulator.write_model import WriteCondition

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


@dataclass(frozen=True)
class NamespaceOptions:
    """How namespaces load, append and fail (see the module docstring)."""

    real_store: bool = False
    recover_from_parts: bool = False
    race_appends: bool = False
    race_model: RaceModelName = "real"
    serialised: bool = False  # c152c2d serialises appends: no races inside one node
    regress_highwater_after: int | None = None
    seed: int | None = None


class CrashFault:
    """``crash_during_append``: the N-th append of the process writes half its WAL file and
    then kills the process (SIGKILL), as a power cut in the middle of ``write_all`` would."""

    def __init__(self, after: int) -> None:
        self.after = after
        self._count = 0
        self._lock = threading.Lock()

    def hit(self) -> bool:
        with self._lock:
            self._count += 1
            return self._count == self.after

    @staticmethod
    def crash(store: Store, key: str, data: bytes) -> NoReturn:
        store.create_truncate(key, data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
        raise SystemExit(137)  # not reached


class Namespace:
    """Documents, router and search index of one namespace; all access under ``lock``."""

    def __init__(
        self,
        name: str,
        stores: Stores,
        options: NamespaceOptions | None = None,
        crash: CrashFault | None = None,
    ) -> None:
        self.name = name
        self.stores = stores
        self.store = stores.meta
        self.options = options or NamespaceOptions()
        self.crash = crash
        self.lock = threading.RLock()
        self.router = Router(namespace=name, updated_at=now_ms())
        # The highest sequence applied in RAM (the real node's in-memory wal_highwater); in
        # the original behaviour it follows router.wal_highwater.
        self.applied_wal = 0
        self.documents: dict[str, Document] = {}
        self.index = SearchIndex(self.documents)
        self.recent: OrderedDict[int, WalBatch] = OrderedDict()
        self.loaded = False
        self.write_count = 0
        self.query_count = 0
        self.races = RaceModel(self.options.seed, name)
        self._last_append: tuple[int, bytes] | None = None  # (sequence, WAL file bytes)

    @property
    def race_appends(self) -> bool:
        return self.options.race_appends and not self.options.serialised

    # --- loading and replay ---------------------------------------------------------------

    def ensure_loaded(self) -> None:
        """Replay the WAL on first touch; a WAL that cannot be replayed fails the request."""
        with self.lock:
            if self.loaded:
                return
            if self.options.real_store:
                try:
                    self._load_real()
                except BaseException:
                    self._reset()  # the real node keeps nothing: the next request tries again
                    raise
                self.loaded = True
                return
            try:
                self._load()
            except (WalDecodeError, ValueError, KeyError, ServerError) as exc:
                self._reset()  # as the real node: nothing kept, the next request loads again
                raise ServerError(f"failed to load namespace {self.name}: {exc}") from exc
            except BaseException:
                self._reset()
                raise
            self.applied_wal = self.router.wal_highwater
            self.loaded = True

    def _reset(self) -> None:
        self.documents.clear()
        self.index.invalidate()
        self.recent.clear()
        self.applied_wal = 0

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

    def _load_real(self) -> None:
        router = self._read_router()
        since = 0
        if self.options.recover_from_parts:
            self._restore_parts(router.parts)
            since = router.indexed_wal + 1
        applied = 0
        for seq, batch in self._wal_since(since):
            self._apply(batch)
            applied = seq
        self.router = router
        self.applied_wal = max(applied, router.wal_highwater)

    def _restore_parts(self, parts: Sequence[PartManifest]) -> None:
        """Rows of each part in WAL order, then its tombstones (the order inside a part is lost:
        a document deleted and upserted again within one part stays deleted)."""
        for part in sorted(parts, key=lambda p: p.wal_start):
            table, tombstones = read_part(self.stores, self.name, part)
            for doc in table_documents(table):
                self.documents[doc.id] = doc
            for doc_id in tombstones:
                self.documents.pop(doc_id, None)
        self.index.invalidate()

    def _read_router(self) -> Router:
        """``router.json`` from disk, or the defaults when absent (real node: ``load_router``)."""
        try:
            return real_store.load_router(self.store, self.name, now_ms())
        except real_store.RealStoreError as exc:
            raise ServerError(exc.message) from exc

    def _wal_since(self, since: int) -> list[tuple[int, WalBatch]]:
        """Every batch with sequence ≥ ``since``, gaps and all (real: ``load_batches_since``)."""
        try:
            return real_store.load_batches_since(self.store, self.name, since)
        except real_store.RealStoreError as exc:
            raise ServerError(exc.message) from exc

    def _read_batch(self, seq: int) -> WalBatch:
        key = wal_key(self.name, seq)
        data = self.store.read(key)
        if data is None:
            raise ValueError(f"WAL batch {key} is missing")
        return decode_wal_batch(data, key)

    def _apply(self, batch: WalBatch) -> None:
        """Apply one batch in order; a PR #11 patch on a missing id (or a filter error)
        raises ``ServerError`` with the operations before it applied, as the real node does."""
        docs = self.documents
        try:
            for op in batch.operations:
                if isinstance(op, Upsert):
                    docs[op.document.id] = op.document
                elif isinstance(op, Delete):
                    docs.pop(op.id, None)
                elif isinstance(op, Patch):
                    doc = docs.get(op.id)
                    if doc is None:
                        raise ServerError(f"patch target {op.id} missing")
                    docs[op.id] = patched(doc, op)
                else:
                    for doc_id in [d.id for d in docs.values() if matches(op.filter, d)]:
                        del docs[doc_id]
        finally:
            self.index.invalidate()

    # --- writes -----------------------------------------------------------------------------

    def highwater(self) -> int:
        """The sequence write conditions are checked against (the node's in-memory one)."""
        return self.applied_wal if self.options.real_store else self.router.wal_highwater

    def append(
        self,
        batch: WalBatch,
        conditions: Sequence[WriteCondition] = (),
        reject_empty: bool = False,
    ) -> int:
        """Write ``batch`` as the next WAL file, bump the router, apply it; return its seq.

        ``reject_empty`` and ``conditions`` are PR #11's checks (500 for an empty batch,
        412 for a failed condition), made after the namespace is loaded.
        """
        if self.race_appends and self.options.race_model == "overwrite":
            return self._racy_append(batch)
        race = self.races.arrive() if self.race_appends else None
        data = encode_wal_batch(batch)
        try:
            with self.lock:
                self.ensure_loaded()
                if reject_empty and not batch.operations:
                    raise ServerError("write batch must include at least one operation")
                for condition in conditions:
                    condition.check(self.highwater())
                outcome = self.races.decide(race) if race is not None else None
                if outcome is not None and self._last_append is not None:
                    return self._raced_append(outcome, batch, data)
                router = self._router_for_append()
                seq = router.wal_highwater + 1
                self._write_wal(seq, data)
                self._last_append = (seq, data)
                updated = dataclasses.replace(
                    router, epoch=router.epoch + 1, wal_highwater=seq, updated_at=now_ms()
                )
                self._store_router(updated)
                self.router = updated
                self._after_append(seq, batch)
                return seq
        finally:
            if race is not None:
                self.races.answer(race)

    def _raced_append(self, outcome: Outcome, batch: WalBatch, data: bytes) -> int:
        """Hazard H1 as the real code has it: this append read the same ``wal_highwater`` as
        the previous one, which had not answered yet (see ``races.py``)."""
        assert self._last_append is not None
        seq, earlier = self._last_append
        content = data
        if outcome == "torn":
            if len(earlier) == len(data):
                outcome = "overwrite"  # same length: the later write covers the earlier one
            else:
                shorter, longer = sorted((data, earlier), key=len)
                content = torn_bytes(longer, shorter)  # the shorter write landed last
        self._write_wal(seq, content)
        self._last_append = (seq, content)
        self.races.happened(outcome)
        if outcome == "error_after_write":
            key = self.store.path(router_key(self.name))
            raise ServerError(str(SharedTmpRenameError(f"{key}.tmp", key)))
        # Both writers wrote the same wal_highwater and epoch; only updated_at moves.
        updated = dataclasses.replace(self.router, updated_at=now_ms())
        self._store_router(updated)
        self.router = updated
        self._after_append(seq, batch)
        return seq

    def _racy_append(self, batch: WalBatch) -> int:
        # Hazard H1, original model: the next sequence is computed from the router without
        # holding a lock, so two concurrent appends can pick the same number and the later
        # file wins.
        data = encode_wal_batch(batch)
        with self.lock:
            self.ensure_loaded()
            seq = self.router.wal_highwater + 1
        time.sleep(random.uniform(0.0, 0.003))  # widen the window the real code leaves open
        self._write_wal(seq, data)
        with self.lock:
            r = self.router
            self.router = dataclasses.replace(
                r, epoch=r.epoch + 1, wal_highwater=seq, updated_at=now_ms()
            )
            self._store_router(self.router)
            self._after_append(seq, batch)
        return seq

    def _router_for_append(self) -> Router:
        """The router an append starts from: re-read from disk in the real store."""
        return self._read_router() if self.options.real_store else self.router

    def _write_wal(self, seq: int, data: bytes) -> None:
        key = wal_key(self.name, seq)
        if self.crash is not None and self.crash.hit():
            self.crash.crash(self.store, key, data)
        if self.options.real_store:
            real_store.append_wal(self.store, self.name, seq, data)
        else:
            self.store.write(key, data)

    def _store_router(self, router: Router) -> None:
        if not self.options.real_store:
            self.store.write(router_key(self.name), encode_router(router))
            return
        try:
            real_store.store_router(self.store, router)
        except real_store.RealStoreError as exc:
            raise ServerError(exc.message) from exc

    def _after_append(self, seq: int, batch: WalBatch) -> None:
        self._apply(batch)  # may fail (PR #11 patch on a missing id): then seq is not applied
        self.applied_wal = seq
        self.recent[seq] = batch
        while len(self.recent) > _RECENT_BATCHES:
            self.recent.popitem(last=False)
        self.write_count += 1
        if self.write_count == self.options.regress_highwater_after and seq > 1:
            # What a racing append's late `wal_highwater = its seq` leaves (once).
            self.router = dataclasses.replace(self.router, wal_highwater=seq - 1)
            self._store_router(self.router)

    # --- reads ------------------------------------------------------------------------------

    def catch_up(self, min_wal_sequence: int | None) -> None:
        """Strong read: apply newer WAL files written by other nodes; never waits."""
        if self.options.real_store:
            self._catch_up_real(min_wal_sequence)
            return
        # Like the real node, it looks for the files themselves (``WAL-{hw+1}``, …), not at
        # ``router.json``, which can lag behind them.
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
            self.applied_wal = seq
            seq += 1
        have = self.router.wal_highwater
        if min_wal_sequence > have:
            raise ServerError(f"consistency level unmet: wal={have}, required={min_wal_sequence}")

    def _catch_up_real(self, min_wal_sequence: int | None) -> None:
        if min_wal_sequence is None or min_wal_sequence <= self.applied_wal:
            return
        try:
            batches = self._wal_since(self.applied_wal + 1)
        except ServerError as exc:
            raise ServerError("refreshing namespace state") from exc
        for seq, batch in batches:
            self._apply(batch)
            self.applied_wal = seq
        if min_wal_sequence > self.applied_wal:
            raise ServerError(
                f"consistency level unmet: wal={self.applied_wal}, required={min_wal_sequence}"
            )

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

    def current_router(self) -> Router:
        """The router as it is now: read from disk in the real store (a ``compact`` may have
        changed it), this process's copy otherwise."""
        if not self.options.real_store:
            return self.router
        try:
            return self._read_router()
        except EmulatorError:
            return self.router

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
            r = self._router_for_append()
            parts = new_parts if replace_parts else r.parts + new_parts
            self.router = dataclasses.replace(
                r,
                epoch=r.epoch + 1,
                updated_at=now_ms(),
                indexed_wal=r.indexed_wal if indexed_wal is None else indexed_wal,
                parts=tuple(sorted(parts, key=lambda p: p.wal_start)),
            )
            self._store_router(self.router)
            for seq in [s for s in self.recent if s <= self.router.indexed_wal]:
                del self.recent[seq]
            return self.router


class Namespaces:
    """The namespaces this emulator process serves, created on first use."""

    def __init__(
        self,
        stores: Stores,
        options: NamespaceOptions | None = None,
        crash: CrashFault | None = None,
    ) -> None:
        self.stores = stores
        self.store = stores.meta
        self.options = options or NamespaceOptions()
        self.crash = crash
        self._lock = threading.Lock()
        self._by_name: dict[str, Namespace] = {}
        self.on_create: Callable[[Namespace], None] | None = None

    def get(self, name: str) -> Namespace:
        check_namespace_name(name)
        with self._lock:
            ns = self._by_name.get(name)
            if ns is None:
                ns = Namespace(name, self.stores, self.options, self.crash)
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
