"""The book renders math without internet: checks on _config.yml and on the built HTML.

Sphinx loads MathJax from a CDN by default, and offline readers then see raw LaTeX.
The ``sphinx-mathjax-offline`` extension copies MathJax 3 into ``_static/mathjax`` and
points every page there. The configuration checks always run; the HTML checks run when
the book has been built (``make book`` runs this file right after building). The HTML
folder is ``$BOOK_HTML`` if set, else ``_build/html``.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / os.environ.get("BOOK_HTML", "_build/html")  # an absolute $BOOK_HTML wins

# Sphinx marks inline and display math with class="math ..." (MyST and reST alike).
MATH_MARKUP = re.compile(r'class="math[ "]')
MATHJAX_SCRIPT = re.compile(r'<script\b[^>]*\bsrc="([^"]*mathjax[^"]*)"', re.IGNORECASE)
# Any remote URL that mentions MathJax (cdn.jsdelivr.net/npm/mathjax@3/..., cdnjs, ...).
# Other CDN scripts, such as the ipywidgets manager on pages with widget output, are not
# about math and are left alone.
MATHJAX_CDN = re.compile(r"""(?:https?:)?//[^"'\s<>]*mathjax[^"'\s<>]*""", re.IGNORECASE)
OFFLINE_EXTENSION = "sphinx_mathjax_offline"


def _sphinx_config() -> dict:
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    return config.get("sphinx") or {}


def _normalise(extension: str) -> str:
    # The distribution's module is named "sphinx-mathjax-offline" (hyphens); compare
    # names with underscores so that both spellings count as the same extension.
    return extension.replace("-", "_")


def test_config_serves_mathjax_from_the_book() -> None:
    extensions = _sphinx_config().get("extra_extensions") or []
    names = [_normalise(ext) for ext in extensions]
    assert OFFLINE_EXTENSION in names, (
        f"_config.yml sphinx.extra_extensions must list sphinx-mathjax-offline, got {extensions}"
    )
    listed = extensions[names.index(OFFLINE_EXTENSION)]
    assert importlib.util.find_spec(listed) is not None, (
        f"extension {listed!r} from _config.yml cannot be imported; "
        "install the book extra: pip install -e '.[book]'"
    )


def test_config_fetches_nothing_at_build_time() -> None:
    sphinx = _sphinx_config()
    extensions = sphinx.get("extra_extensions") or []
    config = sphinx.get("config") or {}
    assert not [ext for ext in extensions if "intersphinx" in ext], (
        f"intersphinx fetches inventories over the network; remove it from {extensions}"
    )
    assert "intersphinx_mapping" not in config, "remove sphinx.config.intersphinx_mapping"
    mathjax_path = str(config.get("mathjax_path", ""))
    assert not mathjax_path.startswith(("http:", "https:", "//")), (
        f"sphinx.config.mathjax_path must not point at a CDN, got {mathjax_path!r}"
    )


@pytest.fixture(scope="module")
def built_pages() -> dict[Path, str]:
    """Every built HTML page (outside _static), with its text."""
    if not (HTML / "book" / "intro.html").is_file():
        pytest.skip(f"the book has not been built ({HTML / 'book' / 'intro.html'} is missing); run `make book`")
    pages = {
        page: page.read_text(encoding="utf-8")
        for page in sorted(HTML.rglob("*.html"))
        if "_static" not in page.relative_to(HTML).parts
    }
    return pages


def test_pages_with_math_load_the_local_mathjax(built_pages: dict[Path, str]) -> None:
    math_pages = {page: text for page, text in built_pages.items() if MATH_MARKUP.search(text)}
    # The intro's ELBO formula alone guarantees math; an empty set means the check broke.
    assert math_pages, f"no page under {HTML} contains math markup; expected at least the intro"
    problems = []
    for page, text in math_pages.items():
        name = page.relative_to(HTML)
        sources = MATHJAX_SCRIPT.findall(text)
        if not sources:
            problems.append(f"{name}: contains math but loads no MathJax script")
        for src in sources:
            if src.startswith(("http:", "https:", "//")):
                problems.append(f"{name}: loads MathJax from {src}, expected _static/mathjax/...")
                continue
            target = (page.parent / src.split("?")[0]).resolve()
            if not target.is_file():
                problems.append(f"{name}: MathJax script {src} does not exist ({target})")
            elif "_static" not in target.relative_to(HTML.resolve()).parts:
                problems.append(f"{name}: MathJax script {src} is not under _static")
    assert not problems, "\n".join(problems)


def test_no_page_references_a_mathjax_cdn(built_pages: dict[Path, str]) -> None:
    offenders = [
        f"{page.relative_to(HTML)}: {match.group(0)}"
        for page, text in built_pages.items()
        for match in [MATHJAX_CDN.search(text)]
        if match
    ]
    assert not offenders, "pages that reference a CDN:\n" + "\n".join(offenders)


