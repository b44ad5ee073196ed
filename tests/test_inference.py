"""Tests for autoencoders.inference: codes, reconstructions, prior samples, paths, devices.

References are computed independently of the package: encoder and decoder weights are
applied by hand with ``F.linear``, distribution means come from ``torch.distributions``
(``Bernoulli(logits).mean``, ``ContinuousBernoulli(logits).mean``), interpolation
paths from their closed forms. The device policy is checked on the CPU with a model
whose ``.to()`` only records where it is sent and a ``get_device`` that answers the
``meta`` device.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autoencoders import AE, VAE, AdaGVAE, utils
from autoencoders import inference as inf
from autoencoders.metrics import active_units, kl_per_dimension, make_represent

META = torch.device("meta")


# ---------------------------------------------------------------------- tiny models
def make_ae(likelihood: str = "bernoulli", dropout: bool = True) -> AE:
    """Linear AE on 1x4x4 images with 3 latents; dropout makes train mode visibly random."""
    torch.manual_seed(0)
    decoder = [nn.Linear(3, 16), nn.Unflatten(1, (1, 4, 4))]
    if dropout:
        decoder.insert(0, nn.Dropout(0.5))
    return AE(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), nn.Sequential(*decoder), likelihood=likelihood)


def make_vae(likelihood: str = "bernoulli", latent: int = 3) -> VAE:
    torch.manual_seed(1)
    vae = VAE(
        nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.3)),
        nn.Sequential(nn.Dropout(0.3), nn.Linear(latent, 16), nn.Unflatten(1, (1, 4, 4))),
        latent_dim=latent,
        likelihood=likelihood,
    )
    return vae.build(torch.rand(2, 1, 4, 4))


def ae_parts(model: AE) -> tuple[nn.Linear, nn.Linear]:
    return model.encoder[1], model.decoder[-2]


def vae_mu(vae: VAE, x: torch.Tensor) -> torch.Tensor:
    """mu(x) by hand: Linear -> (no dropout in eval) -> the mu head."""
    first, head = vae.encoder[1], vae.sampling_layer.mu
    h = F.linear(x.flatten(1), first.weight, first.bias)
    return F.linear(h, head.weight, head.bias).detach()


def vae_logits(vae: VAE, z: torch.Tensor) -> torch.Tensor:
    dec = vae.decoder[1]
    return F.linear(z, dec.weight, dec.bias).view(-1, 1, 4, 4).detach()


def flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------------- encode_mean
def test_encode_mean_of_a_vae_is_the_posterior_mean_in_eval_mode(x):
    vae = make_vae()
    vae.train()
    vae.decoder.eval()  # mixed flags must survive exactly
    before = flags(vae)
    code = inf.encode_mean(vae, x)
    torch.testing.assert_close(code, vae_mu(vae, x), rtol=1e-5, atol=1e-6)
    assert flags(vae) == before and not code.requires_grad


def test_encode_mean_of_an_ae_is_its_code_and_adagvae_uses_its_vae(x):
    ae = make_ae()
    enc, _ = ae_parts(ae)
    expected = F.linear(x.flatten(1), enc.weight, enc.bias).detach()
    torch.testing.assert_close(inf.encode_mean(ae, x), expected, rtol=1e-5, atol=1e-6)
    vae = make_vae()
    torch.testing.assert_close(inf.encode_mean(AdaGVAE(vae), x), vae_mu(vae, x), rtol=1e-5, atol=1e-6)


def test_encode_mean_rejects_bad_arguments(x):
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        inf.encode_mean(make_ae(), x.tolist())
    with pytest.raises(TypeError, match="model must have a encode"):
        inf.encode_mean(object(), x)


# ---------------------------------------------------------------------- reconstruct
def test_reconstruct_bernoulli_ae_is_the_sigmoid_of_the_decoder_output(x):
    ae = make_ae("bernoulli")
    ae.train()
    enc, dec = ae_parts(ae)
    logits = F.linear(F.linear(x.flatten(1), enc.weight, enc.bias), dec.weight, dec.bias).view_as(x).detach()
    expected = torch.distributions.Bernoulli(logits=logits).mean  # no dropout: eval mode
    torch.testing.assert_close(inf.reconstruct(ae, x), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(inf.reconstruct(ae, x, raw=True), logits, rtol=1e-5, atol=1e-6)
    # likelihood= overrides the model's: the Gaussian mean is the decoder output itself.
    torch.testing.assert_close(inf.reconstruct(ae, x, likelihood="gaussian"), logits, rtol=1e-5, atol=1e-6)
    assert all(flags(ae))


def test_reconstruct_vae_decodes_the_posterior_mean_under_its_likelihood(x):
    for likelihood, mean in (
        ("bernoulli", lambda t: torch.distributions.Bernoulli(logits=t).mean),
        ("continuous_bernoulli", lambda t: torch.distributions.ContinuousBernoulli(logits=t).mean),
        ("gaussian", lambda t: t),
    ):
        vae = make_vae(likelihood)
        vae.train()
        # float64 reference: torch's float32 continuous-Bernoulli mean is a coarse
        # Taylor value (exactly 0.5) for |logit| < 0.004.
        expected = mean(vae_logits(vae, vae_mu(vae, x)).double())
        got = inf.reconstruct(vae, x)
        torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=2e-5)
        assert not got.requires_grad and all(flags(vae))


def test_reconstruct_of_adagvae_uses_its_vae(x):
    vae = make_vae("bernoulli")
    expected = torch.sigmoid(vae_logits(vae, vae_mu(vae, x)))
    torch.testing.assert_close(inf.reconstruct(AdaGVAE(vae), x), expected, rtol=1e-5, atol=1e-6)


def test_reconstruct_checks_shapes_and_means(x):
    bad = AE(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), nn.Linear(2, 16))  # flat output
    with pytest.raises(ValueError, match=r"shape of x = \[5, 1, 4, 4\], got \[5, 16\]"):
        inf.reconstruct(bad, x)

    def my_log_prob(target, x_hat):
        return -(target - x_hat) ** 2

    with pytest.raises(ValueError, match="my_log_prob"):
        inf.reconstruct(make_ae(), x, likelihood=my_log_prob)
    with pytest.raises(TypeError, match="raw must be True or False, got 1"):
        inf.reconstruct(make_ae(), x, raw=1)


# ---------------------------------------------------------------------- decode / sample_prior
def test_sample_prior_decodes_standard_normal_draws_from_the_cpu_generator():
    vae = make_vae("bernoulli", latent=3)
    vae.train()
    got = inf.sample_prior(vae, 6, torch.Generator().manual_seed(5))
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(5))
    expected = torch.distributions.Bernoulli(logits=vae_logits(vae, z)).mean
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    raw = inf.sample_prior(vae, 6, torch.Generator().manual_seed(5), raw=True)
    torch.testing.assert_close(raw, vae_logits(vae, z), rtol=1e-5, atol=1e-6)
    assert all(flags(vae)) and got.shape == (6, 1, 4, 4)


def test_sample_prior_rejects_bad_arguments():
    vae = make_vae()
    with pytest.raises(TypeError, match="latent_dim"):
        inf.sample_prior(make_ae(), 4)
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        inf.sample_prior(vae, 0)
    with pytest.raises(TypeError, match="n must be an int >= 1, got float 2.5"):
        inf.sample_prior(vae, 2.5)
    with pytest.raises(TypeError, match="rng must be None, an int seed or a torch.Generator, got str"):
        inf.sample_prior(vae, 2, rng="5")
    torch.testing.assert_close(inf.sample_prior(vae, 2, rng=5), inf.sample_prior(vae, 2, rng=torch.Generator().manual_seed(5)))


def test_decode_casts_codes_to_the_models_dtype_and_takes_the_mean():
    vae = make_vae("bernoulli").double()
    z = torch.randn(4, 3)  # float32 codes for a float64 model
    got = inf.decode(vae, z)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, torch.sigmoid(vae_logits(vae, z.double())))
    with pytest.raises(TypeError, match="z must be a torch.Tensor, got ndarray"):
        inf.decode(vae, z.numpy())


# ---------------------------------------------------------------------- interpolate
def test_interpolate_linear_and_slerp_against_closed_forms():
    a = torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, -1.0, 3.0]], dtype=torch.float64)
    ts = np.linspace(0.0, 1.0, 5)
    linear = torch.stack([(1 - t) * a[0] + t * b[0] for t in ts])
    torch.testing.assert_close(inf.interpolate(a, b, 5)[0], linear)
    # Orthonormal ends: the great circle is cos(t pi/2) e0 + sin(t pi/2) e1.
    e0, e1 = torch.eye(3, dtype=torch.float64)[:2]
    circle = torch.stack([math.cos(t * math.pi / 2) * e0 + math.sin(t * math.pi / 2) * e1 for t in ts])
    torch.testing.assert_close(inf.interpolate(e0, e1, 5, "slerp"), circle)
    from autoencoders.viz import interpolate_latents  # the chapters' name keeps working

    torch.testing.assert_close(interpolate_latents(e0, e1, 5, "slerp"), circle)
    with pytest.raises(ValueError, match="method must be 'linear' or 'slerp', got 'cubic'"):
        inf.interpolate(e0, e1, 5, "cubic")
    with pytest.raises(ValueError, match="steps must be an int >= 2, got 1"):
        inf.interpolate(e0, e1, 1)


# ---------------------------------------------------------------------- evaluating
def test_evaluating_restores_flags_after_an_error():
    model = make_vae()
    model.train()
    model.encoder.eval()
    before = flags(model)
    with pytest.raises(RuntimeError, match="boom"), inf.evaluating(model):
        assert not any(flags(model)) and not torch.is_grad_enabled()
        raise RuntimeError("boom")
    assert flags(model) == before and torch.is_grad_enabled()


def test_log_normal_diag_is_re_exported_and_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    z, mu, log_var = (torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(3))
    expected = torch.distributions.Normal(mu, (0.5 * log_var).exp()).log_prob(z).sum(-1)
    torch.testing.assert_close(inf.log_normal_diag(z, mu, log_var), expected)


# ---------------------------------------------------------------------- device policy
class Probe(nn.Module):
    """Records the device and mode its batches are encoded in; ``.to()`` only records."""

    def __init__(self, fail_at: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))
        self.drop = nn.Dropout(0.5)
        self.moves: list[torch.device] = []
        self.seen: list[tuple[torch.device, bool]] = []
        self.fail_at = fail_at

    def to(self, *args, **kwargs):  # a real move to 'meta' would lose the weights
        self.moves.append(torch.device(args[0]))
        return self

    def encode(self, x):
        self.seen.append((x.device, self.training))
        if self.fail_at is not None and len(self.seen) > self.fail_at:
            raise RuntimeError("encoder failed")
        n = x.shape[0]
        mu = torch.arange(2.0 * n, dtype=torch.float64).reshape(n, 2)
        return SimpleNamespace(z=mu, mu=mu, log_var=torch.zeros(n, 2, dtype=torch.float64))


DATA = torch.arange(12).reshape(6, 2)  # integers: no NaN check, any device


@pytest.fixture
def sentinel_device(monkeypatch):
    """``get_device(None)`` answers 'meta'; every call's argument is recorded."""
    calls = []

    def fake_get_device(device=None):
        calls.append(device)
        return META if device is None else torch.device(device)

    monkeypatch.setattr(utils, "get_device", fake_get_device)
    return calls


