"""Render an execution-plan JSON document as terminal text or as a pull-request comment.

Reads only the JSON (``format_version`` 1.2). Text may carry ANSI colour;
markdown stays under ``MARKDOWN_LIMIT`` characters however many files there
are: long file lists are folded with a count per action. Local paths under the
directory the plan resolved them against (``plan.base``) are shown relative to
it, as the plan file writes them; other local paths as paths; object-store URLs
as written. The markdown starts with a hidden marker (``marker``) that finds a
plan's comment on a pull request again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from elax_plan.execution_plan import format_bytes, format_count, plural
from elax_plan.spec import format_duration

MARKDOWN_LIMIT = 60_000
MARKDOWN_FILE_ROWS = 50
TEXT_UNCHANGED_ROWS = 10
URL_WIDTH = 120

_COLOURS = {
    "+": "32",
    "~": "33",
    ">": "36",
    "=": "2",
    "-": "31",
    "ok": "32",
    "bad": "31",
    "warn": "33",
    "bold": "1",
}
_NOUNS = {"+": "new", "~": "changed", ">": "resumed", "=": "unchanged", "-": "gone"}


def _paint(colour: bool) -> Callable[[str, str], str]:
    def paint(text: str, key: str) -> str:
        return f"\x1b[{_COLOURS[key]}m{text}\x1b[0m" if colour else text

    return paint


LEGEND = (
    "`+` new · `~` changed since it was written · `>` resumes where it stopped · "
    "`=` unchanged, skipped · `-` gone from the source"
)


def marker(name: str) -> str:
    """The hidden line that marks a plan's pull-request comment."""
    return f"<!-- elax-plan:{name} -->"


def shown_path(where: str, base: str | None) -> str:
    """A URL or path as a reviewer can use it: relative under ``base``, else a plain path
    for local files, else the URL as written."""
    path = where[len("file://") :] if where.startswith("file://") else where
    root = base[len("file://") :].rstrip("/") + "/" if base else None
    if root and path.startswith(root):
        return path[len(root) :] or "."
    return path if where.startswith(("file://", "/")) else where


def _short(url: str, width: int = URL_WIDTH) -> str:
    return url if len(url) <= width else "…" + url[-(width - 1) :]


def _resume_text(resume: Mapping[str, Any] | None) -> str:
    if not resume:
        return ""
    if resume.get("row"):
        return f"resumes at row {format_count(int(resume['row']))}"
    if resume.get("line"):
        return (
            f"resumes at line {format_count(int(resume['line']) + 1)} "
            f"(byte {format_count(int(resume.get('offset', 0)))})"
        )
    return "resumes where it stopped"


def _file_note(f: Mapping[str, Any]) -> str:
    if f["action"] == "resume":
        return f"{_resume_text(f.get('resume_from'))}; {f['reason']}"
    return str(f["reason"])


def _file_estimate(f: Mapping[str, Any]) -> str:
    if f["action"] in ("skip", "gone"):
        return format_bytes(int(f["size"]))
    return (
        f"{format_bytes(int(f['size']))}, ~{plural(int(f['est_rows']), 'row')}, "
        f"~{plural(int(f['est_requests']), 'request')}"
    )


def _server(server: Mapping[str, Any]) -> str:
    """Which elacsym tip the probe recognised, and from what."""
    family = server["family"]
    looks = "not recognised" if family == "unknown" else f"looks like elacsym {family}"
    return f"{looks} ({server['detail']})" if server["detail"] else looks


