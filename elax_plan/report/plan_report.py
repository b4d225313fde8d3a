"""The report of several plans at once: one document, rendered as text, markdown or JSON.

Owns the plan-report document (``format_version`` ``REPORT_FORMAT_VERSION``, described by
``schemas/plan-report.schema.json``): an entry per plan — the plan file as given, its
name, ``status`` (``changes``, ``no_changes`` or ``failed``), the error of a failed plan,
the leases held on it, the exact ``apply`` command and its execution-plan document
(``null`` when the plan could not be computed) — the plans ``--changed-from`` left out
as unchanged, and the combined totals and closing line. It also owns the combined exit
code (``report_exit_code``) and the two renderers.

The markdown is a pull-request comment: it opens with ``REPORT_MARKER`` (the hidden line
``elax-plan comment`` finds its comment by) and stays under ``MARKDOWN_BUDGET``, well
inside GitHub's ``GITHUB_COMMENT_LIMIT``. Failed plans come first, then plans with
changes, each in an open ``<details>`` with the single-plan comment (``render_markdown``:
its own ``<!-- elax-plan:NAME -->`` marker, files, preconditions with live values), the
lease holder and the apply command. When they do not all fit, later plans are shown
short (files counted, preconditions kept), then as one line each, then cut; plans
without changes are one line each. The comment says what it folded or cut.

Pure: documents in, text out. Nothing here reads live objects, files or the clock. The
text is redacted last (``spec.redact``), so no secret can reach a comment.
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from elax_plan.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from elax_plan.execution_plan import format_bytes, format_count, plural
from elax_plan.report.plan_render import (
    LEGEND,
    fold_counts,
    marker,
    render_markdown,
    render_text,
    shown_path,
)
from elax_plan.spec import is_credential_env_name, redact

REPORT_FORMAT_VERSION = "1.0"
GITHUB_COMMENT_LIMIT = 65_536
# What the markdown report aims for: GitHub's limit less room for a footer a caller adds.
MARKDOWN_BUDGET = 60_000
REPORT_MARKER = "<!-- elax-plan:report -->"
SHORT_FILE_ROWS = 5
_NOTES_RESERVE = 1_500  # room kept for the closing line and the notes on what was folded
_ICONS = {"failed": "❌", "changes": "📝", "no_changes": "✅"}
_ORDER = {"failed": 0, "changes": 1, "no_changes": 2}


# --- the document ----------------------------------------------------------------------------


def apply_command(plan_file: str, var_items: Sequence[str] = ()) -> str:
    """``elax-plan apply PLAN`` as the plan was named, with its ``--var`` flags; a value that
    is a registered secret, or whose name says credential (``*_TOKEN``…), shows as ``***``."""
    words = ["elax-plan", "apply", plan_file]
    for item in var_items:
        name, _, value = item.partition("=")
        if is_credential_env_name(name):  # named like a credential: a secret wherever used
            value = "***"
        words += ["--var", redact(f"{name}={value}")]  # before quoting: no bare `***`
    return redact(shlex.join(words))


def plan_entry(
    plan_file: str,
    command: str,
    *,
    name: str | None = None,
    execution_plan: Mapping[str, Any] | None = None,
    error: str | None = None,
    leases: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """One plan of the report: computed (``execution_plan``), failed (``error``), or both
    (a failed precondition: the plan is shown and ``apply`` would stop before writing)."""
    if execution_plan is None and error is None:
        raise ValueError("a plan entry needs an execution plan or an error")
    if error is not None:
        status = "failed"
    else:
        assert execution_plan is not None
        status = "changes" if execution_plan["totals"]["changes"] else "no_changes"
    if execution_plan is not None:
        name = str(execution_plan["plan"]["name"])
    return {
        "file": plan_file,
        "name": name,
        "status": status,
        "error": error,
        "apply_command": command,
        "leases": [dict(lease) for lease in leases],
        "execution_plan": dict(execution_plan) if execution_plan is not None else None,
    }


def build_report(
    entries: Sequence[Mapping[str, Any]],
    *,
    changed_from: str | None = None,
    unchanged: Sequence[str] = (),
) -> dict[str, Any]:
    """The report document of ``entries`` (``plan_entry``), with the plans left out."""
    totals = report_totals(entries, unchanged)
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "changed_from": changed_from,
        "plans": [dict(e) for e in entries],
        "unchanged": list(unchanged),
        "totals": totals,
        "summary_line": report_summary_line(totals),
    }


def report_totals(
    entries: Sequence[Mapping[str, Any]], unchanged: Sequence[str] = ()
) -> dict[str, int]:
    """Counts of plans by status, and what the plans with changes would write."""
    changing = [e["execution_plan"]["totals"] for e in entries if e["status"] == "changes"]
    return {
        "plans": len(entries),
        "with_changes": len(changing),
        "without_changes": sum(1 for e in entries if e["status"] == "no_changes"),
        "failed": sum(1 for e in entries if e["status"] == "failed"),
        "files_to_write": sum(int(t["files_to_write"]) for t in changing),
        "rows": sum(int(t["rows"]) for t in changing),
        "bytes": sum(int(t["bytes"]) for t in changing),
        "requests": sum(int(t["requests"]) for t in changing),
        "destructive": sum(int(t["destructive"]) for t in changing),
        "unchanged": len(unchanged),
    }


def report_summary_line(totals: Mapping[str, int]) -> str:
    """``3 plans: 2 with changes (5 files to write, ~1,234 rows), 1 without; 1 failed.``"""
    n = totals["plans"]
    if not n:
        return "No plans to plan."
    changes, without, failed = totals["with_changes"], totals["without_changes"], totals["failed"]
    parts: list[str] = []
    if changes:
        parts.append(
            f"{format_count(changes)} with changes ({plural(totals['files_to_write'], 'file')} "
            f"to write, ~{plural(totals['rows'], 'row')}, {format_bytes(totals['bytes'])})"
        )
    if without:
        parts.append(f"{format_count(without)} without" + ("" if changes else " changes"))
    line = f"{plural(n, 'plan')}: " + (", ".join(parts) or "none computed")
    if failed:
        line += f"; {format_count(failed)} failed"
    return line + "."


def unchanged_line(report: Mapping[str, Any]) -> str | None:
    """The one line naming the plans ``--changed-from`` left out, if it left any out."""
    left_out = report["unchanged"]
    if not left_out:
        return None
    names = ", ".join(left_out[:20]) + (
        f" and {len(left_out) - 20} more" if len(left_out) > 20 else ""
    )
    return (
        f"Left out, unchanged since {report['changed_from']}: "
        f"{plural(len(left_out), 'plan')} ({names})."
    )


def report_exit_code(report: Mapping[str, Any], *, detailed: bool = False) -> int:
    """1 if any plan failed; else, with ``detailed``, 2 if any has changes; else 0."""
    totals = report["totals"]
    if totals["failed"]:
        return EXIT_ERROR
    if detailed and totals["with_changes"]:
        return EXIT_CHANGES
    return EXIT_OK


# --- text ------------------------------------------------------------------------------------


def render_report_text(report: Mapping[str, Any], colour: bool = False) -> str:
    """Every plan in the order given, as ``plan`` prints one, then the closing lines."""
    out: list[str] = []
    for entry in report["plans"]:
        out.append(_bold(f"══ {entry['file']} ══", colour))
        doc = entry["execution_plan"]
        if doc is not None:
            out.append(render_text(doc, colour=colour).rstrip("\n"))
        if entry["error"]:
            out.append(f"Error: {entry['error']}")
        for lease in entry["leases"]:
            out.append(f"! {lease['lease']} lease {lease['state']}: {lease['detail']}")
        out.append(f"Apply: {entry['apply_command']}")
        out.append("")
    left_out = unchanged_line(report)
    if left_out:
        out.append(left_out)
    out.append(_bold(report["summary_line"], colour))
    return redact("\n".join(out) + "\n")


def _bold(text: str, colour: bool) -> str:
    return f"\x1b[1m{text}\x1b[0m" if colour else text


# --- markdown --------------------------------------------------------------------------------


def _code(text: object) -> str:
    return "`" + str(text).replace("`", "'") + "`"


def _one_line(text: str, width: int = 300) -> str:
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _title(entry: Mapping[str, Any]) -> str:
    """A section's ``<summary>``: HTML, as GitHub renders no markdown there."""
    name = entry["name"] or entry["file"]
    doc = entry["execution_plan"]
    what = f"failed: {entry['error']}" if entry["status"] == "failed" else doc["summary_line"]
    return (
        f"{_ICONS[entry['status']]} <code>{html.escape(name)}</code> — "
        f"{html.escape(_one_line(what, 200))}"
    )


