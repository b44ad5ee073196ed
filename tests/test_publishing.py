"""Publishing files: GitHub workflows, licences, citation, changelog, pre-commit hooks,
README badges and issue templates.

The workflows cannot run here, so actionlint checks them (syntax, expressions, action
inputs, runner labels, and the shell of every ``run:`` block when shellcheck is
installed), and the tests below check that each workflow does what CONTRIBUTING.md
and the README promise. ``tools/mnist_subset.py``, which the workflows use to restore
the data root, must reproduce the offline copy of MNIST byte for byte. cffconvert
validates CITATION.cff, and ``pre-commit run --all-files`` runs on a clone of the
repository with the working tree's changes.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import autoencoders

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
ISSUE_TEMPLATES = REPO / ".github" / "ISSUE_TEMPLATE"
_spec = importlib.util.spec_from_file_location("mnist_subset", REPO / "tools" / "mnist_subset.py")
mnist_subset = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mnist_subset)


def _tool(name: str) -> str | None:
    """An executable of the test environment (beside its python), else one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def _required_tool(name: str) -> str:
    """:func:`_tool`, failing (not skipping) when the dev extra did not install it."""
    path = _tool(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: `make install` installs it with the dev extra "
            "(pip install -e '.[dev]')"
        )
    return path


def _workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as the boolean True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _runs(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for step in _steps(workflow))


def _uses(workflow: dict, action: str) -> list[dict]:
    return [step for step in _steps(workflow) if step.get("uses", "").split("@")[0] == action]


# ---------------------------------------------------------------- workflows


def test_workflows_pass_actionlint() -> None:
    actionlint = _required_tool("actionlint")
    files = sorted(str(p.relative_to(REPO)) for p in WORKFLOWS.glob("*.y*ml"))
    assert files, "no workflow in .github/workflows"
    result = subprocess.run(
        [actionlint, "-no-color", *files], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, f"actionlint (exit {result.returncode}):\n{output}"


def test_there_are_the_four_workflows() -> None:
    names = sorted(p.name for p in WORKFLOWS.iterdir())
    assert names == ["book.yml", "colab.yml", "gpu.yml", "test.yml"], names


def test_test_workflow_runs_make_test_on_pushes_and_pull_requests() -> None:
    wf = _workflow("test.yml")
    assert {"push", "pull_request"} <= set(wf["on"]), wf["on"]
    assert re.search(r"^make test\b", _runs(wf), re.M), "test.yml must run `make test`"
    (setup,) = _uses(wf, "actions/setup-python")
    assert setup["with"]["cache"] == "pip" and setup["with"]["python-version"] == "3.11"
    # The tests need the offline copy of MNIST; the workflow restores or writes it.
    assert "tools/mnist_subset.py" in _runs(wf) and "AUTOENCODERS_DATA" in _runs(wf)


def test_book_workflow_builds_with_its_cache_and_deploys_to_pages() -> None:
    wf = _workflow("book.yml")
    push = wf["on"]["push"]
    assert push["branches"] == ["main"] and "v*" in push["tags"], push
    assert re.search(r"^make book\b", _runs(wf), re.M), "book.yml must run `make book`"
    cached = " ".join(step["with"]["path"] for step in _uses(wf, "actions/cache"))
    for path in ("_build/.jupyter_cache", "_build/.jupyter_cache.stamp"):
        assert path in cached.split(), f"book.yml must cache {path}"
    (upload,) = _uses(wf, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_build/html"
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]


def test_colab_workflow_runs_the_chapters_in_the_colab_image_weekly() -> None:
    wf = _workflow("colab.yml")
    assert wf["on"]["schedule"][0]["cron"] and "workflow_dispatch" in wf["on"], wf["on"]
    text = (WORKFLOWS / "colab.yml").read_text(encoding="utf-8")
    assert "us-docker.pkg.dev/colab-images/public/runtime" in text
    for needed in ("AUTOENCODERS_FAST=1", "AUTOENCODERS_INSTALL=", "google/colab", "book/"):
        assert needed in text, f"colab.yml must contain {needed!r}"
    assert "--nbmake" in text


def test_gpu_workflow_runs_make_test_on_cuda_on_a_gpu_runner() -> None:
    wf = _workflow("gpu.yml")
    assert "workflow_dispatch" in wf["on"] and wf["on"]["push"]["branches"] == ["main"]
    (job,) = wf["jobs"].values()
    assert job["runs-on"] == ["self-hosted", "gpu"]
    (test,) = [s for s in job["steps"] if re.search(r"^make test\b", s.get("run", ""), re.M)]
    assert test["env"]["AUTOENCODERS_DEVICE"] == "cuda"
    config = yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text(encoding="utf-8"))
    assert "gpu" in config["self-hosted-runner"]["labels"]


