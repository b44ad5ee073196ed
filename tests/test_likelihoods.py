"""The likelihood registry and the likelihood that a model carries (issue 13)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D
from torch import nn

from autoencoders import AE, VAE, AdaGVAE
from autoencoders.likelihoods import (
    Likelihood,
    available_likelihoods,
    distribution_mean,
    get_likelihood,
    log_likelihood,
    log_normalizer,
    register_likelihood,
)
from autoencoders.loss import log_normal_diag
from autoencoders.train import evaluate, fit

X = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))


def nets(latent=3, features=8):
    torch.manual_seed(0)
    return (nn.Sequential(nn.Flatten(), nn.Linear(16, features), nn.ReLU()),
            nn.Sequential(nn.Linear(latent, 16), nn.Unflatten(1, (1, 4, 4))))


def test_builtins_are_registered_with_their_parts():
    assert available_likelihoods()[:4] == ["gaussian", "bernoulli", "continuous_bernoulli", "laplace"]
    assert get_likelihood("Bernoulli ").support == (0.0, 1.0)
    assert get_likelihood("gaussian").log_normalizer == pytest.approx(-0.5 * math.log(2 * math.pi))
    eta = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(get_likelihood("bernoulli").mean(eta), D.Bernoulli(logits=eta).mean)


def test_a_registered_likelihood_is_usable_by_name_everywhere():
    logistic = Likelihood(
        "logistic_unit_test",
        log_prob=lambda x, x_hat: -(x - x_hat) - 2 * torch.nn.functional.softplus(-(x - x_hat)),
        mean=lambda x_hat: x_hat,
        label="location x̂",
    )
    register_likelihood(logistic, replace=True)
    with pytest.raises(ValueError, match="already registered"):
        register_likelihood(logistic)
    x, loc = torch.rand(5), torch.randn(5)
    # the logistic density with scale 1, written through torch.distributions
    ref = D.TransformedDistribution(
        D.Uniform(torch.zeros(5), torch.ones(5)),
        [D.SigmoidTransform().inv, D.AffineTransform(loc, 1.0)],
    )
    torch.testing.assert_close(log_likelihood(x, loc, "logistic_unit_test"), ref.log_prob(x), rtol=1e-5, atol=1e-5)
    model = VAE(*nets(), 3, likelihood="logistic_unit_test")
    assert model.likelihood == "logistic_unit_test" and "logistic_unit_test" in str(model)
    assert math.isfinite(evaluate(model, X)["elbo"])
    torch.testing.assert_close(distribution_mean(loc, "logistic_unit_test"), loc)
    assert log_normalizer("logistic_unit_test") == 0.0


@pytest.mark.parametrize("cls", ["AE", "VAE"])
def test_evaluate_and_fit_use_the_models_likelihood(cls):
    """The bug of issue 13: a Bernoulli model evaluated without loss_kwargs got
    Gaussian numbers. Reference: the Bernoulli log-likelihood of the reconstruction
    at the posterior mean, from torch.distributions."""
    enc, dec = nets(latent=3 if cls == "VAE" else 8)
    if cls == "VAE":
        model = VAE(enc, dec, 3, likelihood="bernoulli").eval()
        with torch.no_grad():
            mu, log_var = model.posterior(X)
            logits = model.decoder(mu)
        kl = D.kl_divergence(D.Normal(mu, torch.exp(0.5 * log_var)), D.Normal(0.0, 1.0)).sum(1)
        ll = D.Bernoulli(logits=logits, validate_args=False).log_prob(X).flatten(1).sum(1)
        expected = {"elbo_at_mean": (ll - kl).mean().item()}
        got = evaluate(model, X, sample=False)
    else:
        model = AE(enc, nn.Sequential(nn.Linear(8, 16), nn.Unflatten(1, (1, 4, 4))), likelihood="bernoulli").eval()
        with torch.no_grad():
            logits = model(X).x_hat
        expected = {"log_likelihood": D.Bernoulli(logits=logits, validate_args=False).log_prob(X).flatten(1).sum(1).mean().item()}
        got = evaluate(model, X)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5)
    # an explicit likelihood still overrides the model's
    gaussian = evaluate(model, X, likelihood="gaussian", sample=False)
    assert gaussian[next(iter(expected))] != pytest.approx(next(iter(expected.values())), rel=1e-3)
    # fit trains on the model's likelihood: targets outside [0, 1] are refused
    with pytest.raises(ValueError, match=r"\[0, 1\] for the 'bernoulli'"):
        fit(model, [X * 3], epochs=1, progress=False, device="cpu")


def test_compute_loss_keeps_the_seed_api():
    model = VAE(*nets(), 3).build(X)  # default: Gaussian
    out = model(X)
    bern = model.compute_loss(X, out, likelihood="bernoulli").diagnostics["log_likelihood"]
    own = model.compute_loss(X, out).diagnostics["log_likelihood"]
    assert bern != pytest.approx(own)
    assert bern == pytest.approx(
        D.Bernoulli(logits=out.x_hat[:, 0], validate_args=False).log_prob(X).flatten(1).sum(1).mean().item(), rel=1e-5
    )


def test_adagvae_takes_the_likelihood_of_its_vae():
    vae = VAE(*nets(), 3, likelihood="continuous_bernoulli")
    assert AdaGVAE(vae).likelihood == "continuous_bernoulli"


def test_bad_likelihoods_are_refused_at_construction():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VAE(*nets(), 3, likelihood="bernouli")
    with pytest.raises(TypeError, match="likelihood must be"):
        AE(*nets(), likelihood=3)


def test_a_learnable_likelihood_module_trains_with_the_model():
    class LearnedGaussian(nn.Module):
        def __init__(self):
            super().__init__()
            self.log_sigma = nn.Parameter(torch.zeros(()))

        def forward(self, x, x_hat):
            return D.Normal(x_hat, self.log_sigma.exp()).log_prob(x)

    lik = LearnedGaussian()
    model = VAE(*nets(), 3, likelihood=lik)
    assert any(p is lik.log_sigma for p in model.parameters())
    fit(model, [X], epochs=3, lr=0.1, progress=False, device="cpu")
    assert lik.log_sigma.item() != 0.0


def test_log_normal_diag_matches_torch_distributions():
    z, mu, log_var = torch.randn(4, 5, 3), torch.randn(4, 1, 3), torch.randn(4, 1, 3)
    ref = D.Normal(mu, torch.exp(0.5 * log_var)).log_prob(z).sum(-1)
    torch.testing.assert_close(log_normal_diag(z, mu, log_var), ref)
    with pytest.raises(TypeError, match="log_var"):
        log_normal_diag(z, mu, None)


@pytest.mark.parametrize("kind", ["gaussian", "bernoulli", "continuous_bernoulli", "laplace"])
def test_fused_sums_match_torch_distributions(kind):
    from autoencoders.likelihoods import log_likelihood_sum

    x = torch.rand(4, 1, 5, 5, dtype=torch.float64)
    x_hat = torch.randn(4, 1, 5, 5, dtype=torch.float64)
    ref = {
        "gaussian": D.Normal(x_hat, 1.0).log_prob(x) + 0.5 * math.log(2 * math.pi),
        "bernoulli": D.Bernoulli(logits=x_hat, validate_args=False).log_prob(x),
        "continuous_bernoulli": D.ContinuousBernoulli(logits=x_hat).log_prob(x),
        "laplace": D.Laplace(x_hat, 1.0).log_prob(x),
    }[kind].sum()
    torch.testing.assert_close(log_likelihood_sum(x, x_hat, kind), ref)
    with pytest.raises(ValueError, match="shape"):
        log_likelihood_sum(x, x_hat[:2], kind)
