"""In-memory BM25 over text attributes, scored the way the real node's Tantivy index scores.

Owns tokenisation (Tantivy ``default``: split on non-alphanumerics, drop
tokens of 40 bytes or more, lowercase), the choice of indexed fields (every
top-level attribute key whose value is a string or an array holding strings, in
any document), a small subset of Tantivy's query syntax, and BM25 itself
(CONTRACT §3.8): k1 1.2, b 0.75, idf ln(1 + (N − n + 0.5)/(n + 0.5)), document
lengths quantised through Tantivy's fieldnorm code, average length =
tokens in the field / all documents.

Query syntax supported: bare words (OR'd), ``"quoted phrases"``, ``+must`` and
``-must_not`` prefixes, ``AND`` (both neighbours required), ``OR`` (the
default). A word that tokenises into several tokens (``e-mail``) is a phrase,
as in Tantivy. An unbalanced quote raises ``ServerError("failed to parse
Tantivy query: …")``. Other Tantivy syntax (``field:``, ranges, boosts,
fuzziness) is read as plain words.

Must not decide ranking against vectors or apply filters (``search.py``);
built once from a document snapshot, never mutated, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from elax_plan.emulator.model import Document, ServerError

K1 = np.float32(1.2)
B = np.float32(0.75)
_MAX_TOKEN_BYTES = 40  # Tantivy's RemoveLongFilter keeps tokens strictly shorter than this
_VALUE_GAP = 2  # positions skipped between values of an array, so phrases never span them
_TOKEN = re.compile(r"[^\W_]+")  # runs of alphanumerics (str.isalnum), like SimpleTokenizer

Occur = Literal["should", "must", "must_not"]
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def tokenize(text: str) -> list[tuple[int, str]]:
    """``(position, token)`` pairs; a dropped long token still uses up its position."""
    out = []
    for position, match in enumerate(_TOKEN.finditer(text)):
        token = match.group()
        if len(token.encode("utf-8")) < _MAX_TOKEN_BYTES:
            out.append((position, token.lower()))
    return out


def _decode_fieldnorm(code: int) -> int:
    # Tantivy's (and Lucene's) one-byte document length: exact below 24, then 3-bit mantissa.
    if code < 24:
        return code
    rest = code - 24
    bits, shift = rest & 0b111, rest >> 3
    return 24 + (bits if shift == 0 else (bits | 8) << (shift - 1))


_FIELDNORMS = np.array([_decode_fieldnorm(c) for c in range(256)], dtype=np.int64)


def quantized_length(lengths: IntArray) -> IntArray:
    """Document lengths as Tantivy stores them: rounded down to the fieldnorm table."""
    codes = np.searchsorted(_FIELDNORMS, lengths, side="right") - 1
    return np.asarray(_FIELDNORMS[codes], dtype=np.int64)


def idf(doc_freq: int, num_docs: int) -> np.float32:
    """Tantivy's BM25 idf, in f32 like the real scorer."""
    x = (np.float32(num_docs - doc_freq) + np.float32(0.5)) / (
        np.float32(doc_freq) + np.float32(0.5)
    )
    return np.float32(math.log(float(np.float32(1.0) + x)))


@dataclass(slots=True)
class _FieldIndex:
    postings: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    lengths: list[int] = field(default_factory=list)
    cache: FloatArray | None = None  # k1·(1 − b + b·dl/avgdl) per document


@dataclass(frozen=True, slots=True)
class _Clause:
    occur: Occur
    tokens: tuple[str, ...]  # one token: a term query; several: a phrase


