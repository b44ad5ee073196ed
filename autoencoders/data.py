"""MNIST as in-memory tensors, and a fast loader over tensors already in memory.

MNIST is small enough (60,000 x 784 bytes) to live on the compute device as one
tensor. Iterating over such tensors with :class:`TensorLoader` avoids the per-sample
Python work of ``DataLoader(MNIST(transform=ToTensor()))``, which is several times
slower for the small models of this book.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from autoencoders.utils import _renamed, data_root, get_device, torch_rng

__all__ = [
    "MNISTData",
    "load_mnist",
    "TensorLoader",
    # re-exported from autoencoders.dsprites
    "ProceduralSprites",
    "Shapes2D",
    "DSprites",
    "load_dsprites",
    "sample_pairs",
    "WeakPairs",
]

# Seconds a single network operation of an MNIST download attempt may block. An
# offline machine should fail fast instead of waiting on the OS default (minutes).
DOWNLOAD_TIMEOUT_S = 10.0

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True, eq=False)
class MNISTData:
    """MNIST images and labels held in memory.

    Attributes
    ----------
    images : torch.Tensor
        ``[N, 1, 28, 28]`` float32 in ``[0, 1]`` (exactly ``{0, 1}`` when binarized).
    labels : torch.Tensor
        ``[N]`` int64 digit labels in ``0..9``.
    root : pathlib.Path
        The data root the files were read from.
    train : bool
        ``True`` for the training split, ``False`` for the test split.
    binarized : bool
        Whether ``images`` is a binarized sample (see :func:`load_mnist`).

    ``len(data)`` is ``N``, the number of images actually loaded; it is printed by the
    ``repr`` so that a notebook shows how much data it used.
    """

    images: torch.Tensor
    labels: torch.Tensor
    root: Path
    train: bool
    binarized: bool = False

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return (
            f"MNISTData(split={split!r}, N={len(self):,}, "
            f"images=[{', '.join(map(str, self.images.shape))}] {self.images.dtype} "
            f"on {self.images.device}, binarized={self.binarized}, root='{self.root}')"
        )


def _missing_files_message(root: Path, reason: str) -> str:
    raw = root / "MNIST" / "raw"
    files = ", ".join(_MNIST_FILES)
    return (
        f"MNIST not found under the data root {str(root)!r} ({reason}). Provide the "
        f"uncompressed IDX files in torchvision's layout {str(raw)!r} ({files}), then "
        "set the environment variable AUTOENCODERS_DATA to the root folder or pass "
        "root=... to load_mnist."
    )


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # torchvision's downloader uses urllib without a timeout, i.e. the process-wide
    # socket default. Setting it is global (not thread-safe), so restore it promptly.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


# IDX headers of the MNIST files: magic number, then one big-endian uint32 per dimension.
# The magic is 0x0000 (reserved), 0x08 (unsigned byte data), then the number of dimensions.
_IDX_IMAGES_MAGIC = 2051  # uint8, 3 dimensions: count, rows, cols
_IDX_LABELS_MAGIC = 2049  # uint8, 1 dimension: count
_MNIST_SIDE = 28


def _split_files(root: Path, train: bool) -> tuple[Path, Path]:
    """The image and label files of one split in torchvision's layout."""
    raw = root / "MNIST" / "raw"
    prefix = "train" if train else "t10k"
    return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"


def _corrupt(path: Path, what: str) -> ValueError:
    return ValueError(
        f"MNIST file {str(path)!r} is corrupt or truncated: {what}. Delete it and download "
        "it again (load_mnist(download=True)), or copy an intact file there."
    )


