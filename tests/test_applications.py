"""Tests of autoencoders.applications: anomaly scores, ROC-AUC, retrieval, the
ELBO of a given Gaussian and the amortisation gap, each against an independent reference (a hand count, a brute-force
loop, torch.distributions, or a linear-Gaussian model whose log p(x) is known)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from autoencoders import AE, VAE
from autoencoders.applications import (
    AmortisationGap,
    amortisation_gap,
    anomaly_scores,
    gaussian_elbo,
    nearest_neighbours,
    precision_at_k,
    roc_auc,
)
from autoencoders.recipes import mlp_vae, train

D = torch.distributions


# ------------------------------------------------------------------------ helpers
def tiny_vae(likelihood: str = "bernoulli", seed: int = 0) -> VAE:
    """An untrained 2-D VAE for 4 x 4 images, built."""
    return mlp_vae(2, hidden=(8,), likelihood=likelihood, in_shape=(1, 4, 4), seed=seed)


def tiny_images(n: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed))


def linear_gaussian_vae(W: torch.Tensor, b: torch.Tensor, seed: int = 0) -> VAE:
    r"""p(z) = N(0, I), p(x | z) = N(W z + b, I): a VAE with a linear decoder and a
    deliberately poor (random, untrained) encoder."""
    x_dim, z_dim = W.shape
    torch.manual_seed(seed)
    decoder = nn.Linear(z_dim, x_dim)
    with torch.no_grad():
        decoder.weight.copy_(W)
        decoder.bias.copy_(b)
    encoder = nn.Sequential(nn.Linear(x_dim, 8), nn.Tanh())
    vae = VAE(encoder, decoder, z_dim, likelihood="gaussian")
    vae.build(torch.zeros(2, x_dim))
    return vae


def exact_log_px(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log N(x; b, W W^T + I), the marginal likelihood of the linear-Gaussian model."""
    cov = W @ W.T + torch.eye(W.shape[0], dtype=W.dtype)
    return D.MultivariateNormal(b, covariance_matrix=cov).log_prob(x)


# ------------------------------------------------------------------------ ROC-AUC
def mann_whitney_auc(normal: list[float], anomalous: list[float]) -> float:
    """P(anomalous score > normal score) + 1/2 P(tie), by counting every pair."""
    wins = sum((a > n) + 0.5 * (a == n) for a in anomalous for n in normal)
    return wins / (len(normal) * len(anomalous))


@pytest.mark.parametrize(
    "normal, anomalous",
    [
        ([0.1, 0.4, 0.35, 0.8], [0.9, 0.5, 0.35, 0.2, 1.3]),
        ([1.0, 1.0, 2.0], [1.0, 3.0]),  # ties count one half
        ([5.0, 6.0], [1.0, 2.0]),  # the score points the wrong way
        ([0.0], [0.0]),
    ],
)
def test_roc_auc_matches_the_mann_whitney_count(normal, anomalous) -> None:
    assert roc_auc(normal, anomalous) == pytest.approx(mann_whitney_auc(normal, anomalous))
    as_tensors = roc_auc(torch.tensor(normal), torch.tensor(anomalous))
    assert as_tensors == pytest.approx(mann_whitney_auc(normal, anomalous))


def test_roc_auc_of_random_scores_matches_the_count() -> None:
    rng = np.random.default_rng(0)
    normal, anomalous = rng.normal(size=30).round(1), rng.normal(0.5, size=20).round(1)
    assert roc_auc(normal, anomalous) == pytest.approx(
        mann_whitney_auc(normal.tolist(), anomalous.tolist())
    )


@pytest.mark.parametrize(
    "normal, anomalous, error, words",
    [
        ([], [1.0], ValueError, "scores_normal"),
        ([1.0], np.zeros((2, 2)), ValueError, "scores_anomalous"),
        ([1.0, float("nan")], [1.0], ValueError, "scores_normal must be finite"),
        ([1.0], [float("inf")], ValueError, "scores_anomalous must be finite"),
        (["a", "b"], [1.0], TypeError, "scores_normal"),
    ],
)
def test_roc_auc_rejects_bad_scores(normal, anomalous, error, words) -> None:
    with pytest.raises(error, match=words):
        roc_auc(normal, anomalous)


