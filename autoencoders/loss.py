r"""Gaussian KL divergences and log-densities, and the :class:`LossResult` container.

This module holds math only, no models. Every function works elementwise or per
example, is written to be numerically stable over the ranges met in training
(log-variances of :math:`\pm 30`), and is tested against :mod:`torch.distributions`.

The likelihoods (:func:`~autoencoders.likelihoods.log_likelihood`,
:func:`~autoencoders.likelihoods.distribution_mean`, ...) live in
:mod:`autoencoders.likelihoods` and are importable from here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

# Re-exported: the likelihoods used to live here.
from .likelihoods import LikelihoodLike as LikelihoodLike
from .likelihoods import LikelihoodType as LikelihoodType
from .likelihoods import _target_problem, get_likelihood
from .likelihoods import distribution_mean as distribution_mean
from .likelihoods import log_likelihood as log_likelihood
from .likelihoods import log_likelihood_sum as log_likelihood_sum
from .likelihoods import log_normalizer as log_normalizer
from .likelihoods import resolve_likelihood as resolve_likelihood
from .likelihoods import validate_target as validate_target

__all__ = [
    "LossResult",
    "float_diagnostics",
    "kl_divergence_diag_gaussian",
    "log_normal_diag",
]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class LossResult:
    """What ``compute_loss`` returns.

    Attributes
    ----------
    objective : torch.Tensor
        Scalar tensor to **minimise** (call ``objective.backward()``).
    diagnostics : dict of str to float
        Numbers to watch, as Python floats. Every entry is a batch mean in nats per
        example (for example ``log_likelihood``, ``kl_divergence``, ``elbo``).
    """

    objective: torch.Tensor
    diagnostics: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.diagnostics.items())
        return f"LossResult(objective={float(self.objective.detach()):.4g}, diagnostics={{{shown}}})"


def float_diagnostics(
    values: Mapping[str, torch.Tensor],
    targets: Mapping[str, tuple[torch.Tensor, LikelihoodLike]] | None = None,
) -> dict[str, float]:
    """Convert scalar tensors to Python floats with a single device synchronisation.

    Parameters
    ----------
    values : dict of str to torch.Tensor
        Scalar diagnostics.
    targets : dict of str to (torch.Tensor, likelihood), optional
        Targets to validate as :func:`~autoencoders.likelihoods.validate_target` does, named by the argument
        they came from (``{"x": (x, "bernoulli")}``). Their minimum and maximum travel
        in the same transfer as the diagnostics, so the check adds no
        synchronisation, only one pass over each target.

    Raises
    ------
    ValueError
        If a target contains NaN or inf, or lies outside :math:`[0, 1]` for a
        Bernoulli-type likelihood.
    """
    names = list(values)
    checks = list((targets or {}).items())
    if not names and not checks:
        return {}
    parts = [values[n].detach().to(torch.float64).reshape(1) for n in names]
    for _, (x, _) in checks:
        parts.append(torch.stack(torch.aminmax(x.detach())).to(torch.float64))
    flat = torch.cat(parts).tolist()
    for i, (name, (_, likelihood)) in enumerate(checks):
        lo, hi = flat[len(names) + 2 * i : len(names) + 2 * i + 2]
        problem = _target_problem(name, lo, hi, get_likelihood(likelihood))
        if problem:
            raise ValueError(problem)
    return dict(zip(names, flat[: len(names)]))


def kl_divergence_diag_gaussian(
    mu: torch.Tensor,
    log_var: torch.Tensor,
    mu2: torch.Tensor | None = None,
    log_var2: torch.Tensor | None = None,
    reduce_sum: bool = True,
) -> torch.Tensor:
    r"""KL divergence between diagonal Gaussians, in closed form.

    Against the standard normal prior (``mu2 = log_var2 = None``):

    .. math::

        \mathrm{KL}\big(\mathcal N(\mu, \sigma^2) \,\|\, \mathcal N(0, 1)\big)
        = \tfrac12 \big(\mu^2 + \sigma^2 - 1 - \log \sigma^2\big)

    Between two Gaussians, per dimension:

    .. math::

        \mathrm{KL}\big(\mathcal N(\mu_1, \sigma_1^2) \,\|\, \mathcal N(\mu_2, \sigma_2^2)\big)
        = \tfrac12 \Big(\log\frac{\sigma_2^2}{\sigma_1^2}
          + \frac{\sigma_1^2 + (\mu_1 - \mu_2)^2}{\sigma_2^2} - 1\Big)

    The ratio of variances is computed as :math:`e^{\log\sigma_1^2 - \log\sigma_2^2}`,
    so log-variances of :math:`\pm 30` do not overflow.

    Parameters
    ----------
    mu, log_var : torch.Tensor
        Parameters of the first Gaussian, shape ``[..., D]``.
    mu2, log_var2 : torch.Tensor, optional
        Parameters of the second Gaussian, same shape; give both or neither.
    reduce_sum : bool, default True
        Sum over the last (latent) dimension, returning ``[...]``; otherwise return
        the per-dimension terms ``[..., D]``.

    Returns
    -------
    torch.Tensor
        KL divergence in nats.
    """
    for name, value in (("mu", mu), ("log_var", log_var), ("mu2", mu2), ("log_var2", log_var2)):
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if mu is None or log_var is None:
        raise TypeError(f"{'mu' if mu is None else 'log_var'} must be a torch.Tensor, got None")
    if mu.shape != log_var.shape:
        raise ValueError(
            f"log_var must have the shape of mu = {list(mu.shape)}, got {list(log_var.shape)}"
        )
    if not isinstance(reduce_sum, bool):
        raise TypeError(f"reduce_sum must be True or False, got {reduce_sum!r}")
    if (mu2 is None) != (log_var2 is None):
        raise ValueError("mu2 and log_var2 must be given together (or both left as None)")
    if mu2 is None:
        kl = 0.5 * (mu * mu + torch.exp(log_var) - 1.0 - log_var)
    else:
        for name, value in (("mu2", mu2), ("log_var2", log_var2)):
            if value.shape != mu.shape:
                raise ValueError(
                    f"{name} must have the shape of mu = {list(mu.shape)}, got {list(value.shape)}"
                )
        diff = mu - mu2
        kl = 0.5 * (
            log_var2 - log_var + torch.exp(log_var - log_var2) + diff * diff * torch.exp(-log_var2) - 1.0
        )
    return kl.sum(dim=-1) if reduce_sum else kl


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    r"""Log density of a diagonal Gaussian, summed over the last dimension.

    .. math::

        \log \mathcal N(z; \mu, \operatorname{diag}\sigma^2)
        = -\tfrac12 \sum_j \Big(\frac{(z_j - \mu_j)^2}{\sigma_j^2}
          + \log \sigma_j^2 + \log 2\pi\Big)

    Shapes broadcast as in torch (e.g. ``z [B, S, D]`` against ``mu [B, 1, D]``);
    ``mu = log_var = 0`` gives the standard normal prior. Importance-sampled bounds
    (:meth:`~autoencoders.variational.VAE.log_marginal_likelihood`) and total
    correlation estimators need it.

    Parameters
    ----------
    z, mu, log_var : torch.Tensor
        Points, means and log-variances, ``[..., D]``.

    Returns
    -------
    torch.Tensor
        ``[...]`` log densities in nats.
    """
    for name, value in (("z", z), ("mu", mu), ("log_var", log_var)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return -0.5 * ((z - mu) ** 2 * torch.exp(-log_var) + log_var + _LOG_2PI).sum(-1)
