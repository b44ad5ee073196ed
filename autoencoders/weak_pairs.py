"""Image pairs that share all but ``k`` factors, for weakly-supervised learning.

In the weakly-supervised setting of Locatello et al. (2020) a model sees pairs of
images whose ground-truth factors agree except for ``k`` of them, without being told
which. :func:`sample_pairs` draws such pairs from any
:class:`~autoencoders.factor_images.FactorImages` dataset, and :class:`WeakPairs`
serves them as minibatches for a training loop (a pre-rendered pool, or fresh pairs
every batch).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from autoencoders.factor_images import (
    FactorImages,
    RngLike,
    _as_generator,
    _check_positive_int,
)
from autoencoders.utils import _renamed

__all__ = ["sample_pairs", "WeakPairs"]

def _check_k(k, num_factors: int) -> int | str:
    if isinstance(k, str) and k == "random":
        return k
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= num_factors - 1:
        raise ValueError(
            f"k must be an int in 1..{num_factors - 1} (the number of factors that change "
            f"between the two images, with F = {num_factors}) or 'random', got {k!r}"
        )
    return int(k)


def _sample_pair_factors(
    sizes: Sequence[int], n: int, k: int | str, gen: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sizes_arr = np.asarray(sizes, dtype=np.int64)
    f = len(sizes)
    f1 = gen.integers(0, sizes_arr, size=(n, f))
    ks = gen.integers(1, f, size=n) if k == "random" else np.full(n, k)
    # The factors with the k smallest random keys change: k distinct factors, uniformly.
    ranks = np.argsort(np.argsort(gen.random((n, f)), axis=1), axis=1)
    changed = ranks < ks[:, None]
    # old + U{1..size-1} (mod size) is uniform over the size-1 *other* values.
    shift = gen.integers(1, sizes_arr, size=(n, f))
    f2 = np.where(changed, (f1 + shift) % sizes_arr, f1)
    return f1, f2, changed


def sample_pairs(
    dataset: FactorImages, n: int, k: int | str = 1, rng: RngLike = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image pairs that share all but ``k`` factors (Locatello et al. 2020).

    The first image's factors :math:`f^{(1)}` are uniform on the grid. Then a set
    :math:`C` of ``k`` distinct factors is drawn uniformly, and

    .. math::

        f^{(2)}_j = \\begin{cases}
            (f^{(1)}_j + \\delta_j) \\bmod n_j,\\; \\delta_j \\sim U\\{1, \\dots, n_j - 1\\}
                & j \\in C, \\\\
            f^{(1)}_j & j \\notin C,
        \\end{cases}

    so a changed factor always takes a *different* value, uniform among the other
    ``n_j - 1``. (disentanglement_lib resamples it from all ``n_j`` values, so it can
    keep its old value and the pair then differs in fewer than ``k`` factors.) With
    ``k='random'``, ``k ~ U{1, ..., F - 1}`` independently per pair.

    Parameters
    ----------
    dataset : FactorImages
        E.g. :class:`~autoencoders.procedural_sprites.ProceduralSprites` or the result
        of :func:`~autoencoders.dsprites_file.load_dsprites`; every factor needs at
        least two values.
    n : int
        Number of pairs ``N``.
    k : int or 'random', default 1
        Number of factors that differ, in ``1 .. F - 1``.
    rng : numpy.random.Generator or int, optional
        Source of randomness (an int is a seed).

    Returns
    -------
    x1, x2 : torch.Tensor
        float32 ``[N, 1, H, W]`` on ``dataset.device``.
    factors1, factors2 : torch.Tensor
        int64 ``[N, F]`` on the CPU.
    changed : torch.Tensor
        bool ``[N, F]``, ``True`` where the factor differs (``factors1 != factors2``).

    Raises
    ------
    ValueError
        If ``k`` is not an int in ``1 .. F - 1`` nor ``'random'``, if ``n`` is not a
        positive int, or if a factor has fewer than two values.
    """
    n = _check_positive_int(n, "n")
    k = _check_k(k, dataset.num_factors)
    if min(dataset.factor_sizes) < 2:
        raise ValueError(
            f"every factor needs at least 2 values to change, got factor_sizes "
            f"{dataset.factor_sizes} for {dataset.factor_names}"
        )
    f1, f2, changed = _sample_pair_factors(dataset.factor_sizes, n, k, _as_generator(rng))
    f1, f2 = torch.from_numpy(f1), torch.from_numpy(f2)
    x = dataset.images(torch.cat([f1, f2]))
    return x[:n], x[n:], f1, f2, torch.from_numpy(changed)


