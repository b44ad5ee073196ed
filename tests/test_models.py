"""Behaviour contract of AE, VAE and AdaGVAE (issue 2), checked against independent
references: a numpy Ada-GVAE, a linear-Gaussian VAE with a closed-form marginal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from autoencoders import (
    AE,
    VAE,
    AdaGVAE,
    AdaGVAEOutput,
    AEOutput,
    VAEOutput,
    kl_divergence_diag_gaussian,
)
from autoencoders.variational import VAEDecodeOutput, VAEEncodeOutput, adaptive_shared_mask

IMG = (1, 6, 6)
N_PIX = 36


def mlp_vae(latent=3, batchnorm=False, dropout=0.0) -> VAE:
    layers = [nn.Flatten(), nn.Linear(N_PIX, 16)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.Tanh(), nn.Dropout(dropout)]
    dec = nn.Sequential(nn.Linear(latent, 16), nn.Tanh(), nn.Linear(16, N_PIX), nn.Unflatten(1, IMG))
    return VAE(nn.Sequential(*layers), dec, latent)


def mlp_ae(latent=3) -> AE:
    enc = nn.Sequential(nn.Flatten(), nn.LazyLinear(16), nn.Tanh(), nn.Linear(16, latent))
    dec = nn.Sequential(nn.Linear(latent, N_PIX), nn.Unflatten(1, IMG))
    return AE(enc, dec)


@pytest.fixture
def x():
    return torch.rand(5, *IMG, generator=torch.Generator().manual_seed(0))


# ----------------------------------------------------------------------------- outputs
def test_outputs_are_keyword_dataclasses_with_exact_fields():
    import dataclasses

    from autoencoders.vanilla import AEDecodeOutput, AEEncodeOutput

    expected = {
        AEOutput: ["x_hat", "z"],
        AEEncodeOutput: ["z"],
        AEDecodeOutput: ["x_hat"],
        VAEOutput: ["x_hat", "z", "mu", "log_var"],
        VAEEncodeOutput: ["z", "mu", "log_var"],
        VAEDecodeOutput: ["x_hat"],
        AdaGVAEOutput: ["output1", "output2", "shared_mask"],
    }
    assert AEDecodeOutput is VAEDecodeOutput  # one decode output type for every model
    for cls, names in expected.items():
        assert [f.name for f in dataclasses.fields(cls)] == names
    out = VAEOutput(x_hat=torch.zeros(2, 1, 3), z=torch.zeros(2, 1, 4), mu=torch.zeros(2, 4), log_var=torch.zeros(2, 4))
    assert repr(out).startswith("VAEOutput(x_hat=Tensor(shape=(2, 1, 3), dtype=torch.float32), z=Tensor(")
    assert "0." not in repr(out)  # values are never printed


# ----------------------------------------------------------------------------- AE
def test_ae_forward_shapes_and_no_grad_inference(x):
    model = mlp_ae().build(x)
    out = model(x)
    assert out.x_hat.shape == x.shape and out.z.shape == (5, 3)
    assert out.x_hat.requires_grad
    z = model.encode(x).z
    assert not z.requires_grad and not torch.is_inference(z)
    assert not model.decode(z).x_hat.requires_grad
    # encode output is usable as a constant inside a later autograd graph
    w = torch.ones(3, requires_grad=True)
    (z * w).sum().backward()
    assert w.grad is not None


def test_ae_loss_is_mean_of_per_example_sum(x):
    model = mlp_ae().build(x)
    out = model(x)
    res = model.compute_loss(x, out, likelihood="gaussian")
    manual = (0.5 * (x - out.x_hat) ** 2).flatten(1).sum(1).mean()
    torch.testing.assert_close(res.objective, manual)
    assert set(res.diagnostics) == {"log_likelihood"}
    assert isinstance(res.diagnostics["log_likelihood"], float)
    assert res.diagnostics["log_likelihood"] == pytest.approx(-manual.item(), rel=1e-6)


def test_ae_shape_mismatch_error_prints_both_shapes(x):
    model = mlp_ae().build(x)
    bad = AEOutput(x_hat=torch.zeros(5, 36), z=torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"x_hat must have shape x.shape = \[5, 1, 6, 6\], got \[5, 36\]"):
        model.compute_loss(x, bad)


def test_non_tensor_inputs_raise_type_error():
    model = mlp_ae()
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        model([[0.0] * 36])
    with pytest.raises(TypeError, match="encoder must be a torch.nn.Module"):
        AE("enc", nn.Identity())
    with pytest.raises(TypeError, match="x must be a pair"):
        AdaGVAE(mlp_vae())(torch.zeros(2, *IMG))


def test_nan_inputs_are_not_turned_into_numbers(x):
    model = mlp_vae().build(x)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"x contains NaN or inf"):
        model.compute_loss(bad, model(bad))


# ----------------------------------------------------------------------------- VAE modes and S
def test_vae_train_mode_samples_independently(x):
    model = mlp_vae().build(x).train()
    out = model(x, S=4)
    assert out.x_hat.shape == (5, 4, *IMG) and out.z.shape == (5, 4, 3)
    assert out.mu.shape == out.log_var.shape == (5, 3)
    assert not torch.allclose(out.z[:, 0], out.z[:, 1])  # independent noise per sample
    again = model(x, S=4)
    assert not torch.allclose(out.z, again.z)
    # the samples really come from N(mu, sigma^2): standardised noise has unit scale
    eps = (model(x, S=4000).z - out.mu.unsqueeze(1)) / torch.exp(0.5 * out.log_var).unsqueeze(1)
    assert abs(eps.mean().item()) < 0.03 and abs(eps.std().item() - 1) < 0.03


def test_vae_eval_mode_is_deterministic(x):
    model = mlp_vae().build(x).eval()
    a, b = model(x, S=3), model(x, S=3)
    torch.testing.assert_close(a.x_hat, b.x_hat, rtol=0, atol=0)
    torch.testing.assert_close(a.z, a.mu.unsqueeze(1).expand(-1, 3, -1), rtol=0, atol=0)
    forced = model(x, S=2, sample=True)
    assert not torch.allclose(forced.z[:, 0], forced.mu)


def test_vae_encode_decode_shapes(x):
    model = mlp_vae().build(x).eval()
    enc = model.encode(x)
    assert enc.z.shape == (5, 3) and not enc.z.requires_grad
    torch.testing.assert_close(enc.z, enc.mu)
    assert model.encode(x, S=2).z.shape == (5, 2, 3)
    assert model.decode(torch.zeros(5, 3)).x_hat.shape == (5, *IMG)
    assert model.decode(torch.zeros(5, 2, 3)).x_hat.shape == (5, 2, *IMG)
    with pytest.raises(ValueError, match=r"z must have shape \[B, D_z\] or \[B, S, D_z\] with D_z = 3, got \[5, 4\]"):
        model.decode(torch.zeros(5, 4))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_vae_rejects_bad_sample_counts(x, bad):
    model = mlp_vae().build(x)
    with pytest.raises(ValueError, match=r"S \(number of latent samples\) must be an int >= 1, got"):
        model(x, S=bad)


def test_vae_shape_mismatch_error(x):
    model = mlp_vae().build(x)
    out = model(x, S=1)
    bad = VAEOutput(x_hat=out.x_hat.reshape(5, 1, 36), z=out.z, mu=out.mu, log_var=out.log_var)
    with pytest.raises(ValueError, match=r"\[B, S, \*x.shape\[1:\]\] = \[5, 1, 1, 6, 6\], got \[5, 1, 36\]"):
        model.compute_loss(x, bad)
    no_s = VAEOutput(x_hat=out.x_hat[:, 0], z=out.z, mu=out.mu, log_var=out.log_var)
    with pytest.raises(ValueError, match="got \\[5, 1, 6, 6\\]"):
        model.compute_loss(x, no_s)


# ----------------------------------------------------------------------------- VAE loss
def test_vae_loss_formula_beta_and_true_elbo(x):
    model = mlp_vae().build(x)
    out = model(x, S=3)
    res = model.compute_loss(x, out, beta=4.0, likelihood="bernoulli")
    # independent computation: Bernoulli log-prob via the cross-entropy identity
    lp = x.unsqueeze(1) * out.x_hat - torch.nn.functional.softplus(out.x_hat)
    ll = lp.flatten(2).sum(2).mean(1)
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(out.mu, torch.exp(0.5 * out.log_var)), torch.distributions.Normal(0.0, 1.0)
    ).sum(1)
    torch.testing.assert_close(res.objective, -(ll - 4.0 * kl).mean(), rtol=1e-5, atol=1e-5)
    d = res.diagnostics
    assert d["log_likelihood"] == pytest.approx(ll.mean().item(), rel=1e-5)
    assert d["kl_divergence"] == pytest.approx(kl.mean().item(), rel=1e-5)
    assert d["elbo"] == pytest.approx((ll - kl).mean().item(), rel=1e-5)  # no beta in the ELBO
    assert all(type(v) is float for v in d.values())


def test_vae_free_bits_floor_per_dimension(x):
    model = mlp_vae().build(x)
    out = model(x)
    lam = 0.5
    res = model.compute_loss(x, out, free_bits=lam, beta=2.0)
    kl_dims = 0.5 * (out.mu**2 + out.log_var.exp() - 1 - out.log_var)
    ll = (-0.5 * (x.unsqueeze(1) - out.x_hat) ** 2).flatten(2).sum(2).mean(1)
    floor = torch.maximum(kl_dims.mean(0), torch.tensor(lam)).sum()
    torch.testing.assert_close(res.objective, -(ll.mean() - 2.0 * floor), rtol=1e-5, atol=1e-5)
    # an untrained posterior is close to the prior, so the floor is active
    assert (kl_dims.mean(0) < lam).any()


@pytest.mark.parametrize("arg", ["beta", "free_bits"])
def test_vae_rejects_negative_weights(x, arg):
    model = mlp_vae().build(x)
    with pytest.raises(ValueError, match=f"{arg} must be a finite float >= 0, got -1"):
        model.compute_loss(x, model(x), **{arg: -1})


# ----------------------------------------------------------------------------- build / state
def test_build_keeps_batchnorm_stats_and_restores_mixed_flags(x):
    model = mlp_vae(batchnorm=True, dropout=0.5)
    model.train()
    model.decoder.eval()  # a mixed state must survive build()
    bn = model.encoder[2]
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    model.build(x)
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert torch.equal(bn.num_batches_tracked, before[2])
    assert model.training and model.encoder.training and bn.training
    assert not model.decoder.training and not model.decoder[0].training


def test_load_state_dict_requires_build_and_round_trips(x):
    source = mlp_vae(batchnorm=True).build(x)
    fresh = mlp_vae(batchnorm=True)
    with pytest.raises(RuntimeError, match=r"call build\(\) first"):
        fresh.load_state_dict(source.state_dict())
    fresh.build(x)
    fresh.load_state_dict(source.state_dict())
    source.eval(), fresh.eval()
    torch.testing.assert_close(fresh(x).x_hat, source(x).x_hat, rtol=0, atol=0)


def test_adagvae_build_and_state_go_through_the_vae(x):
    model = AdaGVAE(mlp_vae())
    with pytest.raises(RuntimeError, match=r"call build\(\) first"):
        model.load_state_dict(AdaGVAE(mlp_vae()).state_dict())
    model.build((x, x))
    other = AdaGVAE(mlp_vae()).build((x, x))
    other.load_state_dict(model.state_dict())
    assert all(k.startswith("vae.") for k in model.state_dict())
    model.eval(), other.eval()
    torch.testing.assert_close(other((x, x)).output1.x_hat, model((x, x)).output1.x_hat, rtol=0, atol=0)


# ----------------------------------------------------------------------------- Ada-GVAE
def numpy_adagvae(mu1, lv1, mu2, lv2):
    """Reference implementation written from the formulas in the issue, in numpy."""
    mu1, lv1, mu2, lv2 = (np.asarray(a, dtype=np.float64) for a in (mu1, lv1, mu2, lv2))
    v1, v2 = np.exp(lv1), np.exp(lv2)
    kl = 0.5 * (np.log(v2 / v1) + (v1 + (mu1 - mu2) ** 2) / v2 - 1)
    out = []
    for b in range(mu1.shape[0]):
        tau = (kl[b].max() + kl[b].min()) / 2
        shared = np.array([k < tau for k in kl[b]])
        m = (mu1[b] + mu2[b]) / 2
        v = np.log((v1[b] + v2[b]) / 2)
        out.append((shared, np.where(shared, m, mu1[b]), np.where(shared, v, lv1[b]),
                    np.where(shared, m, mu2[b]), np.where(shared, v, lv2[b])))
    return out


class _FixedPosterior(nn.Module):
    """Encoder whose features are the inputs; heads set to the identity below."""

    def forward(self, x):
        return x


def _vae_with_given_posteriors(D):
    # features = [mu | log_var]; the heads pick the halves, so posteriors are exact inputs.
    vae = VAE(_FixedPosterior(), nn.Linear(D, 2), D)
    vae.build(torch.zeros(1, 2 * D))
    with torch.no_grad():
        eye = torch.eye(D)
        vae.sampling_layer.mu.weight.copy_(torch.cat([eye, torch.zeros(D, D)], 1))
        vae.sampling_layer.log_var.weight.copy_(torch.cat([torch.zeros(D, D), eye], 1))
        vae.sampling_layer.mu.bias.zero_()
        vae.sampling_layer.log_var.bias.zero_()
    return vae.double()


def test_adagvae_aggregation_matches_numpy_reference_with_ties():
    D, B = 6, 40
    g = torch.Generator().manual_seed(5)
    mu1, lv1, mu2, lv2 = torch.randn(4, B, D, generator=g, dtype=torch.float64)
    lv1, lv2 = 2 * lv1, 2 * lv2
    # ties: rows where several dims have the same KL, and a row where all are equal
    mu2[0, :3] = mu1[0, :3]
    lv2[0, :3] = lv1[0, :3]
    mu2[1], lv2[1] = mu1[1], lv1[1]  # identical posteriors: all KL equal (zero)
    mu1[2], mu2[2] = 0.5, 1.5  # exactly equal KL in every dim
    lv1[2] = 0.0
    lv2[2] = 0.0  # all KL equal (0.5): nothing shared
    model = AdaGVAE(_vae_with_given_posteriors(D)).eval()
    x1, x2 = torch.cat([mu1, lv1], 1), torch.cat([mu2, lv2], 1)
    out = model((x1, x2))
    ref = numpy_adagvae(mu1, lv1, mu2, lv2)
    _, tau, shared = model.shared_dimensions((x1, x2))
    for b, (sh, m1, v1, m2, v2) in enumerate(ref):
        assert shared[b].numpy().tolist() == sh.tolist(), f"row {b}"
        np.testing.assert_allclose(out.output1.mu[b].detach().numpy(), m1, rtol=1e-12)
        np.testing.assert_allclose(out.output1.log_var[b].detach().numpy(), v1, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out.output2.mu[b].detach().numpy(), m2, rtol=1e-12)
        np.testing.assert_allclose(out.output2.log_var[b].detach().numpy(), v2, rtol=1e-12, atol=1e-12)
    assert not shared[1].any() and not shared[2].any()
    assert shared[0].sum() >= 3
    # eval mode is deterministic: z is the adapted mean
    torch.testing.assert_close(out.output1.z[:, 0], out.output1.mu)


def test_adagvae_log_var_average_is_stable_for_extreme_values():
    lv1 = torch.tensor([[-30.0, 30.0]], dtype=torch.float64)
    lv2 = torch.tensor([[30.0, -30.0]], dtype=torch.float64)
    ref = np.log((np.exp(lv1.numpy()) + np.exp(lv2.numpy())) / 2)
    got = torch.logaddexp(lv1, lv2) - math.log(2)
    np.testing.assert_allclose(got.numpy(), ref)
    _, _, shared = adaptive_shared_mask(torch.zeros(1, 2), lv1.float(), torch.zeros(1, 2), lv2.float())
    assert shared.dtype == torch.bool


def test_adagvae_train_mode_samples_each_view_and_loss_sums(x):
    vae = mlp_vae().build(x)
    model = AdaGVAE(vae).train()
    x2 = x.flip(0)
    out = model((x, x2), S=2)
    assert out.output1.x_hat.shape == (5, 2, *IMG)
    assert not torch.allclose(out.output1.z, out.output2.z)
    res = model.compute_loss((x, x2), out, beta=3.0, likelihood="bernoulli")
    r1 = vae.compute_loss(x, out.output1, beta=3.0, likelihood="bernoulli")
    r2 = vae.compute_loss(x2, out.output2, beta=3.0, likelihood="bernoulli")
    torch.testing.assert_close(res.objective, r1.objective + r2.objective)
    d = res.diagnostics
    assert set(d) == {"elbo", "log_likelihood_x1", "log_likelihood_x2", "kl_divergence_x1", "kl_divergence_x2", "shared_dims"}
    assert d["elbo"] == pytest.approx(r1.diagnostics["elbo"] + r2.diagnostics["elbo"], rel=1e-6)
    _, _, shared = model.shared_dimensions((x, x2))
    assert d["shared_dims"] == pytest.approx(shared.sum(1).float().mean().item())


def test_adagvae_rejects_unequal_shapes(x):
    model = AdaGVAE(mlp_vae()).build((x, x))
    with pytest.raises(ValueError, match=r"x1 and x2 must have equal shapes, got \[5, 1, 6, 6\] and \[4, 1, 6, 6\]"):
        model((x, x[:4]))
    with pytest.raises(TypeError, match="vae must be an autoencoders.VAE"):
        AdaGVAE(mlp_ae())


# ----------------------------------------------------------------------------- IWAE
class _Linear(nn.Module):
    def __init__(self, weight, bias):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    def forward(self, z):
        return z @ self.weight.T + self.bias


def _linear_gaussian_vae(perturb: float, seed=0):
    """x = W z + b + noise, noise ~ N(0, I), z ~ N(0, I), with orthogonal W columns so
    the exact posterior is diagonal: q can match it exactly (perturb = 0)."""
    g = torch.Generator().manual_seed(seed)
    Dx, Dz = 5, 2
    q, _ = torch.linalg.qr(torch.randn(Dx, Dz, generator=g, dtype=torch.float64))
    W = q * torch.tensor([2.0, 0.7], dtype=torch.float64)
    b = torch.randn(Dx, generator=g, dtype=torch.float64)
    prec = W.T @ W + torch.eye(Dz, dtype=torch.float64)  # diagonal by construction
    post_var = torch.diag(1.0 / torch.diagonal(prec))
    A = post_var @ W.T  # posterior mean = A (x - b)
    vae = VAE(nn.Identity(), _Linear(W, b), Dz).double()
    vae.build(torch.zeros(1, Dx, dtype=torch.float64))
    with torch.no_grad():
        vae.sampling_layer.mu.weight.copy_(A * (1 + perturb))
        vae.sampling_layer.mu.bias.copy_(-(A @ b) * (1 + perturb) + perturb)
        vae.sampling_layer.log_var.weight.zero_()
        vae.sampling_layer.log_var.bias.copy_(torch.log(torch.diagonal(post_var)) + 3 * perturb)
    exact = torch.distributions.MultivariateNormal(b, W @ W.T + torch.eye(Dx, dtype=torch.float64))
    return vae.eval(), exact


def test_iwae_is_exact_when_q_is_the_true_posterior():
    torch.manual_seed(0)
    vae, exact = _linear_gaussian_vae(perturb=0.0)
    x = exact.sample((16,))
    est = vae.log_marginal_likelihood(x, K=3, likelihood="gaussian")
    torch.testing.assert_close(est, exact.log_prob(x), rtol=1e-9, atol=1e-9)


def test_iwae_tightens_with_k_and_stays_below_log_px():
    torch.manual_seed(1)
    vae, exact = _linear_gaussian_vae(perturb=0.6)
    x = exact.sample((64,))
    truth = exact.log_prob(x).mean().item()
    gaps = {}
    for K in (1, 10, 100, 2000):
        gaps[K] = truth - vae.log_marginal_likelihood(x, K=K, likelihood="gaussian", batch_size=16).mean().item()
    assert gaps[1] > gaps[10] > gaps[100] > gaps[2000] > -0.01, gaps
    assert gaps[2000] < 0.1 * gaps[1], gaps
    # the analytic ELBO (plus the Gaussian constant) is below log p(x) too
    out = vae(x, S=2000, sample=True)
    res = vae.compute_loss(x, out, likelihood="gaussian")
    elbo = res.diagnostics["elbo"] - 0.5 * math.log(2 * math.pi) * x.shape[1]
    assert elbo < truth - 0.5 * gaps[1]
    assert abs(elbo - (truth - gaps[1])) < 0.05 * gaps[1] + 0.05  # K = 1 estimates the ELBO


def test_iwae_samples_even_in_eval_mode_and_validates_k():
    vae, exact = _linear_gaussian_vae(perturb=0.6)
    x = exact.sample((4,))
    a, b = vae.log_marginal_likelihood(x, K=5), vae.log_marginal_likelihood(x, K=5)
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="must be an int >= 1, got 0"):
        vae.log_marginal_likelihood(x, K=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int or None, got 0"):
        vae.log_marginal_likelihood(x, K=2, batch_size=0)


def test_adagvae_aggregate_hook_makes_ada_ml_vae_a_one_method_subclass(x):
    """Override aggregate with the product of the two Gaussians (Ada-ML-VAE); the
    shared dimensions must then carry the precision-weighted posterior, computed here
    by hand, and the others their own."""

    class AdaMLVAE(AdaGVAE):
        def aggregate(self, mu1, log_var1, mu2, log_var2):
            p1, p2 = torch.exp(-log_var1), torch.exp(-log_var2)
            return (mu1 * p1 + mu2 * p2) / (p1 + p2), -torch.log(p1 + p2)

    model = AdaMLVAE(mlp_vae()).build((x, x.flip(0))).eval()
    out = model((x, x.flip(0)))
    mu1, lv1 = model.vae.posterior(x)
    mu2, lv2 = model.vae.posterior(x.flip(0))
    prec = 1 / lv1.exp() + 1 / lv2.exp()
    mu_ml = (mu1 / lv1.exp() + mu2 / lv2.exp()) / prec
    shared = out.shared_mask
    assert shared is not None and shared.dtype == torch.bool
    torch.testing.assert_close(out.output1.mu, torch.where(shared, mu_ml, mu1))
    torch.testing.assert_close(out.output1.log_var, torch.where(shared, -torch.log(prec), lv1))


def test_adagvae_builds_from_one_tensor_as_in_the_seed_api(x):
    vae = mlp_vae()
    model = AdaGVAE(vae=vae)
    assert model.build(x) is model and vae.unbuilt_modules() == []
    out = model((x, x))
    assert out.output1.x_hat.shape == (x.shape[0], 1, *x.shape[1:])


def test_split_pair_is_public_and_checks(x):
    assert all(t is x for t in AdaGVAE.split_pair((x, x)))
    with pytest.raises(TypeError, match="pair"):
        AdaGVAE.split_pair(x)


def test_adagvae_select_shared_hook_gives_known_k_in_one_method(x):
    """Known k (Locatello et al. 2020): keep the k dimensions with the largest KL
    between the two posteriors separate. The mask is recomputed by hand."""

    class KnownK(AdaGVAE):
        def select_shared(self, mu1, log_var1, mu2, log_var2):
            delta = kl_divergence_diag_gaussian(mu1, log_var1, mu2, log_var2, reduce_sum=False)
            top = delta.topk(1, dim=1).indices
            return torch.ones_like(delta, dtype=torch.bool).scatter(1, top, False)

    model = KnownK(mlp_vae()).build(x).eval()
    out = model((x, x.flip(0)))
    mu1, lv1 = model.vae.posterior(x)
    mu2, lv2 = model.vae.posterior(x.flip(0))
    q1 = torch.distributions.Normal(mu1, torch.exp(0.5 * lv1))
    q2 = torch.distributions.Normal(mu2, torch.exp(0.5 * lv2))
    largest = torch.distributions.kl_divergence(q1, q2).argmax(1)
    expected = torch.ones_like(mu1, dtype=torch.bool)
    expected[torch.arange(x.shape[0]), largest] = False
    assert torch.equal(out.shared_mask, expected)
    assert (out.shared_mask.sum(1) == model.latent_dim - 1).all()


def test_shared_dimensions_uses_the_rule_a_subclass_trains_with():
    """A subclass that overrides ``select_shared`` is evaluated by its own rule: the mask
    of ``shared_dimensions`` is the one ``forward`` averaged over, not Ada-GVAE's."""
    D = 4

    class KeepTopTwo(AdaGVAE):  # a known-k rule with k = 2
        def select_shared(self, mu1, log_var1, mu2, log_var2):
            delta = kl_divergence_diag_gaussian(mu1, log_var1, mu2, log_var2, reduce_sum=False)
            top = delta.topk(2, dim=1).indices
            return torch.ones_like(delta, dtype=torch.bool).scatter(1, top, False)

    g = torch.Generator().manual_seed(0)
    mu1, lv1, mu2, lv2 = torch.randn(4, 6, D, generator=g, dtype=torch.float64)
    lv2 = lv1.clone()
    mu2[:, 1:] = mu1[:, 1:] + 0.5 * mu2[:, 1:]
    mu2[:, 0] = mu1[:, 0] + 5.0  # dim 0 differs most in every row
    model = KeepTopTwo(_vae_with_given_posteriors(D)).eval()
    x1, x2 = torch.cat([mu1, lv1], 1), torch.cat([mu2, lv2], 1)
    delta, tau, shared = model.shared_dimensions((x1, x2))
    assert (shared.sum(1) == D - 2).all() and not shared[:, 0].any()
    assert torch.equal(model((x1, x2)).shared_mask, shared)
    _, _, adaptive = adaptive_shared_mask(mu1, lv1, mu2, lv2)
    assert torch.equal(delta.argmax(1), torch.zeros(6, dtype=torch.long))
    assert (adaptive.sum(1) == D - 1).all()  # the base rule keeps only dim 0 apart
