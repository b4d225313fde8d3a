"""The published plan schema (``schemas/plan.schema.json``) and small walks over it.

Owns loading the schema that ships inside the package and the few questions
the rest of ``spec`` asks of it: which sub-schema governs a path, which types
and keys it allows, where else a key is valid, and the defaults it declares
(the schema is the one place defaults are written). It must not validate (see
``validate``) and understands only the constructs the plan schema uses:
``properties``, ``additionalProperties``, ``items``, local ``$ref``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from importlib import resources
from typing import Any

import orjson

SchemaNode = dict[str, Any]


@functools.cache
def plan_schema() -> SchemaNode:
    """The plan JSON Schema (2020-12) as shipped in ``elax_plan/schemas/plan.schema.json``."""
    raw = resources.files("elax_plan").joinpath("schemas/plan.schema.json").read_bytes()
    schema: SchemaNode = orjson.loads(raw)
    return schema


def resolve(node: SchemaNode) -> SchemaNode:
    """``node`` with a local ``$ref`` followed (sibling keys such as ``description`` kept)."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    if not ref.startswith("#/$defs/"):
        raise ValueError(f"unsupported $ref {ref!r} in the plan schema")  # pragma: no cover
    target = resolve(plan_schema()["$defs"][ref.removeprefix("#/$defs/")])
    merged = dict(target)
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def child(node: SchemaNode, key: str | int) -> SchemaNode | None:
    """The sub-schema for ``key`` (a property name or a list index) under ``node``."""
    node = resolve(node)
    if isinstance(key, int):
        items = node.get("items")
        return resolve(items) if isinstance(items, dict) else None
    properties = node.get("properties", {})
    if key in properties:
        return resolve(properties[key])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return resolve(extra)
    if extra is True:
        return {}
    return None


def at(path: tuple[str | int, ...]) -> SchemaNode | None:
    """The sub-schema governing ``path`` from the document root, or ``None``."""
    node: SchemaNode | None = plan_schema()
    for key in path:
        if node is None:
            return None
        node = child(node, key)
    return node


def types_of(node: SchemaNode) -> set[str]:
    """JSON types ``node`` allows (empty set: any)."""
    declared = resolve(node).get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    return set()


def property_names(node: SchemaNode) -> list[str]:
    """Keys ``node`` defines, in schema order."""
    return list(resolve(node).get("properties", {}))


def _walk_keys(node: SchemaNode, prefix: str) -> Iterator[tuple[str, str]]:
    node = resolve(node)
    for name, sub in node.get("properties", {}).items():
        yield name, prefix
        sub = resolve(sub)
        if "properties" in sub:
            yield from _walk_keys(sub, f"{prefix}.{name}" if prefix else name)
        items = sub.get("items")
        if isinstance(items, dict) and "properties" in resolve(items):
            yield from _walk_keys(items, f"{prefix}.{name}[]" if prefix else f"{name}[]")


@functools.cache
def key_homes() -> dict[str, tuple[str, ...]]:
    """Every key the schema defines → the sections it belongs to (``""`` for the top level)."""
    homes: dict[str, list[str]] = {}
    for name, parent in _walk_keys(plan_schema(), ""):
        homes.setdefault(name, [])
        if parent not in homes[name]:
            homes[name].append(parent)
    return {name: tuple(parents) for name, parents in homes.items()}


def description(node: SchemaNode | None) -> str | None:
    """The first sentence of ``node``'s description, for hints in messages."""
    if node is None:
        return None
    text = resolve(node).get("description")
    if not isinstance(text, str):
        return None
    first = text.split(". ")[0].rstrip(".")
    return first[:1].lower() + first[1:] if first else None


def apply_defaults(data: Any, node: SchemaNode | None = None) -> Any:
    """A copy of ``data`` with the schema's defaults filled in for absent (or null) keys.

    A section written as a bare ``ingest:`` (null) gets its defaults too: a
    section whose children were all commented out means "the defaults".
    """
    node = resolve(node if node is not None else plan_schema())
    if isinstance(data, dict):
        out = dict(data)
        for name, sub in node.get("properties", {}).items():
            sub = resolve(sub)
            if "default" in sub and out.get(name) is None:
                default = sub["default"]
                # null keeps its meaning ("off") for scalars such as vector_field; only
                # containers (sections, option maps, lists) fall back to their default.
                if name not in out or isinstance(default, dict | list):
                    out[name] = orjson.loads(orjson.dumps(default))
            if name in out:
                out[name] = apply_defaults(out[name], sub)
        return out
    if isinstance(data, list):
        items = node.get("items")
        if isinstance(items, dict):
            return [apply_defaults(item, items) for item in data]
        return list(data)
    return data