def test_mathjax_fonts_are_shipped(built_pages: dict[Path, str]) -> None:
    # tex-chtml.js fetches its web fonts relative to itself; without them the formulas
    # render with missing glyphs even though the script loads.
    fonts = HTML / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert fonts.is_dir() and any(fonts.glob("*.woff")), f"no MathJax fonts in {fonts}"


def test_markdown_displayed_by_a_cell_renders_as_a_table(built_pages: dict[Path, str]) -> None:
    """Chapter 5 displays its likelihood summary with IPython's Markdown; it must
    render as an HTML table with typeset math, not as raw pipe text (issue 16)."""
    page = next((t for p, t in built_pages.items() if p.name == "05_likelihoods_and_collapse.html"), None)
    assert page is not None, "chapter 5 was not built"
    output = [part.split("cell_input")[0] for part in page.split("cell_output")[1:]]
    assert any("<table" in part and "active units" in part for part in output), (
        "the likelihood summary is not rendered as a table"
    )
    assert "| likelihood | support |" not in "".join(output), "raw pipe text in an output"


# Width of the content column at 1,300 px, in characters of the code font.
MAX_COLUMNS = 80
PRE_BLOCK = re.compile(r"<pre[^>]*>(.*?)</pre>", re.DOTALL)
TAG = re.compile(r"<[^>]+>")


def overflowing_lines(page: str) -> list[str]:
    """Lines of code or output (every ``<pre>`` block) longer than the column."""
    import html as html_lib

    lines = []
    for block in PRE_BLOCK.findall(page):
        text = html_lib.unescape(TAG.sub("", block))
        lines += [line for line in text.splitlines() if len(line.rstrip()) > MAX_COLUMNS]
    return lines


def test_overflowing_lines_are_counted():
    page = "<pre>ok\n" + "x" * 81 + "</pre><p>" + "y" * 200 + "</p><pre><span>a</span>&lt;b</pre>"
    assert overflowing_lines(page) == ["x" * 81]


def test_no_code_or_output_line_is_cut_off(built_pages: dict[Path, str]) -> None:
    """Every line of code and of printed output fits the content column (issue 16).

    The highlighted source pages that Sphinx's viewcode writes under ``_modules`` are
    left out: they show the package's code at its own line length (100, ruff's
    setting), in a scrolling box of their own, and are not part of the book's text.
    """
    report = {p.name: overflowing_lines(t) for p, t in built_pages.items()
              if "_modules" not in p.relative_to(HTML).parts}
    report = {name: lines for name, lines in report.items() if lines}
    total = sum(len(v) for v in report.values())
    assert total == 0, f"{total} lines wider than {MAX_COLUMNS} characters: " + "; ".join(
        f"{name}: {len(v)} (first: {v[0][:100]!r})" for name, v in sorted(report.items())
    )


def test_api_page_shows_defaults_and_math_as_written(built_pages: dict[Path, str]) -> None:
    """No ``<class 'torch...'>`` reprs in signatures, no literal ``\\_`` in math (issue 16)."""
    page = next((t for p, t in built_pages.items() if p.name == "api.html"), None)
    assert page is not None, "the API page was not built"
    assert "&lt;class" not in page and "torch.nn.modules." not in page
    assert "\\_" not in page


# A figure of MAX_FIGURE_WIDTH inches at the inline backend's 100 dpi, plus the few
# pixels that bbox_inches="tight" may add for a legend or a label at the edge: the width
# of the content column at a 1,300 px window once book/_static/book.css has narrowed the
# article's padding, so that every figure is shown at its natural size.
FIGURE_DPI = 100
MAX_FIGURE_PIXELS = 720


def wide_images(folder: Path, limit: int = MAX_FIGURE_PIXELS) -> dict[str, int]:
    """Every PNG under ``folder`` wider than ``limit`` pixels, with its width."""
    from PIL import Image

    wide = {}
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as im:
            if im.size[0] > limit:
                wide[path.name] = im.size[0]
    return wide


def test_wide_images_are_found(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (MAX_FIGURE_PIXELS, 10)).save(tmp_path / "fits.png")
    Image.new("RGB", (MAX_FIGURE_PIXELS + 1, 10)).save(tmp_path / "wide.png")
    assert wide_images(tmp_path) == {"wide.png": MAX_FIGURE_PIXELS + 1}


def test_figures_fit_the_column(built_pages: dict[Path, str]) -> None:
    """Every figure in the book is at most about 7 inches wide at 100 dpi (issue 16), so
    the theme shows it at its natural size and 9-point text stays 9-point text. The
    report names the page that shows each offending image."""
    from autoencoders.viz import MAX_FIGURE_WIDTH

    assert MAX_FIGURE_PIXELS >= MAX_FIGURE_WIDTH * FIGURE_DPI
    wide = wide_images(HTML / "_images")
    where = {name: sorted(p.name for p, t in built_pages.items() if name in t) for name in wide}
    # Sphinx never deletes _images left by an earlier build; only what a page shows counts
    wide = {name: px for name, px in wide.items() if where[name]}
    assert not wide, "figures wider than the column: " + "; ".join(
        f"{name[:12]}… {px} px on {', '.join(where[name]) or '?'}" for name, px in wide.items())


