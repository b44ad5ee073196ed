"""The loss module against independent references: torch.distributions, closed forms,
float64 gradcheck, and property tests on extreme inputs."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import distributions as D

from autoencoders.loss import (
    LikelihoodType,
    LossResult,
    distribution_mean,
    kl_divergence_diag_gaussian,
    log_likelihood,
    log_normalizer,
)

torch.set_default_dtype(torch.float32)
RTOL = 1e-5


def _pairs(n=257, scale=3.0, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, generator=g, dtype=dtype)
    x_hat = scale * torch.randn(n, generator=g, dtype=dtype)
    return x, x_hat


def test_gaussian_matches_normal_without_constant():
    x, x_hat = _pairs()
    ref = D.Normal(x_hat, 1.0).log_prob(x) + 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(log_likelihood(x, x_hat, "gaussian"), ref, rtol=RTOL, atol=1e-12)
    assert log_normalizer("gaussian") == pytest.approx(-0.5 * math.log(2 * math.pi))


@pytest.mark.parametrize("extreme", [0.0, 50.0, -50.0])
def test_bernoulli_matches_torch_distributions(extreme):
    x, x_hat = _pairs()
    if extreme:
        x_hat = torch.full_like(x_hat, extreme)
    # Bernoulli.log_prob needs binary targets for its support check; compare the
    # cross-entropy form directly for soft targets.
    binary = (x > 0.5).to(x.dtype)
    ref = D.Bernoulli(logits=x_hat).log_prob(binary)
    torch.testing.assert_close(log_likelihood(binary, x_hat, "bernoulli"), ref, rtol=RTOL, atol=1e-12)
    soft = x * D.Bernoulli(logits=x_hat).log_prob(torch.ones_like(x)) + (1 - x) * D.Bernoulli(
        logits=x_hat
    ).log_prob(torch.zeros_like(x))
    torch.testing.assert_close(log_likelihood(x, x_hat, "Bernoulli"), soft, rtol=RTOL, atol=1e-12)


def test_bernoulli_float32_extreme_logits_are_finite_and_exact():
    x = torch.tensor([0.0, 1.0, 0.0, 1.0])
    x_hat = torch.tensor([50.0, 50.0, -50.0, -50.0])
    out = log_likelihood(x, x_hat, "bernoulli")
    torch.testing.assert_close(out, torch.tensor([-50.0, 0.0, 0.0, -50.0]), rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("scale", [3.0, 1e-3, 1e-6])
def test_continuous_bernoulli_matches_torch_distributions(scale):
    x, x_hat = _pairs(scale=scale)
    ref = D.ContinuousBernoulli(logits=x_hat).log_prob(x)
    torch.testing.assert_close(
        log_likelihood(x, x_hat, "continuous_bernoulli"), ref, rtol=RTOL, atol=1e-9
    )


def test_continuous_bernoulli_exact_at_zero_and_extreme_logits():
    # torch.distributions clamps probabilities at +-50 logits, so the reference here is
    # the closed form log C(eta) = log(eta / tanh(eta / 2)) in float64, and log C(0) = log 2.
    eta = torch.tensor([0.0, 50.0, -50.0, 1e-8, 20.0], dtype=torch.float64)
    x = torch.tensor([0.3, 0.7, 0.2, 0.5, 1.0], dtype=torch.float64)
    safe = torch.where(eta == 0, torch.ones_like(eta), eta)
    log_c = torch.where(eta == 0, torch.full_like(eta, math.log(2)), torch.log(safe / torch.tanh(safe / 2)))
    log_c[3] = math.log(2)  # eta = 1e-8: tanh underflows the ratio in float64 too
    ref = x * eta - torch.nn.functional.softplus(eta) + log_c
    torch.testing.assert_close(log_likelihood(x, eta, "continuous_bernoulli"), ref, rtol=RTOL, atol=1e-12)
    out32 = log_likelihood(x.float(), eta.float(), "continuous_bernoulli")
    assert torch.isfinite(out32).all()


def test_laplace_matches_torch_distributions():
    x, x_hat = _pairs()
    ref = D.Laplace(x_hat, 1.0).log_prob(x)
    torch.testing.assert_close(log_likelihood(x, x_hat, LikelihoodType.LAPLACE), ref, rtol=RTOL, atol=1e-12)


def test_distribution_means_match_torch_distributions():
    _, eta = _pairs(scale=5.0)
    torch.testing.assert_close(distribution_mean(eta, "bernoulli"), D.Bernoulli(logits=eta).mean)
    near = eta * 1e-4
    for logits in (eta, near):
        torch.testing.assert_close(
            distribution_mean(logits, "continuous_bernoulli"),
            D.ContinuousBernoulli(logits=logits).mean,
            rtol=1e-5,
            atol=1e-7,
        )
    torch.testing.assert_close(distribution_mean(eta, "gaussian"), eta)
    with pytest.raises(ValueError, match="callable"):
        distribution_mean(eta, lambda x, x_hat: -(x - x_hat) ** 2)


def test_user_defined_likelihood_callable_is_used_and_checked():
    x, x_hat = _pairs()
    out = log_likelihood(x, x_hat, lambda a, b: D.Normal(b, 0.5).log_prob(a))
    torch.testing.assert_close(out, D.Normal(x_hat, 0.5).log_prob(x))
    with pytest.raises(ValueError, match=r"elementwise log density of shape \[257\], got \[\]"):
        log_likelihood(x, x_hat, lambda a, b: (a - b).sum())


def test_unknown_likelihood_lists_valid_names():
    x, x_hat = _pairs()
    with pytest.raises(ValueError) as err:
        log_likelihood(x, x_hat, "poisson")
    msg = str(err.value)
    for name in ("'gaussian'", "'bernoulli'", "'continuous_bernoulli'", "'laplace'", "'poisson'"):
        assert name in msg
    with pytest.raises(TypeError, match="likelihood must be a str"):
        log_likelihood(x, x_hat, 3)


def test_shapes_are_never_broadcast():
    with pytest.raises(ValueError, match=r"x_hat must have the shape of x = \[4, 3\], got \[1, 3\]"):
        log_likelihood(torch.zeros(4, 3), torch.zeros(1, 3), "gaussian")


def test_kl_against_standard_normal_matches_torch():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(64, 8, generator=g, dtype=torch.float64)
    lv = 2 * torch.randn(64, 8, generator=g, dtype=torch.float64)
    ref = D.kl_divergence(D.Normal(mu, torch.exp(0.5 * lv)), D.Normal(0.0, 1.0))
    torch.testing.assert_close(kl_divergence_diag_gaussian(mu, lv, reduce_sum=False), ref)
    torch.testing.assert_close(kl_divergence_diag_gaussian(mu, lv), ref.sum(-1))


def test_kl_between_two_gaussians_matches_torch():
    g = torch.Generator().manual_seed(2)
    mu, mu2 = torch.randn(2, 32, 6, generator=g, dtype=torch.float64)
    lv, lv2 = 3 * torch.randn(2, 32, 6, generator=g, dtype=torch.float64)
    ref = D.kl_divergence(D.Normal(mu, torch.exp(0.5 * lv)), D.Normal(mu2, torch.exp(0.5 * lv2)))
    torch.testing.assert_close(kl_divergence_diag_gaussian(mu, lv, mu2, lv2, reduce_sum=False), ref)
    torch.testing.assert_close(kl_divergence_diag_gaussian(mu, lv, mu2, lv2), ref.sum(-1))


def test_kl_argument_errors():
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="given together"):
        kl_divergence_diag_gaussian(z, z, mu2=z)
    with pytest.raises(ValueError, match=r"log_var must have the shape of mu = \[2, 3\], got \[3\]"):
        kl_divergence_diag_gaussian(z, torch.zeros(3))
    with pytest.raises(ValueError, match=r"mu2 must have the shape of mu = \[2, 3\], got \[1, 3\]"):
        kl_divergence_diag_gaussian(z, z, torch.zeros(1, 3), torch.zeros(1, 3))


@pytest.mark.parametrize("kind", [t.value for t in LikelihoodType])
def test_log_likelihood_gradcheck(kind):
    x, x_hat = _pairs(n=12, scale=2.0)
    x_hat = x_hat.clone().requires_grad_(True)
    if kind == "continuous_bernoulli":  # include the Taylor branch near 0
        x_hat = torch.cat([x_hat.detach(), torch.tensor([1e-3, -4e-3], dtype=torch.float64)])
        x = torch.cat([x, torch.tensor([0.2, 0.9], dtype=torch.float64)])
        x_hat.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: log_likelihood(x, t, kind), (x_hat,))


def test_kl_gradcheck():
    g = torch.Generator().manual_seed(3)
    args = [torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    assert torch.autograd.gradcheck(lambda a, b, c, d: kl_divergence_diag_gaussian(a, b, c, d), args)
    assert torch.autograd.gradcheck(lambda a, b: kl_divergence_diag_gaussian(a, b), args[:2])


@settings(max_examples=60, deadline=None)
@given(
    logits=st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=16),
    target=st.floats(0, 1),
    kind=st.sampled_from(["bernoulli", "continuous_bernoulli"]),
)
def test_extreme_logits_give_finite_values_and_gradients(logits, target, kind):
    eta = torch.tensor(logits, requires_grad=True)
    x = torch.full_like(eta, target)
    out = log_likelihood(x, eta, kind)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(eta.grad).all()


@settings(max_examples=60, deadline=None)
@given(
    lv=st.lists(st.floats(-30, 30, allow_nan=False), min_size=2, max_size=2),
    mu=st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=2),
)
def test_extreme_log_variances_give_finite_kl_and_gradients(lv, mu):
    a = torch.tensor(lv, requires_grad=True)
    m = torch.tensor(mu, requires_grad=True)
    kl_prior = kl_divergence_diag_gaussian(m[:1], a[:1])
    kl_pair = kl_divergence_diag_gaussian(m[:1], a[:1], m[1:], a[1:])
    (kl_prior + kl_pair).sum().backward()
    for t in (kl_prior, kl_pair, a.grad, m.grad):
        assert torch.isfinite(t).all()
    assert kl_pair.item() >= -1e-4 and kl_prior.item() >= -1e-4


def test_loss_result_repr_and_fields():
    r = LossResult(objective=torch.tensor(2.5), diagnostics={"elbo": -2.5})
    assert "objective=2.5" in repr(r) and "elbo=-2.5" in repr(r)
