"""The bad-plan corpus: every file in corpus/bad-plans is refused at its place, in plain words.

Each ``NNN-name.yaml`` is a plan with one mistake. Its leading comment lines say what is
wrong and what `elax-plan validate` must answer::

    # Bad plan: what is wrong, in a few words.
    # env: NAME=VALUE        (optional, repeatable) set for the run
    # var: NAME=VALUE        (optional, repeatable) passed as --var NAME=VALUE
    # mkdir: DIR             (optional) created in the working directory first
    # touch: FILE            (optional) created in the working directory first
    # expect: LINE:COL text  (one or more) an error at FILE:LINE:COL containing the text

Line numbers count these comment lines. The run happens in an empty working directory, so
relative paths in the plan point there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from elax_plan.cli._group import run

CORPUS = Path(__file__).parent / "corpus" / "bad-plans"
FILES = sorted(CORPUS.glob("*.yaml"))


@dataclass
class Expectation:
    """What one corpus file declares in its header."""

    what: str = ""
    env: dict[str, str] = field(default_factory=dict)
    variables: list[str] = field(default_factory=list)
    mkdir: list[str] = field(default_factory=list)
    touch: list[str] = field(default_factory=list)
    errors: list[tuple[int, int, str]] = field(default_factory=list)


def _header(path: Path) -> Expectation:
    expected = Expectation()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line[1:].strip().partition(":")
        value = value.strip()
        if key == "Bad plan":
            expected.what = value
        elif key == "env":
            name, _, text = value.partition("=")
            expected.env[name] = text
        elif key == "var":
            expected.variables += ["--var", value]
        elif key == "mkdir":
            expected.mkdir.append(value)
        elif key == "touch":
            expected.touch.append(value)
        elif key == "expect":
            position, _, fragment = value.partition(" ")
            line_no, _, column = position.partition(":")
            expected.errors.append((int(line_no), int(column), fragment))
    return expected


def test_the_corpus_holds_at_least_100_plans_each_with_an_expectation() -> None:
    """At least 100 bad plans, numbered and named once each, each saying what and where."""
    assert len(FILES) >= 100
    numbers = [p.name.split("-", 1)[0] for p in FILES]
    assert len(set(numbers)) == len(numbers)
    for path in FILES:
        expected = _header(path)
        assert expected.what, f"{path.name}: no '# Bad plan:' line"
        assert expected.errors, f"{path.name}: no '# expect: LINE:COL text' line"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_bad_plan_is_refused_at_its_place(
    path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """validate exits 1 with FILE:LINE:COL: and the expected words, the next step, no traceback."""
    expected = _header(path)
    monkeypatch.chdir(tmp_path)
    for name, value in expected.env.items():
        monkeypatch.setenv(name, value)
    for directory in expected.mkdir:
        (tmp_path / directory).mkdir(parents=True)
    for name in expected.touch:
        (tmp_path / name).write_text("not a directory\n")
    code = run(["validate", str(path), *expected.variables])
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err
    assert "internal error" not in captured.err
    assert captured.err.startswith("Error: "), captured.err
    lines = captured.err.splitlines()
    for line_no, column, fragment in expected.errors:
        prefix = f"{path}:{line_no}:{column}: "
        located = [text for text in lines if prefix in text]
        assert located, f"no error at {line_no}:{column} in:\n{captured.err}"
        assert any(fragment in text for text in located), (fragment, located)
    assert f"Fix the plan and run `elax-plan validate {path}` again." in captured.err
