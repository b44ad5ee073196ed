"""Bad inputs to MNIST loading, the metrics and ``check_autoencoder`` get clear errors.

The MNIST cases damage copies of the real offline files in ``tmp_path`` (never the
originals, and never made-up data); expected sizes come from the IDX format itself:
``16 + N * 28 * 28`` bytes for images and ``8 + N`` for labels.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from autoencoders import VAE, AdaGVAE
from autoencoders.data import load_mnist
from autoencoders.metrics import (
    active_units,
    beta_vae_score,
    dci,
    encode_dataset,
    factor_vae_score,
    kl_per_dimension,
    mig,
    shared_dim_accuracy,
)
from autoencoders.nets import MLPDecoder, MLPEncoder
from autoencoders.testing import check_autoencoder

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
TEST_IMAGES_SIZE = 16 + 10_000 * 28 * 28  # 7,840,016 bytes
TEST_LABELS_SIZE = 8 + 10_000

# ------------------------------------------------------------------------------ MNIST


@pytest.fixture
def mnist_copy(mnist_root: Path, tmp_path: Path) -> Path:
    """A data root in ``tmp_path`` holding copies of the four real raw files."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copyfile(mnist_root / "MNIST" / "raw" / name, raw / name)
    return tmp_path


def _raw(root: Path, name: str) -> Path:
    return root / "MNIST" / "raw" / name


def _edit(path: Path, start: int, value: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[start : start + len(value)] = value
    path.write_bytes(bytes(data))


def test_untouched_copy_loads_like_the_original(mnist_root, mnist_copy):
    original = load_mnist(mnist_root, train=False, download=False)
    copy = load_mnist(mnist_copy, train=False, download=False)
    assert len(copy) == 10_000 and copy.images.shape == (10_000, 1, 28, 28)
    assert torch.equal(copy.images, original.images)
    assert torch.equal(copy.labels, original.labels)
    assert len(load_mnist(mnist_copy, train=True, download=False)) == 19_690


@pytest.mark.parametrize(
    ("name", "keep", "expected"),
    [(TEST_IMAGES, 100_000, TEST_IMAGES_SIZE), (TEST_LABELS, 5_000, TEST_LABELS_SIZE)],
)
def test_truncated_file_names_file_and_both_sizes(mnist_copy, name, keep, expected):
    path = _raw(mnist_copy, name)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(ValueError, match="corrupt or truncated") as info:
        load_mnist(mnist_copy, train=False, download=False)
    message = str(info.value)
    assert str(path) in message
    assert f"it has {keep} bytes" in message and f"= {expected} bytes" in message


def test_truncated_file_is_not_reported_as_missing_with_download(mnist_copy):
    path = _raw(mnist_copy, TEST_IMAGES)
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(ValueError, match=re.escape(TEST_IMAGES) + ".*corrupt or truncated"):
        load_mnist(mnist_copy, train=False, download=True)


def test_file_shorter_than_its_header(mnist_copy):
    path = _raw(mnist_copy, TEST_IMAGES)
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(ValueError, match=r"corrupt or truncated: it has 10 bytes, fewer than the 16"):
        load_mnist(mnist_copy, train=False, download=False)


@pytest.mark.parametrize(
    ("name", "magic", "expected"),
    [(TEST_IMAGES, 2305, 2051), (TEST_LABELS, 2051, 2049)],
)
def test_wrong_magic_number(mnist_copy, name, magic, expected):
    _edit(_raw(mnist_copy, name), 0, magic.to_bytes(4, "big"))
    with pytest.raises(ValueError, match="corrupt or truncated") as info:
        load_mnist(mnist_copy, train=False, download=False)
    message = str(info.value)
    assert name in message
    assert f"magic number is {magic}, expected {expected}" in message


def test_header_count_edited_gives_size_mismatch(mnist_copy):
    path = _raw(mnist_copy, TEST_IMAGES)
    _edit(path, 4, (1000).to_bytes(4, "big"))
    with pytest.raises(ValueError, match="corrupt or truncated") as info:
        load_mnist(mnist_copy, train=False, download=False)
    message = str(info.value)
    assert TEST_IMAGES in message and "1000 images" in message
    assert f"it has {TEST_IMAGES_SIZE} bytes" in message
    assert f"= {16 + 1000 * 784} bytes" in message


def test_image_count_differs_from_label_count(mnist_copy):
    # A self-consistent image file of the first 1,000 real images against 10,000 labels.
    path = _raw(mnist_copy, TEST_IMAGES)
    _edit(path, 4, (1000).to_bytes(4, "big"))
    path.write_bytes(path.read_bytes()[: 16 + 1000 * 784])
    with pytest.raises(ValueError, match="do not match") as info:
        load_mnist(mnist_copy, train=False, download=False)
    message = str(info.value)
    assert TEST_IMAGES in message and TEST_LABELS in message
    assert "1000 images" in message and "10000 labels" in message


def test_missing_file_is_still_not_found(mnist_copy):
    _raw(mnist_copy, TEST_LABELS).unlink()
    with pytest.raises(FileNotFoundError, match="MNIST not found") as info:
        load_mnist(mnist_copy, train=False, download=False)
    assert f"missing: {TEST_LABELS}" in str(info.value)


def test_missing_file_with_a_gz_copy_says_how_to_use_it(mnist_copy):
    path = _raw(mnist_copy, TEST_LABELS)
    with gzip.open(path.with_name(TEST_LABELS + ".gz"), "wb") as f:
        f.write(path.read_bytes())
    path.unlink()
    with pytest.raises(FileNotFoundError, match="MNIST not found") as info:
        load_mnist(mnist_copy, train=False, download=False)
    assert f"found {TEST_LABELS}.gz" in str(info.value)


# ---------------------------------------------------------------------------- metrics


class StubVAE(nn.Module):
    """encode(x) -> mu = x * scale, log_var = 0 (a linear, known encoder)."""

    def __init__(self, scale):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float64))

    def encode(self, x):
        mu = x.double() * self.scale
        return SimpleNamespace(z=mu, mu=mu, log_var=torch.zeros_like(mu))


