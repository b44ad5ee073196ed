"""Small runtime helpers shared by the package, the notebooks and the tests.

Three environment variables steer every chapter and test:

``AUTOENCODERS_DATA``
    Root folder for datasets (a torchvision data root).
``AUTOENCODERS_FAST``
    ``1`` selects short runs (continuous integration); anything else is full mode.
``AUTOENCODERS_DEVICE``
    Forces ``cpu`` or ``cuda`` (``cuda:1`` etc. also work).

One more is tqdm's own: ``TQDM_DISABLE=1`` turns every progress bar the package draws off
(the book build sets it, because a static page cannot animate a widget).
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "seed_everything",
    "get_device",
    "model_device",
    "fast_mode",
    "data_root",
    "torch_rng",
    "progress_disabled",
    "progress_bar",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators (CPU and CUDA).

    Parameters
    ----------
    seed : int
        Non-negative seed.

    Returns
    -------
    torch.Generator
        A fresh CPU generator seeded with ``seed``, convenient for
        :class:`autoencoders.data.TensorLoader`.

    Raises
    ------
    ValueError
        If ``seed`` is negative or not an integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy global generator on purpose
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Pick the compute device.

    Order: the ``device`` argument, then ``$AUTOENCODERS_DEVICE``, then CUDA when it is
    available, else CPU. Asking for CUDA explicitly when it is unavailable is an error,
    not a silent fallback, so that ``AUTOENCODERS_DEVICE=cuda make test`` really tests
    the GPU path.

    Parameters
    ----------
    device : str or torch.device, optional
        Explicit choice such as ``"cpu"``, ``"cuda"`` or ``"cuda:1"``.

    Returns
    -------
    torch.device
        With an index for CUDA (``cuda:0``, not ``cuda``), as tensors report it.

    Raises
    ------
    RuntimeError
        If CUDA is requested but ``torch.cuda.is_available()`` is false.
    ValueError
        If the requested device string is not understood.
    """
    choice = device if device is not None else os.environ.get("AUTOENCODERS_DEVICE") or None
    if choice is None:
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(choice)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {choice!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(dev)!r} was requested (argument or AUTOENCODERS_DEVICE) "
            "but torch.cuda.is_available() is False"
        )
    if dev.type == "cuda" and dev.index is None:
        # tensors report "cuda:0": name the device the same way, so that comparisons
        # such as ``x.device == get_device()`` hold
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def model_device(model: torch.nn.Module) -> torch.device | None:
    """The device of a module's first parameter or buffer (``None`` if it has neither).

    An unbuilt lazy parameter reports the device it was created on.
    """
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return None


def fast_mode() -> bool:
    """Return ``True`` when ``$AUTOENCODERS_FAST`` asks for short runs (``1``/``true``)."""
    return os.environ.get("AUTOENCODERS_FAST", "").strip().lower() in _TRUE


def progress_disabled() -> bool:
    """Return ``True`` when ``$TQDM_DISABLE`` turns progress bars off.

    tqdm reads ``TQDM_DISABLE`` for its console bar, but its notebook bar (what
    ``tqdm.auto`` gives in Jupyter) passes ``disable=False`` explicitly and so ignores the
    variable: every bar would still be saved into the executed notebook as a widget. The
    package therefore reads the variable itself and hands the answer to tqdm.

    Raises
    ------
    ValueError
        If the variable holds something other than ``1/true/yes/on`` or
        ``0/false/no/off`` (or is empty).
    """
    raw = os.environ.get("TQDM_DISABLE", "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"TQDM_DISABLE must be one of 1/true/yes/on or 0/false/no/off, got {raw!r}"
    )


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` progress bar that honours ``$TQDM_DISABLE`` in notebooks too.

    Parameters
    ----------
    iterable : iterable, optional
        Wrap it, as ``tqdm(iterable)`` does: ``for run in progress_bar(runs): ...``.
    **kwargs
        Passed to :class:`tqdm.auto.tqdm` (``total``, ``desc``, ``unit``, ...). ``disable``
        is set from :func:`progress_disabled` and may not be given.

    Returns
    -------
    tqdm.auto.tqdm
        A widget bar in Jupyter and Colab, a text bar elsewhere; disabled (draws nothing,
        saves no widget) when ``TQDM_DISABLE`` is set.
    """
    from tqdm.auto import tqdm

    if "disable" in kwargs:
        raise TypeError(
            "progress_bar() sets disable from $TQDM_DISABLE; got disable="
            f"{kwargs['disable']!r}"
        )
    return tqdm(iterable, disable=progress_disabled(), **kwargs)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the dataset root folder.

    Order: the ``root`` argument, then ``$AUTOENCODERS_DATA``, then
    ``~/.cache/autoencoders``.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Explicit folder.

    Returns
    -------
    pathlib.Path
        The folder (it need not exist yet).
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("AUTOENCODERS_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "autoencoders"


def _check_positive(value: Any, name: str, *, integer: bool = False, allow_zero: bool = False) -> Any:
    """Validate a positive (or non-negative) number: ``TypeError`` for a value that is
    not a number of the right kind, ``ValueError`` for one out of range."""
    kind = numbers.Integral if integer else numbers.Real
    bound = ">= 0" if allow_zero else (">= 1" if integer else "> 0")
    what = "an int" if integer else "a finite number"
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {what} {bound}, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {what} {bound}, got {value!r}")
    return int(value) if integer else float(value)


def torch_rng(rng: Any, name: str = "rng") -> torch.Generator | None:
    """Normalise a source of randomness for code that draws with torch.

    The package names every source of randomness ``rng``: ``None`` (torch's global
    generator), an ``int`` seed (a fresh CPU generator seeded with it) or a
    :class:`torch.Generator`. Functions that draw with NumPy accept an ``int`` or a
    :class:`numpy.random.Generator` under the same name. Only the functions whose job
    is to seed the global generators take ``seed`` (:func:`seed_everything`,
    :func:`autoencoders.recipes.train`).

    Raises
    ------
    TypeError
        For anything else, naming ``name``.
    ValueError
        For a negative seed.
    """
    if rng is None or isinstance(rng, torch.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral):
        raise TypeError(f"{name} must be None, an int seed or a torch.Generator, got {type(rng).__name__}")
    if rng < 0:
        raise ValueError(f"{name} must be a non-negative seed, got {rng}")
    return torch.Generator().manual_seed(int(rng))


def _renamed(new: Any, old: Any, new_name: str, old_name: str) -> Any:
    """Accept a keyword under its earlier name, with a DeprecationWarning."""
    if old is None:
        return new
    if new is not None:
        raise TypeError(f"pass {new_name}= only ({old_name}= is its earlier name), not both")
    import warnings

    warnings.warn(f"{old_name}= is now called {new_name}=", DeprecationWarning, stacklevel=3)
    return old
