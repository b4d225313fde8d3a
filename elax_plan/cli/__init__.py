"""The command line: parse arguments, call one library function, map errors to exit codes.

Each command lives in its own module of this package and registers itself on
``main``. The library never prints; these modules do. A user error
(``ElaxError``) prints ``Error: …`` and exits with its code; anything else is a
bug and prints a short report request (``--debug`` shows the traceback).
"""

from __future__ import annotations

from elax_plan.cli import apply as _apply  # noqa: F401  (registers the command)
from elax_plan.cli import comment as _comment  # noqa: F401  (registers the command)
from elax_plan.cli import emulator as _emulator  # noqa: F401  (registers the command)
from elax_plan.cli import plan as _plan  # noqa: F401  (registers the command)
from elax_plan.cli import state_commands as _state  # noqa: F401  (registers the commands)
from elax_plan.cli import validate as _validate  # noqa: F401  (registers the command)
from elax_plan.cli import wal as _wal  # noqa: F401  (registers the command)
from elax_plan.cli._group import main

__all__ = ["main"]
