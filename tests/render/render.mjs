// Renders markdown documents as GitHub shows them: marked turns each into HTML, and in one
// page of headless Chromium mermaid 11 draws every ```mermaid block. Prints one JSON object:
// the versions used and, per document, its number of charts and every problem found
// (mermaid's parse and render errors, an error diagram drawn instead of a chart, NaN or
// Infinity in the drawing, an empty drawing, the browser's console errors while it drew).
// With --screenshots DIR, a PNG of each document and of each chart in DIR, and the same JSON
// in DIR/results.json.
// The browser starts and loads mermaid before the documents are read from standard input.
// tests/render/check.py runs it; `make test` installs the pinned packages with `npm ci`.
//
//   node render.mjs --chromium /usr/bin/chromium [--screenshots DIR] < documents.json
//   documents.json: [{"name": "summary.md", "markdown": "# ..."}, ...]

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { marked } from "marked";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: { chromium: { type: "string" }, screenshots: { type: "string" } },
});
const MODULES = new URL("node_modules/", import.meta.url);
const version = (name) =>
  JSON.parse(readFileSync(new URL(`${name}/package.json`, MODULES))).version;

// A root process on a closed network: no sandbox, no background connections.
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
// The page and the packages are served from this origin by the page's route, never the net.
const ORIGIN = "http://render.invalid";

// The page, with mermaid loaded and no document yet.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8">
<link rel="stylesheet" href="/github-markdown-css/github-markdown-light.css">
<style>
  body { margin: 0; background: #fff; }
  article.markdown-body { box-sizing: border-box; width: 900px; padding: 24px; }
</style>
<script type="module">
  try {
    const { default: mermaid } = await import("/mermaid/dist/mermaid.esm.min.mjs");
    // GitHub's defaults: mermaid's default theme on a light page, strict security.
    mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "default" });
    window.mermaid = mermaid;
  } catch (error) {
    window.mermaid_failed = String(error);
  }
</script>
</head><body></body></html>`;

// The documents as the page's body: marked's HTML of each, in an <article>.
const articles = (documents) =>
  documents
    .map(
      (doc, i) =>
        `<article class="markdown-body" id="doc-${i}">\n` +
        `${marked.parse(doc.markdown, { gfm: true })}\n</article>`,
    )
    .join("\n");

async function read_stdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

// In the page: draw document i's charts where their code blocks were; its problems.
async function draw(i) {
  const problems = [];
  const article = document.getElementById(`doc-${i}`);
  const blocks = [...article.querySelectorAll("pre > code.language-mermaid")];
  for (const [k, code] of blocks.entries()) {
    const where = `chart ${k + 1} of ${blocks.length}`;
    const text = code.textContent;
    const box = document.createElement("div");
    box.className = "mermaid-chart";
    code.parentElement.replaceWith(box);
    try {
      // Given a container, mermaid leaves its error diagram there when it throws.
      const { svg } = await window.mermaid.render(`chart-${i}-${k}`, text, box);
      box.innerHTML = svg;
    } catch (error) {
      problems.push(`${where}: mermaid error: ${String(error?.message ?? error).trim()}`);
    }
    const svg = box.querySelector("svg");
    if (!svg) {
      problems.push(`${where}: no SVG was drawn`);
      continue;
    }
    const words = [...svg.querySelectorAll("text")].map((t) => t.textContent.trim()).join(" ");
    if (svg.getAttribute("aria-roledescription") === "error" || /Syntax error in text/.test(words)) {
      problems.push(`${where}: mermaid drew its error diagram: ${words.slice(0, 200)}`);
    }
    for (const el of [svg, ...svg.querySelectorAll("*")]) {
      for (const attr of el.attributes) {
        if (/\bNaN\b|\bInfinity\b/.test(attr.value)) {
          problems.push(`${where}: <${el.tagName} ${attr.name}="${attr.value.slice(0, 80)}">`);
        }
      }
    }
    const size = svg.getBoundingClientRect();
    if (!(size.width > 0 && size.height > 0)) {
      problems.push(`${where}: drawn ${size.width} × ${size.height} px`);
    }
  }
  return { charts: blocks.length, problems };
}

// In the page: each document's box and its charts' boxes, in page coordinates.
function boxes() {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return { x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height };
  };
  return [...document.querySelectorAll("article")].map((article) => ({
    page: box(article),
    charts: [...article.querySelectorAll(".mermaid-chart")].map(box),
  }));
}

const browser = await chromium.launch({ executablePath: args.chromium, args: FLAGS });
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 800 } });
  let console_errors = [];
  page.on("console", (msg) => msg.type() === "error" && console_errors.push(msg.text()));
  page.on("pageerror", (error) => console_errors.push(String(error)));
  await page.route(`${ORIGIN}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === "/") return route.fulfill({ contentType: "text/html", body: PAGE });
    const file = new URL(`.${path}`, MODULES).pathname;
    if (!existsSync(file)) return route.fulfill({ status: 404, body: "" });
    const type = path.endsWith(".css") ? "text/css" : "text/javascript";
    return route.fulfill({ path: file, contentType: type });
  });
  await page.goto(`${ORIGIN}/`);
  const failed = await page
    .waitForFunction(() => window.mermaid_failed ?? window.mermaid, null, { timeout: 60_000 })
    .then((answer) => answer.jsonValue())
    .then((answer) => (typeof answer === "string" ? answer : null), (error) => error.message);
  if (failed) throw new Error(`mermaid did not load: ${failed}\n${console_errors.join("\n")}`);
  // Ready before the documents come: the caller may still be making them.
  const documents = JSON.parse(await read_stdin());
  await page.evaluate((html) => {
    document.body.innerHTML = html;
  }, articles(documents));
  const results = [];
  for (const [i, doc] of documents.entries()) {
    console_errors = [];
    const { charts, problems } = await page.evaluate(draw, i);
    await page.evaluate(() => null); // the drawing's console events arrive before this answer
    problems.push(...console_errors.map((text) => `browser console: ${text}`));
    results.push({ name: doc.name, charts, problems: [...new Set(problems)] });
  }
  if (args.screenshots) {
    mkdirSync(args.screenshots, { recursive: true });
    await page.evaluate(() => document.fonts.ready);
    for (const [i, { page: clip, charts }] of (await page.evaluate(boxes)).entries()) {
      const stem = join(args.screenshots, documents[i].name.replace(/[^A-Za-z0-9._-]+/g, "_"));
      await page.screenshot({ path: `${stem}.png`, clip, fullPage: true });
      for (const [k, chart] of charts.entries()) {
        await page.screenshot({ path: `${stem}.chart-${k + 1}.png`, clip: chart, fullPage: true });
      }
      results[i].screenshot = `${stem}.png`;
    }
  }
  const versions = { marked: version("marked"), mermaid: version("mermaid") };
  const report = JSON.stringify({ ...versions, chromium: browser.version(), documents: results });
  if (args.screenshots) writeFileSync(join(args.screenshots, "results.json"), report);
  process.stdout.write(report);
} finally {
  await browser.close();
}
