"""Tests for autoencoders.viz: headless figures, the data they show, and argument checks.

Plotted pixel values are read back from the figure (``AxesImage.get_array()``) at grid
positions computed here, and compared with decoder outputs computed independently
(explicit ``F.linear`` / ``torch.sigmoid``, ``statistics.NormalDist``, numpy SVD).
"""

from __future__ import annotations

import io
import math
import statistics
import sys

import matplotlib

matplotlib.use("Agg")  # headless, whatever MPLBACKEND says; before pyplot is imported

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from autoencoders import AE, VAE, AdaGVAE, viz  # noqa: E402

PAD = 2


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------- tiny models
def make_ae(latent: int = 4, dropout: bool = True) -> AE:
    """Linear AE on 1x28x28; dropout on z makes train mode visibly random."""
    torch.manual_seed(0)
    decoder = [nn.Linear(latent, 784), nn.Unflatten(1, (1, 28, 28))]
    if dropout:
        decoder.insert(0, nn.Dropout(0.5))
    return AE(nn.Sequential(nn.Flatten(), nn.Linear(784, latent)), nn.Sequential(*decoder))


def make_vae(latent: int = 3, x: torch.Tensor | None = None) -> VAE:
    torch.manual_seed(1)
    vae = VAE(
        nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.Dropout(0.3)),
        nn.Sequential(nn.Linear(latent, 784), nn.Unflatten(1, (1, 28, 28))),
        latent_dim=latent,
    )
    return vae.build(torch.rand(4, 1, 28, 28) if x is None else x)


def make_identity_vae(latent: int = 3) -> VAE:
    """A VAE whose 'image' is the code itself: x_hat [N, 1, 1, D] = z."""
    torch.manual_seed(2)
    linear = nn.Linear(latent, latent, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(latent))
    vae = VAE(nn.Flatten(), nn.Sequential(linear, nn.Unflatten(1, (1, 1, latent))), latent_dim=latent)
    return vae.build(torch.rand(2, 1, 1, latent))


def identity_mu(vae: VAE, x: torch.Tensor) -> torch.Tensor:
    head = vae.sampling_layer.mu
    return F.linear(x.flatten(1), head.weight, head.bias).detach()


def image_array(ax) -> np.ndarray:
    images = ax.get_images()
    assert len(images) == 1
    return np.asarray(images[0].get_array(), dtype=float)


def cell(grid: np.ndarray, r: int, c: int, h: int = 28, w: int = 28, pad: int = PAD) -> np.ndarray:
    top, left = pad + r * (h + pad), pad + c * (w + pad)
    return grid[top : top + h, left : left + w]


def tick_texts(labels) -> list[str]:
    return [t.get_text() for t in labels]


def flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(12, 1, 28, 28, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------------- show_images
def test_show_images_is_one_make_grid_mosaic_with_unclipped_data(x):
    images = x[:10].clone()
    images[3, 0, 0, 0] = 1.7  # out of range: saturates on screen, stored as is
    fig = viz.show_images(images, nrow=5, title="ten images")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    grid = image_array(ax)
    assert grid.shape == (2 * 28 + 3 * PAD, 5 * 28 + 6 * PAD)
    for k in range(10):
        np.testing.assert_allclose(cell(grid, k // 5, k % 5), images[k, 0].numpy(), rtol=0, atol=1e-7)
    assert ax.get_images()[0].get_clim() == (0.0, 1.0)
    assert ax.get_images()[0].get_cmap().name == "gray"
    assert ax.get_title() == "ten images"


def test_show_images_accepts_nhw_numpy_and_draws_into_given_ax(x):
    fig, ax = plt.subplots()
    out = viz.show_images(x[:4, 0].numpy(), nrow=2, ax=ax)
    assert out is ax.figure is fig
    assert image_array(ax).shape == (2 * 28 + 3 * PAD, 2 * 28 + 3 * PAD)


def test_show_images_row_and_column_labels(x):
    fig = viz.show_images(x[:6], nrow=3, row_labels=["a", "b"], col_labels=["1", "2", "3"])
    ax = fig.axes[0]
    assert tick_texts(ax.get_yticklabels()) == ["a", "b"]
    assert tick_texts(ax.get_xticklabels()) == ["1", "2", "3"]
    np.testing.assert_allclose(ax.get_yticks(), [PAD + 13.5, PAD + 30 + 13.5])


def test_show_images_with_titles_uses_one_axes_per_image(x):
    fig = viz.show_images(x[:5], nrow=3, titles=list("abcde"))
    assert len(fig.axes) == 5
    assert [a.get_title() for a in fig.axes] == list("abcde")
    for k, ax in enumerate(fig.axes):
        np.testing.assert_allclose(image_array(ax), x[k, 0].numpy())


def test_show_images_with_titles_inside_given_ax(x):
    fig, ax = plt.subplots()
    out = viz.show_images(x[:4], titles=["w", "x", "y", "z"], ax=ax)
    assert out is fig
    insets = ax.child_axes
    assert len(insets) == 4 and [a.get_title() for a in insets] == ["w", "x", "y", "z"]


def test_show_images_rgb(x):
    rgb = torch.rand(4, 3, 8, 8)
    fig = viz.show_images(rgb, nrow=2)
    assert image_array(fig.axes[0]).shape == (2 * 8 + 3 * PAD, 2 * 8 + 3 * PAD, 3)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.full((2, 1, 4, 4), float("nan")), "NaN"),
        (torch.full((2, 1, 4, 4), float("inf")), "infinite"),
        (torch.rand(2, 2, 4, 4), "C in"),
        (torch.rand(16), "shape"),
    ],
)
def test_show_images_rejects_bad_images(images, match):
    with pytest.raises(ValueError, match=match):
        viz.show_images(images)


