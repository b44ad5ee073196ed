"""dSprites-style data with known factors, and image pairs for weak supervision.

Two datasets share one interface (:class:`FactorImages`): images indexed by a grid of
discrete ground-truth factors, which is what disentanglement metrics need.

:class:`ProceduralSprites` (alias ``Shapes2D``)
    **This is not the original dSprites.** The original (Matthey et al. 2017) is a
    stored file of 737,280 images that cannot be downloaded on the offline machines
    that build this book. ``ProceduralSprites`` renders images on the fly from the same
    factor grid: 3 shapes (square, ellipse, heart) x 6 scales in ``[0.5, 1]`` x 40
    orientations x 32 x 32 positions. It differs from the original in the exact pixel
    shapes (our shapes come from implicit functions, sampled once at each pixel
    centre), in their absolute sizes and in the range of positions (chosen here so
    that every rotated shape at scale 1 stays fully in view), and in the orientation
    grid, which leaves out the duplicate angle ``2 pi`` that the original includes.
    Numbers measured on it are therefore not comparable with published dSprites
    numbers.
:func:`load_dsprites`
    The original dSprites file, for readers with internet access, behind the same
    interface.

:func:`sample_pairs` and :class:`WeakPairs` make the image pairs of the
weakly-supervised setting of Locatello et al. (2020): two images that share all but
``k`` factors.
"""

from __future__ import annotations

import abc
import math
import numbers
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from autoencoders.utils import data_root

__all__ = [
    "FactorImages",
    "ProceduralSprites",
    "Shapes2D",
    "DSprites",
    "load_dsprites",
    "sample_pairs",
    "WeakPairs",
    "DSPRITES_FILENAME",
    "DSPRITES_URL",
]

DSPRITES_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_URL = "https://github.com/deepmind/dsprites-dataset/raw/master/" + DSPRITES_FILENAME
# Seconds one network operation of the download may block, so that an offline machine
# fails fast instead of waiting on the operating system's default.
DOWNLOAD_TIMEOUT_S = 10.0

RngLike = np.random.Generator | int | None


def _as_generator(rng: RngLike, name: str = "rng") -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"{name} must be a numpy.random.Generator, an int seed or None, got {rng!r}")


def _as_long(values, name: str) -> torch.Tensor:
    """Integer input (int, sequence, numpy array, tensor) as a CPU int64 tensor."""
    if isinstance(values, torch.Tensor):
        t = values.detach().cpu()
    else:
        arr = np.asarray(values)
        if arr.dtype == object:
            raise TypeError(f"{name} must hold integers, got {values!r}")
        t = torch.as_tensor(arr)
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name} must have an integer dtype, got {t.dtype}")
    return t.to(torch.int64)


