"""Publishing files: GitHub workflows, licences, citation, changelog and pre-commit hooks.

The workflows cannot run here, so actionlint checks them (syntax, expressions, action
inputs, runner labels, and the shell of every ``run:`` block when shellcheck is
installed), and the tests below check that each workflow does what CONTRIBUTING.md
and the README promise. ``tools/mnist_subset.py``, which the workflows use to restore
the data root, must reproduce the offline copy of MNIST byte for byte.
"""

from __future__ import annotations

import importlib.util
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
_spec = importlib.util.spec_from_file_location("mnist_subset", REPO / "tools" / "mnist_subset.py")
mnist_subset = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mnist_subset)


def _tool(name: str) -> str | None:
    """An executable of the test environment (beside its python), else one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


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
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.fail(
            "actionlint is not installed: `make install` installs it with the dev extra "
            "(pip install -e '.[dev]')"
        )
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
    expected = {"ruff", "nbstripout", "actionlint", "check-yaml", "end-of-file-fixer"}
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


def test_the_checked_files_end_with_one_newline() -> None:
    """What the end-of-file-fixer hook enforces, for the files added with this test."""
    names = ["LICENSE", "LICENSE-CONTENT.md", "CITATION.cff", "CHANGELOG.md",
             "CONTRIBUTING.md", ".pre-commit-config.yaml", ".github/actionlint.yaml",
             *(f".github/workflows/{p.name}" for p in WORKFLOWS.iterdir())]
    bad = [n for n in names if not (REPO / n).read_bytes().endswith(b"\n")
           or (REPO / n).read_bytes().endswith(b"\n\n")]
    assert not bad, bad