def test_show_images_rejects_wrong_number_of_titles(x):
    with pytest.raises(ValueError, match="one entry per image"):
        viz.show_images(x[:3], titles=["a", "b"])


# ---------------------------------------------------------------------- reconstructions
def test_reconstruction_bernoulli_shows_sigmoid_of_decoder_output_in_eval_mode(x):
    model = make_ae()
    model.train()
    model.encoder.eval()  # mixed flags must survive exactly
    before = flags(model)
    fig = viz.plot_reconstructions(model, x, n=6, likelihood="bernoulli")
    assert flags(model) == before
    assert len(fig.axes) == 2
    assert [tick_texts(a.get_yticklabels()) for a in fig.axes] == [["original"], ["reconstruction"]]
    assert "sigmoid" in fig.get_suptitle()
    enc, dec = model.encoder[1], model.decoder[-2]
    logits = F.linear(F.linear(x[:6].flatten(1), enc.weight, enc.bias), dec.weight, dec.bias)
    expected = torch.sigmoid(logits).view(6, 28, 28).detach().numpy()  # no dropout: eval mode
    originals, recon = image_array(fig.axes[0]), image_array(fig.axes[1])
    for k in range(6):
        np.testing.assert_allclose(cell(originals, 0, k), x[k, 0].numpy(), atol=1e-7)
        np.testing.assert_allclose(cell(recon, 0, k), expected[k], atol=1e-6)


def test_reconstruction_likelihood_none_shows_raw_output(x):
    model = make_ae(dropout=False)
    fig = viz.plot_reconstructions(model, x, n=3, likelihood=None)
    enc, dec = model.encoder[1], model.decoder[-2]
    raw = F.linear(F.linear(x[:3].flatten(1), enc.weight, enc.bias), dec.weight, dec.bias).detach()
    recon = image_array(fig.axes[1])
    for k in range(3):
        np.testing.assert_allclose(cell(recon, 0, k), raw[k].view(28, 28).detach().numpy(), atol=1e-6)
    lo, hi = fig.axes[1].get_images()[0].get_clim()
    assert lo == pytest.approx(float(raw.min()), abs=1e-6)
    assert hi == pytest.approx(float(raw.max()), abs=1e-6)


def test_vae_reconstruction_decodes_the_posterior_mean():
    vae = make_identity_vae(3)
    xs = torch.randn(5, 1, 1, 3)
    vae.train()
    fig = viz.plot_reconstructions(vae, xs, n=5, likelihood="gaussian")
    assert vae.training and all(flags(vae))
    recon = image_array(fig.axes[1])
    mu = identity_mu(vae, xs).numpy()
    for k in range(5):
        np.testing.assert_allclose(cell(recon, 0, k, 1, 3), mu[k : k + 1], atol=1e-6)


