"""The render check: markdown as an operator reads it on GitHub, drawn by the real packages.

``Renderer`` runs ``render.mjs`` once: it starts headless Chromium (Debian's ``chromium``)
and loads ``mermaid`` 11 while the caller makes the documents; then ``marked`` turns every
document into HTML and one page draws each ```` ```mermaid ```` block, with the versions
pinned in ``package-lock.json``. Per document it reports every problem: mermaid's parse and
render errors, an error diagram ("Syntax error in text") drawn in place of a chart, NaN or
Infinity in the drawing, an empty drawing, and the browser's console errors while it drew.
Screenshots of each document and each chart go to ``screenshots`` for review.

``make test`` installs what it needs: the packages with ``npm ci`` (stamp
``tests/render/node_modules/.installed``) and, when missing, Debian's chromium with apt-get.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parents[1]
STAMP = HERE / "node_modules" / ".installed"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / ".artifacts" / "render"


@dataclass(frozen=True)
class Rendered:
    """One document as drawn: its mermaid charts, what went wrong, its screenshot."""

    name: str
    charts: int
    problems: list[str]
    screenshot: Path | None

    def report(self) -> str:
        """The failure message: the document, each problem, and where to look."""
        lines = [f"{self.name}: {len(self.problems)} problem(s) in {self.charts} chart(s)"]
        lines += [f"  - {p}" for p in self.problems]
        if self.screenshot:
            lines.append(f"  screenshot: {self.screenshot}")
        return "\n".join(lines)


def setup_problems() -> list[str]:
    """What is missing to run the check, each with the command that installs it."""
    missing = []
    if shutil.which("node") is None:
        missing.append("Node.js is not installed (`apt-get install -y nodejs npm`)")
    if not STAMP.exists():
        missing.append(
            "the pinned npm packages are not installed: `make tests/render/node_modules/.installed`"
        )
    if not CHROMIUM.exists():
        missing.append(
            f"{CHROMIUM} is missing: `apt-get install -y --no-install-recommends chromium`"
        )
    return missing


class Renderer:
    """``render.mjs`` started at once, so that Chromium starts and loads mermaid while the
    caller makes the documents; ``render`` then draws them all in one page. Use it in a
    ``with`` block, which stops the process if ``render`` is never called."""

    def __init__(self, screenshots: Path | None = None) -> None:
        missing = setup_problems()
        if missing:
            raise RuntimeError(
                "The render check cannot run (`make test` installs all of it): "
                + "; ".join(missing)
            )
        args = ["node", str(HERE / "render.mjs"), "--chromium", str(CHROMIUM)]
        if screenshots is not None:
            args += ["--screenshots", str(screenshots)]
        self.versions: dict[str, str] = {}
        self.process = subprocess.Popen(
            args,
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.returncode is None:
            self.process.kill()
            self.process.communicate()

    def render(self, documents: Mapping[str, str]) -> dict[str, Rendered]:
        """Draw ``documents`` (name → markdown) as GitHub would, in one browser page; with
        screenshots, ``NAME.png`` and ``NAME.chart-K.png`` are written to that folder."""
        batch = [{"name": name, "markdown": text} for name, text in documents.items()]
        try:
            stdout, stderr = self.process.communicate(json.dumps(batch), timeout=240)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        if self.process.returncode != 0:
            raise RuntimeError(
                f"render.mjs failed (exit {self.process.returncode}):\n{stderr[-4000:]}"
            )
        out = json.loads(stdout)
        self.versions = {k: out[k] for k in ("marked", "mermaid", "chromium")}
        return {
            d["name"]: Rendered(
                d["name"],
                d["charts"],
                d["problems"],
                Path(d["screenshot"]) if "screenshot" in d else None,
            )
            for d in out["documents"]
        }


def render(documents: Mapping[str, str], screenshots: Path | None = None) -> dict[str, Rendered]:
    """Draw ``documents`` in one page (see ``Renderer.render``)."""
    with Renderer(screenshots) as renderer:
        return renderer.render(documents)
