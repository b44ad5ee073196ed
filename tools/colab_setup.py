"""The Colab set-up cell: one template, written into every chapter and shown in the book.

Every notebook in ``book/`` starts with the same code cell (tagged ``remove-cell``, so
the rendered book hides it). In Colab it installs the *release* the notebook belongs
to, ``git+<repository>@v<version>``, so that a student's copy keeps working when
``main`` moves on; ``AUTOENCODERS_INSTALL`` overrides what it installs (a path, a
wheel, another git reference). Outside Colab it does nothing.

    python tools/colab_setup.py          # check: exit 1 if a notebook differs
    python tools/colab_setup.py --write  # rewrite every notebook's set-up cell

``tests/test_project.py`` checks that every notebook, ``book/colab_and_gpu.md`` and
the README agree with :func:`setup_cell`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"

TEMPLATE = '''\
# Colab set-up (hidden in the book): in Colab, install the release of the
# package that this notebook belongs to. AUTOENCODERS_INSTALL overrides it.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    PACKAGE = os.environ.get(
        "AUTOENCODERS_INSTALL",
        "git+{url}@v{version}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", PACKAGE],
                   check=True)'''


def repository_url() -> str:
    """``repository.url`` of ``_config.yml``: the one URL of the project."""
    text = (REPO / "_config.yml").read_text(encoding="utf-8")
    match = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, re.M)
    if not match:
        raise ValueError("_config.yml has no repository.url")
    return match.group(1)


def package_version() -> str:
    """``autoencoders.__version__``, read from the source (no import needed)."""
    text = (REPO / "autoencoders" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not match:
        raise ValueError("autoencoders/__init__.py has no __version__")
    return match.group(1)


def setup_cell(url: str | None = None, version: str | None = None) -> str:
    """The source of the set-up cell for this checkout (or the given url and version)."""
    return TEMPLATE.format(url=url or repository_url(), version=version or package_version())


def _first_code_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["cell_type"] == "code")


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the set-up cells")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: book/*.ipynb")
    args = parser.parse_args(argv)
    wanted = setup_cell()
    stale = []
    for path in args.notebooks or sorted(BOOK.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cell = _first_code_cell(nb)
        if "".join(cell["source"]) == wanted:
            continue
        stale.append(path.name)
        if args.write:
            cell["source"] = _lines(wanted)
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if "remove-cell" not in tags:
                tags.append("remove-cell")
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    verb = "rewrote" if args.write else "differ"
    print(f"{len(stale)} set-up cell(s) {verb}: {', '.join(stale) or '-'}")
    return 0 if args.write or not stale else 1


if __name__ == "__main__":
    sys.exit(main())
