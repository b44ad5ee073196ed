"""tools/book_stamp.py: the book's execution cache is cleared exactly when an input changes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "book_stamp.py"
_spec = importlib.util.spec_from_file_location("book_stamp", SCRIPT)
book_stamp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book_stamp)

VERSIONS = {"python": "3.11.7", "torch": "2.14.1"}


def _tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    pkg = tmp_path / "autoencoders"
    (pkg / "zoo").mkdir(parents=True)
    (pkg / "loss.py").write_text("X = 1\n")
    (pkg / "zoo" / "m.pt").write_bytes(b"\x00\x01")
    data = tmp_path / "data"
    (data / "MNIST" / "raw").mkdir(parents=True)
    (data / "MNIST" / "raw" / "t10k").write_bytes(b"abc")
    cache = tmp_path / "_build" / ".jupyter_cache"
    return pkg, data, cache


def _fill(cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "global.db").write_text("executed notebooks")


def _run(pkg, data, cache, versions=VERSIONS) -> bool:
    """True when the cache was cleared."""
    outcome = book_stamp.refresh(cache, book_stamp.compute_stamp(pkg, data, versions),
                                 book_stamp.compute_zoo_stamp(pkg))
    return outcome == "cleared"


def test_cache_survives_unchanged_inputs_and_is_cleared_by_each_input(tmp_path):
    pkg, data, cache = _tree(tmp_path)
    _fill(cache)
    assert _run(pkg, data, cache)  # no stamp yet: cleared
    assert not cache.exists()
    _fill(cache)
    assert not _run(pkg, data, cache)  # nothing changed: kept
    assert (cache / "global.db").is_file()

    changes = [
        lambda: (pkg / "loss.py").write_text("X = 2\n"),  # package source
        lambda: (pkg / "pretrained.py").write_text(""),  # a new module
        lambda: (data / "MNIST" / "raw" / "t10k").write_bytes(b"abcd"),  # the data
    ]
    for change in changes:
        change()
        _fill(cache)
        assert _run(pkg, data, cache), change
        assert not cache.exists()
        _fill(cache)
        assert not _run(pkg, data, cache)
    assert _run(pkg, data, cache, {**VERSIONS, "torch": "2.15.0"})  # another torch
    assert not cache.exists()


def test_bytecode_caches_do_not_count(tmp_path):
    pkg, data, cache = _tree(tmp_path)
    _run(pkg, data, cache)
    _fill(cache)
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "loss.cpython-311.pyc").write_bytes(b"junk")
    assert not _run(pkg, data, cache)


def test_command_line_clears_a_stale_cache(tmp_path):
    cache = tmp_path / ".jupyter_cache"
    _fill(cache)
    (tmp_path / ".jupyter_cache.stamp").write_text("0" * 64 + "\n")
    out = subprocess.run([sys.executable, str(SCRIPT), "--cache", str(cache),
                          "--data", str(tmp_path / "none")],
                         capture_output=True, text=True, check=True)
    assert (tmp_path / ".jupyter_cache.stamp").read_text() != "0" * 64 + "\n"
    assert "cleared" in out.stdout and not cache.exists()
    again = subprocess.run([sys.executable, str(SCRIPT), "--cache", str(cache),
                            "--data", str(tmp_path / "none")],
                           capture_output=True, text=True, check=True)
    assert "unchanged" in again.stdout


def test_make_book_runs_the_stamp_before_building():
    recipe = (REPO / "Makefile").read_text().split("\nbook:", 1)[1].split("\n\n", 1)[0]
    lines = [ln.strip() for ln in recipe.splitlines()]
    stamp = next(i for i, ln in enumerate(lines) if "tools/book_stamp.py" in ln)
    build = next(i for i, ln in enumerate(lines) if "jupyter-book build" in ln)
    assert stamp < build
    assert "$(BOOK_OUT)/_build/.jupyter_cache" in lines[stamp]


def test_a_retrained_zoo_drops_only_the_chapters_that_use_it(tmp_path):
    import nbformat
    from jupyter_cache import get_cache

    pkg, data, cache = _tree(tmp_path)
    book = tmp_path / "book"
    book.mkdir()
    paths = {}
    for name, code in (("plain", "x = 1"), ("zoo", "from autoencoders import pretrained")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        paths[name] = book / f"{name}.ipynb"
        nbformat.write(nb, paths[name])
    _run(pkg, data, cache)
    jc = get_cache(str(cache))
    for path in paths.values():
        jc.cache_notebook_file(str(path), check_validity=False)
    assert len(jc.list_cache_records()) == 2
    (pkg / "zoo" / "m.pt").write_bytes(b"\x00\x02")  # a retrained zoo model
    stamp = book_stamp.compute_stamp(pkg, data, VERSIONS)
    assert book_stamp.refresh(cache, stamp, book_stamp.compute_zoo_stamp(pkg)) == "zoo"
    left = [r.uri for r in get_cache(str(cache)).list_cache_records()]
    assert left == [str(paths["plain"])]
    assert book_stamp.refresh(cache, stamp, book_stamp.compute_zoo_stamp(pkg)) == "kept"
