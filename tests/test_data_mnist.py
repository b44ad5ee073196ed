"""``load_mnist`` on the offline copy, its error paths, and ``TensorLoader``.

Reference facts come from ``../shared/data/README.md`` (sizes, label counts) and from
reading the IDX files directly with NumPy, not from the code under test.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from autoencoders.data import MNISTData, TensorLoader, load_mnist

TRAIN_LABEL_COUNTS = [1955, 2248, 1901, 2048, 1919, 1738, 1940, 2067, 1894, 1980]
# Digit counts of the official 10,000-image MNIST test set.
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def read_idx(path: Path) -> np.ndarray:
    """Independent IDX reader: big-endian header, then uint8 data."""
    raw = path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def train(mnist_root: Path) -> MNISTData:
    return load_mnist(mnist_root, train=True, download=False)


@pytest.fixture(scope="module")
def test_split(mnist_root: Path) -> MNISTData:
    return load_mnist(mnist_root, train=False, download=False)


# --------------------------------------------------------------------------- loading


def test_train_split_size_labels_and_dtypes(train, mnist_root):
    assert len(train) == 19_690
    assert train.images.shape == (19_690, 1, 28, 28)
    assert train.images.dtype == torch.float32
    assert train.labels.shape == (19_690,) and train.labels.dtype == torch.int64
    assert torch.bincount(train.labels, minlength=10).tolist() == TRAIN_LABEL_COUNTS
    assert train.train is True and train.root == mnist_root
    assert "N=19,690" in repr(train) and "train" in repr(train)


def test_test_split_size_and_labels(test_split):
    assert len(test_split) == 10_000
    assert test_split.images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(test_split.labels, minlength=10).tolist() == TEST_LABEL_COUNTS
    assert test_split.train is False
    assert "N=10,000" in repr(test_split)


def test_pixels_are_the_idx_bytes_divided_by_255(train, mnist_root):
    raw_images = read_idx(mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte")
    raw_labels = read_idx(mnist_root / "MNIST" / "raw" / "train-labels-idx1-ubyte")
    expected = torch.from_numpy(raw_images.astype(np.float32) / 255.0).unsqueeze(1)
    torch.testing.assert_close(train.images, expected, rtol=0, atol=1e-7)
    assert np.array_equal(train.labels.numpy(), raw_labels.astype(np.int64))
    assert train.images.min() == 0.0 and train.images.max() == 1.0


def test_root_falls_back_to_environment_variable(mnist_root, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_DATA", str(mnist_root))
    data = load_mnist(train=False, download=False)
    assert data.root == mnist_root and len(data) == 10_000


def test_device_argument_moves_tensors(mnist_root):
    data = load_mnist(mnist_root, train=False, download=False, device="cpu")
    assert data.images.device.type == "cpu" and data.labels.device.type == "cpu"
    if torch.cuda.is_available():
        gpu = load_mnist(mnist_root, train=False, download=False, device="cuda")
        assert gpu.images.is_cuda and gpu.labels.is_cuda
        torch.testing.assert_close(gpu.images.cpu(), data.images, rtol=0, atol=0)


# ------------------------------------------------------------------------ binarizing


def test_dynamic_binarization(test_split, mnist_root):
    a = load_mnist(mnist_root, train=False, binarize=True, download=False, rng=0)
    b = load_mnist(mnist_root, train=False, binarize=True, download=False, rng=0)
    c = load_mnist(mnist_root, train=False, binarize=True, download=False, rng=1)
    grey = test_split.images
    assert a.binarized and not test_split.binarized
    assert a.images.dtype == torch.float32
    assert set(torch.unique(a.images).tolist()) == {0.0, 1.0}
    assert torch.equal(a.images, b.images), "same seed must give the same copy"
    assert not torch.equal(a.images, c.images), "different seeds must differ"
    default = load_mnist(mnist_root, train=False, binarize=True, download=False)
    assert torch.equal(default.images, a.images), "the default seed is 0"
    with pytest.warns(DeprecationWarning, match="seed= is now called rng="):
        old = load_mnist(mnist_root, train=False, binarize=True, download=False, seed=1)
    assert torch.equal(old.images, c.images)
    # Bernoulli(p) keeps p = 0 and p = 1 pixels fixed ...
    assert torch.all(a.images[grey == 0] == 0) and torch.all(a.images[grey == 1] == 1)
    # ... and is unbiased: over 7.8 M pixels the sampling std of the mean is ~1e-4.
    assert abs(a.images.mean().item() - grey.mean().item()) < 1e-3
    # Grey pixels near 1/2 really are random: about half of them are switched on.
    mid = (grey > 0.4) & (grey < 0.6)
    assert abs(a.images[mid].mean().item() - grey[mid].mean().item()) < 0.02
    assert torch.equal(a.labels, test_split.labels)


# ---------------------------------------------------------------------------- errors


def test_missing_root_without_download_raises_documented_error(tmp_path):
    missing = tmp_path / "nowhere"
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(missing, download=False)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert str(missing) in message
    assert "AUTOENCODERS_DATA" in message and "root=" in message
    assert "MNIST" in message and "raw" in message
    assert info.value.__cause__ is not None


def test_failed_download_raises_quickly_and_restores_socket_timeout(tmp_path):
    # This machine has no route to the MNIST mirrors, so the download must fail.
    before = socket.getdefaulttimeout()
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, download=True)
    elapsed = time.monotonic() - start
    assert elapsed < 30, f"offline download attempt took {elapsed:.1f} s"
    assert str(tmp_path) in str(info.value) and "download failed" in str(info.value)
    assert info.value.__cause__ is not None
    assert socket.getdefaulttimeout() == before


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rng": -1}, ValueError, "rng must be a non-negative seed"),
        ({"rng": 1.5}, TypeError, "rng must be None, an int seed or a torch.Generator"),
        ({"train": "yes"}, ValueError, "train"),
        ({"binarize": 1}, ValueError, "binarize"),
    ],
)
def test_load_mnist_rejects_bad_arguments(mnist_root, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_mnist(mnist_root, download=False, **kwargs)


# ---------------------------------------------------------------------- TensorLoader


def epoch_indices(loader: TensorLoader) -> list[torch.Tensor]:
    return [batch[0] for batch in loader]


def test_each_epoch_is_a_permutation():
    n = 103
    loader = TensorLoader(torch.arange(n), torch.arange(n) * 10, batch_size=10)
    assert len(loader) == 11
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [10] * 10 + [3]
    seen = torch.cat([b[0] for b in batches])
    assert sorted(seen.tolist()) == list(range(n))
    assert not torch.equal(seen, torch.arange(n))
    for idx, ten in batches:  # rows stay aligned across tensors
        assert torch.equal(ten, idx * 10)


def test_generator_makes_epochs_reproducible_and_distinct():
    x = torch.arange(50)
    first = [torch.cat(epoch_indices(TensorLoader(x, batch_size=7, rng=g)))
             for g in (torch.Generator().manual_seed(3), torch.Generator().manual_seed(3))]
    assert torch.equal(first[0], first[1])

    loader = TensorLoader(x, batch_size=7, rng=torch.Generator().manual_seed(3))
    epoch1 = torch.cat(epoch_indices(loader))
    epoch2 = torch.cat(epoch_indices(loader))
    assert torch.equal(epoch1, first[0])
    assert not torch.equal(epoch1, epoch2)
    assert sorted(epoch2.tolist()) == list(range(50))
    # The order is the generator's randperm, drawn once per epoch.
    g = torch.Generator().manual_seed(3)
    assert torch.equal(epoch1, torch.randperm(50, generator=g))
    assert torch.equal(epoch2, torch.randperm(50, generator=g))


def test_drop_last():
    x = torch.arange(25)
    loader = TensorLoader(x, batch_size=10, drop_last=True, rng=torch.Generator())
    assert len(loader) == 2
    batches = epoch_indices(loader)
    assert [b.shape[0] for b in batches] == [10, 10]
    assert len(set(torch.cat(batches).tolist())) == 20
    keep = TensorLoader(x, batch_size=10, drop_last=False)
    assert len(keep) == 3 and [b.shape[0] for b in epoch_indices(keep)] == [10, 10, 5]
    exact = TensorLoader(torch.arange(20), batch_size=10, drop_last=True)
    assert len(exact) == 2 and len(list(exact)) == 2


def test_no_shuffle_keeps_order_and_returns_views():
    x = torch.arange(12.0).reshape(6, 2)
    y = torch.arange(6)
    batches = list(TensorLoader(x, y, batch_size=4, shuffle=False))
    assert len(batches) == 2
    assert torch.equal(batches[0][0], x[:4]) and torch.equal(batches[1][1], y[4:])
    assert batches[0][0].data_ptr() == x.data_ptr()  # a view, no copy


def test_single_tensor_yields_one_tuples():
    (batch,) = next(iter(TensorLoader(torch.zeros(5, 3), batch_size=2)))
    assert batch.shape == (2, 3)


def test_loader_over_mnist(train):
    loader = TensorLoader(train.images, train.labels, batch_size=512,
                          rng=torch.Generator().manual_seed(0))
    assert len(loader) == 39  # ceil(19690 / 512)
    total = torch.zeros(10, dtype=torch.int64)
    for images, labels in loader:
        assert images.shape[1:] == (1, 28, 28)
        total += torch.bincount(labels, minlength=10)
    assert total.tolist() == TRAIN_LABEL_COUNTS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_drives_gpu_tensors():
    x = torch.arange(40, device="cuda")
    loader = TensorLoader(x, batch_size=8, rng=torch.Generator().manual_seed(5))
    batches = epoch_indices(loader)
    assert all(b.is_cuda for b in batches)
    order = torch.cat(batches).cpu()
    assert torch.equal(order, torch.randperm(40, generator=torch.Generator().manual_seed(5)))
    unseeded = torch.cat(epoch_indices(TensorLoader(x, batch_size=8))).cpu()
    assert sorted(unseeded.tolist()) == list(range(40))


def test_loader_rejects_bad_arguments():
    x = torch.zeros(10, 2)
    with pytest.raises(ValueError, match=r"same first dimension.*\[10, 2\], \[9\]"):
        TensorLoader(x, torch.zeros(9), batch_size=2)
    for bad in (0, -4, 2.0, True, None):
        with pytest.raises(ValueError, match="batch_size"):
            TensorLoader(x, batch_size=bad)
    with pytest.raises(TypeError):
        TensorLoader(x)  # batch_size is keyword-only and required
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorLoader(batch_size=2)
    with pytest.raises(TypeError, match=r"tensors\[1\]"):
        TensorLoader(x, [1, 2], batch_size=2)
    with pytest.raises(ValueError, match="N = 0"):
        TensorLoader(torch.zeros(0, 3), batch_size=2)
    with pytest.raises(ValueError, match="drop_last"):
        TensorLoader(x, batch_size=11, drop_last=True)
    with pytest.raises(TypeError, match="rng must be None, an int seed or a torch.Generator"):
        TensorLoader(x, batch_size=2, rng="0")
    # an int is a seed: the same order as a generator seeded with it
    by_seed = [b[0] for b in TensorLoader(x, batch_size=2, rng=4)]
    by_gen = [b[0] for b in TensorLoader(x, batch_size=2, rng=torch.Generator().manual_seed(4))]
    assert all(torch.equal(a, b) for a, b in zip(by_seed, by_gen, strict=True))
    with pytest.warns(DeprecationWarning, match="generator= is now called rng="):
        TensorLoader(x, batch_size=2, generator=torch.Generator())
    with pytest.raises(TypeError, match="shuffle"):
        TensorLoader(x, batch_size=2, shuffle="yes")