def test_reconstruction_with_noisy_inputs_feeds_inputs_and_shows_three_rows(x):
    model = make_ae(dropout=False)
    noisy = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    fig = plt.figure()
    out = viz.plot_reconstructions(model, x, n=4, likelihood="bernoulli", inputs=noisy, fig=fig)
    assert out is fig and len(fig.axes) == 3
    labels = [tick_texts(a.get_yticklabels())[0] for a in fig.axes]
    assert labels == ["clean", "input (noisy)", "reconstruction"]
    enc, dec = model.encoder[1], model.decoder[-2]
    expected = torch.sigmoid(F.linear(F.linear(noisy[:4].flatten(1), enc.weight, enc.bias), dec.weight, dec.bias))
    np.testing.assert_allclose(cell(image_array(fig.axes[0]), 0, 1), x[1, 0].numpy(), atol=1e-7)
    np.testing.assert_allclose(cell(image_array(fig.axes[1]), 0, 1), noisy[1, 0].numpy(), atol=1e-7)
    np.testing.assert_allclose(
        cell(image_array(fig.axes[2]), 0, 1), expected[1].view(28, 28).detach().numpy(), atol=1e-6
    )


def test_adagvae_reconstructs_with_its_vae(x):
    model = AdaGVAE(make_vae(3))
    fig = viz.plot_reconstructions(model, x, n=4, likelihood="bernoulli")
    assert len(fig.axes) == 2 and len(fig.axes[1].get_images()) == 1


def test_images_follow_the_models_own_likelihood(x):
    """Without likelihood=..., a Bernoulli model's images are sigmoid(x_hat), a
    Gaussian model's are x_hat; an explicit keyword still overrides the model."""
    torch.manual_seed(0)
    enc, dec = nn.Sequential(nn.Flatten(), nn.Linear(784, 4)), nn.Sequential(nn.Linear(4, 784), nn.Unflatten(1, (1, 28, 28)))
    for kind, expected in (("bernoulli", torch.sigmoid), ("gaussian", lambda t: t)):
        model = AE(enc, dec, likelihood=kind).eval()
        with torch.no_grad():
            x_hat = dec(enc(x[:2]))
        fig = viz.plot_reconstructions(model, x, n=2)
        shown = cell(image_array(fig.axes[1]), 0, 1)
        np.testing.assert_allclose(shown, expected(x_hat[1, 0]).numpy(), atol=1e-6)
    fig = viz.plot_reconstructions(AE(enc, dec, likelihood="bernoulli").eval(), x, n=2, likelihood="gaussian")
    np.testing.assert_allclose(cell(image_array(fig.axes[1]), 0, 1), x_hat[1, 0].numpy(), atol=1e-6)


def test_callable_likelihood_needs_an_explicit_transform(x):
    model = make_ae(dropout=False)

    def my_likelihood(target, x_hat):
        return -(target - x_hat) ** 2

    with pytest.raises(ValueError, match="transform"):
        viz.plot_reconstructions(model, x, n=2, likelihood=my_likelihood)
    fig = viz.plot_reconstructions(model, x, n=2, likelihood=my_likelihood, transform=torch.tanh)
    enc, dec = model.encoder[1], model.decoder[-2]
    expected = torch.tanh(F.linear(F.linear(x[:1].flatten(1), enc.weight, enc.bias), dec.weight, dec.bias))
    np.testing.assert_allclose(
        cell(image_array(fig.axes[1]), 0, 0), expected.view(28, 28).detach().numpy(), atol=1e-6
    )
    assert "tanh" in fig.get_suptitle()


def test_named_likelihood_and_transform_together_are_ambiguous(x):
    with pytest.raises(ValueError, match="either likelihood or transform"):
        viz.plot_reconstructions(make_ae(), x, n=2, likelihood="bernoulli", transform=torch.sigmoid)


def test_unknown_likelihood_name_is_rejected(x):
    with pytest.raises(ValueError, match="likelihood must be one of"):
        viz.plot_reconstructions(make_ae(), x, n=2, likelihood="poisson")


def test_reconstruction_n_larger_than_batch_is_an_error(x):
    with pytest.raises(ValueError, match="n must be at most"):
        viz.plot_reconstructions(make_ae(), x[:3], n=4, likelihood="bernoulli")


def test_unbuilt_model_is_rejected(x):
    vae = VAE(nn.Flatten(), nn.Sequential(nn.Linear(2, 784), nn.Unflatten(1, (1, 28, 28))), latent_dim=2)
    with pytest.raises(RuntimeError, match="build"):
        viz.plot_reconstructions(vae, x, n=2, likelihood="bernoulli")


