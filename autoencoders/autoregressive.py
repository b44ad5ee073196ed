r"""A decoder strong enough to ignore the code: autoregression over image rows.

A VAE's decoder usually models the pixels as independent given :math:`z`, so every
dependency between pixels must go through the code. An *autoregressive* decoder
models them one after another,

.. math::

    p_\theta(x \mid z) = \prod_{r=1}^{H} p_\theta(x_r \mid x_{<r}, z),

here one image row :math:`x_r` at a time (the pixels of a row are independent
Bernoullis given the rows above and :math:`z`). Such a decoder can model the data well
*without* :math:`z`, and then the ELBO's KL term pushes the posterior onto the prior:
posterior collapse from a strong decoder :cite:p:`bowman2016generating`.

:class:`RowDecoder` has two contexts: ``'all'`` (an LSTM reads every row above, the
strong decoder) and ``'previous'`` (a small MLP sees only the row just above: a
decoder that sees part of the context, so it needs :math:`z` for the rest).
:class:`AutoregressiveVAE` is a :class:`~autoencoders.variational.VAE` whose
``forward`` feeds the decoder the true rows above (teacher forcing), so the usual
``compute_loss`` with the Bernoulli likelihood is exactly the ELBO of the
autoregressive model; ``decode(z)`` generates row by row.
"""

from __future__ import annotations

import torch
from torch import nn

from .variational import VAE, VAEDecodeOutput, VAEOutput, _check_samples

__all__ = ["RowDecoder", "AutoregressiveVAE"]

_CONTEXTS = ("all", "previous")


class RowDecoder(nn.Module):
    r"""Logits of every row of a one-channel image given the rows above and the code.

    Row :math:`r` gets as input the row above (zeros for the first) and :math:`z`.
    With ``context='all'`` an LSTM carries everything above it; with
    ``context='previous'`` a two-layer MLP sees only the row just above.

    Parameters
    ----------
    latent_dim : int
        :math:`D_z`.
    height, width : int, default 28
        Image size.
    hidden : int, default 256
        LSTM state size, or the MLP's hidden width.
    context : {'all', 'previous'}, default 'all'
    """

    def __init__(self, latent_dim: int, height: int = 28, width: int = 28, hidden: int = 256,
                 context: str = "all") -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("height", height), ("width", width),
                            ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if context not in _CONTEXTS:
            raise ValueError(f"context must be one of {_CONTEXTS}, got {context!r}")
        self.latent_dim, self.height, self.width, self.context = latent_dim, height, width, context
        n_in = width + latent_dim
        if context == "all":
            self.rnn = nn.LSTM(n_in, hidden, batch_first=True)
            self.out = nn.Linear(hidden, width)
        else:
            self.mlp = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, width))

    def _check(self, z: torch.Tensor, x: torch.Tensor | None) -> None:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape [B, {self.latent_dim}], got {list(z.shape)}")
        want = [z.shape[0], 1, self.height, self.width]
        if x is not None and list(x.shape) != want:
            raise ValueError(f"x must have shape {want}, got {list(x.shape)}")

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[B, 1, H, W]``: row ``r`` sees the true rows above."""
        self._check(z, x)
        rows = x[:, 0]
        above = torch.cat([torch.zeros_like(rows[:, :1]), rows[:, :-1]], dim=1)
        inputs = torch.cat([above, z.unsqueeze(1).expand(-1, self.height, -1)], dim=2)
        if self.context == "all":
            logits = self.out(self.rnn(inputs)[0])
        else:
            logits = self.mlp(inputs)
        return logits.unsqueeze(1)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample rows one after another; return the logits of each sampled row's
        distribution, ``[B, 1, H, W]`` (their sigmoid is the per-pixel probability along
        the sampled image)."""
        self._check(z, None)
        B = z.shape[0]
        row = torch.zeros(B, self.width, device=z.device, dtype=z.dtype)
        state = None
        out = []
        for _ in range(self.height):
            step = torch.cat([row, z], dim=1).unsqueeze(1)
            if self.context == "all":
                h, state = self.rnn(step, state)
                logits = self.out(h)[:, 0]
            else:
                logits = self.mlp(step)[:, 0]
            out.append(logits)
            row = torch.bernoulli(torch.sigmoid(logits), generator=generator)
        return torch.stack(out, dim=1).unsqueeze(1)


class AutoregressiveVAE(VAE):
    r"""A :class:`~autoencoders.variational.VAE` with a :class:`RowDecoder`.

    ``forward(x)`` decodes with teacher forcing, so ``compute_loss(x, output)`` with
    the Bernoulli likelihood (the default here) is the ELBO of
    :math:`p(x \mid z) = \prod_r p(x_r \mid x_{<r}, z)`; it also takes ``beta`` and
    ``free_bits`` like every VAE. ``decode(z)`` generates images row by row.

    Parameters
    ----------
    encoder : nn.Module
        Maps ``x`` to features ``[B, F]``.
    decoder : RowDecoder
    latent_dim : int
    """

    def __init__(self, encoder: nn.Module, decoder: RowDecoder, latent_dim: int) -> None:
        if not isinstance(decoder, RowDecoder):
            raise TypeError(f"decoder must be a RowDecoder, got {type(decoder).__name__}")
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
