"""Source rules: what ``source`` must hold beyond its schema, checked on defaulted data.

Owns the checks of ``source.uri`` (repeats; each URI resolves under ``source.format`` and
``source.compression`` through ``source_format``, the table plan and apply read with, to one
format), the id and vector fields (two different fields), the attribute mapping
(include/rename against the id and vector fields; no two renames onto one name; no rename onto
a field include keeps under its own name; attribute name length), and what a source without
vectors rules out.
"""

from __future__ import annotations

from typing import Any

from elax_plan.source_format import (
    COMPRESSION_SETTINGS,
    SUPPORTED_ENDINGS,
    ResolvedFormat,
    check,
)
from elax_plan.spec.validate.checker import Checker, path_text, value_at
from elax_plan.spec.yaml_loader import NodePath

MAX_ATTRIBUTE_NAME_BYTES = 128


def source_checks(checker: Checker, d: dict[str, Any]) -> None:
    """Every rule on the defaulted ``source`` section (and what a vectorless source rules out)."""
    source = value_at(d, ("source",))
    if not isinstance(source, dict):
        return
    uris = _uris(checker, source)
    _format_checks(checker, source, uris)
    vector_field = source.get("vector_field")
    id_field = source.get("id_field")
    if isinstance(vector_field, str) and vector_field == id_field:
        path: NodePath = ("source", "vector_field")
        checker.add(
            path,
            f"source.vector_field{checker.shown(path, vector_field)} is also source.id_field; "
            "a row's id and its vector come from two different fields. Set id_field or "
            "vector_field to the other one",
        )
    reserved = {f for f in (id_field, vector_field) if isinstance(f, str)}
    attributes = source.get("attributes")
    if isinstance(attributes, dict):
        include = attributes.get("include")
        _include_checks(checker, include, reserved)
        _rename_checks(checker, attributes.get("rename"), reserved)
        _shadow_checks(checker, include, attributes.get("rename"))
    if vector_field is None:
        _no_vector_checks(checker, d)


def _uris(checker: Checker, source: dict[str, Any]) -> list[tuple[NodePath, str]]:
    """``source.uri`` as (node, text) pairs; a URI listed twice is an issue."""
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
    return uris


def _format_checks(
    checker: Checker, source: dict[str, Any], uris: list[tuple[NodePath, str]]
) -> None:
    """Each URI resolves (``source_format.check``, as plan and apply do) to one format."""
    fmt = source.get("format")
    compression = source.get("compression")
    if compression not in COMPRESSION_SETTINGS or fmt not in (None, "ndjson", "parquet"):
        return  # the schema reported it
    formats: set[str] = set()
    for path, uri in uris:
        result = check(uri, fmt, compression)
        if isinstance(result, ResolvedFormat):
            formats.add(result.format)
        elif result.key == "source.uri":
            shown = checker.shown(path, uri)
            checker.add(
                path,
                f"{path_text(path)}{shown} {result.problem}; elax-plan reads "
                f"{SUPPORTED_ENDINGS}. {result.hint[:1].upper()}{result.hint[1:]}",
            )
        elif ("source", "compression") not in checker.flagged:
            checker.add(
                ("source", "compression"),
                "source.compression applies to NDJSON files only (Parquet compresses inside "
                "the file); remove it",
            )
    if len(formats) > 1:
        checker.add(
            ("source", "uri"),
            "source.uri mixes NDJSON and Parquet files; one plan reads one format. Split "
            "it into two plans, or set source.format",
        )


def _include_checks(checker: Checker, include: Any, reserved: set[str]) -> None:
    if not isinstance(include, list):
        return
    for index, name in enumerate(include):
        path = ("source", "attributes", "include", index)
        if name in reserved:
            checker.add(
                path,
                f'"{name}" is the id or vector field, which is sent as the document\'s '
                "id/vector, not as an attribute; remove it from include",
            )
        _check_attribute_name(checker, path, name)


def _rename_checks(checker: Checker, rename: Any, reserved: set[str]) -> None:
    if not isinstance(rename, dict):
        return
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
        if not isinstance(new, str):
            continue
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


def _shadow_checks(checker: Checker, include: Any, rename: Any) -> None:
    """A rename onto a field ``include`` keeps under its own name would drop that field.

    ``include`` names attributes as written (after renaming) and accepts a renamed field's
    source name too; listing both ``title_v2`` and ``title`` with ``rename: {title_v2: title}``
    can only mean the source's own ``title`` as well, which the rename replaces.
    """
    if not isinstance(include, list) or not isinstance(rename, dict):
        return
    listed = {name for name in include if isinstance(name, str)}
    for old, new in rename.items():
        if old in listed and new in listed and new not in rename and old != new:
            checker.add(
                ("source", "attributes", "rename", old),
                f'renaming "{old}" to "{new}" would drop the source field "{new}": include '
                f'lists both "{old}" and "{new}", and a document holds one "{new}". Rename to '
                f'a name no source field uses, or remove "{new}" from include',
            )


def _check_attribute_name(checker: Checker, path: NodePath, name: Any) -> None:
    if path in checker.flagged:  # e.g. the schema's "at most 128 characters"
        return
    if isinstance(name, str) and len(name.encode()) > MAX_ATTRIBUTE_NAME_BYTES:
        checker.add(
            path,
            f"the attribute name is {len(name.encode())} bytes; elacsym's design limit is "
            f"{MAX_ATTRIBUTE_NAME_BYTES} bytes. Use a shorter name",
        )


def _no_vector_checks(checker: Checker, d: dict[str, Any]) -> None:
    reason = "but source.vector_field is null (rows without vectors)"
    if value_at(d, ("target", "vector_dims")) is not None:
        checker.add(
            ("target", "vector_dims"),
            f"target.vector_dims is set {reason}; remove vector_dims or set source.vector_field",
        )
    queries = value_at(d, ("verify", "smoke_queries"))
    if isinstance(queries, list):
        for index, query in enumerate(queries):
            if isinstance(query, dict) and query.get("sample_vectors") is not None:
                path = ("verify", "smoke_queries", index, "sample_vectors")
                checker.add(path, f"sample_vectors needs vectors from the source {reason}")
    if value_at(d, ("verify", "recall")) is not None:
        checker.add(
            ("verify", "recall"),
            f"a recall gate samples query vectors from the source {reason}; remove "
            "verify.recall or set source.vector_field",
            at_key=True,
        )