# Jupyter widgets leave their state and their views in the page as JSON script tags.
WIDGET_MARKUP = re.compile(r"application/vnd\.jupyter\.widget-(?:view|state)\+json")


def test_no_widget_output_is_saved_into_a_page(built_pages: dict[Path, str]) -> None:
    """Progress bars are off when the book is built (issue 16): a static page can only
    show a widget's first frame, and offline not even that."""
    found = {p.name: len(WIDGET_MARKUP.findall(t)) for p, t in built_pages.items()}
    found = {name: n for name, n in found.items() if n}
    assert not found, f"widget outputs in the built pages: {found}"


def uncaptioned_images(page: str) -> list[str]:
    """The images of a page's article that are not inside a numbered, captioned figure.

    A numbered figure is a ``<figure>`` whose ``<figcaption>`` holds Sphinx's
    ``caption-number`` ("Fig. 3") and a non-empty ``caption-text``. The theme's own icons
    (under ``_static/``, such as the Colab logo of the launch button) are not figures.
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page, "html.parser")
    article = soup.select_one("article") or soup
    missing = []
    for img in article.find_all("img"):
        if "_static/" in img.get("src", ""):
            continue
        figure = img.find_parent("figure")
        caption = figure.find("figcaption") if figure else None
        number = caption.select_one(".caption-number") if caption else None
        text = caption.select_one(".caption-text") if caption else None
        if not (number and number.get_text(strip=True) and text and text.get_text(strip=True)):
            missing.append(img.get("src", "?"))
    return missing


def test_uncaptioned_images_are_found() -> None:
    captioned = ('<figure><div><img src="a.png"/></div><figcaption><p>'
                 '<span class="caption-number">Fig. 1 </span>'
                 '<span class="caption-text">What to see.</span></p></figcaption></figure>')
    unnumbered = ('<figure><img src="b.png"/><figcaption><p>No number</p>'
                  '</figcaption></figure>')
    bare = '<div class="cell_output"><img src="c.png"/></div>'
    icon = '<img src="../_static/images/logo_colab.png"/>'
    page = f"<nav><img src='logo.png'/></nav><article>{icon}{captioned}{unnumbered}{bare}</article>"
    assert uncaptioned_images(page) == ["b.png", "c.png"]


def test_every_figure_has_a_numbered_caption(built_pages: dict[Path, str]) -> None:
    """Every image a page shows sits in a numbered figure with a caption (issue 16): for
    notebook outputs, the cell metadata ``mystnb.figure`` gives caption and label."""
    missing = {p.name: uncaptioned_images(t) for p, t in built_pages.items()
               if "_modules" not in p.relative_to(HTML).parts}
    missing = {name: srcs for name, srcs in missing.items() if srcs}
    total = sum(len(v) for v in missing.values())
    assert total == 0, f"{total} images without a numbered caption: " + "; ".join(
        f"{name}: {len(v)}" for name, v in sorted(missing.items()))


def test_every_page_loads_the_book_stylesheet(built_pages: dict[Path, str]) -> None:
    """book/_static/book.css (code at 13 px, so 80 characters fit the column) reaches
    every page and the built _static folder."""
    assert (HTML / "_static" / "book.css").is_file(), "book.css was not copied to _static"
    missing = [p.name for p, t in built_pages.items()
               if "_modules" not in p.relative_to(HTML).parts
               and not re.search(r'<link[^>]+href="[^"]*_static/book\.css', t)
               and 'http-equiv="refresh"' not in t.lower()]
    assert not missing, f"pages without book.css: {missing}"


def images_without_alt_text(page: str) -> list[str]:
    """Content images whose alt text is missing or is a file name."""
    from bs4 import BeautifulSoup

    article = BeautifulSoup(page, "html.parser").select_one("article")
    if article is None:
        return []
    bad = []
    for img in article.find_all("img"):
        src, alt = img.get("src", ""), (img.get("alt") or "").strip()
        if "_static/" in src or not src:
            continue
        if not alt or alt == src or alt.lower().endswith((".png", ".jpg", ".svg")):
            bad.append(src)
    return bad


def test_images_without_alt_text_are_found() -> None:
    page = ('<article><img src="../_images/a.png" alt="../_images/a.png"/>'
            '<img src="../_images/b.png" alt="Decoded samples."/>'
            '<img src="../_images/c.png"/></article>')
    assert images_without_alt_text(page) == ["../_images/a.png", "../_images/c.png"]


def test_every_figure_image_has_alt_text(built_pages: dict[Path, str]) -> None:
    """book/_ext/figure_alt.py gives each figure's image its caption's first sentence."""
    bad = {p.name: images_without_alt_text(t) for p, t in built_pages.items()
           if "_modules" not in p.relative_to(HTML).parts}
    bad = {name: srcs for name, srcs in bad.items() if srcs}
    assert not bad, f"images whose alt text is a file name or missing: {bad}"
