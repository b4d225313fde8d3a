"""The emulator's shared vocabulary: documents in RAM and the errors that map to HTTP answers.

Owns nothing that does I/O. ``Document`` is one row as a query node holds it;
the exceptions decide the status code and body shape of an answer
(CONTRACT §1.2): ``ShapeError`` → 422 plain text, ``BadRequest`` → 400 JSON,
``PreconditionFailed`` → 412 JSON (PR #11 write conditions), ``ServerError``
→ 500 JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


@dataclass(slots=True)
class Document:
    """One live document: string id, optional float32 vector, optional JSON attributes."""

    id: str
    vector: Vector | None
    attributes: Any


class EmulatorError(Exception):
    """Base of the errors an endpoint turns into an HTTP answer."""

    status: int = 500

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ShapeError(EmulatorError):
    """JSON is valid but has the wrong shape: 422 with serde's plain-text message."""

    status = 422


class BadRequest(EmulatorError):
    """A request the server rejects with ``{"error": …}`` and status 400."""

    status = 400


class PreconditionFailed(EmulatorError):
    """A PR #11 write condition failed: ``{"error": …}`` with status 412."""

    status = 412


class ServerError(EmulatorError):
    """Every other failure: ``{"error": …}`` with status 500."""

    status = 500
