"""`${ENV}`, `${ENV:-default}`, `${var.NAME}` and `$${`: substitution, errors and typing."""

from __future__ import annotations

import pytest

from elax_plan.spec import PlanInvalid, parse_plan, parse_var_assignments
from elax_plan.spec.interpolate import Interpolated, interpolate
from elax_plan.spec.yaml_loader import load_yaml
from tests.spec.helpers import MINIMAL_PLAN, minimal_with


def _run(
    text: str, env: dict[str, str] | None = None, variables: dict[str, str] | None = None
) -> Interpolated:
    loaded = load_yaml(text, "p.yaml")
    return interpolate(
        loaded.data, loaded.marks, file="p.yaml", variables=variables or {}, env=env or {}
    )


def test_env_default_and_var_are_substituted() -> None:
    """${ENV}, ${ENV:-default} and ${var.NAME} are replaced inside longer strings."""
    result = _run(
        "a: s3://${BUCKET}/x\nb: ${MISSING:-fallback}\nc: ns-${var.region}\n",
        env={"BUCKET": "data"},
        variables={"region": "eu"},
    )
    assert result.data == {"a": "s3://data/x", "b": "fallback", "c": "ns-eu"}
    assert result.sources[("a",)] == ("BUCKET",)
    assert result.sources[("c",)] == ("var.region",)
    assert not result.issues


def test_default_applies_to_empty_values_like_the_shell() -> None:
    """`:-` uses the default when the variable is unset or empty; an empty set value is kept."""
    result = _run("a: ${E:-d}\nb: ${E}\n", env={"E": ""})
    assert result.data == {"a": "d", "b": ""}


def test_dollar_dollar_writes_a_literal() -> None:
    """$${X} is the literal text ${X} and is not looked up."""
    result = _run("a: cost $${X} and $5\n")
    assert result.data == {"a": "cost ${X} and $5"}
    assert not result.issues


def test_keys_and_non_strings_are_untouched() -> None:
    """Only string values are interpolated; keys and numbers are left alone."""
    result = _run("${K}: 1\nn: 3\n")
    assert result.data == {"${K}": 1, "n": 3}


def test_every_undefined_reference_is_reported_at_its_column() -> None:
    """Each unknown variable is its own error, pointing at its '${'."""
    result = _run('a: x-${ONE}-${var.two}\nb: "q ${THREE}"\n')
    assert [(i.line, i.column) for i in result.issues] == [(1, 6), (1, 13), (2, 7)]
    assert "export it" in result.issues[0].message
    assert "--var two=VALUE" in result.issues[1].message
    assert result.failed == {("a",), ("b",)}


def test_nested_default_is_refused() -> None:
    """A ${…} inside a default is an error rather than a silent half-substitution."""
    result = _run("a: ${A:-${B}}\n")
    assert "inside a default" in result.issues[0].message


def test_interpolated_numbers_get_their_schema_type() -> None:
    """`concurrency: ${N}` with N=3 is the number 3; `vector_dims: ${D:-}` empty means off."""
    spec = parse_plan(
        minimal_with(
            "ingest:\n  concurrency: ${N}\nwal_trim:\n  enabled: ${TRIM:-false}\n"
        ).replace("distance_metric: cosine", "distance_metric: cosine\n  vector_dims: ${D:-}"),
        env={"N": "3"},
    )
    assert spec.ingest.concurrency == 3
    assert spec.wal_trim.enabled is False
    assert spec.target.vector_dims is None


def test_text_keys_keep_interpolated_digits_as_text() -> None:
    """An all-digit API key stays text: keys typed as strings are never coerced."""
    spec = parse_plan(
        MINIMAL_PLAN.replace("url: embedded", "url: embedded\n  api_key: ${KEY}"),
        env={"KEY": "1234567890"},
    )
    assert spec.target.api_key is not None
    assert spec.target.api_key.reveal() == "1234567890"


def test_uncoercible_interpolated_value_names_the_variable() -> None:
    """A wrong-typed interpolated value is reported by variable name, never by value."""
    with pytest.raises(PlanInvalid) as caught:
        parse_plan(minimal_with("ingest:\n  concurrency: ${N}\n"), env={"N": "lots"})
    message = caught.value.issues[0].message
    assert "the value from ${N}" in message
    assert "lots" not in message


def test_parse_var_assignments() -> None:
    """--var items split at the first '='; malformed ones are refused without echoing values."""
    assert parse_var_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_var_assignments(["novalue"])
    with pytest.raises(ValueError, match="must start with a letter") as caught:
        parse_var_assignments(["9bad=s3cr3t-value"])
    assert "s3cr3t-value" not in str(caught.value)
