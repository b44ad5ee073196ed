"""Project-level checks: notebooks, table of contents, environment files and README.

Each notebook in ``book/`` must open in Colab with a hidden set-up cell that installs the
package from the repository URL in ``_config.yml``, must be committed without outputs,
and must end with exercises. The environment files and the README must agree with
``pyproject.toml`` and ``_config.yml``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
README = REPO / "README.md"

# Which part of the book each numbered chapter belongs to (by its two-digit prefix).
PARTS = {
    "Foundations": ("01", "02", "03"),
    "Variational autoencoders": ("04", "05"),
    "Disentanglement": ("06", "07"),
    "Building on the package": ("08", "09", "10"),
}
# Sections that may follow a notebook's Exercises section.
AFTER_EXERCISES = re.compile(r"^(solutions?|references|further reading|bibliography)\b", re.I)


def _config() -> dict:
    return yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))


def _repository_url() -> str:
    return _config()["repository"]["url"].rstrip("/")


def _toc() -> dict:
    return yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))


def _toc_entries() -> list[tuple[str, str | None]]:
    """Every ``file`` in _toc.yml as (path without suffix, caption of its part)."""
    toc = _toc()
    entries: list[tuple[str, str | None]] = [(toc["root"], None)]

    def walk(items: list[dict], caption: str | None) -> None:
        for item in items or []:
            if "file" in item:
                entries.append((str(Path(item["file"]).with_suffix("")), caption))
            walk(item.get("sections", []), caption)

    for part in toc.get("parts", []):
        walk(part.get("chapters", []), part.get("caption"))
    walk(toc.get("chapters", []), None)
    return entries


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def _torch_requirement_text() -> list[tuple[str, str]]:
    """(where, text) for every file that could install torch."""
    sources = [
        (name, (REPO / name).read_text(encoding="utf-8"))
        for name in ("pyproject.toml", "environment.yml", "README.md", "Makefile")
        if (REPO / name).is_file()
    ]
    for page in sorted(BOOK.glob("*.md")):
        sources.append((page.name, page.read_text(encoding="utf-8")))
    for path in NOTEBOOKS:
        sources += [(f"{path.name} cell {i}", cell.source) for i, cell in enumerate(_read(path).cells)]
    return sources


# ---------------------------------------------------------------- table of contents


def test_toc_lists_existing_pages_and_every_notebook() -> None:
    entries = [path for path, _ in _toc_entries()]
    missing = [
        path
        for path in entries
        if not any((REPO / f"{path}{suffix}").is_file() for suffix in (".md", ".ipynb"))
    ]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"
    unlisted = [nb.name for nb in NOTEBOOKS if str(nb.relative_to(REPO).with_suffix("")) not in entries]
    assert not unlisted, f"notebooks missing from _toc.yml (the book would skip them): {unlisted}"
    assert len(entries) == len(set(entries)), f"_toc.yml lists a page twice: {entries}"


def test_chapters_sit_in_their_parts() -> None:
    toc = _toc()
    assert toc["format"] == "jb-book" and toc["root"] == "book/intro"
    captions = [part.get("caption") for part in toc.get("parts", [])]
    allowed = [*PARTS, "Appendix"]
    assert set(captions) <= set(allowed), f"part captions must come from {allowed}, got {captions}"
    assert captions == sorted(captions, key=allowed.index), f"parts out of order: {captions}"
    for path, caption in _toc_entries():
        prefix = Path(path).name[:2]
        if Path(path).name[2:3] == "_" and prefix.isdigit():
            expected = next(part for part, prefixes in PARTS.items() if prefix in prefixes)
            assert caption == expected, f"{path} is under part {caption!r}, expected {expected!r}"


# ---------------------------------------------------------------- notebooks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_nbformat4(path: Path) -> None:
    nb = _read(path)
    assert nb.nbformat == 4, f"{path.name}: nbformat {nb.nbformat}, expected 4"
    nbformat.validate(nb)  # raises nbformat.ValidationError with the offending field


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    cells = _read(path).cells
    assert cells, f"{path.name} has no cells"
    dirty = [
        f"cell {i} (execution_count={cell.execution_count}, {len(cell.outputs)} outputs)"
        for i, cell in enumerate(cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.name}: clear the outputs before committing "
        f"(jupyter nbconvert --clear-output --inplace book/{path.name}): {dirty}"
    )


def _colab_setup():
    spec = importlib.util.spec_from_file_location("colab_setup", REPO / "tools" / "colab_setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_colab_setup_cell(path: Path) -> None:
    """Every chapter starts with tools/colab_setup.py's cell, which installs the release
    of this version (``@v<__version__>``) from _config.yml's repository URL, and is
    hidden in the book (issue 18)."""
    import autoencoders

    code = _code_cells(_read(path))
    assert code, f"{path.name} has no code cell"
    first = code[0]
    wanted = _colab_setup().setup_cell()
    assert first.source == wanted, (
        f"{path.name}: the first code cell is not the Colab set-up cell; run "
        "`python tools/colab_setup.py --write`"
    )
    assert f"{_repository_url()}@v{autoencoders.__version__}" in first.source
    tags = first.metadata.get("tags", [])
    assert "remove-cell" in tags, (
        f"{path.name}: tag the Colab set-up cell 'remove-cell' so the book hides it; tags={tags}"
    )


def test_colab_page_and_readme_show_the_setup_cell_as_it_is() -> None:
    page = (BOOK / "colab_and_gpu.md").read_text(encoding="utf-8")
    assert _colab_setup().setup_cell() in page, (
        "book/colab_and_gpu.md must show the set-up cell exactly as the notebooks run it"
    )
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert _repository_url() in readme
    for text in (page, readme):
        for url in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", text):
            assert url.rstrip(".") == _repository_url(), url


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ends_with_exercises(path: Path) -> None:
    headings = []  # (level, title) of every Markdown heading, in order
    for cell in _read(path).cells:
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            match = None if fenced else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
            if match:
                headings.append((len(match.group(1)), match.group(2)))
    exercise = [
        i for i, (_, title) in enumerate(headings)
        if re.match(r"^(\d+(\.\d+)*\.?\s+)?exercises?\b", title, re.I)
    ]
    assert exercise, f"{path.name}: no 'Exercises' heading; every chapter ends with exercises"
    level = headings[exercise[-1]][0]
    later = [
        title
        for lvl, title in headings[exercise[-1] + 1 :]
        if lvl <= level and not AFTER_EXERCISES.match(title)
    ]
    assert not later, f"{path.name}: sections after 'Exercises' ({later}); exercises come last"


# ---------------------------------------------------------------- environment files


def test_environment_yml_matches_pyproject_extras() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    expected = set(pyproject["project"]["optional-dependencies"])

    env = yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))
    deps = env["dependencies"]
    names = [dep for dep in deps if isinstance(dep, str)]
    assert any(re.fullmatch(r"python\s*=?=\s*3\.11(\.\*)?", dep) for dep in names), (
        f"environment.yml must pin python=3.11, got {names}"
    )
    assert "pip" in names, f"environment.yml must install pip, got {names}"
    pip = [line for dep in deps if isinstance(dep, dict) for line in dep.get("pip", [])]
    local = [
        line for line in pip if re.fullmatch(r"""(-e\s+|--editable\s+)?["']?\.(\[[^\]]*\])?["']?""", line)
    ]
    assert len(local) == 1, f"environment.yml must pip install the package once, got {pip}"
    extras = re.search(r"\[([^\]]*)\]", local[0])
    assert extras, f"environment.yml installs the package without extras: {local[0]!r}"
    got = {name.strip() for name in extras.group(1).split(",") if name.strip()}
    assert got == expected, (
        f"environment.yml installs extras {sorted(got)}, pyproject.toml defines {sorted(expected)}"
    )


