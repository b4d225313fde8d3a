"""Where state lives under ``state.uri`` and how its documents are encoded.

Owns the key layout of SPEC §6 (``<plan>/state.json``, ``<plan>/lock.json``,
``<plan>/runs/<run_id>/…``, ``namespaces/<ns>.json``, ``namespaces/<ns>.lock``), the UTC timestamp
format, and the JSON encoding every state document shares (orjson, sorted
keys, secrets redacted before they can reach a file). It does no I/O and must
not know what the documents mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from elax_plan.errors import StateError
from elax_plan.spec.model import RESERVED_PLAN_NAMES
from elax_plan.spec.secrets import redact_value

Clock = Callable[[], float]
"""Seconds since the epoch, like ``time.time``; injectable so tests can move time."""

PLAN_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Milliseconds so that two runs started in the same second still sort in start order; ids
# without them (from earlier builds) stay valid.
RUN_ID = re.compile(r"\d{8}T\d{6}(?:\.\d{3})?Z-[0-9a-f]{6}")


def check_plan_name(plan_name: str) -> str:
    """``plan_name`` if it can name a state folder; a ``StateError`` otherwise."""
    if not PLAN_NAME.fullmatch(plan_name) or plan_name in RESERVED_PLAN_NAMES:
        raise StateError(
            f"The plan name {plan_name!r} cannot name a state folder.",
            "Plan names match [a-z0-9][a-z0-9._-]* and 'namespaces' is reserved for"
            " the namespace records.",
            "Rename the plan (the `name:` key in the plan file).",
        )
    return plan_name


def plan_key(plan_name: str, name: str) -> str:
    """The key of ``name`` (``state.json``, ``lock.json``, …) in the plan's folder."""
    return f"{check_plan_name(plan_name)}/{name}"


def ledger_key(plan_name: str) -> str:
    return plan_key(plan_name, "state.json")


def lock_key(plan_name: str) -> str:
    return plan_key(plan_name, "lock.json")


def runs_prefix(plan_name: str) -> str:
    return plan_key(plan_name, "runs")


def run_key(plan_name: str, run_id: str, name: str) -> str:
    if not RUN_ID.fullmatch(run_id):
        raise StateError(
            f"{run_id!r} is not a run id.",
            "Run ids look like 20261125T190000.123Z-1a2b3c.",
            "Take the id from `elax-plan status` or the runs/ folder of the plan's state.",
        )
    return f"{runs_prefix(plan_name)}/{run_id}/{name}"


def _check_namespace(namespace: str) -> str:
    if not _NAMESPACE.fullmatch(namespace):
        raise StateError(
            f"The namespace {namespace!r} cannot name a state record.",
            None,
            "Use a namespace name without '/' that does not start with '.' (target.namespace).",
        )
    return namespace


def namespace_key(namespace: str) -> str:
    """The namespace record: metric and dims every plan so far wrote into it."""
    return f"namespaces/{_check_namespace(namespace)}.json"


def namespace_lock_key(namespace: str) -> str:
    """The namespace lease: which plan writes into the namespace now (one at a time)."""
    return f"namespaces/{_check_namespace(namespace)}.lock"


def iso(ts: float) -> str:
    """``ts`` as an ISO 8601 UTC timestamp with milliseconds and a ``Z``."""
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """The epoch seconds of an ``iso`` timestamp; ``ValueError`` when malformed."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return moment.timestamp()


def dumps(document: dict[str, Any]) -> bytes:
    """A state document as indented JSON with sorted keys; secrets become ``***``."""
    clean = redact_value(document)
    return orjson.dumps(clean, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def loads_object(data: bytes, location: str, what: str) -> dict[str, Any]:
    """Parse a JSON object or raise a ``StateError`` naming the object and what to do."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StateError(
            f"The {what} at {location} is not valid JSON ({exc}).",
            "It was not written by elax-plan, or was edited by hand.",
            "Restore it from a backup or remove it if no run is active.",
        ) from None
    if not isinstance(raw, dict):
        raise StateError(
            f"The {what} at {location} is not a JSON object.",
            "It was not written by elax-plan, or was edited by hand.",
            "Restore it from a backup or remove it if no run is active.",
        )
    return raw
