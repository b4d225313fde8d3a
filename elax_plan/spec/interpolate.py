"""``${ENV}``, ``${ENV:-default}`` and ``${var.NAME}`` in plan string values.

Owns the expression grammar, the lookup in the environment and in ``--var``
values, and the bookkeeping the validator needs afterwards: which paths were
interpolated and from which variables (so a message can say "the value from
${X}" instead of printing a value that may be a secret). ``$${`` writes a
literal ``${``. Keys are never interpolated, and it must not interpret the
values it produces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from elax_plan.spec.issues import PlanIssue
from elax_plan.spec.secrets import is_credential_env_name, register_secret
from elax_plan.spec.yaml_loader import Mark, NodePath, format_path

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
_BODY_RE = re.compile(rf"^(?P<var>var\.)?(?P<name>{NAME_PATTERN})(?::-(?P<default>.*))?$", re.S)
_TOKEN_RE = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_VAR_ASSIGNMENT_RE = re.compile(rf"^(?P<name>{NAME_PATTERN})=(?P<value>.*)$", re.S)


@dataclass(slots=True)
class Interpolated:
    """The data after substitution and what the validator must know about it."""

    data: Any
    # path → the references used there, e.g. ("ELAX_API_KEY",) or ("var.region",)
    sources: dict[NodePath, tuple[str, ...]] = field(default_factory=dict)
    # path → the values substituted there, in order (for registering secrets by field;
    # never shown)
    values: dict[NodePath, tuple[str, ...]] = field(default_factory=dict, repr=False)
    issues: list[PlanIssue] = field(default_factory=list)
    used_variables: set[str] = field(default_factory=set)
    # paths whose ${…} could not be resolved (already reported; value left as written)
    failed: set[NodePath] = field(default_factory=set)


def parse_var_assignments(items: Iterable[str]) -> dict[str, str]:
    """``["region=eu", "n=3"]`` → ``{"region": "eu", "n": "3"}``; ``ValueError`` names the bad one.

    The value is never echoed in the error: ``--var`` may carry a secret.
    """
    variables: dict[str, str] = {}
    for item in items:
        match = _VAR_ASSIGNMENT_RE.match(item)
        if match is None:
            name = item.split("=", 1)[0] if "=" in item else None
            if name is None:
                raise ValueError(
                    f"--var expects NAME=VALUE but got an argument without '='; write --var "
                    f"{item[:40]}=VALUE"
                )
            raise ValueError(
                f"--var {name[:40]}=…: the name must start with a letter or '_' and contain only "
                "letters, digits and '_'"
            )
        variables[match["name"]] = match["value"]
    return variables


def interpolate(
    data: Any,
    marks: Mapping[NodePath, Mark],
    *,
    file: str,
    variables: Mapping[str, str],
    env: Mapping[str, str],
) -> Interpolated:
    """Substitute every ``${…}`` in the string values of ``data``; collect every problem."""
    result = Interpolated(data=None)
    context = _Context(marks, file, variables, env, result)
    result.data = _walk(data, (), context)
    return result


@dataclass(frozen=True, slots=True)
class _Context:
    """What every substitution reads (marks, file, lookups) and the result it records into."""

    marks: Mapping[NodePath, Mark]
    file: str
    variables: Mapping[str, str]
    env: Mapping[str, str]
    result: Interpolated

    def issue(self, path: NodePath, offset: int, message: str) -> None:
        """Report ``message`` at the ``${`` that starts ``offset`` characters into the value."""
        mark = self.marks.get(path)
        line = mark.line if mark else None
        column = mark.column if mark else None
        if mark is not None and mark.single_line:
            # Point at the '${' itself when the scalar's text maps 1:1 onto the line.
            if mark.style is None:
                column = mark.column + offset
            elif mark.style in ("'", '"'):
                column = mark.column + 1 + offset
        self.result.issues.append(
            PlanIssue(self.file, message, line, column, format_path(path) or None)
        )


def _walk(value: Any, path: NodePath, context: _Context) -> Any:
    if isinstance(value, str):
        return _substitute(value, path, context)
    if isinstance(value, dict):
        return {k: _walk(v, (*path, k), context) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*path, i), context) for i, v in enumerate(value)]
    return value


def _substitute(text: str, path: NodePath, context: _Context) -> str:
    """``text`` with its references replaced; unchanged (and ``path`` failed) if any fails."""
    if "$" not in text:
        return text
    references: list[str] = []
    substituted: list[str] = []
    out: list[str] = []
    position = 0
    failed = False
    for match in _TOKEN_RE.finditer(text):
        out.append(text[position : match.start()])
        position = match.end()
        if match.group(0) == "$${":
            out.append("${")
            continue
        resolved = _resolve(match["body"], path, match.start(), context)
        if resolved is None:
            failed = True
            continue
        value, reference = resolved
        out.append(value)
        references.append(reference)
        substituted.append(value)
    out.append(text[position:])
    if failed:
        context.result.failed.add(path)
        return text
    if references:
        context.result.sources[path] = tuple(references)
        context.result.values[path] = tuple(substituted)
    return "".join(out)


def _resolve(
    body: str | None, path: NodePath, offset: int, context: _Context
) -> tuple[str, str] | None:
    """The value of one ``${body}`` and its reference (``NAME`` or ``var.NAME``), or None
    after reporting why it has none. ``body`` is None for a ``${`` without its ``}``."""
    if body is None:
        context.issue(
            path, offset, "a '${' without its closing '}'; write ${NAME}, or $${ for a literal '${'"
        )
        return None
    parsed = _BODY_RE.match(body.strip())
    if parsed is None:
        context.issue(
            path,
            offset,
            f"'${{{body[:40]}}}' is not a variable reference; write ${{ENV_NAME}}, "
            "${ENV_NAME:-default} or ${var.NAME}",
        )
        return None
    name, default, is_var = parsed["name"], parsed["default"], parsed["var"] is not None
    if default is not None and "${" in default:
        context.issue(
            path, offset, "a ${…} inside a default value is not supported; give a plain default"
        )
        return None
    if is_var:
        reference = f"var.{name}"
        context.result.used_variables.add(name)
        found = context.variables.get(name)
        missing = (
            f"${{var.{name}}} is not defined; pass --var {name}=VALUE, or write "
            f"${{var.{name}:-default}}"
        )
    else:
        reference = name
        found = context.env.get(name)
        missing = (
            f"the environment variable {name} is not set; export it, or write ${{{name}:-default}}"
        )
    if found is None and default is None:
        context.issue(path, offset, missing)
        return None
    if found and is_credential_env_name(name):
        # A credential-looking variable is scrubbed from all output wherever the
        # plan uses it, even in a key that is not secret (or is misspelt).
        register_secret(found)
    # ":-" means "unset or empty", as in the shell.
    chosen = found if found not in (None, "") else default
    return chosen or "", reference
