r"""Figures for autoencoders: image grids, reconstructions, samples, latent spaces.

Every function returns a :class:`matplotlib.figure.Figure` and draws into an ``ax``
(or ``fig``) you pass, so figures compose. Nothing here calls ``plt.show()``, so the
module is safe on headless machines. Figures are created through :mod:`matplotlib.pyplot`;
in a notebook, write ``fig = plot_samples(...)`` (or end the line with ``;``) so the
inline backend does not display the figure twice.

**What the images show.** Decoders output distribution *parameters* (see
:mod:`autoencoders.likelihoods`), so every function that decodes shows
:func:`~autoencoders.likelihoods.distribution_mean` of the output under the model's
own likelihood (``model.likelihood``; a keyword ``likelihood=`` overrides it):

.. math::

    \text{bernoulli:}\quad & \sigma(\hat x),\\
    \text{continuous_bernoulli:}\quad & \frac{\sigma(\hat x)}{\tanh(\hat x / 2)} - \frac{1}{\hat x},\\
    \text{gaussian, laplace:}\quad & \hat x.

``likelihood=None`` shows the raw decoder output (grey levels span its min to max).
A callable likelihood has no known mean: pass ``transform=f`` (for example
``torch.sigmoid``) to say how to turn ``x_hat`` into an image.

Image data are expected in :math:`[0, 1]`. Values outside saturate to black or white
*for display only*: the array stored in the figure is the unclipped data.

The model is run through :mod:`autoencoders.inference` (:func:`~autoencoders.inference.encode_mean`,
:func:`~autoencoders.inference.reconstruct`, :func:`~autoencoders.inference.decode`,
:func:`~autoencoders.inference.sample_prior`): in eval mode without gradients, on the
model's own device, with every submodule's train/eval flag restored afterwards. The
interactive :func:`~autoencoders.explorer.latent_explorer` lives in
:mod:`autoencoders.explorer` and is also importable from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn
from torchvision.utils import make_grid

from .figure_style import MAX_FIGURE_WIDTH, MIN_FONT_SIZE
from .inference import (
    _check_int,
    _latent_dim,
    decode,
    encode_mean,
    interpolate,
    reconstruct,
    sample_prior,
)
from .likelihoods import LikelihoodLike, get_likelihood
from .utils import _renamed

__all__ = [
    "MAX_FIGURE_WIDTH",
    "animate_latent_traversal",
    "animation_html",
    "show_images",
    "plot_reconstructions",
    "plot_samples",
    "plot_interpolation",
    "interpolate_latents",
    "plot_latent_traversal",
    "plot_latent_2d",
    "plot_decoded_grid",
]

# The plotting functions' default: show images under the model's own likelihood.
FROM_MODEL = "model"

Transform = Callable[[torch.Tensor], torch.Tensor]
_MAX_DISCRETE_LABELS = 20


# ---------------------------------------------------------------------- model helpers
def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    pending = model.unbuilt_modules() if hasattr(model, "unbuilt_modules") else []
    if pending:
        raise RuntimeError(
            f"call model.build(x_sample) before plotting: lazy modules {pending} have no shapes yet"
        )
    return model


# ---------------------------------------------------------------------- display helpers
def _display_transform(
    likelihood: LikelihoodLike | None, transform: Transform | None, model: Any = None
) -> tuple[Transform, tuple[float, float] | None, str]:
    """Return ``(f, vrange, description)``: how decoder outputs become images.

    ``likelihood='model'`` (the default of the plotting functions) means the model's
    own likelihood. ``vrange`` is the grey-level range (``None``: the data's own
    min/max).
    """
    from_model = isinstance(likelihood, str) and likelihood == FROM_MODEL
    if transform is not None:
        if not callable(transform):
            raise TypeError(f"transform must be a callable x_hat -> image, got {type(transform).__name__}")
        if likelihood is not None and not from_model and not callable(likelihood):
            raise ValueError(
                f"pass either likelihood or transform, not both: got likelihood={likelihood!r} "
                "and a transform"
            )
        name = getattr(transform, "__name__", type(transform).__name__)
        return transform, (0.0, 1.0), f"{name}(x̂)"
    if from_model:
        likelihood = getattr(model, "likelihood", "gaussian")
    if likelihood is None:
        return (lambda t: t), None, "raw decoder output x̂"
    entry = get_likelihood(likelihood)
    if entry.mean is None:
        raise ValueError(
            f"likelihood {entry.name!r} has no known mean; pass transform=... "
            "(for example torch.sigmoid) or likelihood=None to show the raw output"
        )
    return entry.mean, (0.0, 1.0), entry.label or f"mean of {entry.name}"


def _apply(transform: Transform, x_hat: torch.Tensor) -> torch.Tensor:
    out = transform(x_hat)
    # a likelihood with several parameter maps per channel (the 8-bit ones) turns
    # [N, K * C, H, W] into [N, C, H, W]; anything else keeps the shape
    same = isinstance(out, torch.Tensor) and (
        out.shape == x_hat.shape
        or (out.dim() == x_hat.dim() >= 3 and out.shape[:-3] == x_hat.shape[:-3]
            and out.shape[-2:] == x_hat.shape[-2:] and x_hat.shape[-3] % out.shape[-3] == 0)
    )
    if not same:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"transform must return a tensor of shape {list(x_hat.shape)}, got {got}")
    return out.detach().cpu().float()


def _as_images(images: Any, name: str = "images") -> torch.Tensor:
    """Validate and return ``[N, C, H, W]`` float CPU images (``[N, H, W]`` gets ``C = 1``)."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(images).__name__}")
    images = images.detach().cpu().float()
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape [N, C, H, W] with C in (1, 3) and N >= 1 (or [N, H, W]), "
            f"got {list(images.shape)}; a decoder must output image-shaped tensors "
            "(for example end it with nn.Unflatten)"
        )
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or infinite values; they cannot be shown as grey levels")
    return images


