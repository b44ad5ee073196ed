r"""Log-likelihoods, Gaussian KL divergences and the :class:`LossResult` container.

This module holds math only, no models. Every function works elementwise or per
example, is written to be numerically stable over the ranges met in training (logits
of :math:`\pm 50`, log-variances of :math:`\pm 30`), and is tested against
:mod:`torch.distributions`.

The decoder of every model outputs *distribution parameters*, never probabilities:
``x_hat`` is a mean for the Gaussian and Laplace likelihoods and a logit for the
Bernoulli and continuous Bernoulli likelihoods. :func:`distribution_mean` turns those
parameters into the expected image for plotting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

import torch
import torch.nn.functional as F

__all__ = [
    "LossResult",
    "LikelihoodType",
    "LikelihoodLike",
    "log_likelihood",
    "log_normalizer",
    "kl_divergence_diag_gaussian",
    "distribution_mean",
    "resolve_likelihood",
    "float_diagnostics",
    "validate_target",
]

_LOG2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Below this |logit| the continuous-Bernoulli terms switch to their Taylor series,
# which are exact to float64 round-off there (next term ~ logit**6 / 1e5).
_CB_TAYLOR = 1e-2


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
        Targets to validate as :func:`validate_target` does, named by the argument
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
        problem = _target_problem(name, lo, hi, resolve_likelihood(likelihood))
        if problem:
            raise ValueError(problem)
    return dict(zip(names, flat[: len(names)]))


class LikelihoodType(str, Enum):
    r"""The built-in observation models :math:`p(x \mid z)`.

    ``x_hat`` is always the decoder's raw output:

    ``GAUSSIAN``
        Unit-variance Gaussian with mean ``x_hat``; the log density omits the constant
        :math:`-\tfrac12\log 2\pi` per element, so it equals :math:`-\tfrac12(x-\hat x)^2`.
    ``BERNOULLI``
        ``x_hat`` are logits; targets may lie anywhere in :math:`[0, 1]`.
    ``CONTINUOUS_BERNOULLI``
        ``x_hat`` are logits of the continuous Bernoulli distribution
        :cite:p:`loaiza2019continuous`, including its normalising constant.
    ``LAPLACE``
        Unit-scale Laplace with location ``x_hat``.
    """

    GAUSSIAN = "gaussian"
    BERNOULLI = "bernoulli"
    CONTINUOUS_BERNOULLI = "continuous_bernoulli"
    LAPLACE = "laplace"


LikelihoodLike = str | LikelihoodType | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def resolve_likelihood(likelihood: LikelihoodLike) -> LikelihoodType | Callable:
    """Normalise a likelihood argument: a name (any case), a :class:`LikelihoodType`
    or a callable ``f(x, x_hat) -> elementwise log p``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    TypeError
        For anything that is neither a string nor a callable.
    """
    if isinstance(likelihood, LikelihoodType):
        return likelihood
    if isinstance(likelihood, str):
        try:
            return LikelihoodType(likelihood.strip().lower())
        except ValueError:
            valid = ", ".join(repr(t.value) for t in LikelihoodType)
            raise ValueError(
                f"likelihood must be one of {valid} or a callable f(x, x_hat), got {likelihood!r}"
            ) from None
    if callable(likelihood):
        return likelihood
    raise TypeError(
        f"likelihood must be a str, LikelihoodType or callable, got {type(likelihood).__name__}"
    )


_UNIT_INTERVAL = ("bernoulli", "continuous_bernoulli")


def _target_problem(name: str, lo: float, hi: float, kind: LikelihoodType | Callable) -> str | None:
    """What is wrong with a target whose extreme values are ``lo`` and ``hi``, if anything."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return (
            f"{name} contains NaN or inf values (min {lo}, max {hi}); the likelihood is "
            "undefined there, so remove or repair those entries first"
        )
    if isinstance(kind, LikelihoodType) and kind.value in _UNIT_INTERVAL and (lo < 0 or hi > 1):
        hint = "; for 8-bit images use x / 255" if 1 < hi <= 255 and lo >= 0 else ""
        return (
            f"{name} must lie in [0, 1] for the {kind.value!r} likelihood, got values in "
            f"[{lo:g}, {hi:g}]{hint}"
        )
    return None


