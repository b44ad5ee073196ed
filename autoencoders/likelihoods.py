r"""Observation models :math:`p(x \mid \hat x)`: one registry entry per likelihood.

The decoder of every model outputs *distribution parameters*, never probabilities:
``x_hat`` is a mean for the Gaussian and Laplace likelihoods and a logit for the
Bernoulli and continuous Bernoulli likelihoods. The two likelihoods of 8-bit images
(grey levels :math:`k/255`), ``'discretized_logistic'`` and ``'categorical256'``,
give a probability to each of the 256 levels, so their log-likelihoods are in bits of
the actual data; their decoders output a location and a log-scale map, or 256 logit
maps, per image channel. Everything the package needs to know
about a likelihood sits in one :class:`Likelihood` entry:

- ``log_prob(x, x_hat)``: the elementwise log density;
- ``mean(x_hat)``: the expected image :math:`\mathbb E[x \mid \hat x]`, for plotting;
- ``log_normalizer``: a per-element constant that ``log_prob`` leaves out;
- ``support``: the targets it is defined for (``(0, 1)`` for the Bernoulli types);
- ``label``: how its images are described in figures;
- ``param_channels``: how many decoder channels it reads per image channel (1 for
  the one-parameter likelihoods; 2 and 256 for the two likelihoods of 8-bit images,
  whose decoder therefore outputs more channels than the image has, see
  :func:`parameter_shape`);
- ``check_target``: any check of the targets beyond ``support`` (the 8-bit
  likelihoods require grey levels :math:`k/255`).

A new likelihood is registered once and is then usable by name everywhere (models,
:func:`~autoencoders.train.fit`, :func:`~autoencoders.train.evaluate`, the plotting
helpers)::

    register_likelihood(Likelihood(
        "logistic", log_prob=my_log_prob, mean=lambda x_hat: x_hat,
        label="location x̂"))
    VAE(encoder, decoder, 20, likelihood="logistic")

A plain callable ``f(x, x_hat) -> log p`` is still accepted wherever a likelihood is;
it has no known mean, so the plotting helpers then need ``transform=``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
    "parameter_shape",
    "discretized_logistic_log_prob",
    "discretized_logistic_mean",
]

_LOG2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Below this |logit| the continuous-Bernoulli terms switch to their Taylor series,
# which are exact to float64 round-off there (next term ~ logit**6 / 1e5).
_CB_TAYLOR = 1e-2
# 8-bit images: 256 grey levels k / 255. A float32 k / 255 times 255 is within
# 1e-4 of k, so targets farther than this (in grey levels) from the grid are rejected.
_LEVELS = 256
_GRID_TOLERANCE = 1e-3


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
    param_channels : int, default 1
        Decoder channels per image channel, :math:`K`. With :math:`K > 1` the targets
        are images ``[..., C, H, W]`` and ``x_hat`` is ``[..., K * C, H, W]``, read as
        ``x_hat.unflatten(-3, (K, C))``: :math:`K` parameter maps, each with the
        image's :math:`C` channels (see :func:`parameter_shape`). ``log_prob`` and
        ``mean`` then return tensors of the *target's* shape.
    check_target : callable, optional
        ``check_target(x, name) -> str or None``: a problem with the targets that
        ``support`` cannot express (for example values off the 8-bit grid), as an
        error message naming ``name``, or ``None``. :func:`validate_target` runs it.
    """

    name: str
    log_prob: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    mean: Callable[[torch.Tensor], torch.Tensor] | None = None
    log_normalizer: float = 0.0
    support: tuple[float, float] | None = None
    label: str = ""
    log_prob_sum: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    param_channels: int = 1
    check_target: Callable[[torch.Tensor, str], str | None] | None = None

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
        if isinstance(self.param_channels, bool) or not isinstance(self.param_channels, int) or self.param_channels < 1:
            raise ValueError(f"param_channels must be a positive int, got {self.param_channels!r}")
        if self.check_target is not None and not callable(self.check_target):
            raise TypeError(f"check_target must be callable f(x, name) or None, got {self.check_target!r}")

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

    These four read one decoder output per pixel. The two likelihoods of 8-bit images,
    ``'discretized_logistic'`` :cite:p:`salimans2017pixelcnn` and ``'categorical256'``,
    read several (see :func:`parameter_shape`) and are registered by name only.
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

    Every likelihood needs finite targets; one with a ``support`` (the Bernoulli,
    continuous Bernoulli and 8-bit likelihoods: :math:`x \in [0, 1]`) needs them
    inside it, since outside it the "log density" is a finite, plausible-looking number
    that is not a log density of anything. The check reads the minimum and maximum of
    ``x`` (one device synchronisation). A likelihood with a ``check_target`` runs it
    next: the 8-bit likelihoods require grey levels :math:`x = k/255`,
    :math:`k \in \{0, \dots, 255\}` (within :math:`10^{-3}` of a level, in units of
    one level), one more synchronisation.

    Raises
    ------
    ValueError
        Naming ``name``, the likelihood, what was expected and what was found.
    """
    if x.numel() == 0:
        return
    entry = get_likelihood(likelihood)
    lo, hi = torch.stack(torch.aminmax(x.detach())).to(torch.float64).tolist()
    problem = _target_problem(name, lo, hi, entry)
    if problem is None and entry.check_target is not None:
        problem = entry.check_target(x, name)
    if problem:
        raise ValueError(problem)


def parameter_shape(likelihood: LikelihoodLike, shape: Sequence[int]) -> torch.Size:
    r"""The shape of the decoder output ``x_hat`` that ``likelihood`` needs for targets
    of shape ``shape``.

    A likelihood with one parameter per element (every built-in except the two 8-bit
    ones) needs ``x_hat`` of the target's own shape. One with
    :math:`K` = ``param_channels`` parameters per element reads images
    ``[..., C, H, W]`` from ``x_hat`` of shape ``[..., K C, H, W]``, laid out as
    ``x_hat.unflatten(-3, (K, C))``: parameter map :math:`k` of channel :math:`c` is
    channel :math:`kC + c`. For a one-channel image the :math:`K` channels are simply
    the :math:`K` parameters. Give the decoder that many output channels, for example
    ``MLPDecoder(latent_dim, out_shape=parameter_shape("categorical256", (1, 28, 28)))``.

    Parameters
    ----------
    likelihood : str, Likelihood, LikelihoodType or callable
    shape : sequence of int
        Shape of the targets, with or without leading batch dimensions.

    Returns
    -------
    torch.Size
        ``shape`` itself, or ``[..., K * C, H, W]``.

    Raises
    ------
    ValueError
        If :math:`K > 1` and ``shape`` has fewer than three dimensions ``(C, H, W)``.

    Examples
    --------
    >>> parameter_shape("discretized_logistic", (32, 3, 8, 8))
    torch.Size([32, 6, 8, 8])
    >>> parameter_shape("bernoulli", (32, 784))
    torch.Size([32, 784])
    """
    entry = get_likelihood(likelihood)
    shape = torch.Size(shape)
    k = entry.param_channels
    if k == 1:
        return shape
    if len(shape) < 3:
        raise ValueError(
            f"the {entry.name!r} likelihood needs image targets [..., C, H, W] (its decoder "
            f"outputs {k} maps per channel), got targets of shape {list(shape)}"
        )
    return torch.Size((*shape[:-3], k * shape[-3], *shape[-2:]))


def _check_parameter_shape(x: torch.Tensor, x_hat: torch.Tensor, entry: Likelihood) -> None:
    """Raise a ``ValueError`` unless ``x_hat`` has the shape ``entry`` needs for ``x``."""
    if entry.param_channels == 1:
        if x.shape != x_hat.shape:
            raise ValueError(f"x_hat must have the shape of x = {list(x.shape)}, got {list(x_hat.shape)}")
        return
    expected = parameter_shape(entry, x.shape)
    if x_hat.shape != expected:
        k = entry.param_channels
        raise ValueError(
            f"x_hat must have shape [..., {k} * C, H, W] = {list(expected)} for the {entry.name!r} "
            f"likelihood ({k} parameter maps per channel of x = {list(x.shape)}), got "
            f"{list(x_hat.shape)}; see parameter_shape"
        )


# ------------------------------------------------------------------------- functions
def log_likelihood(
    x: torch.Tensor, x_hat: torch.Tensor, likelihood: LikelihoodLike, *, validate: bool = True
) -> torch.Tensor:
    r"""Elementwise log-likelihood :math:`\log p(x \mid \hat x)`.

    For the built-in likelihoods:

    .. math::

        \text{gaussian:}\quad & -\tfrac12 (x - \hat x)^2
            \qquad (\text{without the constant } -\tfrac12\log 2\pi)\\
        \text{bernoulli:}\quad & x\,\hat x - \operatorname{softplus}(\hat x)
            \qquad (\hat x \text{ are logits})\\
        \text{continuous Bernoulli:}\quad & x\,\hat x - \operatorname{softplus}(\hat x)
            + \log \frac{\hat x}{\tanh(\hat x / 2)}\\
        \text{laplace:}\quad & -|x - \hat x| - \log 2

    and for 8-bit images :math:`x = k/255` the log-probability of the grey level
    :math:`k`: the mass of bin :math:`k` under a logistic for
    ``'discretized_logistic'`` (see :func:`discretized_logistic_log_prob`), or
    :math:`\log\operatorname{softmax}(\hat x_{:, i})_k` over 256 logits for
    ``'categorical256'``.

    Parameters
    ----------
    x : torch.Tensor
        Targets, any shape, floating point. For the Bernoulli-type likelihoods values
        lie in :math:`[0, 1]` (non-binary targets are allowed); for the 8-bit ones they
        are images ``[..., C, H, W]`` of grey levels :math:`k/255`.
    x_hat : torch.Tensor
        Decoder output of **exactly** ``x.shape`` (no broadcasting), or, for a
        likelihood with several parameters per element (the 8-bit ones),
        ``parameter_shape(likelihood, x.shape)``, that is ``[..., K * C, H, W]``.
    likelihood : str, Likelihood, LikelihoodType or callable
        A registered name (``'gaussian'``, ``'bernoulli'``, ``'continuous_bernoulli'``,
        ``'laplace'``, ``'discretized_logistic'``, ``'categorical256'``, any case, or
        one added with :func:`register_likelihood`), an entry, or a callable
        ``f(x, x_hat)`` returning an elementwise log density of ``x.shape``.
    validate : bool, default True
        Check the targets with :func:`validate_target` (finite; inside the
        likelihood's support; on the 8-bit grid where required). That costs one device
        synchronisation, so the models' ``compute_loss`` passes ``False`` and folds
        the finiteness and range checks into the single transfer of its diagnostics
        (:func:`~autoencoders.loss.float_diagnostics`).

    Returns
    -------
    torch.Tensor
        Log-likelihood of every element, shape ``x.shape``.

    Raises
    ------
    ValueError
        If ``x_hat`` does not have the shape the likelihood needs, the name is
        unknown, the log density has the wrong shape, or (with ``validate``) the
        targets are not finite, out of range or off the 8-bit grid.
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
    entry = get_likelihood(likelihood)
    _check_parameter_shape(x, x_hat, entry)
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
    if (
        not x.is_floating_point()
        or not x_hat.is_floating_point()
        or (entry.param_channels > 1 and x.dim() < 3)
        or x_hat.shape != parameter_shape(entry, x.shape)
    ):
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
            \quad(\to \tfrac12 + \hat x/12 \text{ near } 0)\\
        \text{discretised logistic:}\quad &
            \frac{1}{255}\sum_{k=1}^{255} P(\text{level} \ge k)\\
        \text{categorical256:}\quad &
            \sum_{k=0}^{255} \frac{k}{255}\operatorname{softmax}(\hat x_{:, i})_k

    Use it to turn decoder outputs into images. Note that the mean of a continuous
    Bernoulli is *not* :math:`\sigma(\hat x)`. For the 8-bit likelihoods ``x_hat`` is
    ``[..., K * C, H, W]`` and the mean is the image ``[..., C, H, W]`` (the
    discretised logistic's is :func:`discretized_logistic_mean`).

    Raises
    ------
    ValueError
        For a likelihood without a known mean (a plain callable), or an ``x_hat`` whose
        channels are not a multiple of the likelihood's ``param_channels``.
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


# ------------------------------------------------------------------ 8-bit likelihoods
def _eight_bit_problem(x: torch.Tensor, name: str) -> str | None:
    """Whether ``x`` (already known to be finite and in [0, 1]) is off the grid k / 255."""
    levels = x.detach().to(torch.float64) * (_LEVELS - 1)
    off = (levels - levels.round()).abs().flatten()
    worst, where = off.max(0)
    worst, value = torch.stack((worst, x.detach().flatten()[where].to(torch.float64))).tolist()
    if worst <= _GRID_TOLERANCE:
        return None
    return (
        f"{name} must hold 8-bit grey levels k / 255 (k = 0, ..., 255) for an 8-bit likelihood, "
        f"got {value:.6g} = {value * (_LEVELS - 1):.4f} / 255, {worst:.3g} levels off the grid; "
        "quantise with torch.round(x * 255) / 255"
    )


def _parameter_maps(x_hat: torch.Tensor, k: int, name: str) -> torch.Tensor:
    """``x_hat [..., k C, H, W]`` viewed as ``[..., k, C, H, W]``."""
    if x_hat.dim() < 3 or x_hat.shape[-3] % k:
        raise ValueError(
            f"x_hat of the {name!r} likelihood must have shape [..., {k} * C, H, W], got "
            f"{list(x_hat.shape)}"
        )
    return x_hat.unflatten(-3, (k, x_hat.shape[-3] // k))


def _grey_levels(x: torch.Tensor) -> torch.Tensor:
    """The integer grey levels ``round(255 x)`` of 8-bit targets, clamped to 0..255."""
    return torch.round(x.detach() * (_LEVELS - 1)).clamp_(0, _LEVELS - 1).long()


def _log1mexp(log_d: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(1 - e^{-d})` for :math:`d = e^{\log d} > 0`, accurate for every ``d``.

    Large :math:`d`: ``log1p(-exp(-d))``; :math:`d \le \log 2`: ``log(-expm1(-d))``
    :cite:p:`maechler2012accurately`; tiny :math:`d`, where :math:`e^{\log d}` may
    underflow: the series :math:`\log d - d/2`. Each branch gets a safe argument, so
    the unused ones give neither NaN values nor NaN gradients.
    """
    d = log_d.exp()
    tiny = log_d < -12.0
    mid = d <= _LOG2
    small_d = torch.where(tiny | ~mid, torch.full_like(d, 0.5), d)
    large_d = torch.where(mid, torch.full_like(d, 1.0), d)
    return torch.where(
        tiny,
        log_d - 0.5 * d,
        torch.where(mid, torch.log(-torch.expm1(-small_d)), torch.log1p(-torch.exp(-large_d))),
    )


def discretized_logistic_log_prob(x: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    r"""Log-probability of 8-bit grey levels under a discretised logistic.

    The PixelCNN++ observation model :cite:p:`salimans2017pixelcnn` with a single
    logistic. A grey level :math:`x = k/255` is moved to :math:`y = 2x - 1 \in [-1, 1]`,
    where the 256 levels are :math:`2/255` apart, and gets the mass of its bin under a
    logistic with location :math:`\mu` and scale :math:`s = e^{\log s}`; the two edge
    bins take the tails:

    .. math::

        P(k) = \begin{cases}
            F\big(y + \tfrac{1}{255}\big) & k = 0\\
            F\big(y + \tfrac{1}{255}\big) - F\big(y - \tfrac{1}{255}\big)
                & 0 < k < 255\\
            1 - F\big(y - \tfrac{1}{255}\big) & k = 255
        \end{cases}
        \qquad F(t) = \sigma\Big(\frac{t - \mu}{s}\Big),

    so :math:`\sum_{k=0}^{255} P(k) = 1`. With :math:`a, b = (y \pm \tfrac{1}{255} - \mu)/s`
    the terms are computed in log space, never as a difference of probabilities:
    :math:`\log F = \log\sigma(a) = -\operatorname{softplus}(-a)`,
    :math:`\log(1 - F) = -\operatorname{softplus}(b)` and, exactly,

    .. math::

        \log\big(\sigma(a) - \sigma(b)\big) &= \log\sigma(a) + \log\sigma(-b)
            + \log\big(1 - e^{-(a - b)}\big),\\
        a - b &= \frac{2}{255\,s}.

    This form has no cancellation: where :math:`\sigma(a) - \sigma(b)` would round to 0
    (a very wide logistic, or a bin far in a tail) it stays accurate, so it needs no
    fallback to the density times the bin width, the approximation PixelCNN++ switches
    to there; for :math:`s \gg 2/255` it tends to that value,
    :math:`\log\frac{2}{255} + \log p_{\text{logistic}}(y)`. The bin edges are computed
    from the integer level :math:`k`, so neighbouring bins share bit-identical edges and
    the masses sum to one even when :math:`s` is below the float resolution of
    :math:`y`. Values and gradients are finite as long as :math:`(|\mu| + 1)/s` is finite
    in the dtype (in float32, for example, :math:`|\mu| \le 10^4` with
    :math:`\log s \ge -60`).

    Parameters
    ----------
    x : torch.Tensor
        Grey levels :math:`k/255` in :math:`[0, 1]`, any shape (not checked here; see
        :func:`validate_target`).
    loc : torch.Tensor
        Location :math:`\mu` on the :math:`[-1, 1]` scale, ``x.shape``.
    log_scale : torch.Tensor
        :math:`\log s` on the :math:`[-1, 1]` scale, ``x.shape`` or broadcastable to it
        (for example one learnable scalar).

    Returns
    -------
    torch.Tensor
        :math:`\log P(k)`, shape ``x.shape``, at most 0.
    """
    # Bin edges y -+ 1/255 = (2k - 256) / 255 and (2k - 254) / 255 from the integer
    # level k: neighbouring bins then share bit-identical edges, so the masses add up
    # to 1 even when s is far below the float resolution of y.
    k = _grey_levels(x)
    inv_s = torch.exp(-log_scale)
    upper = ((2 * k - (_LEVELS - 2)).to(loc.dtype) / (_LEVELS - 1) - loc) * inv_s
    lower = ((2 * k - _LEVELS).to(loc.dtype) / (_LEVELS - 1) - loc) * inv_s
    log_cdf_upper = F.logsigmoid(upper)  # log F(y + 1/255)
    log_sf_lower = F.logsigmoid(-lower)  # log(1 - F(y - 1/255))
    log_width = math.log(2.0 / (_LEVELS - 1)) - log_scale  # log(a - b), without a - b
    log_bin = log_cdf_upper + log_sf_lower + _log1mexp(log_width)
    return torch.where(k == 0, log_cdf_upper, torch.where(k == _LEVELS - 1, log_sf_lower, log_bin))


def discretized_logistic_mean(loc: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    r"""The mean grey level :math:`\mathbb E[x]` of the discretised logistic, in :math:`[0, 1]`.

    With :math:`x = k/255` and :math:`e_k = \frac{2k - 1}{255} - 1` the lower edge of
    bin :math:`k` on the :math:`[-1, 1]` scale,

    .. math::

        \mathbb E[x] = \frac{1}{255}\,\mathbb E[k]
            = \frac{1}{255}\sum_{k=1}^{255} P(\text{level} \ge k)
            = \frac{1}{255}\sum_{k=1}^{255} \sigma\Big(\frac{\mu - e_k}{s}\Big).

    It is the expectation of the 8-bit distribution, edge bins included, which is what
    plots show; it differs from the location :math:`(\mu + 1)/2` wherever the edge bins
    hold much of the mass (a location outside :math:`[-1, 1]` still gives a grey level
    in :math:`[0, 1]`). Computed level by level, so the memory is that of ``loc``.

    Parameters
    ----------
    loc, log_scale : torch.Tensor
        As in :func:`discretized_logistic_log_prob`; broadcast together.

    Returns
    -------
    torch.Tensor
        Mean grey level, the broadcast shape of ``loc`` and ``log_scale``.
    """
    inv_s = torch.exp(-log_scale)
    total = torch.zeros(torch.broadcast_shapes(loc.shape, log_scale.shape), dtype=loc.dtype, device=loc.device)
    for k in range(1, _LEVELS):
        edge = (2 * k - _LEVELS) / (_LEVELS - 1)
        total = total + torch.sigmoid((loc - edge) * inv_s)
    return total / (_LEVELS - 1)


def _discretized_logistic(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    params = _parameter_maps(x_hat, 2, "discretized_logistic")
    return discretized_logistic_log_prob(x, params[..., 0, :, :, :], params[..., 1, :, :, :])


def _discretized_logistic_display(x_hat: torch.Tensor) -> torch.Tensor:
    params = _parameter_maps(x_hat, 2, "discretized_logistic")
    return discretized_logistic_mean(params[..., 0, :, :, :], params[..., 1, :, :, :])


def _categorical_terms(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``[N, 256, C, H, W]`` and level indices ``[N, C, H, W]`` for cross_entropy."""
    logits = _parameter_maps(x_hat, _LEVELS, "categorical256")
    logits = logits.reshape(-1, _LEVELS, *x.shape[-3:])
    return logits, _grey_levels(x).reshape(-1, *x.shape[-3:])


def _categorical256(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    logits, levels = _categorical_terms(x, x_hat)
    return -F.cross_entropy(logits, levels, reduction="none").reshape(x.shape)


def _categorical256_sum(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    logits, levels = _categorical_terms(x, x_hat)
    return -F.cross_entropy(logits, levels, reduction="sum")


def _categorical256_mean(x_hat: torch.Tensor) -> torch.Tensor:
    probs = _parameter_maps(x_hat, _LEVELS, "categorical256").softmax(dim=-4)
    grey = torch.arange(_LEVELS, dtype=probs.dtype, device=probs.device) / (_LEVELS - 1)
    return torch.tensordot(grey, probs.movedim(-4, 0), dims=1)


for _entry in (
    Likelihood("gaussian", _gaussian, _identity, -_HALF_LOG_2PI, None, "Gaussian mean x̂", _gaussian_sum),
    Likelihood("bernoulli", _bernoulli, torch.sigmoid, 0.0, (0.0, 1.0), "sigmoid(x̂)", _bernoulli_sum),
    Likelihood(
        "continuous_bernoulli", _continuous_bernoulli, _continuous_bernoulli_mean, 0.0, (0.0, 1.0),
        "continuous-Bernoulli mean of x̂",
    ),
    Likelihood("laplace", _laplace, _identity, 0.0, None, "Laplace location x̂", _laplace_sum),
    Likelihood(
        "discretized_logistic", _discretized_logistic, _discretized_logistic_display, 0.0, (0.0, 1.0),
        "mean of the discretised logistic", param_channels=2, check_target=_eight_bit_problem,
    ),
    Likelihood(
        "categorical256", _categorical256, _categorical256_mean, 0.0, (0.0, 1.0),
        "mean of the 256-way categorical", _categorical256_sum, param_channels=_LEVELS,
        check_target=_eight_bit_problem,
    ),
):
    register_likelihood(_entry)
