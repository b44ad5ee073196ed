r"""A decoder strong enough to ignore the code: a small conditional PixelCNN.

A VAE's decoder usually models the pixels as independent given :math:`z`, so every
dependency between pixels must go through the code. An *autoregressive* decoder models
them one after another in raster order (row by row, left to right),

.. math::

    p_\theta(x \mid z) = \prod_{i=1}^{HW} p_\theta(x_i \mid x_{<i}, z),

    p_\theta(x_i \mid x_{<i}, z) = \operatorname{Bernoulli}\big(x_i \mid
    \sigma(f_\theta(x_{<i}, z)_i)\big).

:class:`PixelCNNDecoder` computes all :math:`HW` logits in one pass with *masked*
convolutions :cite:p:`vandenoord2016pixel`: every kernel is zeroed at the positions that
come at or after its centre in raster order, so the logit of pixel :math:`i` can only
see pixels before it. The code enters every layer, either as a per-channel bias, a
linear function of :math:`z` the same at every pixel (``code='bias'``, how
:cite:t:`vandenoord2016conditional` condition on a class label), or as feature maps
that a small MLP computes from :math:`z` (``code='map'``, so that :math:`z` can say
*where* ink goes, as a usual decoder does). The more layers, the more of
:math:`x_{<i}` the logit sees (its *context*, :meth:`PixelCNNDecoder.context`). With a
large context the decoder can model the digits well *without* :math:`z`, and the ELBO's
KL term then pushes the posterior onto the prior: posterior collapse from a strong
decoder :cite:p:`bowman2016generating,chen2017variational`. With a context of a few
neighbouring pixels it needs :math:`z` for everything beyond them.

:class:`AutoregressiveVAE` is a :class:`~autoencoders.variational.VAE` whose
``forward`` feeds the decoder the true pixels (teacher forcing), so the usual
``compute_loss`` with the Bernoulli likelihood is exactly the ELBO of the
autoregressive model; ``decode(z)`` generates pixel by pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .variational import VAE, VAEDecodeOutput, VAEOutput, _check_samples

__all__ = ["MaskedConv2d", "PixelCNNDecoder", "AutoregressiveVAE"]

_CODES = ("bias", "map")


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class MaskedConv2d(nn.Conv2d):
    r"""A 'same'-padded convolution that cannot see the future in raster order.

    The kernel of size :math:`k` (odd) is multiplied by a fixed mask that is 1 on the
    rows above the centre and on the centre row left of the centre, and 0 elsewhere.
    Mask ``'A'`` also zeroes the centre (for the first layer, which reads the image: a
    pixel must not see itself); mask ``'B'`` keeps it (for later layers, whose centre
    holds features of the past only).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Odd, at least 3 for mask ``'A'`` (1 would see nothing) and at least 1 for ``'B'``.
    mask : {'A', 'B'}
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask: str) -> None:
        if mask not in ("A", "B"):
            raise ValueError(f"mask must be 'A' or 'B', got {mask!r}")
        k = _positive_int("kernel_size", kernel_size, 3 if mask == "A" else 1)
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {k}")
        super().__init__(in_channels, out_channels, k, padding=k // 2)
        keep = torch.ones_like(self.weight)
        c = k // 2
        keep[:, :, c, c + (0 if mask == "A" else 1):] = 0
        keep[:, :, c + 1:] = 0
        self.mask_type = mask
        self.register_buffer("mask", keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNNDecoder(nn.Module):
    r"""Logits of every pixel of a one-channel image given the pixels before it and z.

    A mask-``'A'`` convolution with a ``first_kernel`` kernel reads the image into
    ``channels`` features; ``layers`` residual blocks
    :math:`h \leftarrow h + \mathrm{conv}_B(\mathrm{ReLU}(h))` with 3×3 mask-``'B'``
    kernels widen the context; a 1×1 convolution gives the logits. Layer :math:`l`
    adds a term computed from the code to the features: with ``code='bias'`` the
    same vector :math:`W_l z + b_l` at every pixel, with ``code='map'`` a 1×1
    convolution of the maps :math:`m(z) \in \mathbb R^{S \times H \times W}`, where
    :math:`m` is an MLP with one hidden layer of 512 units.

    Parameters
    ----------
    latent_dim : int
        :math:`D_z`.
    height, width : int, default 28
        Image size.
    channels : int, default 32
        Feature channels.
    layers : int, default 5
        Residual mask-``'B'`` blocks (0 is allowed: then the context is the
        ``first_kernel`` neighbourhood).
    first_kernel : int, default 7
        Odd kernel size of the first (mask-``'A'``) layer.
    code : {'bias', 'map'}, default 'bias'
        How :math:`z` enters each layer (see above).
    map_channels : int, default 8
        :math:`S`, the number of maps when ``code='map'``.
    """

    def __init__(self, latent_dim: int, height: int = 28, width: int = 28, channels: int = 32,
                 layers: int = 5, first_kernel: int = 7, code: str = "bias",
                 map_channels: int = 8) -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("height", height), ("width", width),
                            ("channels", channels), ("map_channels", map_channels)):
            _positive_int(name, value)
        _positive_int("layers", layers, 0)
        if code not in _CODES:
            raise ValueError(f"code must be one of {_CODES}, got {code!r}")
        self.latent_dim, self.height, self.width = latent_dim, height, width
        self.code_mode, self.map_channels = code, map_channels
        self.first = MaskedConv2d(1, channels, first_kernel, "A")
        self.blocks = nn.ModuleList(MaskedConv2d(channels, channels, 3, "B")
                                    for _ in range(layers))
        if code == "bias":
            self.code = nn.ModuleList(nn.Linear(latent_dim, channels)
                                      for _ in range(layers + 1))
        else:
            self.maps = nn.Sequential(nn.Linear(latent_dim, 512), nn.ReLU(),
                                      nn.Linear(512, map_channels * height * width))
            self.code = nn.ModuleList(nn.Conv2d(map_channels, channels, 1)
                                      for _ in range(layers + 1))
        self.out = nn.Conv2d(channels, 1, 1)

    def _code_terms(self, z: torch.Tensor) -> list[torch.Tensor]:
        if self.code_mode == "bias":
            return [layer(z)[:, :, None, None] for layer in self.code]
        maps = self.maps(z).view(-1, self.map_channels, self.height, self.width)
        return [layer(maps) for layer in self.code]

    def _check(self, z: torch.Tensor, x: torch.Tensor | None) -> None:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape [B, {self.latent_dim}], got {list(z.shape)}")
        want = [z.shape[0], 1, self.height, self.width]
        if x is not None and list(x.shape) != want:
            raise ValueError(f"x must have shape {want}, got {list(x.shape)}")

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[B, 1, H, W]``: pixel ``i`` sees the true ``x_{<i}``."""
        self._check(z, x)
        terms = self._code_terms(z)
        h = self.first(x) + terms[0]
        for block, term in zip(self.blocks, terms[1:]):
            h = h + block(F.relu(h)) + term
        return self.out(F.relu(h))

    @torch.no_grad()
    def context(self, row: int, col: int) -> torch.Tensor:
        """Which pixels the logit of pixel ``(row, col)`` depends on, found by autograd.

        Returns a bool ``[H, W]`` mask: where the gradient of that logit with respect
        to the input pixel is nonzero, at a random input and the decoder's own weights.
        A masked position can never show up in it; a pixel the masks allow is missed
        only if the weights happen to cancel exactly.
        """
        if not (0 <= row < self.height and 0 <= col < self.width):
            raise ValueError(f"(row, col) must lie in the {self.height}x{self.width} image, "
                             f"got ({row}, {col})")
        p = next(self.parameters())
        x = torch.rand(1, 1, self.height, self.width, device=p.device, dtype=p.dtype)
        z = torch.zeros(1, self.latent_dim, device=p.device, dtype=p.dtype)
        with torch.enable_grad():
            x.requires_grad_(True)
            (grad,) = torch.autograd.grad(self(z, x)[0, 0, row, col], x)
        return grad[0, 0] != 0

    @torch.no_grad()
    def generate(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample the pixels one after another in raster order (one full pass per pixel).

        Returns the logits of each pixel's distribution along the sampled image,
        ``[B, 1, H, W]``; their sigmoid is the per-pixel probability.
        """
        self._check(z, None)
        x = torch.zeros(z.shape[0], 1, self.height, self.width, device=z.device, dtype=z.dtype)
        logits = torch.zeros_like(x)
        for r in range(self.height):
            for c in range(self.width):
                step = self(z, x)[:, 0, r, c]
                logits[:, 0, r, c] = step
                x[:, 0, r, c] = torch.bernoulli(torch.sigmoid(step), generator=generator)
        return logits


class AutoregressiveVAE(VAE):
    r"""A :class:`~autoencoders.variational.VAE` with a :class:`PixelCNNDecoder`.

    ``forward(x)`` decodes with teacher forcing, so ``compute_loss(x, output)`` with
    the Bernoulli likelihood (the default here) is the ELBO of
    :math:`p(x \mid z) = \prod_i p(x_i \mid x_{<i}, z)`; it also takes ``beta`` and
    ``free_bits`` like every VAE. ``decode(z)`` generates images pixel by pixel.

    Parameters
    ----------
    encoder : nn.Module
        Maps ``x`` to features ``[B, F]``.
    decoder : PixelCNNDecoder
    latent_dim : int
    """

    def __init__(self, encoder: nn.Module, decoder: PixelCNNDecoder, latent_dim: int) -> None:
        if not isinstance(decoder, PixelCNNDecoder):
            raise TypeError(f"decoder must be a PixelCNNDecoder, got {type(decoder).__name__}")
        if decoder.latent_dim != latent_dim:
            raise ValueError(f"decoder.latent_dim ({decoder.latent_dim}) must equal "
                             f"latent_dim ({latent_dim})")
        super().__init__(encoder, decoder, latent_dim, likelihood="bernoulli")

    def _decode(self, z: torch.Tensor) -> VAEDecodeOutput:
        if z.dim() == 3:
            B, S, D = z.shape
            x_hat = self.decoder.generate(z.reshape(B * S, D))
            return VAEDecodeOutput(x_hat=x_hat.reshape(B, S, *x_hat.shape[1:]))
        return VAEDecodeOutput(x_hat=self.decoder.generate(z))

    def forward(self, x: torch.Tensor, S: int = 1, sample: bool | None = None) -> VAEOutput:
        enc = self._encode(x, S=_check_samples(S), sample=sample)
        B, S, D = enc.z.shape
        x_rep = x.unsqueeze(1).expand(B, S, *x.shape[1:]).reshape(B * S, *x.shape[1:])
        x_hat = self.decoder(enc.z.reshape(B * S, D), x_rep)
        return VAEOutput(x_hat=x_hat.reshape(B, S, *x_hat.shape[1:]), z=enc.z, mu=enc.mu,
                         log_var=enc.log_var)
