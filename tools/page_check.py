"""Reader-first check of the built book: screenshots and layout measurements per page.

Every HTML page of a built Jupyter Book is opened in headless Chromium at the width
that the book's readers use (1,300 px), after MathJax has typeset it, and

* a full-page PNG screenshot is taken, as the page first appears;
* folded content (``details``: hidden cells, solutions in dropdowns) is then opened,
  so that what a reader sees after a click is measured as well (such items carry
  ``folded: true`` in the report);
* the article is measured:

  - **overflow**: every ``pre`` whose ``scrollWidth`` exceeds its ``clientWidth``,
    with each of its lines that runs past the column (counted in lines), and every
    display formula (``mjx-container[display]``, or an untypeset ``div.math``) wider
    than its container;
  - **images**: every ``img`` with its natural and rendered width, whether the theme
    shrank it, and whether it sits in a ``figure`` with a ``figcaption`` (shrinking is
    reported, not judged; Sphinx's toggle icons are not images of the content);
  - **widget outputs**: ``script[type="application/vnd.jupyter.widget-view+json"]``
    and rendered ``.jupyter-widgets``, which a static page cannot show.

The results go to ``OUT/report.json`` and ``OUT/summary.txt`` (the table that is also
printed), with one screenshot per page under ``OUT/screenshots``. The exit status is 1
when a page has overflow, widget outputs or images without a caption (0 with
``--report-only``), and 2 when there is nothing to check.

The pages are served from a local HTTP server on a free port; requests to any other
host (the widget manager's CDN, for example) are blocked, so the check needs no network.
Chromium is driven through Playwright (``pip install -e '.[pagecheck]'``) and found at
``--chromium``, ``$PAGECHECK_CHROMIUM`` or ``chromium`` on the ``PATH`` (Debian:
``apt-get install chromium``); ``playwright install`` is not needed.

Usage::

    python tools/page_check.py _build/html [--out _build/page_check] [--report-only]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

VIEWPORT = {"width": 1300, "height": 900}
# The content column: the first of these selectors that matches (the theme's article).
ARTICLE = ("article.bd-article", "article", "main", "body")
# Images that are controls, not content: the collapse toggles of Sphinx's module index.
NOT_CONTENT = "img.toggler"
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
DEFAULT_OUT = Path("_build/page_check")
PAGE_TIMEOUT_MS = 60_000
REFRESH = re.compile(r"""<meta[^>]*http-equiv=["']?refresh""", re.IGNORECASE)

# Resolves once MathJax (if the page loads it) has typeset and every font and image has
# loaded; images that the browser would load lazily are made eager first.
SETTLE_JS = """async () => {
  for (const img of document.images) { img.loading = 'eager'; }
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) { await mj.startup.promise; }
  await document.fonts.ready;
  await Promise.all(Array.from(document.images, (img) => img.complete ? null :
    new Promise((done) => { img.onload = done; img.onerror = done; })));
}"""

# Opens every closed <details> and marks it, so that the measurement knows what was folded.
UNFOLD_JS = """() => {
  for (const d of document.querySelectorAll('details:not([open])')) {
    d.setAttribute('data-page-check-folded', '');
    d.open = true;
  }
}"""

