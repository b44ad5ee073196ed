"""Test-session environment: offline data root, fast mode, and the device check.

The variables are set at import time, before any test runs, so that the Jupyter
kernels that nbmake starts for the notebooks in ``book/`` inherit them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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


def pytest_configure(config: pytest.Config) -> None:
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
