"""Tests for the procedural dSprites-like data, the dSprites loader and the pair sampler.

Geometric references are closed forms (square and ellipse areas), a separate
high-resolution numpy integration (the heart), ``numpy.unravel_index`` (indexing), and
exact pixel-grid symmetries (flips, transposes, 90-degree rotations).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import autoencoders.dsprites as dsprites
import autoencoders.dsprites_file as dsprites_file
from autoencoders.dsprites import (
    DSPRITES_FILENAME,
    ProceduralSprites,
    Shapes2D,
    WeakPairs,
    load_dsprites,
    sample_pairs,
)

SIZES = (3, 6, 40, 32, 32)
SCALES = np.linspace(0.5, 1.0, 6)
PX_PER_UNIT = 9.6  # documented: the square's side at scale 1 is 19.2 px
MARGIN = 14.5  # documented: centres range over [14.5, 49.5] px


@pytest.fixture(scope="module")
def ds() -> ProceduralSprites:
    return ProceduralSprites()


def heart_area_reference(n: int = 1001) -> float:
    """Area of (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 by midpoint counting on a fine grid."""
    h = 3.0 / n
    g = -1.5 + h * (np.arange(n) + 0.5)
    x, y = np.meshgrid(g, g)
    return float(((x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0).sum() * h * h)


def centred(ds, shape: int, scales, orientation: float = 0.0) -> torch.Tensor:
    """[N, 64, 64] images of one shape at the exact image centre."""
    n = len(scales)
    half = np.full(n, 0.5)
    return ds.render(np.full(n, shape), scales, np.full(n, orientation), half, half)[:, 0]


def centroid(img: torch.Tensor) -> tuple[float, float]:
    """(row, column) centroid in pixel-index coordinates."""
    rows, cols = torch.nonzero(img, as_tuple=True)
    return rows.double().mean().item(), cols.double().mean().item()


# --- the factor grid --------------------------------------------------------------------
def test_grid_matches_dsprites(ds):
    assert Shapes2D is ProceduralSprites
    assert ds.factor_sizes == SIZES
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.num_factors == 5
    assert len(ds) == 737_280
    grid = ds.factor_values(np.array([[i % s for s in SIZES] for i in range(40)]))
    np.testing.assert_allclose(grid[:6, 1], SCALES)
    np.testing.assert_allclose(grid[:, 2], np.linspace(0, 2 * np.pi, 40, endpoint=False))
    np.testing.assert_allclose(grid[:32, 3], np.linspace(0, 1, 32))
    np.testing.assert_allclose(grid[:3, 0], [1.0, 2.0, 3.0])


def test_index_round_trip_matches_numpy_unravel(ds):
    rng = np.random.default_rng(0)
    idx = np.concatenate([[0, len(ds) - 1], rng.integers(0, len(ds), 1000)])
    factors = ds.index_to_factors(idx)
    reference = np.stack(np.unravel_index(idx, SIZES), axis=1)
    np.testing.assert_array_equal(factors.numpy(), reference)
    np.testing.assert_array_equal(ds.factors_to_index(factors).numpy(), idx)
    assert ds.index_to_factors(0).tolist() == [0, 0, 0, 0, 0]
    assert ds.index_to_factors(737_279).tolist() == [2, 5, 39, 31, 31]
    assert ds.factors_to_index(torch.tensor([2, 5, 39, 31, 31])).item() == 737_279


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda d: d.index_to_factors(737_280), IndexError, "0..737279"),
        (lambda d: d.index_to_factors([-1]), IndexError, "got -1"),
        (lambda d: d.index_to_factors([0.5]), TypeError, "integer dtype"),
        (
            lambda d: d.factors_to_index([[0, 6, 0, 0, 0]]),
            ValueError,
            r"\(scale\) must lie in 0..5, got 6",
        ),
        (lambda d: d.factors_to_index([[0, 0, 0, 0]]), ValueError, r"\[N, 5\]"),
        (lambda d: d.images([[3, 0, 0, 0, 0]]), ValueError, r"\(shape\) must lie in 0..2"),
        (lambda d: d.render([0], [1.5], [0.0], [0.5], [0.5]), ValueError, "scale must be in"),
        (lambda d: d[737_280], IndexError, "737279"),
    ],
)
def test_bad_indices_and_factors_raise(ds, call, error, match):
    with pytest.raises(error, match=match):
        call(ds)


def test_sample_factors_seeded_and_in_range(ds):
    a = ds.sample_factors(5000, 3)
    b = ds.sample_factors(5000, np.random.default_rng(3))
    assert torch.equal(a, b) and a.shape == (5000, 5) and a.dtype == torch.int64
    assert (a.min(0).values == 0).all()
    assert a.max(0).values.tolist() == [s - 1 for s in SIZES]


# --- rendering ----------------------------------------------------------------------------
def test_images_are_binary_float(ds):
    x, f = ds[torch.arange(0, len(ds), 2999)]
    assert x.shape == (246, 1, 64, 64) and x.dtype == torch.float32
    assert set(x.unique().tolist()) == {0.0, 1.0}
    xs, fs = ds[5:8]
    assert xs.shape == (3, 1, 64, 64) and fs.tolist() == [[0, 0, 0, 0, i] for i in (5, 6, 7)]
    img, fac = ds[12345]
    assert img.shape == (1, 64, 64) and fac.tolist() == ds.index_to_factors(12345).tolist()


def test_area_matches_closed_forms_and_grows_with_scale_squared(ds):
    unit_area = {
        0: 4.0,  # square [-1, 1]^2
        1: math.pi * 1.4 * 0.7,  # ellipse with semi-axes 1.4, 0.7
        2: heart_area_reference() * 1.05**2,
    }
    for shape in range(3):
        areas = centred(ds, shape, SCALES).sum((1, 2)).numpy()
        assert np.all(np.diff(areas) > 0), (shape, areas)
        expected = unit_area[shape] * (PX_PER_UNIT * SCALES) ** 2
        # Pixel counting of a region of area A errs by at most about half its
        # perimeter; 2 sqrt(A) bounds that for these compact shapes.
        assert np.all(np.abs(areas - expected) <= 2 * np.sqrt(expected) + 1), (
            shape,
            areas,
            expected,
        )
        np.testing.assert_allclose(areas / areas[-1], SCALES**2, rtol=0.12)


def test_shapes_are_symmetric_and_centred(ds):
    for shape in range(3):
        imgs = centred(ds, shape, SCALES)
        for img in imgs:
            assert torch.equal(img, img.flip(-1)), f"shape {shape} not left-right symmetric"
            row, col = centroid(img)
            assert abs(row - 31.5) < 1.0 and abs(col - 31.5) < 1.0, (shape, row, col)
            if shape < 2:
                assert torch.equal(img, img.flip(-2)), f"shape {shape} not up-down symmetric"
            else:
                assert not torch.equal(img, img.flip(-2)), "the heart must not be up-down symmetric"


def test_heart_is_upright_with_notch_and_tip(ds):
    img = centred(ds, 2, [1.0])[0]
    rows = torch.nonzero(img.any(1)).squeeze(1)
    top, bottom = rows.min().item(), rows.max().item()
    centre_col_top = torch.nonzero(img[:, 31]).min().item()
    assert centre_col_top >= top + 2, "no notch between the lobes at the top"
    widths = img.sum(1)[top : bottom + 1]
    widest = int(widths.argmax())
    assert widths[-1] <= 4 and widths[-1] < widths[widest] / 4, "the tip should point down"
    assert (widths[widest:].diff() <= 0).all(), "the heart should narrow towards the tip"


def test_rotation_is_counter_clockwise_about_the_centre(ds):
    for shape in range(3):
        upright = centred(ds, shape, [1.0])[0]
        tilted = centred(ds, shape, [1.0], orientation=2 * math.pi * 3 / 40)[0]
        assert not torch.equal(upright, tilted)
        # a quarter turn is an exact symmetry of the pixel grid about its centre
        quarter = centred(ds, shape, [1.0], orientation=math.pi / 2)[0]
        assert torch.equal(quarter, torch.rot90(upright, 1, dims=(0, 1))), shape
    square = centred(ds, 0, [1.0])[0]
    assert torch.equal(square, centred(ds, 0, [1.0], orientation=math.pi / 2)[0])
    ellipse = centred(ds, 1, [1.0])[0]
    assert torch.equal(centred(ds, 1, [1.0], orientation=math.pi / 2)[0], ellipse.T.flip(0))
    # grid orientations match render() with the grid's angles
    f = torch.tensor([[s, 5, o, 7, 20] for s in range(3) for o in (0, 3, 17)])
    v = ds.factor_values(f)
    assert torch.equal(ds.images(f), ds.render(f[:, 0], v[:, 1], v[:, 2], v[:, 3], v[:, 4]))


def test_positions_move_centroid_monotonically_and_as_documented(ds):
    pos = torch.arange(32)
    fx = torch.stack(
        [torch.zeros(32), torch.full((32,), 5), torch.zeros(32), pos, torch.full((32,), 10)], 1
    )
    fy = fx[:, [0, 1, 2, 4, 3]]
    cols = np.array([centroid(img[0])[1] for img in ds.images(fx.long())])
    rows = np.array([centroid(img[0])[0] for img in ds.images(fy.long())])
    assert np.all(np.diff(cols) > 0) and np.all(np.diff(rows) > 0)
    expected = MARGIN + (64 - 2 * MARGIN) * np.linspace(0, 1, 32) - 0.5  # pixel index
    np.testing.assert_allclose(cols, expected, atol=0.5)
    np.testing.assert_allclose(rows, expected, atol=0.5)


def test_every_shape_stays_fully_in_view(ds):
    f = torch.tensor(
        [[s, 5, o, x, y] for s in range(3) for o in range(40) for x in (0, 31) for y in (0, 31)]
    )
    x = ds.images(f)[:, 0]
    border = x[:, 0].sum() + x[:, -1].sum() + x[:, :, 0].sum() + x[:, :, -1].sum()
    assert border.item() == 0
    # no part cut off: the same shape has the same area everywhere (up to pixelisation)
    areas = x.sum((1, 2)).view(3, 40 * 4)
    assert (areas.min(1).values > 0.9 * areas.max(1).values).all()


def test_rendering_is_deterministic_and_batch_independent(ds):
    f = ds.sample_factors(300, 1)
    alone = torch.cat([ds.images(f[i : i + 1]) for i in range(0, 300, 37)])
    batch = ds.images(f)
    assert torch.equal(alone, batch[::37])
    assert torch.equal(batch, ProceduralSprites(chunk_size=7).images(f))


# --- weak supervision pairs ---------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 4])
def test_sample_pairs_changes_exactly_k_factors(ds, k):
    x1, x2, f1, f2, changed = sample_pairs(ds, 150, k, rng=k)
    assert changed.dtype == torch.bool and changed.shape == (150, 5)
    assert torch.equal(changed, f1 != f2)
    assert (changed.sum(1) == k).all()
    assert torch.equal(x1, ds.images(f1)) and torch.equal(x2, ds.images(f2))


def test_sample_pairs_resamples_uniformly_among_other_values():
    ds = ProceduralSprites()
    n = 6000
    f1, f2, changed = dsprites._sample_pair_factors(ds.factor_sizes, n, 1, np.random.default_rng(0))
    # which factor changes: uniform over the 5 factors
    counts = changed.sum(0)
    assert np.all(np.abs(counts - n / 5) < 4 * np.sqrt(n / 5))
    # shape (3 values): the new value is each of the two others half the time
    rows = changed[:, 0]
    step = (f2[rows, 0] - f1[rows, 0]) % 3
    assert set(step.tolist()) == {1, 2}
    assert abs((step == 1).mean() - 0.5) < 4 * 0.5 / np.sqrt(rows.sum())


def test_random_k_covers_one_to_f_minus_one(ds):
    *_, f1, f2, changed = sample_pairs(ds, 200, "random", np.random.default_rng(1))
    assert torch.equal(changed, f1 != f2)
    assert set(changed.sum(1).tolist()) == {1, 2, 3, 4}
    # k ~ U{1..4}: each value close to a quarter of the pairs
    _, _, changed = dsprites._sample_pair_factors(SIZES, 4000, "random", np.random.default_rng(2))
    counts = np.bincount(changed.sum(1), minlength=6)
    assert counts[0] == counts[5] == 0
    assert np.all(np.abs(counts[1:5] - 1000) < 4 * np.sqrt(1000))


@pytest.mark.parametrize("k", [0, 5, -1, 1.5, "all", True, None])
def test_bad_k_raises(ds, k):
    with pytest.raises(ValueError, match=r"k must be an int in 1..4"):
        sample_pairs(ds, 4, k, 0)
    with pytest.raises(ValueError, match=r"k must be an int in 1..4"):
        WeakPairs(ds, n_pairs=4, k=k)


def test_sample_pairs_is_seeded(ds):
    a = sample_pairs(ds, 50, "random", 7)
    b = sample_pairs(ds, 50, "random", 7)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_weak_pairs_pool_yields_documented_batches(ds):
    loader = WeakPairs(ds, n_pairs=100, batch_size=32, k=2, rng=0, shuffle=False)
    assert len(loader) == 4
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [32, 32, 32, 4]
    for batch in loader:
        x1, x2, changed = batch
        assert x1.dtype == x2.dtype == torch.float32 and x1.shape[1:] == (1, 64, 64)
        assert changed.dtype == torch.bool and (changed.sum(1) == 2).all()
    x1 = torch.cat([b[0] for b in batches])
    assert torch.equal(x1, ds.images(loader.factors1))
    assert torch.equal(torch.cat([b[1] for b in batches]), ds.images(loader.factors2))
    assert torch.equal(torch.cat([b[2] for b in batches]), loader.factors1 != loader.factors2)


def test_weak_pairs_shuffles_each_epoch_over_the_same_pool(ds):
    loader = WeakPairs(ds, n_pairs=64, batch_size=16, k="random", rng=3)
    first = torch.cat([b[0] for b in loader])
    second = torch.cat([b[0] for b in loader])
    assert not torch.equal(first, second)
    key = lambda x: sorted(map(tuple, x.flatten(1).numpy().astype(np.uint8).tolist()))  # noqa: E731
    assert key(first) == key(second)


def test_weak_pairs_stream_mode(ds):
    loader = WeakPairs(ds, batch_size=8, k=1, rng=0, steps_per_epoch=3)
    assert len(loader) == 3
    batches = list(loader)
    assert len(batches) == 3 and all(b[0].shape == (8, 1, 64, 64) for b in batches)
    again = list(WeakPairs(ds, batch_size=8, k=1, rng=0, steps_per_epoch=3))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again))
    with pytest.raises(ValueError, match="exactly one of n_pairs"):
        WeakPairs(ds, batch_size=8)
    with pytest.raises(ValueError, match="exactly one of n_pairs"):
        WeakPairs(ds, n_pairs=8, steps_per_epoch=2)


# --- the dSprites file loader ---------------------------------------------------------------
TINY = (1, 3, 2, 2, 3, 2)  # color, shape, scale, orientation, posX, posY


def write_tiny_dsprites(folder, shuffle: bool, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A reduced-grid file in the real file's format (keys, dtypes, compression)."""
    classes = np.stack(np.unravel_index(np.arange(math.prod(TINY)), TINY), 1).astype(np.int64)
    if shuffle:
        classes = classes[rng.permutation(len(classes))]
    values = classes * np.array([0.0, 1.0, 0.25, 0.5, 0.1, 0.2]) + np.array([1, 1, 0.5, 0, 0, 0])
    imgs = (rng.random((len(classes), 64, 64)) < 0.3).astype(np.uint8)
    (folder / "dsprites").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / "dsprites" / DSPRITES_FILENAME,
        imgs=imgs,
        latents_classes=classes,
        latents_values=values.astype(np.float64),
        metadata=np.array({"description": "tiny test file"}, dtype=object),
    )
    return imgs, classes, values