MEASURE_JS = """([articleSelectors, widgetView, notContent]) => {
  const article = articleSelectors.map((s) => document.querySelector(s)).find((el) => el);
  const folded = (el) => !!el.closest('[data-page-check-folded]');
  const short = (text) => text.replace(/\\s+/g, ' ').trim().slice(0, 120);

  function textNodes(root) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const nodes = [];
    let length = 0;
    while (walker.nextNode()) {
      nodes.push({node: walker.currentNode, start: length});
      length += walker.currentNode.data.length;
    }
    return nodes;
  }

  function locate(nodes, index, isEnd) {
    for (const {node, start} of nodes) {
      const end = start + node.data.length;
      if (isEnd ? index <= end : index < end) { return [node, index - start]; }
    }
    const last = nodes[nodes.length - 1];
    return [last.node, last.node.data.length];
  }

  function longLines(pre) {
    const style = getComputedStyle(pre);
    const box = pre.getBoundingClientRect();
    const right = box.left + pre.clientLeft + pre.clientWidth - parseFloat(style.paddingRight);
    const nodes = textNodes(pre);
    const lines = [];
    let start = 0;
    for (const line of nodes.map((n) => n.node.data).join('').split('\\n')) {
      const text = line.replace(/\\s+$/, '');
      if (text.length) {
        const range = document.createRange();
        range.setStart(...locate(nodes, start, false));
        range.setEnd(...locate(nodes, start + text.length, true));
        const excess = range.getBoundingClientRect().right - right;
        if (excess > 0.5) {
          lines.push({text: text.slice(0, 200), chars: text.length, excess_px: excess});
        }
      }
      start += line.length + 1;
    }
    return lines;
  }

  const pres = Array.from(article.querySelectorAll('pre'), (pre) => ({
    scroll_width: pre.scrollWidth, client_width: pre.clientWidth, folded: folded(pre),
    lines: pre.scrollWidth > pre.clientWidth ? longLines(pre) : [],
  }));

  function mathBox(el) {
    const content = (el.querySelector('mjx-math') || el).getBoundingClientRect();
    const holder = (el.parentElement && el.parentElement.closest('div.math')) || el.parentElement;
    const box = holder.getBoundingClientRect();
    const overflow = Math.max(content.right - box.right, box.left - content.left, 0);
    const label = el.querySelector('mjx-assistive-mml') || el;
    return {text: short(label.textContent), width: content.width, container_width: box.width,
            overflow_px: overflow, folded: folded(el)};
  }
  function rawMath(div) {
    return {text: short(div.textContent), width: div.scrollWidth, container_width: div.clientWidth,
            overflow_px: Math.max(div.scrollWidth - div.clientWidth, 0), folded: folded(div)};
  }
  const maths = Array.from(article.querySelectorAll('mjx-container[display]'), mathBox).concat(
    Array.from(article.querySelectorAll('div.math'))
      .filter((div) => !div.querySelector('mjx-container')).map(rawMath));

  const content = Array.from(article.querySelectorAll('img'))
    .filter((img) => !img.matches(notContent));
  const images = content.map((img) => {
    const figure = img.closest('figure');
    return {src: img.getAttribute('src') || '', alt: img.getAttribute('alt') || '',
            natural_width: img.naturalWidth, natural_height: img.naturalHeight,
            rendered_width: img.getBoundingClientRect().width,
            in_figure: !!figure, captioned: !!(figure && figure.querySelector('figcaption')),
            folded: folded(img)};
  });

  const views = article.querySelectorAll(widgetView).length;
  const rendered = Array.from(article.querySelectorAll('.jupyter-widgets')).filter((el) =>
    !el.parentElement.closest('.jupyter-widgets') && !el.parentElement.querySelector(widgetView));
  const state = 'script[type="application/vnd.jupyter.widget-state+json"]';
  return {pres, maths, images,
          widgets: {views, rendered: rendered.length, state: !!document.querySelector(state)}};
}"""


# ------------------------------------------------------------------ judging the measurements


@dataclass
class PageReport:
    """What the check found on one page.

    Attributes
    ----------
    page : str
        The page's path relative to the HTML folder (``book/04_vae.html``).
    screenshot : str
        The screenshot's path relative to the output folder.
    height : int
        Height of the page in CSS pixels (of the screenshot, before unfolding).
    overflow_lines : list of dict
        Each line of code or output that runs past the column (``text``, ``chars``,
        ``excess_px``, ``folded``).
    overflowing_blocks : int
        ``pre`` elements whose content is wider than the box.
    wide_math : list of dict
        Display formulas wider than their container.
    images : list of dict
        Every image of the article, with ``shrunk`` added.
    widgets : int
        Widget outputs (view scripts plus rendered widgets without one).
    """

    page: str
    screenshot: str
    height: int
    overflow_lines: list[dict[str, Any]] = field(default_factory=list)
    overflowing_blocks: int = 0
    wide_math: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    widgets: int = 0

    @property
    def shrunk(self) -> int:
        """Number of images shown narrower than their natural width."""
        return sum(image["shrunk"] for image in self.images)

    @property
    def uncaptioned(self) -> int:
        """Number of images without a ``figure``/``figcaption`` around them."""
        return sum(not image["captioned"] for image in self.images)

    def problems(self) -> list[str]:
        """The reasons this page fails the check (empty when it passes)."""
        found = []
        if self.overflow_lines:
            found.append(f"{len(self.overflow_lines)} code/output lines overflow")
        if self.wide_math:
            found.append(f"{len(self.wide_math)} display formulas overflow")
        if self.uncaptioned:
            found.append(f"{self.uncaptioned} images without a caption")
        if self.widgets:
            found.append(f"{self.widgets} widget outputs")
        return found


