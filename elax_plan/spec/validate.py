"""Is this plan valid? Every problem at once, each at its node, in plain words.

Owns the three checks a plan goes through after YAML and interpolation:
the JSON Schema (``schemas/plan.schema.json``), whose errors are rewritten
into sentences with "did you mean" hints; the secret rules (credentials only
from interpolation); and the semantic rules the schema cannot express
(``resume_wal_lag ≤ max_wal_lag``, ``chunk_bytes ≤ max_request_bytes``, state
outside the store's ``namespaces/``…). It must not build ``PlanSpec`` objects
(``build`` does) and never quotes a value that came from interpolation: that
value may be a secret.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from elax_plan.spec import schema as plan_schema_mod
from elax_plan.spec.issues import PlanIssue
from elax_plan.spec.locations import is_local, is_within, join, resolve_location, scheme_of
from elax_plan.spec.model import RESERVED_PLAN_NAMES
from elax_plan.spec.secrets import is_credential_name, register_secret
from elax_plan.spec.units import (
    DURATION_PATTERN,
    SIZE_PATTERN,
    format_size,
    parse_duration,
    parse_size,
)
from elax_plan.spec.yaml_loader import Mark, NodePath, format_path

MIN_REQUEST_BYTES = 1024
MAX_ATTRIBUTE_NAME_BYTES = 128

NAME_PATTERN = "^[a-z0-9][a-z0-9._-]*$"
NAMESPACE_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9._-]*$"
URL_PATTERN = r"^(embedded|https?://[^\s/?#]+(/\S*)?)$"

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
_SECRET_OPTION_SECTIONS = (("target",), ("source",), ("state",))
_URL_PATHS: tuple[NodePath, ...] = (("target", "url"), ("target", "store"), ("state", "uri"))


@functools.cache
def _validator() -> Any:
    # Imported here, not at the top: every command imports elax_plan.spec (the CLI
    # redacts through it), but only those that load a plan need jsonschema.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(plan_schema_mod.plan_schema())


class _Checker:
    """Collects issues for one document; knows where every node is and how to show it."""

    def __init__(
        self,
        file: str,
        marks: Mapping[NodePath, Mark],
        sources: Mapping[NodePath, tuple[str, ...]],
    ) -> None:
        self.file = file
        self.marks = marks
        self.sources = sources
        self.issues: list[PlanIssue] = []
        self.flagged: set[NodePath] = set()
        self.silenced: frozenset[NodePath] = frozenset()

    def add(self, path: NodePath, message: str, *, at_key: bool = False) -> None:
        if path in self.silenced:
            # Its ${…} already failed; the raw "${X}" text is not the user's value.
            return
        line, column = self.position(path, at_key=at_key)
        self.flagged.add(path)
        self.issues.append(PlanIssue(self.file, message, line, column, format_path(path) or None))

    def position(self, path: NodePath, *, at_key: bool = False) -> tuple[int | None, int | None]:
        probe = path
        while True:
            mark = self.marks.get(probe)
            if mark is not None:
                if at_key or probe != path:
                    return mark.key_position
                return mark.line, mark.column
            if not probe:
                return (1, 1) if self.marks else (None, None)
            probe = probe[:-1]

    def interpolated(self, path: NodePath) -> bool:
        return path in self.sources

    def value_text(self, path: NodePath, value: Any) -> str | None:
        """``"four"`` for a literal; ``the value from ${X}`` when interpolated; else ``None``.

        An interpolated value is never shown: it may be a secret.
        """
        refs = self.sources.get(path)
        if refs:
            names = ", ".join(f"${{{r}}}" for r in refs)
            return f"the value from {names}"
        if _is_secret_path(path):
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str):
            text = value if len(value) <= 40 else value[:37] + "..."
            return f'"{text}"'
        return None

    def shown(self, path: NodePath, value: Any) -> str:
        """`` ("four")`` / `` (the value from ${X})`` to follow a key path; ``""`` if hidden."""
        text = self.value_text(path, value)
        return f" ({text})" if text else ""


def _is_secret_path(path: NodePath) -> bool:
    if path[-1:] == ("api_key",):
        return True
    return "storage_options" in path and any(
        isinstance(p, str) and is_credential_name(p) for p in path
    )


def _where(path: NodePath) -> str:
    return format_path(path) or "the plan"


def _section(path: NodePath) -> str:
    return f"in {format_path(path)}" if path else "at the top level"


# --------------------------------------------------------------------------- entry point


def check(
    data: Any,
    marks: Mapping[NodePath, Mark],
    sources: Mapping[NodePath, tuple[str, ...]],
    *,
    file: str,
    base_dir: Path,
    silenced: Iterable[NodePath] = (),
) -> tuple[dict[str, Any] | None, list[PlanIssue]]:
    """Validate ``data`` (YAML already interpolated); return it with defaults, and the issues.

    The data is ``None`` when there are issues. ``base_dir`` resolves relative
    local paths for the location checks. Paths in ``silenced`` (their
    interpolation failed and was reported) get no further issues.
    """
    checker = _Checker(file, marks, sources)
    checker.silenced = frozenset(silenced)
    if data is None:
        checker.issues.append(
            PlanIssue(
                file,
                "the file is empty; a plan needs at least version, name, target, source and "
                "state (start from plans/quickstart.yaml)",
                1,
                1,
            )
        )
        return None, checker.issues
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        checker.add(
            (),
            f"the plan must be a mapping of keys (version: 1, name: …), but the file holds {kind}",
        )
        return None, checker.issues
    data = _coerce_interpolated(data, sources)
    _schema_issues(checker, data)
    _secret_issues(checker, data)
    defaulted: dict[str, Any] = plan_schema_mod.apply_defaults(data)
    _semantic_issues(checker, defaulted, base_dir)
    if checker.issues:
        return None, checker.issues
    return defaulted, []


# --------------------------------------------------------------------------- coercion


_INT_RE = re.compile(r"^[-+]?[0-9]+$")
_FLOAT_RE = re.compile(r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$")


def _coerce_interpolated(data: dict[str, Any], sources: Iterable[NodePath]) -> dict[str, Any]:
    """Give interpolated text the type the schema wants where it reads as one.

    ``concurrency: ${CONC:-2}`` interpolates to the text "2"; it means the
    number 2. Keys whose schema allows text (``api_key``, sizes) stay text, so
    an all-digit API key is never turned into a number.
    """
    for path in sources:
        node = plan_schema_mod.at(path)
        value = _get(data, path)
        if node is None or not isinstance(value, str):
            continue
        types = plan_schema_mod.types_of(node)
        if not types or "string" in types:
            continue
        text = value.strip()
        coerced: Any = value
        if "integer" in types and _INT_RE.match(text):
            coerced = int(text)
        elif "number" in types and _FLOAT_RE.match(text):
            coerced = float(text)
        elif "boolean" in types and text.lower() in ("true", "false"):
            coerced = text.lower() == "true"
        elif "null" in types and text in ("", "null", "~"):
            coerced = None
        if coerced is not value:
            _set(data, path, coerced)
    return data


def _get(data: Any, path: NodePath) -> Any:
    for key in path:
        in_list = isinstance(key, int) and isinstance(data, list) and 0 <= key < len(data)
        in_dict = isinstance(key, str) and isinstance(data, dict) and key in data
        if not (in_list or in_dict):
            return None
        data = data[key]
    return data


def _set(data: Any, path: NodePath, value: Any) -> None:
    parent = _get(data, path[:-1])
    if isinstance(parent, dict | list):
        parent[path[-1]] = value  # type: ignore[index]


# --------------------------------------------------------------------------- schema


def _schema_issues(checker: _Checker, data: dict[str, Any]) -> None:
    for error in _validator().iter_errors(data):
        path: NodePath = tuple(error.absolute_path)
        _translate(checker, path, error.validator, error.validator_value, error.instance, error)


def _translate(
    checker: _Checker, path: NodePath, keyword: str, expected: Any, value: Any, error: Any
) -> None:
    where = _where(path)
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
                    f'missing required key "{key}" {_section(path)}{about}; add it',
                    at_key=True,
                )
    elif keyword == "type":
        checker.add(path, _type_message(checker, path, node, expected, value))
    elif keyword == "pattern" and isinstance(value, str):
        checker.add(path, _pattern_message(checker, path, expected, value))
    elif keyword == "enum":
        options = [o for o in expected if o is not None]
        shown = checker.value_text(path, value) or "this value"
        message = f"{where} must be one of {', '.join(map(str, options))}, not {shown}"
        if isinstance(value, str) and not checker.interpolated(path):
            suggestion = _suggest(value, [str(o) for o in options])
            if suggestion:
                message += f'; did you mean "{suggestion}"?'
        checker.add(path, message)
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
        limit = " (elacsym's limit)" if path[-1:] in (("top_k",), ("vector_dims",)) else ""
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


def _unknown_key(key: str, path: NodePath, allowed: list[str]) -> str:
    section = _section(path)
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
    checker: _Checker, path: NodePath, node: dict[str, Any], expected: Any, value: Any
) -> str:
    where = _where(path)
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


def _pattern_message(checker: _Checker, path: NodePath, pattern: str, value: str) -> str:
    where = _where(path)
    shown = checker.shown(path, value)
    if pattern == SIZE_PATTERN:
        return f"{where}{shown} {_parse_message(parse_size, value)}"
    if pattern == DURATION_PATTERN:
        return f"{where}{shown} {_parse_message(parse_duration, value)}"
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


# --------------------------------------------------------------------------- secrets


def _secret_issues(checker: _Checker, data: dict[str, Any]) -> None:
    api_key = _get(data, ("target", "api_key"))
    path: NodePath = ("target", "api_key")
    if isinstance(api_key, str) and api_key and not checker.interpolated(path):
        checker.add(
            path,
            "target.api_key is written in the plan file; secrets may only come from the "
            "environment: write api_key: ${ELAX_API_KEY} and export ELAX_API_KEY",
        )
    elif isinstance(api_key, str) and api_key:
        register_secret(api_key)
    for section in _SECRET_OPTION_SECTIONS:
        options = _get(data, (*section, "storage_options"))
        if isinstance(options, dict):
            _check_options(checker, (*section, "storage_options"), options)
    for url_path in _URL_PATHS:
        _check_url_password(checker, url_path, _get(data, url_path))
    uris = _get(data, ("source", "uri"))
    if isinstance(uris, str):
        _check_url_password(checker, ("source", "uri"), uris)
    elif isinstance(uris, list):
        for index, uri in enumerate(uris):
            _check_url_password(checker, ("source", "uri", index), uri)


def _check_options(checker: _Checker, path: NodePath, options: dict[str, Any]) -> None:
    for key, value in options.items():
        child: NodePath = (*path, key)
        if isinstance(value, dict):
            _check_options(checker, child, value)
            continue
        if not is_credential_name(key) or value in (None, "", False):
            continue
        if checker.interpolated(child) and isinstance(value, str):
            register_secret(value)
            continue
        checker.add(
            child,
            f"{_where(child)} looks like a credential written in the plan file; secrets may "
            f"only come from the environment: write {key}: ${{SOME_ENV_VAR}} and export it",
        )


def _check_url_password(checker: _Checker, path: NodePath, url: Any) -> None:
    if not isinstance(url, str) or "@" not in url:
        return
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if not password:
        return
    if checker.interpolated(path):
        register_secret(password)
        return
    checker.add(
        path,
        f"{_where(path)} has a password written in the URL; secrets may only come from the "
        "environment: write the password part as ${SOME_ENV_VAR}",
    )


# --------------------------------------------------------------------------- semantics

_NDJSON_EXTENSIONS = (".ndjson", ".jsonl", ".json")
_PARQUET_EXTENSIONS = (".parquet", ".parq", ".pq")
_COMPRESSION_EXTENSIONS = (".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz", ".lzma", ".lz4", ".zip")


def source_format_from(uri: str) -> str | None:
    """``ndjson``/``parquet`` from a URI's extension (compression suffix ignored), or ``None``."""
    lowered = uri.lower().rstrip("/")
    for suffix in _COMPRESSION_EXTENSIONS:
        if lowered.endswith(suffix):
            lowered = lowered.removesuffix(suffix)
            break
    if lowered.endswith(_NDJSON_EXTENSIONS):
        return "ndjson"
    if lowered.endswith(_PARQUET_EXTENSIONS):
        return "parquet"
    return None