def _settings(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The settings a reviewer approves, as (name, value) rows."""
    st = doc["settings"]
    bad = (
        "fail the run on the first"
        if st["on_invalid_row"] == "fail"
        else f"skip and count, at most {format_count(st['max_invalid_rows'])}"
    )
    estimate = (
        f"~{format_duration(max(1.0, st['estimated_write_s']))} of writing at an assumed "
        f"{format_bytes(st['assumed_bytes_per_s'])}/s; throttle pauses, indexing and "
        "verification come on top"
        if st["estimated_write_s"]
        else "nothing to write"
    )
    return [
        (
            "chunks",
            f"{format_bytes(st['chunk_bytes'])} (requests ≤ "
            f"{format_bytes(st['max_request_bytes'])})",
        ),
        ("concurrency", f"{st['concurrency']}"),
        ("invalid rows", bad),
        (
            "throttle",
            f"pause above a WAL lag of {st['max_wal_lag']}, resume at "
            f"{st['resume_wal_lag']}; poll every {format_duration(st['poll_interval_s'])}, "
            f"stalled after {format_duration(st['stall_timeout_s'])}",
        ),
        ("indexer", f"{doc['indexer']['mode']}: {doc['indexer']['detail']}"),
        ("delivery", f"{doc['delivery']['mode']}: {doc['delivery']['detail']}"),
        ("estimate", estimate),
    ]


def _last_run(doc: Mapping[str, Any]) -> str | None:
    last = doc.get("last_run")
    if not last:
        return None
    text = f"{last['run_id']}, verification {last['verification']}"
    if last["summary"]:
        text += f"; summary at {shown_path(last['summary'], doc['plan'].get('base'))}"
    return text


def _files(n: int) -> str:
    return "file" if n == 1 else "files"


def fold_counts(files: list[Mapping[str, Any]]) -> str:
    """``9,000 new, 950 unchanged`` for the files a renderer does not list one by one."""
    counts = Counter(f["symbol"] for f in files)
    return ", ".join(
        f"{format_count(counts[s])} {_NOUNS[s]} ({s})" for s in "+~>=-" if counts.get(s)
    )


# --- text ----------------------------------------------------------------------------------


def render_text(doc: Mapping[str, Any], colour: bool = False) -> str:
    """The plan as a person reads it in a terminal."""
    paint = _paint(colour)
    p, t, ns = doc["plan"], doc["target"], doc["namespace"]
    lines = [
        paint(f'Plan "{p["name"]}"', "bold")
        + (f" — {p['description']}" if p.get("description") else "")
    ]
    base = p.get("base")
    dims = f", {t['vector_dims']} dims" if t.get("vector_dims") else ""
    lines.append(f"  file:      {shown_path(p['file'], base)}")
    lines.append(f"  target:    {t['url']} namespace {t['namespace']} ({t['metric']}{dims})")
    lines.append(f"  server:    {_server(t['server'])}")
    lines.append(f"  store:     {shown_path(t['store'], base)}")
    if ns["exists"]:
        lines.append(
            f"  namespace: epoch {ns['epoch']}, wal_highwater {ns['wal_highwater']}, "
            f"indexed_wal {ns['indexed_wal']} (lag {ns['wal_lag']}), "
            f"{plural(int(ns['parts']), 'part')} ({plural(int(ns['part_rows']), 'row')})"
        )
    else:
        lines.append("  namespace: does not exist yet (created by the first write)")
    last = _last_run(doc)
    if last:
        lines.append(f"  last run:  {last}")
    lines.append(f"  observed:  {doc['observed_at']}")
    lines.append("")
    lines.append(paint("Settings:", "bold"))
    lines += [f"  {name + ':':<14}{value}" for name, value in _settings(doc)]
    lines.append("")
    files = doc["files"]
    lines.append(paint("Source files:", "bold"))
    unchanged = [f for f in files if f["symbol"] == "="]
    shown_unchanged = unchanged[:TEXT_UNCHANGED_ROWS]
    for f in files:
        if f["symbol"] == "=" and f not in shown_unchanged:
            continue
        sym = paint(f["symbol"], f["symbol"])
        lines.append(f"  {sym} {_short(shown_path(f['url'], base))}")
        lines.append(f"      {_file_estimate(f)} — {_file_note(f)}")
    if len(unchanged) > len(shown_unchanged):
        rest = len(unchanged) - len(shown_unchanged)
        lines.append(paint(f"  = … and {format_count(rest)} more unchanged {_files(rest)}", "="))
    if not files:
        lines.append("  (none)")
    lines.append("")
    lines.append(paint("Preconditions:", "bold"))
    for c in doc["preconditions"]:
        mark = paint("✓", "ok") if c["ok"] else paint("✗", "bad")
        line = f"  {mark} {c['title']}: {c['live']} (required {c['required']})"
        if c["detail"]:
            line += f" — {c['detail']}"
        lines.append(line)
    if doc["post_steps"]:
        lines.append("")
        head = "Then"
        if doc.get("verification_reason"):
            head += f" ({doc['verification_reason']})"
        lines.append(paint(head + ":", "bold"))
        for s in doc["post_steps"]:
            sym = paint("-", "-") if s["kind"] == "wal_trim" else "?"
            lines.append(f"  {sym} {s['title']}: {s['detail']}")
            if s.get("warning"):
                lines.append(paint(f"      ! {s['warning']}", "warn"))
    if doc["warnings"]:
        lines.append("")
        for w in doc["warnings"]:
            lines.append(paint(f"! {w}", "warn"))
    lines.append("")
    lines.append(paint(doc["summary_line"], "bold"))
    return "\n".join(lines) + "\n"


# --- markdown ------------------------------------------------------------------------------


def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(text: object) -> str:
    return "`" + str(text).replace("`", "'") + "`"


def render_markdown(doc: Mapping[str, Any]) -> str:
    """The plan as a pull-request comment: headline, tables, folded long lists."""
    p, t, ns = doc["plan"], doc["target"], doc["namespace"]
    base = p.get("base")
    out: list[str] = [marker(p["name"]), f"### elax-plan: {_code(p['name'])}", ""]
    if p.get("description"):
        out += [f"> {_cell(p['description'])}", ""]
    out += [f"**{_cell(doc['summary_line'])}**", ""]
    dims = f", {t['vector_dims']} dims" if t.get("vector_dims") else ""
    last = _last_run(doc)
    out += [
        "| what | value |",
        "|---|---|",
        f"| plan file | {_code(shown_path(p['file'], base))} (sha256 {p['digest'][:12]}) |",
        f"| target | {_code(t['url'])} namespace {_code(t['namespace'])} ({t['metric']}{dims}) |",
        f"| server | {_cell(_server(t['server']))} |",
        f"| store | {_code(shown_path(t['store'], base))} |",
        (
            f"| namespace | epoch {ns['epoch']}, wal_highwater {ns['wal_highwater']}, "
            f"indexed_wal {ns['indexed_wal']} (lag {ns['wal_lag']}), "
            f"{plural(int(ns['parts']), 'part')} |"
            if ns["exists"]
            else "| namespace | does not exist yet |"
        ),
        *([f"| last run | {_cell(last)} |"] if last else []),
        f"| observed | {doc['observed_at']} |",
        "",
        "#### Settings",
        "",
        "| setting | value |",
        "|---|---|",
        *[f"| {name} | {_cell(value)} |" for name, value in _settings(doc)],
        "",
        "#### Source files",
        "",
    ]
    files = doc["files"]
    if files:
        out += ["| | file | size / estimate | note |", "|---|---|---|---|"]
        for f in files[:MARKDOWN_FILE_ROWS]:
            out.append(
                f"| {_code(f['symbol'])} | {_code(_short(shown_path(f['url'], base)))} | "
                f"{_cell(_file_estimate(f))} | {_cell(_file_note(f))} |"
            )
        rest = files[MARKDOWN_FILE_ROWS:]
        if rest:
            more = f"{format_count(len(rest))} more {_files(len(rest))}"
            out += ["", f"… and {more}: {fold_counts(rest)}."]
        out += ["", LEGEND]
    else:
        out.append("(none)")
    out += ["", "#### Preconditions", "", "| | check | live | required |", "|---|---|---|---|"]
    for c in doc["preconditions"]:
        mark = "✅" if c["ok"] else "❌"
        detail = f" — {c['detail']}" if c["detail"] else ""
        out.append(
            f"| {mark} | {_cell(c['title'])}{_cell(detail)} | {_cell(c['live'])} | "
            f"{_cell(c['required'])} |"
        )
    if doc["post_steps"]:
        head = "#### Then"
        if doc.get("verification_reason"):
            head += f" ({doc['verification_reason']})"
        out += ["", head, ""]
        for i, s in enumerate(doc["post_steps"], 1):
            out.append(f"{i}. **{_cell(s['title'])}**: {_cell(s['detail'])}")
            if s.get("warning"):
                out.append(f"   - ⚠️ {_cell(s['warning'])}")
    if doc["warnings"]:
        out += ["", "#### Warnings", ""]
        out += [f"- ⚠️ {_cell(w)}" for w in doc["warnings"]]
    text = "\n".join(out) + "\n"
    if len(text) > MARKDOWN_LIMIT:  # only with absurd URLs or descriptions; stay postable
        text = text[: MARKDOWN_LIMIT - 200] + "\n\n… (truncated to stay under 60,000 characters)\n"
    return text
