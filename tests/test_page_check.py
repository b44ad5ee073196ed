"""tools/page_check.py: judging the browser's measurements, and one page end to end.

The measurement itself needs headless Chromium and Playwright (the ``pagecheck`` extra),
which CI does not have; the end-to-end test is skipped there. Everything that turns the
measurements into counts, the table and the exit status is tested without a browser.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "page_check.py"
_spec = importlib.util.spec_from_file_location("page_check", SCRIPT)
page_check = importlib.util.module_from_spec(_spec)
sys.modules["page_check"] = page_check  # dataclasses look their module up by name
_spec.loader.exec_module(page_check)


def _pre(scroll: int, client: int, lines: list[str] | None = None,
         folded: bool = False) -> dict[str, Any]:
    measured = [{"text": t, "chars": len(t), "excess_px": 5.0} for t in lines or []]
    return {"scroll_width": scroll, "client_width": client, "lines": measured, "folded": folded}


def _image(natural: int, rendered: float, captioned: bool = True) -> dict[str, Any]:
    return {"src": "a.png", "alt": "", "natural_width": natural, "natural_height": 10,
            "rendered_width": rendered, "in_figure": captioned, "captioned": captioned,
            "folded": False}


def _measured(pres=(), maths=(), images=(), views=0, rendered=0) -> dict[str, Any]:
    return {"pres": list(pres), "maths": list(maths), "images": list(images),
            "widgets": {"views": views, "rendered": rendered, "state": bool(views)}}


def _report(name: str = "book/a.html", **measured: Any):
    return page_check.summarise(name, "screenshots/a.png", 100, _measured(**measured))


# ------------------------------------------------------------------ judging, no browser


def test_a_block_that_fits_has_no_long_lines() -> None:
    assert page_check.block_lines(_pre(700, 700, ["x"])) == []


def test_an_overflowing_block_counts_each_long_line() -> None:
    lines = page_check.block_lines(_pre(800, 700, ["a" * 90, "b" * 85], folded=True))
    assert [line["text"] for line in lines] == ["a" * 90, "b" * 85]
    assert all(line["folded"] for line in lines)


def test_an_overflowing_block_without_a_measured_line_counts_once() -> None:
    (line,) = page_check.block_lines(_pre(750, 700))
    assert line["excess_px"] == 50 and line["text"] == ""


@pytest.mark.parametrize(("natural", "rendered", "shrunk"), [
    (600, 600, False),     # natural size
    (711, 703.98, True),   # scaled to the column
    (600, 599.5, False),   # sub-pixel rounding is not shrinking
    (225, 0, False),       # not shown at all (display: none)
])
def test_an_image_is_shrunk_only_when_shown_narrower(natural, rendered, shrunk) -> None:
    assert page_check.judge_image(_image(natural, rendered))["shrunk"] is shrunk


def test_summarise_counts_every_kind_of_problem() -> None:
    report = _report(
        pres=[_pre(700, 700), _pre(900, 700, ["a" * 99]), _pre(720, 700, ["b" * 81, "c" * 82])],
        maths=[{"text": "x", "overflow_px": 0.4}, {"text": "y", "overflow_px": 30}],
        images=[_image(800, 700), _image(300, 300, captioned=False)],
        views=2, rendered=1,
    )
    assert report.overflowing_blocks == 2 and len(report.overflow_lines) == 3
    assert [m["text"] for m in report.wide_math] == ["y"]
    assert (len(report.images), report.shrunk, report.uncaptioned, report.widgets) == (2, 1, 1, 3)
    assert report.problems() == ["3 code/output lines overflow", "1 display formulas overflow",
                                 "1 images without a caption", "3 widget outputs"]


def test_a_clean_page_has_no_problems() -> None:
    report = _report(pres=[_pre(700, 700)], images=[_image(800, 700)])
    assert report.problems() == [] and report.shrunk == 1  # shrinking alone is no failure


def test_exit_status() -> None:
    clean, bad = _report(), _report(images=[_image(10, 10, captioned=False)])
    assert page_check.exit_status([clean]) == 0
    assert page_check.exit_status([clean, bad]) == 1
    assert page_check.exit_status([clean, bad], report_only=True) == 0
    assert page_check.exit_status([]) == 2


def test_table_has_a_row_per_page_and_totals() -> None:
    reports = [_report("book/a.html", pres=[_pre(900, 700, ["a" * 90])]),
               _report("book/longer_name.html", images=[_image(10, 10, captioned=False)] * 2)]
    lines = page_check.format_table(reports).splitlines()
    assert lines[0].split("  ")[0].strip() == "page" and len(lines) == 6
    assert lines[2].split() == ["book/a.html", "1", "0", "0", "0", "0", "0"]
    assert lines[3].split() == ["book/longer_name.html", "0", "0", "2", "0", "2", "0"]
    assert lines[5].split() == ["total", "1", "0", "2", "0", "2", "0"]
    assert len({len(line) for line in lines[:2]}) == 1  # header as wide as the rule


def test_report_json_lists_totals_and_failing_pages() -> None:
    reports = [_report("book/a.html"), _report("book/b.html", views=1)]
    doc = page_check.report_json(reports, {"viewport": page_check.VIEWPORT})
    assert doc["failing_pages"] == ["book/b.html"]
    assert doc["totals"]["widgets"] == 1 and doc["viewport"]["width"] == 1300
    assert doc["pages"][1]["problems"] == ["1 widget outputs"]
    json.dumps(doc)  # serialisable as it is


def test_pages_skip_sphinx_folders_and_name_their_screenshots(tmp_path: Path) -> None:
    for rel in ("index.html", "book/a.html", "_static/x.html", "_modules/m.html", "book/b.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("<html></html>")
    assert page_check.find_pages(tmp_path) == [Path("book/a.html"), Path("index.html")]
    assert page_check.screenshot_name(Path("book/04_vae.html")) == "book__04_vae.png"


def test_redirect_pages_are_recognised(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=b.html" />')
    (tmp_path / "b.html").write_text("<html><body><p>refresh</p></body></html>")
    assert page_check.is_redirect(tmp_path / "index.html")
    assert not page_check.is_redirect(tmp_path / "b.html")


def test_chromium_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGECHECK_CHROMIUM", "/opt/chromium")
    assert page_check.find_chromium() == "/opt/chromium"
    assert page_check.find_chromium("/usr/bin/x") == "/usr/bin/x"


def test_missing_folder_exits_2(tmp_path: Path) -> None:
    assert page_check.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2


# ------------------------------------------------------------------ end to end, in Chromium

COLUMN_PX = 400
PAGE = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
  body {{ margin: 0; font: 16px sans-serif; }}
  article.bd-article {{ width: {COLUMN_PX}px; margin: 0 auto; }}
  pre {{ overflow: auto; white-space: pre; padding: 4px; font: 14px monospace; }}
  img {{ max-width: 100%; }}
  figure {{ margin: 0; }}
  div.math {{ white-space: nowrap; overflow-x: auto; }}
</style></head>
<body>
<header><img src="small.png" alt="outside the article: not counted"></header>
<article class="bd-article">
<pre>a short line
{"x" * 120}
another short line</pre>
<pre>fits</pre>
<div class="math">\\[ {" + ".join(f"a_{{{i}}}" for i in range(60))} \\]</div>
<figure><img src="wide.png" alt="wide"><figcaption>A caption.</figcaption></figure>
<p><img src="small.png" alt="no caption"></p>
<script type="application/vnd.jupyter.widget-view+json">{{"model_id": "m"}}</script>
</article></body></html>
"""


