"""Safe YAML with line marks: positions, duplicate keys, tags, merges and alias bombs."""

from __future__ import annotations

import pytest

from elax_plan.spec import PlanInvalid
from elax_plan.spec.yaml_loader import MAX_DEPTH, MAX_NODES, load_yaml


def _issue(text: str) -> tuple[int | None, int | None, str]:
    with pytest.raises(PlanInvalid) as caught:
        load_yaml(text, "p.yaml")
    issue = caught.value.issues[0]
    return issue.line, issue.column, issue.message


def test_marks_point_at_every_node_and_key() -> None:
    """Every value has its 1-based line/column, and mapping values know their key's position."""
    loaded = load_yaml("a:\n  b: [1, 2]\n  c:\n    - x: 1\n", "p.yaml")
    assert loaded.data == {"a": {"b": [1, 2], "c": [{"x": 1}]}}
    assert (loaded.marks[("a", "b")].line, loaded.marks[("a", "b")].column) == (2, 6)
    assert loaded.marks[("a", "b")].key_position == (2, 3)
    assert (loaded.marks[("a", "b", 1)].line, loaded.marks[("a", "b", 1)].column) == (2, 10)
    assert loaded.marks[("a", "c", 0, "x")].key_position == (4, 7)


def test_empty_document_is_none() -> None:
    """An empty or comment-only file loads as None (the validator words the error)."""
    assert load_yaml("# just a comment\n", "p.yaml").data is None


def test_all_duplicate_keys_are_reported() -> None:
    """Every repeated key is an error at the repeat, naming the first occurrence."""
    with pytest.raises(PlanInvalid) as caught:
        load_yaml("a: 1\nb: 2\na: 3\nc:\n  d: 1\n  d: 2\n", "p.yaml")
    found = [(i.line, i.column) for i in caught.value.issues]
    assert found == [(3, 1), (6, 3)]
    assert "first written at line 5, column 3" in caught.value.issues[1].message


def test_merge_keys_are_honoured_and_explicit_keys_win() -> None:
    """`<<: *anchor` merges a mapping; keys written alongside override merged ones."""
    loaded = load_yaml("base: &b {top_k: 10, min_hits: 1}\nq:\n  <<: *b\n  top_k: 5\n", "p.yaml")
    assert loaded.data["q"] == {"top_k": 5, "min_hits": 1}


def test_keys_stay_text() -> None:
    """Keys such as `yes:` or `2024:` are kept as written instead of becoming bool/int."""
    assert load_yaml("yes: 1\n2024: x\nnull: y\n", "p.yaml").data == {
        "yes": 1,
        "2024": "x",
        "null": "y",
    }


def test_dates_stay_text() -> None:
    """A date-looking value stays a string; no plan key holds a date."""
    assert load_yaml("d: 2026-11-01\n", "p.yaml").data == {"d": "2026-11-01"}


def test_python_tags_are_refused_without_running_anything(tmp_path: object) -> None:
    """A !!python tag is an error at its node and nothing is constructed."""
    line, column, message = _issue("x: !!python/object/apply:os.system ['touch /tmp/pwned']\n")
    assert (line, column) == (1, 4)
    assert "not allowed" in message


def test_alias_bomb_is_stopped() -> None:
    """A billion-laughs document stops at MAX_NODES with a plain error."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 8):
        prev = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    line, _, message = _issue("\n".join(lines) + "\n")
    assert f"more than {MAX_NODES:,} values" in message
    assert line is not None


def test_recursive_alias_is_an_error() -> None:
    """An anchor whose node contains its own alias is reported instead of recursing forever."""
    _, _, message = _issue("a: &x [1, *x]\n")
    assert "loop" in message


def test_tab_indentation_is_rephrased() -> None:
    """A tab used for indentation says so, at the tab."""
    line, column, message = _issue("a:\n\tb: 1\n")
    assert (line, column) == (2, 1)
    assert "tab character" in message


def test_nesting_past_the_limit_is_a_located_error_not_a_recursion_error() -> None:
    """400 unclosed '[' (800 bytes) stop at the first level past MAX_DEPTH, at its column."""
    line, column, message = _issue("a: " + "[" * 400 + "\n")
    assert (line, column) == (1, 4 + MAX_DEPTH - 1)
    assert f"more than {MAX_DEPTH} levels deep" in message


def test_deep_block_mappings_are_stopped_at_the_limit() -> None:
    """Indented mappings nested past the limit are refused at the key that goes too deep."""
    text = "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_DEPTH + 5)) + "  " * 70 + "x: 1\n"
    line, column, message = _issue(text)
    assert (line, column) == (MAX_DEPTH + 1, 2 * MAX_DEPTH + 1)
    assert "levels deep" in message


def test_nesting_up_to_the_limit_loads() -> None:
    """MAX_DEPTH nested lists are still a document (the schema judges them)."""
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"
    data = load_yaml(text, "p.yaml").data
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == []


def test_aliases_cannot_build_nesting_past_the_limit() -> None:
    """A chain of anchors, each nesting the previous, is stopped where it passes the limit."""
    lines = ["l0: &l0 " + "[" * 40 + "]" * 40]
    for i in range(1, 8):
        lines.append(f"l{i}: &l{i} " + "[" * 40 + f"*l{i - 1}" + "]" * 40)
    line, _column, message = _issue("\n".join(lines) + "\n")
    assert line == 1
    assert "levels deep" in message


@pytest.mark.parametrize(
    "number", ["18446744073709551616", "-9223372036854775809", "1" * 5000, "0x1" + "0" * 17]
)
def test_whole_numbers_beyond_64_bits_are_refused_where_written(number: str) -> None:
    """A whole number no JSON tool can carry (beyond 64 bits, or 5,000 digits) is refused."""
    line, column, message = _issue(f"a:\n  b: {number}\n")
    assert (line, column) == (2, 6)
    assert "must fit in 64 bits" in message


def test_the_largest_64_bit_numbers_load() -> None:
    """2**64 - 1 and -2**63 are still numbers."""
    data = load_yaml("a: 18446744073709551615\nb: -9223372036854775808\n", "p.yaml").data
    assert data == {"a": 2**64 - 1, "b": -(2**63)}