def _semantic_issues(checker: _Checker, d: dict[str, Any], base_dir: Path) -> None:
    name = d.get("name")
    if isinstance(name, str) and name in RESERVED_PLAN_NAMES:
        checker.add(
            ("name",),
            f"name {name!r} is reserved: <state.uri>/{name}/ holds the namespace records; "
            "choose another plan name",
        )
    _size_checks(checker, d)
    _duration_checks(checker, d)
    _throttle_checks(checker, d)
    _ingest_checks(checker, d)
    _source_checks(checker, d)
    _verify_checks(checker, d)
    _location_checks(checker, d, base_dir)


def _size(checker: _Checker, d: dict[str, Any], path: NodePath) -> int | None:
    value = _get(d, path)
    if value is None or isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        if path not in checker.flagged:
            checker.add(path, f"{_where(path)}{checker.shown(path, value)} {exc}")
        return None


def _duration(checker: _Checker, d: dict[str, Any], path: NodePath) -> float | None:
    value = _get(d, path)
    if not isinstance(value, str):
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        if path not in checker.flagged:
            checker.add(path, f"{_where(path)}{checker.shown(path, value)} {exc}")
        return None


def _size_checks(checker: _Checker, d: dict[str, Any]) -> None:
    chunk_path: NodePath = ("ingest", "chunk_bytes")
    cap_path: NodePath = ("target", "max_request_bytes")
    chunk = _size(checker, d, chunk_path)
    cap = _size(checker, d, cap_path)
    budget_path: NodePath = ("preconditions", "store_budget")
    budget = _size(checker, d, budget_path)
    for path, value in ((chunk_path, chunk), (cap_path, cap)):
        if value is not None and value < MIN_REQUEST_BYTES:
            checker.add(
                path,
                f"{_where(path)} is {value} bytes, below the minimum of 1KiB; a request must "
                "hold at least one row (write e.g. 1MiB)",
            )
    if chunk is not None and cap is not None and chunk > cap and chunk >= MIN_REQUEST_BYTES:
        checker.add(
            chunk_path,
            f"ingest.chunk_bytes ({format_size(chunk)}) is above target.max_request_bytes "
            f"({format_size(cap)}); the server would refuse such requests (413). Lower chunk_bytes "
            "to at most max_request_bytes",
        )
    if budget is not None and budget == 0:
        checker.add(
            budget_path,
            "preconditions.store_budget is 0, so no backfill can fit; give a budget such as "
            "50GiB, or remove the key for no budget check",
        )


