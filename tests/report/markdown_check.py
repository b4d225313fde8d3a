"""A structural checker for the summary's markdown: tables, fences, <details>, mermaid charts.

Not a markdown parser: it checks the rules a summary must keep to render on
GitHub as intended — every table after a blank line, with a delimiter row and
the header's column count on every row; code fences and ``<details>`` paired;
and each ``mermaid`` block an ``xychart-beta`` chart in the grammar of
mermaid's ``xychart.jison`` (an optional ``%%{init: JSON}%%`` line, title, x-axis
categories — plain numbers or quoted labels — or a numeric range, y-axis range, then
lines or bars with as many plain numbers as categories — or, on a numeric axis, as
each other —, all within the y range).
"""

from __future__ import annotations

import json
import re

NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"  # mermaid's NUMBER_WITH_DECIMAL (xychart.jison)
NUMBERS = rf"\[{NUMBER}(?:, {NUMBER})*\]"
LABEL = r'"[^"\n]+"'
LABELS = rf"\[{LABEL}(?:, {LABEL})*\]"
TITLE = re.compile(r'title "[^"\n]+"')
X_AXIS = re.compile(rf'x-axis "[^"\n]+" (?:({NUMBERS}|{LABELS})|({NUMBER}) --> ({NUMBER}))')
Y_AXIS = re.compile(rf'y-axis "[^"\n]+" ({NUMBER}) --> ({NUMBER})')
SERIES = re.compile(rf"(?:line|bar) ({NUMBERS})")
INIT = re.compile(r"%%\{init: (.*)\}%%")


def cells(row: str) -> int:
    """The number of cells in a table row (``\\|`` is an escaped pipe, not a border)."""
    return len(re.split(r"(?<!\\)\|", row.strip())) - 2


def mermaid_problems(block: list[str]) -> list[str]:
    """What is wrong with one mermaid block's lines, for an xychart-beta chart."""
    if block and (init := INIT.fullmatch(block[0])):
        try:
            json.loads(init[1])
        except json.JSONDecodeError as exc:
            return [f"the init directive is not JSON: {exc}"]
        block = block[1:]
    if not block or block[0] != "xychart-beta":
        return [f"not an xychart-beta block: {block[:1]}"]
    body = [line.strip() for line in block[1:]]
    if len(body) < 4:
        return [f"expected title, x-axis, y-axis and a line or bar, got {body}"]
    title, x_axis, y_axis = (
        TITLE.fullmatch(body[0]),
        X_AXIS.fullmatch(body[1]),
        Y_AXIS.fullmatch(body[2]),
    )
    series = [SERIES.fullmatch(line) for line in body[3:]]
    if not (title and x_axis and y_axis and all(series)):
        return [
            f"malformed: {line!r}"
            for line in body
            if not any(p.fullmatch(line) for p in (TITLE, X_AXIS, Y_AXIS, SERIES))
        ] or [f"malformed chart: {body}"]
    values = [[float(v) for v in m[1][1:-1].split(", ")] for m in series if m]
    lo, hi = float(y_axis[1]), float(y_axis[2])
    problems = []
    if x_axis[1] is not None:
        xs = [v if v.startswith('"') else float(v) for v in x_axis[1][1:-1].split(", ")]
        if len(set(xs)) != len(xs):
            problems.append("x-axis categories repeat (mermaid would merge them)")
        counts = {len(ys) for ys in values}
        if counts != {len(xs)}:
            problems.append(f"{len(xs)} x-axis categories but {sorted(counts)} values")
    else:
        if not float(x_axis[2]) < float(x_axis[3]):
            problems.append(f"x-axis range {x_axis[2]} --> {x_axis[3]} is empty")
        if len({len(ys) for ys in values}) != 1:
            problems.append("the series have different numbers of values")
    every = [y for ys in values for y in ys]
    if not lo < hi or not all(lo <= y <= hi for y in every):
        problems.append(f"values {min(every)}..{max(every)} outside the y-axis {lo} --> {hi}")
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
