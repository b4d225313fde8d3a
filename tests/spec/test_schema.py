"""The published JSON Schema: valid 2020-12, documented, shipped, and in step with the code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from elax_plan.spec import plan_schema
from elax_plan.spec.validate import PATTERN_MESSAGES

REPO = Path(__file__).resolve().parents[2]


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}.{name}" if path else name, sub
            yield from _properties(sub, f"{path}.{name}" if path else name)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from _properties(node[key], f"{path}[]")
        for name, sub in node.get("$defs", {}).items():
            yield from _properties(sub, f"$defs.{name}")


def test_schema_is_valid_draft_2020_12() -> None:
    """plan.schema.json is itself a valid JSON Schema 2020-12 document."""
    schema = plan_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_property_has_a_description() -> None:
    """Every property (and $def) carries a description for editors' hover help."""
    schema = plan_schema()
    missing = [path for path, sub in _properties(schema) if "description" not in sub]
    assert missing == []
    assert all("description" in sub for sub in schema["$defs"].values())


def test_every_pattern_has_a_plain_words_message() -> None:
    """No regular expression from the schema can reach a user: each has a sentence."""
    patterns = {sub["pattern"] for _, sub in _properties(plan_schema()) if "pattern" in sub}
    assert patterns
    assert patterns <= set(PATTERN_MESSAGES)


def test_schema_ships_in_the_package_and_the_top_level_folder_is_the_packages() -> None:
    """The schema is package data (declared for the wheel, read through importlib) and the
    top-level schemas/ that editors and plan files point at is a link to the package's
    folder, not a copy that could drift."""
    packaged = resources.files("elax_plan").joinpath("schemas/plan.schema.json").read_text()
    assert json.loads(packaged) == plan_schema()
    top = REPO / "schemas"
    assert top.is_symlink() and top.resolve() == (REPO / "elax_plan" / "schemas").resolve()
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"schemas/*.json"' in pyproject


def test_schema_covers_every_section_of_spec_section_3() -> None:
    """The top level lists exactly the plan sections of SPEC §3."""
    assert set(plan_schema()["properties"]) == {
        "version",
        "name",
        "description",
        "target",
        "source",
        "ingest",
        "indexer",
        "throttle",
        "preconditions",
        "verify",
        "wal_trim",
        "state",
        "summary",
    }
    assert plan_schema()["required"] == ["version", "name", "target", "source", "state"]
