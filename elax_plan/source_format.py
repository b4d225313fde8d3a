"""Source file formats and codecs: one table of endings, one resolver, one way to open a file.

Owns which source files elax-plan reads and how: the endings it knows (``FORMAT_SUFFIXES``,
``CODEC_SUFFIXES``), ``resolve`` (a file's URL plus the plan's ``source.format`` and
``source.compression`` → a ``ResolvedFormat``, or a refusal naming the supported endings),
``open_stream`` / ``decompressed`` (a file's bytes, decompressed) and ``open_parquet`` (a
``pyarrow.parquet.ParquetFile``). ``validate`` checks plans with ``check``, the planner's
sampler (``live.source``) and apply's readers (``apply.readers``) open files through here, so
the rows ``plan`` estimates are decoded exactly as ``apply`` decodes them.

A codec is supported only if apply can stream it and resume inside it (by decompressing and
discarding up to a decompressed offset): gzip, bz2, xz/lzma and zstd (the ``[zstd]`` extra).
Any other ending is refused by name, never guessed at. A stream that stops before its codec's
end marker (a cut-off download, a file still being written) is an error (``StreamError``), never
a short read: zstd frames are decoded here frame by frame for that, since the ``zstandard``
package's stream reader ends quietly inside a cut frame.

Must not import from ``spec``, ``live`` or ``apply`` (``spec`` imports this module), read or
decode rows, or import fsspec, a codec package or pyarrow before a file is opened.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Literal, cast

from elax_plan.errors import SourceError

__all__ = [
    "CODECS",
    "CODEC_SUFFIXES",
    "COMPRESSION_SETTINGS",
    "FORMAT_SUFFIXES",
    "SUPPORTED_ENDINGS",
    "UNSUPPORTED_CODECS",
    "Codec",
    "Format",
    "Refusal",
    "ResolvedFormat",
    "StreamError",
    "check",
    "codec_install_hint",
    "decompressed",
    "open_parquet",
    "open_stream",
    "pyarrow_parquet",
    "resolve",
]

Format = Literal["ndjson", "parquet"]
Codec = Literal["gzip", "bz2", "xz", "lzma", "zstd"]

FORMAT_SUFFIXES: Mapping[str, Format] = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".parquet": "parquet",
    ".parq": "parquet",
    ".pq": "parquet",
}
"""The last ending of a file's name (after any codec ending) → its format."""

CODEC_SUFFIXES: Mapping[str, Codec] = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".bz2": "bz2",
    ".xz": "xz",
    ".lzma": "lzma",
    ".zst": "zstd",
    ".zstd": "zstd",
}
"""A codec ending → the codec (fsspec's name) that decodes it; only NDJSON may have one."""

CODECS: tuple[Codec, ...] = ("gzip", "bz2", "xz", "lzma", "zstd")
COMPRESSION_SETTINGS: tuple[str, ...] = ("infer", "none", *CODECS)
"""Every value ``source.compression`` may take (the plan schema's enum lists exactly these)."""

# Endings of compressions and archives that cannot be streamed with a resume offset: named in
# the refusal so that the next step (decompress or recompress) is clear.
_UNSUPPORTED_SUFFIXES = {
    ".zip": "zip",
    ".lz4": "lz4",
    ".snappy": "snappy",
    ".sz": "snappy",
    ".br": "brotli",
    ".7z": "7-Zip",
    ".tar": "tar",
    ".tgz": "tar+gzip",
}
UNSUPPORTED_CODECS = frozenset(_UNSUPPORTED_SUFFIXES.values())
"""Compressions elax-plan knows of and refuses (a "did you mean gzip" for zip would mislead)."""
_OPTIONAL_CODEC_PACKAGES = {"zstd": "zstandard"}
_PARQUET_INSTALL = "pip install 'elax-plan[parquet]'"
_RECOMPRESS = "decompress the files, or recompress them with gzip or zstd (.gz, .zst)"


def _endings(format: Format) -> str:
    names = [s for s, f in FORMAT_SUFFIXES.items() if f == format]
    return ", ".join(names[:-1]) + f" or {names[-1]}"


SUPPORTED_ENDINGS = (
    f"{_endings('ndjson')}, optionally compressed ({', '.join(CODEC_SUFFIXES)}), "
    f"and {_endings('parquet')}"
)
"""The supported endings in words, for messages: "elax-plan reads <SUPPORTED_ENDINGS>"."""