@pytest.mark.parametrize(
    "run",
    [
        lambda m: inf.encode_dataset(m, DATA, batch_size=4),
        lambda m: active_units(m, DATA, batch_size=4),
        lambda m: kl_per_dimension(m, DATA, batch_size=4),
        lambda m: make_represent(m, lambda f: torch.as_tensor(f), batch_size=4)(DATA.numpy()),
    ],
    ids=["encode_dataset", "active_units", "kl_per_dimension", "make_represent"],
)
def test_device_none_means_get_device_and_the_model_goes_back(sentinel_device, run):
    probe = Probe().train()
    run(probe)
    assert sentinel_device == [None]
    assert probe.moves == [META, torch.device("cpu")]  # there for the pass, then home
    assert probe.seen == [(META, False), (META, False)]  # both batches on it, in eval mode
    assert probe.training and probe.drop.training


def test_device_policy_reads_autoencoders_device(monkeypatch):
    """Through the real get_device: $AUTOENCODERS_DEVICE decides, not the model's place."""
    monkeypatch.setenv("AUTOENCODERS_DEVICE", "meta")
    probe = Probe()
    codes = inf.encode_dataset(probe, DATA, batch_size=6)
    assert probe.moves == [META, torch.device("cpu")] and probe.seen == [(META, False)]
    assert codes.device.type == "cpu" and codes.shape == (6, 2)