def test_runtime_dependencies_have_lower_bounds_only() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    deps = pyproject["project"]["dependencies"]
    names = {Requirement(dep).name for dep in deps}
    assert {"torch", "torchvision"} <= names, f"torch and torchvision must be dependencies: {deps}"
    for dep in deps:
        ops = {spec.operator for spec in Requirement(dep).specifier}
        assert ops <= {">=", ">", "!="}, (
            f"{dep!r}: only lower bounds are allowed (Colab ships its own torch and "
            "must never be forced to reinstall it)"
        )


def test_torch_is_never_pinned_exactly() -> None:
    pinned = re.compile(r"\btorch(vision|audio)?\s*(===?|~=)\s*\d")
    offenders = [
        f"{where}: {match.group(0)}"
        for where, text in _torch_requirement_text()
        for match in pinned.finditer(text)
    ]
    assert not offenders, f"torch must not be pinned: {offenders}"


def test_ci_runs_make_test() -> None:
    lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [line for line in lines if not line.lstrip().startswith("#")]
    assert any(re.match(r"\s*(exec\s+)?make\s+test\b", line) for line in commands), (
        f".ci/run must run `make test`: {commands}"
    )


# ---------------------------------------------------------------- README


def test_readme_documents_the_commands() -> None:
    text = README.read_text(encoding="utf-8")
    for command in ("make book", "make test", "AUTOENCODERS_DEVICE=cuda make test"):
        assert command in text, f"README.md must document `{command}`"
    for target in re.findall(r"`make ([\w-]+)`", text):
        makefile = (REPO / "Makefile").read_text(encoding="utf-8")
        assert re.search(rf"^{target}:", makefile, re.M), f"README mentions `make {target}`, Makefile has no such target"


