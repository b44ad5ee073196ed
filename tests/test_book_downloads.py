"""Readers can download each chapter as an executed notebook, with its outputs.

The notebooks in ``book/`` are committed without outputs; ``book/_ext/executed_notebooks.py``
copies the notebooks that myst-nb executed during the build into the HTML output and
links each notebook page to its copy. The first tests build a tiny book (an intro
page and one small notebook) with the project's ``_config.yml``: executed, from the
jupyter-cache, after the cache is cleared, and with execution off (a ``-W`` build
must then fail); a unit test checks the extension's test of "executed".
The last test checks every chapter page of the real build (``_build/html``, or
``$BOOK_HTML``), and is skipped when the book has not been built (``make book``).
"""

from __future__ import annotations

import html.parser
import importlib.util
import os
import posixpath
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / os.environ.get("BOOK_HTML", "_build/html")  # an absolute $BOOK_HTML wins
CHAPTER_PAGE = "[0-9][0-9]_*.html"

_spec = importlib.util.spec_from_file_location(
    "executed_notebooks", REPO / "book" / "_ext" / "executed_notebooks.py"
)
executed_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(executed_notebooks)


# ---------------------------------------------------------------- helpers


class _Links(html.parser.HTMLParser):
    """Collects the ``<a>`` elements of a page: their attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = {k: v or "" for k, v in attrs} | {"text": ""}

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append(self._open)
            self._open = None


def executed_download_links(page: Path) -> list[str]:
    """The hrefs of the page's "with its outputs" download links (the extension's)."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return [
        link["href"]
        for link in parser.links
        if " ".join(link["text"].split()) == executed_notebooks.LINK_TEXT
    ]


def outputs_of(notebook: Path) -> list[dict]:
    """All outputs of the code cells of ``notebook``."""
    nb = nbformat.read(notebook, as_version=4)
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def check_page_offers_executed_notebook(page: Path, html_root: Path) -> list[str]:
    """Problems with ``page``'s link to its executed notebook (empty if none).

    The page must carry exactly one link with the extension's text; it must point at
    an ``.ipynb`` file inside ``html_root``, under the extension's download folder,
    and that notebook must have at least one code cell with outputs.
    """
    name = page.relative_to(html_root).as_posix()
    hrefs = executed_download_links(page)
    if len(hrefs) != 1:
        return [f"{name}: expected one link {executed_notebooks.LINK_TEXT!r}, found {hrefs}"]
    (href,) = hrefs
    if href.startswith(("http:", "https:", "//", "/")) or not href.endswith(".ipynb"):
        return [f"{name}: the link {href!r} is not a relative link to an .ipynb file"]
    target = Path(posixpath.normpath(posixpath.join(page.parent.as_posix(), href)))
    try:
        inside = target.resolve().relative_to(html_root.resolve()).as_posix()
    except ValueError:
        return [f"{name}: the link {href!r} leaves the HTML folder {html_root}"]
    if not inside.startswith(executed_notebooks.DOWNLOAD_FOLDER + "/"):
        return [f"{name}: the link {href!r} is not under {executed_notebooks.DOWNLOAD_FOLDER}/"]
    if not target.is_file():
        return [f"{name}: the link {href!r} points at a missing file ({target})"]
    if not outputs_of(target):
        return [f"{name}: {inside} has no outputs (not an executed notebook)"]
    return []


def _notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    nb.cells = [make[kind](source) for kind, source in cells]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


TINY_CHAPTER = [
    ("markdown", "# Chapter 1 — A tiny chapter\n\nIt prints and it plots."),
    ("code", "print('hello from the tiny chapter')"),
    (
        "code",
        "import matplotlib.pyplot as plt\n\n"
        "fig, ax = plt.subplots(figsize=(3, 2))\n"
        "ax.plot([0, 1, 2], [0, 1, 4])\n"
        "plt.show()",
    ),
]


