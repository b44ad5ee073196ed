"""The two likelihoods of 8-bit images: the discretised logistic and the 256-way
categorical (issue 15, item 5), against independent references."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import distributions as D

from autoencoders.likelihoods import (
    LikelihoodType,
    available_likelihoods,
    discretized_logistic_log_prob,
    discretized_logistic_mean,
    distribution_mean,
    get_likelihood,
    log_likelihood,
    log_likelihood_sum,
    parameter_shape,
    validate_target,
)

EIGHT_BIT = ["discretized_logistic", "categorical256"]
LEVELS = torch.arange(256, dtype=torch.float64) / 255


def all_levels(x_hat: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every grey level against the same parameters: targets ``[256, C, H, W]`` and
    the parameters ``[K C, H, W]`` repeated to ``[256, K C, H, W]``."""
    channels = x_hat.shape[0] // get_likelihood(name).param_channels
    x = LEVELS.to(x_hat.dtype).view(256, 1, 1, 1).expand(256, channels, *x_hat.shape[1:])
    return x, x_hat.unsqueeze(0).expand(256, *x_hat.shape)


def random_parameters(name: str, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """``x_hat [2C, 3, 4]`` (logistic: locations in about [-2, 2], log-scales in
    [-7, 2]) or ``[256C, 3, 4]`` (logits of scale 3), with C = 2."""
    g = torch.Generator().manual_seed(seed)
    if name == "discretized_logistic":
        loc = 1.5 * torch.randn(2, 3, 4, generator=g, dtype=dtype)
        log_scale = -7 + 9 * torch.rand(2, 3, 4, generator=g, dtype=dtype)
        return torch.cat([loc, log_scale])
    return 3 * torch.randn(512, 3, 4, generator=g, dtype=dtype)


def grey_images(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g).to(torch.float64) / 255


# ------------------------------------------------------------------------- registry
def test_8bit_likelihoods_are_registered_with_their_parts():
    for name, k in (("discretized_logistic", 2), ("categorical256", 256)):
        entry = get_likelihood(name)
        assert (entry.param_channels, entry.support, entry.log_normalizer) == (k, (0.0, 1.0), 0.0)
        assert name in available_likelihoods() and name not in {t.value for t in LikelihoodType}
    assert parameter_shape("discretized_logistic", (8, 3, 5, 6)) == torch.Size([8, 6, 5, 6])
    assert parameter_shape("categorical256", (8, 2, 1, 28, 28)) == torch.Size([8, 2, 256, 28, 28])
    assert parameter_shape("bernoulli", (8, 784)) == torch.Size([8, 784])


# ---------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("name", EIGHT_BIT)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_probabilities_of_the_256_levels_sum_to_one(name, seed):
    x, x_hat = all_levels(random_parameters(name, seed), name)
    log_p = log_likelihood(x, x_hat, name)
    assert log_p.shape == x.shape and (log_p <= 0).all()
    torch.testing.assert_close(log_p.exp().sum(0), torch.ones(x.shape[1:], dtype=torch.float64),
                               rtol=0, atol=1e-6)


# ------------------------------------------------------------------ references
def logistic_reference(loc: torch.Tensor, scale: torch.Tensor) -> D.TransformedDistribution:
    """The logistic distribution, built from a uniform by the inverse sigmoid."""
    base = D.Uniform(torch.zeros_like(loc), torch.ones_like(loc), validate_args=False)
    return D.TransformedDistribution(
        base, [D.SigmoidTransform().inv, D.AffineTransform(loc, scale)], validate_args=False
    )


def test_discretized_logistic_matches_torch_distributions():
    """P(k) as a difference of logistic CDFs at the bin edges y -+ 1/255 (y = 2x - 1),
    with the tails in the edge bins. The plain difference loses every digit once
    both CDFs round to 1, so the probabilities are compared to 1e-13 absolute and the
    logarithms only where P(k) > 1e-6 (the tails are checked against mpmath below)."""
    x_hat = random_parameters("discretized_logistic", seed=3)
    x, params = all_levels(x_hat, "discretized_logistic")
    loc, log_scale = params[:, :2], params[:, 2:]
    logistic = logistic_reference(loc, log_scale.exp())
    y = 2 * x - 1
    cdf_up, cdf_lo = logistic.cdf(y + 1 / 255), logistic.cdf(y - 1 / 255)
    mass = torch.where(x == 0, cdf_up, torch.where(x == 1, 1 - cdf_lo, cdf_up - cdf_lo))
    got = log_likelihood(x, params, "discretized_logistic")
    torch.testing.assert_close(got.exp(), mass, rtol=1e-7, atol=1e-13)
    large = mass > 1e-6
    assert large.sum() > 500
    torch.testing.assert_close(got[large], mass[large].log(), rtol=1e-8, atol=1e-8)
    # the functional form takes the two maps directly
    torch.testing.assert_close(discretized_logistic_log_prob(x, loc, log_scale), got)


def _mp_log_bin(k: int, loc: float, log_scale: float) -> float:
    """log P(k) at 60 significant digits with mpmath, as a difference of CDFs below
    the location and of survival functions above it (so that it never subtracts
    two numbers close to 1)."""
    with mpmath.workdps(60):
        s, mu = mpmath.exp(mpmath.mpf(log_scale)), mpmath.mpf(loc)
        upper = (mpmath.mpf(2 * k - 254) / 255 - mu) / s
        lower = (mpmath.mpf(2 * k - 256) / 255 - mu) / s
        cdf = lambda t: 1 / (1 + mpmath.exp(-t))  # noqa: E731
        survival = lambda t: 1 / (1 + mpmath.exp(t))  # noqa: E731
        if k == 0:
            p = cdf(upper)
        elif k == 255:
            p = survival(lower)
        elif lower > 0:
            p = survival(lower) - survival(upper)
        else:
            p = cdf(upper) - cdf(lower)
        return float(mpmath.log(p))


@pytest.mark.parametrize(
    ("loc", "log_scale"),
    [(0.0, 20.0), (0.3, 8.0), (-0.5, -20.0), (0.9, -7.0), (-1.0, -3.0), (30.0, 1.0), (0.0, -12.0)],
)
def test_discretized_logistic_is_accurate_in_the_tails(loc, log_scale):
    """Against a 60-digit mpmath reference at every level: tiny masses far in a tail
    and bins of a logistic far wider than a bin, where a difference of CDFs rounds to
    zero in float64."""
    x = LEVELS
    got = discretized_logistic_log_prob(x, torch.full_like(x, loc), torch.full_like(x, log_scale))
    ref = torch.tensor([_mp_log_bin(k, loc, log_scale) for k in range(256)], dtype=torch.float64)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-12)