# ---------------------------------------------------------------- data for CI


def test_mnist_subset_reproduces_the_offline_copy(mnist_root: Path, tmp_path: Path) -> None:
    written = mnist_subset.write_subset(mnist_root, tmp_path)  # checks the MD5 sums
    for path in written:
        assert path.read_bytes() == (mnist_root / "MNIST" / "raw" / path.name).read_bytes()


def test_mnist_subset_cuts_records_and_rewrites_the_count(mnist_root: Path, tmp_path: Path) -> None:
    raw = mnist_root / "MNIST" / "raw"
    n = mnist_subset.cut_idx(raw / "train-images-idx3-ubyte", tmp_path / "images", 5)
    data = (tmp_path / "images").read_bytes()
    assert n == 5 and int.from_bytes(data[4:8], "big") == 5 and len(data) == 16 + 5 * 784
    assert data[16:] == (raw / "train-images-idx3-ubyte").read_bytes()[16 : 16 + 5 * 784]
    with pytest.raises(ValueError, match="holds 10000 records"):
        mnist_subset.cut_idx(raw / "t10k-labels-idx1-ubyte", tmp_path / "labels", 10_001)


# ---------------------------------------------------------------- metadata


def _changelog_date(version: str) -> str:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    match = re.search(rf"^## \[{re.escape(version)}\] - (\d{{4}}-\d{{2}}-\d{{2}})$", text, re.M)
    assert match, f"CHANGELOG.md has no '## [{version}] - YYYY-MM-DD' entry"
    return match.group(1)


def test_changelog_has_an_entry_for_the_current_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    _changelog_date(autoencoders.__version__)
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert headings[0] == "Unreleased", f"the [Unreleased] section comes first: {headings}"


def test_citation_cff_is_complete_and_carries_the_version() -> None:
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    required = {"cff-version", "message", "title", "authors", "version", "date-released"}
    assert required <= set(cff), f"CITATION.cff lacks {sorted(required - set(cff))}"
    assert cff["cff-version"] == "1.2.0"
    assert cff["authors"] and all("name" in a or "family-names" in a for a in cff["authors"])
    assert str(cff["version"]) == autoencoders.__version__, (
        f"CITATION.cff version {cff['version']} != autoencoders.__version__ "
        f"{autoencoders.__version__}"
    )
    assert str(cff["date-released"]) == _changelog_date(autoencoders.__version__)
    assert cff["license"] == "MIT"
    assert cff["repository-code"] == "https://github.com/autoencoders-book/autoencoders"


def _cffconvert() -> str:
    return _required_tool("cffconvert")


