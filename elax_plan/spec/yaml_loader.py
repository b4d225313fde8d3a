"""Plan text → plain Python data plus the line and column of every node.

Owns safe YAML parsing for plans: only the core YAML types (no Python tags, no
custom tags, nothing is ever executed), duplicate keys refused, ``<<`` merge
keys honoured, alias bombs, recursive aliases and nesting deeper than
``MAX_DEPTH`` stopped (at the line and column where it happens), and every syntax
error rephrased in plain words at its line and column. It must not interpret
the data (that is the validator's job) and must not read files (the caller
passes text).

Positions are kept in ``LoadedYaml.marks``, keyed by the node's path
(``("verify", "smoke_queries", 0, "top_k")``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from elax_plan.spec.issues import PlanInvalid, PlanIssue

NodePath = tuple[str | int, ...]

# A plan of normal size has a few hundred nodes; this only stops alias bombs
# ("billion laughs") from expanding into gigabytes.
MAX_NODES = 200_000
# A plan nests a handful of levels (verify.smoke_queries[0].filters.values is 5); deeper
# nesting is a mistake (unclosed brackets) or an attack on the recursive parsers below.
MAX_DEPTH = 64

# Whole numbers a plan may hold: what JSON tools (orjson, the state files) carry.
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_MAX_INT_CHARS = 100

_TAG = "tag:yaml.org,2002:"
# Keys whose values are words one of which YAML 1.1 reads as a boolean (on/off/yes/no):
# written plainly there, the word is kept.
_WORD_PATHS: frozenset[tuple[str | int, ...]] = frozenset({("verify", "delivery")})
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "null", "bool", "int", "float", "timestamp")}


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a node starts (1-based) and, for a mapping value, where its key starts."""

    line: int
    column: int
    key_line: int | None = None
    key_column: int | None = None
    style: str | None = None
    single_line: bool = True

    @property
    def key_position(self) -> tuple[int, int]:
        """The key's position when there is one, else the node's."""
        if self.key_line is not None and self.key_column is not None:
            return self.key_line, self.key_column
        return self.line, self.column


@dataclass(frozen=True, slots=True)
class LoadedYaml:
    """The document as plain data (``None`` for an empty file) and the marks of its nodes."""

    data: Any
    marks: dict[NodePath, Mark]


class _TooDeep(Exception):
    """Nesting went past ``MAX_DEPTH`` at ``mark``."""

    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__()
        self.mark = mark