# ---------------------------------------------------------------------- retrieval
def brute_force_precision(q, yq, base, yb, k, exclude_self):
    hits = []
    for i in range(len(q)):
        d = np.sqrt(((base - q[i]) ** 2).sum(1))
        if exclude_self:
            d[i] = np.inf
        nearest = np.argsort(d, kind="stable")[:k]
        hits.append(np.mean(yb[nearest] == yq[i]))
    return float(np.mean(hits))


@pytest.mark.parametrize("k", [1, 3, 10])
def test_precision_at_k_matches_a_brute_force_loop(k) -> None:
    rng = np.random.default_rng(k)
    base, yb = rng.normal(size=(60, 5)), rng.integers(0, 3, 60)
    base[yb == 1] += 1.5  # some structure, so precision is not at chance
    q, yq = rng.normal(size=(25, 5)), rng.integers(0, 3, 25)
    expected = brute_force_precision(q, yq, base, yb, k, exclude_self=False)
    got = precision_at_k(torch.from_numpy(q), torch.from_numpy(yq), torch.from_numpy(base),
                         torch.from_numpy(yb), k=k)
    assert got == pytest.approx(expected)
    # leave-one-out on the base itself
    expected_loo = brute_force_precision(base, yb, base, yb, k, exclude_self=True)
    assert precision_at_k(base, yb, base, yb, k=k, exclude_self=True) == pytest.approx(expected_loo)


def test_nearest_neighbours_match_numpy_and_chunking_changes_nothing() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(40, 2, 3))  # rows are flattened to 6 features
    q = rng.normal(size=(7, 2, 3))
    idx, dist = nearest_neighbours(q, base, 4, chunk_size=3)
    d = np.sqrt(((q.reshape(7, 1, 6) - base.reshape(1, 40, 6)) ** 2).sum(-1))
    np.testing.assert_array_equal(idx.numpy(), np.argsort(d, axis=1)[:, :4])
    np.testing.assert_allclose(dist.numpy(), np.sort(d, axis=1)[:, :4], rtol=1e-6, atol=1e-6)
    loo, _ = nearest_neighbours(base, base, 3, exclude_self=True, chunk_size=16)
    assert not (loo == torch.arange(40).unsqueeze(1)).any()


def test_precision_at_k_of_identical_labels_is_one_and_of_separated_classes_is_one() -> None:
    codes = torch.cat([torch.zeros(5, 2), torch.full((5, 2), 10.0)]) + 0.01 * torch.randn(10, 2)
    labels = torch.tensor([0] * 5 + [1] * 5)
    assert precision_at_k(codes, labels, codes, labels, k=4, exclude_self=True) == 1.0


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(k=0), ValueError, r"k must be an int in \[1, 20\]"),
        (dict(k=21), ValueError, "got 21"),
        (dict(k=20, exclude_self=True, query_codes=torch.zeros(20, 3),
              query_labels=torch.zeros(20)), ValueError, r"\[1, 19\]"),
        (dict(exclude_self="yes"), TypeError, "exclude_self"),
        (dict(base_labels=torch.zeros(19)), ValueError,
         r"base_labels must have shape \[N\] = \[20\]"),
        (dict(query_labels=torch.zeros(3, 1)), ValueError, "query_labels"),
        (dict(base_codes=torch.zeros(20, 4)), ValueError, "same features per row"),
        (dict(query_codes=[[0.0, 1.0, 2.0]]), TypeError, "query"),
        (dict(query_codes=torch.full((5, 3), float("nan"))), ValueError, "query contains NaN"),
    ],
)
def test_precision_at_k_rejects_bad_inputs(kwargs, error, words) -> None:
    args = dict(query_codes=torch.zeros(5, 3), query_labels=torch.zeros(5),
                base_codes=torch.randn(20, 3), base_labels=torch.zeros(20), k=3)
    args.update(kwargs)
    with pytest.raises(error, match=words):
        precision_at_k(**args)


def test_exclude_self_needs_the_same_rows() -> None:
    with pytest.raises(ValueError, match="Q = 5 and N = 20"):
        nearest_neighbours(torch.zeros(5, 3), torch.zeros(20, 3), 2, exclude_self=True)


