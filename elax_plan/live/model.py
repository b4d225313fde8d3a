"""What the live-state readers observed, as plain frozen data the planner can diff.

Pure: no I/O here, and no import of any I/O library. The readers in this package
fill these in; the planner reads them and never looks at the network, the store
or the clock itself (``LiveState.observed_at`` is the one clock reading a plan
depends on). Also owns the one rule over the WAL model that the planner (to show
the trim step) and ``apply.trim`` (to perform it) must agree on:
``eligible_wal_objects``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One source object: its URL, size and a fingerprint that changes when its bytes do.

    In the planner's view (``snapshot.observe``) ``url`` is the file's key, its URL as
    shown (``display_url``: no credentials), and ``read_url`` the URL to read it with
    when that differs (a signed URL): never shown, logged or stored.

    The fingerprint is ``key=value`` fields joined by ``;`` (see ``same_source``):
    ``size=<n>;etag=<e>[;version=<v>]`` where the store has an ETag (S3; the version id on a
    versioned bucket), ``size=<n>;mtime=<iso8601>;blocks=<hex>`` for local files (``blocks``:
    a hash of the first and last 64 KiB), ``size=<n>;mtime=<iso8601>`` elsewhere; with
    ``source.fingerprint: content`` the same plus ``sha256=<hex>`` of the whole file.
    """

    url: str
    size: int
    fingerprint: str
    rows: int | None = None  # exact, when the format tells it cheaply (Parquet footer)
    read_url: str | None = None  # the URL with its credentials, when ``url`` is the key

    @property
    def location(self) -> str:
        """The URL to open the file with."""
        return self.read_url or self.url


UPGRADED_FIELDS = frozenset({"blocks", "version"})
"""Fields a fingerprint recorded by an earlier elax-plan lacks (see ``same_source``)."""
_IDENTITY_FIELDS = ("mtime", "etag", "blocks", "version")


def fingerprint_fields(fingerprint: str) -> dict[str, str]:
    """``"size=1;mtime=x"`` as ``{"size": "1", "mtime": "x"}``."""
    fields: dict[str, str] = {}
    for part in fingerprint.split(";"):
        key, _, value = part.partition("=")
        fields[key] = value
    return fields


def same_source(recorded: str, listed: str) -> bool:
    """Whether the file the ledger recorded (``recorded``) is the one listed now (``listed``).

    Equal fingerprints match. Otherwise, with the same size:

    - a listed ``sha256`` (``source.fingerprint: content``) decides alone, and a recorded
      fingerprint without one does not match: content mode never trusts an mtime it did not
      check (switching to it rewrites each file once);
    - else every field both have must agree, and the listed one may have only ``blocks`` or
      ``version`` more: a fingerprint written before those fields existed still matches when
      size and mtime (or ETag) agree, so upgrading elax-plan does not mark every file changed;
      apply records the new form when it next writes the ledger. A recorded ``sha256`` is
      ignored by an ``auto`` listing (switching back from content mode rewrites nothing).
    """
    if recorded == listed:
        return True
    old, new = fingerprint_fields(recorded), fingerprint_fields(listed)
    if old.get("size") != new.get("size"):
        return False
    if "sha256" in new:
        return old.get("sha256") == new["sha256"]
    shared = [k for k in _IDENTITY_FIELDS if k in old and k in new]
    missing = {k for k in _IDENTITY_FIELDS if k in new and k not in old}
    return (
        bool(shared)
        and all(old[k] == new[k] for k in shared)
        and missing <= UPGRADED_FIELDS
        and any(k not in UPGRADED_FIELDS for k in shared)
    )


