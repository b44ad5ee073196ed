r"""Latent-usage diagnostics: how many latent dimensions a VAE actually uses.

:func:`active_units` counts the dimensions whose posterior mean moves with the input
and :func:`kl_per_dimension` measures the KL each dimension pays; both diagnose
posterior collapse (chapter 5). They encode with
:func:`autoencoders.inference.encode_dataset`'s machinery: mean codes, eval mode
without gradients (every submodule's flag restored afterwards), batches checked for NaN
and inf, and the package's device policy (``device=None`` means
:func:`autoencoders.utils.get_device`; the model is moved there for the pass and back
to where it was afterwards).

For compatibility this module also re-exports the names that used to live here and
moved in issue 13: :func:`~autoencoders.inference.encode_dataset` (now in
:mod:`autoencoders.inference`) and the disentanglement scores
:func:`~autoencoders.disentanglement.mig`,
:func:`~autoencoders.disentanglement.factor_vae_score`,
:func:`~autoencoders.disentanglement.beta_vae_score`,
:func:`~autoencoders.disentanglement.dci`,
:func:`~autoencoders.disentanglement.shared_dim_accuracy` and
:func:`~autoencoders.disentanglement.make_represent` (now in
:mod:`autoencoders.disentanglement`), so ``from autoencoders.metrics import mig`` keeps
working. They are documented in their new modules.
"""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import torch

# Re-exports of the names that moved (documented in their new modules, hence not in
# __all__: listing them would document every object twice in the API reference).
from .disentanglement import ArrayLike as ArrayLike
from .disentanglement import DCIModel as DCIModel
from .disentanglement import MIGResult as MIGResult
from .disentanglement import Represent as Represent
from .disentanglement import beta_vae_score as beta_vae_score
from .disentanglement import dci as dci
from .disentanglement import factor_vae_score as factor_vae_score
from .disentanglement import make_represent as make_represent
from .disentanglement import mig as mig
from .disentanglement import mig_details as mig_details
from .disentanglement import shared_dim_accuracy as shared_dim_accuracy
from .inference import _encode_batches, _encode_means
from .inference import encode_dataset as encode_dataset

__all__ = ["ActiveUnits", "active_units", "kl_per_dimension"]


class ActiveUnits(NamedTuple):
    """Result of :func:`active_units`: how many units are active, and each one's variance."""

    count: int
    variances: torch.Tensor


def active_units(
    model: Any,
    data: Any,
    threshold: float = 0.01,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> ActiveUnits:
    r"""Active units :cite:p:`burda2015importance`: latent dimensions whose posterior mean moves with x.

    .. math::

        A_u = \mathrm{Cov}_x\big(\mathbb{E}_{q(z|x)}[z_u]\big) > \text{threshold},

    with the unbiased sample variance over ``data`` of the encoder mean.

    Parameters
    ----------
    model : VAE, AdaGVAE or AE
        Encoded like :func:`~autoencoders.inference.encode_dataset` does.
    data : Tensor [N, ...] or an iterable of batches
        At least two examples.
    threshold : float, default 0.01
        Burda et al.'s value.
    batch_size : int, default 1024
    device : str or torch.device, optional
        ``None`` means :func:`autoencoders.utils.get_device`; the model is moved there
        for the pass and back afterwards.

    Returns
    -------
    ActiveUnits
        ``count`` (int) and ``variances`` (Tensor [D], float64).

    Raises
    ------
    TypeError
        If ``threshold`` is not a real number.
    ValueError
        If ``threshold`` is negative or NaN, ``data`` contains NaN or inf, or the encoder
        means are not finite (a count of 0 would then read like posterior collapse).
    """
    threshold = _check_threshold(threshold)
    mu = _encode_means(model, data, batch_size, device, "data").double()
    if mu.shape[0] < 2:
        raise ValueError(f"data must hold at least 2 examples for a variance, got {mu.shape[0]}")
    var = mu.var(dim=0, unbiased=True)
    if not bool(torch.isfinite(var).all()):
        raise ValueError(
            "the model's encoder means are NaN or inf for finite data (variance not finite "
            f"in dimensions {torch.nonzero(~torch.isfinite(var)).flatten().tolist()}); "
            "has the model diverged? Active units cannot be counted"
        )
    return ActiveUnits(int((var > threshold).sum()), var)


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise TypeError(f"threshold must be a real number >= 0, got {type(threshold).__name__}")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    return float(threshold)


def kl_per_dimension(
    model: Any, data: Any, batch_size: int = 1024, device: str | torch.device | None = None
) -> torch.Tensor:
    r"""Dataset-mean KL of each latent dimension's posterior from the standard normal prior.

    .. math::

        \overline{\mathrm{KL}}_j = \frac{1}{N} \sum_{n=1}^{N}
        \tfrac12 \big(\mu_{nj}^2 + e^{\ell_{nj}} - 1 - \ell_{nj}\big),
        \qquad \ell = \log \sigma^2.

    Parameters
    ----------
    model : VAE or AdaGVAE
        ``encode(x)`` must return ``.mu`` and ``.log_var``.
    data : Tensor [N, ...] or an iterable of batches
    batch_size : int, default 1024
    device : str or torch.device, optional
        ``None`` means :func:`autoencoders.utils.get_device`; the model is moved there
        for the pass and back afterwards.

    Returns
    -------
    Tensor [D]
        In nats, float64, on the CPU.

    Raises
    ------
    TypeError
        If ``encode(x)`` does not return ``.mu`` and ``.log_var``.
    ValueError
        If ``data`` is empty or contains NaN or inf.
    """
    total, n = None, 0
    with contextlib.closing(_encode_batches(model, data, batch_size, device, "data")) as outputs:
        for out in outputs:
            if getattr(out, "mu", None) is None or getattr(out, "log_var", None) is None:
                raise TypeError(
                    "kl_per_dimension needs a model whose encode(x) returns .mu and .log_var "
                    f"(a VAE), got {type(out).__name__} from {type(model).__name__}"
                )
            mu, lv = out.mu.double().cpu(), out.log_var.double().cpu()
            kl = 0.5 * (mu.pow(2) + lv.exp() - 1.0 - lv)
            total = kl.sum(dim=0) if total is None else total + kl.sum(dim=0)
            n += mu.shape[0]
    if total is None:
        raise ValueError("data is empty")
    return total / n