def _validate_cff(path: Path) -> subprocess.CompletedProcess[str]:
    # cffconvert validates against the schema it ships (cffconvert/schemas/1.2.0);
    # it uses the network only for --url, never for -i.
    return subprocess.run(
        [_cffconvert(), "--validate", "-i", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def _validation_error(result: subprocess.CompletedProcess[str]) -> str:
    """The message of a failed validation, without the schema it prints."""
    output = (result.stdout + result.stderr).strip()
    errors = [line for line in output.splitlines() if "Error" in line]
    return "\n".join(errors) or output[-2000:]


def test_citation_cff_passes_cffconvert() -> None:
    result = _validate_cff(REPO / "CITATION.cff")
    assert result.returncode == 0, (
        f"cffconvert --validate -i CITATION.cff failed (exit {result.returncode}):\n"
        + _validation_error(result)
    )
    assert "valid according to schema version 1.2.0" in result.stdout, result.stdout


def test_cffconvert_rejects_an_invalid_citation_file(tmp_path: Path) -> None:
    """The check above can fail: a date in the wrong format does not validate."""
    text = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    bad = re.sub(r"^date-released: .*$", 'date-released: "03.12.2026"', text, flags=re.M)
    assert bad != text, "CITATION.cff has no date-released line"
    (tmp_path / "CITATION.cff").write_text(bad, encoding="utf-8")
    result = _validate_cff(tmp_path / "CITATION.cff")
    assert result.returncode != 0 and "03.12.2026" in _validation_error(result), (
        _validation_error(result)
    )


def test_licences_are_stated() -> None:
    tomllib = pytest.importorskip("tomllib")
    mit = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert mit.startswith("MIT License") and "The autoencoders authors" in mit
    content = (REPO / "LICENSE-CONTENT.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in content and "creativecommons.org/licenses/by/4.0" in content
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Licen[cs]e\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert section, "README.md needs a 'Licence' section"
    assert "LICENSE" in section.group(1) and "LICENSE-CONTENT.md" in section.group(1)
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT" and "LICENSE" in project["license-files"]


def test_pre_commit_config_names_its_hooks_and_their_tools_are_installed() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    expected = {"ruff", "nbstripout", "actionlint", "cffconvert", "check-yaml", "end-of-file-fixer"}
    assert expected <= set(hooks), f"missing hooks: {sorted(expected - set(hooks))}"
    # Local hooks with the tools of the dev extra: nothing is downloaded.
    assert all(repo["repo"] == "local" for repo in config["repos"])
    missing = []
    for hook in hooks.values():
        assert hook["language"] == "system", hook
        executable = hook["entry"].split()[0]
        if _tool(executable) is None:
            missing.append(executable)
    assert not missing, f"hook tools not installed (make install): {missing}"


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"git {' '.join(args)} in {cwd} failed:\n{result.stderr}"
    return result


def _paths(output: str) -> list[str]:
    return [p for p in output.split("\0") if p]


def test_pre_commit_passes_on_the_repository(tmp_path: Path) -> None:
    """``pre-commit run --all-files`` passes, run where it cannot change the working tree.

    The repository is cloned at HEAD into ``tmp_path``; the working tree's changes
    (modified, deleted, and new files that git does not ignore) are carried over and
    staged, so the hooks see what ``git add -A && git commit`` would commit. Hooks
    that rewrite files (nbstripout, end-of-file-fixer) rewrite the clone only, and
    the failure message lists the files they changed.
    """
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip(f"{REPO} is not a git checkout (or git is missing): nothing to run pre-commit on")
    pre_commit = _required_tool("pre-commit")
    clone = tmp_path / "repo"
    _git("clone", "--quiet", "--no-checkout", str(REPO), str(clone), cwd=tmp_path)
    head = _git("rev-parse", "HEAD", cwd=REPO).stdout.strip()
    _git("checkout", "--quiet", head, cwd=clone)
    changed = _git("ls-files", "-z", "--modified", "--others", "--exclude-standard", cwd=REPO)
    deleted = set(_paths(_git("ls-files", "-z", "--deleted", cwd=REPO).stdout))
    for name in _paths(changed.stdout):
        if name in deleted:
            continue
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target, follow_symlinks=False)
    for name in deleted:
        (clone / name).unlink(missing_ok=True)
    _git("add", "-A", cwd=clone)

    # The hooks run the dev extra's tools (language: system), found on PATH.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")  # not ~/.cache/pre-commit
    result = subprocess.run(
        [pre_commit, "run", "--all-files", "--color", "never"],
        cwd=clone, capture_output=True, text=True, timeout=300, env=env,
    )
    rewritten = _git("diff", "--name-only", cwd=clone).stdout.split()
    assert result.returncode == 0, (
        f"pre-commit run --all-files failed (exit {result.returncode}); files the hooks "
        f"rewrote: {rewritten or 'none'}\n{(result.stdout + result.stderr)[-4000:]}"
    )
    assert not rewritten, f"the hooks passed but rewrote {rewritten}"


def test_the_checked_files_end_with_one_newline() -> None:
    """What the end-of-file-fixer hook enforces, for the files added with this test."""
    names = ["LICENSE", "LICENSE-CONTENT.md", "CITATION.cff", "CHANGELOG.md",
             "CONTRIBUTING.md", ".pre-commit-config.yaml", ".github/actionlint.yaml",
             *(f".github/workflows/{p.name}" for p in WORKFLOWS.iterdir()),
             *(f".github/ISSUE_TEMPLATE/{p.name}" for p in ISSUE_TEMPLATES.iterdir())]
    bad = [n for n in names if not (REPO / n).read_bytes().endswith(b"\n")
           or (REPO / n).read_bytes().endswith(b"\n\n")]
    assert not bad, bad


# ---------------------------------------------------------------- README badges


def _config() -> dict:
    return yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))