@dataclass(frozen=True, slots=True)
class SourceSample:
    """Estimates from a small sample of the source, never from reading it in full."""

    sampled_rows: int = 0
    sampled_bytes: int = 0  # source bytes those rows took
    request_bytes: int = 0  # bytes those rows take as write-body documents

    @property
    def source_bytes_per_row(self) -> float | None:
        return self.sampled_bytes / self.sampled_rows if self.sampled_rows else None

    @property
    def request_bytes_per_source_byte(self) -> float | None:
        return self.request_bytes / self.sampled_bytes if self.sampled_bytes else None


@dataclass(frozen=True, slots=True)
class SourceListing:
    """Every file the plan's ``source.uri`` names, sorted by URL, plus a sample.

    ``excluded``: files the pattern matched that are elax-plan's own state (``state_root``,
    the plan's folder under ``state.uri``), left out of ``files``.
    """

    files: tuple[SourceFile, ...]
    sample: SourceSample = field(default_factory=SourceSample)
    excluded: tuple[str, ...] = ()
    state_root: str = ""

    def read_urls(self) -> dict[str, str]:
        """key → URL to read, for the files whose key is not their real URL."""
        return {f.url: f.read_url for f in self.files if f.read_url}


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One part manifest as published in ``router.parts``."""

    id: str
    wal_start: int
    wal_end: int
    rows: int
    tombstones: int = 0


@dataclass(frozen=True, slots=True)
class WalObject:
    """One WAL file in the store: its sequence, size and last-modified time (Unix s)."""

    sequence: int
    size: int
    modified: float


@dataclass(frozen=True, slots=True)
class LostWrite:
    """An acknowledged write whose rows the WAL no longer holds (or would not for long).

    ``start`` is the source file's resume point before those rows: the file is written
    again from there. ``reason`` says what the proof found, in plain words.
    """

    url: str
    seq: int
    start: Mapping[str, Any]
    reason: str


def eligible_wal_objects(
    objects: tuple[WalObject, ...],
    indexed_wal: int,
    now: float,
    older_than: float,
    keep_last: int,
) -> list[WalObject]:
    """WAL objects a trim may move or delete: indexed, old enough, not among the newest kept."""
    newest = sorted(objects, key=lambda o: o.sequence)
    keep = {o.sequence for o in newest[-keep_last:]} if keep_last > 0 else set()
    return [
        o
        for o in newest
        if o.sequence <= indexed_wal and o.modified <= now - older_than and o.sequence not in keep
    ]


@dataclass(frozen=True, slots=True)
class NamespaceLive:
    """``router.json`` of the target namespace; a namespace not yet written is empty."""

    name: str
    exists: bool
    epoch: int = 0
    wal_highwater: int = 0
    indexed_wal: int = 0
    updated_at: int = 0  # Unix milliseconds
    parts: tuple[PartInfo, ...] = ()
    wal_objects: tuple[WalObject, ...] = ()

    @property
    def wal_lag(self) -> int:
        return max(0, self.wal_highwater - self.indexed_wal)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the server accepts, from two harmless queries (``live.target.probe``).

    ``rank_by`` and ``consistency`` are ``None`` when the probe could not tell; ``family``
    is the elacsym tip the answers match (CONTRACT §0): ``72e6998`` (no ``rank_by``, so
    BM25 queries are 422), ``ac782e1`` (``rank_by``, unserialised appends), ``c152c2d``
    (``consistency`` parsed, appends serialised), or ``unknown``.
    """

    rank_by: bool | None
    consistency: bool | None
    family: str
    detail: str = ""

    @property
    def serialises_appends(self) -> bool:
        return self.family == "c152c2d"

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "rank_by": self.rank_by,
            "consistency": self.consistency,
            "detail": self.detail,
        }


UNPROBED = Capabilities(None, None, "unknown", "not probed: the target did not answer")


@dataclass(frozen=True, slots=True)
class TargetLive:
    """Whether the elacsym API answered (``GET /metrics``), what it said if not, and what
    it accepts."""

    url: str  # as shown to people: no credentials
    reachable: bool
    detail: str = ""
    capabilities: Capabilities = UNPROBED