def block_lines(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The overflowing lines of one measured ``pre`` block.

    Parameters
    ----------
    block : dict
        A measurement with ``scroll_width``, ``client_width``, ``lines`` and ``folded``.

    Returns
    -------
    list of dict
        Its long lines, each with ``folded``; an overflowing block in which no single
        line could be measured (an inline element too wide, say) counts as one line.
    """
    if block["scroll_width"] <= block["client_width"]:
        return []
    lines = block["lines"] or [{"text": "", "chars": 0,
                                "excess_px": block["scroll_width"] - block["client_width"]}]
    return [{**line, "folded": block["folded"]} for line in lines]


def judge_image(image: dict[str, Any]) -> dict[str, Any]:
    """``image`` with ``shrunk``: shown (width > 0) and at least 1 px below natural width."""
    rendered, natural = image["rendered_width"], image["natural_width"]
    return {**image, "shrunk": bool(0 < rendered <= natural - 1)}


def summarise(page: str, screenshot: str, height: int, measured: dict[str, Any]) -> PageReport:
    """Turn the browser's raw measurements of one page into a :class:`PageReport`.

    Parameters
    ----------
    page, screenshot : str
        The page's path relative to the HTML folder, the screenshot's to the output.
    height : int
        Height of the page in CSS pixels.
    measured : dict
        What ``MEASURE_JS`` returned: ``pres``, ``maths``, ``images`` and ``widgets``.

    Returns
    -------
    PageReport
    """
    blocks = [block for block in measured["pres"] if block["scroll_width"] > block["client_width"]]
    widgets = measured["widgets"]
    return PageReport(
        page=page,
        screenshot=screenshot,
        height=height,
        overflow_lines=[line for block in blocks for line in block_lines(block)],
        overflowing_blocks=len(blocks),
        wide_math=[math for math in measured["maths"] if math["overflow_px"] > 1],
        images=[judge_image(image) for image in measured["images"]],
        widgets=widgets["views"] + widgets["rendered"],
    )


COLUMNS = ("page", "overflow lines", "wide math", "images", "shrunk", "uncaptioned", "widgets")


def counts(report: PageReport) -> tuple[int, ...]:
    """The page's numbers, in the order of ``COLUMNS[1:]``."""
    return (len(report.overflow_lines), len(report.wide_math), len(report.images),
            report.shrunk, report.uncaptioned, report.widgets)


def totals(reports: Sequence[PageReport]) -> dict[str, int]:
    """The sums over all pages, keyed by column name."""
    sums = [sum(column) for column in zip(*map(counts, reports))] or [0] * (len(COLUMNS) - 1)
    return dict(zip(COLUMNS[1:], sums))


def format_table(reports: Sequence[PageReport]) -> str:
    """The plain-text summary: one row per page and a total row.

    Parameters
    ----------
    reports : sequence of PageReport

    Returns
    -------
    str
        The table, the page column left-aligned and the counts right-aligned.
    """
    rows = [(report.page, *map(str, counts(report))) for report in reports]
    rows.append(("total", *map(str, totals(reports).values())))
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]

    def line(row: Sequence[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(COLUMNS), rule, *map(line, rows[:-1]), rule, line(rows[-1])])


