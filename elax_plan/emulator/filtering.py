"""Attribute predicates and group keys over JSON attributes, as the real filter crate does.

Owns the meaning of one filter leaf (CONTRACT §3.6: dot paths through objects,
the special ``id`` field, exact JSON equality where ``1`` ≠ ``1.0`` ≠ ``true``,
range ops that fail with ``ServerError`` on a non-number) and the group key of
``group_by`` (§3.7: paths may index arrays, numbers print as serde_json does).

Must not parse requests (``query_model.py``) or decide the query plan
(``search.py``); pure functions over Python JSON values, no I/O.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from elax_plan.emulator.model import Document, ServerError
from elax_plan.emulator.query_model import (
    ExistsFilter,
    Filter,
    MatchFilter,
    RangeFilter,
    SetFilter,
)

_MISSING = object()
_ARRAY_INDEX = re.compile(r"\+?[0-9]+")


def json_equal(a: Any, b: Any) -> bool:
    """serde_json ``Value`` equality: types must agree, so ``1 != 1.0`` and ``1 != true``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, float) and isinstance(b, float):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    return False


def fetch_field(attributes: Any, path: str) -> Any:
    """The value at a dot path through nested objects (arrays are not traversed), or _MISSING."""
    if attributes is None:
        return _MISSING
    current = attributes
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return current


def matches(expr: Filter, doc: Document) -> bool:
    """Whether ``doc`` satisfies ``expr``; a range op on a non-number raises ``ServerError``."""
    if isinstance(expr, MatchFilter):
        if expr.field == "id":
            # Only a JSON string can equal an id; anything else never matches.
            if isinstance(expr.value, str):
                return (doc.id == expr.value) == (expr.op == "eq")
            return expr.op == "not_eq"
        actual = fetch_field(doc.attributes, expr.field)
        found = actual is not _MISSING and json_equal(actual, expr.value)
        return found if expr.op == "eq" else not found
    if isinstance(expr, SetFilter):
        if expr.field == "id":
            hit = any(isinstance(v, str) and v == doc.id for v in expr.values)
        else:
            actual = fetch_field(doc.attributes, expr.field)
            hit = actual is not _MISSING and any(json_equal(v, actual) for v in expr.values)
        return hit if expr.op == "in" else not hit
    if isinstance(expr, RangeFilter):
        # The real code looks up an attribute named `id` here, not the document id.
        actual = fetch_field(doc.attributes, expr.field)
        if actual is _MISSING:
            return False
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            raise ServerError(f"field {expr.field} is not a number")
        value = float(actual)
        if expr.op == "gt":
            return value > expr.value
        if expr.op == "gte":
            return value >= expr.value
        if expr.op == "lt":
            return value < expr.value
        return value <= expr.value
    assert isinstance(expr, ExistsFilter)
    # A JSON null still "exists": the code checks the path, not the value.
    return expr.field == "id" or fetch_field(doc.attributes, expr.field) is not _MISSING


def group_value(attributes: Any, path: str) -> str | None:
    """The ``group_by`` key: strings as-is, numbers as serde_json prints them, booleans."""
    if not path or attributes is None:
        return None
    current = attributes
    for segment in path.split("."):
        if not segment:
            return None
        if isinstance(current, dict):
            if segment not in current:
                return None
            current = current[segment]
        elif isinstance(current, list):
            if not _ARRAY_INDEX.fullmatch(segment):
                return None
            index = int(segment)
            if index >= len(current):
                return None
            current = current[index]
        else:
            return None
    if isinstance(current, str):
        return current
    if isinstance(current, bool):
        return "true" if current else "false"
    if isinstance(current, int):
        return str(current)
    if isinstance(current, float):
        return format_f64(current)
    return None


def format_f64(value: float) -> str:
    """serde_json's (ryu) text for a finite f64: ``1.5``, ``100.0``, ``1e20``, ``1e-7``."""
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    n = len(digits)
    point = n + exponent  # value = 0.DIGITS × 10^point
    if exponent >= 0 and point <= 16:
        text = digits + "0" * exponent + ".0"
    elif 0 < point <= 16:
        text = digits[:point] + "." + digits[point:]
    elif -5 < point <= 0:
        text = "0." + "0" * -point + digits
    elif n == 1:
        text = f"{digits}e{point - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{point - 1}"
    return "-" + text if sign else text
