r"""Observation models :math:`p(x \mid \hat x)`: one registry entry per likelihood.

The decoder of every model outputs *distribution parameters*, never probabilities:
``x_hat`` is a mean for the Gaussian and Laplace likelihoods and a logit for the
Bernoulli and continuous Bernoulli likelihoods. Everything the package needs to know
about a likelihood sits in one :class:`Likelihood` entry:

- ``log_prob(x, x_hat)``: the elementwise log density;
- ``mean(x_hat)``: the expected image :math:`\mathbb E[x \mid \hat x]`, for plotting;
- ``log_normalizer``: a per-element constant that ``log_prob`` leaves out;
- ``support``: the targets it is defined for (``(0, 1)`` for the Bernoulli types);
- ``label``: how its images are described in figures.

A new likelihood is registered once and is then usable by name everywhere (models,
:func:`~autoencoders.train.fit`, :func:`~autoencoders.train.evaluate`, the plotting
helpers)::

    register_likelihood(Likelihood(
        "logistic", log_prob=my_log_prob, mean=lambda x_hat: x_hat, label="location x̂"))
    VAE(encoder, decoder, 20, likelihood="logistic")

A plain callable ``f(x, x_hat) -> log p`` is still accepted wherever a likelihood is;
it has no known mean, so the plotting helpers then need ``transform=``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import torch
import torch.nn.functional as F

__all__ = [
    "Likelihood",
    "LikelihoodType",
    "LikelihoodLike",
    "register_likelihood",
    "get_likelihood",
    "available_likelihoods",
    "resolve_likelihood",
    "log_likelihood",
    "log_likelihood_sum",
    "log_normalizer",
    "distribution_mean",
    "validate_target",
]

_LOG2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Below this |logit| the continuous-Bernoulli terms switch to their Taylor series,
# which are exact to float64 round-off there (next term ~ logit**6 / 1e5).
_CB_TAYLOR = 1e-2


@dataclass(frozen=True)
class Likelihood:
    r"""One observation model :math:`p(x \mid \hat x)`.

    Attributes
    ----------
    name : str
        Lower-case name under which it is registered.
    log_prob : callable
        ``log_prob(x, x_hat) -> tensor of x.shape``: the elementwise log density,
        possibly without a constant (see ``log_normalizer``).
    mean : callable, optional
        ``mean(x_hat) -> tensor``: :math:`\mathbb E[x \mid \hat x]`. ``None`` when
        unknown (plots then need an explicit ``transform``).
    log_normalizer : float, default 0.0
        Per-element constant that ``log_prob`` omits; adding it gives a normalised
        density, which importance-sampled marginal likelihoods need.
    support : (float, float), optional
        Closed interval the targets must lie in; ``None`` for any finite value.
    label : str, default ""
        How the displayed image relates to ``x_hat``, used in figure captions.
    log_prob_sum : callable, optional
        ``log_prob_sum(x, x_hat) -> scalar``: the sum of ``log_prob`` over all
        elements, computed by a fused kernel (for example
        ``binary_cross_entropy_with_logits(..., reduction="sum")``). Training only
        needs this sum, so a fused one saves a pass over the batch; without it the
        elementwise values are summed.
    """

    name: str
    log_prob: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    mean: Callable[[torch.Tensor], torch.Tensor] | None = None
    log_normalizer: float = 0.0
    support: tuple[float, float] | None = None
    label: str = ""
    log_prob_sum: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise TypeError(f"Likelihood name must be a non-empty str, got {self.name!r}")
        if not callable(self.log_prob):
            raise TypeError(f"log_prob must be callable f(x, x_hat), got {self.log_prob!r}")
        if self.log_prob_sum is not None and not callable(self.log_prob_sum):
            raise TypeError(f"log_prob_sum must be callable f(x, x_hat) or None, got {self.log_prob_sum!r}")
        if self.mean is not None and not callable(self.mean):
            raise TypeError(f"mean must be callable f(x_hat) or None, got {self.mean!r}")
        if self.support is not None and not (
            isinstance(self.support, tuple) and len(self.support) == 2 and self.support[0] < self.support[1]
        ):
            raise ValueError(f"support must be None or a pair (low, high) with low < high, got {self.support!r}")

    def __repr__(self) -> str:
        return f"Likelihood({self.name!r})"


class LikelihoodType(str, Enum):
    r"""Names of the built-in likelihoods (``x_hat`` is the decoder's raw output).

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


LikelihoodLike = str | LikelihoodType | Likelihood | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_REGISTRY: dict[str, Likelihood] = {}


def register_likelihood(likelihood: Likelihood, *, replace: bool = False) -> Likelihood:
    """Make ``likelihood`` usable by its name everywhere in the package.

    Raises
    ------
    TypeError
        If ``likelihood`` is not a :class:`Likelihood`.
    ValueError
        If the name is taken and ``replace`` is false.
    """
    if not isinstance(likelihood, Likelihood):
        raise TypeError(f"likelihood must be a Likelihood, got {type(likelihood).__name__}")
    key = likelihood.name.strip().lower()
    if key in _REGISTRY and not replace:
        raise ValueError(f"a likelihood named {key!r} is already registered; pass replace=True to replace it")
    _REGISTRY[key] = likelihood
    return likelihood


def available_likelihoods() -> list[str]:
    """Names of the registered likelihoods."""
    return list(_REGISTRY)


def get_likelihood(likelihood: LikelihoodLike) -> Likelihood:
    """The :class:`Likelihood` for a name (any case), a :class:`LikelihoodType`, a
    :class:`Likelihood` or a callable ``f(x, x_hat) -> elementwise log p``.

    A callable becomes an unregistered entry without a mean.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the registered names.
    TypeError
        For anything else.
    """
    if isinstance(likelihood, Likelihood):
        return likelihood
    if isinstance(likelihood, str):  # LikelihoodType is a str too
        key = likelihood.value if isinstance(likelihood, LikelihoodType) else likelihood.strip().lower()
        try:
            return _REGISTRY[key]
        except KeyError:
            valid = ", ".join(repr(n) for n in _REGISTRY)
            raise ValueError(
                f"likelihood must be one of {valid} or a callable f(x, x_hat), got {likelihood!r}"
            ) from None
    if callable(likelihood):
        name = getattr(likelihood, "__name__", type(likelihood).__name__)
        return Likelihood(name, log_prob=likelihood, label=f"{name}")
    raise TypeError(
        f"likelihood must be a str, Likelihood, LikelihoodType or callable, got {type(likelihood).__name__}"
    )


def resolve_likelihood(likelihood: LikelihoodLike) -> LikelihoodType | Callable | Likelihood:
    """Validate a likelihood argument and return it normalised: a :class:`LikelihoodType`
    for a built-in name, the registered :class:`Likelihood` for another name, else the
    callable or entry itself. Prefer :func:`get_likelihood`, which always returns a
    :class:`Likelihood`.
    """
    entry = get_likelihood(likelihood)
    if isinstance(likelihood, Likelihood | str):
        try:
            return LikelihoodType(entry.name)
        except ValueError:
            return entry
    return likelihood


# ------------------------------------------------------------------------ validation
def _target_problem(name: str, lo: float, hi: float, entry: Likelihood) -> str | None:
    """What is wrong with a target whose extreme values are ``lo`` and ``hi``, if anything."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return (
            f"{name} contains NaN or inf values (min {lo}, max {hi}); the likelihood is "
            "undefined there, so remove or repair those entries first"
        )
    if entry.support is not None and (lo < entry.support[0] or hi > entry.support[1]):
        low, high = entry.support
        hint = "; for 8-bit images use x / 255" if (low, high) == (0, 1) and 1 < hi <= 255 and lo >= 0 else ""
        return (
            f"{name} must lie in [{low:g}, {high:g}] for the {entry.name!r} likelihood, got "
            f"values in [{lo:g}, {hi:g}]{hint}"
        )
    return None


def validate_target(x: torch.Tensor, likelihood: LikelihoodLike, name: str = "x") -> None:
    r"""Check that ``x`` is a valid target for ``likelihood``.

    Every likelihood needs finite targets; one with a ``support`` (the Bernoulli and
    continuous Bernoulli: :math:`x \in [0, 1]`) needs them inside it, since outside it
    the "log density" is a finite, plausible-looking number that is not a log density
    of anything. The check reads the minimum and maximum of ``x`` (one device
    synchronisation).

    Raises
    ------
    ValueError
        Naming ``name``, the likelihood and the range found.
    """
    if x.numel() == 0:
        return
    lo, hi = torch.stack(torch.aminmax(x.detach())).to(torch.float64).tolist()
    problem = _target_problem(name, lo, hi, get_likelihood(likelihood))
    if problem:
        raise ValueError(problem)


# ------------------------------------------------------------------------- functions
def log_likelihood(
    x: torch.Tensor, x_hat: torch.Tensor, likelihood: LikelihoodLike, *, validate: bool = True
) -> torch.Tensor:
    r"""Elementwise log-likelihood :math:`\log p(x \mid \hat x)`.

    For the built-in likelihoods:

    .. math::

        \text{gaussian:}\quad & -\tfrac12 (x - \hat x)^2
            \qquad (\text{the constant } -\tfrac12\log 2\pi \text{ is omitted})\\
        \text{bernoulli:}\quad & x\,\hat x - \operatorname{softplus}(\hat x)
            \qquad (\hat x \text{ are logits})\\
        \text{continuous Bernoulli:}\quad & x\,\hat x - \operatorname{softplus}(\hat x)
            + \log \frac{\hat x}{\tanh(\hat x / 2)}\\
        \text{laplace:}\quad & -|x - \hat x| - \log 2

    Parameters
    ----------
    x : torch.Tensor
        Targets, any shape, floating point. For the Bernoulli-type likelihoods values
        lie in :math:`[0, 1]` (non-binary targets are allowed).
    x_hat : torch.Tensor
        Decoder output of **exactly** ``x.shape`` (no broadcasting).
    likelihood : str, Likelihood, LikelihoodType or callable
        A registered name (``'gaussian'``, ``'bernoulli'``, ``'continuous_bernoulli'``,
        ``'laplace'``, any case, or one added with :func:`register_likelihood`), an
        entry, or a callable ``f(x, x_hat)`` returning an elementwise log density of
        ``x.shape``.
    validate : bool, default True
        Check the targets with :func:`validate_target` (finite; inside the
        likelihood's support). That costs one device synchronisation, so the models'
        ``compute_loss`` passes ``False`` and folds the same check into the single
        transfer of its diagnostics
        (:func:`~autoencoders.loss.float_diagnostics`).

    Returns
    -------
    torch.Tensor
        Log-likelihood of every element, shape ``x.shape``.

    Raises
    ------
    ValueError
        If the shapes differ, the name is unknown, the log density has the wrong
        shape, or (with ``validate``) the targets are not finite or out of range.
    TypeError
        If ``x`` or ``x_hat`` is not a floating-point tensor, or ``validate`` is not a
        bool.
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
    entry = get_likelihood(likelihood)
    if not isinstance(validate, bool):
        raise TypeError(f"validate must be True or False, got {validate!r}")
    if validate:
        validate_target(x, entry)
    out = entry.log_prob(x, x_hat)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"likelihood {entry.name!r} must return an elementwise log density of shape "
            f"{list(x.shape)}, got {got}"
        )
    return out


def log_likelihood_sum(
    x: torch.Tensor, x_hat: torch.Tensor, likelihood: LikelihoodLike, *, validate: bool = True
) -> torch.Tensor:
    r"""Total log-likelihood :math:`\sum_i \log p(x_i \mid \hat x_i)` over all elements,
    a scalar.

    Equal to ``log_likelihood(x, x_hat, likelihood).sum()``, but uses the entry's fused
    ``log_prob_sum`` when it has one (the built-in Gaussian, Bernoulli and Laplace do),
    which is what a training step needs. Arguments and errors are those of
    :func:`log_likelihood`.
    """
    entry = get_likelihood(likelihood)
    if entry.log_prob_sum is None or not isinstance(x, torch.Tensor) or not isinstance(x_hat, torch.Tensor):
        return log_likelihood(x, x_hat, entry, validate=validate).sum()
    if x.shape != x_hat.shape or not x.is_floating_point() or not x_hat.is_floating_point():
        return log_likelihood(x, x_hat, entry, validate=validate).sum()  # raises the same errors
    if not isinstance(validate, bool):
        raise TypeError(f"validate must be True or False, got {validate!r}")
    if validate:
        validate_target(x, entry)
    return entry.log_prob_sum(x, x_hat)


def log_normalizer(likelihood: LikelihoodLike) -> float:
    r"""Per-element constant that :func:`log_likelihood` leaves out.

    Among the built-ins only the Gaussian omits one, :math:`-\tfrac12\log 2\pi`;
    adding it gives a proper density, which importance-sampled marginal likelihoods
    need. Callables are assumed to be normalised already (returns 0).
    """
    return get_likelihood(likelihood).log_normalizer


def distribution_mean(x_hat: torch.Tensor, likelihood: LikelihoodLike) -> torch.Tensor:
    r"""The expected value :math:`\mathbb E[x \mid \hat x]` of the observation model.

    .. math::

        \text{gaussian, laplace:}\quad & \hat x\\
        \text{bernoulli:}\quad & \sigma(\hat x)\\
        \text{continuous Bernoulli:}\quad &
            \frac{\sigma(\hat x)}{\tanh(\hat x/2)} - \frac{1}{\hat x}
            \quad(\to \tfrac12 + \hat x/12 \text{ near } 0)

    Use it to turn decoder outputs into images. Note that the mean of a continuous
    Bernoulli is *not* :math:`\sigma(\hat x)`.

    Raises
    ------
    ValueError
        For a likelihood without a known mean (a plain callable).
    """
    entry = get_likelihood(likelihood)
    if entry.mean is None:
        raise ValueError(
            f"distribution_mean cannot infer the mean of likelihood {entry.name!r} (a callable "
            "without a registered mean); pass a registered likelihood or transform x_hat yourself"
        )
    return entry.mean(x_hat)


# ------------------------------------------------------------------------- built-ins
def _gaussian(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x - x_hat) ** 2


def _bernoulli(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(x_hat, x, reduction="none")


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


def _continuous_bernoulli(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return _bernoulli(x, x_hat) + _continuous_bernoulli_log_norm(x_hat)


def _continuous_bernoulli_mean(x_hat: torch.Tensor) -> torch.Tensor:
    small = x_hat.abs() < _CB_TAYLOR
    safe = torch.where(small, torch.ones_like(x_hat), x_hat)
    far = torch.sigmoid(safe) / torch.tanh(safe / 2) - 1.0 / safe
    return torch.where(small, 0.5 + x_hat / 12.0, far)


def _laplace(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return -(x - x_hat).abs() - _LOG2


def _identity(x_hat: torch.Tensor) -> torch.Tensor:
    return x_hat


def _gaussian_sum(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return -0.5 * F.mse_loss(x_hat, x, reduction="sum")


def _bernoulli_sum(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(x_hat, x, reduction="sum")


def _laplace_sum(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return -F.l1_loss(x_hat, x, reduction="sum") - _LOG2 * x.numel()


for _entry in (
    Likelihood("gaussian", _gaussian, _identity, -_HALF_LOG_2PI, None, "Gaussian mean x̂", _gaussian_sum),
    Likelihood("bernoulli", _bernoulli, torch.sigmoid, 0.0, (0.0, 1.0), "sigmoid(x̂)", _bernoulli_sum),
    Likelihood(
        "continuous_bernoulli", _continuous_bernoulli, _continuous_bernoulli_mean, 0.0, (0.0, 1.0),
        "continuous-Bernoulli mean of x̂",
    ),
    Likelihood("laplace", _laplace, _identity, 0.0, None, "Laplace location x̂", _laplace_sum),
):
    register_likelihood(_entry)
