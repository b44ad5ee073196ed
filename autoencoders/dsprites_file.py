"""The original dSprites file (Matthey et al. 2017): download, reading and indexing.

:func:`load_dsprites` finds the file
``<data root>/dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``, downloads it
once from ``DSPRITES_URL`` when it is missing (readers with internet access only;
the machines that build this book are offline and use
:class:`~autoencoders.procedural_sprites.ProceduralSprites` instead), and returns a
:class:`DSprites`: the file's images behind the
:class:`~autoencoders.factor_images.FactorImages` interface, kept bit-packed in memory.

``_read_packed_images`` streams the images out of the compressed file without
decompressing all 3 GB at once; ``_download`` writes the file through a ``.part``
file, so that an interrupted download never leaves a damaged file in place.
"""

from __future__ import annotations

import math
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import torch

from autoencoders.factor_images import FactorImages
from autoencoders.utils import data_root

__all__ = ["DSprites", "load_dsprites", "DSPRITES_FILENAME", "DSPRITES_URL"]

DSPRITES_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_URL = "https://github.com/deepmind/dsprites-dataset/raw/master/" + DSPRITES_FILENAME
# Seconds one network operation of the download may block, so that an offline machine
# fails fast instead of waiting on the operating system's default.
DOWNLOAD_TIMEOUT_S = 10.0


class DSprites(FactorImages):
    """The original dSprites images (Matthey et al. 2017), from its ``.npz`` file.

    Built by :func:`load_dsprites`; the interface is that of
    :class:`~autoencoders.factor_images.FactorImages`. The constant ``color`` latent
    is dropped, leaving ``shape, scale, orientation, posX, posY`` with the sizes found
    in the file (``(3, 6, 40, 32, 32)`` for the real one). Images are kept bit-packed
    in memory (1 bit per pixel, 377 MB for the real file instead of 3 GB) and unpacked
    when indexed.

    Parameters
    ----------
    packed : numpy.ndarray
        uint8 ``[R, H, ceil(W / 8)]``, ``numpy.packbits`` of the images along the width.
    width : int
        ``W``.
    factor_sizes : tuple of int
    factor_levels : tuple of numpy.ndarray
    row_of_index : numpy.ndarray or None
        int64 ``[R]``: the file row of each image number; ``None`` when the file is
        already in mixed-radix order.
    path : pathlib.Path
    device : str or torch.device, optional
    """

    def __init__(
        self,
        packed: np.ndarray,
        width: int,
        factor_sizes: tuple[int, ...],
        factor_levels: tuple[np.ndarray, ...],
        row_of_index: np.ndarray | None,
        path: Path,
        device: str | torch.device | None = None,
    ):
        self.factor_names = ("shape", "scale", "orientation", "posX", "posY")
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.factor_levels = tuple(factor_levels)
        self.image_shape = (1, int(packed.shape[1]), int(width))
        self._packed = packed
        self._row_of_index = row_of_index
        self.path = path
        self.device = torch.device("cpu" if device is None else device)

    def _render(self, factors: torch.Tensor) -> torch.Tensor:
        rows = self.factors_to_index(factors).numpy()
        if self._row_of_index is not None:
            rows = self._row_of_index[rows]
        bits = np.unpackbits(self._packed[rows], axis=-1, count=self.image_shape[2])
        return torch.from_numpy(bits).to(self.device, torch.float32).unsqueeze(1)

    @classmethod
    def from_npz(
        cls, path: str | os.PathLike, device: str | torch.device | None = None
    ) -> DSprites:
        """Read a file in the format of ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``.

        Keys ``imgs`` (uint8 ``[R, H, W]`` in ``{0, 1}``), ``latents_classes`` (int
        ``[R, 6]``) and ``latents_values`` (float ``[R, 6]``), latents ordered
        ``color, shape, scale, orientation, posX, posY``. The factor sizes are read from
        the data (``latents_classes.max(0) + 1``), so reduced grids work too; the file
        must hold every combination exactly once, in any row order.

        Raises
        ------
        ValueError
            If a key is missing or an array has the wrong shape, dtype or content.
        """
        path = Path(path)
        with np.load(path, allow_pickle=False) as npz:
            missing = {"imgs", "latents_classes", "latents_values"} - set(npz.files)
            if missing:
                raise ValueError(f"{path} lacks the dSprites keys {sorted(missing)}")
            classes = np.asarray(npz["latents_classes"])
            values = np.asarray(npz["latents_values"], dtype=np.float64)
        if classes.ndim != 2 or classes.shape[1] != 6 or values.shape != classes.shape:
            raise ValueError(
                f"{path}: latents_classes and latents_values must both be [R, 6] "
                f"(color, shape, scale, orientation, posX, posY), got "
                f"{list(classes.shape)} and {list(values.shape)}"
            )
        if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0:
            raise ValueError(f"{path}: latents_classes must be non-negative integers")
        if classes[:, 0].max() != 0:
            raise ValueError(f"{path}: the color latent must be constant (size 1)")
        classes = classes[:, 1:].astype(np.int64)
        values = values[:, 1:]
        sizes = tuple(int(s) for s in classes.max(0) + 1)
        rows = classes.shape[0]
        strides = np.cumprod((1,) + sizes[:0:-1])[::-1]
        index = classes @ strides
        if rows != math.prod(sizes) or np.bincount(index, minlength=rows).max() != 1:
            raise ValueError(
                f"{path}: expected each of the {math.prod(sizes):,} factor combinations "
                f"of the grid {sizes} exactly once, got {rows:,} rows"
            )
        row_of_index = None
        if not np.array_equal(index, np.arange(rows)):
            row_of_index = np.empty(rows, dtype=np.int64)
            row_of_index[index] = np.arange(rows)
        levels = []
        for j, size in enumerate(sizes):
            lv = np.empty(size, dtype=np.float64)
            lv[classes[:, j]] = values[:, j]
            levels.append(lv)
        packed, width = _read_packed_images(path, rows)
        return cls(packed, width, sizes, tuple(levels), row_of_index, path, device)