def _extras(entry: Mapping[str, Any]) -> list[str]:
    """What every plan section ends with: its error, leases held and the apply command."""
    out: list[str] = []
    if entry["error"]:
        error = entry["error"][:4_000].replace("`" * 3, "'" * 3)
        out += ["**❌ Failed:**", "", "```text", error, "```", ""]
    for lease in entry["leases"]:
        out += [f"🔒 **{lease['lease']} lease {lease['state']}**: {_one_line(lease['detail'])}", ""]
    out += ["Apply with:", "", "```sh", entry["apply_command"].replace("`", "'"), "```"]
    return out


def _section(entry: Mapping[str, Any], body: list[str]) -> str:
    head = f"<details open>\n<summary>{_title(entry)}</summary>\n"
    return head + "\n" + "\n".join([*body, *_extras(entry)]) + "\n\n</details>\n"


def _full(entry: Mapping[str, Any]) -> str:
    doc = entry["execution_plan"]
    if doc is None:
        return _section(entry, [marker(entry["name"] or entry["file"]), ""])
    return _section(entry, [render_markdown(doc).rstrip("\n"), ""])


def _short(entry: Mapping[str, Any]) -> str:
    """Summary line, the first few files and the others counted, preconditions, extras."""
    doc = entry["execution_plan"]
    if doc is None:
        return _full(entry)
    base = doc["plan"].get("base")
    files = [f for f in doc["files"] if f["symbol"] != "="]
    body = [marker(doc["plan"]["name"]), f"**{_one_line(doc['summary_line'])}**", ""]
    body += [
        f"- {_code(f['symbol'])} {_code(shown_path(f['url'], base))}"
        for f in files[:SHORT_FILE_ROWS]
    ]
    rest = files[SHORT_FILE_ROWS:] + [f for f in doc["files"] if f["symbol"] == "="]
    if rest:
        body.append(f"- … and {plural(len(rest), 'more file')}: {fold_counts(rest)}")
    body += ["", LEGEND, "", "| | precondition | live | required |", "|---|---|---|---|"]
    for c in doc["preconditions"]:
        body.append(
            f"| {'✅' if c['ok'] else '❌'} | {_one_line(c['title'], 120)} | "
            f"{_one_line(c['live'], 120)} | {_one_line(c['required'], 120)} |"
        )
    return _section(entry, [*body, ""])


