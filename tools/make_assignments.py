"""Write student copies of the book's assignment notebooks, with the solutions removed.

A chapter with assignments (``book/09_assignments.ipynb``) runs the *reference
solutions*, so that it executes under ``pytest --nbmake`` and in the book build. Each
solution is a code cell marked like this::

    cell.metadata = {
        "tags": ["solution", "hide-input"],          # "hide-input": folded in the book
        "skeleton": "def f(...):\\n    raise NotImplementedError(...)",
    }

and the cell that grades it carries the tag ``"checker"``. The student copy replaces
every solution's source by its ``skeleton``, renames the tag ``"solution"`` to
``"skeleton"``, drops ``"hide-input"`` and the stored skeleton, and clears every
output, so a student who runs it sees each checker fail until the skeleton is filled in.

Usage (``make assignments`` runs the first form)::

    python tools/make_assignments.py --out assignments/      # write the student copies
    python tools/make_assignments.py --check                 # validate the markup only
    python tools/make_assignments.py --check --out assignments/  # ... and that the copies are current

``--check`` writes nothing. It exits with status 1, listing every problem, when a
solution cell has no skeleton, a skeleton does not raise ``NotImplementedError``, a
solution has no checker after it, or (with ``--out``) a student copy is missing or out
of date. Only the standard library and ``nbformat`` are used.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

SOLUTION, SKELETON, CHECKER = "solution", "skeleton", "checker"
# Tags that only make sense while the solution is in the cell.
_SOLUTION_ONLY_TAGS = ("hide-input", "hide-cell", "remove-input")
BOOK = Path(__file__).resolve().parents[1] / "book"


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def has_solutions(nb: nbformat.NotebookNode) -> bool:
    """Whether any cell of ``nb`` is tagged ``"solution"``."""
    return any(SOLUTION in _tags(cell) for cell in nb.cells)


def problems(nb: nbformat.NotebookNode, name: str) -> list[str]:
    """Markup errors of one notebook, as readable messages (empty when it is fine)."""
    found = []
    waiting = None  # index of a solution cell still waiting for its checker
    for i, cell in enumerate(nb.cells):
        tags = _tags(cell)
        where = f"{name}: cell {i}"
        if SOLUTION in tags:
            if waiting is not None:
                found.append(f"{name}: cell {waiting}: solution has no 'checker' cell before the next solution")
            waiting = i
            skeleton = cell.get("metadata", {}).get(SKELETON)
            if cell.get("cell_type") != "code":
                found.append(f"{where}: a 'solution' cell must be a code cell, got {cell.get('cell_type')!r}")
            if not isinstance(skeleton, str) or not skeleton.strip():
                found.append(f"{where}: solution cell has no metadata['skeleton'] source string")
            elif "NotImplementedError" not in skeleton:
                found.append(f"{where}: the skeleton must raise NotImplementedError, got:\n{skeleton}")
            elif skeleton.strip() == str(cell.get("source", "")).strip():
                found.append(f"{where}: the skeleton is identical to the solution")
        if CHECKER in tags:
            if cell.get("cell_type") != "code":
                found.append(f"{where}: a 'checker' cell must be a code cell")
            waiting = None
    if waiting is not None:
        found.append(f"{name}: cell {waiting}: solution has no 'checker' cell after it")
    return found


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with every solution replaced by its skeleton and all outputs cleared."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        meta = cell.setdefault("metadata", {})
        tags = _tags(cell)
        if SOLUTION in tags:
            cell.source = meta.pop(SKELETON)
            tags = [SKELETON if t == SOLUTION else t for t in tags if t not in _SOLUTION_ONLY_TAGS]
            meta["tags"] = tags
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return out


def render(nb: nbformat.NotebookNode) -> str:
    """The text written for a notebook (stable, so ``--check`` can compare files)."""
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for the student copies")
    parser.add_argument("--check", action="store_true", help="validate only; write nothing")
    parser.add_argument("--book", type=Path, default=BOOK, help="folder of the notebooks (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.out is None and not args.check:
        parser.error("give --out FOLDER (write student copies) and/or --check (validate)")

    paths = sorted(args.book.glob("*.ipynb"))
    errors: list[str] = []
    copies: dict[str, str] = {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if not has_solutions(nb):
            continue
        found = problems(nb, path.name)
        errors += found
        if not found:
            student = student_copy(nb)
            try:
                nbformat.validate(student)
            except nbformat.ValidationError as err:
                errors.append(f"{path.name}: the student copy is not a valid notebook: {err.message}")
                continue
            copies[path.name] = render(student)
    if not copies and not errors:
        errors.append(f"no notebook in {args.book} has cells tagged {SOLUTION!r}")

    if args.check and args.out is not None:
        for name, text in copies.items():
            target = args.out / name
            if not target.is_file():
                errors.append(f"{target}: missing; run python tools/make_assignments.py --out {args.out}")
            elif target.read_text(encoding="utf-8") != text:
                errors.append(f"{target}: out of date; run python tools/make_assignments.py --out {args.out}")
    if errors:
        print("make_assignments: " + f"{len(errors)} problem(s):\n" + "\n".join(f"- {e}" for e in errors), file=sys.stderr)
        return 1
    if args.check:
        print(f"make_assignments: {len(copies)} notebook(s) with assignments are well formed")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in copies.items():
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