@pytest.mark.parametrize("shuffle", [False, True])
def test_load_dsprites_reads_a_tiny_file(tmp_path, shuffle):
    imgs, classes, values = write_tiny_dsprites(tmp_path, shuffle, np.random.default_rng(0))
    data = load_dsprites(tmp_path, download=False)
    assert data.factor_sizes == TINY[1:] and len(data) == 72
    assert data.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    factors = data.sample_factors(30, 0)
    x = data.images(factors)
    assert x.shape == (30, 1, 64, 64) and x.dtype == torch.float32
    for f, img, val in zip(factors.numpy(), x, data.factor_values(factors).numpy()):
        row = np.flatnonzero((classes[:, 1:] == f).all(1))
        assert row.size == 1
        np.testing.assert_array_equal(img[0].numpy(), imgs[row[0]])
        np.testing.assert_allclose(val, values[row[0], 1:])
    img, f = data[71]
    assert f.tolist() == [2, 1, 1, 2, 1]
    np.testing.assert_array_equal(
        np.stack(np.unravel_index(np.arange(72), TINY[1:]), 1),
        data.index_to_factors(np.arange(72)).numpy(),
    )
    *_, changed = sample_pairs(data, 20, 2, 0)
    assert (changed.sum(1) == 2).all()


def test_load_dsprites_rejects_malformed_files(tmp_path):
    rng = np.random.default_rng(0)
    imgs, classes, values = write_tiny_dsprites(tmp_path, False, rng)
    path = tmp_path / "dsprites" / DSPRITES_FILENAME
    np.savez_compressed(path, imgs=imgs * 2, latents_classes=classes, latents_values=values)
    with pytest.raises(ValueError, match="only 0 and 1"):
        load_dsprites(tmp_path, download=False)
    np.savez_compressed(
        path, imgs=imgs[:-1], latents_classes=classes[:-1], latents_values=values[:-1]
    )
    with pytest.raises(ValueError, match="exactly once"):
        load_dsprites(tmp_path, download=False)