def _duration_checks(checker: _Checker, d: dict[str, Any]) -> None:
    for path in (
        ("target", "timeout"),
        ("ingest", "retry", "initial"),
        ("ingest", "retry", "max"),
        ("throttle", "poll_interval"),
        ("throttle", "stall_timeout"),
        ("verify", "index_timeout"),
    ):
        seconds = _duration(checker, d, path)
        if seconds is not None and seconds <= 0:
            checker.add(path, f"{_where(path)} must be longer than 0 (e.g. 1s)")
    _duration(checker, d, ("wal_trim", "older_than"))
    initial = _duration_quiet(d, ("ingest", "retry", "initial"))
    longest = _duration_quiet(d, ("ingest", "retry", "max"))
    if initial is not None and longest is not None and 0 < longest < initial:
        checker.add(
            ("ingest", "retry", "max"),
            "ingest.retry.max is shorter than ingest.retry.initial; the longest backoff must be "
            "at least the first one",
        )


def _duration_quiet(d: dict[str, Any], path: NodePath) -> float | None:
    value = _get(d, path)
    if not isinstance(value, str):
        return None
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _int(d: dict[str, Any], path: NodePath) -> int | None:
    value = _get(d, path)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _throttle_checks(checker: _Checker, d: dict[str, Any]) -> None:
    high = _int(d, ("throttle", "max_wal_lag"))
    low = _int(d, ("throttle", "resume_wal_lag"))
    if high is not None and low is not None and low > high:
        checker.add(
            ("throttle", "resume_wal_lag"),
            f"throttle.resume_wal_lag ({low}) must be ≤ throttle.max_wal_lag ({high}): writes "
            "pause above max_wal_lag and resume at or below resume_wal_lag",
        )
    poll = _duration_quiet(d, ("throttle", "poll_interval"))
    stall = _duration_quiet(d, ("throttle", "stall_timeout"))
    if poll is not None and stall is not None and 0 < stall < poll:
        checker.add(
            ("throttle", "stall_timeout"),
            "throttle.stall_timeout is shorter than throttle.poll_interval; a stall could be "
            "declared before the lag is polled once. Raise stall_timeout",
        )