def test_explicit_device_wins_and_an_error_still_sends_the_model_home(sentinel_device):
    probe = Probe()
    inf.encode_dataset(probe, DATA, device="cpu")
    assert sentinel_device == ["cpu"] and probe.moves == []  # already there: not moved
    failing = Probe(fail_at=1).train()
    with pytest.raises(RuntimeError, match="encoder failed"):
        kl_per_dimension(failing, DATA, batch_size=4)
    assert failing.moves == [META, torch.device("cpu")] and failing.training


def test_encode_dataset_rejects_bad_devices_and_split_models():
    with pytest.raises(TypeError, match="device must be a str, torch.device or None, got int"):
        inf.encode_dataset(Probe(), DATA, device=0)
    split = Probe()
    split.other = nn.Parameter(torch.zeros(1, device="meta"))
    with pytest.raises(ValueError, match=r"several devices \['cpu', 'meta'\]"):
        inf.encode_dataset(split, DATA)


def test_per_batch_helpers_compute_where_the_model_is(sentinel_device, x):
    """encode_mean and friends take no device: they follow the model, not get_device."""
    vae = make_vae()
    assert inf.encode_mean(vae, x).device.type == "cpu"
    assert inf.reconstruct(vae, x).device.type == "cpu"
    assert inf.sample_prior(vae, 2).device.type == "cpu"
    assert sentinel_device == []
