"""Images indexed by a full grid of discrete factors: the shared dataset interface.

:class:`FactorImages` is the abstract base of the datasets with known ground-truth
factors, :class:`~autoencoders.procedural_sprites.ProceduralSprites` and
:class:`~autoencoders.dsprites_file.DSprites`. It maps image numbers to factor
indices and back (a mixed-radix expansion), validates factor indices, draws them at
random, looks up their real values and renders their images. Disentanglement metrics
and the weakly-supervised pairs of :mod:`autoencoders.weak_pairs` need only this
interface.

The private helpers here (``_as_generator``, ``_as_long``, ``_check_positive_int``)
validate the arguments of every dataset and sampler built on it.
"""

from __future__ import annotations

import abc
import math
import numbers

import numpy as np
import torch

__all__ = ["FactorImages"]

RngLike = np.random.Generator | int | None


def _as_generator(rng: RngLike, name: str = "rng") -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"{name} must be a numpy.random.Generator, an int seed or None, got {rng!r}")


def _as_long(values, name: str) -> torch.Tensor:
    """Integer input (int, sequence, numpy array, tensor) as a CPU int64 tensor."""
    if isinstance(values, torch.Tensor):
        t = values.detach().cpu()
    else:
        arr = np.asarray(values)
        if arr.dtype == object:
            raise TypeError(f"{name} must hold integers, got {values!r}")
        t = torch.as_tensor(arr)
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name} must have an integer dtype, got {t.dtype}")
    return t.to(torch.int64)