# -------------------------------------------------------------------- anomaly scores
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_neg_elbo_scores_match_torch_distributions(likelihood) -> None:
    vae, x = tiny_vae(likelihood), tiny_images()
    S, seed = 7, 3
    scores = anomaly_scores(vae, x, kind="neg_elbo", S=S, seed=seed, device="cpu")
    # the same noise, drawn as the function documents: a CPU generator, one batch
    eps = torch.randn(len(x), S, 2, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        mu, log_var = vae.posterior(x)
        sigma = torch.exp(0.5 * log_var)
        z = mu.unsqueeze(1) + sigma.unsqueeze(1) * eps  # [N, S, 2]
        out = vae.decoder(z.reshape(-1, 2)).reshape(len(x), S, -1)
        target = x.flatten(1).unsqueeze(1)
        if likelihood == "bernoulli":
            bernoulli = D.Bernoulli(logits=out, validate_args=False)
            log_px = bernoulli.log_prob(target.expand_as(out)).sum(-1)
        else:
            log_px = D.Normal(out, 1.0).log_prob(target.expand_as(out)).sum(-1)
        kl = D.kl_divergence(D.Normal(mu, sigma), D.Normal(0.0, 1.0)).sum(-1)
        expected = -(log_px.mean(1) - kl)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-4)


def test_reconstruction_error_scores_match_a_direct_computation() -> None:
    vae, x = tiny_vae(), tiny_images()
    scores = anomaly_scores(vae, x, kind="reconstruction_error", batch_size=5, device="cpu")
    with torch.no_grad():
        mu, _ = vae.posterior(x)
        x_rec = torch.sigmoid(vae.decoder(mu)).reshape(x.shape)  # Bernoulli mean
    torch.testing.assert_close(scores, ((x - x_rec) ** 2).sum((1, 2, 3)))


def test_reconstruction_error_works_for_a_plain_autoencoder() -> None:
    torch.manual_seed(0)
    ae = AE(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)),
            nn.Sequential(nn.Linear(3, 16), nn.Unflatten(1, (1, 4, 4))), likelihood="gaussian")
    x = tiny_images()
    ae.build(x)
    scores = anomaly_scores(ae, x, kind="reconstruction_error", device="cpu")
    with torch.no_grad():
        expected = ((x - ae.decoder(ae.encoder(x))) ** 2).sum((1, 2, 3))
    torch.testing.assert_close(scores, expected)


def test_anomaly_scores_are_reproducible_and_restore_the_model() -> None:
    vae, x = tiny_vae(), tiny_images()
    vae.train()
    state = torch.get_rng_state()
    a = anomaly_scores(vae, x, S=3, seed=1, device="cpu")
    b = anomaly_scores(vae, x, S=3, seed=1, device="cpu")
    c = anomaly_scores(vae, x, S=3, seed=2, device="cpu")
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert vae.training and all(m.training for m in vae.modules())
    assert torch.equal(state, torch.get_rng_state()), "the global stream must not move"
    assert a.shape == (len(x),) and a.device.type == "cpu" and not a.requires_grad
    # batches of a loader give the same scores as the tensor in one batch
    loader = [(x[:5], None), (x[5:], None)]
    torch.testing.assert_close(
        anomaly_scores(vae, loader, kind="reconstruction_error", device="cpu"),
        anomaly_scores(vae, x, kind="reconstruction_error", device="cpu"),
    )


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(kind="elbo"), ValueError, "kind must be one of"),
        (dict(S=0), ValueError, "S must be an int >= 1, got 0"),
        (dict(seed=-1), ValueError, "seed must be an int >= 0"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(data=torch.full((2, 1, 4, 4), float("nan"))), ValueError, "data contains NaN"),
        (dict(data=2 * torch.ones(2, 1, 4, 4)), ValueError, "data"),
        (dict(data=torch.zeros(0, 1, 4, 4)), ValueError, "non-empty"),
        (dict(data="images"), TypeError, "data must be"),
    ],
)
def test_anomaly_scores_reject_bad_inputs(kwargs, error, words) -> None:
    args = dict(model=tiny_vae(), data=tiny_images(), device="cpu")
    args.update(kwargs)
    with pytest.raises(error, match=words):
        anomaly_scores(**args)


def test_neg_elbo_needs_a_vae() -> None:
    ae = AE(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)),
            nn.Sequential(nn.Linear(3, 16), nn.Unflatten(1, (1, 4, 4))))
    ae.build(tiny_images())
    with pytest.raises(TypeError, match="model must be an autoencoders.VAE"):
        anomaly_scores(ae, tiny_images(), kind="neg_elbo", device="cpu")