@dataclass(frozen=True, slots=True)
class ResolvedFormat:
    """How one file is read: its format and the codec of its bytes (``None``: not compressed)."""

    format: Format
    codec: Codec | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a file cannot be read, worded to follow its name (``x.zip ends in .zip, …``).

    ``key`` is the plan key to change: ``source.uri`` (the name), ``source.format`` or
    ``source.compression``.
    ``hint`` is the next step, without its final period.
    """

    problem: str
    hint: str
    key: str = "source.uri"

    def error(self, url: str) -> SourceError:
        """The ``SourceError`` for ``url`` (the caller redacts what it shows)."""
        return SourceError(
            f"Cannot read {url}: it {self.problem}.",
            f"elax-plan reads {SUPPORTED_ENDINGS}.",
            f"{self.hint[:1].upper()}{self.hint[1:]}.",
        )


def _name(url: str) -> str:
    """The last path segment, lowercased (an http(s) query string is not part of it)."""
    if url.startswith(("http://", "https://")):
        url = url.split("?", 1)[0].split("#", 1)[0]
    return url.rstrip("/").rsplit("/", 1)[-1].lower()


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def check(
    url: str, format: str | None = None, compression: str | None = "infer"
) -> ResolvedFormat | Refusal:
    """How ``url`` is read under ``source.format``/``source.compression``, or why it cannot be.

    An explicit ``format`` wins over the name; ``compression`` ``"infer"`` (or ``None``) takes
    the codec from a codec ending, ``"none"`` reads the bytes as they are, and a codec name
    decodes with that codec whatever the name says. ``url`` may be a glob pattern.
    """
    name = _name(url)
    suffix = _suffix(name)
    compressed = suffix in CODEC_SUFFIXES or suffix in _UNSUPPORTED_SUFFIXES
    stem = name.removesuffix(suffix) if compressed else name  # what names the format
    codec: Codec | None
    if compression in (None, "infer"):
        if suffix in _UNSUPPORTED_SUFFIXES:
            kind = _UNSUPPORTED_SUFFIXES[suffix]
            return Refusal(
                f"ends in {suffix} ({kind}), which elax-plan cannot read as a stream", _RECOMPRESS
            )
        codec = CODEC_SUFFIXES.get(suffix)
    elif compression == "none":
        codec = None
    elif compression in CODECS:
        codec = compression
    else:
        return Refusal(
            f"would need the codec {compression!r}, which elax-plan cannot stream",
            f"set source.compression to one of {', '.join(COMPRESSION_SETTINGS)}, or {_RECOMPRESS}",
            "source.compression",
        )
    resolved_format: Format
    if format in ("ndjson", "parquet"):
        resolved_format = cast(Format, format)
    elif format is not None:
        return Refusal(
            f"cannot be read as {format!r}",
            "set source.format: ndjson or source.format: parquet",
            "source.format",
        )
    else:
        found = FORMAT_SUFFIXES.get(_suffix(stem))
        if found is None:
            ending = _suffix(stem)
            what = f"ends in {ending}, which names no format" if ending else "has no ending"
            return Refusal(
                f"{what} elax-plan reads",
                "rename the files, or set source.format: ndjson or source.format: parquet",
            )
        resolved_format = found
    if resolved_format == "parquet" and codec is not None:
        if compression in (None, "infer"):
            return Refusal(
                f"is Parquet compressed as {codec}; Parquet compresses inside the file and is "
                "read only as written (.parquet)",
                "decompress the files to .parquet",
            )
        return Refusal(
            f"is Parquet, which compresses inside the file: source.compression {codec!r} does "
            "not apply",
            "remove source.compression for Parquet sources",
            "source.compression",
        )
    return ResolvedFormat(resolved_format, codec)


def resolve(
    url: str, format: str | None = None, compression: str | None = "infer"
) -> ResolvedFormat:
    """``check``, raising the refusal as a ``SourceError`` (naming ``url`` and the endings)."""
    result = check(url, format, compression)
    if isinstance(result, Refusal):
        raise result.error(url)
    return result


# --- opening -------------------------------------------------------------------------------


def codec_install_hint(codec: str) -> str:
    """The pip command that installs what ``codec`` needs (zstd has an extra of ours)."""
    package = _OPTIONAL_CODEC_PACKAGES.get(codec, codec)
    if codec == "zstd":
        return f"pip install 'elax-plan[zstd]' (or pip install {package})"
    return f"pip install {package}"


def decompressed(
    raw: IO[bytes], codec: Codec, url: str, *, truncated_ok: bool = False
) -> IO[bytes]:
    """``raw``'s bytes decoded with ``codec`` (fsspec's codec), as one stream across members.

    Decoding errors become a ``StreamError`` naming ``url`` and ``codec``. A stream that ends
    before its codec says it should is an error too, unless ``truncated_ok`` (a sample of a
    file's first bytes): then it ends there, and ``truncated`` says so.
    """
    from fsspec.compression import compr

    opener = compr.get(codec)
    if opener is None:
        package = _OPTIONAL_CODEC_PACKAGES.get(codec, codec)
        raise SourceError(
            f"Cannot read {url}: {codec} decompression needs the {package} package, which is "
            "not installed.",
            hint=f"Install it with: {codec_install_hint(codec)}.",
        )
    stream: Any = _zstd_frames(raw) if codec == "zstd" else None
    if stream is None:
        stream = opener(raw, mode="rb")
    return cast("IO[bytes]", _Decoded(stream, raw, codec, url, truncated_ok))


class StreamError(SourceError):
    """A compressed source that cannot be read on: cut off, or not in its codec's format.

    ``located`` gives the same error naming how far reading got (the NDJSON reader adds the
    line and the decompressed offset it reached), so the operator knows which rows were read.
    """

    def __init__(
        self,
        head: str,
        subject: str,
        tail: str,
        detail: str | None,
        hint: str | None,
        where: str = "",
    ) -> None:
        self.head, self.subject, self.tail = head, subject, tail
        super().__init__(f"{head}{subject}{where}{tail}", detail, hint)

    def located(self, where: str) -> StreamError:
        """This error with ``where`` (e.g. `` at line 12``) after the file's name."""
        return StreamError(self.head, self.subject, self.tail, self.detail, self.hint, where)


_ZSTD_PIECE = 64 * 1024  # compressed bytes decoded at a time


class _ZstdFrames:
    """zstd frames one after another (as ``zstd -c a b`` writes them), decoded from ``raw``.

    The ``zstandard`` package's ``stream_reader`` returns a short read, with no error, when a
    file ends inside a frame; here each frame has its own decompression object, whose ``eof``
    says whether the frame was complete, and a file that ends inside one raises ``EOFError``
    (as gzip, bz2 and lzma do), once the bytes decoded before the cut have been returned.
    """

    __slots__ = ("_buffer", "_cut", "_dctx", "_ended", "_frame", "_pos", "_raw")

    def __init__(self, raw: IO[bytes], dctx: Any) -> None:
        self._raw = raw
        self._dctx = dctx
        self._frame: Any = None  # the open frame's decompression object; None between frames
        self._buffer = b""
        self._pos = 0
        self._ended = False
        self._cut = False

    def _fill(self) -> bool:
        """Decode more into the buffer: False at a clean end, ``EOFError`` inside a frame."""
        while not self._ended:
            data = self._raw.read(_ZSTD_PIECE)
            if not data:
                self._ended = True
                self._cut = self._frame is not None
                break
            out = []
            while data:
                if self._frame is None:
                    self._frame = self._dctx.decompressobj()
                out.append(self._frame.decompress(data))
                if not self._frame.eof:
                    break
                data = self._frame.unused_data  # the next frame starts here
                self._frame = None
            decoded = b"".join(out)
            if decoded:
                self._buffer, self._pos = decoded, 0
                return True
        if self._cut:
            raise EOFError("the file ends inside a zstd frame")
        return False

    def read1(self, size: int = -1) -> bytes:
        if self._pos >= len(self._buffer) and not self._fill():
            return b""
        end = len(self._buffer) if size < 0 else min(len(self._buffer), self._pos + size)
        chunk = self._buffer[self._pos : end]
        self._pos = end
        return chunk

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        got = 0
        while size < 0 or got < size:
            try:
                chunk = self.read1(-1 if size < 0 else size - got)
            except EOFError:
                if not parts:
                    raise
                break  # return what was decoded before the cut; the next read raises
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self._buffer = b""


def _zstd_frames(raw: IO[bytes]) -> _ZstdFrames | None:
    """A frame-checking zstd reader, or None without the ``zstandard`` package (then fsspec's
    own zstd reader is used: the standard library's ``ZstdFile`` checks frames itself)."""
    try:
        import zstandard
    except ImportError:
        return None
    return _ZstdFrames(raw, zstandard.ZstdDecompressor())


class _Decoded:
    """A codec's reader that reports its failures as ``StreamError`` (see ``decompressed``).

    One extra call per block read, not per line: the NDJSON reader reads 64 KiB blocks.
    """

    __slots__ = ("_codec", "_raw", "_stream", "_truncated_ok", "_url", "truncated")

    def __init__(self, stream: Any, raw: IO[bytes], codec: str, url: str, truncated_ok: bool):
        self._stream = stream
        self._raw = raw
        self._codec = codec
        self._url = url
        self._truncated_ok = truncated_ok
        self.truncated = False

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._stream.read(size)
        except EOFError as exc:
            return self._ended_early(exc)
        except Exception as exc:  # zlib.error, OSError, LZMAError, ZstdError…
            raise self._error(exc) from exc
        return data

    def read1(self, size: int = -1) -> bytes:
        """At most one read of the underlying file (nothing decoded is lost at a truncation)."""
        try:
            data: bytes = self._stream.read1(size)
        except EOFError as exc:
            return self._ended_early(exc)
        except Exception as exc:  # zlib.error, OSError, LZMAError, ZstdError…
            raise self._error(exc) from exc
        return data

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._raw.close()

    def _ended_early(self, exc: EOFError) -> bytes:
        if not self._truncated_ok:
            raise StreamError(
                "Cannot read ",
                self._url,
                f": its {self._codec} stream ends before it is complete ({exc}).",
                "The file is truncated, or still being written.",
                "Replace it with the complete file and run elax-plan plan again.",
            ) from exc
        self.truncated = True
        return b""

    def _error(self, exc: BaseException) -> StreamError:
        said = str(exc).strip()
        why = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
        return StreamError(
            "Cannot decompress ",
            f"{self._url} as {self._codec}",
            f": {why}.",
            None,
            "Check source.compression (infer reads it from the file extension).",
        )


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol


def _open_failed(url: str, exc: BaseException) -> SourceError:
    return SourceError(
        f"Cannot open source file {url}: {exc}.",
        hint="Check source.uri and source.storage_options.",
    )


def open_stream(
    url: str, resolved: ResolvedFormat, storage_options: Mapping[str, Any]
) -> IO[bytes]:
    """The file's bytes, decompressed with ``resolved.codec``; seekable when not compressed.

    ``storage_options`` are fsspec's (credentials already revealed). Raises ``SourceError``
    when the file cannot be opened or its codec is not installed.
    """
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options)
        raw: IO[bytes] = fs.open(path, "rb")
    except (FileNotFoundError, OSError, ValueError, ImportError) as exc:
        raise _open_failed(url, exc) from exc
    if resolved.codec is None:
        return raw
    try:
        return decompressed(raw, resolved.codec, url)
    except BaseException:
        raw.close()
        raise


