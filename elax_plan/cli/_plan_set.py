"""Which plan files a command was given: files, directories and globs, resolved once.

Owns turning the command line's ``PLAN`` arguments into an ordered list of plan files,
so that ``plan``, ``apply`` and ``apply --queue`` read the same set:

- a file is taken as given (a plan file, or for ``apply`` a saved plan);
- a directory stands for every ``*.yaml`` / ``*.yml`` directly in it whose top level
  says ``version: 1`` (other YAML there, such as Kubernetes manifests, is left out);
- an argument with ``*``, ``?`` or ``[`` is a glob (``**`` matches folders at any depth)
  and must match at least one file; what it matches is taken like a file.

The result keeps the arguments' order (each directory's and glob's files sorted by
path) and lists a file once. Nothing is parsed beyond the ``version`` line: the loader
reports a bad plan with its own file:line:col messages. Errors are ``PlanFileError``
naming the argument (exit 1).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from pathlib import Path

from elax_plan.errors import PlanFileError

_VERSION_1 = re.compile(rb"^version:\s*['\"]?1['\"]?\s*(#.*)?$", re.MULTILINE)
_GLOB_CHARS = frozenset("*?[")
_SUFFIXES = (".yaml", ".yml")


def is_plan_file(path: Path) -> bool:
    """Whether ``path`` is a YAML file whose top level says ``version: 1``."""
    if path.suffix not in _SUFFIXES or not path.is_file():
        return False
    try:
        head = path.read_bytes()[:65536]
    except OSError:
        return False
    return _VERSION_1.search(head) is not None


def plans_in(folder: Path) -> list[Path]:
    """The plan files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if is_plan_file(p))


def resolve_plan_args(args: Sequence[str]) -> list[Path]:
    """The plan files ``args`` name (see the module docstring)."""
    if not args:
        raise PlanFileError(
            "No plan given.",
            hint="Name plan files, directories of plans or globs, e.g. `plans/` or "
            "`'plans/**/*.yaml'`.",
        )
    out: list[Path] = []
    seen: set[Path] = set()
    for arg in args:
        for path in _expand(arg):
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                out.append(path)
    return out


def is_glob(arg: str) -> bool:
    """Whether ``arg`` is taken as a glob: it has ``*``, ``?`` or ``[`` and names no file."""
    return any(c in arg for c in _GLOB_CHARS) and not Path(arg).exists()


def _expand(arg: str) -> list[Path]:
    path = Path(arg)
    if is_glob(arg):
        matched = sorted(Path(m) for m in glob.glob(arg, recursive=True))
        plans = [
            m for m in matched if m.is_file() and (m.suffix not in _SUFFIXES or is_plan_file(m))
        ]
        if not plans:
            raise PlanFileError(
                f"{arg} matches no plan file.",
                hint="Quote the glob so the shell does not expand it, and check the path.",
            )
        return plans
    if path.is_dir():
        plans = plans_in(path)
        if not plans:
            raise PlanFileError(
                f"{arg} is a directory with no plan in it (no *.yaml with `version: 1`).",
                hint="Name the plan files, or the directory that holds them.",
            )
        return plans
    return [path]  # a file (or a missing one: the loader says so with its own message)