def _value_range(images: torch.Tensor, vrange: tuple[float, float] | None) -> tuple[float, float]:
    if vrange is not None:
        return float(vrange[0]), float(vrange[1])
    lo, hi = float(images.min()), float(images.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _new_axes(ax: Axes | None, rows: int, cols: int, aspect: float = 1.0) -> Axes:
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
        return ax
    cell = min(0.9, (MAX_FIGURE_WIDTH - 1.4) / max(cols, 1))
    size = (cell * cols + 1.4, cell * rows * aspect + 1.4)  # room for a two-line title, x labels
    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _centres(count: int, size: int, padding: int) -> list[float]:
    """Pixel coordinates of the centres of ``count`` grid cells of ``size`` pixels."""
    return [padding + k * (size + padding) + (size - 1) / 2 for k in range(count)]


def _draw_grid(
    ax: Axes,
    images: torch.Tensor,
    nrow: int,
    padding: int,
    vrange: tuple[float, float] | None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> None:
    """Draw ``images [N, C, H, W]`` as one ``make_grid`` mosaic with ``nrow`` per row."""
    n, channels, height, width = images.shape
    lo, hi = _value_range(images, vrange)
    # White padding separates the cells whatever the grey-level range.
    grid = make_grid(images, nrow=nrow, padding=padding, pad_value=hi)
    if channels == 1:
        ax.imshow(grid[0].numpy(), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    else:
        rgb = ((grid - lo) / (hi - lo)).clamp(0.0, 1.0).permute(1, 2, 0).numpy()
        ax.imshow(rgb, interpolation="nearest")
    pad = 0 if n == 1 else padding  # make_grid returns a lone image without padding
    ncols, nrows = min(nrow, n), math.ceil(n / nrow)
    for side, labels, count, size in (("y", row_labels, nrows, height), ("x", col_labels, ncols, width)):
        set_ticks = ax.set_yticks if side == "y" else ax.set_xticks
        if labels is None:
            set_ticks([])
            continue
        if len(labels) != count:
            raise ValueError(f"expected {count} {'row' if side == 'y' else 'column'} labels, got {len(labels)}")
        set_ticks(_centres(count, size, pad), [str(label) for label in labels])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


# ---------------------------------------------------------------------- images
def show_images(
    images: torch.Tensor | np.ndarray,
    nrow: int = 8,
    titles: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    padding: int = 2,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    vrange: tuple[float, float] | None = (0.0, 1.0),
) -> Figure:
    """Show a batch of images as one grid (``torchvision.utils.make_grid``).

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray
        ``[N, C, H, W]`` with ``C`` in (1, 3), or ``[N, H, W]``; values in ``[0, 1]``.
        Values outside ``vrange`` saturate on screen only (the stored array is not
        clipped). Single-channel images use the ``gray`` colormap.
    nrow : int, default 8
        Images per row of the grid.
    titles : sequence of str, optional
        One title per image. When given, each image gets its own axes (a grid of
        subplots, or of inset axes inside ``ax``) instead of a single mosaic.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is created otherwise.
    title : str, optional
        Title of the whole grid.
    padding : int, default 2
        Pixels between mosaic cells (white).
    row_labels, col_labels : sequence of str, optional
        Labels of the mosaic's rows and columns (ignored with ``titles``).
    vrange : (float, float) or None, default (0, 1)
        Grey levels shown as black and white; ``None`` uses the data's min and max.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (``ax.figure`` when ``ax`` is given).

    Raises
    ------
    ValueError
        For a wrong shape, NaN or infinite values, or a ``titles`` list whose length is
        not ``N``.
    """
    images = _as_images(images)
    nrow = _check_int(nrow, "nrow", 1)
    padding = _check_int(padding, "padding", 0)
    n = images.shape[0]
    aspect = images.shape[2] / images.shape[3]
    if titles is None:
        ax = _new_axes(ax, math.ceil(n / nrow), min(nrow, n), aspect)
        _draw_grid(ax, images, nrow, padding, vrange, row_labels, col_labels)
        if title is not None:
            ax.set_title(title)
        return ax.figure
    if len(titles) != n:
        raise ValueError(f"titles must have one entry per image ({n}), got {len(titles)}")
    return _titled_images(images, nrow, titles, ax, title, vrange)


def _titled_images(
    images: torch.Tensor,
    nrow: int,
    titles: Sequence[str],
    ax: Axes | None,
    title: str | None,
    vrange: tuple[float, float] | None,
) -> Figure:
    """:func:`show_images` with ``titles``: one axes per image (subplots, or insets in ``ax``)."""
    n, aspect = images.shape[0], images.shape[2] / images.shape[3]
    rows, cols = math.ceil(n / nrow), min(nrow, n)
    lo, hi = _value_range(images, vrange)
    if ax is None:
        cell = min(1.3, (MAX_FIGURE_WIDTH - 0.4) / cols)
        fig = plt.figure(figsize=(cell * cols + 0.4, (cell + 0.2) * rows * aspect + 0.5),
                         layout="constrained")
        cells = [fig.add_subplot(rows, cols, k + 1) for k in range(n)]
        if title is not None:
            fig.suptitle(title)
    else:
        fig = ax.figure
        ax.set_axis_off()
        w, h = 1.0 / cols, 1.0 / rows
        cells = [
            ax.inset_axes([(k % cols) * w, 1.0 - (k // cols + 1) * h, 0.9 * w, 0.8 * h])
            for k in range(n)
        ]
        if title is not None:
            ax.set_title(title)
    for cell, image, label in zip(cells, images, titles):
        if image.shape[0] == 1:
            cell.imshow(image[0].numpy(), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        else:
            cell.imshow(((image - lo) / (hi - lo)).clamp(0, 1).permute(1, 2, 0).numpy())
        cell.set_title(str(label), fontsize=MIN_FONT_SIZE)
        cell.set_axis_off()
    return fig


def plot_reconstructions(
    model: nn.Module,
    x: torch.Tensor,
    n: int = 10,
    *,
    likelihood: LikelihoodLike | None = "model",
    transform: Transform | None = None,
    inputs: torch.Tensor | None = None,
    fig: Figure | None = None,
    title: str | None = None,
) -> Figure:
    r"""Originals above their reconstructions, one labelled row each.

    The model runs in eval mode without gradients (its train/eval flags are restored
    afterwards). A VAE reconstructs at the posterior mean, :math:`\hat x = g(\mu(x))`;
    an AE uses :math:`g(f(x))`; an :class:`~autoencoders.variational.AdaGVAE` uses its
    ``.vae``.

    Parameters
    ----------
    model : AE, VAE or AdaGVAE
        A built model.
    x : torch.Tensor
        Images ``[B, C, H, W]`` in ``[0, 1]``; the first ``n`` are shown.
    n : int, default 10
        Number of images (at most ``B``).
    likelihood : str, Likelihood, callable or None, default ``'model'``
        The model's own likelihood by default; another one, or ``None`` for the raw
        decoder output (see the module docstring).
    transform : callable, optional
        Explicit ``x_hat -> image`` map, for callable likelihoods.
    inputs : torch.Tensor, optional
        What the model is fed instead of ``x`` (for example noisy copies, same shape).
        The rows are then ``'clean'``, ``'input (noisy)'`` and ``'reconstruction'``.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Where to add one axes per row.
    title : str, optional
        Defaults to a title naming the compared rows and the display transform.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig`` when given, else a new figure with one axes per row.
    """
    model = _check_model(model)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    n = _check_int(n, "n", 1)
    if n > x.shape[0]:
        raise ValueError(f"n must be at most the batch size of x ({x.shape[0]}), got n={n}")
    f, vrange, shown = _display_transform(likelihood, transform, model)
    x = x[:n]
    if inputs is not None:
        if not isinstance(inputs, torch.Tensor) or inputs.shape[1:] != x.shape[1:] or inputs.shape[0] < n:
            got = list(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise ValueError(f"inputs must be a tensor of shape [>= {n}, *{list(x.shape[1:])}], got {got}")
        inputs = inputs[:n]
    fed = x if inputs is None else inputs
    x_hat = reconstruct(model, fed, raw=True)
    # (row label, images, grey-level range): data rows are images in [0, 1].
    if inputs is None:
        rows = [("original", _as_images(x, "x"), (0.0, 1.0))]
    else:
        rows = [("clean", _as_images(x, "x"), (0.0, 1.0)), ("input (noisy)", _as_images(inputs, "inputs"), (0.0, 1.0))]
    rows.append(("reconstruction", _as_images(_apply(f, x_hat), "reconstruction"), vrange))
    if fig is None:
        width = min(0.9 * n + 1.6, MAX_FIGURE_WIDTH)
        fig = plt.figure(figsize=(width, len(rows) * (width - 1.6) / n + 0.7), layout="constrained")
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, (label, images, rng) in zip(axes, rows):
        _draw_grid(ax, images, n, 2, rng, row_labels=[label])
    fig.suptitle(title if title is not None else f"{' vs. '.join(r[0] for r in rows).capitalize()}\n(shown: {shown})")
    return fig


# ---------------------------------------------------------------------- decoding
def plot_samples(
    model: nn.Module,
    n: int = 64,
    *,
    likelihood: LikelihoodLike | None = "model",
    transform: Transform | None = None,
    nrow: int = 8,
    rng: int | torch.Generator | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    generator: torch.Generator | None = None,
) -> Figure:
    r"""Decode ``n`` draws from the prior, :math:`z \sim \mathcal N(0, I)`, :math:`\hat x = g(z)`.

    ``z`` is drawn on the CPU (from ``rng`` when given, so a seed
    reproduces the figure on any device) and then moved to the model's device.

    Parameters
    ----------
    model : VAE or AdaGVAE
        Any built model with ``.latent_dim`` and ``.decode``.
    n : int, default 64
        Number of samples.
    likelihood : str, Likelihood, callable or None, default ``'model'``
        The model's own likelihood by default; another one, or ``None`` for the raw
        decoder output (see the module docstring).
    transform : callable, optional
        Explicit ``x_hat -> image`` map.
    nrow : int, default 8
        Images per row.
    rng : int or torch.Generator, optional
        A seed or a CPU generator (``generator=`` is its earlier name).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    title : str, optional
        Defaults to one naming the prior and the display transform.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError
        For models without ``.latent_dim`` (a deterministic AE has no prior).
    """
    model = _check_model(model)
    n = _check_int(n, "n", 1)
    nrow = _check_int(nrow, "nrow", 1)
    _latent_dim(model)  # a deterministic AE has no prior: say so before anything else
    f, vrange, shown = _display_transform(likelihood, transform, model)
    images = _as_images(_apply(f, sample_prior(model, n, _renamed(rng, generator, "rng", "generator"), raw=True)), "decoded samples")
    ax = _new_axes(ax, math.ceil(n / nrow), min(n, nrow), images.shape[2] / images.shape[3])
    _draw_grid(ax, images, nrow, 2, vrange)
    ax.set_title(title if title is not None else f"{n} samples from the prior z ~ N(0, I)\n(shown: {shown})")
    return ax.figure


def interpolate_latents(
    z_a: torch.Tensor, z_b: torch.Tensor, steps: int, method: str = "linear"
) -> torch.Tensor:
    """Points on a linear or spherical path from ``z_a`` to ``z_b``.

    The same function as :func:`autoencoders.inference.interpolate` (see there for
    the formulas), kept under this name because the chapters use it.
    """
    return interpolate(z_a, z_b, steps, method)


def _image_pair(x_a: Any, x_b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    for name, value in (("x_a", x_a), ("x_b", x_b)):
        if not isinstance(value, torch.Tensor) or value.dim() not in (3, 4):
            got = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name} must be an image [C, H, W] or a batch [K, C, H, W], got {got}")
    if x_a.shape != x_b.shape:
        raise ValueError(f"x_a and x_b must have equal shapes, got {list(x_a.shape)} and {list(x_b.shape)}")
    if x_a.dim() == 3:
        return x_a.unsqueeze(0), x_b.unsqueeze(0)
    return x_a, x_b


def plot_interpolation(
    model: nn.Module,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    steps: int = 10,
    *,
    likelihood: LikelihoodLike | None = "model",
    transform: Transform | None = None,
    method: str = "linear",
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    r"""Decode a path in latent space between the codes of ``x_a`` and ``x_b``.

    Both images are encoded in eval mode (VAE: :math:`z = \mu(x)`, AE: :math:`z = f(x)`),
    interpolated with :func:`~autoencoders.inference.interpolate` and decoded. One row per pair,
    columns labelled by :math:`t`.

    Parameters
    ----------
    model : AE, VAE or AdaGVAE
    x_a, x_b : torch.Tensor
        One image ``[C, H, W]`` each, or batches ``[K, C, H, W]`` of pairs.
    steps : int, default 10
        Points on the path including both ends (``>= 2``).
    likelihood : str, Likelihood, callable or None, default ``'model'``
        The model's own likelihood by default; another one, or ``None`` for the raw
        decoder output (see the module docstring).
    transform : callable, optional
    method : {'linear', 'slerp'}, default 'linear'
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    model = _check_model(model)
    steps = _check_int(steps, "steps", 2)
    if method not in ("linear", "slerp"):
        raise ValueError(f"method must be 'linear' or 'slerp', got {method!r}")
    x_a, x_b = _image_pair(x_a, x_b)
    f, vrange, shown = _display_transform(likelihood, transform, model)
    path = interpolate(encode_mean(model, x_a), encode_mean(model, x_b), steps, method)
    x_hat = decode(model, path.reshape(-1, path.shape[-1]), raw=True)
    images = _as_images(_apply(f, x_hat), "decoded path")
    k = x_a.shape[0]
    ax = _new_axes(ax, k, steps, images.shape[2] / images.shape[3])
    ts = np.linspace(0.0, 1.0, steps)
    _draw_grid(ax, images, steps, 2, vrange, [f"pair {i + 1}" for i in range(k)], [f"{t:.2f}" for t in ts])
    ax.set_xlabel("interpolation weight t (0: code of x_a, 1: code of x_b)")
    ax.set_title(title if title is not None else f"{method} interpolation in latent space\n(shown: {shown})")
    return ax.figure


def _single_code(model: nn.Module, x: torch.Tensor | None, latent_dim: int | None) -> torch.Tensor:
    """The ``[D]`` code of one image ``x`` ([C, H, W] or [1, C, H, W]); zeros for ``None``."""
    if x is None:
        return torch.zeros(_latent_dim(model, latent_dim))
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or (x.dim() == 4 and x.shape[0] != 1):
        got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be one image [C, H, W] or [1, C, H, W], got {got}")
    batch = x.unsqueeze(0) if x.dim() == 3 else x
    return encode_mean(model, batch)[0].cpu()


def _traversal_images(
    model: nn.Module, base: torch.Tensor, dims: Sequence[int], values: torch.Tensor, f: Transform
) -> torch.Tensor:
    """Decode ``base`` with ``z_j`` set to each value: ``[len(dims) * len(values), C, H, W]``."""
    codes = base.repeat(len(dims), len(values), 1)  # [rows, cols, D]
    for row, j in enumerate(dims):
        codes[row, :, j] = values.to(codes.dtype)
    x_hat = decode(model, codes.reshape(-1, base.shape[0]), raw=True)
    return _as_images(_apply(f, x_hat), "decoded traversal")


def _check_dims(dims: Sequence[int] | None, dim: int, name: str = "dims") -> list[int]:
    if dims is None:
        return list(range(dim))
    dims = [int(j) if isinstance(j, int | np.integer) and not isinstance(j, bool) else j for j in dims]
    bad = [j for j in dims if not isinstance(j, int) or not 0 <= j < dim]
    if bad or not dims:
        raise ValueError(f"{name} must be a non-empty list of ints in [0, {dim}), got {dims!r}")
    return dims


def plot_latent_traversal(
    model: nn.Module,
    x: torch.Tensor | None,
    dims: Sequence[int] | None = None,
    values: torch.Tensor | Sequence[float] | None = None,
    *,
    likelihood: LikelihoodLike | None = "model",
    transform: Transform | None = None,
    dim_labels: Sequence[str] | None = None,
    latent_dim: int | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    r"""Vary one latent dimension at a time around the code of ``x``.

    Row :math:`j` decodes :math:`z` with :math:`z_j` **set** to each value (the other
    coordinates keep the code of ``x``: :math:`\mu(x)` for a VAE). Values are absolute
    positions, which for a VAE are in units of the prior's standard deviation.

    Parameters
    ----------
    model : AE, VAE or AdaGVAE
    x : torch.Tensor or None
        One image ``[C, H, W]`` or ``[1, C, H, W]``; ``None`` starts from :math:`z = 0`
        (then ``model.latent_dim`` or ``latent_dim`` gives :math:`D`).
    dims : sequence of int, optional
        Latent dimensions to traverse, one row each; all by default.
    values : tensor or sequence of float, optional
        Column values, default ``torch.linspace(-3, 3, 9)``.
    likelihood : str, Likelihood, callable or None, default ``'model'``
        The model's own likelihood by default; another one, or ``None`` for the raw
        decoder output (see the module docstring).
    transform : callable, optional
    dim_labels : sequence of str, optional
        Row labels (for example the factor each dimension captures); default
        ``'$z_{j}$'``.
    latent_dim : int, optional
        :math:`D` for ``x=None`` with models lacking ``.latent_dim``.
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    model = _check_model(model)
    f, vrange, shown = _display_transform(likelihood, transform, model)
    values = torch.linspace(-3.0, 3.0, 9) if values is None else torch.as_tensor(values, dtype=torch.float32)
    if values.dim() != 1 or values.numel() < 1:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {list(values.shape)}")
    base = _single_code(model, x, latent_dim)
    dims = _check_dims(dims, base.shape[0])
    if dim_labels is not None and len(dim_labels) != len(dims):
        raise ValueError(f"dim_labels must have one entry per traversed dim ({len(dims)}), got {len(dim_labels)}")
    images = _traversal_images(model, base, dims, values, f)
    labels = list(dim_labels) if dim_labels is not None else [f"$z_{{{j}}}$" for j in dims]
    ax = _new_axes(ax, len(dims), len(values), images.shape[2] / images.shape[3])
    _draw_grid(ax, images, len(values), 2, vrange, labels, [f"{v:.3g}" for v in values.tolist()])
    ax.set_xlabel("value of the traversed latent coordinate")
    ax.set_ylabel("traversed dimension")
    origin = "z = 0" if x is None else "the code of x"
    ax.set_title(title if title is not None else f"Latent traversal around {origin}\n(shown: {shown})")
    return ax.figure


def _hwc(image: torch.Tensor) -> np.ndarray:
    """One ``[C, H, W]`` image as what ``imshow`` takes: ``[H, W]`` or ``[H, W, C]``."""
    image = image.detach().cpu().float()
    return image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()


def animate_latent_traversal(
    models: nn.Module | Sequence[nn.Module],
    x: torch.Tensor | None,
    dims: Sequence[int] | Sequence[Sequence[int]] | None = None,
    values: torch.Tensor | Sequence[float] | None = None,
    *,
    dim_labels: Sequence[str] | Sequence[Sequence[str]] | None = None,
    row_titles: Sequence[str] | None = None,
    likelihood: LikelihoodLike | None = "model",
    interval: int = 150,
    panel_inches: float = 0.68,
    dpi: int = 72,
) -> Any:
    r"""An animated latent traversal: one frame per value, one panel per dimension.

    Frame :math:`t` shows, in panel :math:`j`, the decoding of the code of ``x`` with
    :math:`z_{\mathrm{dims}[j]}` **set** to ``values[t]`` (the static version is
    :func:`plot_latent_traversal`, one row per dimension). The values run up and back
    down, so the animation loops smoothly. Several models (for example two seeds,
    or Ada-GVAE and a β-VAE) make one row each, animated in step.

    Show it with ``IPython.display.HTML(animation_html(anim))``: self-contained HTML
    and JavaScript that plays in Jupyter, in Colab and in the static book, offline
    (:func:`animation_html`). The figure is closed, so it is not shown a second time.

    Parameters
    ----------
    models : model or sequence of models
        AE, VAE or AdaGVAE; one row each.
    x : torch.Tensor or None
        One image ``[C, H, W]`` or ``[1, C, H, W]`` whose code is the starting point
        (``None``: :math:`z = 0`).
    dims : sequence of int, or one sequence per model, optional
        Dimensions to animate, default all.
    values : tensor or sequence of float, optional
        Values of the traversed coordinate, default ``torch.linspace(-2.5, 2.5, 13)``.
    dim_labels : sequence of str, or one sequence per model, optional
        Panel titles, default ``'$z_{j}$'``.
    row_titles : sequence of str, optional
        One label per model, shown left of its row.
    likelihood : str, Likelihood, callable or None, default ``'model'``
        As in :func:`plot_latent_traversal`.
    interval : int, default 150
        Milliseconds per frame.
    panel_inches : float, default 0.68
        Width of one panel; the figure is at most 7 inches wide.
    dpi : int, default 72
        Resolution of the frames, which are stored as PNG images in the HTML: about
        50 kB per frame for two rows of ten 32 x 32 panels.

    Returns
    -------
    matplotlib.animation.FuncAnimation
    """
    from matplotlib.animation import FuncAnimation

    models = list(models) if isinstance(models, list | tuple) else [models]
    values = (torch.linspace(-2.5, 2.5, 13) if values is None
              else torch.as_tensor(values, dtype=torch.float32))
    if values.dim() != 1 or values.numel() < 2:
        raise ValueError(f"values must be a 1-D sequence of at least 2 values, got shape "
                         f"{list(values.shape)}")
    per_model = []
    for i, model in enumerate(models):
        model = _check_model(model)
        f, vrange, _ = _display_transform(likelihood, None, model)
        base = _single_code(model, x, None)
        d = dims[i] if dims is not None and len(models) > 1 else dims
        d = _check_dims(d, base.shape[0])
        labels = dim_labels[i] if dim_labels is not None and len(models) > 1 else dim_labels
        labels = list(labels) if labels is not None else [f"$z_{{{j}}}$" for j in d]
        if len(labels) != len(d):
            raise ValueError(f"dim_labels must have one entry per animated dim ({len(d)}), "
                             f"got {len(labels)}")
        imgs = _traversal_images(model, base, d, values, f)
        per_model.append((imgs.reshape(len(d), len(values), *imgs.shape[1:]), labels, vrange))
    if row_titles is not None and len(row_titles) != len(models):
        raise ValueError(f"row_titles must have one entry per model ({len(models)}), "
                         f"got {len(row_titles)}")
    cols = max(len(labels) for _, labels, _ in per_model)
    width = min(7.0, panel_inches * cols + (0.8 if row_titles else 0.2))
    panel = (width - (0.8 if row_titles else 0.2)) / cols
    fig, axes = plt.subplots(len(models), cols, squeeze=False,
                             figsize=(width, len(models) * (panel + 0.45) + 0.4),
                             dpi=dpi, layout="constrained")
    artists = []
    for row, (imgs, labels, vrange) in enumerate(per_model):
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(labels):
                ax.set_frame_on(False)
                continue
            artists.append((ax.imshow(_hwc(imgs[col, 0]), cmap="gray", vmin=vrange[0],
                                      vmax=vrange[1]), imgs[col]))
            ax.set_title(labels[col], fontsize=MIN_FONT_SIZE)
        if row_titles is not None:
            axes[row, 0].set_ylabel(row_titles[row], fontsize=MIN_FONT_SIZE)
    order = list(range(len(values))) + list(range(len(values) - 2, 0, -1))
    caption = fig.suptitle("")

    def update(t: int) -> list[Any]:
        for im, frames in artists:
            im.set_data(_hwc(frames[order[t]]))
        caption.set_text(f"traversed coordinate = {values[order[t]].item():+.2f}")
        return [im for im, _ in artists] + [caption]

    update(0)
    anim = FuncAnimation(fig, update, frames=len(order), interval=interval, blit=False)
    plt.close(fig)
    return anim


# Matplotlib's JavaScript player draws its buttons with Font Awesome icons from a CDN,
# which an offline page cannot load (the buttons come out blank); plain characters
# replace them.
_PLAYER_ICONS = {
    "fa fa-minus": "\u2212",
    "fa fa-fast-backward": "\u23ee",
    "fa fa-step-backward": "\u23ea",
    "fa fa-play fa-flip-horizontal": "\u25c0",
    "fa fa-pause": "\u23f8",
    "fa fa-play": "\u25b6",
    "fa fa-step-forward": "\u23e9",
    "fa fa-fast-forward": "\u23ed",
    "fa fa-plus": "+",
}


def animation_html(anim: Any, default_mode: str = "loop") -> str:
    """Self-contained HTML for a matplotlib animation, playable offline.

    ``anim.to_jshtml()`` embeds every frame as a PNG and a small JavaScript player,
    but links the player's icon font from a CDN, so on an offline page (or behind a
    firewall) its buttons are blank. This returns the same player with the stylesheet
    link removed and the icons replaced by plain characters. Display it in a notebook
    with ``IPython.display.HTML(animation_html(anim))``.

    Parameters
    ----------
    anim : matplotlib.animation.Animation
    default_mode : {'loop', 'once', 'reflect'}, default 'loop'

    Returns
    -------
    str
    """
    import re

    html = anim.to_jshtml(default_mode=default_mode)
    html = re.sub(r"<link[^>]*font-awesome[^>]*>", "", html)
    for cls, char in _PLAYER_ICONS.items():
        html = html.replace(f'<i class="{cls}"></i>', char)
    if "font-awesome" in html or '<i class="fa' in html:
        raise RuntimeError("matplotlib's animation player changed: an icon was not replaced")
    return html


def plot_decoded_grid(
    model: nn.Module,
    *,
    likelihood: LikelihoodLike | None = "model",
    transform: Transform | None = None,
    n: int = 15,
    span: float | None = None,
    dims: tuple[int, int] = (0, 1),
    latent_dim: int | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    r"""Decode a regular ``n x n`` grid over two latent dimensions (the "manifold" figure).

    By default the coordinates are prior quantiles :cite:p:`kingma2013auto`,

    .. math::

        z_{(k)} = \Phi^{-1}(p_k), \qquad p_k = 0.05 + 0.9\,\tfrac{k}{n-1},
        \quad k = 0, \dots, n - 1,

    so the grid covers the central 90% of :math:`\mathcal N(0, 1)` per axis with equal
    prior mass between neighbours; ``span=s`` uses ``linspace(-s, s, n)`` instead. All
    other coordinates are 0. Columns vary ``dims[0]`` left to right; rows vary
    ``dims[1]``, increasing upwards as on a plot.

    Parameters
    ----------
    model : VAE, AdaGVAE (or AE with ``latent_dim=``)
    likelihood : str, Likelihood, callable or None, default ``'model'``
        The model's own likelihood by default; another one, or ``None`` for the raw
        decoder output (see the module docstring).
    transform : callable, optional
    n : int, default 15
        Grid points per axis (``>= 2``).
    span : float, optional
        Symmetric linear range instead of quantiles.
    dims : (int, int), default (0, 1)
        The two distinct dimensions varied.
    latent_dim : int, optional
        :math:`D` for models without ``.latent_dim``.
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    model = _check_model(model)
    n = _check_int(n, "n", 2)
    dim = _latent_dim(model, latent_dim)
    if len(dims) != 2 or dims[0] == dims[1]:
        raise ValueError(f"dims must be two distinct latent dimensions, got {dims!r}")
    dims = _check_dims(dims, dim)
    if span is None:
        coords = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
        how = "prior quantiles 5%..95%"
    else:
        if not span > 0:
            raise ValueError(f"span must be a positive float, got {span!r}")
        coords = torch.linspace(-float(span), float(span), n)
        how = f"[-{span:g}, {span:g}]"
    f, vrange, shown = _display_transform(likelihood, transform, model)
    z = torch.zeros(n, n, dim)
    z[:, :, dims[0]] = coords.view(1, n)
    z[:, :, dims[1]] = coords.flip(0).view(n, 1)  # top row = largest value
    images = _as_images(_apply(f, decode(model, z.reshape(-1, dim), raw=True)), "decoded grid")
    ax = _new_axes(ax, n, n, images.shape[2] / images.shape[3])
    fmt = [f"{c:.2g}" for c in coords.tolist()]
    _draw_grid(ax, images, n, 0, vrange, fmt[::-1], fmt)
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_xlabel(f"$z_{{{dims[0]}}}$")
    ax.set_ylabel(f"$z_{{{dims[1]}}}$")
    ax.set_title(title if title is not None else f"Decoded latent grid, {how}\n(shown: {shown})")
    return ax.figure


# ---------------------------------------------------------------------- latent space
def _points_and_labels(
    z: Any, labels: Any, method: str, max_points: int, random_state: int
) -> tuple[np.ndarray, np.ndarray | None, int, str]:
    """Validated float64 codes and labels, subsampled to ``max_points`` rows.

    Returns ``(points, labels, total, subset_note)``.
    """
    if method not in ("pca", "tsne", "none"):
        raise ValueError(f"method must be 'pca', 'tsne' or 'none', got {method!r}")
    points = (z.detach().cpu().double().numpy() if isinstance(z, torch.Tensor) else np.asarray(z, dtype=float))
    if points.ndim != 2 or points.shape[0] < 2:
        raise ValueError(f"z must have shape [N, D] with N >= 2, got {list(points.shape)}")
    if not np.isfinite(points).all():
        raise ValueError("z contains NaN or infinite values")
    total, dim = points.shape
    if method == "none" and dim != 2:
        raise ValueError(f"method='none' needs 2-D codes, got D = {dim}; use 'pca' or 'tsne'")
    if method != "none" and dim < 2:
        raise ValueError(f"method={method!r} needs codes with D >= 2, got D = {dim}")
    if labels is not None:
        labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        if labels.shape != (total,):
            raise ValueError(f"labels must have shape [N] = [{total}], got {list(labels.shape)}")
    max_points = _check_int(max_points, "max_points", 2)
    if total <= max_points:
        return points, labels, total, ""
    keep = np.sort(np.random.default_rng(random_state).choice(total, max_points, replace=False))
    labels = labels[keep] if labels is not None else None
    return points[keep], labels, total, f", random {max_points} of {total}"


def _project_2d(points: np.ndarray, method: str, random_state: int) -> tuple[np.ndarray, list[str]]:
    """2-D coordinates of ``points`` and the two axis names."""
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2)
        xy = pca.fit_transform(points)
        return xy, [f"PC {k + 1} ({r:.0%} of variance)" for k, r in enumerate(pca.explained_variance_ratio_)]
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(points) - 1) / 3)
        if perplexity < 1:
            raise ValueError(f"t-SNE needs at least 4 points, got {len(points)}")
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state)
        return tsne.fit_transform(points), ["t-SNE 1", "t-SNE 2"]
    return points, ["$z_{0}$", "$z_{1}$"]


def _scatter(ax: Axes, xy: np.ndarray, labels: np.ndarray | None, legend_title: str) -> None:
    """Points coloured by label: a legend for few categories, a colorbar otherwise."""
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.7)
        return
    classes = np.unique(labels)
    categorical = labels.dtype.kind in "biuUSO"
    if categorical and len(classes) > _MAX_DISCRETE_LABELS and labels.dtype.kind not in "biu":
        raise ValueError(f"at most {_MAX_DISCRETE_LABELS} distinct non-numeric labels, got {len(classes)}")
    if categorical and len(classes) <= _MAX_DISCRETE_LABELS:
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for k, value in enumerate(classes):
            mask = labels == value
            ax.scatter(xy[mask, 0], xy[mask, 1], s=6, alpha=0.7, color=cmap(k), label=str(value))
        ax.legend(title=legend_title, markerscale=2.5, fontsize=MIN_FONT_SIZE, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels.astype(float), s=6, alpha=0.7, cmap="viridis")
        ax.figure.colorbar(sc, ax=ax, label=legend_title)


def plot_latent_2d(
    z: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | Sequence | None = None,
    method: str = "pca",
    ax: Axes | None = None,
    title: str | None = None,
    max_points: int = 5000,
    random_state: int = 0,
    *,
    legend_title: str = "label",
) -> Figure:
    r"""Scatter latent codes in 2-D, coloured by label.

    ``'pca'`` projects onto the two leading principal components (scikit-learn
    ``PCA``); ``'tsne'`` runs scikit-learn ``TSNE`` (perplexity
    :math:`\min(30, (N-1)/3)`, PCA initialisation); ``'none'`` plots 2-D codes as they
    are. Integer, boolean or string labels with at most 20 distinct values get one
    colour each and a legend; other labels (floats, or more than 20 integers) get a
    continuous colormap and a colorbar.

    Parameters
    ----------
    z : torch.Tensor or numpy.ndarray
        Codes ``[N, D]`` (for a VAE, typically the posterior means).
    labels : array-like, optional
        ``[N]`` labels.
    method : {'pca', 'tsne', 'none'}, default 'pca'
    ax : matplotlib.axes.Axes, optional
    title : str, optional
    max_points : int, default 5000
        When ``N`` is larger, a random subset of this size (seeded by ``random_state``)
        is shown, and the title says so.
    random_state : int, default 0
        Seed of the subset and of t-SNE.
    legend_title : str, default 'label'

    Returns
    -------
    matplotlib.figure.Figure
    """
    points, labels, _, subset = _points_and_labels(z, labels, method, max_points, random_state)
    xy, names = _project_2d(points, method, random_state)
    ax = _new_axes(ax, 5, 6)
    _scatter(ax, xy, labels, legend_title)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    what = {"pca": "PCA", "tsne": "t-SNE", "none": "raw coordinates"}[method]
    dim = points.shape[1]
    ax.set_title(title if title is not None else f"Latent codes ({what} of {dim}-D z, {len(xy)} points{subset})")
    return ax.figure


# ---------------------------------------------------------------------- moved
def __getattr__(name: str) -> Any:
    """Names that moved to other modules and stay importable from here.

    ``latent_explorer`` lives in :mod:`autoencoders.explorer`; it is imported lazily
    because that module is built on this one's helpers (a plain import at the top of
    either module would be circular).
    """
    if name == "latent_explorer":
        from .explorer import latent_explorer

        return latent_explorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
