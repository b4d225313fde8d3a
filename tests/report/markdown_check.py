"""A structural checker for the summary's markdown: tables, fences, <details>, mermaid charts.

Not a markdown parser: it checks the rules a summary must keep to render on
GitHub as intended — every table after a blank line, with a delimiter row and
the header's column count on every row; code fences and ``<details>`` paired;
and each ``mermaid`` block an ``xychart-beta`` chart in the grammar of
mermaid's ``xychart.jison`` (title, x-axis categories — plain numbers or quoted labels —,
y-axis range, one line or bar with as many plain numbers as categories, all within the range).
"""

from __future__ import annotations

import re

NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"  # mermaid's NUMBER_WITH_DECIMAL (xychart.jison)
NUMBERS = rf"\[{NUMBER}(?:, {NUMBER})*\]"
LABEL = r'"[^"\n]+"'
LABELS = rf"\[{LABEL}(?:, {LABEL})*\]"
MERMAID_LINES = (
    re.compile(r'title "[^"\n]+"'),
    re.compile(rf'x-axis "[^"\n]+" ({NUMBERS}|{LABELS})'),
    re.compile(rf'y-axis "[^"\n]+" ({NUMBER}) --> ({NUMBER})'),
    re.compile(rf"(?:line|bar) ({NUMBERS})"),
)


def cells(row: str) -> int:
    """The number of cells in a table row (``\\|`` is an escaped pipe, not a border)."""
    return len(re.split(r"(?<!\\)\|", row.strip())) - 2


def mermaid_problems(block: list[str]) -> list[str]:
    """What is wrong with one mermaid block's lines, for an xychart-beta line chart."""
    if not block or block[0] != "xychart-beta":
        return [f"not an xychart-beta block: {block[:1]}"]
    body = [line.strip() for line in block[1:]]
    if len(body) != len(MERMAID_LINES):
        return [f"expected title, x-axis, y-axis and line, got {body}"]
    matches = [pattern.fullmatch(line) for pattern, line in zip(MERMAID_LINES, body, strict=True)]
    if not all(matches):
        return [f"malformed: {line!r}" for line, m in zip(body, matches, strict=True) if not m]
    _, x_axis, y_axis, line = matches
    assert x_axis is not None and y_axis is not None and line is not None
    xs = [v if v.startswith('"') else float(v) for v in x_axis[1][1:-1].split(", ")]
    ys = [float(v) for v in line[1][1:-1].split(", ")]
    lo, hi = float(y_axis[1]), float(y_axis[2])
    problems = []
    if len(xs) != len(ys):
        problems.append(f"{len(xs)} x-axis categories but {len(ys)} values")
    if len(set(xs)) != len(xs):
        problems.append("x-axis categories repeat (mermaid would merge them)")
    if not lo < hi or not all(lo <= y <= hi for y in ys):
        problems.append(f"values {min(ys)}..{max(ys)} outside the y-axis {lo} --> {hi}")
    return problems


def markdown_problems(text: str) -> list[str]:
    """Structural problems of a summary: tables (after a blank line, a delimiter row, the
    header's column count on every row), code fences, <details>, mermaid charts."""
    problems: list[str] = []
    lines = text.split("\n")
    fence: list[str] | None = None
    fence_kind = ""
    table_columns: int | None = None
    for number, line in enumerate(lines, start=1):
        if fence is not None:
            if line == "```":
                if fence_kind == "mermaid":
                    problems += [
                        f"mermaid block ending line {number}: {p}" for p in mermaid_problems(fence)
                    ]
                fence = None
            else:
                fence.append(line)
            continue
        if line.startswith("```"):
            fence, fence_kind = [], line[3:]
            table_columns = None
            continue
        if line.startswith("|"):
            if table_columns is None:
                table_columns = cells(line)
                if number > 1 and lines[number - 2] != "":
                    problems.append(f"line {number}: a table must follow a blank line")
                following = lines[number] if number < len(lines) else ""
                if not re.fullmatch(r"\|(?: ?:?-+:? ?\|)+", following):
                    problems.append(f"line {number}: table header without a delimiter row")
            elif cells(line) != table_columns:
                problems.append(
                    f"line {number}: {cells(line)} cells, the header has {table_columns}: {line}"
                )
        else:
            table_columns = None
    if fence is not None:
        problems.append("a code fence is never closed")
    if text.count("<details>") != text.count("</details>"):
        problems.append("<details> and </details> do not pair up")
    return problems