class TextIndex:
    """BM25 over one snapshot of documents; document numbers are snapshot positions."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self.num_docs = len(documents)
        names: set[str] = set()
        for doc in documents:
            if isinstance(doc.attributes, dict):
                for key, value in doc.attributes.items():
                    if isinstance(value, str) or (
                        isinstance(value, list) and any(isinstance(v, str) for v in value)
                    ):
                        names.add(key)
        self._fields = {name: _FieldIndex() for name in names}
        for pos, doc in enumerate(documents):
            attrs = doc.attributes if isinstance(doc.attributes, dict) else {}
            for name, index in self._fields.items():
                index.lengths.append(_index_value(index, pos, attrs.get(name)))
        for index in self._fields.values():
            lengths = np.asarray(index.lengths, dtype=np.int64)
            average = np.float32(lengths.sum()) / np.float32(max(self.num_docs, 1))
            norm = quantized_length(lengths).astype(np.float32)
            with np.errstate(all="ignore"):
                index.cache = K1 * (np.float32(1.0) - B + B * norm / average)

    @property
    def fields(self) -> frozenset[str]:
        """Names of the indexed text fields."""
        return frozenset(self._fields)

    def search(self, field_name: str, query: str, top_k: int) -> list[tuple[int, float]]:
        """Top ``top_k`` ``(position, bm25)`` by score desc, then position (Tantivy TopDocs)."""
        index = self._fields.get(field_name)
        clauses = parse_query(query)
        if index is None or top_k <= 0 or not clauses:
            return []
        scores = np.zeros(self.num_docs, dtype=np.float32)
        should_hits = np.zeros(self.num_docs, dtype=bool)
        must_hits = np.ones(self.num_docs, dtype=bool)
        excluded = np.zeros(self.num_docs, dtype=bool)
        has_must = has_positive = False
        for clause in clauses:
            docs, score = self._score(index, clause.tokens)
            if clause.occur == "must_not":
                excluded[docs] = True
                continue
            has_positive = True
            scores[docs] += score
            if clause.occur == "must":
                has_must = True
                hit = np.zeros(self.num_docs, dtype=bool)
                hit[docs] = True
                must_hits &= hit
            else:
                should_hits[docs] = True
        if not has_positive:
            return []  # a purely negative query matches nothing in Tantivy
        matched = (must_hits if has_must else should_hits) & ~excluded
        positions = np.nonzero(matched)[0]
        # Sort by score descending, then by position (Tantivy's doc address order).
        order = np.lexsort((positions, -scores[positions]))[:top_k]
        return [(int(positions[i]), float(scores[positions[i]])) for i in order]

    def _score(self, index: _FieldIndex, tokens: tuple[str, ...]) -> tuple[IntArray, FloatArray]:
        postings = [index.postings.get(t) for t in tokens]
        if any(p is None for p in postings):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        lists = [p for p in postings if p is not None]
        # A phrase's idf is the sum of its terms' idfs (Tantivy's Bm25Weight::for_terms).
        weight = np.float32(0.0)
        for p in lists:
            weight += idf(len(p), self.num_docs)
        weight *= np.float32(1.0) + K1
        if len(lists) == 1:
            docs = np.fromiter(lists[0].keys(), dtype=np.int64, count=len(lists[0]))
            freqs = np.fromiter((len(v) for v in lists[0].values()), np.float32, len(docs))
        else:
            found = [(d, _phrase_count(d, lists)) for d in _common_docs(lists)]
            found = [(d, c) for d, c in found if c > 0]
            docs = np.fromiter((d for d, _ in found), dtype=np.int64, count=len(found))
            freqs = np.fromiter((c for _, c in found), dtype=np.float32, count=len(found))
        assert index.cache is not None
        score = weight * freqs / (freqs + index.cache[docs])
        return docs, score.astype(np.float32)


def _index_value(index: _FieldIndex, pos: int, value: Any) -> int:
    """Add one document's value of a field; returns its token count (the fieldnorm)."""
    texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    offset = count = 0
    for text in texts:
        if not isinstance(text, str):
            continue
        last = -1
        for position, token in tokenize(text):
            index.postings.setdefault(token, {}).setdefault(pos, []).append(offset + position)
            count += 1
            last = position
        offset += last + 1 + _VALUE_GAP
    return count


def _common_docs(lists: list[dict[int, list[int]]]) -> list[int]:
    smallest = min(lists, key=len)
    return [d for d in smallest if all(d in p for p in lists)]


def _phrase_count(doc: int, lists: list[dict[int, list[int]]]) -> int:
    starts = set(lists[0][doc])
    for offset, p in enumerate(lists[1:], start=1):
        starts &= {q - offset for q in p[doc]}
    return len(starts)


def parse_query(query: str) -> list[_Clause]:
    """The clauses of a query text; raises ``ServerError`` on an unbalanced quote."""
    if query.count('"') % 2:
        raise ServerError(f"failed to parse Tantivy query: {query}")
    raw: list[tuple[str, str, bool]] = []  # (prefix, text, quoted)
    for match in re.finditer(r'([+-]?)"([^"]*)"|(\S+)', query):
        if match.group(3) is not None:
            word = match.group(3)
            prefix = word[0] if word[0] in "+-" and len(word) > 1 else ""
            raw.append((prefix, word[len(prefix) :], False))
        else:
            raw.append((match.group(1), match.group(2), True))
    clauses: list[_Clause] = []
    required: set[int] = set()
    for i, (_prefix, text, quoted) in enumerate(raw):
        if not quoted and text == "AND":
            required.update((i - 1, i + 1))
    for i, (prefix, text, quoted) in enumerate(raw):
        if not quoted and text in ("AND", "OR"):
            continue
        tokens = tuple(token for _, token in tokenize(text))
        if not tokens:
            continue
        occur: Occur = "should"
        if prefix == "-":
            occur = "must_not"
        elif prefix == "+" or i in required:
            occur = "must"
        clauses.append(_Clause(occur, tokens))
    return clauses