def _badges() -> dict[str, tuple[str, str]]:
    """The README's badges before its first section: alt text -> (image, link)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    head = readme.split("\n## ", 1)[0]
    found = re.findall(r"\[!\[([^\]]+)\]\(([^)\s]+)\)\]\(([^)\s]+)\)", head)
    return {alt: (image, link) for alt, image, link in found}


def test_readme_has_badges_for_tests_book_licence_and_colab() -> None:
    config = _config()
    url = config["repository"]["url"].rstrip("/")
    branch = config["repository"]["branch"]
    owner, name = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", url).groups()
    badges = _badges()
    by_image = {image: (alt, link) for alt, (image, link) in badges.items()}

    def badge(pattern: str, what: str) -> tuple[str, str]:
        hits = [(image, link) for image, (_, link) in by_image.items() if re.search(pattern, image)]
        assert len(hits) == 1, (
            f"README.md needs one {what} badge above its first section (image matching "
            f"{pattern!r}); badges found: {badges}"
        )
        return hits[0]

    # Workflow status badges, built from the repository URL of _config.yml. The tests
    # badge opens the workflow's runs, the book badge the book on GitHub Pages.
    opens = {"test.yml": f"{url}/actions/workflows/test.yml",
             "book.yml": f"https://{owner}.github.io/{name}/"}
    for workflow, what in (("test.yml", "tests"), ("book.yml", "book")):
        assert (WORKFLOWS / workflow).is_file(), f"no workflow {workflow} for the {what} badge"
        image, link = badge(rf"/actions/workflows/{re.escape(workflow)}/badge\.svg", what)
        assert image == f"{url}/actions/workflows/{workflow}/badge.svg?branch={branch}", image
        assert link == opens[workflow], f"the {what} badge must open {opens[workflow]}, not {link}"

    image, link = badge(r"^https://img\.shields\.io/github/license/", "licence")
    assert image == f"https://img.shields.io/github/license/{owner}/{name}" and link == "LICENSE"

    image, link = badge(r"^https://img\.shields\.io/badge/.*Colab", "Colab")
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    assert link == f"{colab}/github/{owner}/{name}/blob/{branch}/book/01_bottleneck.ipynb", link
    assert (REPO / "book" / "01_bottleneck.ipynb").is_file()


# ---------------------------------------------------------------- issue templates

# The keys of GitHub issue forms (docs.github.com: "Syntax for issue forms").
FORM_TOP_KEYS = {"name", "description", "body", "title", "labels", "assignees", "projects", "type"}
FORM_ELEMENTS = {"markdown", "textarea", "input", "dropdown", "checkboxes"}


def _form(name: str) -> dict:
    path = ISSUE_TEMPLATES / name
    assert path.is_file(), f"missing issue template {path.relative_to(REPO)}"
    form = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(form, dict), f"{name}: expected a YAML mapping, got {type(form).__name__}"
    return form


def form_problems(form: dict) -> list[str]:
    """What makes ``form`` an invalid GitHub issue form (empty if nothing)."""
    problems = []
    for key in ("name", "description"):
        if not isinstance(form.get(key), str) or not form[key].strip():
            problems.append(f"{key!r} must be a non-empty string")
    if unknown := set(form) - FORM_TOP_KEYS:
        problems.append(f"unknown top-level keys {sorted(unknown)}")
    body = form.get("body")
    if not isinstance(body, list) or not body:
        return [*problems, "'body' must be a non-empty list"]
    ids = []
    for i, element in enumerate(body):
        kind, attributes = element.get("type"), element.get("attributes") or {}
        where = f"body[{i}] ({kind})"
        if kind not in FORM_ELEMENTS:
            problems.append(f"{where}: type must be one of {sorted(FORM_ELEMENTS)}")
            continue
        if "id" in element:
            ids.append(element["id"])
            if not re.fullmatch(r"[A-Za-z0-9_-]+", str(element["id"])):
                problems.append(f"{where}: id {element['id']!r} may hold only A-Z, a-z, 0-9, - and _")
        if kind == "markdown":
            if not attributes.get("value"):
                problems.append(f"{where}: needs attributes.value")
            if "validations" in element:
                problems.append(f"{where}: markdown takes no validations")
            continue
        if not attributes.get("label"):
            problems.append(f"{where}: needs attributes.label")
        if kind in ("dropdown", "checkboxes"):
            options = attributes.get("options")
            if not isinstance(options, list) or not options:
                problems.append(f"{where}: needs a non-empty attributes.options list")
            elif kind == "dropdown" and (
                not all(isinstance(o, str) for o in options) or len(set(options)) != len(options)
            ):
                problems.append(f"{where}: dropdown options must be distinct strings")
            elif kind == "checkboxes" and not all(isinstance(o, dict) and o.get("label") for o in options):
                problems.append(f"{where}: every checkbox option needs a label")
    if len(ids) != len(set(ids)):
        problems.append(f"ids must be unique, got {ids}")
    if not any((e.get("validations") or {}).get("required") for e in body):
        problems.append("no field is required")
    return problems


@pytest.mark.parametrize("name", ["bug_report.yml", "chapter_erratum.yml"])
def test_issue_templates_are_valid_issue_forms(name: str) -> None:
    problems = form_problems(_form(name))
    assert not problems, f".github/ISSUE_TEMPLATE/{name}:\n" + "\n".join(problems)


def test_form_problems_are_found() -> None:
    bad = {"name": "x", "body": [{"type": "dropdown", "id": "a b", "attributes": {"label": "y"}},
                                 {"type": "slider", "attributes": {}}]}
    problems = " | ".join(form_problems(bad))
    for expected in ("'description'", "id 'a b'", "options", "type must be", "no field is required"):
        assert expected in problems, problems


def test_erratum_form_lists_every_page_of_the_book() -> None:
    """The page dropdown names each page of _toc.yml, as ``... (book/<file>)``, in order."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    stems = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    pages = []
    for stem in stems:
        (path,) = [p for p in (REPO / f"{stem}.ipynb", REPO / f"{stem}.md") if p.is_file()]
        pages.append(path.relative_to(REPO).as_posix())
    (page,) = [e for e in _form("chapter_erratum.yml")["body"] if e.get("id") == "page"]
    listed = [re.search(r"\(([^()]+)\)$", option) for option in page["attributes"]["options"]]
    assert all(listed), f"every option must end with '(book/<file>)': {page['attributes']['options']}"
    assert [m.group(1) for m in listed] == pages, (
        "the erratum form's pages differ from _toc.yml; update .github/ISSUE_TEMPLATE/chapter_erratum.yml"
    )
