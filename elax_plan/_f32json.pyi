"""Type stubs for the C extension elax_plan._f32json (see elax_plan/_f32json.c)."""

from typing import Any, TypeAlias

import numpy as np
from typing_extensions import Buffer

# numpy declares ndarray.__buffer__ only for Python >= 3.12
_Float32Matrix: TypeAlias = np.ndarray[Any, np.dtype[np.float32]] | Buffer

def row_json(matrix: _Float32Matrix, row: int, /) -> bytes | None:
    """The JSON array text of one float32 row, byte-identical to orjson; None if non-finite."""

def row_document(matrix: _Float32Matrix, row: int, prefix: bytes, suffix: bytes, /) -> bytes | None:
    """``prefix + row_json(matrix, row) + suffix`` in one allocation; None if non-finite."""