class _DepthLimitedLoader(yaml.SafeLoader):
    """pyyaml's safe loader, refusing to compose lists/mappings nested past ``MAX_DEPTH``.

    pyyaml composes recursively, so without a bound ``a: [[[[…`` ends in a RecursionError.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if not self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise _TooDeep(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _too_deep_message() -> str:
    return (
        f"lists and mappings are nested more than {MAX_DEPTH} levels deep here; a plan needs "
        "a few levels: look for an unclosed '[' or '{', or indentation that keeps growing"
    )


def load_yaml(text: str, file: str) -> LoadedYaml:
    """Parse ``text`` (the content of ``file``); raise ``PlanInvalid`` naming every problem."""
    try:
        root = yaml.compose(text, Loader=_DepthLimitedLoader)
    except _TooDeep as exc:
        line, column = exc.mark.line + 1, exc.mark.column + 1
        raise PlanInvalid(file, [PlanIssue(file, _too_deep_message(), line, column)]) from None
    except yaml.MarkedYAMLError as exc:
        raise PlanInvalid(file, [_syntax_issue(exc, file, text)]) from None
    except yaml.reader.ReaderError as exc:
        line, column = _position_of(text, exc.position)
        raise PlanInvalid(
            file,
            [
                PlanIssue(
                    file,
                    f"a control character YAML does not allow ({_codepoint(exc.character)}); "
                    "remove it, or save the file as plain UTF-8 text",
                    line,
                    column,
                )
            ],
        ) from None
    except (
        yaml.YAMLError
    ) as exc:  # pragma: no cover - every pyyaml error carries a mark or position
        raise PlanInvalid(file, [PlanIssue(file, f"YAML error: {exc}", 1, 1)]) from None
    if root is None:
        return LoadedYaml(None, {})
    builder = _Builder(file)
    data = builder.build(root, (), None)
    if builder.issues:
        raise PlanInvalid(file, builder.issues)
    return LoadedYaml(data, builder.marks)


def _codepoint(character: object) -> str:
    if isinstance(character, str) and len(character) == 1:
        return f"U+{ord(character):04X}"
    if isinstance(character, int):
        return f"byte 0x{character:02X}"
    return "an unprintable character"  # pragma: no cover


def _position_of(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    line = before.count("\n") + 1
    column = index - (before.rfind("\n") + 1) + 1
    return line, column


class _Builder:
    """Turns composed YAML nodes into plain data, collecting marks and problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.marks: dict[NodePath, Mark] = {}
        self.issues: list[PlanIssue] = []
        self._count = 0
        self._active: set[int] = set()
        self._constructor = SafeConstructor()
        self._too_big = False

    def issue(self, node: Node, message: str, path: NodePath) -> None:
        self.issues.append(
            PlanIssue(
                self.file,
                message,
                node.start_mark.line + 1,
                node.start_mark.column + 1,
                format_path(path) or None,
            )
        )

    def build(self, node: Node, path: NodePath, key: Node | None) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            if not self._too_big:
                self._too_big = True
                self.issue(
                    node,
                    f"the document expands to more than {MAX_NODES:,} values (an alias bomb?); "
                    "a plan is a short file, remove the repeated aliases",
                    path,
                )
            return None
        self.marks[path] = Mark(
            line=node.start_mark.line + 1,
            column=node.start_mark.column + 1,
            key_line=key.start_mark.line + 1 if key is not None else None,
            key_column=key.start_mark.column + 1 if key is not None else None,
            style=node.style if isinstance(node, ScalarNode) else None,
            single_line=node.start_mark.line == node.end_mark.line,
        )
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if len(path) >= MAX_DEPTH:
            # Only aliases get here: each may add up to MAX_DEPTH levels to where it is used.
            self.issue(node, f"{_too_deep_message()} (through aliases)", path)
            return None
        if id(node) in self._active:
            self.issue(node, "an alias refers to a node that contains it (a loop)", path)
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        self.issue(node, "unsupported YAML node", path)  # pragma: no cover
        return None  # pragma: no cover

    def _scalar(self, node: ScalarNode, path: NodePath) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            self.issue(node, _tag_message(tag), path)
            return None
        if tag == f"{_TAG}str" or tag == f"{_TAG}timestamp":
            # Dates stay text: no plan key holds a date, and a description such as
            # "2026-11-01 reload" must not turn into a datetime.
            return node.value
        if tag == f"{_TAG}null":
            return None
        if tag == f"{_TAG}bool" and path in _WORD_PATHS and node.style is None:
            return node.value  # `delivery: off` means the word, not YAML 1.1's false
        try:
            if tag == f"{_TAG}bool":
                return self._constructor.construct_yaml_bool(node)
            if tag == f"{_TAG}int":
                return self._int(node, path)
            value = self._constructor.construct_yaml_float(node)
        except (ValueError, yaml.YAMLError):
            kind = tag.removeprefix(_TAG)
            self.issue(node, f"this value is tagged !!{kind} but is not one", path)
            return None
        if not math.isfinite(value):
            self.issue(
                node,
                "infinite and not-a-number values (.inf, .nan) are not allowed in a plan",
                path,
            )
            return None
        return value

    def _int(self, node: ScalarNode, path: NodePath) -> int | None:
        # Python refuses to convert more than 4,300 digits; no plan value needs 100.
        number = None
        if len(node.value) <= _MAX_INT_CHARS:
            number = self._constructor.construct_yaml_int(node)
        if number is None or not _INT_MIN <= number <= _INT_MAX:
            self.issue(
                node,
                f"whole numbers in a plan must fit in 64 bits ({_INT_MIN} to {_INT_MAX}), as "
                "JSON tools read them; check this value",
                path,
            )
            return None
        return number

    def _sequence(self, node: SequenceNode, path: NodePath) -> list[Any]:
        if node.tag != f"{_TAG}seq":
            self.issue(node, _tag_message(node.tag), path)
        return [self.build(child, (*path, i), None) for i, child in enumerate(node.value)]

    def _mapping(self, node: MappingNode, path: NodePath) -> dict[str, Any]:
        if node.tag != f"{_TAG}map":
            self.issue(node, _tag_message(node.tag), path)
        result: dict[str, Any] = {}
        first_seen: dict[str, Node] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self.issue(key_node, "a key must be plain text, not a list or a mapping", path)
                continue
            # Keys are always text in a plan (JSON objects have string keys), so
            # `2024:` or `yes:` are kept as written instead of becoming int/bool.
            key = key_node.value
            if key in first_seen:
                first = first_seen[key].start_mark
                self.issue(
                    key_node,
                    f'duplicate key "{key}" (first written at line {first.line + 1}, column '
                    f"{first.column + 1}); keep one of them",
                    (*path, key),
                )
                continue
            first_seen[key] = key_node
            result[key] = self.build(value_node, (*path, key), key_node)
        for merge in merges:
            self._merge(merge, path, result)
        return result

    def _merge(self, merge: Node, path: NodePath, result: dict[str, Any]) -> None:
        sources = merge.value if isinstance(merge, SequenceNode) else [merge]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.issue(source, "a << merge needs a mapping (or a list of mappings)", path)
                continue
            for key_node, value_node in source.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == f"{_TAG}merge":
                    continue
                # Keys written in the mapping itself win over merged ones, as in YAML 1.1.
                if key_node.value not in result:
                    result[key_node.value] = self.build(
                        value_node, (*path, key_node.value), key_node
                    )


