"""The row-autoregressive decoder and its VAE: causality, teacher forcing, the ELBO."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoencoders import VAE
from autoencoders.autoregressive import AutoregressiveVAE, RowDecoder
from autoencoders.loss import kl_divergence_diag_gaussian
from autoencoders.nets import MLPEncoder

H = W = 6
D = 3


def make(context="all", seed=0):
    torch.manual_seed(seed)
    enc = MLPEncoder(in_shape=(1, H, W), hidden=(16,))
    return AutoregressiveVAE(enc, RowDecoder(D, H, W, hidden=12, context=context), D)


@pytest.mark.parametrize("context", ["all", "previous"])
def test_row_r_depends_only_on_the_rows_above(context):
    dec = RowDecoder(D, H, W, hidden=12, context=context)
    z = torch.randn(4, D)
    x = torch.bernoulli(torch.full((4, 1, H, W), 0.5))
    base = dec(z, x)
    for r in range(H):
        changed = x.clone()
        changed[:, :, r] = 1 - changed[:, :, r]
        out = dec(z, changed)
        # rows up to r do not see row r; with context='all' every later row does,
        # with 'previous' only row r + 1
        torch.testing.assert_close(out[:, :, : r + 1], base[:, :, : r + 1])
        if r + 1 < H:
            assert not torch.allclose(out[:, :, r + 1], base[:, :, r + 1])
        if context == "previous" and r + 2 < H:
            torch.testing.assert_close(out[:, :, r + 2:], base[:, :, r + 2:])


@pytest.mark.parametrize("context", ["all", "previous"])
def test_teacher_forcing_equals_step_by_step_decoding(context):
    """The parallel pass gives the logits a row-by-row loop gives on the same rows."""
    dec = RowDecoder(D, H, W, hidden=12, context=context)
    z = torch.randn(3, D)
    x = torch.bernoulli(torch.full((3, 1, H, W), 0.5))
    parallel = dec(z, x)[:, 0]
    row, state, steps = torch.zeros(3, W), None, []
    for r in range(H):
        inp = torch.cat([row, z], 1).unsqueeze(1)
        if context == "all":
            h, state = dec.rnn(inp, state)
            steps.append(dec.out(h)[:, 0])
        else:
            steps.append(dec.mlp(inp)[:, 0])
        row = x[:, 0, r]
    torch.testing.assert_close(parallel, torch.stack(steps, 1))


def test_loss_is_the_autoregressive_elbo():
    model = make()
    x = torch.bernoulli(torch.full((5, 1, H, W), 0.3))
    torch.manual_seed(1)
    out = model(x)
    res = model.compute_loss(x, out)
    log_px = torch.distributions.Bernoulli(logits=out.x_hat[:, 0]).log_prob(x).sum((1, 2, 3))
    kl = kl_divergence_diag_gaussian(out.mu, out.log_var)
    assert res.diagnostics["elbo"] == pytest.approx((log_px - kl).mean().item(), rel=1e-5)
    assert res.objective.item() == pytest.approx(-(log_px - kl).mean().item(), rel=1e-5)


def test_decode_generates_images_and_samples_per_code():
    model = make().eval()
    z = torch.randn(2, D)
    x_hat = model.decode(z).x_hat
    assert x_hat.shape == (2, 1, H, W)
    assert model.decode(torch.randn(2, 4, D)).x_hat.shape == (2, 4, 1, H, W)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    torch.testing.assert_close(model.decoder.generate(z, g1), model.decoder.generate(z, g2))
    assert isinstance(model, VAE)


def test_training_steps_lower_the_loss():
    model = make()
    x = torch.bernoulli(torch.full((64, 1, H, W), 0.2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        res = model.compute_loss(x, model(x))
        opt.zero_grad()
        res.objective.backward()
        opt.step()
        losses.append(res.objective.item())
    assert losses[-1] < losses[0] - 1.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="context"):
        RowDecoder(D, context="future")
    with pytest.raises(ValueError, match="hidden"):
        RowDecoder(D, hidden=0)
    dec = RowDecoder(D, H, W)
    with pytest.raises(ValueError, match="x must have shape"):
        dec(torch.randn(2, D), torch.zeros(2, 1, H, W + 1))
    with pytest.raises(ValueError, match="z must have shape"):
        dec(torch.randn(2, D + 1), torch.zeros(2, 1, H, W))
    with pytest.raises(TypeError, match="RowDecoder"):
        AutoregressiveVAE(nn.Flatten(), nn.Linear(D, H * W), D)
    with pytest.raises(ValueError, match="latent_dim"):
        AutoregressiveVAE(nn.Flatten(), RowDecoder(D + 1, H, W), D)
