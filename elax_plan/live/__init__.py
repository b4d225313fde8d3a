"""Read-only readers of live state: the elacsym API, its store, and the plan's source.

Everything here observes and nothing here changes anything: no write, move or
delete on the store or the source, no write request to the API, no write to the
state store. The planner consumes the frozen dataclasses of ``elax_plan.live.model``
and ``elax_plan.live.state_view`` (``LiveState``); importing ``model`` (or this
package) loads no I/O library: the readers load on first use. ``live`` sits above
``state``: it uses the state's types and read-only readers, and ``state`` never
imports ``live``.

- ``check_target`` / ``open_client`` / ``TargetClient`` (``target``): ``GET /metrics``
  and an httpx client (or the embedded emulator) for the target.
- ``read_namespace`` / ``StoreReader`` (``store``): ``router.json``, part manifests,
  the WAL listing.
- ``list_source`` / ``count_rows`` / ``sample_source`` / ``read_source`` (``source``):
  the source files, their fingerprints and a bounded sample.
- ``observe`` (``snapshot``): one read of all of the above plus the plan's ledger and
  namespace record, as the planner's ``LiveState``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from elax_plan.live.model import (
    NamespaceLive,
    PartInfo,
    SourceFile,
    SourceListing,
    SourceSample,
    TargetLive,
    WalObject,
    eligible_wal_objects,
)

if TYPE_CHECKING:
    from elax_plan.live.source import count_rows, list_source, read_source, sample_source
    from elax_plan.live.store import StoreReader, read_namespace
    from elax_plan.live.target import TargetClient, check_target, ensure_reachable, open_client

_LAZY = {
    "check_target": "target",
    "ensure_reachable": "target",
    "open_client": "target",
    "TargetClient": "target",
    "read_namespace": "store",
    "StoreReader": "store",
    "list_source": "source",
    "count_rows": "source",
    "sample_source": "source",
    "read_source": "source",
}

__all__ = [
    "NamespaceLive",
    "PartInfo",
    "SourceFile",
    "SourceListing",
    "SourceSample",
    "StoreReader",
    "TargetClient",
    "TargetLive",
    "WalObject",
    "check_target",
    "count_rows",
    "eligible_wal_objects",
    "ensure_reachable",
    "list_source",
    "open_client",
    "read_namespace",
    "read_source",
    "sample_source",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"elax_plan.live.{module}"), name)