def test_wide_logistic_gives_the_density_times_the_bin_width():
    """Where PixelCNN++ falls back to p(y) * 2/255, the exact form agrees with it."""
    y = 2 * LEVELS[1:-1] - 1
    loc, log_scale = torch.full_like(y, 0.2), torch.full_like(y, 12.0)
    density = logistic_reference(loc, log_scale.exp()).log_prob(y)
    got = discretized_logistic_log_prob(LEVELS[1:-1], loc, log_scale)
    torch.testing.assert_close(got, density + math.log(2 / 255), rtol=1e-12, atol=1e-9)


def test_categorical256_matches_torch_distributions():
    x_hat = random_parameters("categorical256", seed=4)  # [512, 3, 4], C = 2
    x = grey_images(5, 2, 3, 4, seed=4)
    x_hat = x_hat.unsqueeze(0).expand(5, *x_hat.shape).clone()
    # channel k * C + c holds the logit of level k for image channel c
    logits = x_hat.unflatten(1, (256, 2)).movedim(1, -1)  # [5, 2, 3, 4, 256]
    ref = D.Categorical(logits=logits).log_prob((x * 255).round().long())
    torch.testing.assert_close(log_likelihood(x, x_hat, "categorical256"), ref)
    torch.testing.assert_close(log_likelihood_sum(x, x_hat, "categorical256"), ref.sum())