# ------------------------------------------------------------------ amortisation gap
def test_optimised_q_reaches_the_exact_log_px_when_the_posterior_is_diagonal() -> None:
    """With orthogonal decoder columns the exact posterior N(m, (I + W^T W)^-1) is
    diagonal, so the best Gaussian q of the family is the posterior itself and its ELBO
    equals log p(x); the encoder (untrained) is far from it."""
    gen = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(6, 2, generator=gen))
    W, b = Q * torch.tensor([2.0, 0.7]), 0.3 * torch.randn(6, generator=gen)
    vae = linear_gaussian_vae(W, b)
    x = (torch.randn(10, 2, generator=gen) @ W.T + b + torch.randn(10, 6, generator=gen))
    g = amortisation_gap(vae, x, steps=400, lr=0.05, S=32, S_eval=20_000, K=2000,
                         device="cpu")
    exact = exact_log_px(x, W, b)
    torch.testing.assert_close(g.elbo_optimised, exact, atol=0.02, rtol=0)
    torch.testing.assert_close(g.iwae_optimised, exact, atol=0.01, rtol=0)
    torch.testing.assert_close(g.log_px, exact, atol=0.01, rtol=0)
    assert (g.elbo_encoder < exact - 0.1).all(), "the random encoder should be visibly worse"
    # the optimised q is the posterior: mean m = (I + W^T W)^-1 W^T (x - b)
    precision = torch.eye(2) + W.T @ W
    torch.testing.assert_close(g.mu, torch.linalg.solve(precision, W.T @ (x - b).T).T,
                               atol=0.02, rtol=0)
    torch.testing.assert_close(g.log_var, -torch.log(torch.diag(precision)).expand(10, 2),
                               atol=0.05, rtol=0)


def test_approximation_gap_matches_the_closed_form_for_a_correlated_posterior() -> None:
    r"""The best diagonal Gaussian for a Gaussian posterior with precision Λ keeps its
    mean and has variances 1 / Λ_jj, so log p(x) - ELBO(q*) = ½ (Σ_j log Λ_jj - log det Λ)
    for every image."""
    gen = torch.Generator().manual_seed(1)
    W = torch.tensor([[1.0, 0.9], [0.8, 1.0], [1.2, 1.1], [0.5, 0.6]])
    b = torch.zeros(4)
    vae = linear_gaussian_vae(W, b, seed=1)
    x = torch.randn(8, 4, generator=gen) * 2
    g = amortisation_gap(vae, x, steps=400, lr=0.05, S=32, S_eval=20_000, K=500,
                         device="cpu")
    precision = torch.eye(2) + W.T @ W
    closed = 0.5 * (torch.log(torch.diag(precision)).sum() - torch.logdet(precision))
    gap = exact_log_px(x, W, b) - g.elbo_optimised
    torch.testing.assert_close(gap, closed.expand(8), atol=0.03, rtol=0)
    assert closed > 0.1, "the test needs a visibly correlated posterior"


@pytest.fixture(scope="module")
def trained_tiny_vae() -> tuple[VAE, torch.Tensor]:
    """A 2-D VAE trained for a few seconds on noisy copies of four 8 x 8 prototypes."""
    gen = torch.Generator().manual_seed(0)
    prototypes = (torch.rand(4, 1, 8, 8, generator=gen) > 0.6).float()
    pick = torch.randint(0, 4, (512,), generator=gen)
    x = (0.8 * prototypes[pick] + 0.2 * torch.rand(512, 1, 8, 8, generator=gen)).clamp(0, 1)
    vae = mlp_vae(2, hidden=(32,), likelihood="bernoulli", in_shape=(1, 8, 8), seed=0)
    train(vae, x, epochs=15, batch_size=64, lr=1e-2, progress=False, device="cpu")
    return vae, x[:24]


def test_the_amortisation_gap_of_a_trained_vae_is_nonnegative(trained_tiny_vae) -> None:
    vae, x = trained_tiny_vae
    g = amortisation_gap(vae, x, steps=150, lr=0.05, S=8, S_eval=2000, K=2000,
                         device="cpu")
    assert g.amortisation.mean() > 0
    assert (g.amortisation > -0.05).all(), g.amortisation.min()
    # the refined ELBO is still a lower bound: it never exceeds a tight IWAE estimate
    # by more than Monte Carlo noise
    assert (g.elbo_optimised <= g.log_px + 0.1).all(), (g.elbo_optimised - g.log_px).max()
    assert g.approximation.mean() > -0.02
    torch.testing.assert_close(g.inference, g.amortisation + g.approximation)
    means = g.means()
    assert means["inference"] == pytest.approx(means["amortisation"] + means["approximation"])
    assert len(g.curve) == 150 and g.curve[-1] > g.curve[0]