def _chromium_or_skip() -> None:
    pytest.importorskip("playwright.sync_api",
                        reason="needs Playwright (pip install -e '.[pagecheck]'); CI has none")
    if page_check.find_chromium() is None:
        pytest.skip("needs Chromium (apt-get install chromium); CI has none")


def test_page_check_end_to_end(tmp_path: Path) -> None:
    """A page with one overflowing code line, one wide formula, a captioned image that
    the column shrinks, an uncaptioned one and a widget output; plus a redirect page."""
    _chromium_or_skip()
    from PIL import Image

    html, out = tmp_path / "html", tmp_path / "out"
    (html / "book").mkdir(parents=True)
    Image.new("RGB", (600, 100), "steelblue").save(html / "book" / "wide.png")
    Image.new("RGB", (50, 40), "orange").save(html / "book" / "small.png")
    (html / "book" / "page.html").write_text(PAGE, encoding="utf-8")
    (html / "index.html").write_text('<meta http-equiv="refresh" content="0; url=book/page.html">')

    assert page_check.main([str(html), "--out", str(out)]) == 1
    doc = json.loads((out / "report.json").read_text())
    assert doc["redirects_skipped"] == ["index.html"]
    (page,) = doc["pages"]
    assert page["page"] == "book/page.html"
    assert page["overflowing_blocks"] == 1
    assert [line["text"] for line in page["overflow_lines"]] == ["x" * 120]
    assert len(page["wide_math"]) == 1
    images = {image["alt"]: image for image in page["images"]}
    assert sorted(images) == ["no caption", "wide"]
    assert images["wide"]["natural_width"] == 600 and images["wide"]["shrunk"]
    assert images["wide"]["rendered_width"] == pytest.approx(COLUMN_PX, abs=1)
    assert images["wide"]["captioned"] and not images["no caption"]["captioned"]
    assert images["no caption"]["rendered_width"] == 50 and not images["no caption"]["shrunk"]
    assert (page["shrunk"], page["uncaptioned"], page["widgets"]) == (1, 1, 1)
    with Image.open(out / page["screenshot"]) as shot:
        assert shot.size[0] == page_check.VIEWPORT["width"] and shot.size[1] == page["height"]
    summary = (out / "summary.txt").read_text().splitlines()
    assert summary[2].split() == ["book/page.html", "1", "1", "2", "1", "1", "1"]
