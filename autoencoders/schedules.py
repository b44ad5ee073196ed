r"""Schedules for the KL weight :math:`\beta`: linear warm-up and cyclical annealing.

A schedule is a callable ``step -> beta``; pass it to
:func:`~autoencoders.train.fit` as ``beta_schedule=``. Both schedules here are frozen
dataclasses, so they print their settings and can be compared and pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .utils import _check_positive

__all__ = ["linear_warmup", "cyclical"]


@dataclass(frozen=True)
class _LinearWarmup:
    warmup_steps: int
    beta_max: float
    beta_min: float

    def __call__(self, step: int) -> float:
        step = _check_positive(step, "step", integer=True, allow_zero=True)
        if self.warmup_steps == 0 or step >= self.warmup_steps:
            return self.beta_max
        return self.beta_min + (self.beta_max - self.beta_min) * step / self.warmup_steps


@dataclass(frozen=True)
class _Cyclical:
    period: int
    beta_max: float
    ratio: float
    n_cycles: int | None

    def __call__(self, step: int) -> float:
        step = _check_positive(step, "step", integer=True, allow_zero=True)
        if self.n_cycles is not None and step >= self.n_cycles * self.period:
            return self.beta_max
        tau = (step % self.period) / self.period
        return self.beta_max * min(1.0, tau / self.ratio)


def linear_warmup(warmup_steps: int, beta_max: float = 1.0, beta_min: float = 0.0) -> Callable[[int], float]:
    r"""KL annealing: :math:`\beta` rises linearly, then stays at ``beta_max``.

    .. math::

        \beta(t) = \beta_{\min} + (\beta_{\max} - \beta_{\min})
                   \min\!\Big(1, \frac{t}{T_{\mathrm{warm}}}\Big),
        \qquad t = 0, 1, 2, \dots

    so :math:`\beta(0) = \beta_{\min}` and :math:`\beta(t) = \beta_{\max}` for
    :math:`t \ge T_{\mathrm{warm}}`. ``warmup_steps=0`` gives the constant
    :math:`\beta_{\max}`.

    Parameters
    ----------
    warmup_steps : int
        :math:`T_{\mathrm{warm}} \ge 0`, in optimizer steps.
    beta_max : float, default 1.0
        Final weight, :math:`\ge \beta_{\min}`.
    beta_min : float, default 0.0
        Initial weight, :math:`\ge 0`.

    Returns
    -------
    callable
        ``step -> beta`` for :func:`fit`'s ``beta_schedule``.

    Examples
    --------
    >>> schedule = linear_warmup(10, beta_max=1.0)
    >>> [schedule(t) for t in (0, 5, 10, 50)]
    [0.0, 0.5, 1.0, 1.0]
    """
    warmup_steps = _check_positive(warmup_steps, "warmup_steps", integer=True, allow_zero=True)
    beta_max = _check_positive(beta_max, "beta_max", allow_zero=True)
    beta_min = _check_positive(beta_min, "beta_min", allow_zero=True)
    if beta_min > beta_max:
        raise ValueError(f"beta_min must be <= beta_max = {beta_max}, got {beta_min}")
    return _LinearWarmup(warmup_steps, beta_max, beta_min)


def cyclical(
    period: int, beta_max: float = 1.0, ratio: float = 0.5, n_cycles: int | None = None
) -> Callable[[int], float]:
    r"""Cyclical KL annealing :cite:p:`fu2019cyclical`.

    Within each cycle of :math:`T` steps, :math:`\beta` rises linearly from 0 over the
    first :math:`R\,T` steps and then stays at :math:`\beta_{\max}`:

    .. math::

        \tau(t) = \frac{t \bmod T}{T}, \qquad
        \beta(t) = \beta_{\max}\,\min\!\Big(1, \frac{\tau(t)}{R}\Big),
        \qquad t = 0, 1, 2, \dots

    After ``n_cycles`` cycles (:math:`t \ge n_{\mathrm{cycles}} T`), if given,
    :math:`\beta = \beta_{\max}` for good.

    Parameters
    ----------
    period : int
        Cycle length :math:`T \ge 1` in optimizer steps.
    beta_max : float, default 1.0
        Plateau value, :math:`\ge 0`.
    ratio : float, default 0.5
        :math:`R \in (0, 1]`, the fraction of each cycle spent rising.
    n_cycles : int, optional
        Number of cycles :math:`\ge 1`; ``None`` repeats forever.

    Returns
    -------
    callable
        ``step -> beta`` for :func:`fit`'s ``beta_schedule``.

    Examples
    --------
    >>> schedule = cyclical(10, ratio=0.5)
    >>> [schedule(t) for t in (0, 2, 5, 9, 10, 12)]
    [0.0, 0.4, 1.0, 1.0, 0.0, 0.4]
    """
    period = _check_positive(period, "period", integer=True)
    beta_max = _check_positive(beta_max, "beta_max", allow_zero=True)
    ratio = _check_positive(ratio, "ratio")
    if ratio > 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    if n_cycles is not None:
        n_cycles = _check_positive(n_cycles, "n_cycles", integer=True)
    return _Cyclical(period, beta_max, ratio, n_cycles)
