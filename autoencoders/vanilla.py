r"""The deterministic autoencoder.

An encoder :math:`f` maps an input to a code and a decoder :math:`g` maps it back:

.. math::

    z = f(x), \qquad \hat x = g(z).

Training maximises the log-likelihood of the input under an observation model whose
parameters the decoder outputs (see :mod:`autoencoders.loss`); with the Gaussian
likelihood this is the mean squared error up to a factor of one half.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._base import (
    BaseAutoencoder,
    DecodeOutput,
    ModelOutput,
    check_input_dtype,
    check_input_shape,
    check_tensor,
)
from .likelihoods import parameter_shape
from .loss import LikelihoodLike, LossResult, float_diagnostics, log_likelihood_sum

__all__ = ["AE", "AEOutput", "AEEncodeOutput", "AEDecodeOutput", "check_reconstruction_shape"]


@dataclass(repr=False)
class AEOutput(ModelOutput):
    """Output of :meth:`AE.forward`: reconstruction ``x_hat [B, ...]`` and code ``z [B, D_z]``."""

    x_hat: torch.Tensor
    z: torch.Tensor


@dataclass(repr=False)
class AEEncodeOutput(ModelOutput):
    """Output of :meth:`AE.encode`: the code ``z [B, D_z]``."""

    z: torch.Tensor


AEDecodeOutput = DecodeOutput  # the one decode output type: ``x_hat [B, ...]``


def check_reconstruction_shape(x: torch.Tensor, x_hat: torch.Tensor, expected: tuple[int, ...], spec: str) -> None:
    """Raise a ``ValueError`` printing both shapes unless ``x_hat.shape == expected``.

    ``spec`` names the contract, for example ``"x.shape"`` or ``"[B, S, *x.shape[1:]]"``.
    """
    if tuple(x_hat.shape) != tuple(expected):
        raise ValueError(
            f"x_hat must have shape {spec} = {list(expected)}, got {list(x_hat.shape)} "
            f"(x has shape {list(x.shape)}); shapes are never broadcast"
        )


class AE(BaseAutoencoder):
    r"""Autoencoder built from any encoder and decoder modules.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps ``x [B, ...]`` to a code ``z [B, D_z]``.
    decoder : torch.nn.Module
        Maps ``z`` to ``x_hat`` of the shape of ``x`` (means or logits; no final
        activation is expected).
    likelihood : str, Likelihood or callable, default ``'gaussian'``
        The observation model :math:`p(x \mid \hat x)` (see
        :mod:`autoencoders.likelihoods`); ``compute_loss``, ``fit``, ``evaluate`` and
        the plotting helpers use it unless told otherwise.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = AE(nn.Sequential(nn.Flatten(), nn.LazyLinear(8)),
    ...            nn.Sequential(nn.Linear(8, 784), nn.Unflatten(1, (1, 28, 28))))
    >>> x = torch.rand(16, 1, 28, 28)
    >>> _ = model.build(x)
    >>> out = model(x)
    >>> out.z.shape, out.x_hat.shape
    (torch.Size([16, 8]), torch.Size([16, 1, 28, 28]))
    """

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, *, likelihood: LikelihoodLike = "gaussian"
    ) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
        self.encoder = encoder
        self.decoder = decoder
        self._init_likelihood(likelihood)

    def _encode(self, x: torch.Tensor) -> AEEncodeOutput:
        check_tensor(x, "x")
        check_input_dtype(x, self)
        check_input_shape(x, self)
        return AEEncodeOutput(z=self.encoder(x))

    def _decode(self, z: torch.Tensor) -> AEDecodeOutput:
        check_tensor(z, "z")
        return AEDecodeOutput(x_hat=self.decoder(z))

    def forward(self, x: torch.Tensor) -> AEOutput:
        """Encode and decode ``x [B, ...]``; returns :class:`AEOutput`."""
        z = self._encode(x).z
        return AEOutput(x_hat=self._decode(z).x_hat, z=z)

    def compute_loss(
        self, x: torch.Tensor, output: AEOutput, likelihood: LikelihoodLike | None = None
    ) -> LossResult:
        r"""Negative log-likelihood per example, averaged over the batch.

        .. math::

            \mathcal L = -\frac1B \sum_{b=1}^{B} \sum_{i} \log p(x_{b,i} \mid \hat x_{b,i})

        Parameters
        ----------
        x : torch.Tensor
            Targets ``[B, ...]``.
        output : AEOutput
            Result of :meth:`forward`; ``output.x_hat`` must have ``x.shape``.
        likelihood : str, Likelihood or callable, optional
            Overrides the model's :attr:`likelihood` for this call; see
            :func:`autoencoders.likelihoods.log_likelihood`.

        Returns
        -------
        LossResult
            ``objective`` and ``diagnostics = {'log_likelihood': ...}`` (nats per example).
        """
        check_tensor(x, "x")
        likelihood = self.resolve_likelihood(likelihood)
        expected = parameter_shape(likelihood, x.shape)
        spec = "x.shape" if expected == x.shape else "parameter_shape(likelihood, x.shape)"
        check_reconstruction_shape(x, output.x_hat, tuple(expected), spec)
        ll = log_likelihood_sum(x, output.x_hat, likelihood, validate=False) / x.shape[0]
        diagnostics = float_diagnostics({"log_likelihood": ll}, targets={"x": (x, likelihood)})
        return LossResult(objective=-ll, diagnostics=diagnostics)