def test_zero_steps_leave_the_encoder_q_and_a_zero_gap(trained_tiny_vae) -> None:
    vae, x = trained_tiny_vae
    g = amortisation_gap(vae, x, steps=0, S_eval=10, K=10, device="cpu")
    assert torch.equal(g.amortisation, torch.zeros(len(x)))
    with torch.no_grad():
        mu, log_var = vae.posterior(x)
    assert torch.equal(g.mu, mu) and torch.equal(g.log_var, log_var)


def test_amortisation_gap_leaves_model_and_random_streams_alone(trained_tiny_vae) -> None:
    vae, x = trained_tiny_vae
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in vae.parameters()]
    vae.train()
    state = torch.get_rng_state()
    a = amortisation_gap(vae, x[:6], steps=5, S_eval=20, K=20, seed=4, batch_size=4, device="cpu")
    b = amortisation_gap(vae, x[:6], steps=5, S_eval=20, K=20, seed=4, batch_size=4, device="cpu")
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(v, vae.state_dict()[k]) for k, v in before.items())
    for p, g in zip(vae.parameters(), grads):  # no gradient reached the model
        assert (p.grad is None) if g is None else torch.equal(p.grad, g)
    assert vae.training
    vae.eval()
    for name in ("elbo_encoder", "elbo_optimised", "iwae_encoder", "iwae_optimised"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert isinstance(a, AmortisationGap) and "Tensor(shape=(6,)" in repr(a)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(steps=-1), ValueError, "steps must be an int >= 0, got -1"),
        (dict(lr=0.0), ValueError, "lr must be a finite float > 0, got 0.0"),
        (dict(lr=float("nan")), ValueError, "lr must be a finite float > 0"),
        (dict(S=0), ValueError, "S must be an int >= 1"),
        (dict(S_eval=1.5), ValueError, "S_eval must be an int >= 1, got 1.5"),
        (dict(K=0), ValueError, "K must be an int >= 1"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(progress="yes"), TypeError, "progress"),
        (dict(x=[[0.0]]), TypeError, "x must be a torch.Tensor"),
        (dict(x=torch.full((2, 1, 8, 8), 2.0)), ValueError, r"outside|\[0, 1\]"),
        (dict(x=torch.full((2, 1, 8, 8), float("nan"))), ValueError, "NaN"),
    ],
)
def test_amortisation_gap_rejects_bad_inputs(trained_tiny_vae, kwargs, error, words) -> None:
    vae, x = trained_tiny_vae
    args = dict(vae=vae, x=x[:2], steps=1, S_eval=2, K=2, device="cpu")
    args.update(kwargs)
    with pytest.raises(error, match=words):
        amortisation_gap(**args)


def test_amortisation_gap_needs_a_built_vae() -> None:
    with pytest.raises(TypeError, match="vae must be an autoencoders.VAE"):
        amortisation_gap(nn.Linear(2, 2), torch.zeros(2, 2))
    unbuilt = mlp_vae(2, hidden=(8,), in_shape=(1, 4, 4))
    with pytest.raises(ValueError, match="unbuilt lazy layers"):
        amortisation_gap(unbuilt, tiny_images())


