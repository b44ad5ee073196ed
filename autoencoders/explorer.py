r"""Interactive latent explorer: sliders over latent coordinates, decoded live.

:func:`latent_explorer` builds a panel from core ipywidgets only (``FloatSlider``,
``Button``, ``VBox``/``HBox`` and an ``Image`` holding PNG bytes), which update reliably
in Jupyter and Colab. Every slider move decodes the current code,

.. math::

    \tilde x = \mathbb E\big[x \mid g_\theta(z)\big],

with :func:`autoencoders.inference.decode` in eval mode (the model's flags are restored
after every update) and shows it under the model's own likelihood, like the figures of
:mod:`autoencoders.viz` (``likelihood=`` and ``transform=`` work as there). Without
ipywidgets, or with ``static=True``, it returns a static traversal figure instead.

It is also importable as ``autoencoders.viz.latent_explorer``.
"""

from __future__ import annotations

import builtins
import io
import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from .inference import _check_int, _latent_dim, decode
from .likelihoods import LikelihoodLike
from .viz import (
    Transform,
    _apply,
    _as_images,
    _check_dims,
    _check_model,
    _display_transform,
    _traversal_images,
    _value_range,
    show_images,
)

__all__ = ["latent_explorer"]

_STATIC_COLUMNS = 7


def _png(image: torch.Tensor, vrange: tuple[float, float] | None, scale: int) -> bytes:
    """PNG bytes of one image ``[C, H, W]``, enlarged by pixel repetition (no blur)."""
    lo, hi = _value_range(image, vrange)
    big = image.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    buf = io.BytesIO()
    if big.shape[0] == 1:
        plt.imsave(buf, big[0].numpy(), cmap="gray", vmin=lo, vmax=hi, format="png")
    else:
        plt.imsave(buf, ((big - lo) / (hi - lo)).clamp(0, 1).permute(1, 2, 0).numpy(), format="png")
    return buf.getvalue()


def _start_code(model: nn.Module, z0: Any) -> torch.Tensor:
    """The ``[D]`` starting code on the CPU: ``z0`` or zeros."""
    if z0 is None:
        return torch.zeros(_latent_dim(model))
    if isinstance(z0, torch.Tensor) and (z0.dim() == 1 or (z0.dim() == 2 and z0.shape[0] == 1)):
        return z0.detach().cpu().float().reshape(-1)
    got = list(z0.shape) if isinstance(z0, torch.Tensor) else type(z0).__name__
    raise ValueError(f"z0 must be one code [D] or [1, D], got {got}")


def _slider_range(limits: Any, step: Any) -> tuple[float, float]:
    """Validate ``range`` and ``step``; return ``(low, high)``."""
    lo, hi = (float(v) for v in limits)
    if not lo < hi:
        raise ValueError(f"range must be (low, high) with low < high, got {limits!r}")
    if not 0 < step <= hi - lo:
        raise ValueError(f"step must be in (0, {hi - lo}], got {step!r}")
    return lo, hi


def _static_view(
    model: nn.Module, base: torch.Tensor, dims: list[int], limits: tuple[float, float], display: tuple
) -> Figure:
    """The fallback figure: one row per slider, seven evenly spaced settings per row."""
    f, vrange, shown = display
    values = torch.linspace(limits[0], limits[1], _STATIC_COLUMNS)
    images = _traversal_images(model, base, dims, values, f)
    fig = show_images(
        images, nrow=len(values), vrange=vrange,
        row_labels=[f"$z_{{{j}}}$" for j in dims], col_labels=[f"{v:.3g}" for v in values.tolist()],
    )
    ax = fig.axes[-1]
    ax.set_xlabel("slider setting (other coordinates at z0)")
    ax.set_title(f"Latent explorer, static view\n(shown: {shown})")
    return fig


