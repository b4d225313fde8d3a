"""The recall gate's requests: a sample of query vectors split into ``_debug/recall`` calls
that each fit the server's body cap, and the calls' answers combined into one.

Owns the exact bytes of every call's body and the arithmetic of the combination. Vectors are
written as float32 JSON text (``vector_text``: the shortest decimal that reads back as the
same float32): elacsym narrows every number to f32 anyway (CONTRACT §3.10), so nothing is
lost, and a 768-d vector takes ~7–9 KB instead of ~13 KB as 17-digit doubles. The split is
greedy in sample order, and each body's length is that of the bytes sent, never above
``max_request_bytes`` (real elacsym answers 413 past 2 MiB). Combining weights each call's
means by its ``evaluated``, which is what one call over the whole sample would have
averaged. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from elax_plan.apply.vector_text import float32_row_json

MEANS = ("avg_recall", "avg_ann_count", "avg_exhaustive_count")
"""The answer's per-query means (CONTRACT §3.10); ``evaluated`` is their count."""


@dataclass(frozen=True, slots=True)
class RecallCall:
    """One ``_debug/recall`` request: its body as sent and the number of query vectors in it."""

    body: bytes
    queries: int


class VectorTooLarge(ValueError):
    """Even one query vector does not fit in a request under the body cap."""

    def __init__(self, vector_bytes: int, other_bytes: int, max_request_bytes: int) -> None:
        self.vector_bytes = vector_bytes
        self.other_bytes = other_bytes
        self.max_request_bytes = max_request_bytes
        super().__init__(
            f"one query vector takes {vector_bytes:,} bytes as JSON at float32 precision, and "
            f"the request's other fields {other_bytes:,}: more than target.max_request_bytes "
            f"({max_request_bytes:,} bytes)"
        )


def vector_texts(vectors: Sequence[Sequence[float]]) -> list[bytes]:
    """Each vector's JSON array text at float32 precision, as the recall calls send it."""
    out = []
    for i, vector in enumerate(vectors):
        text = float32_row_json(np.ascontiguousarray(vector, dtype=np.float32), 0)
        if text is None:  # rows.py rejects such rows, so a sampled one cannot have it
            raise ValueError(f"query vector {i} holds a NaN or an infinity")
        out.append(text)
    return out


def _head(fields: Mapping[str, Any]) -> bytes:
    """The body up to the first vector: ``{<fields>,"queries":[``."""
    return orjson.dumps(dict(fields))[:-1] + (b"," if fields else b"") + b'"queries":['


def _tail(n: int) -> bytes:
    # `num` goes last and equals the call's vector count: the server caps explicit queries
    # at `num` (CONTRACT §3.10), and its digits are only known once the call is full.
    return b'],"num":' + str(n).encode() + b"}"


def split_calls(
    texts: Sequence[bytes], fields: Mapping[str, Any], max_request_bytes: int
) -> list[RecallCall]:
    """``texts`` (from ``vector_texts``) in order, as few calls as a greedy fill makes, each
    body ``{fields…,"queries":[…],"num":n}`` at most ``max_request_bytes`` long.

    ``fields``: the call's other members (``top_k``, ``metric``, ``ann_params``). Raises
    ``VectorTooLarge`` when one vector alone does not fit.
    """
    head = _head(fields)
    calls: list[RecallCall] = []
    start = 0
    size = len(head)  # the open call's bytes without its tail
    for i, text in enumerate(texts):
        fitted = size + (1 if i > start else 0) + len(text)  # a comma before all but the first
        if fitted + len(_tail(i - start + 1)) <= max_request_bytes:
            size = fitted
            continue
        if i == start:
            raise VectorTooLarge(len(text), len(head) + len(_tail(1)), max_request_bytes)
        calls.append(_call(head, texts[start:i]))
        start = i
        size = len(head) + len(text)
        if size + len(_tail(1)) > max_request_bytes:
            raise VectorTooLarge(len(text), len(head) + len(_tail(1)), max_request_bytes)
    if start < len(texts):
        calls.append(_call(head, texts[start:]))
    return calls


def _call(head: bytes, texts: Sequence[bytes]) -> RecallCall:
    return RecallCall(head + b",".join(texts) + _tail(len(texts)), len(texts))


def combine(answers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One answer for the whole sample: each mean weighted by its call's ``evaluated``.

    One answer is returned as the server sent it (no float round trip); none evaluated,
    or no answers, is all zeros, as the server says for a call that evaluated nothing."""
    if len(answers) == 1:
        only = answers[0]
        return {**{k: float(only.get(k) or 0.0) for k in MEANS}, "evaluated": _evaluated(only)}
    total = sum(_evaluated(a) for a in answers)
    if total == 0:
        return {**dict.fromkeys(MEANS, 0.0), "evaluated": 0}
    means = {k: sum(float(a.get(k) or 0.0) * _evaluated(a) for a in answers) / total for k in MEANS}
    return {**means, "evaluated": total}


def _evaluated(answer: Mapping[str, Any]) -> int:
    return int(answer.get("evaluated") or 0)