X4 = torch.from_numpy(np.random.default_rng(0).normal(size=(40, 4)))


def _with(value: float, row: int = 21) -> torch.Tensor:
    x = X4.clone()
    x[row, 2] = value
    return x


BAD = [float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("value", BAD)
def test_encode_dataset_rejects_non_finite_images(value):
    with pytest.raises(ValueError, match=r"images contains NaN or inf: 1 non-finite values in rows 16\.\.31"):
        encode_dataset(StubVAE([1.0] * 4), _with(value), batch_size=16)


@pytest.mark.parametrize("value", BAD)
def test_active_units_rejects_non_finite_data(value):
    # Without the check the NaN variance counts as inactive: 3 units instead of an error.
    with pytest.raises(ValueError, match="data contains NaN or inf"):
        active_units(StubVAE([1.0] * 4), _with(value), batch_size=16)


@pytest.mark.parametrize("value", BAD)
def test_kl_per_dimension_rejects_non_finite_data(value):
    with pytest.raises(ValueError, match="data contains NaN or inf"):
        kl_per_dimension(StubVAE([1.0] * 4), _with(value), batch_size=16)


def test_non_finite_data_in_ndarray_and_iterable_inputs():
    model = StubVAE([1.0] * 4)
    with pytest.raises(ValueError, match="data contains NaN or inf"):
        active_units(model, _with(float("nan")).numpy())
    batches = [(X4[:20], torch.zeros(20)), (_with(float("nan"), row=25)[20:], torch.zeros(20))]
    with pytest.raises(ValueError, match=r"images contains NaN or inf: 1 non-finite values in batch 1"):
        encode_dataset(model, batches)


def test_active_units_rejects_a_diverged_encoder():
    # Finite data, NaN means: a count of 0 would read like posterior collapse.
    with pytest.raises(ValueError, match=r"encoder means are NaN or inf .*dimensions \[1\]"):
        active_units(StubVAE([1.0, float("nan"), 1.0, 1.0]), X4)


def test_finite_inputs_still_work():
    scale = [1.0, 0.05, 0.2, 0.0]
    model = StubVAE(scale)
    codes = encode_dataset(model, X4, batch_size=16)
    torch.testing.assert_close(codes, X4 * torch.tensor(scale, dtype=torch.float64))
    result = active_units(model, X4, batch_size=16)
    expected = np.var(X4.numpy() * np.array(scale), axis=0, ddof=1)
    np.testing.assert_allclose(result.variances.numpy(), expected, rtol=1e-12)
    assert result.count == int((expected > 0.01).sum()) == 2
    kl = kl_per_dimension(model, X4, batch_size=16)
    np.testing.assert_allclose(kl.numpy(), 0.5 * (codes.numpy() ** 2).mean(axis=0), rtol=1e-12)
    # Integer inputs (e.g. uint8 pixels) cannot be NaN and pass unchanged.
    pixels = torch.arange(12, dtype=torch.uint8).reshape(3, 4)
    torch.testing.assert_close(encode_dataset(model, pixels), pixels.double() * model.scale)


def _represent_with(value: float):
    def represent(factors: np.ndarray) -> np.ndarray:
        z = np.concatenate([factors.astype(np.float64), np.zeros((len(factors), 1))], axis=1)
        z[:, 2] = value
        return z

    return represent


def _represent_factors(factors: np.ndarray) -> np.ndarray:
    return factors.astype(np.float64)


@pytest.mark.parametrize("value", BAD)
def test_factor_vae_score_rejects_non_finite_codes(value):
    # Before: the NaN dimension was silently pruned and a score came back.
    with pytest.raises(ValueError, match=r"represent returned non-finite codes .*dimensions \[2\]"):
        factor_vae_score(
            _represent_with(value), [3, 4], rng=0, batch_size=8, n_train=50, n_eval=20, n_var_est=100
        )


@pytest.mark.parametrize("value", BAD)
def test_beta_vae_score_rejects_non_finite_codes(value):
    with pytest.raises(ValueError, match=r"represent returned non-finite codes .*dimensions \[2\]"):
        beta_vae_score(_represent_with(value), [3, 4], rng=0, batch_size=4, n_train=20, n_eval=10)


def test_scores_with_finite_codes_still_work():
    # Codes equal to the factors: the fixed factor's dimension has zero variance.
    fv = factor_vae_score(
        _represent_factors, [3, 4], rng=0, batch_size=8, n_train=50, n_eval=20, n_var_est=100
    )
    assert fv["eval_accuracy"] == 1.0 and fv["num_active_dims"] == 2
    bv = beta_vae_score(_represent_factors, [3, 4], rng=0, batch_size=16, n_train=40, n_eval=20)
    assert bv["eval_accuracy"] == 1.0


@pytest.mark.parametrize("value", BAD)
def test_code_metrics_reject_non_finite_codes(value):
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(60, 3))
    factors = rng.integers(0, 3, size=(60, 2))
    assert 0.0 <= mig(codes, factors) <= 1.0  # finite codes work
    bad = codes.copy()
    bad[7, 1] = value
    with pytest.raises(ValueError, match=r"codes must be finite, got 1 non-finite .*dimensions \[1\]"):
        mig(bad, factors)
    with pytest.raises(ValueError, match="codes must be finite"):
        mig(torch.from_numpy(bad), factors)
    with pytest.raises(ValueError, match="codes_test must be finite"):
        dci(codes, factors, bad, factors)
    with pytest.raises(ValueError, match="codes_train must be finite"):
        dci(bad, factors, codes, factors)