def validate_target(x: torch.Tensor, likelihood: LikelihoodLike, name: str = "x") -> None:
    r"""Check that ``x`` is a valid target for ``likelihood``.

    Every likelihood needs finite targets; the Bernoulli and continuous Bernoulli
    likelihoods need :math:`x \in [0, 1]`, since outside it their "log density" is a
    finite, plausible-looking number that is not a log density of anything. The check
    reads the minimum and maximum of ``x`` (one device synchronisation).

    Raises
    ------
    ValueError
        Naming ``name``, the likelihood and the range found.
    """
    if x.numel() == 0:
        return
    lo, hi = torch.stack(torch.aminmax(x.detach())).to(torch.float64).tolist()
    problem = _target_problem(name, lo, hi, resolve_likelihood(likelihood))
    if problem:
        raise ValueError(problem)


def _continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    r"""Log normalising constant :math:`\log C(\eta)` of the continuous Bernoulli.

    With :math:`\lambda = \sigma(\eta)`, :math:`C = \frac{2\,\mathrm{artanh}(1-2\lambda)}
    {1-2\lambda} = \frac{\eta}{\tanh(\eta/2)}`, which tends to 2 at :math:`\eta = 0`.
    For :math:`a = |\eta|` away from zero we use
    :math:`\log C = \log a - \log(1-e^{-a}) + \log(1+e^{-a})`; near zero the series
    :math:`\log 2 + \eta^2/12 - 7\eta^4/1440`.
    """
    a = logits.abs()
    small = a < _CB_TAYLOR
    safe = torch.where(small, torch.full_like(a, 1.0), a)
    far = torch.log(safe) - torch.log1p(-torch.exp(-safe)) + torch.log1p(torch.exp(-safe))
    sq = logits * logits
    near = _LOG2 + sq / 12.0 - 7.0 * sq * sq / 1440.0
    return torch.where(small, near, far)


