"""The Colab set-up cell, run for real in a simulated Colab, offline.

Colab gives a notebook a Python with torch and torchvision preinstalled and the
module ``google.colab`` imported. The test builds the same situation:

* a fresh virtual environment in which the test environment's packages (torch,
  torchvision, Jupyter, ...) are importable through a ``.pth`` path entry, as Colab's
  preinstalled packages are, but ``autoencoders`` is not (the path entry does not run
  the test environment's editable-install hook);
* a stub ``google.colab`` module, imported at start-up by a ``sitecustomize``;
* ``AUTOENCODERS_INSTALL`` pointing at this checkout, so the cell installs it instead
  of the GitHub release.

Chapter 1 then runs in fast mode, set-up cell first, in a kernel of that environment.
Afterwards the package must be installed in the new environment, and torch must be
the preinstalled one: same version, same location, not reinstalled next to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHAPTER = REPO / "book" / "01_bottleneck.ipynb"

RUNNER = textwrap.dedent('''
    import sys
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    NotebookClient(nb, kernel_name="colabsim", timeout=600,
                   resources={"metadata": {"path": sys.argv[2]}}).execute()
    print("executed", len(nb.cells), "cells")
''')


def _probe(python: Path, env: dict[str, str]) -> dict[str, str]:
    code = ("import json, torch, torchvision; print(json.dumps({'torch': torch.__version__, "
            "'torch_file': torch.__file__, 'torchvision': torchvision.__version__}))")
    out = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=env["HOME"])
    return json.loads(out.stdout)


def test_setup_cell_installs_the_package_and_keeps_colabs_torch(tmp_path):
    venv = tmp_path / "colab"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    # Colab's preinstalled packages: the test environment's, as a plain path entry.
    (site / "preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    stub = tmp_path / "stub"
    (stub / "google" / "colab").mkdir(parents=True)  # namespace package 'google'
    (stub / "google" / "colab" / "__init__.py").write_text('"""Stub of Colab."""\n')
    (stub / "sitecustomize.py").write_text("import google.colab  # noqa: F401\n")
    kernels = tmp_path / "jupyter" / "kernels" / "colabsim"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "simulated Colab", "language": "python"}))
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        "HOME": str(home),
        "PYTHONPATH": str(stub),
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "AUTOENCODERS_INSTALL": str(REPO),
        "AUTOENCODERS_FAST": "1",
        "MPLBACKEND": "Agg",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    before = _probe(python, env)
    missing = subprocess.run([str(python), "-c", "import autoencoders"], env=env,
                             capture_output=True, text=True, cwd=home)
    assert missing.returncode != 0, "autoencoders must not be importable before the cell"

    runner = tmp_path / "run.py"
    runner.write_text(RUNNER)
    done = subprocess.run([str(python), str(runner), str(CHAPTER), str(home)], env=env,
                          capture_output=True, text=True, cwd=home, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    where = subprocess.run(
        [str(python), "-c", "import autoencoders, sys; print(autoencoders.__file__); "
         "print(autoencoders.__version__)"],
        env=env, capture_output=True, text=True, check=True, cwd=home).stdout.split()
    assert Path(where[0]).is_relative_to(venv), f"installed outside the new environment: {where}"
    import autoencoders

    assert where[1] == autoencoders.__version__
    shipped = Path(where[0]).parent / "zoo"
    assert sorted(p.name for p in shipped.glob("*.json")), "the model zoo was not installed"
    after = _probe(python, env)
    assert after == before, f"torch changed: {before} -> {after}"
    assert not list(site.glob("torch-*")) and not (site / "torch").exists(), (
        "torch was reinstalled into the new environment"
    )
