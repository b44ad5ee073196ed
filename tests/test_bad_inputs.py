"""Bad inputs raise clear errors instead of returning plausible numbers (issue 12)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoencoders import VAE, kl_divergence_diag_gaussian
from autoencoders.train import load_checkpoint, save_checkpoint


def small_vae(act=nn.ReLU) -> VAE:
    enc = nn.Sequential(nn.Flatten(), nn.LazyLinear(16), act())
    dec = nn.Sequential(nn.Linear(3, 16), act(), nn.Linear(16, 36), nn.Unflatten(1, (1, 6, 6)))
    return VAE(enc, dec, 3)


X = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", ["beta", "free_bits"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0])
def test_beta_and_free_bits_must_be_finite_and_nonnegative(name, value):
    model = small_vae().build(X)
    with pytest.raises(ValueError, match=name):
        model.compute_loss(X, model(X), **{name: value})


def test_log_marginal_likelihood_names_K():
    model = small_vae().build(X)
    with pytest.raises(ValueError, match=r"^K \(number"):
        model.log_marginal_likelihood(X, K=0)


@pytest.mark.parametrize("flag", ["no", 0, 1, None.__class__])
def test_sample_flag_is_strict(flag):
    model = small_vae().build(X)
    with pytest.raises(TypeError, match="sample"):
        model(X, sample=flag)


def test_reduce_sum_flag_is_strict():
    with pytest.raises(TypeError, match="reduce_sum"):
        kl_divergence_diag_gaussian(torch.zeros(2, 3), torch.zeros(2, 3), reduce_sum="no")


def test_unbuilt_model_is_not_saved(tmp_path):
    with pytest.raises(ValueError, match="build"):
        save_checkpoint(tmp_path / "c.pt", small_vae(), input_shape=(1, 1, 6, 6))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("content", [b"", b"hello", "half"])
def test_damaged_checkpoint_is_reported_as_invalid(tmp_path, content):
    path = tmp_path / "c.pt"
    save_checkpoint(path, small_vae().build(X))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content == "half" else content)
    with pytest.raises(ValueError, match="not a valid checkpoint: .*c.pt"):
        load_checkpoint(path, small_vae())


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        load_checkpoint(tmp_path / "nothere.pt", small_vae())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool])
def test_dtype_mismatch_names_both_dtypes_and_the_fix(dtype):
    model = small_vae().build(X)
    with pytest.raises(TypeError, match=r"x is \w+ but the model's parameters are float32; use x.float"):
        model(X.to(dtype))


def test_empty_batch_is_a_clear_error():
    model = small_vae().build(X)
    for call in (lambda: model(X[:0]), lambda: model.log_marginal_likelihood(X[:0], K=2)):
        with pytest.raises(ValueError, match="empty batch"):
            call()