# --------------------------------------------------------------------------- means
@pytest.mark.parametrize("name", EIGHT_BIT)
def test_display_mean_is_the_expected_grey_level(name):
    """distribution_mean(x_hat) = sum_k P(k) k / 255, with P from log_likelihood."""
    x_hat = random_parameters(name, seed=5)
    x, params = all_levels(x_hat, name)
    p = log_likelihood(x, params, name).exp()
    expected = (p * x).sum(0)
    got = distribution_mean(x_hat.unsqueeze(0), name)
    assert got.shape == (1, 2, 3, 4)
    torch.testing.assert_close(got[0], expected, rtol=1e-9, atol=1e-12)


def test_discretized_logistic_mean_at_the_extremes():
    loc = torch.tensor([1e4, -1e4, -1.0, 1.0, 0.0])
    log_scale = torch.tensor([-20.0, -20.0, -20.0, -20.0, 20.0])
    torch.testing.assert_close(discretized_logistic_mean(loc, log_scale),
                               torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5]))


# ----------------------------------------------------------------- extreme parameters
@pytest.mark.parametrize("loc", [-1e4, 0.0, 1e4, -1.0 / 255])
@pytest.mark.parametrize("log_scale", [-20.0, 20.0])
def test_discretized_logistic_extremes_are_finite_and_normalised(loc, log_scale):
    for dtype in (torch.float32, torch.float64):
        x = LEVELS.to(dtype)
        loc_t = torch.full_like(x, loc, requires_grad=True)
        log_scale_t = torch.full_like(x, log_scale, requires_grad=True)
        log_p = discretized_logistic_log_prob(x, loc_t, log_scale_t)
        log_p.sum().backward()
        assert torch.isfinite(log_p).all() and (log_p <= 0).all()
        assert torch.isfinite(loc_t.grad).all() and torch.isfinite(log_scale_t.grad).all()
        atol = 1e-6 if dtype == torch.float64 else 1e-5
        assert abs(torch.logsumexp(log_p.double(), 0).item()) < atol


@pytest.mark.parametrize("magnitude", [50.0, 1e4])
def test_categorical256_extremes_are_finite_and_normalised(magnitude):
    g = torch.Generator().manual_seed(6)
    x_hat = magnitude * torch.sign(torch.randn(256, 3, 3, generator=g))
    x_hat[17] = magnitude  # at least one level at the top
    for dtype in (torch.float32, torch.float64):
        leaf = x_hat.to(dtype).clone().requires_grad_(True)
        x, rep = all_levels(leaf, "categorical256")
        log_p = log_likelihood(x, rep, "categorical256")
        log_p.sum().backward()
        assert torch.isfinite(log_p).all() and torch.isfinite(leaf.grad).all()
        torch.testing.assert_close(log_p.double().exp().sum(0), torch.ones(1, 3, 3, dtype=torch.float64),
                                   rtol=0, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    loc=st.floats(-1e4, 1e4),
    log_scale=st.floats(-20, 20),
    level=st.integers(0, 255),
)
def test_discretized_logistic_is_finite_with_finite_gradients(loc, log_scale, level):
    x = torch.tensor([level / 255], dtype=torch.float32)
    loc_t = torch.tensor([loc], dtype=torch.float32, requires_grad=True)
    log_scale_t = torch.tensor([log_scale], dtype=torch.float32, requires_grad=True)
    log_p = discretized_logistic_log_prob(x, loc_t, log_scale_t)
    log_p.sum().backward()
    assert torch.isfinite(log_p).all() and log_p.item() <= 0
    assert torch.isfinite(loc_t.grad).all() and torch.isfinite(log_scale_t.grad).all()