def _tag_message(tag: str) -> str:
    shown = tag.replace(_TAG, "!!")
    return (
        f"the YAML tag {shown} is not allowed; plans use plain YAML values only "
        "(text, numbers, true/false, null, lists and mappings)"
    )


def format_path(path: NodePath) -> str:
    """``("verify", "smoke_queries", 0, "top_k")`` → ``verify.smoke_queries[0].top_k``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


_SYNTAX_REPHRASINGS: tuple[tuple[str, str], ...] = (
    (
        "found character '\\t' that cannot start any token",
        "a tab character: YAML indents with spaces only; replace the tab with spaces",
    ),
    (
        "mapping values are not allowed here",
        "unexpected ':' here; quote a value that contains ': ', or fix this line's indentation",
    ),
    (
        "could not find expected ':'",
        "expected 'key: value' here; a ':' is missing or a quote is not closed on this line "
        "or the one above",
    ),
    (
        "expected a single document in the stream",
        "the file holds more than one YAML document ('---'); a plan is a single document",
    ),
    (
        "did not find expected key",
        "this line does not line up with the keys above it; check its indentation "
        "(or a '- ' list item placed inside a mapping)",
    ),
    (
        "did not find expected '-' indicator",
        "this line does not line up with the list above it; list items start with '- ' "
        "at the same indentation",
    ),
    (
        "found unknown escape character",
        "an unknown escape sequence in a double-quoted value; use single quotes, or write "
        "the backslash as \\\\",
    ),
)


def _syntax_issue(exc: yaml.MarkedYAMLError, file: str, text: str) -> PlanIssue:
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or "").strip()
    both = f"{exc.context or ''} {problem}"
    message = ""
    for needle, plain in _SYNTAX_REPHRASINGS:
        if needle in both:
            message = plain
            break
    if "found unexpected end of stream" in problem and exc.context_mark is not None:
        # The end of the file is not where the mistake is; the opening quote is.
        mark = exc.context_mark
        message = "this quoted value is never closed; add the closing quote"
    if not message and problem.startswith("found undefined alias"):
        name = problem.removeprefix("found undefined alias").strip()
        message = (
            f"the alias *{name.strip(chr(39))} has no anchor &{name.strip(chr(39))} above it; "
            "define the anchor first"
        )
    if not message and problem.startswith("expected <block end>"):
        message = "this line's indentation does not match the lines above it"
    if not message and problem.startswith("found character"):
        message = (
            f"{problem.removeprefix('found ')}; quote the value if it starts with "
            "a special character such as @ or `"
        )
    if not message:
        context = f" ({exc.context.strip()})" if exc.context else ""
        message = f"YAML syntax error: {problem}{context}"
    if mark is None:  # pragma: no cover - pyyaml always sets a mark on these errors
        return PlanIssue(file, message)
    lines = text.splitlines()
    line_text = lines[mark.line] if mark.line < len(lines) else ""
    if "${" in line_text and "flow" in f"{exc.context} {problem}":
        # `{key: ${X}}` is a YAML error: braces inside a flow mapping end it early.
        message += '; inside { } or [ ], quote a value that uses ${…}: key: "${NAME}"'
    return PlanIssue(file, message, mark.line + 1, mark.column + 1)
