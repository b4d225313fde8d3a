"""Row validation and mapping (SPEC §5 step 3): a ``RawRow`` becomes one serialised document.

Owns what a valid row is and the exact JSON bytes of its element of the write body's ``upserts``
array: ``{"id":"…","vector":[…],"attributes":{…}}`` (keys in that order; ``vector`` and
``attributes`` left out when absent). A row that breaks a rule becomes an ``InvalidRow`` whose
``reason`` says what is wrong in plain words.

The rules:

- id: a non-empty string, or an integer (sent as its exact decimal string, however large:
  ``2**70`` is ``"1180591620717411303424"``, never the float a JSON parser rounds it to; a
  Parquet decimal of scale 0 is an integer too). Missing, null, empty, boolean and other ids
  are invalid, and so is a number with a fraction or an exponent (``1.0``, ``1e3``): the
  reason quotes it as written.
- vector (unless ``vector_field`` is None): a non-empty list of numbers, of ``vector_dims``
  numbers when that is set, each finite and within float32 range *before* narrowing: elacsym
  parses f64 and narrows to f32, and a value past float32's range becomes ±inf, which the
  server then writes into its WAL as ``null`` and can never replay (CONTRACT hazard H4).
- attributes: by default every field other than the id and vector fields. ``rename`` maps a
  source field to the attribute name it is written under; ``include`` lists the attribute names
  to keep, *as they are written* (after renaming) — so SPEC §3's ``include: [title, …]`` with
  ``rename: {title_v2: title}`` keeps ``title`` and fills it from ``title_v2``. A source name of a
  renamed field in ``include`` is accepted too. When a field is renamed onto the name of another
  source field, the renamed one wins and the other is dropped (one document holds one ``title``).
  At most 256 names, each at most 128 bytes, and the document at most 64 MiB (elacsym's design
  limits). NDJSON values are kept as written (an explicit ``null`` stays); Parquet nulls mean
  "absent" and are left out, Decimal values are written as numbers, and NaN becomes ``null``.

Vector bytes: for NDJSON the row's own JSON text of the vector is copied into the document once
it is proven to be the very value that was validated (``vector_encoding="source"``, the default:
re-formatting 768 numbers costs more than parsing the whole line). An undecoded line (what apply
reads) takes a fast path first: only the rest of the line is decoded by orjson, and the vector's
text alone is checked without computing its values (C extension ``_json_numbers``; simdjson
parses it into doubles when the extension is missing or the values are re-serialised), so no
Python float is built; any row the fast path cannot prove valid goes through the full decode,
which gives the reason. ``"float32"`` re-serialises
every vector at float32 precision instead: bodies ~45 % smaller for sources written with 17-digit
floats (fewer requests and WAL files), at about half the throughput. Parquet vectors are always
serialised from float32 numpy arrays. Either way elacsym narrows to the same float32 values.

Must not: read files, decide chunking (the 2 MiB request cap is the chunker's rule), or apply the
reject policy.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import orjson
import simdjson

from elax_plan.apply.readers import (
    EXCERPT_CHARS,
    Location,
    ParquetBatch,
    ParquetRecord,
    RawRow,
    ResumePoint,
    VectorColumn,
    decode_line,
)
from elax_plan.apply.vector_text import float32_row_document, float32_row_json

_ARRAY_LENGTH: Callable[[memoryview], int] | None = None
try:
    from elax_plan._json_numbers import float32_array_length

    _ARRAY_LENGTH = float32_array_length
except ImportError:  # built without a C compiler: simdjson checks the numbers instead
    pass

FLOAT32_LIMIT = 3.4028235677973366e38
"""2**128 - 2**103: the smallest magnitude that float64 → float32 narrowing turns into ±inf."""

MAX_ATTRIBUTES = 256
MAX_ATTRIBUTE_NAME_BYTES = 128
MAX_DOCUMENT_BYTES = 64 << 20

VectorEncoding = Literal["source", "float32"]

_MISSING: Any = object()
_UNSEEN: Any = object()
_MAX_LEARNED_NAMES = 10_000  # cap on cached field names, for sources whose keys are data
_COLON_BRACKET = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*\[")
_VECTOR = b',"vector":'
_NO_MATRIX: np.ndarray[Any, Any] = np.empty((0, 0), dtype=np.float32)
_SQUARED_LIMIT = 1e76  # below FLOAT32_LIMIT**2: a sum of squares under it bounds every element


@dataclass(slots=True)
class MappedRow:
    """A valid row: its place, the resume point after it, its id and its serialised document."""

    location: Location
    resume: ResumePoint
    id: str
    document: bytes


@dataclass(slots=True)
class InvalidRow:
    """A row that cannot be written: where, why, a short excerpt, and the resume point after it."""

    location: Location
    resume: ResumePoint
    reason: str
    raw_excerpt: str


class _Invalid(Exception):
    """Internal: raised by the checks with the reason; ``map`` turns it into an ``InvalidRow``."""


@dataclass(slots=True)
class _BatchPlan:
    """Per-batch work for Parquet rows, done once for all rows of the batch."""

    ids: list[Any] | None
    vectors: VectorColumn | None
    good: list[bool] | None  # rows whose vector passed, when known (then float32 is set)
    float32: np.ndarray[Any, Any]  # the batch's vectors as a C-contiguous float32 matrix
    attributes: list[dict[str, Any]] | None
    attribute_error: str | None
    drop_nulls: bool


class RowMapper:
    """Validates ``RawRow``s and serialises the valid ones (see the module docstring for rules)."""

    def __init__(
        self,
        id_field: str = "id",
        vector_field: str | None = "vector",
        include: Iterable[str] | None = None,
        rename: Mapping[str, str] | None = None,
        vector_dims: int | None = None,
        *,
        vector_encoding: VectorEncoding = "source",
    ) -> None:
        self.id_field = id_field
        self.vector_field = vector_field
        self.include = None if include is None else tuple(include)
        self.rename = dict(rename or {})
        self.vector_dims = vector_dims
        self.vector_encoding = vector_encoding
        keep = None
        if self.include is not None:
            keep = set(self.include)
            keep.update(self.rename[name] for name in self.include if name in self.rename)
        self._keep = keep
        self._rename_targets = set(self.rename.values())
        self._names: dict[str, str | None] = {id_field: None}
        if vector_field is not None:
            self._names[vector_field] = None
        self._short_names: set[str] = set()  # attribute names known to be within the limit
        self._every_field = self._keep is None and not self.rename
        self._source_numbers = vector_encoding == "source"
        # Source text passed through needs only its shape and range checked, not its values.
        self._array_length = _ARRAY_LENGTH if self._source_numbers else None
        self._vector_key = orjson.dumps(vector_field) if vector_field is not None else b""
        self._parser = simdjson.Parser()
        self._missing_id = (
            "id is missing" if id_field == "id" else f'id is missing (no "{id_field}" field)'
        )
        self._missing_vector = (
            "vector is missing"
            if vector_field == "vector"
            else f'vector is missing (no "{vector_field}" field)'
        )

    @property
    def columns(self) -> list[str] | None:
        """The source columns a row needs (for Parquet column pruning); None means all."""
        if self._keep is None:
            return None
        wanted = [self.id_field]
        if self.vector_field is not None:
            wanted.append(self.vector_field)
        wanted.extend(sorted(self._keep))
        wanted.extend(src for src, dst in self.rename.items() if dst in self._keep)
        return list(dict.fromkeys(wanted))

    def attribute_name(self, field: str) -> str | None:
        """The attribute name a source field is written under, or None if it is not written."""
        name = self._names.get(field, _UNSEEN)
        if name is _UNSEEN:
            name = self._learn(field)
        return name  # type: ignore[no-any-return]

    def _learn(self, field: str) -> str | None:
        name = self.rename.get(field)
        if name is None:
            # A field that another field is renamed onto is shadowed by it.
            name = None if field in self._rename_targets else field
        if name is not None and self._keep is not None and name not in self._keep:
            name = None
        if len(self._names) < _MAX_LEARNED_NAMES:
            self._names[field] = name
        return name

    # --- the entry point --------------------------------------------------------------------

    def map(self, raw: RawRow) -> MappedRow | InvalidRow:
        """``raw`` as a ``MappedRow`` with its document, or an ``InvalidRow`` with the reason."""
        record = raw.record
        try:
            if type(record) is dict:
                doc_id, document = self._map_dict(record, raw.text)
            elif isinstance(record, ParquetRecord):
                doc_id, document = self._map_parquet(record)
            elif raw.error is None and raw.text is not None:
                doc_id, document = self._map_line(raw.text)
            else:
                raise _Invalid(raw.error or "row could not be decoded")
        except _Invalid as exc:
            return InvalidRow(raw.location, raw.resume, str(exc), excerpt(raw))
        if len(document) > MAX_DOCUMENT_BYTES:
            return InvalidRow(
                raw.location,
                raw.resume,
                f"document is {len(document):,} bytes, more than elacsym's 64 MiB limit",
                excerpt(raw),
            )
        return MappedRow(raw.location, raw.resume, doc_id, document)

    # --- NDJSON -----------------------------------------------------------------------------

    def _map_line(self, line: bytes) -> tuple[str, bytes]:
        """An undecoded line: the fast path when it can prove the row valid, else the full one."""
        if self.vector_field is not None:
            fast = self._fast_line(line)
            if fast is not None:
                return fast
        record, error = decode_line(line)
        if record is None:
            raise _Invalid(error or "row could not be decoded")
        return self._map_dict(record, line)

    def _fast_line(self, line: bytes) -> tuple[str, bytes] | None:
        """The row's id and document without building 768 Python floats, or None to fall back.

        The vector's text span is cut out; the rest of the line, with ``0`` in the span's
        place, is decoded by orjson and must hold that ``0`` under the vector key at its top
        level — so the span is the value a full decode would give that key. The span alone is
        checked by the C extension ``_json_numbers`` (JSON numbers, count, float32 range, no
        values computed) when it is passed through as written, else parsed by simdjson into a
        buffer of doubles. Anything unusual (invalid JSON, a wrong length, a non-number, a
        value out of float32 range, a second vector key) returns None: the full path then finds
        the exact reason.
        """
        found = self._vector_span(line)
        if found is None:
            return None
        at, start, end = found
        record = _decode_with(line, start, end, b"0")
        if record is None:
            return None
        placed = record.pop(self.vector_field, None)
        if type(placed) is not int or placed != 0:  # exactly the 0 put there, not False or 0.0
            return None
        if not _plainly_top_level(line, self._vector_key, at, end):
            # The 0 might be another value of the key that happens to be 0: with 1 in the
            # span's place the key must read 1, or the span is not the key's value.
            other = _decode_with(line, start, end, b"1")
            placed = None if other is None else other.get(self.vector_field)
            if type(placed) is not int or placed != 1:
                return None
        span = memoryview(line)[start:end]
        vector: bytes | memoryview
        if self._array_length is not None:
            count = self._array_length(span)
            if count <= 0 or count != (self.vector_dims or count):
                return None
            vector = span
        else:
            numbers = self._parsed_numbers(span)
            if numbers is None:
                return None
            vector = span if self._source_numbers else _vector_json(numbers.astype(np.float32))
        # An invalid id raises the reason the full path gives (it checks the id first, and
        # the vector is valid by now).
        doc_id, id_json = self._id(record.pop(self.id_field, _MISSING), line)
        attributes = record if self._every_field else self._attributes(record)
        return doc_id, self._document(id_json, vector, attributes)

    def _parsed_numbers(self, span: memoryview) -> np.ndarray[Any, np.dtype[np.float64]] | None:
        """The vector's values as doubles if ``span`` is a valid vector for this plan, else None."""
        try:
            parsed = self._parser.parse(span)
            if type(parsed) is not simdjson.Array:
                return None
            numbers = np.frombuffer(parsed.as_buffer(of_type="d"), dtype=np.float64)
        except (ValueError, TypeError, RuntimeError):  # not JSON, not numbers, a huge integer
            return None
        del parsed  # the parser is reused for the next row only once its proxies are gone
        count = len(numbers)
        if count == 0 or count != (self.vector_dims or count):
            return None
        # JSON has no NaN or Infinity, and simdjson refuses numbers past float64's range, so
        # every element is finite; a small sum of squares bounds them all at once.
        if not numbers.dot(numbers) < _SQUARED_LIMIT and not np.abs(numbers).max() < FLOAT32_LIMIT:
            return None
        return numbers

    def _map_dict(self, record: dict[str, Any], line: bytes | None) -> tuple[str, bytes]:
        doc_id, id_json = self._id(record.get(self.id_field, _MISSING), line)
        vector_text: bytes | memoryview | None = None
        if self.vector_field is not None:
            vector = record.get(self.vector_field, _MISSING)
            if (
                type(vector) is not list
                or not vector
                or len(vector) != (self.vector_dims or len(vector))
            ):
                raise _Invalid(self._bad_vector(vector))
            # One C-speed pass checks every element is a number and bounds them all: the
            # Euclidean norm is at least the largest magnitude. Only a failure walks the list.
            try:
                in_range = math.hypot(*vector) < FLOAT32_LIMIT
            except (TypeError, OverflowError):
                in_range = False
            if not in_range:
                _check_numbers(vector)
            if line is not None and self._source_numbers:
                vector_text = self._source_span(line, vector)
            if vector_text is None:
                vector_text = _float32_text(vector, line)
        if self._every_field:
            attributes = record.copy()
            attributes.pop(self.id_field, None)
            if self.vector_field is not None:
                attributes.pop(self.vector_field, None)
        else:
            attributes = self._attributes(record)
        return doc_id, self._document(id_json, vector_text, attributes)

    def _attributes(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record's fields that are written, under their attribute names."""
        names = self._names
        attributes = {}
        for key, value in record.items():
            name = names.get(key, _UNSEEN)
            if name is _UNSEEN:
                name = self._learn(key)
            if name is not None:
                attributes[name] = value
        return attributes

    def _document(
        self, id_json: bytes, vector_text: bytes | memoryview | None, attributes: dict[str, Any]
    ) -> bytes:
        parts: list[bytes | memoryview] = [b'{"id":', id_json]
        if vector_text is not None:
            parts.append(b',"vector":')
            parts.append(vector_text)
        if attributes:
            if len(attributes) > MAX_ATTRIBUTES or not self._short_names.issuperset(attributes):
                self._check_names(attributes)
            parts.append(b',"attributes":')
            parts.append(orjson.dumps(attributes))
        parts.append(b"}")
        return b"".join(parts)

    def _bad_vector(self, vector: Any) -> str:
        if vector is _MISSING:
            return self._missing_vector
        if vector is None:
            return "vector is null"
        if type(vector) is not list:
            return f"vector must be a list of numbers, got {_describe(vector)}"
        if not vector:
            return "vector is empty"
        return f"vector has {len(vector)} numbers, expected {self.vector_dims}"

    def _source_span(self, line: bytes, vector: list[Any]) -> memoryview | None:
        """The bytes of ``line`` that orjson decoded into ``vector``, or None if not proven."""
        found = self._vector_span(line)
        if found is None:
            return None
        at, start, end = found
        if line.find(b"t", start, end) >= 0 or line.find(b"f", start, end) >= 0:
            _check_no_bools(vector)  # "true"/"false" are the only JSON tokens with t or f
        # The span must be exactly the value orjson kept for the top-level key, not a nested key,
        # text inside a string, or one of two duplicate keys. Full proof, when the quick one
        # fails: with the span replaced by 0, the row must decode with 0 as its vector (the
        # vector decoded is a list, so no other 0 can stand in). It re-parses only the rest.
        if not _plainly_top_level(line, self._vector_key, at, end):
            rest = _decode_with(line, start, end, b"0")
            placed = None if rest is None else rest.get(self.vector_field)
            if type(placed) is not int or placed != 0:
                return None
        return memoryview(line)[start:end]

    def _vector_span(self, line: bytes) -> tuple[int, int, int] | None:
        """Where the vector key's array is in ``line``: (key offset, start, end of the array).

        Textual only: the first occurrence of the key followed by ``:`` and ``[``; the callers
        prove it is the top-level key's value.
        """
        key = self._vector_key
        at = line.find(key)
        if at < 0:
            return None
        if line.startswith(b":[", at + len(key)):  # the usual compact form
            start = at + len(key) + 1
        else:
            bracket = _COLON_BRACKET.match(line, at + len(key))
            while bracket is None:  # the name appeared as a string value first: look further
                at = line.find(key, at + 1)
                if at < 0:
                    return None
                bracket = _COLON_BRACKET.match(line, at + len(key))
            start = bracket.end() - 1
        end = line.find(b"]", start) + 1  # the elements are numbers: the first "]" closes it
        if end == 0:
            return None
        return at, start, end

    # --- Parquet ----------------------------------------------------------------------------

    def _map_parquet(self, record: ParquetRecord) -> tuple[str, bytes]:
        batch = record.batch
        plan = batch.memo.get(self)
        if plan is None:
            plan = self._plan(batch)
            batch.memo[self] = plan
        i = record.index
        doc_id, id_json = self._id(plan.ids[i] if plan.ids is not None else _MISSING)
        fast = self.vector_field is not None and plan.good is not None and plan.good[i]
        vector_text = None
        if self.vector_field is not None and not fast:
            vector_text = self._array_vector(plan.vectors, i)  # raises with the reason
        if plan.attribute_error is not None:
            raise _Invalid(plan.attribute_error)
        tail = b"}"
        if plan.attributes is not None:
            attributes = plan.attributes[i]
            if plan.drop_nulls:
                attributes = {k: v for k, v in attributes.items() if v is not None}
            if attributes:
                try:
                    text = orjson.dumps(attributes, default=_json_default)
                except TypeError as exc:
                    raise _Invalid(f"an attribute value cannot be written as JSON: {exc}") from None
                tail = b',"attributes":' + text + b"}"
        if fast:
            # The whole document in one allocation: the vector's text is most of it.
            document = float32_row_document(plan.float32, i, b'{"id":' + id_json + _VECTOR, tail)
            assert document is not None  # a row that passed is finite
            return doc_id, document
        if vector_text is None:
            return doc_id, b'{"id":' + id_json + tail
        return doc_id, b"".join((b'{"id":', id_json, _VECTOR, vector_text, tail))

    def _plan(self, batch: ParquetBatch) -> _BatchPlan:
        ids = batch.column(self.id_field) if batch.has(self.id_field) else None
        vectors = good = None
        float32 = _NO_MATRIX
        if self.vector_field is not None and batch.has(self.vector_field):
            vectors = batch.vectors(self.vector_field)
            good, float32 = self._batch_vectors(vectors)
        attributes = None
        attribute_error = None
        drop_nulls = False
        sources = [n for n in batch.names if self.attribute_name(n) is not None]
        if sources:
            names = [self.attribute_name(n) or n for n in sources]
            if len(names) > MAX_ATTRIBUTES:
                attribute_error = f"more than {MAX_ATTRIBUTES} attribute names ({len(names)})"
            elif long := [n for n in names if len(n.encode()) > MAX_ATTRIBUTE_NAME_BYTES]:
                attribute_error = _long_name(long[0])
            else:
                selected = batch.batch.select(sources).rename_columns(names)
                attributes = selected.to_pylist()
                drop_nulls = any(column.null_count for column in selected.columns)
        return _BatchPlan(ids, vectors, good, float32, attributes, attribute_error, drop_nulls)

    def _batch_vectors(
        self, vectors: VectorColumn
    ) -> tuple[list[bool] | None, np.ndarray[Any, Any]]:
        """Which rows of a uniform batch pass, and the batch as float32, in a few numpy calls.

        Rows are serialised one at a time when mapped: formatting a whole batch up front holds
        megabytes of text in fresh memory, and the page faults cost more than it saves.
        """
        matrix = vectors.matrix
        if matrix is None or vectors.error is not None:
            return None, _NO_MATRIX
        rows, dims = matrix.shape
        if dims == 0 or (self.vector_dims is not None and dims != self.vector_dims):
            return None, _NO_MATRIX  # every row fails; the per-row path says why
        good: np.ndarray[Any, np.dtype[np.bool_]] = np.asarray(_in_range(matrix).all(axis=1))
        if vectors.row_null is not None:
            good &= ~vectors.row_null
        if vectors.item_null is not None:
            good &= ~vectors.item_null[: rows * dims].reshape(rows, dims).any(axis=1)
        if matrix.dtype != np.float32:
            with np.errstate(over="ignore"):  # failing rows only; their text is never used
                matrix = matrix.astype(np.float32)
        return good.tolist(), np.ascontiguousarray(matrix)

    def _array_vector(self, vectors: VectorColumn | None, i: int) -> bytes:
        """The per-row path for Parquet vectors: the reason a vector fails, or its bytes."""
        if vectors is None:
            raise _Invalid(self._missing_vector)
        if vectors.error is not None:
            raise _Invalid(f"vector {vectors.error}")
        row = vectors.row(i)
        if row is None:
            raise _Invalid("vector is null")
        count = len(row)
        if count == 0:
            raise _Invalid("vector is empty")
        if self.vector_dims is not None and count != self.vector_dims:
            raise _Invalid(f"vector has {count} numbers, expected {self.vector_dims}")
        nulls = vectors.null_items(i)
        if nulls.size:
            raise _Invalid(f"vector[{int(nulls[0])}] is null, not a number")
        bad = np.flatnonzero(~_in_range(row))
        if bad.size:
            k = int(bad[0])
            raise _Invalid(_bad_number(k, float(row[k])))
        return _vector_json(np.ascontiguousarray(row, dtype=np.float32))

    # --- shared checks ----------------------------------------------------------------------

    def _id(self, value: Any, line: bytes | None = None) -> tuple[str, bytes]:
        if type(value) is int:
            value = str(value)
        elif type(value) is not str or not value:
            value = self._exact_id(value, line)
        return value, orjson.dumps(value)

    def _exact_id(self, value: Any, line: bytes | None) -> str:
        """An id that is not a plain string or int: its exact integer digits, or the reason.

        orjson decodes an integer beyond 64 bits as a float, and so a float id may be an
        integer as written (2**70): the line's own text of the number decides. A number with
        a fraction or an exponent (``1.0``, ``1e3``) is not an integer id, and the reason
        quotes it as written. A Decimal (Parquet decimal columns) is an id when integral at
        scale 0 or above.
        """
        if type(value) is float and line is not None:
            written = _id_as_written(line, self.id_field)
            if type(written) is int:
                return str(written)
            if isinstance(written, _NumberText):
                kind = "a fraction" if "." in written else "an exponent"
                raise _Invalid(
                    f"id must be a string or an integer, got {written} (a number with {kind})"
                )
        if isinstance(value, Decimal) and value.is_finite():
            exponent = value.as_tuple().exponent
            if isinstance(exponent, int) and exponent >= 0:
                return str(int(value))
            raise _Invalid(f"id must be a string or an integer, got the decimal {value}")
        raise _Invalid(self._bad_id(value))

    def _bad_id(self, value: Any) -> str:
        if value is _MISSING:
            return self._missing_id
        if value is None:
            return "id is null"
        if value == "":
            return "id is empty"
        return f"id must be a string or an integer, got {_describe(value)}"

    def _check_names(self, attributes: dict[str, Any]) -> None:
        if len(attributes) > MAX_ATTRIBUTES:
            raise _Invalid(f"more than {MAX_ATTRIBUTES} attribute names ({len(attributes)})")
        for name in attributes:
            if len(name.encode()) > MAX_ATTRIBUTE_NAME_BYTES:
                raise _Invalid(_long_name(name))
            if len(self._short_names) < _MAX_LEARNED_NAMES:
                self._short_names.add(name)


def excerpt(raw: RawRow) -> str:
    """At most ``EXCERPT_CHARS`` characters of the row as read, never the whole of a huge row."""
    if raw.text is not None:
        text = raw.text[: EXCERPT_CHARS * 4].decode("utf-8", "replace").strip()
        truncated = len(raw.text) > EXCERPT_CHARS * 4 or len(text) > EXCERPT_CHARS
        return text[:EXCERPT_CHARS] + ("…" if truncated else "")
    if isinstance(raw.record, ParquetRecord):
        return raw.record.excerpt()
    return ""


class _NumberText(str):
    """A JSON number with a fraction or an exponent, as written (see ``_id_as_written``)."""


def _id_as_written(line: bytes, id_field: str) -> Any:
    """The id of ``line`` decoded by the standard library: exact ints, other numbers as text.

    The slow path for the rare id that orjson gave as a float; None if the line does not
    decode (it did with orjson, so only in odd cases such as a lone surrogate).
    """
    try:
        record = json.loads(line, parse_float=_NumberText)
    except (ValueError, RecursionError):
        return None
    return record.get(id_field) if type(record) is dict else None


def _decode_with(line: bytes, start: int, end: int, filler: bytes) -> dict[Any, Any] | None:
    """``line`` decoded with ``filler`` in place of ``line[start:end]``; None unless an object."""
    view = memoryview(line)
    try:
        record = orjson.loads(b"".join((view[:start], filler, view[end:])))
    except orjson.JSONDecodeError:
        return None
    return record if type(record) is dict else None


def _plainly_top_level(line: bytes, key: bytes, at: int, end: int) -> bool:
    """The quick proof that ``key`` at ``at`` (its value ending at ``end``) is the top-level key.

    It holds for the usual line: before the key nothing opens a container and no string has an
    escape (so every quote delimits, and an even count puts the key outside strings, at depth
    1); after the value the key does not appear again and nothing is escaped (no duplicate key,
    not even one spelled with escapes). False means "not proven", not "not top-level".
    """
    opening = line.find(b"{")
    return (
        line.find(b"{", opening + 1, at) < 0
        and line.find(b"[", opening, at) < 0
        and line.find(b"\\", 0, at) < 0
        and line.count(b'"', 0, at) % 2 == 0
        and line.find(key, end) < 0
        and line.find(b"\\", end) < 0
    )


def _check_numbers(vector: list[Any]) -> None:
    """Raise with the first element that is not a number within float32 range, if any."""
    for i, value in enumerate(vector):
        kind = type(value)
        if kind is float or kind is int:
            number = float(value) if kind is float or abs(value) < 1 << 1000 else math.inf
            if not abs(number) < FLOAT32_LIMIT:
                raise _Invalid(_bad_number(i, number))
        else:
            raise _Invalid(f"vector[{i}] is {_describe(value)}, not a number")


def _float32_text(vector: list[Any], line: bytes | None) -> bytes:
    """The vector re-serialised at float32 precision (its numbers are already checked)."""
    if line is None or b"true" in line or b"false" in line:
        _check_no_bools(vector)  # hypot takes booleans as 1 and 0; JSON does not
    # struct packs a list of Python floats into doubles 2.5x faster than np.array(list) does.
    packed = np.frombuffer(struct.pack(f"{len(vector)}d", *vector), dtype=np.float64)
    return _vector_json(packed.astype(np.float32))


def _vector_json(vector: np.ndarray[Any, Any]) -> bytes:
    """The text of a finite float32 vector (1-d, C-contiguous), its range already checked."""
    text = float32_row_json(vector, 0)
    assert text is not None  # finite: checked before narrowing
    return text


def _check_no_bools(vector: list[Any]) -> None:
    for i, value in enumerate(vector):
        if type(value) is bool:
            raise _Invalid(f"vector[{i}] is {_describe(value)}, not a number")


def _in_range(values: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which numbers are finite and survive narrowing to float32 (NaN, ±inf and 1e39 do not)."""
    finite_is_enough = values.dtype == np.float32
    out: np.ndarray[Any, np.dtype[np.bool_]] = (
        np.isfinite(values) if finite_is_enough else np.abs(values) < FLOAT32_LIMIT
    )
    return out


def _bad_number(i: int, value: float) -> str:
    if math.isnan(value):
        return f"vector[{i}] is NaN, not a finite number"
    if math.isinf(value):
        return f"vector[{i}] is {'-' if value < 0 else ''}Infinity, not a finite number"
    return f"vector[{i}] is {value!r}, outside float32 range"


def _long_name(name: str) -> str:
    shown = name if len(name) <= 40 else name[:40] + "…"
    return f"attribute name longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes: {shown}"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"the string {orjson.dumps(shown).decode()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not a JSON type")