class WeakPairs:
    """An iterable of minibatches of weakly-supervised pairs, for a training loop.

    Each step yields a tuple ``(x1, x2, changed)``: float32 images ``[B, 1, H, W]``
    twice and the bool changed-factor mask ``[B, F]``, all on ``device``. Pairs are
    drawn by :func:`sample_pairs`.

    Two modes:

    * **pool** (``n_pairs`` given): ``n_pairs`` pairs are rendered once, at
      construction, and kept in memory as uint8 (8 KiB per pair at 64 x 64). Every
      epoch visits them all in a new random order (``len = ceil(n_pairs / B)`` batches,
      or ``floor`` with ``drop_last``). Fastest; a fixed data budget, as in the paper.
      The pool's factors are kept in :attr:`factors1`, :attr:`factors2` and
      :attr:`changed`.
    * **stream** (``steps_per_epoch`` given): every batch is fresh pairs rendered on
      the fly; ``len = steps_per_epoch``. No memory cost, never the same pair twice.

    Both are deterministic given ``rng``: a new ``WeakPairs`` with the same arguments
    yields the same sequence of epochs.

    Parameters
    ----------
    dataset : FactorImages
    n_pairs : int, optional
        Pool size (pool mode). Give exactly one of ``n_pairs`` and ``steps_per_epoch``.
    batch_size : int, default 64
    k : int or 'random', default 1
        Number of changed factors, see :func:`sample_pairs`.
    rng : int, default 0
        Seed of the pairs and of the epoch order (``seed=`` is its earlier name). An
        int, not a generator, so that every epoch sequence can be replayed.
    steps_per_epoch : int, optional
        Batches per epoch (stream mode).
    shuffle : bool, default True
        Pool mode: visit the pool in a new random order each epoch.
    drop_last : bool, default False
        Pool mode: drop a last, smaller batch.
    device : str or torch.device, optional
        Where the yielded tensors live; default ``dataset.device``.

    Examples
    --------
    >>> loader = WeakPairs(ProceduralSprites(), n_pairs=1024, batch_size=64, k=1)
    >>> for batch in loader:
    ...     x1, x2 = batch[0], batch[1]
    """

    def __init__(
        self,
        dataset: FactorImages,
        n_pairs: int | None = None,
        batch_size: int = 64,
        k: int | str = 1,
        rng: int | None = None,
        *,
        steps_per_epoch: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        device: str | torch.device | None = None,
        seed: int | None = None,
    ):
        rng = _renamed(rng, seed, "rng", "seed")
        if (n_pairs is None) == (steps_per_epoch is None):
            raise ValueError(
                "give exactly one of n_pairs (a pre-rendered pool) and steps_per_epoch "
                f"(fresh pairs per batch), got n_pairs={n_pairs!r}, "
                f"steps_per_epoch={steps_per_epoch!r}"
            )
        self.dataset = dataset
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        self.k = _check_k(k, dataset.num_factors)
        self.seed = _check_positive_int(0 if rng is None else rng, "rng", allow_zero=True)
        for name, value in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {value!r}")
        self.shuffle, self.drop_last = shuffle, drop_last
        self.device = torch.device(dataset.device if device is None else device)
        self._rng = np.random.default_rng(self.seed)
        self.n_pairs = None if n_pairs is None else _check_positive_int(n_pairs, "n_pairs")
        self.steps_per_epoch = (
            None
            if steps_per_epoch is None
            else _check_positive_int(steps_per_epoch, "steps_per_epoch")
        )
        if self.n_pairs is not None:
            if drop_last and self.batch_size > self.n_pairs:
                raise ValueError(
                    f"drop_last=True with batch_size={self.batch_size} > n_pairs="
                    f"{self.n_pairs} gives epochs without batches"
                )
            x1, x2, self.factors1, self.factors2, self.changed = sample_pairs(
                dataset, self.n_pairs, self.k, self._rng
            )
            # Binary images are stored exactly as uint8, a quarter of the memory;
            # grey levels (e.g. 32 x 32 block averages) stay float32.
            binary = bool(((x1 == 0) | (x1 == 1)).all() and ((x2 == 0) | (x2 == 1)).all())
            store = torch.uint8 if binary else torch.float32
            self._x1 = x1.to(self.device, store)
            self._x2 = x2.to(self.device, store)
            self._changed = self.changed.to(self.device)
            self._perm_gen = torch.Generator().manual_seed(self.seed)

    def __len__(self) -> int:
        """Batches per epoch."""
        if self.n_pairs is None:
            return self.steps_per_epoch
        if self.drop_last:
            return self.n_pairs // self.batch_size
        return math.ceil(self.n_pairs / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        if self.n_pairs is None:
            for _ in range(self.steps_per_epoch):
                x1, x2, _, _, changed = sample_pairs(
                    self.dataset, self.batch_size, self.k, self._rng
                )
                yield x1.to(self.device), x2.to(self.device), changed.to(self.device)
            return
        if self.shuffle:
            order = torch.randperm(self.n_pairs, generator=self._perm_gen).to(self.device)
        else:
            order = torch.arange(self.n_pairs, device=self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield (
                self._x1.index_select(0, idx).to(torch.float32),
                self._x2.index_select(0, idx).to(torch.float32),
                self._changed.index_select(0, idx),
            )

    def __repr__(self) -> str:
        mode = (
            f"n_pairs={self.n_pairs:,}"
            if self.n_pairs is not None
            else f"steps_per_epoch={self.steps_per_epoch}"
        )
        return (
            f"WeakPairs({mode}, batch_size={self.batch_size}, k={self.k!r}, "
            f"batches={len(self)}, device={self.device})"
        )