def _ingest_checks(checker: _Checker, d: dict[str, Any]) -> None:
    mode = _get(d, ("ingest", "on_invalid_row"))
    limit = _int(d, ("ingest", "max_invalid_rows"))
    if mode == "fail" and limit:
        checker.add(
            ("ingest", "max_invalid_rows"),
            "ingest.max_invalid_rows only applies with on_invalid_row: skip (with fail, the "
            "first invalid row stops the run); set on_invalid_row: skip or remove "
            "max_invalid_rows",
        )


def _source_checks(checker: _Checker, d: dict[str, Any]) -> None:
    source = _get(d, ("source",))
    if not isinstance(source, dict):
        return
    raw_uris = source.get("uri")
    uris: list[tuple[NodePath, str]] = []
    if isinstance(raw_uris, str):
        uris = [(("source", "uri"), raw_uris)]
    elif isinstance(raw_uris, list):
        uris = [(("source", "uri", i), u) for i, u in enumerate(raw_uris) if isinstance(u, str)]
        seen: set[str] = set()
        for path, uri in uris:
            if uri in seen:
                checker.add(path, f"source.uri lists {uri!r} twice; remove the repeat")
            seen.add(uri)
    fmt = source.get("format")
    if fmt is None and uris:
        found = {source_format_from(uri) for _, uri in uris}
        if None in found:
            path = next(p for p, u in uris if source_format_from(u) is None)
            checker.add(
                path,
                "cannot tell the source format from this URI's extension; set source.format: "
                "ndjson or source.format: parquet",
            )
        elif len(found) > 1:
            checker.add(
                ("source", "uri"),
                "source.uri mixes NDJSON and Parquet files; one plan reads one format. Split "
                "it into two plans, or set source.format",
            )
        else:
            fmt = found.pop()
    compression = source.get("compression")
    if fmt == "parquet" and compression not in (None, "infer", "none"):
        checker.add(
            ("source", "compression"),
            "source.compression applies to NDJSON files only (Parquet compresses inside the "
            "file); remove it",
        )
    id_field = source.get("id_field")
    vector_field = source.get("vector_field")
    reserved = {f for f in (id_field, vector_field) if isinstance(f, str)}
    attributes = source.get("attributes")
    if isinstance(attributes, dict):
        include = attributes.get("include")
        if isinstance(include, list):
            for index, name in enumerate(include):
                path = ("source", "attributes", "include", index)
                if name in reserved:
                    checker.add(
                        path,
                        f'"{name}" is the id or vector field, which is sent as the document\'s '
                        "id/vector, not as an attribute; remove it from include",
                    )
                _check_attribute_name(checker, path, name)
        rename = attributes.get("rename")
        if isinstance(rename, dict):
            targets: dict[str, str] = {}
            for old, new in rename.items():
                path = ("source", "attributes", "rename", old)
                if old in reserved:
                    checker.add(
                        path,
                        f'"{old}" is the id or vector field; it cannot be renamed into an '
                        "attribute (set source.id_field / source.vector_field instead)",
                        at_key=True,
                    )
                if isinstance(new, str):
                    if new in reserved:
                        checker.add(
                            path,
                            f'renaming "{old}" to "{new}" would collide with the id or vector '
                            "field; pick another attribute name",
                        )
                    elif new in targets:
                        checker.add(
                            path,
                            f'"{old}" and "{targets[new]}" are both renamed to "{new}"; each '
                            "attribute name can come from one field only",
                        )
                    targets.setdefault(new, old)
                    _check_attribute_name(checker, path, new)
    if vector_field is None:
        _no_vector_checks(checker, d)