def log_likelihood(
    x: torch.Tensor, x_hat: torch.Tensor, likelihood: LikelihoodLike, *, validate: bool = True
) -> torch.Tensor:
    r"""Elementwise log-likelihood :math:`\log p(x \mid \hat x)`.

    .. math::

        \text{gaussian:}\quad & -\tfrac12 (x - \hat x)^2
            \qquad (\text{the constant } -\tfrac12\log 2\pi \text{ is omitted})\\
        \text{bernoulli:}\quad & x\,\hat x - \operatorname{softplus}(\hat x)
            \qquad (\hat x \text{ are logits})\\
        \text{continuous\_bernoulli:}\quad & x\,\hat x - \operatorname{softplus}(\hat x)
            + \log \frac{\hat x}{\tanh(\hat x / 2)}\\
        \text{laplace:}\quad & -|x - \hat x| - \log 2

    Parameters
    ----------
    x : torch.Tensor
        Targets, any shape. For the Bernoulli-type likelihoods values lie in
        :math:`[0, 1]` (non-binary targets are allowed).
    x_hat : torch.Tensor
        Decoder output of **exactly** ``x.shape`` (no broadcasting).
    likelihood : str, LikelihoodType or callable
        ``'gaussian'``, ``'bernoulli'``, ``'continuous_bernoulli'``, ``'laplace'``
        (case-insensitive), or a callable ``f(x, x_hat)`` returning an elementwise
        log density of ``x.shape``.
    validate : bool, default True
        Check the targets with :func:`validate_target` (finite; in :math:`[0, 1]` for
        the Bernoulli types). That costs one device synchronisation, so the models'
        ``compute_loss`` passes ``False`` and folds the same check into the single
        transfer of its diagnostics (:func:`float_diagnostics`).

    Returns
    -------
    torch.Tensor
        Log-likelihood of every element, shape ``x.shape``.

    Raises
    ------
    ValueError
        If the shapes differ, the name is unknown, a callable returns the wrong shape,
        or (with ``validate``) the targets are not finite or out of range.
    TypeError
        If ``validate`` is not a bool.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(x_hat, torch.Tensor):
        raise TypeError(
            f"x and x_hat must be tensors, got {type(x).__name__} and {type(x_hat).__name__}"
        )
    for name, value in (("x", x), ("x_hat", x_hat)):
        if not value.is_floating_point():
            raise TypeError(
                f"{name} must be a floating-point tensor, got {str(value.dtype).removeprefix('torch.')}"
                f"; use {name}.float()" + (" / 255 for 8-bit pixels" if name == "x" else "")
            )
    if x.shape != x_hat.shape:
        raise ValueError(
            f"x_hat must have the shape of x = {list(x.shape)}, got {list(x_hat.shape)}"
        )
    kind = resolve_likelihood(likelihood)
    if not isinstance(validate, bool):
        raise TypeError(f"validate must be True or False, got {validate!r}")
    if validate:
        validate_target(x, kind)
    if kind is LikelihoodType.GAUSSIAN:
        return -0.5 * (x - x_hat) ** 2
    if kind is LikelihoodType.BERNOULLI:
        return -F.binary_cross_entropy_with_logits(x_hat, x, reduction="none")
    if kind is LikelihoodType.CONTINUOUS_BERNOULLI:
        bce = F.binary_cross_entropy_with_logits(x_hat, x, reduction="none")
        return -bce + _continuous_bernoulli_log_norm(x_hat)
    if kind is LikelihoodType.LAPLACE:
        return -(x - x_hat).abs() - _LOG2
    out = kind(x, x_hat)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"a likelihood callable must return an elementwise log density of shape "
            f"{list(x.shape)}, got {got}"
        )
    return out


def log_normalizer(likelihood: LikelihoodLike) -> float:
    r"""Per-element constant that :func:`log_likelihood` leaves out.

    Only the Gaussian omits one, :math:`-\tfrac12\log 2\pi`; adding it gives a proper
    density, which importance-sampled marginal likelihoods need. Callables are
    assumed to be normalised already (returns 0).
    """
    kind = resolve_likelihood(likelihood)
    return -_HALF_LOG_2PI if kind is LikelihoodType.GAUSSIAN else 0.0


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


def distribution_mean(x_hat: torch.Tensor, likelihood: LikelihoodLike) -> torch.Tensor:
    r"""The expected value :math:`\mathbb E[x \mid \hat x]` of the observation model.

    .. math::

        \text{gaussian, laplace:}\quad & \hat x\\
        \text{bernoulli:}\quad & \sigma(\hat x)\\
        \text{continuous\_bernoulli:}\quad &
            \frac{\sigma(\hat x)}{\tanh(\hat x/2)} - \frac{1}{\hat x}
            \quad(\to \tfrac12 + \hat x/12 \text{ near } 0)

    Use it to turn decoder outputs into images. Note that the mean of a continuous
    Bernoulli is *not* :math:`\sigma(\hat x)`.

    Raises
    ------
    ValueError
        For a callable likelihood, whose mean this function cannot know.
    """
    kind = resolve_likelihood(likelihood)
    if kind in (LikelihoodType.GAUSSIAN, LikelihoodType.LAPLACE):
        return x_hat
    if kind is LikelihoodType.BERNOULLI:
        return torch.sigmoid(x_hat)
    if kind is LikelihoodType.CONTINUOUS_BERNOULLI:
        small = x_hat.abs() < _CB_TAYLOR
        safe = torch.where(small, torch.ones_like(x_hat), x_hat)
        far = torch.sigmoid(safe) / torch.tanh(safe / 2) - 1.0 / safe
        return torch.where(small, 0.5 + x_hat / 12.0, far)
    raise ValueError(
        "distribution_mean cannot infer the mean of a callable likelihood; pass the "
        "name of a built-in likelihood or transform x_hat yourself"
    )