def test_readme_colab_links_match_config() -> None:
    config = _config()
    url = _repository_url()
    owner_repo = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(\.git)?", url)
    assert owner_repo, f"repository.url must be a GitHub URL, got {url}"
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    branch = config["repository"]["branch"]
    prefix = f"{colab}/github/{owner_repo.group(1)}/blob/{branch}/book/"

    links = re.findall(r"https://colab\.research\.google\.com/[^\s)>\]\"'`]+", README.read_text(encoding="utf-8"))
    assert links, "README.md must show how to open a notebook in Colab"
    wrong = [link for link in links if not (link.startswith(prefix) and link.endswith(".ipynb"))]
    assert not wrong, f"Colab links must start with {prefix} and end in .ipynb: {wrong}"


def _quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    heading = re.search(r"^#{1,6}\s+quick[ -]?start\b.*$", text, re.M | re.I)
    assert heading, "README.md needs a 'Quick start' section"
    block = re.search(r"^```python\n(.*?)^```", text[heading.end() :], re.M | re.S)
    assert block, "the Quick start section needs a ```python code block"
    return block.group(1)


def test_readme_quick_start_runs(mnist_root: Path, tmp_path: Path) -> None:
    code = _quick_start()
    assert "autoencoders" in code, "the quick start must use the package"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env["AUTOENCODERS_DATA"] = str(mnist_root)
    # One thread: on a shared 2-core CI machine, two torch threads per process thrash.
    env.setdefault("OMP_NUM_THREADS", "1")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"README quick start failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    assert "elbo" in result.stdout, f"the quick start should print its diagnostics, got {result.stdout!r}"


def test_api_page_documents_every_module() -> None:
    """Every module of the package has its own section on the API page, in the order
    the page's comment asks for, so a new module cannot go undocumented."""
    api = (BOOK / "api.md").read_text()
    documented = re.findall(r"\.\. automodule:: autoencoders\.(\w+)", api)
    modules = sorted(p.stem for p in (REPO / "autoencoders").glob("*.py") if p.stem != "__init__")
    assert sorted(documented) == modules, set(modules) ^ set(documented)
    order = re.search(r"Keep the module order: (.*?)\. A new module", api, re.S).group(1)
    assert [m.strip() for m in order.split(",")] == documented


