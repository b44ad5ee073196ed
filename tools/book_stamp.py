"""Clear the book's execution cache when anything the chapters depend on has changed.

jupyter-cache (``execute_notebooks: cache``) keys an executed notebook on its code
cells only. The chapters' outputs also depend on the package's source, the model zoo
shipped inside it, the data they read and the versions of torch and Python, none of
which jupyter-cache sees: without this stamp, an edit to ``autoencoders/*.py`` or a
retrained zoo model would leave stale figures and numbers in the book.

The stamp is a SHA-256 over

* every file under ``autoencoders/`` (source and zoo files, by path and contents);
* the data root (``AUTOENCODERS_DATA``), by relative path, size and modification time
  of every file (hashing gigabytes of data on every build would cost minutes);
* the Python, torch, numpy and matplotlib versions.

``make book`` runs ``python tools/book_stamp.py --cache _build/.jupyter_cache``
before building: when the stamp differs from the one stored beside the cache (or
there is none), the cache folder is removed and the new stamp is written, so every
chapter is executed again.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_SKIP_DIRS = {"__pycache__"}


def _files(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".tmp")):
                yield Path(dirpath) / name


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for module in ("torch", "numpy", "matplotlib"):
        try:
            out[module] = __import__(module).__version__
        except ImportError:
            out[module] = "absent"
    return out


def compute_stamp(
    package: Path = REPO / "autoencoders",
    data_root: Path | None = None,
    versions: dict[str, str] | None = None,
) -> str:
    """The SHA-256 (hex) of everything above; the same inputs give the same stamp."""
    h = hashlib.sha256()
    for path in _files(package):
        h.update(f"P{path.relative_to(package).as_posix()}\0".encode())
        h.update(path.read_bytes())
    if data_root is not None and data_root.is_dir():
        for path in _files(data_root):
            st = path.stat()
            rel = path.relative_to(data_root).as_posix()
            h.update(f"D{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    for key, value in sorted((versions if versions is not None else _versions()).items()):
        h.update(f"V{key}={value}\0".encode())
    return h.hexdigest()


def refresh(cache: Path, stamp: str) -> bool:
    """Remove ``cache`` if its stored stamp is not ``stamp``; store ``stamp``.

    Returns True when the cache was cleared (or there was no stored stamp).
    """
    stamp_file = cache.parent / (cache.name + ".stamp")
    old = stamp_file.read_text().strip() if stamp_file.is_file() else None
    if old == stamp:
        return False
    if cache.exists():
        shutil.rmtree(cache)
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(stamp + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, type=Path,
                        help="the jupyter-cache folder, e.g. _build/.jupyter_cache")
    parser.add_argument("--data", type=Path, default=None,
                        help="data root (default: $AUTOENCODERS_DATA)")
    args = parser.parse_args(argv)
    data = args.data or (Path(os.environ["AUTOENCODERS_DATA"])
                         if os.environ.get("AUTOENCODERS_DATA") else None)
    stamp = compute_stamp(data_root=data)
    if refresh(args.cache, stamp):
        print(f"book inputs changed (stamp {stamp[:12]}): cleared {args.cache}, "
              "every chapter will be executed again")
    else:
        print(f"book inputs unchanged (stamp {stamp[:12]}): keeping {args.cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
