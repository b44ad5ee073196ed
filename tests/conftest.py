"""Test-session environment: offline data root, fast mode, the device check, and the
check of every figure the chapters draw.

The variables are set at import time, before any test runs, so that the Jupyter
kernels that nbmake starts for the notebooks in ``book/`` inherit them.

**Figures.** Every kernel runs ``tests/scripts/figure_check_startup.py`` (through a
temporary ``IPYTHONDIR``). While a notebook runs, it logs each figure that is wider than
7 inches or holds text under 9 points (:func:`autoencoders.figure_style.figure_problems`),
and the notebook's test fails with the list. ``AUTOENCODERS_CHECK_FIGURES=0`` turns the
check off.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIGURE_STARTUP = REPO / "tests" / "scripts" / "figure_check_startup.py"
FIGURE_LOG = "AUTOENCODERS_FIGURE_LOG"


def configure_environment() -> None:
    """Point ``AUTOENCODERS_DATA`` at ``../shared/data`` and default to fast mode."""
    shared = REPO.parent / "shared" / "data"
    if not os.environ.get("AUTOENCODERS_DATA") and shared.is_dir():
        os.environ["AUTOENCODERS_DATA"] = str(shared)
    os.environ.setdefault("AUTOENCODERS_FAST", "1")
    # Headless plotting in tests and in the kernels they start.
    os.environ.setdefault("MPLBACKEND", "Agg")
    # A GPU run must train on the GPU: fit raises if a chapter or a test trains elsewhere.
    if os.environ.get("AUTOENCODERS_DEVICE", "").startswith("cuda"):
        os.environ.setdefault("AUTOENCODERS_REQUIRE_DEVICE", "cuda")


configure_environment()


def install_figure_check() -> Path | None:
    """Give the kernels a start-up file that checks figures; return the log folder."""
    if os.environ.get("AUTOENCODERS_CHECK_FIGURES", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    root = Path(tempfile.mkdtemp(prefix="autoencoders-ipython-"))
    startup = root / "profile_default" / "startup"
    startup.mkdir(parents=True)
    shutil.copy(FIGURE_STARTUP, startup / "50-figure-check.py")
    os.environ["IPYTHONDIR"] = str(root)
    (root / "logs").mkdir()
    return root / "logs"


FIGURE_LOGS = install_figure_check()


def _is_notebook(item: pytest.Item) -> bool:
    return Path(str(item.fspath)).suffix == ".ipynb"


def read_figure_log(path: Path) -> tuple[bool, list[str]]:
    """Whether the check was installed in the kernel, and the problems it logged."""
    if not path.is_file():
        return False, []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    installed = any(r.get("installed") for r in records)
    problems = [f"{r['cell']!r}: {'; '.join(r['problems'])}" for r in records if "problems" in r]
    return installed, problems


class FigureCheck:
    """Fails a notebook's test when its kernel logged figures that break the limits.

    A plugin object, registered by :func:`pytest_configure`, because hooks written in
    this conftest would only see the items under ``tests/``, not the notebooks.
    """

    def __init__(self, logs: Path) -> None:
        self.logs = logs

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if _is_notebook(item):
            log = self.logs / f"{Path(str(item.fspath)).stem}.jsonl"
            log.unlink(missing_ok=True)
            os.environ[FIGURE_LOG] = str(log)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        if not _is_notebook(item) or call.when != "call":
            return
        log = Path(os.environ.pop(FIGURE_LOG, ""))
        if not report.passed:
            return
        installed, problems = read_figure_log(log)
        if not installed:
            report.outcome = "failed"
            report.longrepr = (f"the figure check did not run in the kernel (no {log}); "
                               "is IPYTHONDIR honoured?")
        elif problems:
            report.outcome = "failed"
            report.longrepr = (
                f"{len(problems)} figures break the book's limits (at most 7 in wide, "
                "text of at least 9 pt; autoencoders.figure_style):\n  "
                + "\n  ".join(problems))


def pytest_configure(config: pytest.Config) -> None:
    if FIGURE_LOGS is not None and not config.pluginmanager.has_plugin("figure-check"):
        config.pluginmanager.register(FigureCheck(FIGURE_LOGS), "figure-check")
    wanted = os.environ.get("AUTOENCODERS_DEVICE", "")
    if wanted.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError(
                f"AUTOENCODERS_DEVICE={wanted} but torch.cuda.is_available() is False; "
                "unset it to test on the CPU"
            )


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The offline MNIST root; tests that need real data fail loudly without it."""
    root = os.environ.get("AUTOENCODERS_DATA")
    if not root or not (Path(root) / "MNIST" / "raw").is_dir():
        pytest.fail(f"MNIST data root not found (AUTOENCODERS_DATA={root!r}); see README.md")
    return Path(root)