def _read_packed_images(path: Path, rows: int, chunk: int = 16384) -> tuple[np.ndarray, int]:
    """Stream ``imgs`` out of the npz in chunks and bit-pack them.

    ``np.load`` would first decompress the whole uint8 array (3 GB for dSprites).
    """
    fmt = np.lib.format
    with zipfile.ZipFile(path) as zf, zf.open("imgs.npy") as f:
        version = fmt.read_magic(f)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if len(shape) != 3 or shape[0] != rows or dtype != np.uint8 or fortran:
            raise ValueError(
                f"{path}: imgs must be a C-ordered uint8 array [{rows}, H, W], got "
                f"{dtype} {list(shape)}{' (Fortran order)' if fortran else ''}"
            )
        _, h, w = shape
        packed = np.empty((rows, h, (w + 7) // 8), dtype=np.uint8)
        for start in range(0, rows, chunk):
            stop = min(start + chunk, rows)
            nbytes = (stop - start) * h * w
            block = np.frombuffer(f.read(nbytes), dtype=np.uint8)
            if block.size != nbytes:
                raise ValueError(f"{path}: imgs is truncated")
            block = block.reshape(stop - start, h, w)
            if block.max(initial=0) > 1:
                raise ValueError(f"{path}: imgs must hold only 0 and 1, got {block.max()}")
            packed[start:stop] = np.packbits(block, axis=-1)
    return packed, int(w)


def load_dsprites(
    root: str | os.PathLike | None = None,
    download: bool = True,
    *,
    device: str | torch.device | None = None,
) -> DSprites:
    """Load the original dSprites dataset (downloading it once if needed).

    The file ``<root>/dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` comes
    from https://github.com/deepmind/dsprites-dataset (26 MB compressed). Loading
    takes a few seconds and 0.4 GB of memory (see :class:`DSprites`).

    Parameters
    ----------
    root : str or os.PathLike, optional
        Data root; default :func:`autoencoders.utils.data_root` (``$AUTOENCODERS_DATA``).
    download : bool, default True
        Download the file when it is missing. Each network operation times out after
        10 s, so an offline machine fails quickly.
    device : str or torch.device, optional
        Where the images are put when indexed; default CPU.

    Returns
    -------
    DSprites

    Raises
    ------
    FileNotFoundError
        If the file is missing and ``download=False``, or the download fails. The
        message names the expected path and the URL to fetch it from.
    """
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {download!r}")
    path = data_root(root) / "dsprites" / DSPRITES_FILENAME
    how = (
        f"Download {DSPRITES_URL} on a machine with internet access and place it at "
        f"{path} (or pass root=/ set AUTOENCODERS_DATA to the folder containing "
        "dsprites/). Offline, use autoencoders.dsprites.ProceduralSprites instead."
    )
    if not path.is_file():
        if not download:
            raise FileNotFoundError(f"dSprites file not found at {path} (download=False). {how}")
        try:
            _download(DSPRITES_URL, path)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise FileNotFoundError(
                f"dSprites file not found at {path} and downloading it failed ({err}). {how}"
            ) from err
    return DSprites.from_npz(path, device=device)


def _download(url: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp,
            open(part, "wb") as out,
        ):
            while block := resp.read(1 << 20):
                out.write(block)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
