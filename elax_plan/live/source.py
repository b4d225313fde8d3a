"""Read-only view of the plan's source: which files there are, their fingerprints, and a sample.

Owns expanding ``source.uri`` (URLs and globs on ``file://``, ``memory://``,
``s3://`` or any fsspec backend) into a sorted, de-duplicated list of files with
fingerprints — the strongest identity the store offers without reading the file:
``size=<n>;etag=<e>[;version=<v>]`` where the backend has an ETag (S3),
``size=<n>;mtime=<ISO-8601 UTC>;blocks=<hash>`` for local files (a hash of the first
and last 64 KiB: two reads per file), else ``size=<n>;mtime=<…>``; with
``source.fingerprint: content`` also the sha256 of the whole file, streamed (the one
mode whose cost grows with bytes). ``live.model.same_source`` compares them. Also
exact Parquet row counts from footers, and row/request-size estimates from a bounded
sample. In ``auto`` mode planning cost grows with the number of files, never with
their bytes: listing reads two blocks of each local file and no remote one; a sample
reads at most ``SAMPLE_BYTES`` raw bytes from the first few files (or, when a
compressed file's first ``SAMPLE_BYTES`` decode to no whole line, as a bz2 block of
wide rows may, up to ``MAX_PREFIX_BYTES`` of that one file). For a compressed file
the estimate is its size × decompressed bytes per compressed byte (measured over
the whole decoded prefix) ÷ decompressed bytes per sampled row. Which codec a
file has, decompressing it and opening Parquet come from ``source_format``, as
in apply's readers: a file apply would refuse is refused here, and a sample
decodes bytes exactly as apply will.

Local globs follow the shell: ``*`` and ``?`` do not match a leading dot, ``**``
matches any depth. A pattern that also covers the plan's own state (its ledger, lease
and run files such as ``events.ndjson``, and the namespace records) leaves those out
(``exclude``), so a run never reads its own state back as source. It must not write anything, validate rows (apply does), or
decide what a listing means for the plan (the planner does). Failures are one
paragraph naming the URL and what to check; credentials never appear in them.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import fsspec

from elax_plan.errors import SourceError
from elax_plan.live._fs import (
    LOCAL_PREFIX,
    info_mtime,
    is_object_store,
    iso_utc,
    local_path_of,
    mtime_from_ns,
    open_fs,
)
from elax_plan.live.model import SourceFile, SourceListing
from elax_plan.live.sample import SAMPLE_BYTES, SAMPLE_FILES, SAMPLE_ROWS, sample_source, unreadable
from elax_plan.source_format import Refusal, check, open_parquet
from elax_plan.spec.locations import is_local, is_within
from elax_plan.spec.model import SourceSpec
from elax_plan.spec.secrets import redact, reveal

__all__ = [
    "SAMPLE_BYTES",
    "SAMPLE_FILES",
    "SAMPLE_ROWS",
    "count_rows",
    "list_source",
    "read_source",
    "sample_source",
]

FOOTER_THREADS = 16  # parallel footer reads on remote stores
EDGE_BLOCK_BYTES = 64 * 1024  # a local file's fingerprint hashes its first and last block
CONTENT_READ_BYTES = 1024 * 1024  # source.fingerprint: content streams files in such reads
CONTENT_THREADS = 4  # files hashed at a time with source.fingerprint: content

_MAGIC = re.compile(r"[*?\[]")


def has_magic(text: str) -> bool:
    """Whether ``text`` holds a glob character (``*``, ``?``, ``[``)."""
    return _MAGIC.search(text) is not None


# --- listing -------------------------------------------------------------------------------


def list_source(source: SourceSpec, exclude: Sequence[str] = ()) -> SourceListing:
    """Every file ``source.uris`` names, de-duplicated and sorted by URL (no sample, no rows).

    A URL or pattern that matches no file is an error, as is a URL naming a directory, and a
    file that ``source_format`` cannot resolve under ``source.format``/``source.compression``
    (``x.jsonl.zip``): apply would refuse it, so the plan does. Files at or below a URL of
    ``exclude`` (the plan's own state: its ledger, lease and run files, and the namespace
    records) are left out and listed in ``excluded``; the first one names ``state_root``.
    """
    found: dict[str, SourceFile] = {}
    for uri in source.uris:
        files = _list_local(uri) if is_local(uri) else _list_remote(uri, source.storage_options)
        for f in files:
            found.setdefault(f.url, f)
    excluded = sorted(u for u in found if any(is_within(u, root) for root in exclude))
    for url in excluded:
        del found[url]
    if excluded and not found:
        raise SourceError(
            f"source.uri {redact(', '.join(source.uris))} matched only elax-plan's own state "
            f"files ({len(excluded):,}, such as {redact(excluded[0])}).",
            hint="Point source.uri at the data, or move state.uri out of the source folder.",
        )
    for url in found:
        resolved = check(url, source.format, source.compression)
        if isinstance(resolved, Refusal):
            raise resolved.error(redact(url))
    files = [found[url] for url in sorted(found)]
    if source.fingerprint == "content":
        files = _with_content(files, source.storage_options)
    return SourceListing(
        files=tuple(files),
        excluded=tuple(excluded),
        state_root=exclude[0] if exclude else "",
    )


def read_source(source: SourceSpec, exclude: Sequence[str] = ()) -> SourceListing:
    """``list_source`` plus Parquet row counts and the sample: what ``plan`` needs."""
    listing = count_rows(list_source(source, exclude), source)
    return replace(listing, sample=sample_source(listing, source))


def _no_match(uri: str, why: str = "") -> SourceError:
    hint = "Check the pattern and that the files exist."
    if "not readable" in why:
        hint = "Check that the user running elax-plan may read that directory."
    return SourceError(f"source.uri {redact(uri)} matched no files{why}.", hint=hint)


def _is_directory(uri: str) -> SourceError:
    return SourceError(
        f"source.uri {redact(uri)} is a directory, not a file.",
        hint=f"Name its files with a glob, such as {redact(uri.rstrip('/'))}/*.ndjson.",
    )


def _local_file(path: str, st: os.stat_result) -> SourceFile | None:
    """The file's listing entry, its fingerprint with the ``blocks`` hash; None if it vanished."""
    size = st.st_size
    url = f"{LOCAL_PREFIX}{path}"
    try:
        blocks = _edge_blocks(path, size)
    except FileNotFoundError:
        return None  # removed while we listed: not part of this listing
    except OSError as exc:
        raise unreadable(url, exc, "read") from exc
    fingerprint = f"size={size};mtime={iso_utc(mtime_from_ns(st.st_mtime_ns))};blocks={blocks}"
    return SourceFile(url=url, size=size, fingerprint=fingerprint)


def _edge_blocks(path: str, size: int) -> str:
    """A hash of the file's first and last ``EDGE_BLOCK_BYTES`` (all of it when that covers
    it): two reads per file, however large, so a rewrite that keeps size and modification
    time (a copy with ``cp -p``, a restored mtime) is still seen at either end."""
    digest = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        if size <= 2 * EDGE_BLOCK_BYTES:
            digest.update(f.read())
        else:
            digest.update(f.read(EDGE_BLOCK_BYTES))
            f.seek(size - EDGE_BLOCK_BYTES)
            digest.update(f.read(EDGE_BLOCK_BYTES))
    return digest.hexdigest()


def _with_content(files: list[SourceFile], storage_options: Mapping[str, Any]) -> list[SourceFile]:
    """``source.fingerprint: content``: each fingerprint plus the sha256 of the whole file,
    streamed (planning then reads every byte of the source, a few files at a time)."""

    def hashed(f: SourceFile) -> SourceFile:
        return replace(
            f, fingerprint=f"{f.fingerprint};sha256={_content_digest(f.url, storage_options)}"
        )

    if len(files) < 2:
        return [hashed(f) for f in files]
    with ThreadPoolExecutor(CONTENT_THREADS) as pool:
        return list(pool.map(hashed, files))


def _content_digest(url: str, storage_options: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()

    def take(handle: Any) -> None:
        while chunk := handle.read(CONTENT_READ_BYTES):
            digest.update(chunk)

    try:
        if url.startswith(LOCAL_PREFIX):
            with open(local_path_of(url), "rb") as local:
                take(local)
        else:
            fs, path = open_fs(url, storage_options)
            with fs.open(path, "rb", block_size=CONTENT_READ_BYTES) as remote:
                take(remote)
    except Exception as exc:  # every fsspec backend has its own error types
        raise unreadable(url, exc, "read") from exc
    return digest.hexdigest()


def _list_local(uri: str) -> list[SourceFile]:
    path = local_path_of(uri)
    if not has_magic(path):
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise SourceError(
                f"source file {redact(uri)} does not exist.",
                hint="Check source.uri (relative paths are resolved against the current "
                "directory).",
            ) from exc
        except OSError as exc:
            raise unreadable(uri, exc, "read") from exc
        if stat.S_ISDIR(st.st_mode):
            raise _is_directory(uri)
        found = _local_file(path, st)
        if found is None:
            raise SourceError(
                f"source file {redact(uri)} does not exist.", hint="Check source.uri."
            )
        return [found]
    directory, pattern = os.path.split(path)
    try:
        if has_magic(directory) or "**" in pattern:
            files = list(_glob_local(path))
        else:
            files = list(_scan_local(directory, pattern))
    except OSError as exc:
        raise unreadable(f"{LOCAL_PREFIX}{directory}", exc) from exc
    if not files:
        raise _no_match(uri, _local_no_match_reason(path))
    return files


def _scan_local(directory: str, pattern: str) -> Iterator[SourceFile]:
    """One ``os.scandir`` pass: the fast path for ``/dir/*.ndjson``-shaped patterns."""
    match = re.compile(fnmatch.translate(pattern)).match
    hidden_ok = pattern.startswith(".")
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return
    with entries:
        for entry in entries:
            name = entry.name
            if (name[0] == "." and not hidden_ok) or match(name) is None:
                continue
            if entry.is_file():
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # removed while we listed: not part of this listing
                found = _local_file(entry.path, st)
                if found is not None:
                    yield found


def _glob_local(path: str) -> Iterator[SourceFile]:
    for found in glob.iglob(path, recursive=True):
        try:
            st = os.stat(found)
        except FileNotFoundError:
            continue  # removed while we listed, or a dangling symlink: not a file
        if stat.S_ISREG(st.st_mode):
            listed = _local_file(os.path.abspath(found), st)
            if listed is not None:
                yield listed


def _local_no_match_reason(path: str) -> str:
    """Why a local pattern found nothing, when the reason is a missing or unreadable directory."""
    parts = path.split(os.sep)
    static: list[str] = []
    for part in parts[:-1]:
        if has_magic(part):
            break
        static.append(part)
    base = os.sep.join(static) or os.sep
    if not os.path.isdir(base):
        return f" (directory {base} does not exist)"
    if not os.access(base, os.R_OK | os.X_OK):
        return f" (directory {base} is not readable by this user)"
    return ""


def _list_remote(uri: str, storage_options: Mapping[str, Any]) -> list[SourceFile]:
    try:
        fs, path = open_fs(uri, storage_options)
    except (ImportError, ValueError, TypeError, OSError) as exc:
        raise unreadable(uri, exc, "open") from exc
    try:
        fs.invalidate_cache()
        if has_magic(path):
            entries: dict[str, Any] = fs.glob(path, detail=True)
        else:
            entries = {path: fs.info(path)}
    except FileNotFoundError as exc:
        if has_magic(path):
            raise _no_match(uri) from exc
        raise SourceError(
            f"source file {redact(uri)} does not exist.", hint="Check source.uri."
        ) from exc
    except Exception as exc:  # every fsspec backend has its own error types
        raise unreadable(uri, exc) from exc
    to_url = _url_mapper(uri, path, fs)
    files = []
    for name, info in entries.items():
        if info.get("type") != "file":
            if not has_magic(path):
                raise _is_directory(uri)
            continue
        size = int(info.get("size") or 0)
        files.append(SourceFile(url=to_url(str(name)), size=size, fingerprint=_fingerprint(info)))
    if not files:
        raise _no_match(uri, _remote_no_match_reason(fs, path))
    return files


def _remote_no_match_reason(fs: fsspec.AbstractFileSystem, path: str) -> str:
    if not is_object_store(fs):
        return ""
    bucket = path.split("/", 1)[0]
    if not bucket or has_magic(bucket):
        return ""
    try:
        found = fs.exists(bucket)
    except Exception as exc:  # every fsspec backend has its own error types
        raise unreadable(path, exc) from exc
    if not found:
        return f" (bucket {bucket!r} does not exist or is not visible with these credentials)"
    return ""


def _fingerprint(info: Mapping[str, Any]) -> str:
    """``size=<n>;etag=<e>[;version=<v>]`` where the store has ETags, else size and mtime.

    The version id is there when the listing carries it (S3 reports it for an object named
    by its own URL on a versioned bucket; a glob's listing has ETags only).
    """
    size = int(info.get("size") or 0)
    for key in ("ETag", "etag", "e_tag"):
        etag = info.get(key)
        if etag:
            fingerprint = f"size={size};etag={str(etag).strip(chr(34))}"
            version = info.get("VersionId") or info.get("version_id")
            if version and version != "null":
                fingerprint += f";version={version}"
            return fingerprint
    moment = info_mtime(info)
    return f"size={size};mtime={iso_utc(moment) if moment is not None else 'unknown'}"


def _static_prefix(text: str) -> str:
    """``text`` up to and including the last ``/`` before its first glob character."""
    first = _MAGIC.search(text)
    end = first.start() if first is not None else len(text)
    return text[: text.rfind("/", 0, end) + 1]


def _url_mapper(uri: str, path: str, fs: fsspec.AbstractFileSystem) -> Callable[[str], str]:
    """Turn backend paths back into URLs spelled the way the user wrote ``uri``."""
    if not has_magic(path):
        return lambda _name: uri
    cut_uri = _static_prefix(uri)
    cut_path = _static_prefix(path)

    def to_url(name: str) -> str:
        if cut_path and name.startswith(cut_path):
            return cut_uri + name[len(cut_path) :]
        return str(fs.unstrip_protocol(name))

    return to_url


# --- Parquet row counts --------------------------------------------------------------------


def count_rows(listing: SourceListing, source: SourceSpec) -> SourceListing:
    """``listing`` with exact ``rows`` per file from Parquet footers; NDJSON is unchanged."""
    if source.format != "parquet" or not listing.files:
        return listing
    options = reveal(source.storage_options)

    def rows_of(f: SourceFile) -> SourceFile:
        with open_parquet(f.url, options, block_size=SAMPLE_BYTES) as parquet:
            return replace(f, rows=int(parquet.metadata.num_rows))

    if len(listing.files) == 1:
        files = [rows_of(f) for f in listing.files]
    else:
        with ThreadPoolExecutor(FOOTER_THREADS) as pool:
            files = list(pool.map(rows_of, listing.files))
    return replace(listing, files=tuple(files))


# --- sampling ------------------------------------------------------------------------------
