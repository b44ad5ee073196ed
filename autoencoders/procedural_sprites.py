"""Procedural dSprites-like images, rendered on the fly from their factors.

:class:`ProceduralSprites` (alias ``Shapes2D``) draws a white shape on a black
64 x 64 image for every combination of the dSprites factor grid: 3 shapes (square,
ellipse, heart) x 6 scales in ``[0.5, 1]`` x 40 orientations x 32 x 32 positions.

**This is not the original dSprites.** The original (Matthey et al. 2017) is a stored
file of 737,280 images that must be downloaded
(:func:`~autoencoders.dsprites_file.load_dsprites` reads it when it is available).
``ProceduralSprites`` differs from it in the exact pixel shapes (our shapes come from
implicit functions, sampled once at each pixel centre), in their absolute sizes and in
the range of positions (chosen here so that every rotated shape at scale 1 stays fully
in view), and in the orientation grid, which leaves out the duplicate angle ``2 pi``
that the original includes. Numbers measured on it are therefore not comparable with
published dSprites numbers.

The module also holds the shape masks (``_inside_square``, ``_inside_ellipse``,
``_inside_heart``: which shape coordinates lie inside each shape) and the geometry
constants that fix the shapes' sizes and the margin of the positions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from autoencoders.factor_images import FactorImages, _as_long, _check_positive_int

__all__ = ["ProceduralSprites", "Shapes2D"]

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
# Image sides offered: 64 and its 2 x 2 and 4 x 4 block averages.
_SIDES = (64, 32, 16)


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


def _check_render_args(shape, scale, orientation, pos_x, pos_y) -> tuple[torch.Tensor, ...]:
    """Validated arguments of :meth:`ProceduralSprites.render`.

    Returns ``(shape, scale, theta, pos_x, pos_y)``, all ``[N]`` on the CPU: ``shape``
    int64, the others float64. Raises ``ValueError`` as documented by ``render``.
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
    return shape, scale, theta, pos_x, pos_y


def _affine_coefficients(shape, scale, theta, pos_x, pos_y) -> torch.Tensor:
    """Shape coordinates ``(u, v)`` as affine functions of the pixel centre.

    Takes the validated ``[N]`` tensors of :func:`_check_render_args` and returns
    float64 ``[N, 2, 3]``: row 0 holds ``(a, b, c)`` with ``u = a p_x + b p_y + c``,
    row 1 the same for ``v``, in the units of each shape's implicit function.
    """
    span = _IMAGE_SIZE - 2 * _MARGIN_PX
    cx, cy = _MARGIN_PX + span * pos_x, _MARGIN_PX + span * pos_y
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
    return torch.stack([u, v], dim=1)


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
    side : int, default 64
        Image height and width: 64 (the dSprites size), 32 or 16. Smaller images are
        the 64 x 64 rendering averaged over 2 x 2 (or 4 x 4) blocks, so their pixels
        take the values ``0, 1/4, ..., 1`` (or multiples of 1/16) along the shapes'
        edges and keep sub-pixel information about position and scale. A 32 x 32
        model trains about four times faster than a 64 x 64 one (the model zoo,
        :mod:`autoencoders.pretrained`, uses 32).
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

    def __init__(
        self,
        device: str | torch.device | None = None,
        chunk_size: int | None = None,
        *,
        side: int = _IMAGE_SIZE,
    ):
        self.device = torch.device("cpu" if device is None else device)
        if isinstance(side, bool) or not isinstance(side, int) or side not in _SIDES:
            raise ValueError(f"side must be one of {_SIDES}, got {side!r}")
        self.side = side
        self.image_shape = (1, side, side)
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
            float32 ``[N, 1, side, side]`` on :attr:`device`: in ``{0, 1}`` at side
            64, block averages of the 64 x 64 rendering at smaller sides.

        Raises
        ------
        ValueError
            On mismatched shapes or values out of range.
        """
        shape, scale, theta, pos_x, pos_y = _check_render_args(
            shape, scale, orientation, pos_x, pos_y
        )

        # Sorting by shape makes each shape's images one contiguous block, so the loop
        # below works on slices; scattering into the output per chunk (index_put) was
        # the bottleneck.
        order = torch.sort(shape, stable=True).indices
        shape = shape[order]
        coef = _affine_coefficients(shape, scale[order], theta[order], pos_x[order], pos_y[order])
        coef = coef.to(self.device, torch.float32)[..., None, None]

        out = torch.empty(
            (shape.shape[0], 1, _IMAGE_SIZE, _IMAGE_SIZE), dtype=torch.float32, device=self.device
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
        if self.side != _IMAGE_SIZE:
            out = torch.nn.functional.avg_pool2d(out, _IMAGE_SIZE // self.side)
        return out


Shapes2D = ProceduralSprites