def write_tiny_book(root: Path, *, execute: str = "cache") -> Path:
    """A book in ``root`` with the project's ``_config.yml``, an intro and one notebook.

    The configuration is the repository's, with the paths that would not resolve
    from ``root`` made absolute (local extensions) or copied (the bibliography and the
    static folders), and ``execute.execute_notebooks`` set to ``execute``.
    """
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    extensions = config["sphinx"]["local_extensions"]
    assert "executed_notebooks" in extensions, (
        f"_config.yml sphinx.local_extensions must register executed_notebooks, got {extensions}"
    )
    config["sphinx"]["local_extensions"] = {
        name: str((REPO / path).resolve()) for name, path in extensions.items()
    }
    config["execute"]["execute_notebooks"] = execute
    (root / "book").mkdir(parents=True)
    for bib in config.get("bibtex_bibfiles", []):
        (root / bib).write_bytes((REPO / bib).read_bytes())
    for static in config["sphinx"].get("config", {}).get("html_static_path", []):
        shutil.copytree(REPO / static, root / static)
    (root / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    toc = {"format": "jb-book", "root": "book/intro", "chapters": [{"file": "book/01_tiny"}]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    (root / "book" / "intro.md").write_text("# A tiny book\n\nOne chapter.\n", encoding="utf-8")
    nbformat.write(_notebook(TINY_CHAPTER), root / "book" / "01_tiny.ipynb")
    return root


def build(root: Path) -> subprocess.CompletedProcess[str]:
    """``jupyter-book build root -W --keep-going`` (as ``make book``), timed out at 300 s.

    The kernel gets the environment of ``make book``: no ``MPLBACKEND`` (the tests
    set it to Agg, which would keep figures out of the outputs).
    """
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["TQDM_DISABLE"] = "1"
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    if not jupyter_book.is_file():
        pytest.fail(f"{jupyter_book} is missing: install the book extra (pip install -e '.[book]')")
    return subprocess.run(
        [str(jupyter_book), "build", str(root), "-W", "--keep-going"],
        capture_output=True, text=True, timeout=300, env=env, cwd=root,
    )


# ---------------------------------------------------------------- tiny books


def check_tiny_book(root: Path) -> None:
    """The tiny book's chapter page links to an executed notebook with both outputs."""
    html_root = root / "_build" / "html"
    chapter = html_root / "book" / "01_tiny.html"
    problems = check_page_offers_executed_notebook(chapter, html_root)
    assert not problems, problems
    copy = html_root / executed_notebooks.DOWNLOAD_FOLDER / "book" / "01_tiny.ipynb"
    outputs = outputs_of(copy)
    texts = "".join(out.get("text", "") for out in outputs)
    assert "hello from the tiny chapter" in texts, f"printed text missing from {copy}: {outputs}"
    assert any("image/png" in out.get("data", {}) for out in outputs), f"no figure in {copy}"
    # The source stays stripped, and the intro (a Markdown page) gets no link.
    assert not outputs_of(root / "book" / "01_tiny.ipynb")
    assert executed_download_links(html_root / "book" / "intro.html") == []


def test_tiny_book_links_its_chapter_to_the_executed_notebook(tmp_path: Path) -> None:
    """Executed during the build, then taken from the jupyter-cache, then neither.

    myst-nb 1.4 writes ``_build/jupyter_execute/<page>.ipynb`` without outputs when
    the outputs come from its cache, which is the usual case for ``make book`` (and
    for CI, which restores the cache); the second build (a fresh one beside the
    cache) checks that case. The third runs after the cache is cleared (as
    ``tools/book_stamp.py`` does) and reads no page again.
    """
    root = write_tiny_book(tmp_path / "tiny")
    result = build(root)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"the tiny book failed to build (-W):\n{log[-4000:]}"
    assert "Executed notebook" in log, log[-4000:]
    check_tiny_book(root)

    for folder in ("html", ".doctrees", "jupyter_execute"):  # keep only .jupyter_cache
        shutil.rmtree(root / "_build" / folder)
    result = build(root)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"the rebuild from the cache failed (-W):\n{log[-4000:]}"
    assert "Using cached notebook" in log and "Executed notebook" not in log, log[-4000:]
    check_tiny_book(root)
    # The extension completed myst-nb's copy with the cached outputs, so a later build
    # that does not read the page again still has them after the cache is cleared.
    assert outputs_of(root / "_build" / "jupyter_execute" / "book" / "01_tiny.ipynb")
    shutil.rmtree(root / "_build" / ".jupyter_cache")
    result = build(root)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"the build without a cache failed (-W):\n{log[-4000:]}"
    assert "Executed notebook" not in log and "Using cached notebook" not in log, log[-4000:]
    check_tiny_book(root)


def test_tiny_book_without_execution_fails_under_w(tmp_path: Path) -> None:
    """A notebook that was not executed gets no link, and a -W build fails naming it."""
    root = write_tiny_book(tmp_path / "tiny", execute="off")
    result = build(root)
    log = result.stdout + result.stderr
    assert result.returncode != 0, f"a -W build must fail without executed notebooks:\n{log[-3000:]}"
    assert "no download of the executed notebook" in log and "was not executed" in log, log[-3000:]
    assert "01_tiny" in log, log[-3000:]
    chapter = root / "_build" / "html" / "book" / "01_tiny.html"
    if chapter.is_file():  # --keep-going writes the pages before failing
        assert executed_download_links(chapter) == []
    assert not (root / "_build" / "html" / executed_notebooks.DOWNLOAD_FOLDER / "book"
                / "01_tiny.ipynb").exists()


def test_unexecuted_reason_tells_executed_from_stripped_notebooks(tmp_path: Path) -> None:
    reason = executed_notebooks.unexecuted_reason
    missing = tmp_path / "missing.ipynb"
    assert "does not exist" in reason(missing) and str(missing) in reason(missing)

    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json", encoding="utf-8")
    assert "not a readable notebook" in reason(broken)

    stripped = tmp_path / "stripped.ipynb"
    nbformat.write(_notebook(TINY_CHAPTER), stripped)
    assert "was not executed" in reason(stripped) and "2 code cells" in reason(stripped)

    executed = _notebook(TINY_CHAPTER)
    executed.cells[1].execution_count = 1
    executed.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    nbformat.write(executed, tmp_path / "executed.ipynb")
    assert reason(tmp_path / "executed.ipynb") is None

    prose = tmp_path / "prose.ipynb"  # no code cell: nothing to execute
    nbformat.write(_notebook([("markdown", "# Only words")]), prose)
    assert reason(prose) is None


def test_download_target_keeps_the_document_path() -> None:
    assert executed_notebooks.download_target("book/01_bottleneck") == (
        "_downloads_executed/book/01_bottleneck.ipynb"
    )


# ---------------------------------------------------------------- the real book


def test_every_chapter_page_links_to_its_executed_notebook() -> None:
    if not (HTML / "book" / "intro.html").is_file():
        pytest.skip(
            f"the book has not been built ({HTML / 'book' / 'intro.html'} is missing); "
            "run `make book`"
        )
    chapters = sorted((REPO / "book").glob("[0-9][0-9]_*.ipynb"))
    pages = sorted((HTML / "book").glob(CHAPTER_PAGE))
    assert [p.stem for p in pages] == [c.stem for c in chapters], (
        f"chapter pages in {HTML / 'book'} do not match the notebooks in book/"
    )
    problems = [p for page in pages for p in check_page_offers_executed_notebook(page, HTML)]
    assert not problems, "\n".join(problems)
