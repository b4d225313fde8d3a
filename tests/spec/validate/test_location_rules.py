"""Location rules: which schemes state.uri, target.store and source.uri may use, and target.url."""

from __future__ import annotations

from pathlib import Path

import pytest

from elax_plan.spec import parse_plan
from tests.spec.helpers import MINIMAL_PLAN, issues_of


def _edit(old: str, new: str) -> str:
    assert old in MINIMAL_PLAN, old
    return MINIMAL_PLAN.replace(old, new, 1)


def test_memory_state_is_refused_naming_why(tmp_path: Path) -> None:
    """state.uri: memory:// is refused at its value: the state would vanish with the process."""
    issues = issues_of(_edit("  uri: ./state", "  uri: memory://state"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(11, 8)]
    assert (
        "state.uri memory:// keeps the ledger and the lease in this process's memory"
        in (issues[0][2])
    )
    assert "cannot resume" in issues[0][2]


def test_memory_state_is_accepted_through_the_library_escape_hatch(tmp_path: Path) -> None:
    """parse_plan(..., allow_memory_state=True) keeps memory:// state usable for tests."""
    text = _edit("  uri: ./state", "  uri: memory://state")
    spec = parse_plan(text, base_dir=tmp_path, allow_memory_state=True)
    assert spec.state.uri == "memory://state"


@pytest.mark.parametrize("uri", ["foo://state", "gs://bucket/state", "https://h/state"])
def test_state_schemes_without_compare_and_swap_are_refused(uri: str, tmp_path: Path) -> None:
    """state.uri on a scheme elax-plan has no compare-and-swap backend for is refused."""
    issues = issues_of(_edit("  uri: ./state", f"  uri: {uri}"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(11, 8)]
    scheme = uri.split("://")[0]
    assert (
        f'state.uri ("{uri}") uses {scheme}://, which elax-plan cannot keep state on'
        in (issues[0][2])
    )


@pytest.mark.parametrize(
    "uri", ["./state", "/var/lib/elax-state", "file:///tmp/state", "s3://b/state", "s3a://b/s"]
)
def test_supported_state_locations_are_accepted(uri: str, tmp_path: Path) -> None:
    """Local paths, file://, s3:// and s3a:// are state locations."""
    parse_plan(_edit("  uri: ./state", f"  uri: {uri}"), base_dir=tmp_path)


def test_unknown_store_scheme_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    """target.store on a protocol fsspec does not know is refused, with a did-you-mean."""
    issues = issues_of(_edit("  store: ./store", "  store: sftpp://node/data"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(5, 10)]
    assert (
        'target.store ("sftpp://node/data") uses sftpp://, which fsspec does not know'
        in (issues[0][2])
    )
    assert 'did you mean "sftp://"?' in issues[0][2]


def test_unknown_source_scheme_is_refused_at_its_entry(tmp_path: Path) -> None:
    """Each source.uri entry on an unknown protocol is refused at that entry."""
    text = _edit("  uri: data/*.ndjson", "  uri:\n    - data/a.ndjson\n    - foo://x/b.ndjson")
    issues = issues_of(text, tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(11, 7)]
    assert (
        'source.uri[1] ("foo://x/b.ndjson") uses foo://, which fsspec does not know'
        in (issues[0][2])
    )


@pytest.mark.parametrize(
    "store", ["sftp://node/var/lib/elacsym", "memory://store", "file:///var/lib/elacsym"]
)
def test_stores_fsspec_knows_are_accepted(store: str, tmp_path: Path) -> None:
    """target.store on any protocol fsspec knows is accepted (validate imports no driver)."""
    parse_plan(_edit("  store: ./store", f"  store: {store}"), base_dir=tmp_path)


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("http://h:3000/?x=1", "a query string"),
        ("http://h:3000?x=1", "a query string"),
        ("https://h/base/#top", "a fragment"),
    ],
)
def test_target_url_with_a_query_or_fragment_is_refused(
    url: str, part: str, tmp_path: Path
) -> None:
    """API paths are appended to target.url, so a query string or fragment is refused there."""
    issues = issues_of(_edit("  url: embedded", f"  url: {url}"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(4, 8)]
    assert f"target.url has {part}" in issues[0][2]
    assert "x=1" not in issues[0][2]  # a query may hold a token: never echoed


def test_target_url_with_a_path_is_accepted(tmp_path: Path) -> None:
    """A base URL with a path prefix (behind a proxy) is still a valid target.url."""
    spec = parse_plan(_edit("  url: embedded", "  url: https://h/elacsym/"), base_dir=tmp_path)
    assert spec.target.url == "https://h/elacsym"


@pytest.mark.parametrize(
    ("old", "new", "position"),
    [
        ("  uri: ./state", '  uri: "./st\\0ate"', (11, 8)),
        ("  store: ./store", '  store: "./st\\tore"', (5, 10)),
        ("  uri: data/*.ndjson", '  uri: "data/\\x01.ndjson"', (9, 8)),
    ],
)
def test_control_characters_in_locations_are_refused(
    old: str, new: str, position: tuple[int, int], tmp_path: Path
) -> None:
    """A NUL, tab or other control character in a location is refused at its value."""
    issues = issues_of(_edit(old, new), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [position]
    assert "contains a control character" in issues[0][2]


def test_control_character_in_summary_path_is_refused(tmp_path: Path) -> None:
    """summary.path with a NUL byte (which no filesystem accepts) is refused at its value."""
    issues = issues_of(MINIMAL_PLAN + 'summary:\n  path: "a\\0b.md"\n', tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(13, 9)]
    assert "summary.path contains a control character" in issues[0][2]


def test_a_protocol_registered_at_run_time_is_known(tmp_path: Path) -> None:
    """A filesystem registered with fsspec after earlier plans were loaded is accepted too."""
    import fsspec

    parse_plan(MINIMAL_PLAN, base_dir=tmp_path)  # the registry was looked up once already
    fsspec.register_implementation(
        "elaxlatefs", "fsspec.implementations.local.LocalFileSystem", clobber=True
    )
    spec = parse_plan(_edit("  store: ./store", "  store: elaxlatefs:///data"), base_dir=tmp_path)
    assert spec.target.store == "elaxlatefs:///data"
