"""Models whose decoder outputs several maps per pixel (the 8-bit likelihoods): the
loss, evaluation, reconstructions and plots accept ``parameter_shape(likelihood,
x.shape)`` (issue 15, item 5)."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from autoencoders.inference import reconstruct, sample_prior
from autoencoders.likelihoods import distribution_mean, log_likelihood, parameter_shape
from autoencoders.loss import kl_divergence_diag_gaussian
from autoencoders.recipes import mlp_ae, mlp_vae, train
from autoencoders.train import evaluate
from autoencoders.viz import plot_reconstructions, plot_samples

matplotlib.use("Agg")
EIGHT_BIT = ["discretized_logistic", "categorical256"]
X = torch.randint(0, 256, (12, 1, 6, 6), generator=torch.Generator().manual_seed(0)) / 255


@pytest.mark.parametrize("likelihood", EIGHT_BIT)
def test_the_recipes_give_the_decoder_its_parameter_maps(likelihood):
    model = mlp_vae(3, hidden=(16,), likelihood=likelihood, in_shape=(1, 6, 6), seed=0)
    out = model(X, S=2)
    assert out.x_hat.shape == (12, 2, *parameter_shape(likelihood, (1, 6, 6)))
    ae = mlp_ae(3, hidden=(16,), likelihood=likelihood, in_shape=(1, 6, 6))
    assert ae(X).x_hat.shape == parameter_shape(likelihood, X.shape)


@pytest.mark.parametrize("likelihood", EIGHT_BIT)
def test_vae_elbo_matches_its_terms(likelihood):
    """The ELBO of compute_loss against log_likelihood and the closed-form KL."""
    model = mlp_vae(3, hidden=(16,), likelihood=likelihood, in_shape=(1, 6, 6), seed=0)
    torch.manual_seed(1)
    out = model(X, S=3)
    res = model.compute_loss(X, out)
    target = X.unsqueeze(1).expand(-1, 3, -1, -1, -1)
    ll = log_likelihood(target, out.x_hat, likelihood).flatten(2).sum(2).mean()
    kl = kl_divergence_diag_gaussian(out.mu, out.log_var).mean()
    assert res.diagnostics["elbo"] == pytest.approx((ll - kl).item(), rel=1e-5)
    with torch.no_grad():
        log_px = model.log_marginal_likelihood(X[:4], K=5)
    assert log_px.shape == (4,) and torch.isfinite(log_px).all()


@pytest.mark.parametrize("likelihood", EIGHT_BIT)
def test_training_evaluation_and_pictures(likelihood):
    model = mlp_vae(3, hidden=(16,), likelihood=likelihood, in_shape=(1, 6, 6), seed=0)
    history = train(model, X, epochs=2, batch_size=4, progress=False)
    assert history.steps == 6
    assert math.isfinite(evaluate(model, X)["elbo"])
    recon = reconstruct(model, X)
    assert recon.shape == X.shape and ((recon >= 0) & (recon <= 1)).all()
    assert sample_prior(model, 5, rng=0).shape == (5, 1, 6, 6)
    raw = reconstruct(model, X, raw=True)
    torch.testing.assert_close(distribution_mean(raw, likelihood), recon)
    plot_samples(model, n=4, nrow=2)
    plot_reconstructions(model, X, n=4)
    matplotlib.pyplot.close("all")


@pytest.mark.parametrize("likelihood", EIGHT_BIT)
def test_a_decoder_with_the_image_channel_count_is_refused(likelihood):
    model = mlp_vae(3, hidden=(16,), likelihood="bernoulli", in_shape=(1, 6, 6), seed=0)
    out = model(X)
    k = parameter_shape(likelihood, (1, 6, 6))[0]
    with pytest.raises(ValueError, match=rf"x_hat must have shape \[B, S, \*parameter_shape\(likelihood, "
                                         rf"x.shape\[1:\]\)\] = \[12, 1, {k}, 6, 6\], got \[12, 1, 1, 6, 6\]"):
        model.compute_loss(X, out, likelihood=likelihood)
    with pytest.raises(ValueError, match=rf"reconstruction must have shape \[12, {k}, 6, 6\]"):
        reconstruct(model, X, likelihood=likelihood)