def report_json(reports: Sequence[PageReport], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: ``meta``, totals, and every page with its ``problems``."""
    pages = [{**asdict(r), "shrunk": r.shrunk, "uncaptioned": r.uncaptioned,
              "problems": r.problems()} for r in reports]
    failing = [r.page for r in reports if r.problems()]
    return {**meta, "totals": totals(reports), "failing_pages": failing, "pages": pages}


def exit_status(reports: Sequence[PageReport], report_only: bool = False) -> int:
    """1 when any page has a problem (0 with ``report_only``), 2 when none was checked."""
    if not reports:
        return 2
    return 0 if report_only or not any(r.problems() for r in reports) else 1


# ------------------------------------------------------------------ pages and files


def find_pages(root: Path) -> list[Path]:
    """Every ``*.html`` under ``root``, relative to it, outside folders named ``_*``.

    Sphinx's ``_static``, ``_sources``, ``_images`` and the highlighted package source
    under ``_modules`` are not pages of the book.
    """
    pages = (path.relative_to(root) for path in root.rglob("*.html"))
    return sorted(p for p in pages if not any(part.startswith("_") for part in p.parts[:-1]))


def is_redirect(path: Path) -> bool:
    """Whether the page only sends the browser on (``<meta http-equiv="refresh">``).

    Sphinx's ``index.html`` for a book whose root is ``book/intro`` is such a page; it has
    no content of its own and the page it points to is checked anyway.
    """
    return bool(REFRESH.search(path.read_text(encoding="utf-8", errors="replace")[:4000]))


def screenshot_name(page: Path | str) -> str:
    """``book/04_vae.html`` -> ``book__04_vae.png``."""
    return Path(page).with_suffix(".png").as_posix().replace("/", "__")


def find_chromium(given: str | None = None) -> str | None:
    """The Chromium binary: ``given``, ``$PAGECHECK_CHROMIUM`` or one on the ``PATH``."""
    if given or os.environ.get("PAGECHECK_CHROMIUM"):
        return given or os.environ["PAGECHECK_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing: the check prints its own summary."""


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on a free local port in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ the browser


def _local_only(base: str) -> Callable[[Any], None]:
    """A Playwright route handler that lets through only requests to ``base``."""

    def route(handled: Any) -> None:
        if handled.request.url.startswith(base):
            handled.continue_()
        else:
            handled.abort()

    return route


def check_page(tab, base: str, page: Path, shot: Path, out: Path) -> PageReport:
    """Open, screenshot, unfold and measure one page in the Playwright ``tab``."""
    tab.goto(base + page.as_posix(), wait_until="load", timeout=PAGE_TIMEOUT_MS)
    tab.evaluate(SETTLE_JS)
    height = tab.evaluate("() => document.documentElement.scrollHeight")
    tab.screenshot(path=str(shot), full_page=True, timeout=PAGE_TIMEOUT_MS)
    tab.evaluate(UNFOLD_JS)
    measured = tab.evaluate(MEASURE_JS, [list(ARTICLE), WIDGET_VIEW, NOT_CONTENT])
    return summarise(page.as_posix(), shot.relative_to(out).as_posix(), height, measured)


def check_pages(root: Path, pages: Sequence[Path], out: Path,
                chromium: str | None = None) -> list[PageReport]:
    """Check ``pages`` (relative to ``root``), writing screenshots to ``out/screenshots``.

    Parameters
    ----------
    root : Path
        The built HTML folder.
    pages : sequence of Path
        Pages relative to ``root``.
    out : Path
        Output folder.
    chromium : str, optional
        Path of the Chromium binary; None lets Playwright use its own browser.

    Returns
    -------
    list of PageReport
    """
    from playwright.sync_api import sync_playwright

    shots = out / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with serve(root) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium)
        try:
            tab = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
            tab.route("**/*", _local_only(base))
            return [check_page(tab, base, p, shots / screenshot_name(p), out) for p in pages]
        finally:
            browser.close()


# ------------------------------------------------------------------ command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, nargs="?", default=Path("_build/html"),
                        help="the built HTML folder (default: _build/html)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--page", action="append", default=None, metavar="PATH",
                        help="check only this page (relative to HTML; repeatable)")
    parser.add_argument("--chromium", default=None,
                        help="Chromium binary (default: $PAGECHECK_CHROMIUM or chromium on PATH)")
    parser.add_argument("--report-only", action="store_true",
                        help="exit 0 even when pages have problems")
    return parser.parse_args(argv)


def write_outputs(out: Path, reports: Sequence[PageReport], meta: dict[str, Any]) -> str:
    """Write ``report.json`` and ``summary.txt`` into ``out``; returns the table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report_json(reports, meta), indent=1) + "\n")
    table = format_table(reports)
    (out / "summary.txt").write_text(table + "\n")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; returns the exit status (see the module's docstring)."""
    args = parse_args(argv)
    pages = [Path(p) for p in args.page] if args.page else find_pages(args.html)
    missing = [p.as_posix() for p in pages if not (args.html / p).is_file()]
    if not args.html.is_dir() or missing:
        print(f"page_check: not found under {args.html}: {missing or '(the folder)'}",
              file=sys.stderr)
        return 2
    redirects = [p for p in pages if is_redirect(args.html / p)]
    pages = [p for p in pages if p not in redirects]
    started = time.perf_counter()
    reports = check_pages(args.html.resolve(), pages, args.out, find_chromium(args.chromium))
    seconds = time.perf_counter() - started
    meta = {"html": str(args.html.resolve()), "viewport": VIEWPORT, "seconds": round(seconds, 1),
            "redirects_skipped": [p.as_posix() for p in redirects]}
    print(write_outputs(args.out, reports, meta))
    print(f"{len(reports)} pages in {seconds:.1f} s; report and screenshots in {args.out}")
    return exit_status(reports, args.report_only)


if __name__ == "__main__":
    sys.exit(main())
