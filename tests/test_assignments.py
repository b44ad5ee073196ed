"""The assignment-stripping switch: tools/make_assignments.py and the student copies it writes.

The reference notebook (book/09_assignments.ipynb, solutions in place) is executed by
nbmake; here we check the *student* side: the copy is a valid notebook, holds no line
of any solution, and every checker cell fails on the skeletons, because of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "make_assignments.py"
REFERENCE = REPO / "book" / "09_assignments.ipynb"


def run_script(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )


def tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


@pytest.fixture(scope="module")
def reference():
    return nbformat.read(REFERENCE, as_version=4)


@pytest.fixture(scope="module")
def student_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("assignments")
    result = run_script("--out", out)
    assert result.returncode == 0, result.stderr
    path = out / REFERENCE.name
    assert path.is_file(), f"no student copy written; stdout: {result.stdout}"
    return path


@pytest.fixture(scope="module")
def student(student_path):
    return nbformat.read(student_path, as_version=4)


def test_student_copy_is_a_valid_notebook_without_outputs(student, reference):
    nbformat.validate(student)
    assert [c.cell_type for c in student.cells] == [c.cell_type for c in reference.cells]
    for cell in student.cells:
        assert "solution" not in tags(cell) and "skeleton" not in cell.metadata
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_each_solution_is_replaced_by_its_skeleton(student, reference):
    solutions = [i for i, c in enumerate(reference.cells) if "solution" in tags(c)]
    assert len(solutions) >= 3, "chapter 9 should hold at least three assignments"
    for i in solutions:
        ref, stu = reference.cells[i], student.cells[i]
        assert stu.source == ref.metadata["skeleton"]
        assert "skeleton" in tags(stu) and "hide-input" not in tags(stu)
        assert "raise NotImplementedError" in stu.source and stu.source != ref.source
    checkers = [i for i, c in enumerate(student.cells) if "checker" in tags(c)]
    assert checkers == [i for i, c in enumerate(reference.cells) if "checker" in tags(c)]
    assert len(checkers) == len(solutions)


def _solution_lines(cell) -> list[str]:
    """Lines of a solution that its skeleton does not have (ignoring short lines and comments)."""
    skeleton = {line.strip() for line in cell.metadata["skeleton"].splitlines()}
    return [
        s for s in (line.strip() for line in cell.source.splitlines())
        if len(s) >= 20 and s not in skeleton and not s.startswith("#")
    ]


def test_student_copy_contains_no_solution_line(student, reference):
    text = "\n".join(c.source for c in student.cells) + json.dumps([c.metadata for c in student.cells])
    for cell in reference.cells:
        if "solution" in tags(cell):
            lines = _solution_lines(cell)
            assert len(lines) >= 3, f"solution too short to test for leaks:\n{cell.source}"
            leaked = [line for line in lines if line in text]
            assert not leaked, f"solution lines found in the student copy: {leaked}"


# Runs in a fresh interpreter: every code cell in order (the Colab cell is skipped); a
# checker must raise, every other cell must not. Prints one JSON line per checker.
_RUNNER = r"""
import json, sys, traceback
import nbformat
nb = nbformat.read(sys.argv[1], as_version=4)
ns = {"__name__": "__main__"}
for i, cell in enumerate(nb.cells):
    cell_tags = cell.metadata.get("tags", [])
    if cell.cell_type != "code" or "remove-cell" in cell_tags:
        continue
    code = compile(cell.source, f"<cell {i}>", "exec")
    if "checker" not in cell_tags:
        exec(code, ns)
        continue
    try:
        exec(code, ns)
    except BaseException as err:
        print(json.dumps({"cell": i, "error": type(err).__name__, "message": str(err)[-2000:],
                          "traceback": traceback.format_exc()[-3000:]}))
    else:
        print(json.dumps({"cell": i, "error": None}))
"""


def test_every_checker_fails_on_the_skeletons(student_path, student):
    env = {**os.environ, "AUTOENCODERS_FAST": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(student_path)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )
    assert result.returncode == 0, f"a non-checker cell failed in the student copy:\n{result.stderr[-3000:]}"
    outcomes = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"cell"')]
    checkers = [i for i, c in enumerate(student.cells) if "checker" in tags(c)]
    assert [o["cell"] for o in outcomes] == checkers
    for o in outcomes:
        assert o["error"] in ("NotImplementedError", "AssertionError"), (
            f"checker cell {o['cell']} did not fail as expected: {o}")
        # The failure must come from the skeleton, not from a broken checker.
        assert "NotImplementedError" in o["traceback"], o["traceback"]


def _toy_notebook(solution_meta: dict | None = None, with_checker: bool = True):
    cells = [new_markdown_cell("# Toy")]
    solution = new_code_cell("def f():\n    return 42")
    solution.metadata.update(solution_meta or {})
    cells.append(solution)
    if with_checker:
        checker = new_code_cell("assert f() == 42")
        checker.metadata["tags"] = ["checker"]
        cells.append(checker)
    return new_notebook(cells=cells)


GOOD = {"tags": ["solution", "hide-input"], "skeleton": "def f():\n    raise NotImplementedError"}


def test_check_accepts_the_book_and_writes_nothing(tmp_path):
    result = run_script("--check")
    assert result.returncode == 0, result.stderr
    assert "well formed" in result.stdout


@pytest.mark.parametrize(
    ("meta", "with_checker", "message"),
    [
        ({"tags": ["solution"]}, True, "no metadata['skeleton']"),
        ({"tags": ["solution"], "skeleton": "def f():\n    pass"}, True, "must raise NotImplementedError"),
        (GOOD, False, "no 'checker' cell after it"),
    ],
)
def test_check_rejects_bad_markup(tmp_path, meta, with_checker, message):
    nbformat.write(_toy_notebook(meta, with_checker), tmp_path / "toy.ipynb")
    result = run_script("--check", "--book", tmp_path)
    assert result.returncode == 1
    assert message in result.stderr


def test_check_with_out_detects_a_stale_copy(tmp_path):
    book, out = tmp_path / "book", tmp_path / "out"
    book.mkdir()
    nbformat.write(_toy_notebook(GOOD), book / "toy.ipynb")
    assert run_script("--book", book, "--out", out).returncode == 0
    copy = nbformat.read(out / "toy.ipynb", as_version=4)
    assert copy.cells[1].source == GOOD["skeleton"] and copy.cells[1].metadata["tags"] == ["skeleton"]
    assert run_script("--check", "--book", book, "--out", out).returncode == 0
    (book / "toy.ipynb").write_text((book / "toy.ipynb").read_text().replace("42", "43"))
    result = run_script("--check", "--book", book, "--out", out)
    assert result.returncode == 1 and "out of date" in result.stderr


def test_student_copy_installs_the_release_it_was_generated_from(student):
    """In Colab the student's copy installs ``@v<__version__>`` of the package, the
    version the copy was made from, not a moving branch (issue 18)."""
    import autoencoders

    setup = next(c for c in student.cells if c.cell_type == "code")
    assert f"@v{autoencoders.__version__}" in setup.source
    assert "@main" not in setup.source
