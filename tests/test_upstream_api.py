"""The calls of the PyAutoencoder documentation that readers come from still run, with
the results the documentation describes (issue 13: the likelihood moved onto the model,
but a per-call ``likelihood=`` keeps working and overrides it)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D
from torch import nn

from autoencoders import AE, VAE, AdaGVAE

X = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def nets(latent: int, *, vae: bool):
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.LazyLinear(32), nn.ReLU(), *([] if vae else [nn.Linear(32, latent)]))
    decoder = nn.Sequential(nn.Linear(latent, 64), nn.Unflatten(1, (1, 8, 8)))
    return encoder, decoder


def test_ae_calls():
    encoder_nn, decoder_nn = nets(4, vae=False)
    model = AE(encoder=encoder_nn, decoder=decoder_nn)
    model.build(X)
    output = model(X)
    loss_result = model.compute_loss(X, output, likelihood="bernoulli")
    expected = D.Bernoulli(logits=output.x_hat, validate_args=False).log_prob(X).flatten(1).sum(1).mean()
    assert loss_result.diagnostics["log_likelihood"] == pytest_approx(expected.item())
    z = model.encode(X).z
    assert model.decode(z).x_hat.shape == X.shape and not z.requires_grad


def test_vae_calls():
    encoder_nn, decoder_nn = nets(3, vae=True)
    model = VAE(encoder=encoder_nn, decoder=decoder_nn, latent_dim=3)
    model.build(X)
    output = model(X)
    loss_result = model.compute_loss(X, output, beta=1.0, likelihood="gaussian")
    d = loss_result.diagnostics
    assert math.isfinite(d["elbo"]) and d["elbo"] == pytest_approx(d["log_likelihood"] - d["kl_divergence"])
    assert model.compute_loss(X, output).diagnostics == d  # the model's default is Gaussian too


def test_adagvae_calls():
    encoder_nn, decoder_nn = nets(3, vae=True)
    vae = VAE(encoder=encoder_nn, decoder=decoder_nn, latent_dim=3)
    model = AdaGVAE(vae=vae)
    model.build(X)  # one tensor, as the documentation writes it
    output = model((X, X.flip(0)))
    loss_result = model.compute_loss((X, X.flip(0)), output, beta=4.0, likelihood="bernoulli")
    assert math.isfinite(loss_result.objective.item())
    z = model.vae.encode(X).z
    assert model.vae.decode(z).x_hat.shape == X.shape


def pytest_approx(value: float):
    return pytest.approx(value, rel=1e-5, abs=1e-6)
