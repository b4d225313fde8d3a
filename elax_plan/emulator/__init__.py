"""A faithful local elacsym: the HTTP API, storage layout and indexer of CONTRACT.md.

This is the one narrow entry the rest of elax-plan may import. It is an
emulator for tests, benchmarks, the quickstart and rehearsals, not a database
for production. Heavy dependencies (numpy, pyarrow, uvicorn) load only when
one of these names is used.

- ``EmulatorConfig``: layout (store URL, or data root + object store), body cap,
  indexer, compat version, faults.
- ``Emulator``: the in-process server (``start()``/``close()``, or a context manager).
- ``EmbeddedTransport`` / ``AsyncEmbeddedTransport``: httpx transports that answer from it
  (``target.url: embedded``).
- ``serve()``: run it over a real socket until SIGINT/SIGTERM.
- ``compact()`` / ``CompactError``: ``elax-cli compact`` on a data root (the real
  server's only indexer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from elax_plan.emulator.config import COMPAT_VERSIONS, Compat, EmulatorConfig

if TYPE_CHECKING:
    from elax_plan.emulator.app import AsyncEmbeddedTransport, EmbeddedTransport, Emulator
    from elax_plan.emulator.compaction import CompactError, compact
    from elax_plan.emulator.server import serve

__all__ = [
    "COMPAT_VERSIONS",
    "AsyncEmbeddedTransport",
    "CompactError",
    "Compat",
    "EmbeddedTransport",
    "Emulator",
    "EmulatorConfig",
    "compact",
    "serve",
]


def __getattr__(name: str) -> Any:
    if name in ("Emulator", "EmbeddedTransport", "AsyncEmbeddedTransport"):
        from elax_plan.emulator import app

        return getattr(app, name)
    if name == "serve":
        from elax_plan.emulator.server import serve

        return serve
    if name in ("compact", "CompactError"):
        from elax_plan.emulator import compaction

        return getattr(compaction, name)
    raise AttributeError(name)
