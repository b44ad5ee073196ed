r"""Checkpoints that are written atomically and verified when read.

A checkpoint is one ``torch.save`` file holding a dictionary: the model's
``state_dict``, optionally the optimizer's, user ``meta``, the package version, the
shape of one build input (so lazy layers can be rebuilt), the model's architecture as
text, and a SHA-256 digest of all of that. :func:`load_checkpoint` recomputes the
digest and refuses a file whose contents changed, because a flipped byte inside a
weight tensor would otherwise load without complaint and give plausible, wrong
numbers::

    save_checkpoint("vae.pt", model, optimizer, epoch=10)
    meta = load_checkpoint("vae.pt", VAE(...), optimizer)   # {'epoch': 10}

The digest covers every tensor's dtype, shape and bytes and every other stored value,
in the dictionary's order:

.. math::

    d = \operatorname{SHA256}\big(\mathrm{enc}(k_1)\,\mathrm{enc}(v_1)\,
        \mathrm{enc}(k_2)\,\mathrm{enc}(v_2) \cdots\big)
"""

from __future__ import annotations

import glob
import hashlib
import numbers
import os
import re
import socket
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .utils import model_device

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_digest"]

_FORMAT = "autoencoders.checkpoint"
# 1: no digest, no architecture. 2: both.
_VERSION = 2
_META_TYPES = (type(None), bool, int, float, str, torch.Tensor)


# ------------------------------------------------------------------------------- digest
def _feed(h: Any, obj: Any) -> None:
    """Add an unambiguous encoding of ``obj`` to the hash ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        h.update(f"T{str(t.dtype)}{list(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)};".encode())
        for key, value in obj.items():
            _feed(h, key)
            _feed(h, value)
    elif isinstance(obj, list | tuple):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)};".encode())
        for item in obj:
            _feed(h, item)
    elif obj is None or isinstance(obj, bool | int | float | str):
        text = repr(obj)
        h.update(f"{type(obj).__name__}{len(text)}:{text}".encode())
    else:
        raise TypeError(f"cannot digest a {type(obj).__name__} in a checkpoint")


def checkpoint_digest(checkpoint: dict[str, Any]) -> str:
    """SHA-256 hex digest of a checkpoint dictionary, leaving out its ``'sha256'`` entry.

    Parameters
    ----------
    checkpoint : dict
        The dictionary that :func:`save_checkpoint` writes (or any dictionary of
        tensors, numbers, strings, ``None`` and lists/tuples/dicts of those).

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in checkpoint.items() if k != "sha256"})
    return h.hexdigest()


# --------------------------------------------------------------------------------- save
def _check_meta(value: Any, where: str) -> None:
    """Keep ``meta`` loadable with ``torch.load(weights_only=True)``."""
    if isinstance(value, _META_TYPES):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_meta(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise TypeError(f"meta keys must be str or int, got {key!r} in {where}")
            _check_meta(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where} must be None, bool, int, float, str, a tensor, or a list/tuple/dict of "
        f"those (so the checkpoint loads with weights_only=True), got {type(value).__name__}"
    )


def _input_spec(model: nn.Module, input_shape: Sequence[int] | None) -> tuple[list[int] | None, str | None]:
    shape = input_shape if input_shape is not None else getattr(model, "_build_input_shape", None)
    if shape is None:
        return None, None
    if (
        isinstance(shape, torch.Size | tuple | list)
        and len(shape) >= 1
        and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in shape)
    ):
        dtype = getattr(model, "_build_input_dtype", "float32") if input_shape is None else "float32"
        return [int(s) for s in shape], dtype
    raise ValueError(f"input_shape must be a sequence of positive ints like (1, 1, 28, 28), got {shape!r}")


def _temp_prefix(path: Path) -> str:
    """Temporary files are named ``.NAME.PID@HOST.RANDOM.tmp``, so that a later save can
    tell which ones a dead process left behind."""
    return f".{path.name}.{os.getpid()}@{socket.gethostname()}."