def test_load_dsprites_missing_file_without_download(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dsprites(tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path / "dsprites" / DSPRITES_FILENAME) in message
    assert "github.com/deepmind/dsprites-dataset" in message and "download=False" in message


def test_load_dsprites_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    # Port 9 on localhost refuses at once, standing in for an offline machine.
    monkeypatch.setattr(dsprites_file, "DSPRITES_URL", "http://127.0.0.1:9/" + DSPRITES_FILENAME)
    with pytest.raises(FileNotFoundError, match="downloading it failed"):
        load_dsprites(tmp_path, download=True)
    assert not any((tmp_path / "dsprites").glob("*.part"))


# --- the facade: autoencoders.dsprites re-exports the split modules -----------------------
HOME_MODULES = (
    "autoencoders.factor_images",
    "autoencoders.procedural_sprites",
    "autoencoders.dsprites_file",
    "autoencoders.weak_pairs",
)


def test_facade_reexports_every_public_name_from_its_home_module():
    import importlib

    homes = {}
    for modname in HOME_MODULES:
        module = importlib.import_module(modname)
        for name in module.__all__:
            assert name not in homes, f"{name} is exported by {homes[name]} and {modname}"
            homes[name] = module
    assert set(dsprites.__all__) == set(homes)
    for name in dsprites.__all__:
        namespace = {}
        exec(f"from autoencoders.dsprites import {name}", namespace)
        assert namespace[name] is getattr(homes[name], name), name
        home_of_object = getattr(namespace[name], "__module__", None)
        assert home_of_object in (None, homes[name].__name__), (name, home_of_object)


@pytest.mark.parametrize("side", [32, 16])
def test_smaller_sides_are_block_means_of_the_64_rendering(ds, side):
    small = ProceduralSprites(side=side)
    f = ds.sample_factors(24, rng=5)
    big = ds.images(f).numpy()
    r = 64 // side
    reference = big.reshape(24, 1, side, r, side, r).mean(axis=(3, 5))
    got = small.images(f)
    assert small.image_shape == (1, side, side)
    assert got.shape == (24, 1, side, side)
    np.testing.assert_allclose(got.numpy(), reference, atol=1e-6)
    # grey levels exist along edges and the total ink is preserved
    assert ((got > 0) & (got < 1)).any()
    np.testing.assert_allclose(got.sum((1, 2, 3)) * r * r, big.sum((1, 2, 3)), rtol=1e-6)


@pytest.mark.parametrize("side", [0, 48, 128, 32.0, True, "32"])
def test_bad_side_raises(side):
    with pytest.raises(ValueError, match="side must be one of"):
        ProceduralSprites(side=side)


def test_weak_pairs_pool_keeps_grey_levels_exactly():
    small = ProceduralSprites(side=32)
    pool = WeakPairs(small, n_pairs=40, batch_size=40, k=1, rng=2, shuffle=False)
    x1, x2, _ = next(iter(pool))
    np.testing.assert_array_equal(x1.numpy(), small.images(pool.factors1).numpy())
    np.testing.assert_array_equal(x2.numpy(), small.images(pool.factors2).numpy())
