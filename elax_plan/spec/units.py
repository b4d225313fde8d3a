"""Sizes and durations as plan files write them: ``1MiB``, ``5MB``, ``500ms``, ``1h30m``.

Owns the grammar of both (the regular expressions the JSON Schema publishes
are these constants; a test keeps them equal) and the conversion to bytes and
seconds. It must not know where a value came from: callers attach the file
position to the ``ValueError`` message this module raises.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

# Kept in step with "$defs/size" and "$defs/duration" in plan.schema.json (tested).
SIZE_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([KkMmGgTt][Ii]?[Bb]|[Bb])?\s*$"
DURATION_PATTERN = r"^\s*([0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d)\s*)+$"

_SIZE_RE = re.compile(r"^\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)\s*$")
_DURATION_PART_RE = re.compile(r"\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>ms|s|m|h|d)\s*")

_SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_DURATION_UNITS: dict[str, Decimal] = {
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
}

# No size a plan may hold comes near this many digits; beyond it, parsing is refused
# outright (Python refuses to convert integers of more than 4,300 digits anyway).
_MAX_SIZE_DIGITS = 64

SIZE_HINT = "write a size such as 1MiB, 512KiB, 5MB or a whole number of bytes"
DURATION_HINT = "write a duration such as 500ms, 2s, 15m, 1h or 1h30m"


def parse_size(value: object) -> int:
    """Return ``value`` in bytes: an int is bytes; a string is a number and a unit.

    Units are decimal (``KB`` = 1000) or binary (``KiB`` = 1024), any letter case.
    Raises ``ValueError`` for anything else; its message is a predicate ("is not a
    size; write …") that never repeats the value, because the value may have come
    from an environment variable holding a secret.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"is not a size; {SIZE_HINT}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"is negative; {SIZE_HINT}")
        return value
    match = _SIZE_RE.match(value)
    if match is None:
        raise ValueError(f"is not a size; {SIZE_HINT}")
    unit = match["unit"].lower() or "b"
    if unit not in _SIZE_UNITS:
        raise ValueError(f"has an unknown size unit; {SIZE_HINT}")
    if len(match["number"]) > _MAX_SIZE_DIGITS:
        raise ValueError(f"is far too large to be a size; {SIZE_HINT}")
    # Exact arithmetic: Decimal's 28 digits would round a huge size before it is judged.
    total = Fraction(match["number"]) * _SIZE_UNITS[unit]
    if total.denominator != 1:
        raise ValueError(f"is not a whole number of bytes; {SIZE_HINT}")
    return total.numerator


def parse_duration(value: object) -> float:
    """Return ``value`` in seconds; it must carry units (``500ms``, ``2s``, ``15m``, ``1h30m``).

    A bare number is refused on purpose: ``poll_interval: 500`` could mean
    milliseconds or seconds, and guessing wrong is silent.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"is not a duration; {DURATION_HINT}")
    if isinstance(value, int | float):
        raise ValueError(
            f"has no unit; {DURATION_HINT} (a bare number could mean seconds or milliseconds)"
        )
    text = value.strip()
    if not text:
        raise ValueError(f"is empty; {DURATION_HINT}")
    position = 0
    total = Decimal(0)
    while position < len(text):
        match = _DURATION_PART_RE.match(text, position)
        if match is None or match.end() == position:
            if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
                raise ValueError(
                    f"has no unit; {DURATION_HINT} (a bare number could mean seconds or "
                    "milliseconds)"
                )
            raise ValueError(f"is not a duration; {DURATION_HINT}")
        try:
            total += Decimal(match["number"]) * _DURATION_UNITS[match["unit"]]
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
            raise ValueError(f"is not a duration; {DURATION_HINT}") from exc
        position = match.end()
    return float(total)


def format_size(num_bytes: int) -> str:
    """Render bytes the way a plan would write them (``1MiB``, ``1.5GiB``, ``512B``).

    Integer arithmetic only, so a huge count shows its digits, not a float's.
    """
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if num_bytes >= factor:
            hundredths = (num_bytes * 100 + factor // 2) // factor
            text = f"{hundredths // 100}.{hundredths % 100:02d}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{num_bytes}B"


def format_duration(seconds: float) -> str:
    """Render seconds compactly (``500ms``, ``2s``, ``15m``, ``1h30m``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    remaining = round(seconds, 3)
    parts: list[str] = []
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60)):
        whole = int(remaining // factor)
        if whole:
            parts.append(f"{whole}{unit}")
            remaining -= whole * factor
    if remaining or not parts:
        text = f"{remaining:.3f}".rstrip("0").rstrip(".")
        parts.append(f"{text}s")
    return "".join(parts)