# ---------------------------------------------------------------------- samples
def test_samples_decode_standard_normal_draws_from_the_generator():
    vae = make_identity_vae(3)
    fig = viz.plot_samples(vae, n=6, nrow=3, likelihood="gaussian", rng=torch.Generator().manual_seed(5))
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(5)).numpy()
    grid = image_array(fig.axes[0])
    for k in range(6):
        np.testing.assert_allclose(cell(grid, k // 3, k % 3, 1, 3), z[k : k + 1], atol=1e-6)
    assert "prior" in fig.axes[0].get_title()


def test_samples_for_vae_and_adagvae_and_into_given_ax():
    vae = make_vae(3)
    vae.train()
    fig = viz.plot_samples(vae, n=10, nrow=5, likelihood="bernoulli")
    assert len(fig.axes) == 1 and image_array(fig.axes[0]).shape == (2 * 28 + 3 * PAD, 5 * 28 + 6 * PAD)
    assert all(flags(vae))
    _, ax = plt.subplots()
    out = viz.plot_samples(AdaGVAE(vae), n=4, nrow=4, likelihood="continuous_bernoulli", ax=ax)
    assert out is ax.figure
    assert image_array(ax).shape == (28 + 2 * PAD, 4 * 28 + 5 * PAD)
    assert image_array(ax)[PAD:-PAD, PAD:-PAD].min() >= 0.0  # means of a distribution on [0, 1]


def test_samples_need_a_latent_dim():
    with pytest.raises(TypeError, match="latent_dim"):
        viz.plot_samples(make_ae(), n=4, likelihood="bernoulli")


# ---------------------------------------------------------------------- interpolation
def numpy_slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    omega = math.acos(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))))
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)


def test_slerp_matches_a_numpy_reference_and_keeps_equal_norms():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 4, 6))
    path = viz.interpolate_latents(torch.from_numpy(a), torch.from_numpy(b), 7, "slerp").numpy()
    assert path.shape == (4, 7, 6)
    for i in range(4):
        for k, t in enumerate(np.linspace(0, 1, 7)):
            np.testing.assert_allclose(path[i, k], numpy_slerp(a[i], b[i], t), atol=1e-10)
    unit_a, unit_b = a[0] / np.linalg.norm(a[0]), b[0] / np.linalg.norm(b[0])
    circle = viz.interpolate_latents(torch.from_numpy(unit_a), torch.from_numpy(unit_b), 5, "slerp")
    np.testing.assert_allclose(circle.norm(dim=-1).numpy(), np.ones(5), atol=1e-12)


def test_slerp_falls_back_to_linear_for_parallel_codes():
    a = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    for b in (3.0 * a, -a, torch.zeros(3, dtype=torch.float64)):
        path = viz.interpolate_latents(a, b, 5, "slerp")
        linear = torch.stack([(1 - t) * a + t * b for t in np.linspace(0, 1, 5)])
        assert torch.isfinite(path).all()
        np.testing.assert_allclose(path.numpy(), linear.numpy(), atol=1e-12)


def test_interpolation_rows_columns_and_linear_values():
    vae = make_identity_vae(3)
    xa, xb = torch.randn(2, 1, 1, 3), torch.randn(2, 1, 1, 3)
    fig = viz.plot_interpolation(vae, xa, xb, steps=4, likelihood="gaussian")
    ax = fig.axes[0]
    assert tick_texts(ax.get_yticklabels()) == ["pair 1", "pair 2"]
    assert tick_texts(ax.get_xticklabels()) == ["0.00", "0.33", "0.67", "1.00"]
    mu_a, mu_b = identity_mu(vae, xa).numpy(), identity_mu(vae, xb).numpy()
    grid = image_array(ax)
    for i in range(2):
        for k, t in enumerate(np.linspace(0, 1, 4)):
            np.testing.assert_allclose(cell(grid, i, k, 1, 3)[0], (1 - t) * mu_a[i] + t * mu_b[i], atol=1e-6)


def test_interpolation_single_images_slerp_and_given_ax(x):
    _, ax = plt.subplots()
    out = viz.plot_interpolation(make_ae(), x[0], x[1], steps=5, likelihood="bernoulli", method="slerp", ax=ax)
    assert out is ax.figure
    assert image_array(ax).shape == (28 + 2 * PAD, 5 * 28 + 6 * PAD)
    assert "slerp" in ax.get_title()