def _code_sources(path: Path, solutions: bool = True) -> list[str]:
    """The source of every code cell; without the exercise solutions (cells tagged
    ``exercise-solution``) when ``solutions=False``."""
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"
            and (solutions or "exercise-solution" not in c["metadata"].get("tags", []))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapters_import_their_helpers_instead_of_defining_them(path: Path) -> None:
    """Chapters 1-7 define at most two top-level functions or classes: shared helpers
    live in the package (autoencoders.recipes, autoencoders.inference, ...). Chapters
    8-9 teach how to write models, so they may define the models they teach. Exercise
    solutions (cells tagged ``exercise-solution``) may define what the exercise asks
    for."""
    import ast

    if int(path.stem[:2]) >= 8:
        pytest.skip("chapters 8-9 define the models they teach")
    defs = []
    for source in _code_sources(path, solutions=False):
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        tree = ast.parse("\n".join(lines))
        defs += [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert len(defs) <= 2, f"{path.name} defines {len(defs)} top-level helpers: {defs}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_private_package_member_is_used_in_the_book(path: Path) -> None:
    """The book uses the public API only: no ``obj._name`` of a package object.

    ``_encode`` and ``_decode`` are the documented hooks that a subclass of
    ``BaseAutoencoder`` implements (chapters 8-9 teach exactly that), so calling them
    on ``self`` is part of the subclass API."""
    private = re.compile(r"\.(_[a-z]\w*)")
    allowed = {"_encode", "_decode"}
    found = sorted({m for source in _code_sources(path) for m in private.findall(source)} - allowed)
    assert not found, f"{path.name} uses private members {found}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_lines_fit_the_page(path: Path) -> None:
    """Code lines are at most 80 characters, so none is cut off at the book's content
    width (issue 16)."""
    long = [
        line for source in _code_sources(path) for line in source.splitlines() if len(line) > 80
    ]
    assert not long, f"{path.name} has {len(long)} code lines over 80 characters, e.g. {long[0]!r}"


def test_book_footer_records_the_version_it_is_built_from() -> None:
    import yaml

    import autoencoders

    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    footer = config["html"]["extra_footer"]
    assert f"autoencoders v{autoencoders.__version__}." in footer


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercise_solutions_with_code_run(path: Path) -> None:
    """A solution's code is a code cell tagged ``exercise-solution`` (``solution`` in
    chapter 9, whose assignments ``tools/make_assignments.py`` turns into skeletons) and
    ``hide-cell`` or ``hide-input``, so the book folds it, which nbmake runs in fast mode with the rest of the chapter; no solution
    hides Python in a Markdown block that nothing runs."""
    for cell in _read(path).cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown" and re.search(r"(?i)solution", cell.source):
            assert not re.search(r"^\s*(```|~~~)\s*(\{code-cell\}\s*)?(python|ipython3?)\b",
                                 cell.source, re.M), (
                f"{path.name}: a solution holds a ```python block that never runs: "
                f"{cell.source[:80]!r}; make it a code cell tagged 'exercise-solution' and 'hide-cell'")
        if cell.cell_type == "code" and {"solution", "exercise-solution"} & set(tags):
            assert {"hide-cell", "hide-input"} & set(tags), (
                f"{path.name}: solution cell not folded: {tags}")


def test_every_figure_cell_has_a_numbered_caption() -> None:
    """Every code cell that shows a figure carries the myst-nb metadata that makes it a
    numbered figure with a caption (issue 16), and shows exactly one: myst-nb wraps
    each display output of the cell in the figure, so two would share one label."""
    names: list[str] = []
    problems = []
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            figure = cell["metadata"].get("mystnb", {}).get("figure")
            shows = src.count("plt.show()")
            where = f"{path.name} cell {cell.get('id')}"
            if figure is None:
                if shows:
                    problems.append(f"{where}: shows a figure without a caption")
                continue
            if shows > 1:
                problems.append(f"{where}: shows {shows} figures under one caption")
            if len(str(figure.get("caption", "")).split()) < 8:
                problems.append(f"{where}: caption {figure.get('caption')!r} is too short")
            name = str(figure.get("name", ""))
            if not re.fullmatch(rf"fig-{path.name[:2]}-[a-z0-9]+(-[a-z0-9]+)*", name):
                problems.append(f"{where}: name {name!r} is not fig-{path.name[:2]}-<slug>")
            names.append(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"figure names used twice: {duplicates}"
    assert not problems, "\n".join(problems)
    assert len(names) >= 70, f"only {len(names)} captioned figures; expected every one"


def test_every_chapter_uses_the_book_style() -> None:
    """The set-up cell applies autoencoders.figure_style.use_book_style, so default
    figures are 7 inches wide and no default text is under 9 points."""
    missing = [p.name for p in NOTEBOOKS
               if not any("use_book_style()" in s for s in _code_sources(p, solutions=False))]
    assert not missing, f"chapters that do not call use_book_style(): {missing}"


def test_chapters_draw_progress_bars_through_the_package() -> None:
    """tqdm's notebook bar ignores TQDM_DISABLE and would save a widget into the built
    page; autoencoders.progress_bar honours it (issue 16)."""
    direct = [p.name for p in NOTEBOOKS if any(re.search(r"\btqdm\b", s) for s in _code_sources(p))]
    assert not direct, f"chapters that use tqdm directly instead of progress_bar: {direct}"