def _line(entry: Mapping[str, Any]) -> str:
    """One bullet: status, name, what it would do (or why it failed), lease, apply command."""
    name = entry["name"] or entry["file"]
    lease = " · 🔒 a run holds its lease" if entry["leases"] else ""
    apply = f" · {_code(entry['apply_command'])}" if entry["status"] != "no_changes" else ""
    brief = f"{_ICONS[entry['status']]} {_code(name)}: {_brief(entry)}"
    return f"- {brief}{lease}{apply} {marker(name)}\n"


def _brief(entry: Mapping[str, Any]) -> str:
    """A few words for one line: the error, or what the plan would write."""
    if entry["status"] == "failed":
        return "failed: " + _one_line(entry["error"], 150)
    totals = entry["execution_plan"]["totals"]
    if not totals["changes"]:
        return "no changes"
    text = f"{plural(totals['files_to_write'], 'file')} to write, ~{plural(totals['rows'], 'row')}"
    if totals["destructive"]:
        text += f", **{plural(totals['destructive'], 'destructive step')}**"
    return text


def render_report_markdown(report: Mapping[str, Any], budget: int = MARKDOWN_BUDGET) -> str:
    """The report as one pull-request comment of at most ``budget`` characters."""
    entries = sorted(report["plans"], key=lambda e: _ORDER[e["status"]])
    shown = [e for e in entries if e["status"] != "no_changes"]
    quiet = [e for e in entries if e["status"] == "no_changes"]
    head = [REPORT_MARKER, f"## elax-plan: {report['summary_line']}", ""]
    left_out = unchanged_line(report)
    if left_out:
        head += [_one_line(left_out, 3_000), ""]
    quiet_lines = [_line(e) for e in quiet]
    # Plans without changes get at most a quarter of the comment before the others are fit.
    quiet_reserve = min(sum(len(q) for q in quiet_lines) + 200, budget // 4) if quiet else 0
    room = budget - len("\n".join(head)) - quiet_reserve - _NOTES_RESERVE
    sections, levels = _fit(shown, room)
    quiet_room = room + quiet_reserve - sum(len(s) + 1 for s in sections)
    quiet_block, listed = _quiet_block(quiet_lines, quiet_room)
    notes = _fold_notes(levels, len(quiet), len(quiet) - listed)
    text = "\n".join(head) + "\n" + "\n".join(sections) + "\n" + quiet_block + notes
    text = redact(text)
    if len(text) > budget:  # only with absurd names or errors; stay postable
        cut = budget - 200
        text = text[:cut] + "\n\n… (cut here to stay under GitHub's comment limit)\n"
    return text


def _quiet_block(lines: Sequence[str], room: int) -> tuple[str, int]:
    """The plans without changes, one line each while they fit in ``room``, in a closed
    block; and how many were listed."""
    if not lines:
        return "", 0
    head = f"<details>\n<summary>✅ {plural(len(lines), 'plan')} without changes</summary>\n\n"
    tail = "\n</details>\n\n"
    listed: list[str] = []
    used = len(head) + len(tail) + 100  # the "… and N more" line
    for line in lines:
        if used + len(line) > room:
            break
        listed.append(line)
        used += len(line)
    more = len(lines) - len(listed)
    rest = f"- … and {plural(more, 'more plan')} without changes\n" if more else ""
    return head + "".join(listed) + rest + tail, len(listed)


_LEVELS: tuple[Callable[[Mapping[str, Any]], str], ...] = (_full, _short, _line)


def _fit(entries: Sequence[Mapping[str, Any]], room: int) -> tuple[list[str], list[int]]:
    """Each plan at the most detail that leaves every later plan room for one line; the
    plans whose one lines no longer fit at all are cut.

    Levels: 0 full, 1 short, 2 one line, 3 cut."""
    lines = [len(_line(e)) + 1 for e in entries]
    kept, reserve = 0, 0
    while kept < len(entries) and reserve + lines[kept] <= room:
        reserve += lines[kept]
        kept += 1
    sections: list[str] = []
    levels: list[int] = []
    used = 0
    for i, entry in enumerate(entries[:kept]):
        reserve -= lines[i]
        tries = ((level, render(entry)) for level, render in enumerate(_LEVELS))
        # The one line always fits: the loop above kept room for it.
        level, text = next((lv, t) for lv, t in tries if used + len(t) + 1 + reserve <= room)
        sections.append(text)
        levels.append(level)
        used += len(text) + 1
    return sections, levels + [3] * (len(entries) - kept)


def _fold_notes(levels: Sequence[int], quiet: int, quiet_cut: int) -> str:
    """What the comment folded or cut, said in plain words (empty when nothing was)."""
    notes: list[str] = []
    if quiet:
        notes.append(f"{plural(quiet, 'plan')} without changes {_are(quiet)} listed by name only.")
    if quiet_cut:
        notes.append(f"cut: {plural(quiet_cut, 'plan')} without changes not listed.")
    short, line, cut = (sum(1 for lv in levels if lv == k) for k in (1, 2, 3))
    if short:
        notes.append(
            f"{plural(short, 'plan')} {_are(short)} shown short (first {SHORT_FILE_ROWS} files, "
            "the rest counted) to fit GitHub's comment limit."
        )
    if line:
        notes.append(
            f"{plural(line, 'plan')} {_are(line)} shown as one line each (run "
            "`elax-plan plan FILE` for the whole plan)."
        )
    if cut:
        notes.append(
            f"cut: {plural(cut, 'plan')} not shown — run `elax-plan plan` locally, or "
            "`elax-plan plan --format json`, for every plan."
        )
    if not notes:
        return ""
    return "**Folded:** " + " ".join(notes) + "\n"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"
