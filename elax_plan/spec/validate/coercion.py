"""Interpolated text gets the type the schema wants: ``${CONC:-2}`` means the number 2.

Runs before the schema check. Must not change a value the user wrote literally, or a key
whose schema allows text (an all-digit ``api_key`` stays text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from elax_plan.spec import schema as plan_schema_mod
from elax_plan.spec.validate.checker import set_value_at, value_at
from elax_plan.spec.yaml_loader import NodePath

_INT_RE = re.compile(r"^[-+]?[0-9]+$")
_FLOAT_RE = re.compile(r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$")


def coerce_interpolated(data: dict[str, Any], sources: Iterable[NodePath]) -> dict[str, Any]:
    """Give interpolated text the type the schema wants where it reads as one.

    ``concurrency: ${CONC:-2}`` interpolates to the text "2"; it means the
    number 2. Keys whose schema allows text (``api_key``, sizes) stay text, so
    an all-digit API key is never turned into a number.
    """
    for path in sources:
        node = plan_schema_mod.at(path)
        value = value_at(data, path)
        if node is None or not isinstance(value, str):
            continue
        types = plan_schema_mod.types_of(node)
        if not types or "string" in types:
            continue
        text = value.strip()
        coerced: Any = value
        if "integer" in types and _INT_RE.match(text):
            coerced = int(text)
        elif "number" in types and _FLOAT_RE.match(text):
            coerced = float(text)
        elif "boolean" in types and text.lower() in ("true", "false"):
            coerced = text.lower() == "true"
        elif "null" in types and text in ("", "null", "~"):
            coerced = None
        if coerced is not value:
            set_value_at(data, path, coerced)
    return data