@pytest.mark.parametrize("name", EIGHT_BIT)
def test_gradients_pass_gradcheck(name):
    """float64 gradcheck on a small case that includes both edge bins."""
    g = torch.Generator().manual_seed(7)
    levels = [0, 1, 128, 254, 255, 40] if name == "discretized_logistic" else [0, 128, 255]
    x = torch.tensor(levels, dtype=torch.float64).view(1, 1, 1, -1) / 255
    channels = get_likelihood(name).param_channels
    x_hat = torch.randn(1, channels, 1, len(levels), generator=g, dtype=torch.float64)
    if name == "discretized_logistic":
        x_hat[:, 1] = x_hat[:, 1] - 3.0  # log-scales around -3
    x_hat.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: log_likelihood(x, t, name), (x_hat,))


@pytest.mark.parametrize("name", EIGHT_BIT)
def test_model_shaped_leading_dimensions(name):
    """Targets [B, S, C, H, W] as the VAE's loss forms them."""
    x = grey_images(2, 3, 1, 4, 4, seed=8)
    x_hat = torch.randn(parameter_shape(name, x.shape), dtype=torch.float64)
    log_p = log_likelihood(x, x_hat, name)
    assert log_p.shape == x.shape
    torch.testing.assert_close(log_p[1, 2], log_likelihood(x[1, 2], x_hat[1, 2], name))
    assert distribution_mean(x_hat, name).shape == x.shape


# ----------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("name", EIGHT_BIT)
def test_off_grid_out_of_range_and_nan_targets_raise(name):
    x = grey_images(2, 1, 4, 4, seed=9)
    x_hat = torch.zeros(parameter_shape(name, x.shape), dtype=torch.float64)
    off = x.clone()
    off[1, 0, 2, 3] = 100.5 / 255
    with pytest.raises(ValueError, match=r"x must hold 8-bit grey levels k / 255.*got 0\.394118 = 100\.5000 / 255"):
        log_likelihood(off, x_hat, name)
    with pytest.raises(ValueError, match=r"target must hold 8-bit grey levels"):
        validate_target(torch.rand(3, 1, 2, 2), name, name="target")
    for bad, message in ((x * 1.5, r"x must lie in \[0, 1\] .*got values in \[0\.\d+, 1\.4"),
                         (x - 0.5, r"x must lie in \[0, 1\]"),
                         (x * 255, r"for 8-bit images use x / 255"),
                         (x * float("nan"), r"x contains NaN")):
        with pytest.raises(ValueError, match=message):
            log_likelihood(bad, x_hat, name)
    # within float32 rounding of k / 255 is on the grid
    validate_target(x.float(), name)
    log_likelihood(off, x_hat, name, validate=False)  # the check can be switched off


@pytest.mark.parametrize(("name", "k"), [("discretized_logistic", 2), ("categorical256", 256)])
def test_wrong_channel_count_raises(name, k):
    x = grey_images(2, 1, 4, 4)
    for channels in (1, k - 1, 2 * k):
        with pytest.raises(ValueError, match=rf"x_hat must have shape \[\.\.\., {k} \* C, H, W\] = \[2, {k}, 4, 4\]"):
            log_likelihood(x, torch.zeros(2, channels, 4, 4, dtype=torch.float64), name)
        with pytest.raises(ValueError, match=rf"x_hat must have shape \[\.\.\., {k} \* C, H, W\]"):
            log_likelihood_sum(x, torch.zeros(2, channels, 4, 4, dtype=torch.float64), name)
    with pytest.raises(ValueError, match=r"needs image targets \[\.\.\., C, H, W\].*got targets of shape \[2, 16\]"):
        log_likelihood(x.flatten(1), torch.zeros(2, 16 * k), name)
    with pytest.raises(ValueError, match=rf"must have shape \[\.\.\., {k} \* C, H, W\], got \[2, {k + 1}, 4, 4\]"):
        distribution_mean(torch.zeros(2, k + 1, 4, 4), name)
