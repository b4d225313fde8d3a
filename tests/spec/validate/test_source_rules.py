"""Source rules: URI endings, format and compression, attributes, sources without vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from elax_plan.source_format import COMPRESSION_SETTINGS, SUPPORTED_ENDINGS, ResolvedFormat, resolve
from elax_plan.spec import parse_plan, plan_schema
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


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("data/*.jsonl.zip", "ends in .zip (zip), which elax-plan cannot read as a stream"),
        ("data/*.jsonl.snappy", "ends in .snappy (snappy)"),
        ("data/*.jsonl.sz", "ends in .sz (snappy)"),
        ("data/*.jsonl.lz4", "ends in .lz4 (lz4)"),
        ("data/*.csv", "ends in .csv, which names no format elax-plan reads"),
        ("data/*.txt", "ends in .txt, which names no format elax-plan reads"),
        ("data/data.jsonl.gzip.bak", "ends in .bak, which names no format"),
        ("data/*.parquet.gz", "is Parquet compressed as gzip"),
    ],
)
def test_uris_plan_and_apply_cannot_read_are_refused_at_their_line(
    uri: str, fragment: str, tmp_path: Path
) -> None:
    """An ending outside source_format's table is refused at source.uri, listing the table."""
    [(line, column, message)] = issues_of(MINIMAL_PLAN.replace("data/*.ndjson", uri), tmp_path)
    assert (line, column) == (9, 8)
    assert message.startswith(f'source.uri ("{uri}") {fragment}'), message
    assert f"elax-plan reads {SUPPORTED_ENDINGS}." in message


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("data/*.jsonl.gzip", ("ndjson", "gzip")),
        ("data/*.ndjson.lzma", ("ndjson", "lzma")),
        ("data/*.json.zstd", ("ndjson", "zstd")),
        ("data/*.parq", ("parquet", None)),
    ],
)
def test_every_ending_in_the_table_is_accepted(
    uri: str, expected: tuple[str, str | None], tmp_path: Path
) -> None:
    """The long codec endings (.gzip, .lzma, .zstd) and .parq load, with their format."""
    spec = parse_plan(MINIMAL_PLAN.replace("data/*.ndjson", uri), base_dir=tmp_path)
    assert spec.source.format == expected[0]
    assert resolve(spec.source.uris[0], spec.source.format, spec.source.compression) == (
        ResolvedFormat(*expected)  # type: ignore[arg-type]
    )


def test_an_explicit_format_does_not_make_a_zip_readable(tmp_path: Path) -> None:
    """source.format: ndjson on data/*.jsonl.zip: still refused (the bytes are zip)."""
    text = MINIMAL_PLAN.replace(
        "  uri: data/*.ndjson\n", "  uri: data/*.jsonl.zip\n  format: ndjson\n"
    )
    [(line, column, message)] = issues_of(text, tmp_path)
    assert (line, column) == (9, 8)
    assert "recompress them with gzip or zstd" in message


def test_every_refused_uri_in_a_list_is_reported_at_its_entry(tmp_path: Path) -> None:
    """A list of URIs: each one that does not resolve gets its own issue at its own line."""
    text = MINIMAL_PLAN.replace(
        "  uri: data/*.ndjson\n", "  uri:\n    - a.ndjson\n    - b.csv\n    - c.jsonl.zip\n"
    )
    issues = issues_of(text, tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(11, 7), (12, 7)]
    assert issues[0][2].startswith('source.uri[1] ("b.csv") ends in .csv')
    assert issues[1][2].startswith('source.uri[2] ("c.jsonl.zip") ends in .zip')


def test_an_interpolated_uri_is_refused_without_quoting_it(tmp_path: Path) -> None:
    """The URI came from ${DATA}: the message names the variable, never its value."""
    text = MINIMAL_PLAN.replace("data/*.ndjson", "${DATA}")
    [(_, _, message)] = issues_of(text, tmp_path, DATA="s3://secret-bucket/x.jsonl.zip")
    assert "secret-bucket" not in message
    assert message.startswith("source.uri (the value from ${DATA}) ends in .zip")


