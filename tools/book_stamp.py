"""Clear the book's execution cache when anything the chapters depend on has changed.

jupyter-cache (``execute_notebooks: cache``) keys an executed notebook on its code
cells only. The chapters' outputs also depend on the package's source, the model zoo
shipped inside it, the data they read and the versions of torch and Python, none of
which jupyter-cache sees: without this stamp, an edit to ``autoencoders/*.py`` or a
retrained zoo model would leave stale figures and numbers in the book.

Two stamps, each a SHA-256:

* the **inputs** stamp, over every file under ``autoencoders/`` except the model zoo
  (source, by path and contents), the data root (``AUTOENCODERS_DATA``, by relative
  path, size and modification time of every file: hashing gigabytes of data on every
  build would cost minutes), and the Python, torch, numpy and matplotlib versions.
  When it changes, the whole cache is removed: the package's code can affect every
  chapter;
* the **zoo** stamp, over ``autoencoders/zoo``. When only it changes, only the
  chapters that use the zoo (whose source mentions ``pretrained``) are removed from
  the cache, and the others keep their executed outputs.

``make book`` runs ``python tools/book_stamp.py --cache _build/.jupyter_cache``
before building. The stamps are stored beside the cache, in
``.jupyter_cache.stamp`` (JSON).
"""

from __future__ import annotations

import argparse
import hashlib
import json
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


def _hash_files(h, root: Path, skip: str | None = None) -> None:
    for path in _files(root):
        rel = path.relative_to(root).as_posix()
        if skip is not None and (rel == skip or rel.startswith(skip + "/")):
            continue
        h.update(f"P{rel}\0".encode())
        h.update(path.read_bytes())


def compute_stamp(
    package: Path = REPO / "autoencoders",
    data_root: Path | None = None,
    versions: dict[str, str] | None = None,
) -> str:
    """The inputs stamp (hex): package without the zoo, data listing, versions."""
    h = hashlib.sha256()
    _hash_files(h, package, skip="zoo")
    if data_root is not None and data_root.is_dir():
        for path in _files(data_root):
            st = path.stat()
            rel = path.relative_to(data_root).as_posix()
            h.update(f"D{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    for key, value in sorted((versions if versions is not None else _versions()).items()):
        h.update(f"V{key}={value}\0".encode())
    return h.hexdigest()


def compute_zoo_stamp(package: Path = REPO / "autoencoders") -> str:
    """The zoo stamp (hex): every file of ``package/zoo``."""
    h = hashlib.sha256()
    if (package / "zoo").is_dir():
        _hash_files(h, package / "zoo")
    return h.hexdigest()


def _uses_zoo(notebook: Path) -> bool:
    try:
        return "pretrained" in notebook.read_text(encoding="utf-8")
    except OSError:
        return False


def _drop_zoo_chapters(cache: Path) -> list[str]:
    """Remove the cached executions of the notebooks that use the zoo."""
    if not cache.exists():
        return []
    from jupyter_cache import get_cache

    jc = get_cache(str(cache))
    dropped = []
    for record in jc.list_cache_records():
        if _uses_zoo(Path(record.uri)):
            jc.remove_cache(record.pk)
            dropped.append(Path(record.uri).name)
    return sorted(set(dropped))


def refresh(cache: Path, stamp: str, zoo_stamp: str = "") -> str:
    """Bring ``cache`` up to date with the stamps; store them.

    Returns ``'cleared'`` (inputs changed, or no stored stamp: the cache was removed),
    ``'zoo'`` (only the zoo changed: its chapters were removed from the cache) or
    ``'kept'``.
    """
    stamp_file = cache.parent / (cache.name + ".stamp")
    try:
        old = json.loads(stamp_file.read_text()) if stamp_file.is_file() else {}
    except ValueError:  # an older, single-line stamp
        old = {}
    outcome = "kept"
    if old.get("inputs") != stamp:
        if cache.exists():
            shutil.rmtree(cache)
        outcome = "cleared"
    elif old.get("zoo") != zoo_stamp:
        _drop_zoo_chapters(cache)
        outcome = "zoo"
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(json.dumps({"inputs": stamp, "zoo": zoo_stamp}) + "\n")
    return outcome


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
    outcome = refresh(args.cache, stamp, compute_zoo_stamp())
    if outcome == "cleared":
        print(f"book inputs changed (stamp {stamp[:12]}): cleared {args.cache}, "
              "every chapter will be executed again")
    elif outcome == "zoo":
        print("the model zoo changed: the chapters that use it will be executed again")
    else:
        print(f"book inputs unchanged (stamp {stamp[:12]}): keeping {args.cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