def _remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete temporary files of earlier saves to ``path`` whose process, on this host,
    no longer exists (a save killed mid-write). Returns the files removed."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)@(.*)\.[^.]*\.tmp$")
    host, removed = socket.gethostname(), []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = pattern.match(candidate.name)
        if not match or match.group(2) != host or int(match.group(1)) == os.getpid():
            continue
        if not _process_exists(int(match.group(1))):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return True  # cannot tell: keep the file
    return True


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    **meta: Any,
) -> Path:
    """Save model (and optimizer) state atomically, with a checksum.

    The checkpoint is written to a temporary file in the destination folder, flushed
    to disk (``fsync``) and then renamed over ``path`` with :func:`os.replace`, which is
    atomic: an interrupted save leaves any previous checkpoint intact and removes its
    temporary file. A save killed outright cannot clean up after itself, so every save
    also deletes the temporary files of earlier saves to the same ``path`` whose
    process, on this host, no longer runs.

    Under ``torch.distributed`` (see :mod:`autoencoders.distributed`) only rank 0
    writes; on the other ranks the call returns ``path`` without writing, so a
    training script needs no ``if rank == 0`` around it.

    It stores the model's ``state_dict``, the optimizer's (when given), ``meta``, the
    package version, the model's architecture (``str(model)``), the shape and dtype of
    one build input so that :func:`load_checkpoint` can rebuild lazy layers of a fresh
    model, and the SHA-256 digest of all of these (:func:`checkpoint_digest`). The
    input shape is ``input_shape`` when given, else ``model._build_input_shape``,
    which :func:`~autoencoders.train.fit` records from the first training batch. For
    a model built by hand, pass it: ``save_checkpoint(path, model, input_shape=(1, 1,
    28, 28))``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file (conventionally ``*.pt``); its folder must exist.
    model : torch.nn.Module
        The model to save; lazy layers must be built.
    optimizer : torch.optim.Optimizer, optional
        Saved too, so training can resume exactly.
    input_shape : sequence of int, optional
        Shape of one build input including a batch dimension, e.g. ``(1, 1, 28, 28)``
        (for a paired model, the shape of one view).
    **meta
        Anything else to remember (epoch, seed, history values): ``None``, ``bool``,
        ``int``, ``float``, ``str``, tensors, and lists/tuples/dicts of those.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If a ``meta`` value has another type.
    ValueError
        If the model has unbuilt lazy layers (such a file could never be loaded), or
        ``input_shape`` is malformed.
    FileNotFoundError
        If the destination folder does not exist.
    """
    from . import __version__

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder of the checkpoint path does not exist: {str(path.parent)!r}")
    _check_meta(meta, "meta")
    from . import distributed

    if not distributed.is_main_process():
        return path  # rank 0 writes the (identical) state of every rank
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module  # the file must load into a single-process model
    state = model.state_dict()
    pending = [k for k, t in state.items() if isinstance(t, nn.parameter.UninitializedTensorMixin)]
    if pending:
        raise ValueError(
            f"cannot save {type(model).__name__}: {pending} are unbuilt lazy tensors, so the "
            "checkpoint could never be loaded; call model.build(x) or train it with fit first"
        )
    shape, dtype = _input_spec(model, input_shape)
    checkpoint = {
        "format": _FORMAT,
        "format_version": _VERSION,
        "package_version": __version__,
        "model_class": type(model).__name__,
        "architecture": str(model),
        "model": state,
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "input_shape": shape,
        "input_dtype": dtype,
        "meta": meta,
    }
    checkpoint["sha256"] = checkpoint_digest(checkpoint)
    _remove_stale_temp_files(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            torch.save(checkpoint, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        # mkstemp creates the file with mode 0600; give it the mode a plain open()
        # would (the umask can only be read by setting it, then restoring it).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------------- load
def _read(path: Path, map_location: Any) -> dict[str, Any]:
    """Read and verify a checkpoint file; every failure names the file."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {str(path)!r}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated, empty or foreign files fail in many ways
        raise ValueError(f"not a valid checkpoint: {str(path)!r} ({type(err).__name__}: {err})") from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != _FORMAT:
        raise ValueError(
            f"not a valid checkpoint: {str(path)!r} (it was not written by "
            "autoencoders.checkpoint.save_checkpoint)"
        )
    version = checkpoint.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= _VERSION:
        raise ValueError(
            f"{str(path)!r} has checkpoint format {version!r}; this version of the package "
            f"reads formats 1 to {_VERSION} (upgrade the package)"
        )
    if version == 1:
        warnings.warn(
            f"{str(path)!r} is a format-1 checkpoint, which has no checksum: its contents "
            "cannot be verified (save it again to add one)",
            stacklevel=3,
        )
        return checkpoint
    stored = checkpoint.get("sha256")
    try:
        actual = checkpoint_digest(checkpoint)
    except TypeError as err:
        raise ValueError(f"{str(path)!r} is corrupt: {err}") from err
    if stored != actual:
        raise ValueError(
            f"{str(path)!r} is corrupt: the SHA-256 of its contents is {actual[:16]}..., but "
            f"the file records {str(stored)[:16]}...; it was damaged after it was written. "
            "Restore it from a copy or re-run the training that wrote it."
        )
    return checkpoint


def _first_difference(saved: str, current: str) -> str:
    for i, (a, b) in enumerate(zip(saved.splitlines(), current.splitlines(), strict=False)):
        if a != b:
            return f"line {i + 1}: saved {a.strip()!r}, this model {b.strip()!r}"
    return "one has more lines than the other"


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    sample: Any = None,
    map_location: str | torch.device | None = "cpu",
    *,
    check_architecture: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model``.

    The file's SHA-256 digest is checked first. If ``model`` still has unbuilt lazy
    layers (a freshly constructed VAE), it is then built with ``sample`` when given,
    else with zeros of the input shape stored in the checkpoint (a pair of zeros for a
    paired model); building runs in eval mode and changes nothing but the shapes.
    Then the architectures are compared and the state is loaded strictly.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.
    model : torch.nn.Module
        A model of the same architecture (built or not).
    optimizer : torch.optim.Optimizer, optional
        Receives the saved optimizer state. Create it after the model is built (for
        an unbuilt model: call ``model.build`` or load without the optimizer first).
    sample : torch.Tensor or tuple of torch.Tensor, optional
        A build input, used only if the model is unbuilt.
    map_location : str or torch.device, default ``'cpu'``
        Passed to :func:`torch.load`; the tensors are then copied into the model's
        parameters wherever those live.
    check_architecture : bool, default True
        Refuse a model whose ``str(model)`` differs from the saved one. Two models can
        have identical parameter shapes and still compute different functions (a
        Softplus where the saved model had a ReLU), which ``load_state_dict`` cannot
        see. Pass ``False`` to load into a deliberately different model, for example
        after a harmless rename of a module class.

    Returns
    -------
    dict
        The ``meta`` given to :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not such a checkpoint, is corrupt (its digest does not match),
        holds another architecture, the model is unbuilt and neither ``sample`` nor a
        stored input shape is available, or an optimizer is passed but none was saved.
    """
    if not isinstance(check_architecture, bool):
        raise TypeError(f"check_architecture must be True or False, got {check_architecture!r}")
    path = Path(path)
    checkpoint = _read(path, map_location)
    if optimizer is not None and checkpoint["optimizer"] is None:
        raise ValueError(f"an optimizer was passed, but {str(path)!r} holds no optimizer state")
    if getattr(model, "unbuilt_modules", lambda: [])():
        if sample is None:
            shape = checkpoint["input_shape"]
            if shape is None:
                raise ValueError(
                    f"{type(model).__name__} has unbuilt lazy modules and {str(path)!r} stores no "
                    "input shape: pass sample=<one input batch> to load_checkpoint (or save "
                    "with input_shape=...)"
                )
            dev = model_device(model) or torch.device("cpu")
            zeros = torch.zeros(shape, dtype=getattr(torch, checkpoint["input_dtype"]), device=dev)
            sample = (zeros, zeros.clone()) if getattr(model, "paired", False) else zeros
        model.build(sample)
    saved = checkpoint.get("architecture")
    if check_architecture and saved is not None and saved != str(model):
        raise ValueError(
            f"{str(path)!r} holds a different architecture than this {type(model).__name__} "
            f"({_first_difference(saved, str(model))}); build the model the checkpoint was "
            "saved from, or pass check_architecture=False to load the weights anyway"
        )
    model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    return dict(checkpoint["meta"])
