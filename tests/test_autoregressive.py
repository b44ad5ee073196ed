"""The PixelCNN decoder and its VAE: causality, teacher forcing, the ELBO, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoencoders import VAE
from autoencoders.autoregressive import AutoregressiveVAE, MaskedConv2d, PixelCNNDecoder
from autoencoders.loss import kl_divergence_diag_gaussian
from autoencoders.nets import MLPEncoder

H = W = 6
D = 3
CONFIGS = [dict(layers=2, first_kernel=3, code="bias"), dict(layers=1, first_kernel=5, code="map"),
           dict(layers=0, first_kernel=3, code="map")]


def make_decoder(seed=0, **kw):
    torch.manual_seed(seed)
    return PixelCNNDecoder(D, H, W, channels=5, map_channels=2, **kw)


def make(seed=0, **kw):
    torch.manual_seed(seed)
    enc = MLPEncoder(in_shape=(1, H, W), hidden=(16,))
    return AutoregressiveVAE(enc, make_decoder(seed, **kw), D)


def _before(r, c):
    """Raster order: the pixels strictly before (r, c)."""
    idx = torch.arange(H * W).view(H, W)
    return idx < r * W + c


@pytest.mark.parametrize("mask", ["A", "B"])
def test_masked_conv_sees_only_the_past(mask):
    torch.manual_seed(0)
    conv = MaskedConv2d(1, 4, 5, mask)
    nn.init.normal_(conv.weight)
    for r, c in [(0, 0), (2, 3), (5, 5)]:
        x = torch.randn(1, 1, H, W, requires_grad=True)
        (g,) = torch.autograd.grad(conv(x)[0, :, r, c].sum(), x)
        allowed = _before(r, c)
        if mask == "B":
            allowed[r, c] = True
        window = torch.zeros(H, W, dtype=torch.bool)  # the 5 x 5 neighbourhood
        window[max(r - 2, 0): r + 3, max(c - 2, 0): c + 3] = True
        assert torch.equal(g[0, 0] != 0, allowed & window)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_pixel_logit_depends_only_on_earlier_pixels(cfg):
    """Finite changes, one pixel at a time: no logit at or before it may move."""
    dec = make_decoder(**cfg)
    z = torch.randn(2, D)
    x = torch.bernoulli(torch.full((2, 1, H, W), 0.5))
    base = dec(z, x)
    for i in range(H * W):
        r, c = divmod(i, W)
        changed = x.clone()
        changed[:, 0, r, c] = 1 - changed[:, 0, r, c]
        moved = (dec(z, changed) - base).abs().amax(0)[0] > 0
        assert not moved.view(-1)[: i + 1].any(), (r, c)


def test_context_of_the_smallest_decoder_is_the_four_neighbours_above_and_left():
    dec = make_decoder(layers=0, first_kernel=3, code="bias")
    want = torch.zeros(H, W, dtype=torch.bool)
    want[1, 1:4] = True
    want[2, 1] = True
    assert torch.equal(dec.context(2, 2), want)
    assert dec.context(0, 0).sum() == 0


def test_context_grows_with_layers_and_matches_finite_differences():
    small, big = make_decoder(layers=0, first_kernel=3), make_decoder(layers=3, first_kernel=3)
    assert small.context(4, 3).sum() < big.context(4, 3).sum()
    z, x = torch.zeros(1, D), torch.rand(1, 1, H, W)
    base = big(z, x)[0, 0, 4, 3]
    fd = torch.zeros(H, W, dtype=torch.bool)
    for i in range(H * W):
        r, c = divmod(i, W)
        bumped = x.clone()
        bumped[0, 0, r, c] += 0.5
        fd[r, c] = big(z, bumped)[0, 0, 4, 3] != base
    assert torch.equal(big.context(4, 3), fd)
    assert not (fd & ~_before(4, 3)).any()


@pytest.mark.parametrize("cfg", CONFIGS)
def test_generation_logits_equal_the_teacher_forced_logits_of_the_sample(cfg):
    dec = make_decoder(**cfg)
    z = torch.randn(3, D)
    g = torch.Generator().manual_seed(0)
    logits = dec.generate(z, g)
    # regenerate the same sample with the same seed to get the pixels drawn
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(3, 1, H, W)
    for i in range(H * W):
        r, c = divmod(i, W)
        x[:, 0, r, c] = torch.bernoulli(torch.sigmoid(logits[:, 0, r, c]), generator=g)
    torch.testing.assert_close(dec(z, x), logits)


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
    model = make(code="map").eval()
    z = torch.randn(2, D)
    x_hat = model.decode(z).x_hat
    assert x_hat.shape == (2, 1, H, W)
    assert model.decode(torch.randn(2, 4, D)).x_hat.shape == (2, 4, 1, H, W)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    torch.testing.assert_close(model.decoder.generate(z, g1), model.decoder.generate(z, g2))
    assert isinstance(model, VAE)


@pytest.mark.parametrize("code", ["bias", "map"])
def test_training_steps_lower_the_loss(code):
    model = make(code=code)
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
    with pytest.raises(ValueError, match="mask must be 'A' or 'B', got 'C'"):
        MaskedConv2d(1, 1, 3, "C")
    with pytest.raises(ValueError, match="kernel_size must be odd, got 4"):
        MaskedConv2d(1, 1, 4, "B")
    with pytest.raises(ValueError, match="kernel_size must be an int >= 3, got 1"):
        MaskedConv2d(1, 1, 1, "A")
    with pytest.raises(ValueError, match="code must be one of"):
        PixelCNNDecoder(D, code="film")
    with pytest.raises(ValueError, match="layers must be an int >= 0, got -1"):
        PixelCNNDecoder(D, layers=-1)
    with pytest.raises(ValueError, match="channels must be an int >= 1, got 0"):
        PixelCNNDecoder(D, channels=0)
    dec = PixelCNNDecoder(D, H, W)
    with pytest.raises(ValueError, match="x must have shape"):
        dec(torch.randn(2, D), torch.zeros(2, 1, H, W + 1))
    with pytest.raises(ValueError, match="z must have shape"):
        dec(torch.randn(2, D + 1), torch.zeros(2, 1, H, W))
    with pytest.raises(ValueError, match=r"\(row, col\) must lie in the 6x6 image, got \(6, 0\)"):
        dec.context(6, 0)
    with pytest.raises(TypeError, match="PixelCNNDecoder"):
        AutoregressiveVAE(nn.Flatten(), nn.Linear(D, H * W), D)
    with pytest.raises(ValueError, match="latent_dim"):
        AutoregressiveVAE(nn.Flatten(), PixelCNNDecoder(D + 1, H, W), D)