def pyarrow_parquet() -> Any:
    """The ``pyarrow.parquet`` module, or a ``SourceError`` naming the ``[parquet]`` extra."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise SourceError(
            "Reading Parquet sources needs pyarrow, which is not installed.",
            hint=f"Install the Parquet extra: {_PARQUET_INSTALL}",
        ) from exc
    return pq


@contextmanager
def open_parquet(
    url: str, storage_options: Mapping[str, Any], *, block_size: int | None = None
) -> Iterator[Any]:
    """An open ``pyarrow.parquet.ParquetFile`` (its footer read), closed on exit.

    Local files go to Arrow by path: its native reader beats reads through Python. Remote files
    are read through fsspec, in ``block_size`` requests when given.
    """
    import fsspec

    pq = pyarrow_parquet()
    handle: Any = None
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options)
        if _is_local(fs):
            where: Any = path
        else:
            extra = {} if block_size is None else {"block_size": block_size}
            where = handle = fs.open(path, "rb", **extra)
    except (OSError, ValueError, ImportError) as exc:
        raise _open_failed(url, exc) from exc
    try:
        parquet = pq.ParquetFile(where)
    except Exception as exc:  # backends and pyarrow raise many types
        if handle is not None:
            handle.close()
        if isinstance(exc, OSError):
            raise _open_failed(url, exc) from exc
        raise SourceError(  # pyarrow's ArrowInvalid: not a Parquet file
            f"Cannot read {url} as Parquet: {str(exc).strip().rstrip('.')}.",
            hint="Check that it is a Parquet file, or set source.format.",
        ) from exc
    try:
        yield parquet
    finally:
        parquet.close()
        if handle is not None:
            handle.close()