@pytest.mark.parametrize("codec", ["lz4", "snappy", "zip"])
def test_a_compression_setting_apply_cannot_stream_is_refused(codec: str, tmp_path: Path) -> None:
    """source.compression lz4/snappy/zip: refused at its node, naming the codecs elax-plan streams."""
    text = MINIMAL_PLAN.replace(
        "  uri: data/*.ndjson\n", f"  uri: data/*.ndjson\n  compression: {codec}\n"
    )
    [(line, column, message)] = issues_of(text, tmp_path)
    assert (line, column) == (10, 16)
    assert message.startswith(
        f'source.compression must be one of infer, none, gzip, bz2, xz, lzma, zstd, not "{codec}"'
    )
    assert "recompress them with gzip or zstd" in message


def test_compression_is_refused_for_parquet_once(tmp_path: Path) -> None:
    """Parquet with compression: gzip: one issue at source.compression, not one per URI."""
    text = MINIMAL_PLAN.replace(
        "  uri: data/*.ndjson\n", "  uri: [a.parquet, b.parquet]\n  compression: gzip\n"
    )
    [(line, column, message)] = issues_of(text, tmp_path)
    assert (line, column) == (10, 16)
    assert "applies to NDJSON files only" in message


def test_the_schema_lists_exactly_the_codecs_the_resolver_supports() -> None:
    """plan.schema.json's source.compression enum is source_format's list, in order."""
    schema = plan_schema()
    enum = schema["properties"]["source"]["properties"]["compression"]["enum"]
    assert tuple(enum) == COMPRESSION_SETTINGS


def test_id_field_equal_to_vector_field_is_refused_at_vector_field(tmp_path: Path) -> None:
    """source.id_field and source.vector_field naming one field is refused where vector_field is."""
    text = MINIMAL_PLAN.replace(
        "  uri: data/*.ndjson\n", "  uri: data/*.ndjson\n  id_field: doc\n  vector_field: doc\n"
    )
    issues = issues_of(text, tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(11, 17)]
    assert 'source.vector_field ("doc") is also source.id_field' in issues[0][2]


def test_the_default_id_field_as_vector_field_is_refused(tmp_path: Path) -> None:
    """vector_field: id (the default id_field) is refused too."""
    text = MINIMAL_PLAN.replace(
        "  uri: data/*.ndjson\n", "  uri: data/*.ndjson\n  vector_field: id\n"
    )
    issues = issues_of(text, tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(10, 17)]
    assert "is also source.id_field" in issues[0][2]


def _attributes(block: str) -> str:
    return MINIMAL_PLAN.replace(
        "  uri: data/*.ndjson\n", "  uri: data/*.ndjson\n  attributes:\n" + block
    )


def test_rename_onto_a_field_include_keeps_is_refused_at_the_rename(tmp_path: Path) -> None:
    """include [title_v2, title] + rename title_v2→title would drop the source's title: refused."""
    text = _attributes("    include: [title_v2, title]\n    rename: {title_v2: title}\n")
    issues = issues_of(text, tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(12, 24)]
    assert 'renaming "title_v2" to "title" would drop the source field "title"' in issues[0][2]


def test_rename_onto_the_source_name_of_another_kept_field_is_refused(tmp_path: Path) -> None:
    """include [a, b] + rename a→b: b is kept under its own name and a lands on it: refused."""
    issues = issues_of(_attributes("    include: [a, b]\n    rename: {a: b}\n"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(12, 17)]
    assert 'would drop the source field "b"' in issues[0][2]


def test_two_renames_onto_one_name_are_refused_at_the_second(tmp_path: Path) -> None:
    """rename {a: t, b: t} is refused at b: one attribute name comes from one field."""
    issues = issues_of(_attributes("    rename: {a: t, b: t}\n"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(11, 23)]
    assert '"b" and "a" are both renamed to "t"' in issues[0][2]


def test_renames_that_drop_nothing_are_accepted(tmp_path: Path) -> None:
    """SPEC §3's include [title] + rename title_v2→title, chains and swaps are accepted."""
    for block in (
        "    include: [title, category]\n    rename: {title_v2: title}\n",
        "    rename: {a: b, b: c}\n",
        "    rename: {a: b, b: a}\n",
    ):
        parse_plan(_attributes(block), base_dir=tmp_path)


def test_the_schema_documents_the_rename_rule() -> None:
    """The schema's description of rename says a renamed field replaces a same-named field."""
    rename = plan_schema()["properties"]["source"]["properties"]["attributes"]["properties"][
        "rename"
    ]
    assert "is not written" in rename["description"]
    assert "validate refuses" in rename["description"]
