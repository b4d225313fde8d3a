"""The arguments every plan-reading command shares: ``PLAN.yaml`` and ``--var NAME=VALUE``.

Owns turning them into a ``PlanSpec`` via ``elax_plan.spec.load_plan`` so that
``validate``, ``plan``, ``apply``, ``status``… read a plan identically. It must
not print; errors are raised as ``PlanFileError`` (exit 1), never as click
usage errors (whose exit code 2 means "changes pending" for ``plan``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from elax_plan.errors import PlanFileError
from elax_plan.spec import PlanSpec, load_plan, parse_var_assignments

F = TypeVar("F", bound=Callable[..., Any])


def plan_argument(func: F) -> F:
    """The positional ``PLAN.yaml`` argument (checked by the loader, not by click)."""
    return click.argument("plan_file", metavar="PLAN.yaml")(func)


def var_option(func: F) -> F:
    """Repeatable ``--var NAME=VALUE``, read by ``${var.NAME}`` in the plan."""
    return click.option(
        "--var",
        "var_items",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set ${var.NAME} in the plan (repeatable).",
    )(func)


def parse_vars(var_items: Sequence[str]) -> dict[str, str]:
    """``--var`` values as a mapping; a malformed one is a ``PlanFileError``."""
    try:
        return parse_var_assignments(var_items)
    except ValueError as exc:
        raise PlanFileError(str(exc)) from None


def load_plan_from_cli(plan_file: str, var_items: Sequence[str]) -> PlanSpec:
    """``load_plan`` with the command line's ``--var`` values."""
    return load_plan(plan_file, parse_vars(var_items))