def _check_attribute_name(checker: _Checker, path: NodePath, name: Any) -> None:
    if isinstance(name, str) and len(name.encode()) > MAX_ATTRIBUTE_NAME_BYTES:
        checker.add(
            path,
            f"the attribute name is {len(name.encode())} bytes; elacsym's design limit is "
            f"{MAX_ATTRIBUTE_NAME_BYTES} bytes. Use a shorter name",
        )


def _no_vector_checks(checker: _Checker, d: dict[str, Any]) -> None:
    reason = "but source.vector_field is null (rows without vectors)"
    if _get(d, ("target", "vector_dims")) is not None:
        checker.add(
            ("target", "vector_dims"),
            f"target.vector_dims is set {reason}; remove vector_dims or set source.vector_field",
        )
    queries = _get(d, ("verify", "smoke_queries"))
    if isinstance(queries, list):
        for index, query in enumerate(queries):
            if isinstance(query, dict) and query.get("sample_vectors") is not None:
                path = ("verify", "smoke_queries", index, "sample_vectors")
                checker.add(path, f"sample_vectors needs vectors from the source {reason}")
    if _get(d, ("verify", "recall")) is not None:
        checker.add(
            ("verify", "recall"),
            f"a recall gate samples query vectors from the source {reason}; remove "
            "verify.recall or set source.vector_field",
            at_key=True,
        )