def _check_positive_int(value, name: str, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {kind} int, got {value!r}")
    return int(value)


class FactorImages(abc.ABC):
    """Images indexed by a full grid of discrete factors (the shared interface).

    Image number ``i`` has the factor indices :math:`(f_0, \\dots, f_{F-1})` given by
    the mixed-radix expansion of ``i`` with the factor sizes :math:`n_j` as radices,
    the last factor varying fastest (the order of the dSprites file):

    .. math::

        i = \\sum_{j=0}^{F-1} f_j \\prod_{l > j} n_l, \\qquad 0 \\le f_j < n_j .

    Subclasses set ``factor_names``, ``factor_sizes``, ``factor_levels``,
    ``image_shape`` and ``device`` and implement ``_render(factors)``.

    Attributes
    ----------
    factor_names : tuple of str
        Names of the ``F`` factors.
    factor_sizes : tuple of int
        Number of values ``n_j`` of each factor.
    factor_levels : tuple of numpy.ndarray
        The real value of each level of each factor (float64, one array per factor).
    image_shape : tuple of int
        ``(1, H, W)``.
    device : torch.device
        Where :meth:`images` puts the images. Factor and index tensors are always
        CPU int64 tensors.
    """

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    factor_levels: tuple[np.ndarray, ...]
    image_shape: tuple[int, int, int]
    device: torch.device

    @property
    def num_factors(self) -> int:
        """Number of factors ``F``."""
        return len(self.factor_sizes)

    def __len__(self) -> int:
        return math.prod(self.factor_sizes)

    def _radix(self) -> torch.Tensor:
        # strides[j] = prod(sizes[j+1:])
        strides = np.cumprod((1,) + self.factor_sizes[:0:-1])[::-1].copy()
        return torch.from_numpy(strides.astype(np.int64))

    def index_to_factors(self, idx) -> torch.Tensor:
        """Factor indices of image numbers (mixed radix, vectorised).

        Parameters
        ----------
        idx : int or array-like of int, shape [N]
            Image numbers in ``0 .. len(self) - 1``.

        Returns
        -------
        torch.Tensor
            int64 ``[N, F]`` (``[F]`` for a scalar ``idx``) on the CPU.

        Raises
        ------
        IndexError
            If an index is outside ``0 .. len(self) - 1``.
        """
        t = _as_long(idx, "idx")
        if t.dim() > 1:
            raise ValueError(f"idx must be a scalar or 1-D, got shape {list(t.shape)}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= len(self)):
            bad = t[(t < 0) | (t >= len(self))][0].item()
            raise IndexError(f"idx must lie in 0..{len(self) - 1}, got {bad}")
        sizes = torch.tensor(self.factor_sizes, dtype=torch.int64)
        return torch.div(t.unsqueeze(-1), self._radix(), rounding_mode="floor") % sizes

    def factors_to_index(self, factors) -> torch.Tensor:
        """Image numbers of factor indices (inverse of :meth:`index_to_factors`).

        Parameters
        ----------
        factors : array-like of int, shape [N, F] or [F]
            Factor indices, column ``j`` in ``0 .. factor_sizes[j] - 1``.

        Returns
        -------
        torch.Tensor
            int64 ``[N]`` (a 0-d tensor for ``[F]`` input) on the CPU.

        Raises
        ------
        ValueError
            If the last dimension is not ``F`` or a value is out of range for its
            factor.
        """
        f = self._check_factors(factors)
        return (f * self._radix()).sum(-1)

    def _check_factors(self, factors) -> torch.Tensor:
        f = _as_long(factors, "factors")
        if f.dim() not in (1, 2) or f.shape[-1] != self.num_factors:
            raise ValueError(
                f"factors must have shape [N, {self.num_factors}] or [{self.num_factors}] "
                f"(factors {self.factor_names}), got {list(f.shape)}"
            )
        flat = f.reshape(-1, self.num_factors)
        for j, (name, size) in enumerate(zip(self.factor_names, self.factor_sizes)):
            col = flat[:, j]
            if col.numel() and (int(col.min()) < 0 or int(col.max()) >= size):
                bad = col[(col < 0) | (col >= size)][0].item()
                raise ValueError(f"factors[..., {j}] ({name}) must lie in 0..{size - 1}, got {bad}")
        return f

    def sample_factors(self, n: int, rng: RngLike = None) -> torch.Tensor:
        """Factor indices drawn independently and uniformly from each factor's grid.

        Parameters
        ----------
        n : int
            Number of draws ``N`` (may be 0).
        rng : numpy.random.Generator or int, optional
            Source of randomness; an int is a seed. ``None`` draws fresh OS entropy.

        Returns
        -------
        torch.Tensor
            int64 ``[N, F]`` on the CPU.
        """
        n = _check_positive_int(n, "n", allow_zero=True)
        gen = _as_generator(rng)
        draws = gen.integers(0, np.asarray(self.factor_sizes), size=(n, self.num_factors))
        return torch.from_numpy(draws.astype(np.int64))

    def factor_values(self, factors) -> torch.Tensor:
        """Real values of factor indices (e.g. the scale 0.5, or an angle in radians).

        Parameters
        ----------
        factors : array-like of int, shape [N, F] or [F]

        Returns
        -------
        torch.Tensor
            float64 ``[N, F]`` (or ``[F]``) on the CPU.
        """
        f = self._check_factors(factors)
        cols = [torch.from_numpy(levels)[f[..., j]] for j, levels in enumerate(self.factor_levels)]
        return torch.stack(cols, dim=-1)

    def images(self, factors) -> torch.Tensor:
        """Images of factor combinations.

        Parameters
        ----------
        factors : array-like of int, shape [N, F] or [F]

        Returns
        -------
        torch.Tensor
            float32 ``[N, 1, H, W]`` (``[1, H, W]`` for ``[F]`` input) with values in
            ``{0, 1}``, on :attr:`device`.
        """
        f = self._check_factors(factors)
        if f.dim() == 1:
            return self._render(f.unsqueeze(0))[0]
        return self._render(f)

    @abc.abstractmethod
    def _render(self, factors: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 1, H, W]`` (float32, on :attr:`device`) of validated factors ``[N, F]``."""

    def __getitem__(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image [1, H, W], factors [F])`` for an int; ``([N, 1, H, W], [N, F])``
        for a slice, a sequence, an array or a tensor of indices."""
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        factors = self.index_to_factors(idx)
        return self.images(factors), factors

    def __repr__(self) -> str:
        grid = ", ".join(f"{n}={s}" for n, s in zip(self.factor_names, self.factor_sizes))
        return (
            f"{type(self).__name__}(N={len(self):,}, factors=({grid}), "
            f"image_shape={list(self.image_shape)}, device={self.device})"
        )