def _widget_panel(
    widgets: Any,
    model: nn.Module,
    base: torch.Tensor,
    dims: list[int],
    slider: tuple[float, float, float],
    display: tuple,
    scale: int,
) -> Any:
    """The live panel: sliders and a reset button beside the decoded image."""
    f, vrange, shown = display
    lo, hi, step = slider

    def start(j: int) -> float:
        return min(max(float(base[j]), lo), hi)

    sliders = [
        widgets.FloatSlider(
            value=start(j), min=lo, max=hi, step=step,
            description=f"z_{j}", continuous_update=True, readout_format=".2f",
        )
        for j in dims
    ]
    image = widgets.Image(format="png")
    reset = widgets.Button(description="reset to z0")

    def update(_change: Any = None) -> None:
        code = base.clone()
        for j, s in zip(dims, sliders):
            code[j] = s.value
        x_hat = decode(model, code.unsqueeze(0), raw=True)
        image.value = _png(_as_images(_apply(f, x_hat), "decoded image")[0], vrange, scale)

    def on_reset(_button: Any) -> None:
        for j, s in zip(dims, sliders):
            s.value = start(j)
        update()

    for s in sliders:
        s.observe(update, names="value")
    reset.on_click(on_reset)
    update()
    caption = widgets.Label(f"shown: {shown}")
    return widgets.HBox([widgets.VBox([*sliders, reset]), widgets.VBox([image, caption])])


def latent_explorer(
    model: nn.Module,
    *,
    likelihood: LikelihoodLike | None = "model",
    transform: Transform | None = None,
    z0: torch.Tensor | None = None,
    dims: Sequence[int] | None = None,
    range: tuple[float, float] = (-3.0, 3.0),  # shadows the builtin: builtins.range below
    step: float = 0.1,
    static: bool = False,
    max_sliders: int = 10,
    scale: int = 6,
) -> Any:
    r"""Sliders over latent coordinates that decode the current code live.

    Each slider move decodes :math:`\hat x = g_\theta(z)` in eval mode (the model's flags
    are restored after every update) and shows
    :math:`\mathbb E[x \mid \hat x]` under the model's likelihood.

    Parameters
    ----------
    model : VAE or AdaGVAE (or AE with a ``z0``)
    likelihood : str, Likelihood, callable or None, default ``'model'``
        The model's own likelihood by default; another one, or ``None`` for the raw
        decoder output (see :mod:`autoencoders.viz`).
    transform : callable, optional
        Explicit ``x_hat -> image`` map, for callable likelihoods.
    z0 : torch.Tensor, optional
        Starting code ``[D]`` or ``[1, D]`` (for example ``model.encode(x).mu[0]``);
        zeros by default.
    dims : sequence of int, optional
        Coordinates with a slider; default the first ``min(D, max_sliders)``.
    range : (float, float), default (-3, 3)
        Slider limits; coordinates of ``z0`` outside them start at the nearest limit.
    step : float, default 0.1
        Slider resolution.
    static : bool, default False
        Return a static figure even when ipywidgets is available.
    max_sliders : int, default 10
        Cap on the default number of sliders.
    scale : int, default 6
        Pixel magnification of the displayed image.

    Returns
    -------
    ipywidgets.Widget or matplotlib.figure.Figure
        The panel; or, when ``static=True`` or ipywidgets cannot be imported (a
        ``UserWarning`` says so), a traversal figure with one row per slider and
        seven evenly spaced slider settings per row.
    """
    model = _check_model(model)
    display = _display_transform(likelihood, transform, model)
    lo, hi = _slider_range(range, step)
    scale = _check_int(scale, "scale", 1)
    base = _start_code(model, z0)
    if dims is None:
        dims = list(builtins.range(min(base.shape[0], _check_int(max_sliders, "max_sliders", 1))))
    else:
        dims = _check_dims(dims, base.shape[0])
    widgets = None
    if not static:
        try:
            import ipywidgets as widgets
        except ImportError:
            warnings.warn("ipywidgets is not installed; latent_explorer returns a static figure", stacklevel=2)
    if widgets is None:
        return _static_view(model, base, dims, (lo, hi), display)
    return _widget_panel(widgets, model, base, dims, (lo, hi, step), display, scale)