def _check_positive_int(value, name: str, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {kind} int, got {value!r}")
    return int(value)


class FactorImages(abc.ABC):
    """Images indexed by a full grid of discrete factors (the shared interface).

    Image number ``i`` has the factor indices :math:`(f_0, \\dots, f_{F-1})` given by
    the mixed-radix expansion of ``i`` with the factor sizes :math:`n_j` as radices,
    the last factor varying fastest (the order of the dSprites file):

    .. math::

        i = \\sum_{j=0}^{F-1} f_j \\prod_{l > j} n_l, \\qquad 0 \\le f_j < n_j .

    Subclasses set ``factor_names``, ``factor_sizes``, ``factor_levels``,
    ``image_shape`` and ``device`` and implement ``_render(factors)``.

    Attributes
    ----------
    factor_names : tuple of str
        Names of the ``F`` factors.
    factor_sizes : tuple of int
        Number of values ``n_j`` of each factor.
    factor_levels : tuple of numpy.ndarray
        The real value of each level of each factor (float64, one array per factor).
    image_shape : tuple of int
        ``(1, H, W)``.
    device : torch.device
        Where :meth:`images` puts the images. Factor and index tensors are always
        CPU int64 tensors.
    """

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    factor_levels: tuple[np.ndarray, ...]
    image_shape: tuple[int, int, int]
    device: torch.device

    @property
    def num_factors(self) -> int:
        """Number of factors ``F``."""
        return len(self.factor_sizes)

    def __len__(self) -> int:
        return math.prod(self.factor_sizes)

    def _radix(self) -> torch.Tensor:
        # strides[j] = prod(sizes[j+1:])
        strides = np.cumprod((1,) + self.factor_sizes[:0:-1])[::-1].copy()
        return torch.from_numpy(strides.astype(np.int64))

    def index_to_factors(self, idx) -> torch.Tensor:
        """Factor indices of image numbers (mixed radix, vectorised).

        Parameters
        ----------
        idx : int or array-like of int, shape [N]
            Image numbers in ``0 .. len(self) - 1``.

        Returns
        -------
        torch.Tensor
            int64 ``[N, F]`` (``[F]`` for a scalar ``idx``) on the CPU.

        Raises
        ------
        IndexError
            If an index is outside ``0 .. len(self) - 1``.
        """
        t = _as_long(idx, "idx")
        if t.dim() > 1:
            raise ValueError(f"idx must be a scalar or 1-D, got shape {list(t.shape)}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= len(self)):
            bad = t[(t < 0) | (t >= len(self))][0].item()
            raise IndexError(f"idx must lie in 0..{len(self) - 1}, got {bad}")
        sizes = torch.tensor(self.factor_sizes, dtype=torch.int64)
        return torch.div(t.unsqueeze(-1), self._radix(), rounding_mode="floor") % sizes

    def factors_to_index(self, factors) -> torch.Tensor:
        """Image numbers of factor indices (inverse of :meth:`index_to_factors`).

        Parameters
        ----------
        factors : array-like of int, shape [N, F] or [F]
            Factor indices, column ``j`` in ``0 .. factor_sizes[j] - 1``.

        Returns
        -------
        torch.Tensor
            int64 ``[N]`` (a 0-d tensor for ``[F]`` input) on the CPU.

        Raises
        ------
        ValueError
            If the last dimension is not ``F`` or a value is out of range for its
            factor.
        """
        f = self._check_factors(factors)
        return (f * self._radix()).sum(-1)

    def _check_factors(self, factors) -> torch.Tensor:
        f = _as_long(factors, "factors")
        if f.dim() not in (1, 2) or f.shape[-1] != self.num_factors:
            raise ValueError(
                f"factors must have shape [N, {self.num_factors}] or [{self.num_factors}] "
                f"(factors {self.factor_names}), got {list(f.shape)}"
            )
        flat = f.reshape(-1, self.num_factors)
        for j, (name, size) in enumerate(zip(self.factor_names, self.factor_sizes)):
            col = flat[:, j]
            if col.numel() and (int(col.min()) < 0 or int(col.max()) >= size):
                bad = col[(col < 0) | (col >= size)][0].item()
                raise ValueError(f"factors[..., {j}] ({name}) must lie in 0..{size - 1}, got {bad}")
        return f

    def sample_factors(self, n: int, rng: RngLike = None) -> torch.Tensor:
        """Factor indices drawn independently and uniformly from each factor's grid.

        Parameters
        ----------
        n : int
            Number of draws ``N`` (may be 0).
        rng : numpy.random.Generator or int, optional
            Source of randomness; an int is a seed. ``None`` draws fresh OS entropy.

        Returns
        -------
        torch.Tensor
            int64 ``[N, F]`` on the CPU.
        """
        n = _check_positive_int(n, "n", allow_zero=True)
        gen = _as_generator(rng)
        draws = gen.integers(0, np.asarray(self.factor_sizes), size=(n, self.num_factors))
        return torch.from_numpy(draws.astype(np.int64))

    def factor_values(self, factors) -> torch.Tensor:
        """Real values of factor indices (e.g. the scale 0.5, or an angle in radians).

        Parameters
        ----------
        factors : array-like of int, shape [N, F] or [F]

        Returns
        -------
        torch.Tensor
            float64 ``[N, F]`` (or ``[F]``) on the CPU.
        """
        f = self._check_factors(factors)
        cols = [torch.from_numpy(levels)[f[..., j]] for j, levels in enumerate(self.factor_levels)]
        return torch.stack(cols, dim=-1)

    def images(self, factors) -> torch.Tensor:
        """Images of factor combinations.

        Parameters
        ----------
        factors : array-like of int, shape [N, F] or [F]

        Returns
        -------
        torch.Tensor
            float32 ``[N, 1, H, W]`` (``[1, H, W]`` for ``[F]`` input) with values in
            ``{0, 1}``, on :attr:`device`.
        """
        f = self._check_factors(factors)
        if f.dim() == 1:
            return self._render(f.unsqueeze(0))[0]
        return self._render(f)

    @abc.abstractmethod
    def _render(self, factors: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 1, H, W]`` (float32, on :attr:`device`) of validated factors ``[N, F]``."""

    def __getitem__(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image [1, H, W], factors [F])`` for an int; ``([N, 1, H, W], [N, F])``
        for a slice, a sequence, an array or a tensor of indices."""
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        factors = self.index_to_factors(idx)
        return self.images(factors), factors

    def __repr__(self) -> str:
        grid = ", ".join(f"{n}={s}" for n, s in zip(self.factor_names, self.factor_sizes))
        return (
            f"{type(self).__name__}(N={len(self):,}, factors=({grid}), "
            f"image_shape={list(self.image_shape)}, device={self.device})"
        )


# --- procedural rendering -------------------------------------------------------------
# Shapes are defined in "shape units" in which the square is [-1, 1]^2. At scale s a
# unit is s * _PIXELS_PER_UNIT pixels, so the square at scale 1 has side 19.2 px, about
# 0.3 of the image width.
_IMAGE_SIZE = 64
_PIXELS_PER_UNIT = 9.6
_ELLIPSE_SEMI_AXES = (1.4, 0.7)  # 2:1, long axis horizontal at orientation 0
# The heart is the region (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 (area 3.662, centroid at
# y = 0.29348, farthest point 1.2932 from the centroid), enlarged by _HEART_SIZE so that
# its area (about 4.04) matches the square's (4), then shifted to put its centroid at
# the shape's position.
_HEART_SIZE = 1.05
_HEART_CENTROID_Y = 0.29348
# Centres range over [margin, 64 - margin] pixels. The farthest point of any shape from
# its centre is the square's corner, sqrt(2) units = 13.58 px at scale 1 (the ellipse
# reaches 1.4 units, the heart 1.2932 * 1.05 = 1.358), so every rotated shape stays at
# least 0.9 px inside the frame and the border pixels are always black.
_MARGIN_PX = 14.5


def _inside_square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # In-place ops on the caller's temporaries: the renderer is memory-bound.
    return torch.maximum(u.abs_(), v.abs_()) <= 1.0


def _inside_ellipse(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u.square_().add_(v.square_()) <= 1.0  # the semi-axes are folded into (u, v)


def _inside_heart(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    u2 = u.square_()
    r = v * v
    v3 = r * v
    r.add_(u2).sub_(1.0)  # x^2 + y^2 - 1
    return (r * r).mul_(r).sub_(u2.mul_(v3)) <= 0.0


# (inside test, per-axis divisor, offset added to v) for square, ellipse, heart.
_SHAPES: tuple[tuple[Callable, tuple[float, float], float], ...] = (
    (_inside_square, (1.0, 1.0), 0.0),
    (_inside_ellipse, _ELLIPSE_SEMI_AXES, 0.0),
    (_inside_heart, (_HEART_SIZE, _HEART_SIZE), _HEART_CENTROID_Y),
)


class ProceduralSprites(FactorImages):
    """Procedural dSprites-like images: a white shape on black, rendered on the fly.

    **Not the original dSprites** (see the module docstring for the differences).

    Factors (the dSprites grid, ``len = 3 * 6 * 40 * 32 * 32 = 737,280``):

    ===========  ====  ======================================================
    name         size  values (:meth:`factor_values`)
    ===========  ====  ======================================================
    shape        3     1 = square, 2 = ellipse, 3 = heart (dSprites' coding)
    scale        6     ``linspace(0.5, 1, 6)``
    orientation  40    ``linspace(0, 2 pi, 40, endpoint=False)`` radians,
                       counter-clockwise on screen (dSprites includes
                       ``2 pi``, a duplicate of 0; we do not)
    posX         32    ``linspace(0, 1, 32)``, left to right
    posY         32    ``linspace(0, 1, 32)``, top to bottom
    ===========  ====  ======================================================

    A pixel with centre :math:`p = (j + 1/2, i + 1/2)` (column ``j``, row ``i``) is
    white when the shape's implicit function is non-positive at the shape coordinates

    .. math::

        \\begin{pmatrix} u \\\\ v \\end{pmatrix}
        = \\frac{1}{s\\,\\rho} R(-\\theta)
          \\begin{pmatrix} p_x - c_x \\\\ c_y - p_y \\end{pmatrix},
        \\qquad c = m + (64 - 2m)\\,(\\mathrm{posX}, \\mathrm{posY}),

    with scale :math:`s`, orientation :math:`\\theta`, :math:`\\rho = 9.6` pixels per
    shape unit and margin :math:`m = 14.5` px. The shapes, in shape units:

    .. math::

        \\text{square: } \\max(|u|, |v|) \\le 1, \\qquad
        \\text{ellipse: } (u / 1.4)^2 + (v / 0.7)^2 \\le 1,

        \\text{heart: } (x^2 + y^2 - 1)^3 - x^2 y^3 \\le 0, \\quad
        x = u / 1.05, \\; y = v / 1.05 + 0.29348 .

    At scale 1 the square's side is 19.2 px (0.3 of the width, area 369 px²), the
    ellipse is 26.9 x 13.4 px (area 284 px²) and the heart's area is 372 px²; areas
    scale with :math:`s^2`. (Centred squares cover 400 pixels: a pixel is white when
    its centre is inside, which rounds the side up to 20 px.) The heart is upright at orientation 0 and its centroid
    sits at the position, like the centres of the other shapes. Every shape at every
    orientation stays fully inside the frame.

    Rendering is a handful of elementwise torch operations on a ``[N, 64, 64]`` grid
    per shape (no loop over pixels or images); it is deterministic per factor
    combination on a given device (it does not depend on the rest of the batch).
    Throughput for a batch of 4,096 mixed shapes on the idle 2-core CI machine (Intel
    Xeon, PyTorch 2.15, CPU): about 22,000 images/s with two threads and 20,000 with
    one (best of three runs). While other jobs shared the cores it fell to 3,000 to
    6,000 images/s. Either way, rendering a training batch of 64 takes a few
    milliseconds, far less than a training step of a 64 x 64 conv VAE.

    Parameters
    ----------
    device : str or torch.device, optional
        Where :meth:`images` renders; default CPU.
    chunk_size : int, optional
        Images per vectorised step. The default is 8 on the CPU: each elementwise op
        then touches 32,768 values, which keeps the temporaries in cache and below
        torch's threshold for multi-threading; on a busy 2-core machine, threaded ops
        were up to ten times slower than single-threaded ones. On CUDA it is 4096.
    """

    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)
    shape_names = ("square", "ellipse", "heart")
    image_shape = (1, _IMAGE_SIZE, _IMAGE_SIZE)

    def __init__(self, device: str | torch.device | None = None, chunk_size: int | None = None):
        self.device = torch.device("cpu" if device is None else device)
        if chunk_size is None:
            chunk_size = 8 if self.device.type == "cpu" else 4096
        self.chunk_size = _check_positive_int(chunk_size, "chunk_size")
        self.factor_levels = (
            np.arange(1.0, 4.0),
            np.linspace(0.5, 1.0, 6),
            np.linspace(0.0, 2.0 * np.pi, 40, endpoint=False),
            np.linspace(0.0, 1.0, 32),
            np.linspace(0.0, 1.0, 32),
        )
        centres = torch.arange(_IMAGE_SIZE, dtype=torch.float32, device=self.device) + 0.5
        self._px = centres.view(1, 1, _IMAGE_SIZE)  # x = column
        self._py = centres.view(1, _IMAGE_SIZE, 1)  # y = row, pointing down

    def _render(self, factors: torch.Tensor) -> torch.Tensor:
        vals = self.factor_values(factors)
        return self.render(factors[:, 0], vals[:, 1], vals[:, 2], vals[:, 3], vals[:, 4])

    def render(self, shape, scale, orientation, pos_x, pos_y) -> torch.Tensor:
        """Render shapes at arbitrary real-valued scale, orientation and position.

        :meth:`images` calls this with the grid values; calling it directly gives
        in-between values, e.g. a shape exactly at the image centre
        (``pos_x = pos_y = 0.5``, which the 32-point grid does not contain) or a smooth
        rotation.

        Parameters
        ----------
        shape : array-like of int, shape [N]
            Shape index: 0 square, 1 ellipse, 2 heart.
        scale : array-like of float, shape [N]
            Scale, in ``(0, 1]`` (1 is the largest grid scale).
        orientation : array-like of float, shape [N]
            Angle in radians, counter-clockwise on screen.
        pos_x, pos_y : array-like of float, shape [N]
            Position in ``[0, 1]`` (left to right, top to bottom).

        Returns
        -------
        torch.Tensor
            float32 ``[N, 1, 64, 64]`` in ``{0, 1}`` on :attr:`device`.

        Raises
        ------
        ValueError
            On mismatched shapes or values out of range.
        """
        shape = _as_long(shape, "shape")
        vals = [
            torch.as_tensor(v).detach().to("cpu", torch.float64)
            for v in (scale, orientation, pos_x, pos_y)
        ]
        names = ("scale", "orientation", "pos_x", "pos_y")
        if shape.dim() != 1 or any(v.shape != shape.shape for v in vals):
            got = ", ".join(
                f"{n}={list(v.shape)}" for n, v in zip(("shape",) + names, [shape, *vals])
            )
            raise ValueError(f"shape, scale, orientation, pos_x, pos_y must all be [N], got {got}")
        scale, theta, pos_x, pos_y = vals
        checks = (
            ("shape", shape, (shape >= 0) & (shape < len(_SHAPES)), "0, 1 or 2"),
            ("scale", scale, (scale > 0) & (scale <= 1), "in (0, 1]"),
            ("orientation", theta, torch.isfinite(theta), "finite"),
            ("pos_x", pos_x, (pos_x >= 0) & (pos_x <= 1), "in [0, 1]"),
            ("pos_y", pos_y, (pos_y >= 0) & (pos_y <= 1), "in [0, 1]"),
        )
        for name, value, ok, expected in checks:
            if not bool(ok.all()):
                raise ValueError(f"{name} must be {expected}, got {value[~ok][0].item()}")

        # Sorting by shape makes each shape's images one contiguous block, so the loop
        # below works on slices; scattering into the output per chunk (index_put) was
        # the bottleneck.
        order = torch.sort(shape, stable=True).indices
        shape, scale, theta = shape[order], scale[order], theta[order]
        span = _IMAGE_SIZE - 2 * _MARGIN_PX
        cx, cy = _MARGIN_PX + span * pos_x[order], _MARGIN_PX + span * pos_y[order]
        # u and v are affine in the pixel centre (p_x, p_y). The N x 6 coefficients are
        # computed in float64 on the CPU, so only the per-pixel work is float32.
        c, s = torch.cos(theta), torch.sin(theta)
        k = 1.0 / (scale * _PIXELS_PER_UNIT)
        # u = k (c dx + s dy_up), v = k (-s dx + c dy_up); dx = p_x - c_x, dy_up = c_y - p_y
        u = torch.stack([k * c, -k * s, k * (-c * cx + s * cy)], dim=-1)
        v = torch.stack([-k * s, -k * c, k * (s * cx + c * cy)], dim=-1)
        # each shape's own axes and offset (shape units -> its implicit function's)
        semi_axes = torch.tensor([axes for _, axes, _ in _SHAPES], dtype=torch.float64)[shape]
        u = u / semi_axes[:, :1]
        v = v / semi_axes[:, 1:]
        v[:, 2] += torch.tensor([off for *_, off in _SHAPES], dtype=torch.float64)[shape]
        coef = torch.stack([u, v], dim=1).to(self.device, torch.float32)[..., None, None]

        out = torch.empty(
            (shape.shape[0], *self.image_shape), dtype=torch.float32, device=self.device
        )
        stops = torch.cumsum(torch.bincount(shape, minlength=len(_SHAPES)), 0).tolist()
        for (inside, _, _), begin, end in zip(_SHAPES, [0] + stops[:-1], stops):
            for lo in range(begin, end, self.chunk_size):
                hi = min(lo + self.chunk_size, end)
                cu, cv = coef[lo:hi, 0], coef[lo:hi, 1]
                # u = (a p_x + c) + b p_y: the two parts are [B, 1, W] and [B, H, 1], so
                # only the final sum costs a full [B, H, W] operation.
                u = (cu[:, 0] * self._px + cu[:, 2]) + cu[:, 1] * self._py
                v = (cv[:, 0] * self._px + cv[:, 2]) + cv[:, 1] * self._py
                out[lo:hi, 0] = inside(u, v)
        if bool((order[1:] < order[:-1]).any()):
            out = out[torch.argsort(order).to(self.device)]
        return out


Shapes2D = ProceduralSprites


# --- the original dSprites file ---------------------------------------------------------
class DSprites(FactorImages):
    """The original dSprites images (Matthey et al. 2017), from its ``.npz`` file.

    Built by :func:`load_dsprites`; the interface is that of :class:`FactorImages`.
    The constant ``color`` latent is dropped, leaving ``shape, scale, orientation,
    posX, posY`` with the sizes found in the file (``(3, 6, 40, 32, 32)`` for the
    real one). Images are kept bit-packed in memory (1 bit per pixel, 377 MB for the
    real file instead of 3 GB) and unpacked when indexed.

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


# --- weak supervision -------------------------------------------------------------------
def _check_k(k, num_factors: int) -> int | str:
    if isinstance(k, str) and k == "random":
        return k
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= num_factors - 1:
        raise ValueError(
            f"k must be an int in 1..{num_factors - 1} (the number of factors that change "
            f"between the two images, with F = {num_factors}) or 'random', got {k!r}"
        )
    return int(k)


def _sample_pair_factors(
    sizes: Sequence[int], n: int, k: int | str, gen: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sizes_arr = np.asarray(sizes, dtype=np.int64)
    f = len(sizes)
    f1 = gen.integers(0, sizes_arr, size=(n, f))
    ks = gen.integers(1, f, size=n) if k == "random" else np.full(n, k)
    # The factors with the k smallest random keys change: k distinct factors, uniformly.
    ranks = np.argsort(np.argsort(gen.random((n, f)), axis=1), axis=1)
    changed = ranks < ks[:, None]
    # old + U{1..size-1} (mod size) is uniform over the size-1 *other* values.
    shift = gen.integers(1, sizes_arr, size=(n, f))
    f2 = np.where(changed, (f1 + shift) % sizes_arr, f1)
    return f1, f2, changed


def sample_pairs(
    dataset: FactorImages, n: int, k: int | str = 1, rng: RngLike = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image pairs that share all but ``k`` factors (Locatello et al. 2020).

    The first image's factors :math:`f^{(1)}` are uniform on the grid. Then a set
    :math:`C` of ``k`` distinct factors is drawn uniformly, and

    .. math::

        f^{(2)}_j = \\begin{cases}
            (f^{(1)}_j + \\delta_j) \\bmod n_j,\\; \\delta_j \\sim U\\{1, \\dots, n_j - 1\\}
                & j \\in C, \\\\
            f^{(1)}_j & j \\notin C,
        \\end{cases}

    so a changed factor always takes a *different* value, uniform among the other
    ``n_j - 1``. (disentanglement_lib resamples it from all ``n_j`` values, so it can
    keep its old value and the pair then differs in fewer than ``k`` factors.) With
    ``k='random'``, ``k ~ U{1, ..., F - 1}`` independently per pair.

    Parameters
    ----------
    dataset : FactorImages
        E.g. :class:`ProceduralSprites` or the result of :func:`load_dsprites`; every
        factor needs at least two values.
    n : int
        Number of pairs ``N``.
    k : int or 'random', default 1
        Number of factors that differ, in ``1 .. F - 1``.
    rng : numpy.random.Generator or int, optional
        Source of randomness (an int is a seed).

    Returns
    -------
    x1, x2 : torch.Tensor
        float32 ``[N, 1, H, W]`` on ``dataset.device``.
    factors1, factors2 : torch.Tensor
        int64 ``[N, F]`` on the CPU.
    changed : torch.Tensor
        bool ``[N, F]``, ``True`` where the factor differs (``factors1 != factors2``).

    Raises
    ------
    ValueError
        If ``k`` is not an int in ``1 .. F - 1`` nor ``'random'``, if ``n`` is not a
        positive int, or if a factor has fewer than two values.
    """
    n = _check_positive_int(n, "n")
    k = _check_k(k, dataset.num_factors)
    if min(dataset.factor_sizes) < 2:
        raise ValueError(
            f"every factor needs at least 2 values to change, got factor_sizes "
            f"{dataset.factor_sizes} for {dataset.factor_names}"
        )
    f1, f2, changed = _sample_pair_factors(dataset.factor_sizes, n, k, _as_generator(rng))
    f1, f2 = torch.from_numpy(f1), torch.from_numpy(f2)
    x = dataset.images(torch.cat([f1, f2]))
    return x[:n], x[n:], f1, f2, torch.from_numpy(changed)


class WeakPairs:
    """An iterable of minibatches of weakly-supervised pairs, for a training loop.

    Each step yields a tuple ``(x1, x2, changed)``: float32 images ``[B, 1, H, W]``
    twice and the bool changed-factor mask ``[B, F]``, all on ``device``. Pairs are
    drawn by :func:`sample_pairs`.

    Two modes:

    * **pool** (``n_pairs`` given): ``n_pairs`` pairs are rendered once, at
      construction, and kept in memory as uint8 (8 KiB per pair at 64 x 64). Every
      epoch visits them all in a new random order (``len = ceil(n_pairs / B)`` batches,
      or ``floor`` with ``drop_last``). Fastest; a fixed data budget, as in the paper.
      The pool's factors are kept in :attr:`factors1`, :attr:`factors2` and
      :attr:`changed`.
    * **stream** (``steps_per_epoch`` given): every batch is fresh pairs rendered on
      the fly; ``len = steps_per_epoch``. No memory cost, never the same pair twice.

    Both are deterministic given ``seed``: a new ``WeakPairs`` with the same arguments
    yields the same sequence of epochs.

    Parameters
    ----------
    dataset : FactorImages
    n_pairs : int, optional
        Pool size (pool mode). Give exactly one of ``n_pairs`` and ``steps_per_epoch``.
    batch_size : int, default 64
    k : int or 'random', default 1
        Number of changed factors, see :func:`sample_pairs`.
    seed : int, default 0
    steps_per_epoch : int, optional
        Batches per epoch (stream mode).
    shuffle : bool, default True
        Pool mode: visit the pool in a new random order each epoch.
    drop_last : bool, default False
        Pool mode: drop a last, smaller batch.
    device : str or torch.device, optional
        Where the yielded tensors live; default ``dataset.device``.

    Examples
    --------
    >>> loader = WeakPairs(ProceduralSprites(), n_pairs=1024, batch_size=64, k=1)
    >>> for batch in loader:
    ...     x1, x2 = batch[0], batch[1]
    """

    def __init__(
        self,
        dataset: FactorImages,
        n_pairs: int | None = None,
        batch_size: int = 64,
        k: int | str = 1,
        seed: int = 0,
        *,
        steps_per_epoch: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        device: str | torch.device | None = None,
    ):
        if (n_pairs is None) == (steps_per_epoch is None):
            raise ValueError(
                "give exactly one of n_pairs (a pre-rendered pool) and steps_per_epoch "
                f"(fresh pairs per batch), got n_pairs={n_pairs!r}, "
                f"steps_per_epoch={steps_per_epoch!r}"
            )
        self.dataset = dataset
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        self.k = _check_k(k, dataset.num_factors)
        self.seed = _check_positive_int(seed, "seed", allow_zero=True)
        for name, value in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {value!r}")
        self.shuffle, self.drop_last = shuffle, drop_last
        self.device = torch.device(dataset.device if device is None else device)
        self._rng = np.random.default_rng(self.seed)
        self.n_pairs = None if n_pairs is None else _check_positive_int(n_pairs, "n_pairs")
        self.steps_per_epoch = (
            None
            if steps_per_epoch is None
            else _check_positive_int(steps_per_epoch, "steps_per_epoch")
        )
        if self.n_pairs is not None:
            if drop_last and self.batch_size > self.n_pairs:
                raise ValueError(
                    f"drop_last=True with batch_size={self.batch_size} > n_pairs="
                    f"{self.n_pairs} gives epochs without batches"
                )
            x1, x2, self.factors1, self.factors2, self.changed = sample_pairs(
                dataset, self.n_pairs, self.k, self._rng
            )
            # Images are binary, so uint8 stores them exactly at a quarter of the memory.
            self._x1 = x1.to(self.device, torch.uint8)
            self._x2 = x2.to(self.device, torch.uint8)
            self._changed = self.changed.to(self.device)
            self._perm_gen = torch.Generator().manual_seed(self.seed)

    def __len__(self) -> int:
        """Batches per epoch."""
        if self.n_pairs is None:
            return self.steps_per_epoch
        if self.drop_last:
            return self.n_pairs // self.batch_size
        return math.ceil(self.n_pairs / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        if self.n_pairs is None:
            for _ in range(self.steps_per_epoch):
                x1, x2, _, _, changed = sample_pairs(
                    self.dataset, self.batch_size, self.k, self._rng
                )
                yield x1.to(self.device), x2.to(self.device), changed.to(self.device)
            return
        if self.shuffle:
            order = torch.randperm(self.n_pairs, generator=self._perm_gen).to(self.device)
        else:
            order = torch.arange(self.n_pairs, device=self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield (
                self._x1.index_select(0, idx).to(torch.float32),
                self._x2.index_select(0, idx).to(torch.float32),
                self._changed.index_select(0, idx),
            )

    def __repr__(self) -> str:
        mode = (
            f"n_pairs={self.n_pairs:,}"
            if self.n_pairs is not None
            else f"steps_per_epoch={self.steps_per_epoch}"
        )
        return (
            f"WeakPairs({mode}, batch_size={self.batch_size}, k={self.k!r}, "
            f"batches={len(self)}, device={self.device})"
        )
