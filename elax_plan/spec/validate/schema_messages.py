"""The JSON Schema check, with every error rewritten as a sentence with a "did you mean" hint.

Owns running ``schemas/plan.schema.json`` over the plan data and translating each
jsonschema error (unknown key, missing key, wrong type, pattern, enum, bounds…) into plain
words at the node it concerns. No regular expression or schema keyword is ever shown to a
user: every pattern has a sentence in ``PATTERN_MESSAGES`` (a test checks).
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Any

from elax_plan.source_format import UNSUPPORTED_CODECS
from elax_plan.spec import schema as plan_schema_mod
from elax_plan.spec.units import DURATION_PATTERN, SIZE_PATTERN, parse_duration, parse_size
from elax_plan.spec.validate.checker import Checker, path_text, section_text
from elax_plan.spec.yaml_loader import NodePath, format_path

NAME_PATTERN = "^[a-z0-9][a-z0-9._-]*$"
NAMESPACE_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9._-]*$"
URL_PATTERN = r"^(embedded|https?://[^\s/?#]+(/[^\s?#]*)?)$"
BASELINE_URL_PATTERN = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"

# Every pattern in the schema has a sentence here (a test checks), so no
# regular expression is ever shown to a user.
PATTERN_MESSAGES: dict[str, str] = {
    NAME_PATTERN: (
        "must start with a lowercase letter or digit and contain only lowercase letters, "
        "digits, '.', '_' and '-' (e.g. products-reembed-v3)"
    ),
    NAMESPACE_PATTERN: (
        "must be one path segment: letters, digits, '.', '_' and '-', not starting with '.' or '-'"
    ),
    URL_PATTERN: (
        "must be an http:// or https:// URL of the elacsym query node (e.g. "
        "http://127.0.0.1:3000), or embedded for the in-process emulator"
    ),
    BASELINE_URL_PATTERN: (
        "must be an http:// or https:// URL of the baseline elacsym query node (e.g. "
        "http://old-node:8080)"
    ),
    SIZE_PATTERN: "",  # worded by units.parse_size
    DURATION_PATTERN: "",  # worded by units.parse_duration
}

_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "object": "a mapping (key: value lines)",
    "array": "a list",
    "null": "empty",
}

# Design-document names that elacsym's code silently ignores (CONTRACT §3.3, §8.5).
_DESIGN_NAMES = {
    "erq_coarse_bits": "coarse_bits",
    "erq_rerank_bits": "rerank_bits",
    "recall_budget": "rerank_scale",
    "rerank_candidates": "rerank_scale",
}

_FSSPEC_OPTIONS = frozenset(
    {
        "endpoint_url",
        "anon",
        "profile",
        "key",
        "secret",
        "token",
        "client_kwargs",
        "config_kwargs",
        "region",
        "region_name",
        "use_ssl",
    }
)


@functools.cache
def _validator() -> Any:
    # Imported here, not at the top: every command imports elax_plan.spec (the CLI
    # redacts through it), but only those that load a plan need jsonschema.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(plan_schema_mod.plan_schema())


def schema_issues(checker: Checker, data: dict[str, Any]) -> None:
    """Every schema error in ``data``, each worded at its node."""
    for error in _validator().iter_errors(data):
        path: NodePath = tuple(error.absolute_path)
        _translate(checker, path, error.validator, error.validator_value, error.instance, error)


def _translate(
    checker: Checker, path: NodePath, keyword: str, expected: Any, value: Any, error: Any
) -> None:
    where = path_text(path)
    node: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if keyword == "additionalProperties" and isinstance(value, dict):
        allowed = list(node.get("properties", {}))
        for key in value:
            if key not in allowed:
                checker.add((*path, key), _unknown_key(key, path, allowed), at_key=True)
    elif keyword == "required" and isinstance(value, dict):
        for key in expected:
            if key not in value:
                hint = plan_schema_mod.description(node.get("properties", {}).get(key))
                about = f": {hint}" if hint else ""
                checker.add(
                    path,
                    f'missing required key "{key}" {section_text(path)}{about}; add it',
                    at_key=True,
                )
    elif keyword == "type":
        checker.add(path, _type_message(checker, path, node, expected, value))
    elif keyword == "pattern" and isinstance(value, str):
        if value or not node.get("minLength"):  # an empty value gets the minLength message
            checker.add(path, _pattern_message(checker, path, expected, value))
    elif keyword == "enum":
        checker.add(path, _enum_message(checker, path, expected, value))
    elif keyword == "const":
        if path == ("version",):
            checker.add(
                path,
                f"version{checker.shown(path, value)} is not supported: this elax-plan reads "
                "version 1 plans; write version: 1",
            )
        else:  # pragma: no cover - the schema has one const
            checker.add(path, f"{where} must be {expected}")
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "greater than",
            "exclusiveMaximum": "less than",
        }[keyword]
        shown = checker.value_text(path, value) or "this value"
        capped = keyword == "maximum" and path[-1:] in (("top_k",), ("vector_dims",))
        limit = " (elacsym's limit)" if capped else ""
        checker.add(path, f"{where} must be {bound} {expected}{limit}, not {shown}")
    elif keyword == "minLength":
        checker.add(path, f"{where} must not be empty")
    elif keyword == "maxLength":
        checker.add(path, f"{where} is too long: at most {expected} characters")
    elif keyword == "minItems":
        checker.add(
            path, f"{where} needs at least {expected} entr{'y' if expected == 1 else 'ies'}"
        )
    elif keyword == "maxItems":
        checker.add(path, f"{where} has too many entries: at most {expected}")
    elif keyword == "uniqueItems" and isinstance(value, list):
        seen: list[Any] = []
        for index, item in enumerate(value):
            if item in seen:
                checker.add(
                    (*path, index),
                    f"{where} lists the same entry twice{checker.shown((*path, index), item)}; "
                    "remove the repeat",
                )
            seen.append(item)
    else:  # pragma: no cover - every keyword the plan schema uses is handled above
        checker.add(path, f"{where}: {error.message}")


def _enum_message(checker: Checker, path: NodePath, expected: Any, value: Any) -> str:
    options = [o for o in expected if o is not None]
    shown = checker.value_text(path, value) or "this value"
    message = f"{path_text(path)} must be one of {', '.join(map(str, options))}, not {shown}"
    codec = path == ("source", "compression")
    if isinstance(value, str) and not checker.interpolated(path):
        suggestion = _suggest(value, [str(o) for o in options])
        if suggestion and not (codec and value.lower() in UNSUPPORTED_CODECS):
            message += f'; did you mean "{suggestion}"?'
    if codec:
        message += (
            "; elax-plan reads only codecs it can stream and resume inside: decompress other "
            "files, or recompress them with gzip or zstd"
        )
    return message


def _unknown_key(key: str, path: NodePath, allowed: list[str]) -> str:
    section = section_text(path)
    message = f'unknown key "{key}" {section}'
    if path[-1:] == ("ann_params",) and key in _DESIGN_NAMES:
        return (
            f"{message}: it is a design-document name that elacsym ignores; use "
            f'"{_DESIGN_NAMES[key]}"'
        )
    if path in (("target",), ("source",), ("state",)) and key in _FSSPEC_OPTIONS:
        return f"{message}; fsspec options go under {format_path(path)}.storage_options"
    suggestion = _suggest(key, allowed)
    if suggestion and suggestion != key:
        return f'{message}; did you mean "{suggestion}"?'
    homes = [h for h in plan_schema_mod.key_homes().get(key, ()) if h != _schema_section(path)]
    if homes:
        where = " or ".join(h or "the top level" for h in homes)
        return f'{message}; "{key}" belongs under {where}'
    return f"{message}; the keys allowed there are: {', '.join(allowed)}"


def _schema_section(path: NodePath) -> str:
    parts: list[str] = []
    for key in path:
        if isinstance(key, int):
            parts[-1] += "[]"
        else:
            parts.append(key)
    return ".".join(parts)


def _suggest(word: str, candidates: list[str]) -> str | None:
    lowered = {c.lower().replace("-", "_"): c for c in candidates}
    normalised = word.lower().replace("-", "_")
    if normalised in lowered:
        return lowered[normalised]
    matches = difflib.get_close_matches(normalised, list(lowered), n=1, cutoff=0.6)
    return lowered[matches[0]] if matches else None


def _type_message(
    checker: Checker, path: NodePath, node: dict[str, Any], expected: Any, value: Any
) -> str:
    where = path_text(path)
    shown = checker.shown(path, value)
    pattern = node.get("pattern")
    if pattern == SIZE_PATTERN:
        return f"{where}{shown} {_parse_message(parse_size, value)}"
    if pattern == DURATION_PATTERN:
        return f"{where}{shown} {_parse_message(parse_duration, value)}"
    wanted = [expected] if isinstance(expected, str) else list(expected)
    words = [_TYPE_WORDS[t] for t in wanted if t != "null"] or [_TYPE_WORDS["null"]]
    if "integer" in wanted and "number" in wanted:
        words.remove(_TYPE_WORDS["integer"])
    actual = _actual_type(value)
    message = f"{where} must be {' or '.join(words)}, not {actual}{shown}"
    if actual == "empty" and "object" in wanted:
        message += "; write the keys below it, or remove the line"
    elif isinstance(value, str) and "integer" in wanted and not checker.interpolated(path):
        message += "; write the number without quotes"
    elif isinstance(value, dict) and "array" in wanted:
        message += "; list entries start with '- '"
    return message


def _actual_type(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__  # pragma: no cover


def _parse_message(parse: Any, value: Any) -> str:
    try:
        parse(value)
    except ValueError as exc:
        return str(exc)
    return "is not valid"  # pragma: no cover - only called for values the schema refused


def _pattern_message(checker: Checker, path: NodePath, pattern: str, value: str) -> str:
    where = path_text(path)
    shown = checker.shown(path, value)
    if pattern == SIZE_PATTERN:
        return f"{where}{shown} {_parse_message(parse_size, value)}"
    if pattern == DURATION_PATTERN:
        return f"{where}{shown} {_parse_message(parse_duration, value)}"
    if pattern == URL_PATTERN and re.match(r"^\s*https?://[^\s?#]+[?#]", value):
        # The query may carry a token: the value is not quoted.
        part = "a query string (from '?')" if "?" in value else "a fragment (from '#')"
        return (
            f"{where} has {part}; elax-plan appends the API paths (/v2/namespaces/…) to "
            "target.url, so it must be a base URL such as http://127.0.0.1:3000. Remove it"
        )
    sentence = PATTERN_MESSAGES.get(pattern, "has the wrong form")
    message = f"{where}{shown} {sentence}"
    if pattern == URL_PATTERN and not checker.interpolated(path):
        text = value.strip()
        scheme, sep, rest = text.partition("://")
        if not sep:
            if _suggest(text, ["embedded"]):
                message += '; did you mean "embedded"?'
            elif text and " " not in text:
                message += f'; did you mean "http://{text}"?'
        else:
            better = _suggest(scheme, ["http", "https"])
            if better and better != scheme and rest:
                message += f'; did you mean "{better}://{rest}"?'
    return message
