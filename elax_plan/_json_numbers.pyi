"""Type stubs for the C extension elax_plan._json_numbers (see elax_plan/_json_numbers.c)."""

from typing_extensions import Buffer

def float32_array_length(text: Buffer, /) -> int:
    """The element count if ``text`` is certainly a JSON array of numbers within float32 range,
    else -1 (not certain: decode it)."""
