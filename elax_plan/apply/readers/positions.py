"""What every source reader yields: a ``RawRow``, where it is, and where reading continues.

Owns the position types shared by the NDJSON and Parquet readers, the chunker, the reject
records and the ledger's checkpoints: ``Location`` (file and line or row), ``ResumePoint``
(what has been consumed; saved in the ledger as ``to_dict``) and ``RawRow``. Must not read
files or decode rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elax_plan.apply.readers.parquet import ParquetRecord

EXCERPT_CHARS = 200
"""How much of an invalid row a reject record quotes."""


# Location and ResumePoint are values: never mutated once built. They are not frozen because
# one of each is built per row on the hot path, and a frozen dataclass's __init__ costs 3x more.


@dataclass(slots=True)
class Location:
    """Where a row is: the file URL and a 1-based ``line`` (NDJSON) or 0-based ``row`` (Parquet)."""

    url: str
    line: int | None = None
    row: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.url}:{self.line}"
        return f"{self.url}: row {self.row}"

    def to_dict(self) -> dict[str, Any]:
        """``{"file": url, "line": n}`` or ``{"file": url, "row": n}``."""
        if self.line is not None:
            return {"file": self.url, "line": self.line}
        return {"file": self.url, "row": self.row}


@dataclass(slots=True)
class ResumePoint:
    """Where reading continues: everything before it has been consumed.

    NDJSON: ``offset`` is the byte offset of the next line (in decompressed bytes for a
    compressed file) and ``line`` the number of lines before it, blank ones included.
    Parquet: ``row`` is the index of the next row. Unused fields stay 0.
    """

    offset: int = 0
    line: int = 0
    row: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"offset": self.offset, "line": self.line, "row": self.row}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ResumePoint:
        return cls(
            offset=int(raw.get("offset", 0)),
            line=int(raw.get("line", 0)),
            row=int(raw.get("row", 0)),
        )


@dataclass(slots=True)
class RawRow:
    """One row as read: its place, the resume point after it, and the decoded record.

    ``record`` is a ``dict`` for NDJSON and a ``ParquetRecord`` for Parquet; it is ``None`` when
    the line could not be decoded, and ``error`` then says why (the row is invalid, not fatal).
    ``text`` is the NDJSON line's bytes (without the newline), ``None`` for Parquet. An NDJSON
    row read with ``decode=False`` has ``record`` and ``error`` both ``None``: it is not decoded
    yet, and ``decode_line`` does it (the row mapper decodes the vector faster on its own).
    Not frozen: one is built per row on the hot path.
    """

    location: Location
    resume: ResumePoint
    record: dict[str, Any] | ParquetRecord | None
    text: bytes | None = None
    error: str | None = None