def _verify_checks(checker: _Checker, d: dict[str, Any]) -> None:
    dims = _int(d, ("target", "vector_dims"))
    queries = _get(d, ("verify", "smoke_queries"))
    if isinstance(queries, list):
        names: dict[str, int] = {}
        for index, query in enumerate(queries):
            if isinstance(query, dict):
                _smoke_checks(checker, ("verify", "smoke_queries", index), query, dims, names)
    recall = _get(d, ("verify", "recall"))
    if isinstance(recall, dict):
        path: NodePath = ("verify", "recall", "ann_params")
        params = recall.get("ann_params")
        if isinstance(params, dict):
            _ann_checks(checker, path, params)
            if params.get("use_ivf") is False:
                checker.add(
                    (*path, "use_ivf"),
                    "recall with use_ivf: false compares exact search with itself and elacsym "
                    "reports avg_recall 0.0; remove use_ivf from the recall gate's ann_params",
                )


def _smoke_checks(
    checker: _Checker,
    path: NodePath,
    query: dict[str, Any],
    dims: int | None,
    names: dict[str, int],
) -> None:
    name = query.get("name")
    if isinstance(name, str):
        if name in names:
            checker.add(
                (*path, "name"),
                f'smoke query name "{name}" is already used by verify.smoke_queries'
                f"[{names[name]}]; give each query its own name",
            )
        names.setdefault(name, path[-1] if isinstance(path[-1], int) else 0)
    forms = [k for k in ("sample_vectors", "vector", "bm25") if query.get(k) is not None]
    if not forms:
        checker.add(
            path,
            f"{_where(path)} needs exactly one of sample_vectors: N, vector: […] or "
            "bm25: {field, text}",
        )
    elif len(forms) > 1:
        checker.add(
            (*path, forms[1]),
            f"{_where(path)} has both {forms[0]} and {forms[1]}; a smoke query is one of "
            "sample_vectors, vector or bm25. Split it into two queries",
            at_key=True,
        )
    vector = query.get("vector")
    if isinstance(vector, list) and dims is not None and len(vector) != dims:
        checker.add(
            (*path, "vector"),
            f"{_where((*path, 'vector'))} has {len(vector)} numbers but target.vector_dims is "
            f"{dims}",
        )
    top_k = query.get("top_k")
    min_hits = query.get("min_hits")
    if isinstance(top_k, int) and isinstance(min_hits, int) and min_hits > top_k:
        checker.add(
            (*path, "min_hits"),
            f"min_hits ({min_hits}) is above top_k ({top_k}); a query returns at most top_k "
            "hits. Raise top_k or lower min_hits",
        )
    expect = query.get("expect_ids")
    if isinstance(expect, list) and expect:
        if query.get("sample_vectors") is not None:
            checker.add(
                (*path, "expect_ids"),
                "expect_ids does not apply to sample_vectors (each sampled row must find "
                "itself); use it with vector or bm25 queries",
                at_key=True,
            )
        elif isinstance(top_k, int) and len(expect) > top_k:
            checker.add(
                (*path, "expect_ids"),
                f"expect_ids lists {len(expect)} ids but top_k is {top_k}; they cannot all be "
                "among the hits. Raise top_k",
                at_key=True,
            )
    filters = query.get("filters")
    if isinstance(filters, dict):
        _filter_checks(checker, (*path, "filters"), filters)
    params = query.get("ann_params")
    if isinstance(params, dict):
        _ann_checks(checker, (*path, "ann_params"), params)