@pytest.mark.parametrize(("kwargs", "match"), [({"steps": 1}, "steps"), ({"method": "foo"}, "method")])
def test_interpolation_rejects_bad_arguments(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.plot_interpolation(make_ae(), x[0], x[1], likelihood="bernoulli", **kwargs)


def test_interpolation_rejects_mismatched_images(x):
    with pytest.raises(ValueError, match="equal shapes"):
        viz.plot_interpolation(make_ae(), x[:2], x[:3], likelihood="bernoulli")


# ---------------------------------------------------------------------- traversal
def test_traversal_sets_one_coordinate_per_row():
    vae = make_identity_vae(3)
    x0 = torch.randn(1, 1, 3)
    values = [-2.0, 0.5, 2.0]
    fig = viz.plot_latent_traversal(vae, x0, dims=[2, 0], values=values, likelihood="gaussian")
    ax = fig.axes[0]
    assert tick_texts(ax.get_yticklabels()) == ["$z_{2}$", "$z_{0}$"]
    assert tick_texts(ax.get_xticklabels()) == ["-2", "0.5", "2"]
    mu = identity_mu(vae, x0.unsqueeze(0))[0].numpy()
    grid = image_array(ax)
    for r, j in enumerate([2, 0]):
        for c, v in enumerate(values):
            expected = mu.copy()
            expected[j] = v
            np.testing.assert_allclose(cell(grid, r, c, 1, 3)[0], expected, atol=1e-6)


def test_traversal_default_values_all_dims_and_dim_labels(x):
    vae = make_vae(3)
    vae.train()
    _, ax = plt.subplots()
    fig = viz.plot_latent_traversal(
        vae, x[0], likelihood="bernoulli", dim_labels=["thickness", "slant", "width"], ax=ax
    )
    assert fig is ax.figure and all(flags(vae))
    assert tick_texts(ax.get_yticklabels()) == ["thickness", "slant", "width"]
    assert len(ax.get_xticklabels()) == 9
    assert image_array(ax).shape == (3 * 28 + 4 * PAD, 9 * 28 + 10 * PAD)


def test_traversal_rejects_bad_dims_and_labels(x):
    vae = make_vae(3)
    with pytest.raises(ValueError, match="dims"):
        viz.plot_latent_traversal(vae, x[0], dims=[3], likelihood="bernoulli")
    with pytest.raises(ValueError, match="dim_labels"):
        viz.plot_latent_traversal(vae, x[0], dims=[0, 1], dim_labels=["a"], likelihood="bernoulli")
    with pytest.raises(ValueError, match="one image"):
        viz.plot_latent_traversal(vae, x[:2], likelihood="bernoulli")


# ---------------------------------------------------------------------- decoded grid
def test_decoded_grid_uses_normal_quantiles_with_z1_increasing_upwards():
    vae = make_identity_vae(3)
    n = 5
    fig = viz.plot_decoded_grid(vae, likelihood="gaussian", n=n, dims=(0, 2))
    q = [statistics.NormalDist().inv_cdf(0.05 + 0.9 * k / (n - 1)) for k in range(n)]
    grid = image_array(fig.axes[0])
    assert grid.shape == (n * 1, n * 3)
    for r in range(n):
        for c in range(n):
            np.testing.assert_allclose(cell(grid, r, c, 1, 3, pad=0)[0], [q[c], 0.0, q[n - 1 - r]], atol=1e-5)
    assert fig.axes[0].get_xlabel() == "$z_{0}$" and fig.axes[0].get_ylabel() == "$z_{2}$"


def test_decoded_grid_span_and_given_ax():
    vae = make_identity_vae(2)
    _, ax = plt.subplots()
    fig = viz.plot_decoded_grid(vae, likelihood="gaussian", n=3, span=2.0, ax=ax)
    assert fig is ax.figure
    grid = image_array(ax)
    np.testing.assert_allclose(grid[0], [-2, 2, 0, 2, 2, 2])  # top row: z_1 = +2
    np.testing.assert_allclose(grid[2], [-2, -2, 0, -2, 2, -2])


def test_decoded_grid_rejects_bad_dims():
    with pytest.raises(ValueError, match="distinct"):
        viz.plot_decoded_grid(make_identity_vae(2), likelihood="gaussian", dims=(1, 1))
    with pytest.raises(ValueError, match="dims"):
        viz.plot_decoded_grid(make_identity_vae(2), likelihood="gaussian", dims=(0, 5))


# ---------------------------------------------------------------------- latent 2-D
def test_latent_2d_pca_matches_numpy_svd_and_has_a_legend_per_class():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(120, 5)) * np.array([3.0, 2.0, 1.0, 0.5, 0.1])
    labels = rng.integers(0, 4, size=120)
    fig = viz.plot_latent_2d(torch.from_numpy(z), torch.from_numpy(labels), method="pca")
    ax = fig.axes[0]
    assert len(ax.collections) == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2", "3"]
    assert ax.get_xlabel().startswith("PC 1") and ax.get_ylabel().startswith("PC 2")
    centred = z - z.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reference = centred @ vt[:2].T
    for k in range(4):
        got = ax.collections[k].get_offsets()
        want = reference[labels == k]
        signs = np.sign((got * want).sum(0))  # principal axes are defined up to sign
        np.testing.assert_allclose(got * signs, want, atol=1e-8)


