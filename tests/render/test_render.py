"""The render check: every golden and end-to-end summary and plan comment draws on GitHub's
renderer (marked + mermaid 11 in headless Chromium) without a mermaid error.

The documents: the golden summary (``tests/cases/summary/expected.md``), the plan comment of
every golden planner case, and the plan comment and summary of two end-to-end runs against
the embedded emulator, the quickstart and a throttled run. They are drawn in one browser
page (``check.render``), with two deliberately broken charts beside them that the check must
flag. Screenshots of every document and chart are written to ``.artifacts/render/``
(git-ignored) for review.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from elax_plan.report.plan_render import render_markdown
from tests.apply.support import last_record, make_dataset, run_dirs, write_plan
from tests.render.check import ARTIFACTS, Rendered, Renderer
from tests.test_planner import CASE_NAMES, CASES, compute

REPO = Path(__file__).parents[2]
GOLDEN_SUMMARY = REPO / "tests" / "cases" / "summary" / "expected.md"

# The documents that must draw cleanly, by name (end-to-end ones are made by the fixture).
E2E = ["quickstart/plan.md", "quickstart/summary.md", "throttled/plan.md", "throttled/summary.md"]
DOCUMENTS = ["summary/golden.md", *(f"plan/{case}.md" for case in CASE_NAMES), *E2E]


def elax(cwd: Path, *args: str) -> str:
    """``elax-plan ARGS`` in ``cwd``; its standard output (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-m", "elax_plan", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"elax-plan {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def quickstart(folder: Path) -> dict[str, str]:
    """`make demo` in ``folder``: the plan comment, then the run's summary."""
    folder.mkdir()
    (folder / "plans").symlink_to(REPO / "plans")
    plan = elax(folder, "plan", "plans/quickstart.yaml", "--format", "markdown")
    elax(folder, "apply", "plans/quickstart.yaml", "--auto-approve")
    summary = (folder / ".elax-demo" / "summary.md").read_text(encoding="utf-8")
    return {"quickstart/plan.md": plan, "quickstart/summary.md": summary}


def throttled(folder: Path) -> dict[str, str]:
    """A run into the embedded emulator that pauses many times: 2 KiB requests, and the
    indexer command (in-process compaction) run whenever the WAL lag reaches 3."""
    make_dataset(folder / "src", files=2, rows=300)
    plan = write_plan(
        folder / "plan.yaml",
        url="embedded",
        store=(folder / "store").as_uri(),
        source=f"{folder / 'src'}/*.ndjson",
        state=(folder / "state").as_uri(),
        extra="ingest:\n  chunk_bytes: 2KiB\nindexer:\n  mode: command\n"
        "throttle:\n  max_wal_lag: 3\n  resume_wal_lag: 1\n  poll_interval: 20ms\n"
        "verify:\n  smoke_queries:\n    - name: self-match\n      sample_vectors: 5\n",
    )
    comment = elax(folder, "plan", str(plan), "--format", "markdown")
    elax(folder, "apply", str(plan), "--auto-approve")
    summary = (run_dirs(folder / "state")[-1] / "summary.md").read_text(encoding="utf-8")
    assert last_record(folder / "state")["throttle"]["actions"], "the run never paused"
    return {"throttled/plan.md": comment, "throttled/summary.md": summary}


def broken(golden: str) -> dict[str, str]:
    """Charts the check must flag: the golden summary with a syntax error in its first chart
    (mermaid throws and draws its error diagram), and a chart whose config mermaid accepts
    but draws with NaN coordinates, throwing nothing."""
    first = golden.index("```mermaid\n") + len("```mermaid\n")
    bad_line = re.sub(r"line \[", "line [oops, ", golden[first:], count=1)
    chart = (
        'xychart-beta\n    x-axis "s" [1, 2, 3]\n    y-axis "rows/s" 0 --> 10\n    line [1, 5, 3]'
    )
    return {
        "broken/syntax.md": golden[:first] + bad_line,
        "broken/config.md": "# A chart config with a width that is not a number\n\n```mermaid\n"
        f"%%{{init: {{'xyChart': {{'width': 'wide'}}}}}}%%\n{chart}\n```\n",
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Rendered]]:
    """Every document and the broken ones, drawn in one browser page (screenshots in
    .artifacts/render/). The browser starts while the end-to-end runs make theirs."""
    started = time.monotonic()
    runs = tmp_path_factory.mktemp("e2e")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    with Renderer(ARTIFACTS) as renderer, ThreadPoolExecutor(2) as pool:
        e2e = [pool.submit(quickstart, runs / "quickstart"), pool.submit(throttled, runs / "t")]
        golden = GOLDEN_SUMMARY.read_text(encoding="utf-8")
        documents = {"summary/golden.md": golden}
        for case in CASE_NAMES:
            documents[f"plan/{case}.md"] = render_markdown(compute(CASES / case))
        for job in e2e:
            documents.update(job.result())
        made = time.monotonic()
        documents.update(broken(golden))
        assert set(documents) == {*DOCUMENTS, *broken(golden)}
        out = renderer.render(documents)
    versions = ", ".join(f"{k} {v}" for k, v in renderer.versions.items())
    print(
        f"\nrender check ({versions}): documents made in {made - started:.1f} s, drawn "
        f"{time.monotonic() - made:.1f} s later; screenshots in {ARTIFACTS}"
    )
    return {name: (text, out[name]) for name, text in documents.items()}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_document_draws_without_a_mermaid_error(
    name: str, rendered: dict[str, tuple[str, Rendered]]
) -> None:
    """Each summary and plan comment renders as GitHub shows it: every mermaid block is drawn
    as a chart, without an error."""
    markdown, document = rendered[name]
    assert document.problems == [], document.report()
    assert document.charts == markdown.count("```mermaid\n"), f"{name}: a chart was not drawn"
    if name in ("summary/golden.md", "throttled/summary.md"):
        assert document.charts >= 1, f"{name} has no chart: the render check would check none"


def test_a_broken_chart_fails_the_check(rendered: dict[str, tuple[str, Rendered]]) -> None:
    """The check is not a rubber stamp: a syntax error is reported with mermaid's message
    and its error diagram; a chart drawn with NaN coordinates (no error thrown) too."""
    _, syntax = rendered["broken/syntax.md"]
    report = syntax.report()
    assert report.startswith("broken/syntax.md: "), report
    assert re.search(r"chart 1 of \d+: mermaid error: Parse error on line", report), report
    assert "mermaid drew its error diagram: Syntax error in text" in report, report
    assert all(p.startswith("chart 1 of") for p in syntax.problems), "only chart 1 is broken"
    assert syntax.screenshot is not None and syntax.screenshot.exists()
    _, config = rendered["broken/config.md"]
    assert any(re.search(r"chart 1 of 1: <\w+ [\w-]+=\"[^\"]*NaN", p) for p in config.problems), (
        config.report()
    )
    assert any("browser console: Error: <" in p for p in config.problems), config.report()