def _filter_checks(checker: _Checker, path: NodePath, flt: dict[str, Any]) -> None:
    op = flt.get("op")
    if op in ("in", "not_in") and "value" in flt:
        checker.add(
            (*path, "value"),
            f"op {op} takes values: [a list], not value; rename the key",
            at_key=True,
        )
    elif op in ("eq", "not_eq", "gt", "gte", "lt", "lte") and "values" in flt:
        checker.add(
            (*path, "values"),
            f"op {op} takes one value:, not values; use op in for a list",
            at_key=True,
        )
    elif op == "exists":
        for key in ("value", "values"):
            if key in flt:
                checker.add((*path, key), f"op exists takes no {key}; remove it", at_key=True)
    value = flt.get("value")
    if op in ("gt", "gte", "lt", "lte") and isinstance(value, bool):
        checker.add(
            (*path, "value"),
            f"op {op} compares numbers; true/false cannot be compared. Use op eq",
        )


def _ann_checks(checker: _Checker, path: NodePath, params: dict[str, Any]) -> None:
    coarse = params.get("coarse_bits")
    rerank = params.get("rerank_bits")
    if isinstance(coarse, int) and isinstance(rerank, int) and rerank < coarse:
        checker.add(
            (*path, "rerank_bits"),
            f"rerank_bits ({rerank}) must be ≥ coarse_bits ({coarse}); elacsym rejects the "
            "query otherwise",
        )
    ratio = params.get("nprobe_ratio")
    target = params.get("target_recall")
    if isinstance(ratio, int | float) and isinstance(target, int | float) and ratio != target:
        checker.add(
            (*path, "nprobe_ratio"),
            "nprobe_ratio and target_recall are the same setting (elacsym reads target_recall) "
            "but differ here; keep one of them",
            at_key=True,
        )


def _location_checks(checker: _Checker, d: dict[str, Any], base_dir: Path) -> None:
    store = _get(d, ("target", "store"))
    state = _get(d, ("state", "uri"))
    if isinstance(store, str) and isinstance(state, str) and store and state:
        store_url = resolve_location(store, base_dir)
        state_url = resolve_location(state, base_dir)
        namespaces = join(store_url, "namespaces")
        if is_within(state_url, namespaces):
            checker.add(
                ("state", "uri"),
                "state.uri is inside the target store's namespaces/ directory, where elacsym "
                "keeps namespaces; put the state elsewhere (e.g. a sibling directory or bucket)",
            )
        elif is_within(store_url, state_url) and is_within(state_url, store_url):
            checker.add(
                ("state", "uri"),
                "state.uri is the target store itself; the state's namespaces/<ns>.json would "
                "land in elacsym's namespaces/ directory. Use a separate location",
            )
    summary = _get(d, ("summary", "path"))
    if isinstance(summary, str) and not is_local(summary):
        checker.add(
            ("summary", "path"),
            f"summary.path must be a local file path, not a {scheme_of(summary)}:// URL (the "
            "summary is always stored with the run under state.uri too)",
        )
