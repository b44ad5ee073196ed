"""Wall-clock seconds to execute every notebook of the book, in fast and in full mode.

Each notebook runs top to bottom in a fresh Jupyter kernel through ``nbclient``, the
engine behind ``nbmake`` and ``jupyter-book``. The kernel's start and shutdown are
included: they are part of what CI pays per notebook. Notebooks run inside a temporary
copy of ``book/`` (files they write land there), so ``book/`` is never modified.

Fast mode sets ``AUTOENCODERS_FAST=1`` (what ``make test`` runs), full mode
``AUTOENCODERS_FAST=0`` (what ``make book`` renders). ``AUTOENCODERS_DATA`` defaults to
``../shared/data`` beside the repository, as in the tests.

Targets on the 2-core CI machine: the fast suite under 6 minutes, the full book under
45 minutes.

On a machine shared with other jobs, torch's default of one thread per core makes the
threads of each matrix product wait for each other; ``--threads 1`` (which sets
``OMP_NUM_THREADS=1`` for the kernels) then runs the notebooks several times faster.

Usage::

    python -m benchmarks.book_time [--fast-only | --full-only] [--notebooks 01_bottleneck,04_vae]
        [--timeout 3600] [--threads N] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.vae_speed import REPO, RESULTS, load_average, machine_info, write_json

BOOK = REPO / "book"
TARGETS_S = {"fast": 6 * 60.0, "full": 45 * 60.0}
MODES = {"fast": "1", "full": "0"}


def find_notebooks(names: Sequence[str] | None = None, book: Path = BOOK) -> list[Path]:
    """The book's notebooks in file order, or those named (with or without ``.ipynb``)."""
    available = sorted(book.glob("*.ipynb"))
    if names is None:
        return available
    by_stem = {p.stem: p for p in available}
    chosen = []
    for name in names:
        stem = Path(name).stem
        if stem not in by_stem:
            raise ValueError(f"no notebook {name!r} in {book}; available: {sorted(by_stem)}")
        chosen.append(by_stem[stem])
    return chosen


def execute(
    notebook: Path, workdir: Path, fast: bool, timeout: int | None, threads: int | None = None
) -> dict[str, object]:
    """Run one notebook (a copy inside ``workdir``); return its seconds and status.

    ``threads`` sets ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` for the kernel (torch's
    intra-op threads); ``None`` leaves torch's default (one per core).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(workdir / notebook.name, as_version=4)
    env = {
        "AUTOENCODERS_FAST": MODES["fast" if fast else "full"],
        "MPLBACKEND": "Agg",
    }
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    shared = REPO.parent / "shared" / "data"
    if not os.environ.get("AUTOENCODERS_DATA") and shared.is_dir():
        env["AUTOENCODERS_DATA"] = str(shared)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    status, error = "ok", ""
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as err:
        status = "timeout" if isinstance(err, CellTimeoutError) else "error"
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # drop the traceback's colour codes
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        error = lines[-1][:300] if lines else type(err).__name__
    except Exception as err:  # a dead kernel (e.g. out of memory): record it, go on
        status = "died" if isinstance(err, DeadKernelError) or isinstance(err.__context__, DeadKernelError) else "error"
        cause = err.__context__ if isinstance(err.__context__, DeadKernelError) else err
        error = f"{type(cause).__name__}: {cause}"[:300]
    finally:
        seconds = time.perf_counter() - start
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nbformat.write(nb, workdir / notebook.name)  # the executed copy, never book/
    return {"notebook": notebook.stem, "seconds": seconds, "status": status, "error": error,
            "load_1min": load_average()}


def run(
    notebooks: Sequence[Path], modes: Sequence[str], timeout: int | None, threads: int | None = None, log=print
) -> dict[str, list]:
    """Execute every notebook in every mode; one temporary copy of the book per mode."""
    results: dict[str, list] = {}
    for mode in modes:
        results[mode] = []
        with tempfile.TemporaryDirectory(prefix=f"book_time_{mode}_") as tmp:
            workdir = Path(tmp) / "book"
            shutil.copytree(notebooks[0].parent, workdir, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
            for nb in notebooks:
                row = execute(nb, workdir, fast=mode == "fast", timeout=timeout, threads=threads)
                results[mode].append(row)
                note = "" if row["status"] == "ok" else f"  {row['status'].upper()}: {row['error']}"
                log(f"  {mode:<4} {nb.stem:<32} {row['seconds']:8.1f} s  load {row['load_1min']:.2f}{note}")
    return results


def format_table(results: dict[str, list]) -> str:
    modes = list(results)
    names = list(dict.fromkeys(r["notebook"] for rows in results.values() for r in rows))
    cell = {(m, r["notebook"]): r for m in modes for r in results[m]}
    width = max([len("notebook"), len("total"), *map(len, names)])
    header = f"{'notebook':<{width}}" + "".join(f"{m + ' s':>16}" for m in modes)
    lines = [header]
    for name in names:
        parts = []
        for m in modes:
            r = cell.get((m, name))
            text = "" if r is None else f"{r['seconds']:.1f}" + ("" if r["status"] == "ok" else f" ({r['status']})")
            parts.append(f"{text:>16}")
        lines.append(f"{name:<{width}}" + "".join(parts))
    totals = "".join(f"{sum(r['seconds'] for r in results[m]):>16.1f}" for m in modes)
    lines.append(f"{'total':<{width}}" + totals)
    targets = "".join(f"{'< ' + str(int(TARGETS_S[m])):>16}" for m in modes)
    lines.append(f"{'target':<{width}}" + targets)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--fast-only", action="store_true", help="only AUTOENCODERS_FAST=1")
    which.add_argument("--full-only", action="store_true", help="only AUTOENCODERS_FAST=0")
    parser.add_argument("--notebooks", default=None, help="comma-separated notebook names (default: all)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell (default 3600)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per kernel (OMP_NUM_THREADS); default: one per core")
    parser.add_argument("--book", type=Path, default=BOOK, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=RESULTS / "book_time.json")
    args = parser.parse_args(argv)
    names = None if args.notebooks is None else [n.strip() for n in args.notebooks.split(",") if n.strip()]
    try:
        notebooks = find_notebooks(names, args.book)
    except ValueError as err:
        parser.error(str(err))
    if not notebooks:
        parser.error(f"no notebooks found in {args.book}")
    modes = ["fast"] if args.fast_only else ["full"] if args.full_only else ["fast", "full"]

    import torch

    info = machine_info(torch.device("cpu"))
    info["load_1min_start"] = load_average()
    print(f"os.cpu_count()={info['cpu_count']}, torch {info['torch']}, kernel threads "
          f"{args.threads or 'default'}, 1-min load average {info['load_1min_start']:.2f}; "
          f"{len(notebooks)} notebook(s), modes {modes}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    info["kernel_threads"] = args.threads or "default"
    results = run(notebooks, modes, args.timeout, args.threads)
    info["load_1min_end"] = load_average()
    print()
    print(format_table(results))
    print(f"load average {info['load_1min_start']:.2f} at start, {info['load_1min_end']:.2f} at end")
    report = {
        "machine": info,
        "targets_s": TARGETS_S,
        "results": results,
        "totals_s": {m: sum(r["seconds"] for r in rows) for m, rows in results.items()},
    }
    write_json(args.json, report)
    print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
