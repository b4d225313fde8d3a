"""serde_json's view of a JSON value, for the emulator's 422 messages.

Owns the one prefix the real server puts before every body error, serde's ``Unexpected``
wording, Rust's float display, and the primitive readers (``usize``, ``u8``, ``bool``, ``f32``,
string, enum variant, ``Vec<f32>``) that raise ``ShapeError`` with the path serde reports.
Used by the query, recall and write models and the body decoder.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np

from elax_plan.emulator.model import ShapeError, Vector

PREFIX = "Failed to deserialize the JSON body into the target type: "
U8_MAX = 255
U64_MAX = 2**64 - 1


def rust_float(value: float) -> str:
    # Rust's `Display` for f64 never uses an exponent; serde appends ".0" to integral values.
    if math.isnan(value) or math.isinf(value):
        return str(value)
    text = np.format_float_positional(value, trim="-")
    return text if "." in text else text + ".0"


def unexpected(value: Any, *, content: bool = False) -> str:
    """serde's ``Unexpected`` wording; inside buffered content (filters) null is a unit value."""
    if value is None:
        return "unit value" if content else "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{rust_float(value)}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def shape_error(path: str, message: str) -> ShapeError:
    return ShapeError(f"{PREFIX}{path}: {message}" if path else f"{PREFIX}{message}")


def invalid_type(path: str, value: Any, expected: str, *, content: bool = False) -> ShapeError:
    return shape_error(
        path, f"invalid type: {unexpected(value, content=content)}, expected {expected}"
    )


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- primitive readers --------------------------------------------------------------------


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def unsigned(path: str, value: Any, name: str, maximum: int) -> int:
    if not is_int(value):
        raise invalid_type(path, value, name)
    if value < 0 or value > maximum:
        raise shape_error(path, f"invalid value: integer `{value}`, expected {name}")
    return int(value)


def usize(path: str, value: Any) -> int:
    return unsigned(path, value, "usize", U64_MAX)


def opt_usize(path: str, value: Any) -> int | None:
    return None if value is None else usize(path, value)


def opt_u8(path: str, value: Any) -> int | None:
    return None if value is None else unsigned(path, value, "u8", U8_MAX)


def boolean(path: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise invalid_type(path, value, "a boolean")


def f32(path: str, value: Any) -> float:
    if is_number(value):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # out-of-range narrows to ±inf
            return float(np.float32(value))
    raise invalid_type(path, value, "f32")


def string(path: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise invalid_type(path, value, "a string")


def variant(path: str, value: Any, variants: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        # serde_json's deserialize_enum answers anything but a string or map this way.
        raise shape_error(path, "expected value")
    if value not in variants:
        if len(variants) == 2:
            expected = f"`{variants[0]}` or `{variants[1]}`"
        else:
            expected = "one of " + ", ".join(f"`{v}`" for v in variants)
        raise shape_error(path, f"unknown variant `{value}`, expected {expected}")
    return value


def f32_array(path: str, raw: Any) -> Vector:
    """A plain JSON array of numbers narrowed to float32 (serde ``Vec<f32>``)."""
    if not isinstance(raw, list):
        raise invalid_type(path, raw, "a sequence")
    for i, item in enumerate(raw):
        if not is_number(item):
            raise invalid_type(f"{path}[{i}]", item, "f32")
    return narrow_f32(raw)


def narrow_f32(numbers: list[Any]) -> Vector:
    # Each number goes f64 → f32 like `value as f32`; overflow becomes ±inf, no error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.asarray(numbers, dtype=np.float64).astype(np.float32)
    out.flags.writeable = False
    return out
