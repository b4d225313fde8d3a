"""Write bodies of the wrong shape are 422 with serde's wording, as query bodies are: one
``emulator.serde`` for both (a string is shown escaped, a float as Rust displays it)."""

from __future__ import annotations

from typing import Any

import pytest

from elax_plan.emulator.model import ShapeError
from elax_plan.emulator.serde import PREFIX
from elax_plan.emulator.write_model import parse_write_request


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"upserts": [{"id": "a", "vector": [1, 'x"y']}]},
            'upserts[0].vector[1]: invalid type: string "x\\"y", expected f32',
        ),
        ({"upserts": 1e20}, "upserts: invalid type: floating point `100000000000000000000.0`"),
        ({"deletes": [True]}, "deletes[0]: invalid type: boolean `true`, expected a string"),
        ([], "invalid type: sequence, expected struct WriteBatch"),
    ],
)
def test_wrong_write_shapes_use_serdes_words(body: Any, expected: str) -> None:
    with pytest.raises(ShapeError) as raised:
        parse_write_request("docs", body, "ac782e1")
    assert str(raised.value).startswith(PREFIX + expected), str(raised.value)
