"""The several-plans report, from documents alone: folding under GitHub's comment limit,
the combined closing line and exit code, redaction, and the JSON schema."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import referencing

from elax_plan.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from elax_plan.execution_plan import format_bytes
from elax_plan.planner import build_plan
from elax_plan.report.plan_report import (
    GITHUB_COMMENT_LIMIT,
    REPORT_MARKER,
    apply_command,
    build_report,
    plan_entry,
    render_report_markdown,
    render_report_text,
    report_exit_code,
)
from elax_plan.spec import load_plan
from elax_plan.spec.secrets import register_secret
from tests.report.markdown_check import markdown_problems
from tests.test_planner import CASES, live_state


def _schema(name: str) -> dict[str, Any]:
    text = resources.files("elax_plan").joinpath(f"schemas/{name}").read_text()
    return dict(json.loads(text))


def report_validator() -> jsonschema.Draft202012Validator:
    """The plan-report schema, with the execution-plan schema it refers to."""
    plan_schema = _schema("execution-plan.schema.json")
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        plan_schema["$id"], referencing.Resource.from_contents(plan_schema)
    )
    report = _schema("plan-report.schema.json")
    jsonschema.Draft202012Validator.check_schema(report)
    return jsonschema.Draft202012Validator(report, registry=registry)


@cache
def _document(files: int, done: bool) -> dict[str, Any]:
    """An execution-plan document of the fresh-namespace case with ``files`` source files,
    each new (or, with ``done``, each already written: no changes)."""
    raw = json.loads((CASES / "fresh-namespace" / "live.json").read_text())
    template = raw["source"]["files"][0]
    raw["source"]["files"] = [
        {**template, "url": f"file:///data/products/very/long/prefix/part-{i:05d}.ndjson"}
        for i in range(files)
    ]
    spec = load_plan(CASES / "fresh-namespace" / "plan.yaml", env={})
    doc = build_plan(spec, live_state(raw)).to_json()
    if done:
        doc["files"] = [{**f, "action": "skip", "symbol": "="} for f in doc["files"]]
        doc["totals"] = {**doc["totals"], "files_to_write": 0, "rows": 0, "changes": False}
        doc["summary_line"] = f"No changes. {files} files unchanged."
    return doc


def document(name: str, files: int = 3, *, done: bool = False) -> dict[str, Any]:
    doc = _document(files, done)
    return {**doc, "plan": {**doc["plan"], "name": name}}


def entry(name: str, files: int = 3, *, done: bool = False, **extra: Any) -> dict[str, Any]:
    command = apply_command(f"plans/{name}.yaml")
    return plan_entry(
        f"plans/{name}.yaml", command, execution_plan=document(name, files, done=done), **extra
    )


def test_two_hundred_plans_of_a_thousand_files_fit_one_comment_and_say_what_was_folded() -> None:
    """200 plans × 1,000 new files: under 65,536 characters, the first plans in full, the
    rest folded; the comment says how many were shown short, as one line, or cut."""
    entries = [entry(f"plan-{i:03d}", 1_000) for i in range(200)]
    report = build_report(entries)
    md = render_report_markdown(report)
    assert len(md) < GITHUB_COMMENT_LIMIT - 4_000
    assert md.startswith(REPORT_MARKER + "\n## elax-plan: 200 plans: 200 with changes (")
    assert "(200,000 files to write" in md
    # The first plan in full: its own marker and comment, 50 file rows and the rest counted.
    assert "<!-- elax-plan:plan-000 -->\n### elax-plan: `plan-000`" in md
    assert "… and 950 more files: 950 new (+)." in md
    assert "elax-plan apply plans/plan-000.yaml" in md
    # Every plan is in the comment (none is cut), and the comment says how they were folded.
    assert all(f"<!-- elax-plan:plan-{i:03d} -->" in md for i in range(200))
    assert "**Folded:**" in md and "shown as one line each (run" in md
    assert "cut:" not in md
    problems = [p for p in markdown_problems(md) if "<details>" not in p]
    assert problems == []
    assert md.count("<details") == md.count("</details>")


def test_more_plans_than_one_comment_holds_are_cut_and_it_says_so() -> None:
    """With a small budget the last plans are cut, counted, and the local command named."""
    entries = [entry(f"p{i}", 100) for i in range(100)]
    md = render_report_markdown(build_report(entries), budget=8_000)
    assert len(md) <= 8_000
    cut = next(line for line in md.splitlines() if line.startswith("**Folded:**"))
    assert "plans not shown — run `elax-plan plan` locally" in cut
    shown = sum(1 for i in range(100) if f"<!-- elax-plan:p{i} -->" in md)
    assert f"cut: {100 - shown} plans not shown" in cut
    assert 0 < shown < 100
    assert all(f"<!-- elax-plan:p{i} -->" in md for i in range(shown))  # the first ones


def test_failures_come_first_and_plans_without_changes_by_name_only() -> None:
    """Failed, then changed, then unchanged plans (in a closed block, listed by name)."""
    entries = [
        entry("quiet-a", done=True),
        entry("busy"),
        plan_entry(
            "plans/broken.yaml", apply_command("plans/broken.yaml"), name="broken", error="bad YAML"
        ),
        entry("quiet-b", done=True),
    ]
    report = build_report(entries)
    md = render_report_markdown(report)
    order = [md.index(f"<!-- elax-plan:{n} -->") for n in ("broken", "busy", "quiet-a", "quiet-b")]
    assert order == sorted(order)
    assert "<summary>❌ <code>broken</code> — failed: bad YAML</summary>" in md
    assert "- ✅ `quiet-a`: no changes <!-- elax-plan:quiet-a -->" in md
    assert "<summary>✅ 2 plans without changes</summary>" in md
    assert "2 plans without changes are listed by name only." in md
    t = report["totals"]
    assert report["summary_line"] == (
        f"4 plans: 1 with changes (3 files to write, ~{t['rows']:,} rows, "
        f"{format_bytes(t['bytes'])}), 2 without; 1 failed."
    )


def test_combined_exit_code() -> None:
    """1 if any plan failed; else 2 with --detailed-exitcode if any has changes; else 0."""
    quiet, busy = entry("q", done=True), entry("b")
    failed = plan_entry("plans/x.yaml", "elax-plan apply plans/x.yaml", error="boom")
    assert report_exit_code(build_report([quiet]), detailed=True) == EXIT_OK
    assert report_exit_code(build_report([quiet, busy]), detailed=True) == EXIT_CHANGES
    assert report_exit_code(build_report([quiet, busy]), detailed=False) == EXIT_OK
    assert report_exit_code(build_report([busy, failed]), detailed=True) == EXIT_ERROR
    assert report_exit_code(build_report([quiet, failed]), detailed=False) == EXIT_ERROR


def test_a_precondition_failure_shows_the_plan_and_fails() -> None:
    """A plan whose precondition failed is failed, and its plan is shown with the error."""
    failing = entry("tight", error="a precondition failed: store budget")
    report = build_report([failing, entry("ok")])
    assert failing["status"] == "failed" and report["totals"]["failed"] == 1
    assert report["totals"]["with_changes"] == 1  # the failed plan's files are not counted
    md = render_report_markdown(report)
    assert "**❌ Failed:**\n\n```text\na precondition failed: store budget\n```" in md
    assert "#### Preconditions" in md.split("`ok`")[0]


def test_the_report_document_matches_its_schema() -> None:
    """Every kind of entry (changes, none, failed, a lease held) validates, with the plans'
    execution-plan documents checked against their own schema."""
    lease = {"lease": "plan", "state": "held", "detail": "apply by user a on host h (pid 1)"}
    report = build_report(
        [
            entry("a", leases=[lease]),
            entry("b", done=True),
            plan_entry("plans/c.yaml", "elax-plan apply plans/c.yaml", name="c", error="x"),
        ],
        changed_from="origin/main",
        unchanged=["plans/d.yaml"],
    )
    validator = report_validator()
    validator.validate(json.loads(json.dumps(report)))
    report["plans"][0]["execution_plan"]["files"] = "not a list"
    assert list(validator.iter_errors(report))  # the inner document is checked too


def test_secrets_never_reach_the_report() -> None:
    """A registered secret in an error, a --var value or a URL is *** in text and markdown."""
    register_secret("tok-report-0123456789")
    command = apply_command("plans/a b.yaml", ["API_KEY=tok-report-0123456789", "region=eu"])
    assert command == "elax-plan apply 'plans/a b.yaml' --var 'API_KEY=***' --var region=eu"
    named = apply_command("p.yaml", ["db_password=hunter22", "n=1"])
    assert named == "elax-plan apply p.yaml --var 'db_password=***' --var n=1"
    failed = plan_entry(
        "plans/a b.yaml", command, name="a", error="GET https://h/?token=tok-report-0123456789"
    )
    report = build_report([failed, entry("b")])
    for text in (render_report_markdown(report), render_report_text(report)):
        assert "tok-report-0123456789" not in text
        assert "--var 'API_KEY=***'" in text


def test_text_lists_each_plan_in_order_with_its_apply_command() -> None:
    """Text: a heading per plan in the order given, its plan, its apply command, the totals."""
    report = build_report([entry("b"), entry("a", done=True)], unchanged=["plans/c.yaml"])
    report["changed_from"] = "main"
    text = render_report_text(report)
    assert text.index("══ plans/b.yaml ══") < text.index("══ plans/a.yaml ══")
    assert "Apply: elax-plan apply plans/b.yaml" in text
    assert "Left out, unchanged since main: 1 plan (plans/c.yaml)." in text
    assert text.rstrip().endswith(report["summary_line"])
