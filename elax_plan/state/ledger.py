"""The ledger (``<plan>/state.json``): what apply has done, written only by the lease holder.

Owns the ledger model (frozen dataclasses, JSON with ``"state_version": 1``),
its step-by-step migration from older versions, and ``LedgerStore``, the only
way to write it. It must not decide what to write next (that is ``apply``'s
job) and must not take or renew the lease (``lease`` does).

Why two appliers can never both write the ledger
------------------------------------------------

Every ledger version carries the ``lock_id`` of the lease that wrote it, and
every write is a compare-and-swap from the version this writer last read or
wrote. Writing needs a ``LedgerWriter``, and the only way to get one is
``LedgerStore.claim(lease)``, which (1) checks ``lock.json`` is ours and
(2) rewrites the current ledger with our ``lock_id`` and ``serial + 1``, by
compare-and-swap. Each ``save`` then (a) re-reads ``lock.json`` and refuses
unless it is still ours, and (b) swaps from our last version.

Take A, an applier whose lease expired (a long GC pause, a frozen VM), and B,
which took the lease over. Whatever the interleaving:

* A's save after B's takeover is refused at (a): ``LeaseLost``.
* A passed (a) just before B took over, and writes while B claims: both are
  swaps from the same version, so exactly one lands. If B's claim lands, A's
  swap fails and A re-checks the lease: ``LeaseLost``. If A's write lands, B's
  claim fails and B re-reads and claims on top of it, so A's last write is
  kept, not lost, and is ordered before B's claim.
* After B's claim has landed, no write of A can ever land: A's expected
  version is older than B's claim, which changed the bytes (new lock id).

So the ledger's history is a single chain: each version was written by the
lease holder of its time, ownership changes only at a claim, and nothing A
writes can follow B's claim. A first ledger (no ``state.json`` yet) is
written with create-if-absent, so of two first writers one gets ``Conflict``.

A PUT retried by the S3 client after its first attempt landed looks like a
conflict whose current bytes are ours (the lock id and serial make them
unique); ``save`` recognises that as success.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from elax_plan.errors import Conflict, StateError
from elax_plan.spec.secrets import display_url
from elax_plan.state.backend import StateBackend, Versioned
from elax_plan.state.layout import dumps, iso, ledger_key, loads_object, parse_iso
from elax_plan.state.lease import Lease

STATE_VERSION = 1

FileStatus = Literal["pending", "partial", "done"]
VerificationStatus = Literal["none", "pending", "passed", "failed"]
FILE_STATUSES: tuple[FileStatus, ...] = ("pending", "partial", "done")
VERIFICATION_STATUSES: tuple[VerificationStatus, ...] = ("none", "pending", "passed", "failed")

Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: Mapping[int, Migration] = {}
"""Step ``n`` turns a ``state_version: n`` document into ``n + 1``. Version 1 is the
first released format, so there are no steps yet; a future v2 adds ``{1: _v1_to_v2}``
and a fixture of a real v1 ledger to the tests."""


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class TargetIdentity:
    """Which elacsym namespace the ledger describes (URLs without credentials)."""

    url: str
    store: str
    namespace: str

    @classmethod
    def of(cls, url: str, store: str, namespace: str) -> TargetIdentity:
        """Build one from plan values, dropping user info and query strings."""
        return cls(url=display_url(url), store=display_url(store), namespace=namespace)


MAX_ACKS_PER_FILE = 10_000
"""Acknowledged writes remembered per file for delivery proofs (the newest are kept)."""


@dataclass(frozen=True, slots=True)
class Ack:
    """One acknowledged write that carried rows of a file: what a delivery proof checks.

    ``digest`` is the operations digest of the whole request (``live.delivery.ops_digest``)
    and ``upserts`` its number of upserts (all files'); ``start`` the file's resume point
    before this write's rows, where the file is written again from if ``WAL-<seq>`` no
    longer holds them; ``proof`` the WAL object's ``size:mtime`` when it was last found to
    hold them (``None``: not proven yet).
    """

    seq: int
    digest: str
    start: Mapping[str, Any]
    upserts: int = 0
    proof: str | None = None

    def to_json(self) -> list[Any]:
        return [self.seq, self.digest, dict(self.start), self.upserts, self.proof]

    @classmethod
    def from_json(cls, raw: Any) -> Ack:
        if not isinstance(raw, list) or len(raw) != 5:
            raise ValueError("an ack must be [seq, digest, start, upserts, proof]")
        seq, digest, start, upserts, proof = raw
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ValueError("an ack's seq must be a positive integer")
        if not isinstance(digest, str) or not isinstance(start, dict):
            raise ValueError("an ack's digest must be a string and its start an object")
        if not isinstance(upserts, int) or isinstance(upserts, bool) or upserts < 0:
            raise ValueError("an ack's upserts must be a non-negative integer")
        if proof is not None and not isinstance(proof, str):
            raise ValueError("an ack's proof must be a string or null")
        return cls(seq, digest, start, upserts, proof)


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One source file's progress.

    ``fingerprint`` is the source listing's opaque string (``size=<n>;etag=<e>``
    or ``size=<n>;mtime=<iso>``) and ``size`` the file size it was taken at.
    ``resume`` is opaque to the state layer (e.g. ``{"byte_offset": …, "line": …}``
    for NDJSON, ``{"row_index": …}`` for Parquet); treat it as read-only.
    ``rows``/``bytes`` count what was acknowledged; ``wal_first``/``wal_last``
    bound the ``wal_sequence`` values acknowledged for this file's writes; ``acks``
    lists those writes, oldest first, for the delivery proof (absent in older ledgers).
    """

    url: str
    fingerprint: str
    size: int = 0
    status: FileStatus = "pending"
    resume: Mapping[str, Any] = field(default_factory=dict)
    rows: int = 0
    bytes: int = 0
    wal_first: int | None = None
    wal_last: int | None = None
    # A running apply passes its growing list (copying it at every checkpoint would cost
    # O(acks) each time); it is read only when the ledger is saved.
    acks: Sequence[Ack] = ()


@dataclass(frozen=True, slots=True)
class Verification:
    status: VerificationStatus = "none"
    summary: str | None = None
    """Where the run's summary is stored (e.g. ``runs/<run_id>/summary.md``)."""
    checks: str | None = None
    """``VerifySpec.checks_digest()`` of the checks that gave a passed or failed verdict (None
    in ledgers written before it was kept): other checks in the plan mean verifying again."""


@dataclass(frozen=True, slots=True)
class RunState:
    """Run-level progress: the current (or last) run and what it had acknowledged."""

    current_run_id: str | None = None
    last_run_id: str | None = None
    started: float | None = None
    finished: float | None = None
    first_acked_wal_sequence: int | None = None
    last_acked_wal_sequence: int | None = None
    upserts_acked: int = 0
    resends: int = 0
    verification: Verification = field(default_factory=Verification)
    # The namespace's wal_highwater before the run's first write (kept by a run that resumes
    # it): all its writes are above it, also those a kill left out of the ledger.
    wal_highwater_at_start: int | None = None


@dataclass(frozen=True, slots=True)
class Ledger:
    """The plan's ledger. ``serial``, ``lock_id`` and ``updated`` are set by ``save``."""

    lineage: str
    plan: str
    target: TargetIdentity
    metric: str
    vector_dims: int | None
    files: Mapping[str, FileEntry] = field(default_factory=dict)
    run: RunState = field(default_factory=RunState)
    serial: int = 0
    lock_id: str | None = None
    updated: float | None = None

    @classmethod
    def new(cls, plan: str, target: TargetIdentity, metric: str, vector_dims: int | None) -> Ledger:
        """A fresh ledger with a new lineage (fixed for the life of this state)."""
        return cls(
            lineage=str(uuid.uuid4()),
            plan=plan,
            target=target,
            metric=metric,
            vector_dims=vector_dims,
        )

    def with_file(self, entry: FileEntry) -> Ledger:
        files = dict(self.files)
        files[entry.url] = entry
        return dataclasses.replace(self, files=files)

    def with_run(self, run: RunState) -> Ledger:
        return dataclasses.replace(self, run=run)

    def count(self, status: FileStatus) -> int:
        return sum(1 for entry in self.files.values() if entry.status == status)

    def to_json(self) -> bytes:
        return dumps(
            {
                "state_version": STATE_VERSION,
                "lineage": self.lineage,
                "serial": self.serial,
                "plan": self.plan,
                "lock_id": self.lock_id,
                "updated": None if self.updated is None else iso(self.updated),
                "target": dataclasses.asdict(self.target),
                "metric": self.metric,
                "vector_dims": self.vector_dims,
                "files": {url: _file_to_dict(entry) for url, entry in self.files.items()},
                "run": _run_to_dict(self.run),
            }
        )

    @classmethod
    def from_json(cls, data: bytes, location: str) -> Ledger:
        """Parse, migrating an older ``state_version``; ``StateError`` when unusable."""
        raw = migrate(loads_object(data, location, "ledger"), location=location)
        try:
            return _ledger_from_dict(raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"The ledger at {location} is damaged ({exc}).",
                "It was edited by hand or written by another tool.",
                "Restore it from a backup; removing it makes the next apply rewrite every file.",
            ) from None


def _file_to_dict(entry: FileEntry) -> dict[str, Any]:
    return {
        "fingerprint": entry.fingerprint,
        "size": entry.size,
        "status": entry.status,
        "resume": dict(entry.resume),
        "rows": entry.rows,
        "bytes": entry.bytes,
        "wal_first": entry.wal_first,
        "wal_last": entry.wal_last,
        "acks": [a.to_json() for a in entry.acks[-MAX_ACKS_PER_FILE:]],
    }


def _run_to_dict(run: RunState) -> dict[str, Any]:
    return {
        "current_run_id": run.current_run_id,
        "last_run_id": run.last_run_id,
        "started": None if run.started is None else iso(run.started),
        "finished": None if run.finished is None else iso(run.finished),
        "first_acked_wal_sequence": run.first_acked_wal_sequence,
        "last_acked_wal_sequence": run.last_acked_wal_sequence,
        "upserts_acked": run.upserts_acked,
        "resends": run.resends,
        "verification": dataclasses.asdict(run.verification),
        "wal_highwater_at_start": run.wal_highwater_at_start,
    }


def _str(raw: Mapping[str, Any], name: str) -> str:
    value = raw[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _opt_str(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string or null")
    return value


def _int(raw: Mapping[str, Any], name: str) -> int:
    value = raw[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def _opt_int(raw: Mapping[str, Any], name: str) -> int | None:
    return None if raw.get(name) is None else _int(raw, name)


def _opt_time(raw: Mapping[str, Any], name: str) -> float | None:
    text = _opt_str(raw, name)
    return None if text is None else parse_iso(text)


def _obj(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw[name]
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be an object")
    return value


def _file_from_dict(url: str, raw: Mapping[str, Any]) -> FileEntry:
    status = _str(raw, "status")
    if status not in FILE_STATUSES:
        raise ValueError(f"file status {status!r} is not one of {', '.join(FILE_STATUSES)}")
    return FileEntry(
        url=url,
        fingerprint=_str(raw, "fingerprint"),
        size=_int(raw, "size"),
        status=status,
        resume=dict(_obj(raw, "resume")),
        rows=_int(raw, "rows"),
        bytes=_int(raw, "bytes"),
        wal_first=_opt_int(raw, "wal_first"),
        wal_last=_opt_int(raw, "wal_last"),
        acks=tuple(Ack.from_json(a) for a in raw.get("acks") or ()),
    )


def _run_from_dict(raw: Mapping[str, Any]) -> RunState:
    verification = _obj(raw, "verification")
    status = _str(verification, "status")
    if status not in VERIFICATION_STATUSES:
        raise ValueError(f"verification status {status!r} is not known")
    return RunState(
        current_run_id=_opt_str(raw, "current_run_id"),
        last_run_id=_opt_str(raw, "last_run_id"),
        started=_opt_time(raw, "started"),
        finished=_opt_time(raw, "finished"),
        first_acked_wal_sequence=_opt_int(raw, "first_acked_wal_sequence"),
        last_acked_wal_sequence=_opt_int(raw, "last_acked_wal_sequence"),
        upserts_acked=_int(raw, "upserts_acked"),
        resends=_int(raw, "resends"),
        verification=Verification(
            status=status,
            summary=_opt_str(verification, "summary"),
            checks=_opt_str(verification, "checks"),
        ),
        wal_highwater_at_start=_opt_int(raw, "wal_highwater_at_start"),
    )


def _ledger_from_dict(raw: Mapping[str, Any]) -> Ledger:
    target = _obj(raw, "target")
    files = _obj(raw, "files")
    return Ledger(
        lineage=_str(raw, "lineage"),
        serial=_int(raw, "serial"),
        plan=_str(raw, "plan"),
        lock_id=_opt_str(raw, "lock_id"),
        updated=_opt_time(raw, "updated"),
        target=TargetIdentity(
            url=_str(target, "url"),
            store=_str(target, "store"),
            namespace=_str(target, "namespace"),
        ),
        metric=_str(raw, "metric"),
        vector_dims=_opt_int(raw, "vector_dims"),
        # Keyed by display URL (live.snapshot); a ledger written before that was so is re-keyed.
        files={display_url(u): _file_from_dict(display_url(u), _obj(files, u)) for u in files},
        run=_run_from_dict(_obj(raw, "run")),
    )


# ------------------------------------------------------------------------ migration


def migrate(
    raw: dict[str, Any],
    *,
    location: str,
    steps: Mapping[int, Migration] = MIGRATIONS,
    current: int = STATE_VERSION,
) -> dict[str, Any]:
    """Bring a parsed ledger up to ``current`` one version step at a time.

    Refuses a document without a usable ``state_version``, one from a newer
    elax-plan, and one whose version has no migration step.
    """
    version = raw.get("state_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise StateError(
            f"The file at {location} is not an elax-plan ledger (no valid state_version).",
            None,
            "Check state.uri in the plan; restore the ledger from a backup if it was damaged.",
        )
    if version > current:
        raise StateError(
            f"The ledger at {location} has state_version {version}, newer than this"
            f" elax-plan understands ({current}).",
            "It was written by a newer elax-plan.",
            "Upgrade elax-plan (pip install -U elax-plan); do not edit the ledger by hand.",
        )
    while version < current:
        step = steps.get(version)
        if step is None:
            raise StateError(
                f"The ledger at {location} has state_version {version}, which this"
                " elax-plan cannot migrate.",
                None,
                f"Use an elax-plan release that reads state_version {version} and upgrade"
                " step by step.",
            )
        raw = step(dict(raw))
        version += 1
        raw["state_version"] = version
    return raw


# -------------------------------------------------------------------------- storage


def read_ledger(backend: StateBackend, plan_name: str) -> Ledger | None:
    """The plan's ledger for reading (plan, status); ``None`` before the first apply."""
    return LedgerStore(backend, plan_name).load()


class LedgerStore:
    """Reads the ledger; hands out a ``LedgerWriter`` only to a lease holder (``claim``)."""

    def __init__(self, backend: StateBackend, plan_name: str) -> None:
        self.backend = backend
        self.plan = plan_name
        self.key = ledger_key(plan_name)

    @property
    def location(self) -> str:
        return self.backend.location(self.key)

    def load(self) -> Ledger | None:
        current = self.backend.read(self.key)
        return None if current is None else Ledger.from_json(current.data, self.location)

    def claim(self, lease: Lease) -> LedgerWriter:
        """Make ``lease`` the ledger's writer, fencing out every earlier holder.

        Rewrites the current ledger (if any) with our lock id and serial + 1 by
        compare-and-swap; see the module docstring for why this is needed.
        """
        if lease.plan != self.plan:
            raise ValueError(f"lease is for plan {lease.plan!r}, ledger for {self.plan!r}")
        while True:
            lease.verify()
            current = self.backend.read(self.key)
            if current is None:
                return LedgerWriter(self, lease, None, None)
            ledger = Ledger.from_json(current.data, self.location)
            if ledger.lock_id == lease.lock_id:
                return LedgerWriter(self, lease, ledger, current.version)
            claimed = dataclasses.replace(
                ledger, serial=ledger.serial + 1, lock_id=lease.lock_id, updated=lease.clock()
            )
            data = claimed.to_json()
            claimed = Ledger.from_json(data, self.location)
            try:
                version = self.backend.replace(self.key, data, current.version)
            except Conflict as exc:
                if exc.current is not None and exc.current.data == data:
                    return LedgerWriter(self, lease, claimed, exc.current.version)
                # The previous holder's last write landed first: claim on top of it.
                continue
            return LedgerWriter(self, lease, claimed, version)


class LedgerWriter:
    """Saves ledger versions for one lease holder; see the module docstring for fencing."""

    def __init__(
        self,
        store: LedgerStore,
        lease: Lease,
        ledger: Ledger | None,
        version: str | None,
    ) -> None:
        self._store = store
        self._lease = lease
        self._ledger = ledger
        self._version = version

    @property
    def ledger(self) -> Ledger | None:
        """The last version this writer loaded or saved (``None`` before the first apply)."""
        return self._ledger

    def save(self, ledger: Ledger) -> Ledger:
        """Write ``ledger`` as the next version (serial + 1); the version written.

        Raises ``LeaseLost`` when the lease is no longer ours, and ``StateError``
        when the ledger changed under a lease we still hold (another tool wrote it).
        """
        store, lease = self._store, self._lease
        previous = self._ledger
        if previous is not None and ledger.lineage != previous.lineage:
            raise StateError(
                f"Refusing to write a ledger with lineage {ledger.lineage} over"
                f" {store.location}, whose lineage is {previous.lineage}.",
                "A ledger never changes lineage.",
                "This is a bug in elax-plan: please report it with the command you ran.",
            )
        if ledger.plan != store.plan:
            raise ValueError(f"ledger is for plan {ledger.plan!r}, store for {store.plan!r}")
        new = dataclasses.replace(
            ledger,
            serial=(previous.serial if previous is not None else ledger.serial) + 1,
            lock_id=lease.lock_id,
            updated=lease.clock(),
        )
        data = new.to_json()
        # Return exactly what reads back (timestamps are stored to the millisecond).
        new = Ledger.from_json(data, store.location)
        lease.verify()
        try:
            if self._version is None:
                version = store.backend.create(store.key, data)
            else:
                version = store.backend.replace(store.key, data, self._version)
        except Conflict as exc:
            if exc.current is None or exc.current.data != data:
                lease.verify()  # LeaseLost if we were fenced out by a new holder's claim
                raise StateError(
                    f"The ledger {store.location} was changed by another writer although"
                    f" this run holds the lease (lock id {lease.lock_id}), so this run's"
                    " update was not written.",
                    _describe_writer(exc.current, store.location),
                    "Run apply again: it resumes from the ledger as it is now. If this repeats,"
                    " stop other tools writing this state.",
                ) from None
            version = exc.current.version  # our retried write had landed
        self._ledger, self._version = new, version
        return new


def _describe_writer(current: Versioned | None, location: str) -> str:
    if current is None:
        return "It has been removed."
    try:
        ledger = Ledger.from_json(current.data, location)
    except StateError as exc:
        return exc.summary
    return (
        f"It is now at serial {ledger.serial}, written under lock id {ledger.lock_id}"
        " (a run whose lease had expired may have written it late)."
    )
