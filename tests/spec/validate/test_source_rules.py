"""Source rules: URI endings, format and compression, attributes, sources without vectors."""

from __future__ import annotations

from pathlib import Path

from tests.spec.helpers import MINIMAL_PLAN, issues_of, minimal_with


def test_attributes_rules(tmp_path: Path) -> None:
    """id/vector fields cannot be attributes, and two fields cannot share a new name."""
    text = minimal_with("").replace(
        "  uri: data/*.ndjson\n",
        "  uri: data/*.ndjson\n  attributes:\n    include: [id, title]\n"
        "    rename: {a: title, b: title, vector: v}\n",
    )
    messages = [m for _, _, m in issues_of(text, tmp_path)]
    assert any("is the id or vector field" in m for m in messages)
    assert any('are both renamed to "title"' in m for m in messages)
    assert any("cannot be renamed into an attribute" in m for m in messages)


def test_vectorless_source_rules(tmp_path: Path) -> None:
    """With vector_field: null, vector_dims, sample_vectors and recall are refused."""
    text = (
        MINIMAL_PLAN.replace(
            "distance_metric: cosine", "distance_metric: cosine\n  vector_dims: 8"
        ).replace("  uri: data/*.ndjson\n", "  uri: data/*.ndjson\n  vector_field: null\n")
        + "verify:\n  smoke_queries:\n    - {name: s, sample_vectors: 3}\n  recall: {}\n"
    )
    messages = [m for _, _, m in issues_of(text, tmp_path)]
    assert len(messages) == 3
    assert all("vector_field is null" in m for m in messages)


def test_unknown_format_extension(tmp_path: Path) -> None:
    """A source URI without a known extension asks for source.format."""
    [(line, column, message)] = issues_of(MINIMAL_PLAN.replace("data/*.ndjson", "data/*"), tmp_path)
    assert (line, column) == (9, 8)
    assert "set source.format" in message