def test_latent_2d_continuous_labels_get_a_colorbar_and_given_ax():
    z = torch.randn(50, 2)
    fig, ax = plt.subplots()
    out = viz.plot_latent_2d(z, torch.rand(50), method="none", ax=ax)
    assert out is fig and len(fig.axes) == 2  # the axes and its colorbar
    np.testing.assert_allclose(ax.collections[0].get_offsets(), z.numpy(), atol=1e-6)
    assert ax.get_xlabel() == "$z_{0}$"


def test_latent_2d_many_integer_labels_use_a_colorbar_and_strings_a_legend():
    z = torch.randn(60, 3)
    fig = viz.plot_latent_2d(z, np.arange(60) % 30)
    assert len(fig.axes) == 2 and fig.axes[0].get_legend() is None
    fig = viz.plot_latent_2d(z, np.array(["a", "b", "c"] * 20))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "b", "c"]


def test_latent_2d_tsne_and_subsampling():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    z = torch.randn(300, 4, generator=torch.Generator().manual_seed(0))
    # One OpenMP thread: on a busy 2-core machine, spinning t-SNE threads take 10x longer.
    with threadpoolctl.threadpool_limits(limits=1):
        fig = viz.plot_latent_2d(z, torch.arange(300) % 3, method="tsne", max_points=80)
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 80
    assert ax.get_xlabel() == "t-SNE 1" and ax.get_ylabel() == "t-SNE 2"
    assert "80 of 300" in ax.get_title()