def test_amortisation_gap_bound_is_consistent_with_log_marginal_likelihood() -> None:
    """The IWAE bound with the encoder's proposal is the package's own estimator."""
    gen = torch.Generator().manual_seed(2)
    W, b = torch.randn(5, 2, generator=gen), torch.zeros(5)
    vae = linear_gaussian_vae(W, b, seed=2)
    x = torch.randn(6, 5, generator=gen)
    g = amortisation_gap(vae, x, steps=0, S_eval=10, K=300, seed=7, device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        expected = vae.log_marginal_likelihood(x, K=300)
    torch.testing.assert_close(g.iwae_encoder, expected)
    assert math.isfinite(float(g.iwae_optimised.sum()))


# ------------------------------------------------------------------ gaussian_elbo
def test_gaussian_elbo_matches_the_closed_form_of_a_linear_gaussian_model() -> None:
    r"""For p(x | z) = N(W z + b, I) and q = N(mu, diag s2) the ELBO is known:
    log N(x; W mu + b, I) - tr(W diag(s2) W^T) / 2 - KL(q || N(0, I))."""
    gen = torch.Generator().manual_seed(3)
    W, b = torch.randn(5, 2, generator=gen), torch.randn(5, generator=gen)
    vae = linear_gaussian_vae(W, b, seed=3)
    x = torch.randn(4, 5, generator=gen)
    mu = torch.randn(4, 2, generator=gen)
    log_var = torch.randn(4, 2, generator=gen) - 2  # small variances: little MC noise
    got = gaussian_elbo(vae, x, mu, log_var, S=200_000, seed=1, device="cpu")
    s2 = log_var.exp()
    expected_ll = (D.Normal(mu @ W.T + b, 1.0).log_prob(x).sum(1)
                   - 0.5 * ((W**2) @ s2.T).sum(0))
    q = D.Normal(mu, (0.5 * log_var).exp())
    kl = D.kl_divergence(q, D.Normal(torch.zeros(2), torch.ones(2))).sum(1)
    torch.testing.assert_close(got, expected_ll - kl, atol=0.05, rtol=0)


def test_gaussian_elbo_of_the_encoder_posterior_is_minus_the_anomaly_score() -> None:
    vae, x = tiny_vae(seed=1), tiny_images(10, seed=1)
    with torch.no_grad():
        mu, log_var = vae.posterior(x)
    got = gaussian_elbo(vae, x, mu, log_var, S=7, seed=4, batch_size=3, device="cpu")
    scores = anomaly_scores(vae, x, S=7, seed=4, batch_size=3, device="cpu")
    torch.testing.assert_close(got, -scores)
    assert got.shape == (10,) and got.device.type == "cpu" and not got.requires_grad


def test_gaussian_elbo_uses_the_same_noise_for_the_same_rows() -> None:
    """Common random numbers: a better q scores higher image by image, and a row's
    noise does not depend on the other rows' Gaussians."""
    vae, x = tiny_vae(seed=2), tiny_images(6, seed=2)
    with torch.no_grad():
        mu, log_var = vae.posterior(x)
    a = gaussian_elbo(vae, x, mu, log_var, S=5, seed=0, device="cpu")
    b = gaussian_elbo(vae, x, mu, log_var, S=5, seed=0, device="cpu")
    torch.testing.assert_close(a, b)
    moved = mu.clone()
    moved[3:] += 1.0
    c = gaussian_elbo(vae, x, moved, log_var, S=5, seed=0, device="cpu")
    torch.testing.assert_close(c[:3], a[:3])
    assert not torch.allclose(c[3:], a[3:])


def test_gaussian_elbo_leaves_batch_norm_and_the_training_flag_alone() -> None:
    """The decoder runs in eval mode: no running statistics move, and the model's
    flags come back as they were."""
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU())
    decoder = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(),
                            nn.Linear(8, 16), nn.Unflatten(1, (1, 4, 4)))
    vae = VAE(encoder, decoder, 2, likelihood="bernoulli").build(tiny_images(2))
    vae.train()
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    x = tiny_images(5)
    mu, log_var = torch.zeros(5, 2), torch.zeros(5, 2)
    gaussian_elbo(vae, x, mu, log_var, S=3, device="cpu")
    assert vae.training and all(m.training for m in vae.modules())
    for key, value in vae.state_dict().items():
        torch.testing.assert_close(value, before[key])


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(mu=torch.zeros(3, 2)), ValueError, r"mu must have shape \[N, D_z\] = \[4, 2\]"),
        (dict(log_var=torch.zeros(4, 3)), ValueError, "log_var must have shape"),
        (dict(mu=torch.full((4, 2), float("nan"))), ValueError, "NaN"),
        (dict(mu=[[0.0, 0.0]] * 4), TypeError, "mu must be a torch.Tensor"),
        (dict(x=torch.full((4, 1, 4, 4), 2.0)), ValueError, r"outside|\[0, 1\]"),
        (dict(x=torch.zeros(0, 1, 4, 4)), ValueError, "N >= 1"),
        (dict(S=0), ValueError, "S must be an int >= 1"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(model=nn.Linear(2, 2)), TypeError, "must be an autoencoders.VAE"),
    ],
)
def test_gaussian_elbo_rejects_bad_inputs(kwargs, error, words) -> None:
    args = dict(model=tiny_vae(), x=tiny_images(4), mu=torch.zeros(4, 2),
                log_var=torch.zeros(4, 2), device="cpu")
    args.update(kwargs)
    with pytest.raises(error, match=words):
        gaussian_elbo(**args)