def _idx_count(path: Path, magic: int) -> int:
    """Check an MNIST IDX file's header against its size and return its item count.

    Reads only the header and the file size, so it costs nothing next to the load. A
    file with the wrong magic number, other than 28 x 28 images, or a size other than
    the one its header implies raises ``ValueError`` naming the file.
    """
    image = magic == _IDX_IMAGES_MAGIC
    header_size = 16 if image else 8
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(header_size)
    if len(header) < 4:
        raise _corrupt(path, f"it has {size} bytes, fewer than the 4 bytes of a magic number")
    found = int.from_bytes(header[:4], "big")
    if found != magic:
        kind = "images (uint8, 3 dimensions)" if image else "labels (uint8, 1 dimension)"
        raise _corrupt(
            path, f"its magic number is {found}, expected {magic} for an IDX file of MNIST {kind}"
        )
    if len(header) < header_size:
        raise _corrupt(
            path, f"it has {size} bytes, fewer than the {header_size} bytes of its IDX header"
        )
    dims = [int.from_bytes(header[i : i + 4], "big") for i in range(4, header_size, 4)]
    n = dims[0]
    if image and dims[1:] != [_MNIST_SIDE, _MNIST_SIDE]:
        raise _corrupt(
            path,
            f"its header gives {dims[1]} x {dims[2]} images, expected "
            f"{_MNIST_SIDE} x {_MNIST_SIDE}",
        )
    expected = header_size + math.prod(dims)
    if size != expected:
        implied = f"{header_size} + {n} * {_MNIST_SIDE} * {_MNIST_SIDE}" if image else f"8 + {n}"
        raise _corrupt(
            path,
            f"it has {size} bytes, but its header ({n} {'images' if image else 'labels'}) "
            f"implies {implied} = {expected} bytes",
        )
    return n


def _check_split_files(root: Path, train: bool) -> None:
    """Validate the raw IDX files of one split that exist (missing ones are torchvision's).

    Raises ``ValueError`` for a corrupt or truncated file (see :func:`_idx_count`) and
    for an image file whose count differs from its label file's.
    """
    image_path, label_path = _split_files(root, train)
    n_images = _idx_count(image_path, _IDX_IMAGES_MAGIC) if image_path.is_file() else None
    n_labels = _idx_count(label_path, _IDX_LABELS_MAGIC) if label_path.is_file() else None
    if n_images is not None and n_labels is not None and n_images != n_labels:
        raise ValueError(
            f"MNIST files do not match: {str(image_path)!r} holds {n_images} images but "
            f"{str(label_path)!r} holds {n_labels} labels; one of them is corrupt or from "
            "another copy. Replace both with intact files (or load_mnist(download=True))."
        )


def _missing_reason(root: Path, reason: str) -> str:
    """``reason`` plus the MNIST files that are absent (and any ``.gz`` found instead)."""
    raw = root / "MNIST" / "raw"
    missing = [name for name in _MNIST_FILES if not (raw / name).is_file()]
    if not missing:
        return reason
    gz = [name for name in missing if (raw / f"{name}.gz").is_file()]
    reason += f"; missing: {', '.join(missing)}"
    if gz:
        reason += (
            f"; found {', '.join(n + '.gz' for n in gz)}, which torchvision reads only "
            "after extracting them (gunzip them, or pass download=True)"
        )
    return reason


def _open_mnist(root: Path, train: bool, download: bool):
    from torchvision.datasets import MNIST

    # torchvision reports a corrupt file as a bare RuntimeError (or reads a file whose
    # header count was edited), so the split's files are checked before it reads them.
    _check_split_files(root, train)
    try:
        return MNIST(str(root), train=train, download=False)
    except RuntimeError as err:  # torchvision: "Dataset not found. You can use download=True"
        if not download:
            raise FileNotFoundError(
                _missing_files_message(root, _missing_reason(root, "download=False was given"))
            ) from err
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            dataset = MNIST(str(root), train=train, download=True)
    except Exception as err:  # URLError, HTTPError, socket timeouts, checksum errors
        raise FileNotFoundError(
            _missing_files_message(
                root, f"the download failed, probably offline: {type(err).__name__}: {err}"
            )
        ) from err
    _check_split_files(root, train)  # what the download (or extraction) produced
    return dataset