@pytest.mark.parametrize(
    ("z", "kwargs", "match"),
    [
        (torch.randn(10, 3), {"method": "foo"}, "method"),
        (torch.randn(10, 3), {"method": "none"}, "2-D"),
        (torch.full((10, 3), float("nan")), {}, "NaN"),
        (torch.randn(10, 3), {"labels": torch.zeros(9)}, "labels"),
    ],
)
def test_latent_2d_rejects_bad_arguments(z, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.plot_latent_2d(z, **kwargs)


# ---------------------------------------------------------------------- latent explorer
def find_widgets(widget, kind):
    found = [widget] if isinstance(widget, kind) else []
    for child in getattr(widget, "children", ()):
        found += find_widgets(child, kind)
    return found


def png_pixels(data: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(data), format="png")


def test_latent_explorer_is_a_live_widget_panel():
    ipywidgets = pytest.importorskip("ipywidgets")
    vae = make_identity_vae(3)
    vae.train()
    panel = viz.latent_explorer(vae, likelihood="bernoulli", scale=2)
    assert isinstance(panel, ipywidgets.Widget)
    sliders = find_widgets(panel, ipywidgets.FloatSlider)
    (image,) = find_widgets(panel, ipywidgets.Image)
    assert len(sliders) == 3 and (sliders[0].min, sliders[0].max) == (-3.0, 3.0)
    pixels = png_pixels(image.value)
    assert pixels.shape[:2] == (2, 6)
    np.testing.assert_allclose(pixels[0, ::2, 0], [0.5, 0.5, 0.5], atol=2 / 255)
    sliders[1].value = 2.0
    pixels = png_pixels(image.value)
    np.testing.assert_allclose(pixels[0, ::2, 0], [0.5, 1 / (1 + math.exp(-2.0)), 0.5], atol=2 / 255)
    assert all(flags(vae))


def test_latent_explorer_caps_the_number_of_sliders():
    ipywidgets = pytest.importorskip("ipywidgets")
    vae = make_identity_vae(12)
    panel = viz.latent_explorer(vae, likelihood="gaussian")
    assert len(find_widgets(panel, ipywidgets.FloatSlider)) == 10
    panel = viz.latent_explorer(vae, likelihood="gaussian", dims=[11])
    assert [s.description for s in find_widgets(panel, ipywidgets.FloatSlider)] == ["z_11"]


def test_latent_explorer_static_figure():
    vae = make_vae(3)
    fig = viz.latent_explorer(vae, likelihood="bernoulli", static=True)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert tick_texts(ax.get_yticklabels()) == ["$z_{0}$", "$z_{1}$", "$z_{2}$"]
    assert image_array(ax).shape == (3 * 28 + 4 * PAD, 7 * 28 + 8 * PAD)


def test_latent_explorer_degrades_without_ipywidgets(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes the import fail
    with pytest.warns(UserWarning, match="ipywidgets"):
        fig = viz.latent_explorer(make_vae(2), likelihood="bernoulli")
    assert isinstance(fig, Figure)


def test_latent_explorer_rejects_bad_arguments():
    vae = make_vae(3)
    with pytest.raises(ValueError, match="range"):
        viz.latent_explorer(vae, likelihood="bernoulli", range=(1.0, -1.0))
    with pytest.raises(ValueError, match="z0"):
        viz.latent_explorer(vae, likelihood="bernoulli", z0=torch.zeros(2, 3))


def test_latent_explorer_moved_but_stays_importable_from_viz():
    from autoencoders import explorer
    from autoencoders.viz import latent_explorer

    assert latent_explorer is explorer.latent_explorer
    assert "latent_explorer" not in viz.__all__  # documented once, in autoencoders.explorer
    with pytest.raises(AttributeError, match="no attribute 'not_a_function'"):
        viz.not_a_function  # noqa: B018


# ------------------------------------------------------------------ animated traversal
def test_animated_traversal_frames_set_one_coordinate_per_panel():
    vae = make_identity_vae(3)
    x0 = torch.randn(1, 1, 3)
    values = [-2.0, 0.0, 1.5]
    anim = viz.animate_latent_traversal(vae, x0, dims=[2, 0], values=values,
                                        likelihood="gaussian", dim_labels=["a", "b"])
    fig = anim._fig
    axes = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    assert fig.get_size_inches()[0] <= 7.0
    mu = identity_mu(vae, x0.unsqueeze(0))[0].numpy()
    # the frames go up and back down: 0, 1, 2, 1
    for t, v in enumerate([values[0], values[1], values[2], values[1]]):
        anim._func(t)
        for ax, j in zip(axes, [2, 0]):
            expected = mu.copy()
            expected[j] = v
            np.testing.assert_allclose(image_array(ax)[0], expected, atol=1e-6)
        assert f"{v:+.2f}" in fig._suptitle.get_text()
    assert anim._save_count == 4 or len(list(anim.new_frame_seq())) == 4
    html = viz.animation_html(anim)
    assert "<img" in html and "http" not in html and "<i class" not in html
    assert "\u25b6" in html  # the play button


def test_animated_traversal_rows_for_several_models_and_bad_input():
    a, b = make_identity_vae(3), make_identity_vae(2)
    anim = viz.animate_latent_traversal([a, b], None, dims=[[0, 1, 2], [1]],
                                        dim_labels=[["x", "y", "z"], ["w"]],
                                        row_titles=["A", "B"], likelihood="gaussian")
    titles = [ax.get_title() for ax in anim._fig.axes if ax.get_images()]
    assert titles == ["x", "y", "z", "w"]
    with pytest.raises(ValueError, match="row_titles"):
        viz.animate_latent_traversal([a, b], None, row_titles=["A"], likelihood="gaussian")
    with pytest.raises(ValueError, match="values"):
        viz.animate_latent_traversal(a, None, values=[1.0], likelihood="gaussian")
    with pytest.raises(ValueError, match="dim_labels"):
        viz.animate_latent_traversal(a, None, dims=[0, 1], dim_labels=["a"],
                                     likelihood="gaussian")
