"""The chapter recipes (autoencoders.recipes), against hand-written references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autoencoders.data import TensorLoader
from autoencoders.nets import count_parameters
from autoencoders.recipes import (
    conv_vae64,
    mlp_ae,
    mlp_vae,
    probe_accuracy,
    squared_error,
    train,
    traversal_labels,
)
from autoencoders.train import fit
from autoencoders.utils import seed_everything


def test_mlp_factories_have_the_documented_sizes_and_likelihood():
    ae = mlp_ae(20).build(torch.zeros(1, 1, 28, 28))
    # 784-400-20 encoder and 20-400-784 decoder, weights and biases counted by hand
    assert count_parameters(ae) == (784 * 400 + 400 + 400 * 20 + 20) + (20 * 400 + 400 + 400 * 784 + 784)
    vae = mlp_vae(20, likelihood="bernoulli").build(torch.zeros(1, 1, 28, 28))
    assert vae.likelihood == "bernoulli"
    # the heads replace the encoder's last layer: two 400 -> 20 maps
    assert count_parameters(vae) == (784 * 400 + 400 + 2 * (400 * 20 + 20)) + (20 * 400 + 400 + 400 * 784 + 784)
    with pytest.raises(ValueError, match="hidden"):
        mlp_vae(4, hidden=())
    assert conv_vae64(6).build(torch.zeros(1, 1, 64, 64)).latent_dim == 6


def test_train_is_seed_loader_fit():
    x = torch.rand(96, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(1)
    a = mlp_vae(4, hidden=(16,))
    history = train(a, x, epochs=2, batch_size=32, seed=7, progress=False, device="cpu")
    # the same ritual written out by hand
    torch.manual_seed(1)
    b = mlp_vae(4, hidden=(16,))
    generator = seed_everything(7)
    fit(b, TensorLoader(x, batch_size=32, rng=generator), epochs=2, lr=1e-3, progress=False, device="cpu")
    assert history.steps == 6
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_squared_error_is_summed_over_pixels_and_averaged_over_images():
    x = torch.zeros(2, 1, 2, 2)
    x_hat = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 2.0]).reshape(2, 1, 2, 2)
    assert squared_error(x, x_hat) == pytest.approx((4.0 + 4.0) / 2)
    with pytest.raises(ValueError, match="shape"):
        squared_error(x, x_hat.flatten(1))


def test_probe_accuracy_reads_linear_information():
    rng = np.random.default_rng(0)
    labels = torch.as_tensor(rng.integers(0, 3, 600))
    informative = torch.nn.functional.one_hot(labels, 3).float() + 0.05 * torch.randn(600, 3)
    noise = torch.randn(600, 3)
    assert probe_accuracy(informative[:400], labels[:400], informative[400:], labels[400:]) == 1.0
    assert probe_accuracy(noise[:400], labels[:400], noise[400:], labels[400:]) < 0.5


def test_traversal_labels_order_by_kl_and_name_factors():
    order, labels = traversal_labels(torch.tensor([0.05, 2.0, 0.7]), [1, 0, 2], ["shape", "scale", "x"])
    assert order == [1, 2, 0]
    assert labels == ["z1: shape\nKL 2.00", "z2: x\nKL 0.70", "z0: unused\nKL 0.05"]
    with pytest.raises(ValueError, match="one entry per latent dimension"):
        traversal_labels(torch.ones(2), [0], ["a"])


def test_factory_seed_fixes_every_weight_and_leaves_the_global_stream_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = mlp_vae(4, hidden=(16,), seed=5)
    assert torch.equal(torch.rand(3), expected_next)  # the global stream did not move
    b = mlp_vae(4, hidden=(16,), seed=5)
    c = mlp_vae(4, hidden=(16,), seed=6)
    assert a.unbuilt_modules() == []  # the heads are materialised, so they are seeded too
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))
    assert all(torch.equal(p, q) for p, q in zip(mlp_ae(3, seed=1).parameters(), mlp_ae(3, seed=1).parameters(), strict=True))


def test_traversal_labels_short_form_is_the_factor_name_only():
    order, labels = traversal_labels(torch.tensor([0.05, 2.0, 0.7]), [1, 0, 2],
                                     ["shape", "scale", "x"], short=True)
    assert order == [1, 2, 0]
    assert labels == ["shape", "x", "unused"]