def load_mnist(
    root: str | os.PathLike | None = None,
    train: bool = True,
    binarize: bool = False,
    download: bool = True,
    device: str | torch.device | None = None,
    rng: int | torch.Generator | None = None,
    seed: int | None = None,
) -> MNISTData:
    r"""Load an MNIST split as in-memory tensors through ``torchvision.datasets.MNIST``.

    The uint8 pixel tensor is converted in one operation, :math:`x = u / 255`, without a
    per-sample transform.

    With ``binarize=True`` the images are **dynamically binarized** once, with a seed:
    every pixel becomes an independent Bernoulli draw with its intensity as the
    probability,

    .. math::

        \tilde x_{ij} \sim \operatorname{Bernoulli}(x_{ij}), \qquad
        \mathbb{E}[\tilde x_{ij}] = x_{ij},

    drawn on the CPU from ``rng`` (an int is a seed), so that the same seed gives the
    same copy on every device. Pixels of intensity 0 stay 0 and pixels of
    intensity 1 stay 1. For a fresh binarization every epoch, load the grey-level data
    and call ``torch.bernoulli`` on each batch instead.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Data root in torchvision's layout (``root/MNIST/raw/...``). Resolved by
        :func:`autoencoders.utils.data_root`: this argument, then
        ``$AUTOENCODERS_DATA``, then ``~/.cache/autoencoders``.
    train : bool, default True
        Training split (60,000 images in the official set; the offline copy used by
        the tests has 19,690) or test split (10,000).
    binarize : bool, default False
        Return a dynamically binarized sample (see above) instead of grey levels.
    download : bool, default True
        Try torchvision's download when the files are missing. Each network operation
        of the attempt times out after ``DOWNLOAD_TIMEOUT_S`` seconds.
    device : str or torch.device, optional
        Where to put the tensors (validated by :func:`autoencoders.utils.get_device`).
        ``None`` keeps them on the CPU.
    rng : int or torch.Generator, optional
        Source of the binarization (an int is a seed; default seed 0); ignored when
        ``binarize=False``. ``seed=`` is its earlier name.

    Returns
    -------
    MNISTData
        ``images [N, 1, 28, 28]`` float32, ``labels [N]`` int64, ``root``, ``train``.
        ``len(result)`` is ``N``.

    Raises
    ------
    FileNotFoundError
        If the files are missing and ``download=False``, or the download fails. The
        message names the root searched and how to provide the files; the original
        error is chained.
    ValueError
        On an argument of the wrong value (e.g. a negative ``rng`` seed); on a raw file of
        the split that is corrupt or truncated (wrong magic number, or a size other than
        its header implies: ``16 + N * 28 * 28`` bytes for images, ``8 + N`` for labels;
        the message names the file and both sizes); or on an image file whose count
        differs from its label file's (the message names both files and counts).
    """
    for name, value in (("train", train), ("binarize", binarize), ("download", download)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be a bool, got {value!r}")
    rng = _renamed(rng, seed, "rng", "seed")
    gen = torch_rng(0 if rng is None else rng)
    if gen.device.type != "cpu":
        raise ValueError(f"rng must be a seed or a CPU torch.Generator, got one on {gen.device}")
    target = get_device(device) if device is not None else torch.device("cpu")
    root_path = data_root(root)

    dataset = _open_mnist(root_path, train, download)
    if dataset.data.shape[0] != dataset.targets.shape[0]:  # e.g. torchvision's legacy .pt files
        raise ValueError(
            f"MNIST under {str(root_path)!r} has {dataset.data.shape[0]} images but "
            f"{dataset.targets.shape[0]} labels; the files are corrupt"
        )
    images = dataset.data.unsqueeze(1).to(torch.float32).div_(255.0)
    labels = dataset.targets.to(torch.int64)
    if binarize:
        images = torch.bernoulli(images, generator=gen)
    return MNISTData(
        images=images.to(target),
        labels=labels.to(target),
        root=root_path,
        train=train,
        binarized=binarize,
    )


class TensorLoader:
    r"""Minibatches over tensors already in memory (CPU or GPU), without ``DataLoader``.

    Each epoch (each ``iter(loader)``) draws one permutation with ``torch.randperm``
    and yields, for every batch, a tuple with one ``index_select`` per tensor. With
    ``shuffle=False`` the batches are slices (views) in the original order. There is no
    per-sample Python work, no worker processes and no collation.

    Parameters
    ----------
    *tensors : torch.Tensor
        One or more tensors with the same first dimension ``N`` and on the same device,
        e.g. ``images [N, 1, 28, 28]`` and ``labels [N]``.
    batch_size : int
        Batch size ``B`` (keyword only).
    shuffle : bool, default True
        Draw a new permutation every epoch.
    drop_last : bool, default False
        Drop the last batch when it has fewer than ``B`` rows.
    rng : int or torch.Generator, optional
        Source of the permutations (an int is a seed); makes the epoch order
        reproducible. The permutation is drawn on the generator's device and then
        moved to the tensors' device, so a CPU generator also drives GPU tensors and
        gives the same order on every device. Without one, torch's global RNG of the
        tensors' device is used. (``generator=`` is its earlier name.)

    Notes
    -----
    **Several processes.** Inside a ``torch.distributed`` process group of :math:`W`
    processes (``torchrun``, see :mod:`autoencoders.distributed`), every rank holds the
    full tensors, draws the *same* permutation (give every rank the same ``rng``; with
    none, a seed is broadcast from rank 0 when the loader is created, so all ranks
    must create it) and iterates over its own shard ``perm[rank::W]``, truncated to
    :math:`\lfloor N / W \rfloor` samples so that all ranks take the same number of
    steps. ``len`` and the batches are then per rank; one step trains on :math:`W`
    batches together.

    Yields
    ------
    tuple of torch.Tensor
        One batch per tensor, ``[B, ...]`` (the last one smaller unless ``drop_last``).
        Always a tuple, also for one tensor: ``for (x,) in TensorLoader(images, ...)``.

    Raises
    ------
    ValueError
        On no tensors, tensors with different first dimensions or devices, an empty
        dataset, a non-positive ``batch_size``, or ``drop_last=True`` with
        ``batch_size > N`` (an epoch without batches).
    TypeError
        If an argument has the wrong type.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        rng: int | torch.Generator | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        rng = torch_rng(_renamed(rng, generator, "rng", "generator"))
        if not tensors:
            raise ValueError("TensorLoader needs at least one tensor, got none")
        for i, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"tensors[{i}] must be a torch.Tensor, got {type(t).__name__}")
            if t.dim() == 0:
                raise ValueError(f"tensors[{i}] must have a first (sample) dimension, got a scalar")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) != 1:
            shapes = ", ".join(str(list(t.shape)) for t in tensors)
            raise ValueError(
                f"all tensors must have the same first dimension, got shapes {shapes}"
            )
        devices = {t.device for t in tensors}
        if len(devices) != 1:
            raise ValueError(
                f"all tensors must be on the same device, got {sorted(map(str, devices))}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        for name, value in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {value!r}")
        n = int(sizes[0])
        if n == 0:
            raise ValueError("tensors must have at least one row, got N = 0")
        if drop_last and batch_size > n:
            raise ValueError(
                f"drop_last=True with batch_size={batch_size} > N={n} would give epochs "
                "without any batch; lower batch_size or set drop_last=False"
            )
        from . import distributed

        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        if distributed.is_distributed() and rng is None and shuffle:
            rng = torch_rng(distributed.broadcast_seed())
        if n < self.world_size:
            raise ValueError(f"tensors must have at least one row per process "
                             f"({self.world_size}), got N = {n}")
        self.tensors = tensors
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = rng
        self.total_samples = n
        self.num_samples = n // self.world_size  # per rank
        self.device = tensors[0].device

    def __len__(self) -> int:
        """Number of batches per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def _permutation(self) -> torch.Tensor:
        if self.generator is None:
            return torch.randperm(self.total_samples, device=self.device)
        perm = torch.randperm(
            self.total_samples, generator=self.generator, device=self.generator.device
        )
        return perm.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        stop = len(self) * self.batch_size
        if self.world_size > 1:  # this rank's shard of the (shared) order
            order = self._permutation() if self.shuffle else torch.arange(
                self.total_samples, device=self.device)
            mine = order[self.rank : self.num_samples * self.world_size : self.world_size]
            for start in range(0, stop, self.batch_size):
                idx = mine[start : start + self.batch_size]
                yield tuple(t.index_select(0, idx) for t in self.tensors)
        elif self.shuffle:
            perm = self._permutation()
            for start in range(0, stop, self.batch_size):
                idx = perm[start : start + self.batch_size]
                yield tuple(t.index_select(0, idx) for t in self.tensors)
        else:
            for start in range(0, stop, self.batch_size):
                yield tuple(t[start : start + self.batch_size] for t in self.tensors)

    def __repr__(self) -> str:
        shard = f", rank={self.rank}/{self.world_size}" if self.world_size > 1 else ""
        return (
            f"TensorLoader(N={self.num_samples:,}{shard}, batch_size={self.batch_size}, "
            f"batches={len(self)}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
            f"device={self.device})"
        )


# Procedural dSprites-like data and weak-supervision pairs live in autoencoders.dsprites;
# they are re-exported here so that every dataset is reachable from one module.
from .dsprites import (  # noqa: E402
    DSprites,
    ProceduralSprites,
    Shapes2D,
    WeakPairs,
    load_dsprites,
    sample_pairs,
)