def test_shared_dim_accuracy_rejects_float_masks_with_nan():
    pred = np.array([[1.0, np.nan], [0.0, 1.0]])
    changed = np.array([[False, False], [True, False]])  # truly shared: [[T, T], [F, T]]
    with pytest.raises(ValueError, match="shared_mask_pred must be a 2-D bool array"):
        shared_dim_accuracy(pred, changed, np.array([0, 1]))
    ok = shared_dim_accuracy(pred == 1.0, changed, np.array([0, 1]))
    assert ok["accuracy"] == 0.75


# -------------------------------------------------------------------- check_autoencoder

X = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def make_vae():
    return VAE(MLPEncoder(hidden=(32,)), MLPDecoder(4, hidden=(32,)), latent_dim=4)


@pytest.mark.parametrize(
    "sample", [[[0.0] * 784], X.numpy(), 3.0, (X, X)], ids=["list", "ndarray", "float", "pair"]
)
def test_check_autoencoder_rejects_a_non_tensor_sample(sample):
    model = make_vae()
    with pytest.raises(TypeError, match="sample must be a torch.Tensor batch"):
        check_autoencoder(model, sample)
    assert model.unbuilt_modules(), "the sample must be rejected before build()"


@pytest.mark.parametrize(
    "sample", [X, (X,), (X, X, X), (X, X.numpy()), [X, "x2"]], ids=["tensor", "1", "3", "np", "str"]
)
def test_check_autoencoder_rejects_a_bad_pair(sample):
    with pytest.raises(TypeError, match=r"paired=True needs sample=\(x1, x2\), a pair of tensors"):
        check_autoencoder(AdaGVAE(make_vae()), sample, paired=True)


def test_check_autoencoder_rejects_a_pair_of_different_shapes():
    with pytest.raises(ValueError, match=r"sample shapes \[8, 1, 28, 28\] and \[4, 1, 28, 28\]"):
        check_autoencoder(AdaGVAE(make_vae()), (X, X[:4]), paired=True)


@pytest.mark.parametrize("value", BAD)
def test_check_autoencoder_rejects_non_finite_sample(value):
    x = X.clone()
    x[3, 0, 5, 5] = value
    with pytest.raises(ValueError, match=r"sample contains NaN or inf \(1 of 6272 values\)"):
        check_autoencoder(make_vae(), x)
    with pytest.raises(ValueError, match=r"sample\[1\] contains NaN or inf"):
        check_autoencoder(AdaGVAE(make_vae()), (X, x), paired=True)


def test_check_autoencoder_with_a_finite_sample_still_passes():
    report = check_autoencoder(make_vae(), X, loss_kwargs={"likelihood": "bernoulli"})
    assert bool(report) and len(report.results) == 6 and not report.failures
