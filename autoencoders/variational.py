r"""Variational autoencoders: the VAE and the weakly supervised Ada-GVAE.

A VAE :cite:p:`kingma2013auto,rezende2014stochastic` pairs an amortised Gaussian
posterior :math:`q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}
\sigma^2_\phi(x))` with a decoder :math:`p_\theta(x \mid z)` and the prior
:math:`p(z) = \mathcal N(0, I)`, and maximises the evidence lower bound

.. math::

    \log p_\theta(x) \;\ge\; \mathrm{ELBO}(x)
    = \mathbb E_{q_\phi(z\mid x)}\big[\log p_\theta(x \mid z)\big]
      - \mathrm{KL}\big(q_\phi(z \mid x) \,\|\, p(z)\big).

:class:`AdaGVAE` :cite:p:`locatello2020weakly` trains the same VAE on pairs of
images that differ in a few factors and shares the posterior of the latent
dimensions that it infers did not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
from .loss import (
    LikelihoodLike,
    LossResult,
    float_diagnostics,
    kl_divergence_diag_gaussian,
    log_likelihood,
    log_likelihood_sum,
    log_normal_diag,
    log_normalizer,
    validate_target,
)
from .vanilla import check_reconstruction_shape

__all__ = [
    "VAE",
    "AdaGVAE",
    "FullyFactorizedGaussian",
    "VAEOutput",
    "VAEEncodeOutput",
    "VAEDecodeOutput",
    "AdaGVAEOutput",
    "adaptive_shared_mask",
]

_LOG2 = math.log(2.0)


@dataclass(repr=False)
class VAEOutput(ModelOutput):
    """Output of :meth:`VAE.forward`.

    Attributes
    ----------
    x_hat : torch.Tensor
        Decoder outputs ``[B, S, ...]``, one per latent sample.
    z : torch.Tensor
        Latent samples ``[B, S, D_z]`` (the mean repeated ``S`` times when not sampling).
    mu, log_var : torch.Tensor
        Posterior parameters ``[B, D_z]``.
    """

    x_hat: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    log_var: torch.Tensor


@dataclass(repr=False)
class VAEEncodeOutput(ModelOutput):
    """Output of :meth:`VAE.encode`: ``z`` (``[B, D_z]``, or ``[B, S, D_z]`` when ``S``
    is given), and the posterior parameters ``mu``, ``log_var`` ``[B, D_z]``."""

    z: torch.Tensor
    mu: torch.Tensor
    log_var: torch.Tensor


VAEDecodeOutput = DecodeOutput  # ``x_hat`` ``[B, ...]`` or ``[B, S, ...]``


@dataclass(repr=False)
class AdaGVAEOutput(ModelOutput):
    """Output of :meth:`AdaGVAE.forward`: one :class:`VAEOutput` per view, each carrying
    the *adapted* posterior parameters, and ``shared_mask`` (bool ``[B, D_z]``, the
    dimensions whose posteriors were aggregated; ``None`` on an output built by hand
    without it).
    """

    output1: VAEOutput
    output2: VAEOutput
    shared_mask: torch.Tensor | None = None


def _check_samples(S: object, name: str = "S") -> int:
    if isinstance(S, bool) or not isinstance(S, int) or S < 1:
        raise ValueError(f"{name} (number of latent samples) must be an int >= 1, got {S!r}")
    return S


def _check_nonnegative(value: object, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value >= 0
        or not math.isfinite(value)
    ):
        raise ValueError(f"{name} must be a finite float >= 0, got {value!r}")
    return float(value)


class FullyFactorizedGaussian(nn.Module):
    r"""Diagonal Gaussian posterior head with reparameterised sampling.

    Two lazy linear layers map encoder features ``h [B, F]`` to
    :math:`\mu = W_\mu h + b_\mu` and :math:`\log\sigma^2 = W_\sigma h + b_\sigma`
    (``F`` is inferred at :meth:`~autoencoders._base.BaseAutoencoder.build`). Samples
    use the reparameterisation :math:`z = \mu + \sigma \odot \epsilon`,
    :math:`\epsilon \sim \mathcal N(0, I)`, so gradients flow to :math:`\mu` and
    :math:`\sigma`.

    Parameters
    ----------
    latent_dim : int
        :math:`D_z`, the number of latent dimensions.
    """

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        self.latent_dim = latent_dim
        self.mu = nn.LazyLinear(latent_dim)
        self.log_var = nn.LazyLinear(latent_dim)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, log_var)``, each ``[B, D_z]``, from features ``[B, F]``."""
        if features.dim() != 2:
            raise ValueError(
                "the VAE encoder must return features of shape [B, F]; "
                f"got shape {list(features.shape)} (flatten it in the encoder)"
            )
        return self.mu(features), self.log_var(features)

    @staticmethod
    def sample(mu: torch.Tensor, log_var: torch.Tensor, S: int) -> torch.Tensor:
        """Draw ``S`` reparameterised samples per row: ``[B, D_z] -> [B, S, D_z]``."""
        std = torch.exp(0.5 * log_var).unsqueeze(1)
        eps = torch.randn(mu.shape[0], S, mu.shape[1], device=mu.device, dtype=mu.dtype)
        return mu.unsqueeze(1) + std * eps


class VAE(BaseAutoencoder):
    r"""Variational autoencoder with a fully factorised Gaussian posterior.

    Parameters
    ----------
    encoder : torch.nn.Module
        Feature extractor mapping ``x [B, ...]`` to ``h [B, F]``; the lazy heads of
        :class:`FullyFactorizedGaussian` turn ``h`` into ``mu`` and ``log_var``.
    decoder : torch.nn.Module
        Maps ``z [N, D_z]`` to distribution parameters ``[N, ...]`` shaped like one input.
    latent_dim : int
        :math:`D_z`.
    likelihood : str, Likelihood or callable, default ``'gaussian'``
        The observation model :math:`p(x \mid z)` (see
        :mod:`autoencoders.likelihoods`); ``compute_loss``, ``fit``, ``evaluate``,
        :meth:`log_marginal_likelihood` and the plotting helpers use it unless told
        otherwise.

    Notes
    -----
    **Train vs eval mode.** In train mode :meth:`forward` draws ``S`` independent
    reparameterised samples per input; in eval mode it is deterministic and uses
    :math:`z = \mu` (repeated ``S`` times). A loss computed on an eval-mode output is
    therefore the reconstruction at the posterior mean minus the KL, which is **not**
    an ELBO. Pass ``sample=True`` to sample while the networks stay in eval mode.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        *,
        likelihood: LikelihoodLike = "gaussian",
    ) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
        self.encoder = encoder
        self.sampling_layer = FullyFactorizedGaussian(latent_dim)
        self.decoder = decoder
        self._init_likelihood(likelihood)

    @property
    def latent_dim(self) -> int:
        """:math:`D_z`, the number of latent dimensions."""
        return self.sampling_layer.latent_dim

    def _sampling(self, sample: bool | None) -> bool:
        if sample is not None and not isinstance(sample, bool):
            raise TypeError(f"sample must be True, False or None, got {sample!r}")
        return self.training if sample is None else sample

    def latent_samples(
        self, mu: torch.Tensor, log_var: torch.Tensor, S: int = 1, sample: bool | None = None
    ) -> torch.Tensor:
        r"""``S`` codes per row from the posterior :math:`\mathcal N(\mu, \sigma^2)`:
        ``[B, D_z] -> [B, S, D_z]``.

        With ``sample=None`` the module mode decides, as in :meth:`forward`: train mode
        draws reparameterised samples, eval mode repeats :math:`\mu`. ``True``/``False``
        force sampling on or off. Subclasses that change how the posterior is formed
        (for example :meth:`AdaGVAE.aggregate`) reuse it to draw their codes.
        """
        S = _check_samples(S)
        if self._sampling(sample):
            return self.sampling_layer.sample(mu, log_var, S)
        return mu.unsqueeze(1).expand(-1, S, -1)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters ``(mu, log_var)``, each ``[B, D_z]``, with gradients."""
        check_tensor(x, "x")
        check_input_dtype(x, self)
        check_input_shape(x, self)
        return self.sampling_layer(self.encoder(x))

    def _encode(
        self, x: torch.Tensor, S: int | None = None, sample: bool | None = None
    ) -> VAEEncodeOutput:
        mu, log_var = self.posterior(x)
        z = self.latent_samples(mu, log_var, 1 if S is None else S, sample)
        return VAEEncodeOutput(z=z[:, 0] if S is None else z, mu=mu, log_var=log_var)

    def _decode(self, z: torch.Tensor) -> VAEDecodeOutput:
        check_tensor(z, "z", min_dim=2)
        if z.shape[-1] != self.latent_dim or z.dim() not in (2, 3):
            raise ValueError(
                f"z must have shape [B, D_z] or [B, S, D_z] with D_z = {self.latent_dim}, "
                f"got {list(z.shape)}"
            )
        if z.dim() == 2:
            return VAEDecodeOutput(x_hat=self.decoder(z))
        B, S, _ = z.shape
        x_hat = self.decoder(z.reshape(B * S, -1))
        return VAEDecodeOutput(x_hat=x_hat.reshape(B, S, *x_hat.shape[1:]))

    def encode(self, x: torch.Tensor, S: int | None = None, sample: bool | None = None) -> VAEEncodeOutput:
        """Encode without gradients. ``z`` is ``[B, D_z]``, or ``[B, S, D_z]`` when ``S``
        is given; it is a sample in train mode (or with ``sample=True``), else ``mu``."""
        return super().encode(x, S=S, sample=sample)

    def forward(self, x: torch.Tensor, S: int = 1, sample: bool | None = None) -> VAEOutput:
        """Encode, draw ``S`` latent samples per input and decode them.

        Parameters
        ----------
        x : torch.Tensor
            Inputs ``[B, ...]``.
        S : int, default 1
            Monte Carlo samples per input (``>= 1``).
        sample : bool, optional
            ``None`` follows the module mode (train: sample, eval: ``z = mu``);
            ``True``/``False`` forces sampling on or off.

        Returns
        -------
        VAEOutput
            ``x_hat [B, S, ...]``, ``z [B, S, D_z]``, ``mu`` and ``log_var`` ``[B, D_z]``.
        """
        enc = self._encode(x, S=_check_samples(S), sample=sample)
        return VAEOutput(x_hat=self._decode(enc.z).x_hat, z=enc.z, mu=enc.mu, log_var=enc.log_var)

    def compute_loss(
        self,
        x: torch.Tensor,
        output: VAEOutput,
        beta: float = 1.0,
        likelihood: LikelihoodLike | None = None,
        free_bits: float = 0.0,
    ) -> LossResult:
        r"""Negative (beta-weighted) ELBO, averaged over the batch.

        .. math::

            \mathcal L = -\frac1B\sum_b \Big(\frac1S\sum_{s=1}^{S}
                \log p(x_b \mid z_{b,s}) - \beta\, \mathrm{KL}\big(q(z\mid x_b)\,\|\,
                \mathcal N(0, I)\big)\Big)

        With ``free_bits`` :math:`=\lambda > 0` :cite:p:`kingma2016improved`, the KL
        term becomes :math:`\sum_j \max\big(\lambda, \tfrac1B\sum_b
        \mathrm{KL}_{b,j}\big)`, so no latent dimension is pushed below
        :math:`\lambda` nats.

        Parameters
        ----------
        x : torch.Tensor
            Targets ``[B, ...]``.
        output : VAEOutput
            From :meth:`forward`; ``x_hat`` must be ``[B, S, *x.shape[1:]]`` (for a
            likelihood with several parameters per pixel, ``[B, S,
            *parameter_shape(likelihood, x.shape[1:])]``).
        beta : float, default 1.0
            Weight of the KL term (:math:`\beta`-VAE :cite:p:`higgins2017beta`).
        likelihood : str, Likelihood or callable, optional
            Overrides the model's :attr:`likelihood` for this call; see
            :func:`autoencoders.likelihoods.log_likelihood`.
        free_bits : float, default 0.0
            Per-dimension KL floor :math:`\lambda` in nats.

        Returns
        -------
        LossResult
            Diagnostics ``log_likelihood`` (the Monte Carlo mean), ``kl_divergence``
            (not multiplied by beta) and ``elbo = log_likelihood - kl_divergence``,
            the true ELBO whatever ``beta`` is. They are ELBO terms only if ``output``
            was produced with sampling (train mode or ``sample=True``). For the
            Gaussian likelihood they omit the constant :math:`-\tfrac12\log 2\pi`
            per element.
        """
        likelihood = self.resolve_likelihood(likelihood)
        objective, ll, kl = self._loss_terms(x, output, beta, likelihood, free_bits)
        return LossResult(
            objective=objective,
            diagnostics=float_diagnostics(
                {"log_likelihood": ll, "kl_divergence": kl, "elbo": ll - kl},
                targets={"x": (x, likelihood)},
            ),
        )

    def _loss_terms(
        self, x: torch.Tensor, output: VAEOutput, beta: float, likelihood: LikelihoodLike, free_bits: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(objective, mean log-likelihood, mean KL)`` as tensors, so that callers
        can convert all their diagnostics with a single host-device synchronisation."""
        beta = _check_nonnegative(beta, "beta")
        free_bits = _check_nonnegative(free_bits, "free_bits")
        check_tensor(x, "x")
        x_hat = output.x_hat
        S = x_hat.shape[1] if x_hat.dim() >= 2 else 0
        # x.shape[1:] itself, or more channels for a likelihood with several
        # parameters per pixel (the 8-bit ones)
        per_example = parameter_shape(likelihood, x.shape[1:])
        spec = "[B, S, *x.shape[1:]]" if per_example == x.shape[1:] else "[B, S, *parameter_shape(likelihood, x.shape[1:])]"
        check_reconstruction_shape(x, x_hat, (x.shape[0], S, *per_example), spec)
        target = x.unsqueeze(1).expand(-1, S, *x.shape[1:])
        # only the batch means enter the objective and the diagnostics, so the
        # log-likelihood is summed in one fused pass: sum over B, S and pixels / (B S)
        ll = log_likelihood_sum(target, x_hat, likelihood, validate=False) / (x.shape[0] * S)
        kl_dims = kl_divergence_diag_gaussian(output.mu, output.log_var, reduce_sum=False)
        kl = kl_dims.sum() / x.shape[0]
        if free_bits > 0:  # the floor applies to each dimension's batch mean
            kl_term = torch.maximum(kl_dims.mean(0), kl_dims.new_tensor(free_bits)).sum()
        else:
            kl_term = kl
        return -(ll - beta * kl_term), ll, kl

    def log_marginal_likelihood(
        self,
        x: torch.Tensor,
        K: int = 100,
        likelihood: LikelihoodLike | None = None,
        batch_size: int | None = None,
    ) -> torch.Tensor:
        r"""Importance-sampled estimate of :math:`\log p(x)` (the IWAE bound).

        .. math::

            \log p(x) \approx \log \frac1K \sum_{k=1}^{K}
            \frac{p(x \mid z_k)\, p(z)}{q(z_k \mid x)}, \qquad z_k \sim q(z \mid x)

        It is a lower bound that tightens as :math:`K` grows
        :cite:p:`burda2015importance`; :math:`K = 1` is an unbiased estimate of the ELBO.
        It always samples from :math:`q(z \mid x)`, whatever the train/eval mode of the
        model (the networks themselves run in their current mode, so call ``eval()``
        first if they contain dropout or batch norm). The Gaussian constant omitted by
        :func:`~autoencoders.likelihoods.log_likelihood` is included here, so the result is
        a proper log density.

        Parameters
        ----------
        x : torch.Tensor
            Inputs ``[B, ...]``.
        K : int, default 100
            Importance samples per input.
        likelihood : str, Likelihood or callable, optional
            Overrides the model's :attr:`likelihood`.
        batch_size : int, optional
            Inputs processed at once (all by default). Samples are drawn in chunks so
            that at most about 8192 decoder evaluations are held in memory.

        Returns
        -------
        torch.Tensor
            ``[B]`` estimates of :math:`\log p(x)` in nats, without gradients.
        """
        check_tensor(x, "x")
        K = _check_samples(K, "K")
        likelihood = self.resolve_likelihood(likelihood)
        validate_target(x, likelihood)
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        const = log_normalizer(likelihood) * math.prod(x.shape[1:])
        step = batch_size or x.shape[0]
        results = []
        with torch.no_grad():
            for start in range(0, x.shape[0], step):
                xb = x[start : start + step]
                mu, log_var = self.posterior(xb)
                chunk = max(1, 8192 // xb.shape[0])
                log_w = []
                for k0 in range(0, K, chunk):
                    n = min(chunk, K - k0)
                    z = self.sampling_layer.sample(mu, log_var, n)  # [b, n, D]
                    x_hat = self._decode(z).x_hat
                    target = xb.unsqueeze(1).expand(-1, n, *xb.shape[1:])
                    log_px = log_likelihood(target, x_hat, likelihood, validate=False)
                    log_px = log_px.flatten(2).sum(2) + const
                    log_pz = log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
                    log_qz = log_normal_diag(z, mu.unsqueeze(1), log_var.unsqueeze(1))
                    log_w.append(log_px + log_pz - log_qz)
                results.append(torch.logsumexp(torch.cat(log_w, 1), dim=1) - math.log(K))
        return torch.cat(results)


def adaptive_shared_mask(
    mu1: torch.Tensor, log_var1: torch.Tensor, mu2: torch.Tensor, log_var2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Ada-GVAE's choice of shared latent dimensions for each pair.

    .. math::

        \delta_j = \mathrm{KL}\big(q(z_j \mid x_1) \,\|\, q(z_j \mid x_2)\big),

        \tau = \tfrac12\big(\max_j \delta_j + \min_j \delta_j\big), \qquad
        \text{shared} = \{ j : \delta_j < \tau \}

    When all :math:`\delta_j` of a pair are equal nothing is shared.

    Returns
    -------
    tuple of torch.Tensor
        ``(delta [B, D_z], tau [B], shared [B, D_z] bool)``.
    """
    delta = kl_divergence_diag_gaussian(mu1, log_var1, mu2, log_var2, reduce_sum=False)
    tau = 0.5 * (delta.amax(dim=1) + delta.amin(dim=1))
    return delta, tau, delta < tau.unsqueeze(1)


class AdaGVAE(BaseAutoencoder):
    r"""Adaptive Group VAE :cite:p:`locatello2020weakly` wrapping a :class:`VAE`.

    Both images of a pair are encoded; in each latent dimension that
    :func:`adaptive_shared_mask` marks as shared, the two posteriors are replaced by
    their average,

    .. math::

        \tilde\mu_j = \tfrac12(\mu_{1,j} + \mu_{2,j}), \qquad
        \tilde\sigma^2_j = \tfrac12(\sigma^2_{1,j} + \sigma^2_{2,j}),

    with :math:`\log\tilde\sigma^2_j` computed as
    ``logaddexp(log_var1, log_var2) - log 2``. The other dimensions keep their own
    posterior. Each view is then sampled and decoded independently.

    Parameters
    ----------
    vae : VAE
        The model whose encoder, posterior head and decoder are reused. After
        training, use ``model.vae`` for single images.
    """

    paired = True

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        if not isinstance(vae, VAE):
            raise TypeError(f"vae must be an autoencoders.VAE, got {type(vae).__name__}")
        self.vae = vae

    @property
    def latent_dim(self) -> int:
        """:math:`D_z` of the wrapped VAE."""
        return self.vae.latent_dim

    @property
    def likelihood(self) -> LikelihoodLike:
        """The wrapped VAE's :attr:`~VAE.likelihood`."""
        return self.vae.likelihood

    def extra_repr(self) -> str:
        return ""  # the wrapped VAE shows its likelihood

    @staticmethod
    def split_pair(x: object) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a pair input and return ``(x1, x2)``.

        Raises
        ------
        TypeError
            If ``x`` is not a pair of tensors.
        ValueError
            If the two views differ in shape or are empty.
        """
        if not isinstance(x, tuple | list) or len(x) != 2:
            raise TypeError(f"x must be a pair (x1, x2) of tensors, got {type(x).__name__}")
        x1 = check_tensor(x[0], "x1")
        x2 = check_tensor(x[1], "x2")
        if x1.shape != x2.shape:
            raise ValueError(
                f"x1 and x2 must have equal shapes, got {list(x1.shape)} and {list(x2.shape)}"
            )
        return x1, x2

    # Earlier name of :meth:`split_pair`, kept for code written against it.
    _split_pair = split_pair

    def _encode(self, x: torch.Tensor, S: int | None = None, sample: bool | None = None) -> VAEEncodeOutput:
        return self.vae._encode(x, S=S, sample=sample)

    def _decode(self, z: torch.Tensor) -> VAEDecodeOutput:
        return self.vae._decode(z)

    def shared_dimensions(self, x: tuple[torch.Tensor, torch.Tensor]):
        """Per-dimension KL, threshold and shared mask for pairs, without gradients.

        Returns ``(delta [B, D_z], tau [B], shared [B, D_z])``: ``delta`` and ``tau`` as
        in :func:`adaptive_shared_mask`, and ``shared`` from :meth:`select_shared`, the
        rule this model trains with (so a subclass that overrides it is evaluated by its
        own rule; ``tau`` is then only Ada-GVAE's threshold, for reference).
        """
        x1, x2 = self.split_pair(x)
        with torch.no_grad():
            mu1, lv1 = self.vae.posterior(x1)
            mu2, lv2 = self.vae.posterior(x2)
            delta, tau, _ = adaptive_shared_mask(mu1, lv1, mu2, lv2)
            return delta, tau, self.select_shared(mu1, lv1, mu2, lv2)

    def forward(
        self, x: tuple[torch.Tensor, torch.Tensor], S: int = 1, sample: bool | None = None
    ) -> AdaGVAEOutput:
        """Encode both views, average the shared dimensions, then sample and decode.

        Parameters
        ----------
        x : tuple of torch.Tensor
            ``(x1, x2)``, each ``[B, ...]`` with equal shapes.
        S : int, default 1
            Latent samples per input.
        sample : bool, optional
            As in :meth:`VAE.forward`.
        """
        x1, x2 = self.split_pair(x)
        S = _check_samples(S)
        mu1, lv1 = self.vae.posterior(x1)
        mu2, lv2 = self.vae.posterior(x2)
        shared = self.select_shared(mu1, lv1, mu2, lv2)
        mu_agg, lv_agg = self.aggregate(mu1, lv1, mu2, lv2)
        outputs = []
        for mu, lv in ((mu1, lv1), (mu2, lv2)):
            mu_a = torch.where(shared, mu_agg, mu)
            lv_a = torch.where(shared, lv_agg, lv)
            z = self.vae.latent_samples(mu_a, lv_a, S, sample)
            outputs.append(VAEOutput(x_hat=self.vae._decode(z).x_hat, z=z, mu=mu_a, log_var=lv_a))
        return AdaGVAEOutput(output1=outputs[0], output2=outputs[1], shared_mask=shared)

    def select_shared(
        self, mu1: torch.Tensor, log_var1: torch.Tensor, mu2: torch.Tensor, log_var2: torch.Tensor
    ) -> torch.Tensor:
        r"""Which latent dimensions the two views share: a bool mask ``[B, D_z]``.

        Ada-GVAE's rule is :func:`adaptive_shared_mask`: a dimension is shared when its
        :math:`\delta_j = \mathrm{KL}(q_1 \| q_2)` is below the midpoint of the
        smallest and largest :math:`\delta` of the pair. Override this one method to
        change the rule, for example to keep the :math:`k` dimensions with the largest
        :math:`\delta_j` separate when :math:`k` is known.

        Parameters
        ----------
        mu1, log_var1, mu2, log_var2 : torch.Tensor
            Posterior parameters of the two views, ``[B, D_z]``.
        """
        return adaptive_shared_mask(mu1, log_var1, mu2, log_var2)[2]

    def aggregate(
        self, mu1: torch.Tensor, log_var1: torch.Tensor, mu2: torch.Tensor, log_var2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The posterior that two views share in a shared dimension: ``(mu, log_var)``.

        Ada-GVAE averages the two Gaussians' moments,
        :math:`\tilde\mu = \tfrac12(\mu_1 + \mu_2)`,
        :math:`\tilde\sigma^2 = \tfrac12(\sigma_1^2 + \sigma_2^2)`. Override this one
        method to change the aggregation: Ada-ML-VAE, for instance, multiplies the two
        Gaussians (precision-weighted means). :meth:`forward` applies the result only
        in the dimensions that :func:`adaptive_shared_mask` marks as shared.

        Parameters
        ----------
        mu1, log_var1, mu2, log_var2 : torch.Tensor
            Posterior parameters of the two views, ``[B, D_z]``.

        Returns
        -------
        tuple of torch.Tensor
            ``(mu, log_var)``, each ``[B, D_z]``.
        """
        return 0.5 * (mu1 + mu2), torch.logaddexp(log_var1, log_var2) - _LOG2

    def build(self, input_sample: Any) -> AdaGVAE:
        """Materialise lazy layers with a pair ``(x1, x2)`` or with one tensor ``x``.

        A single tensor builds the wrapped VAE, as in the PyAutoencoder API
        (``model = AdaGVAE(vae=vae); model.build(x)``).
        """
        if isinstance(input_sample, torch.Tensor):
            self.vae.build(input_sample)
            self._build_input_shape = (1, *input_sample.shape[1:])
            self._build_input_dtype = str(input_sample.dtype).removeprefix("torch.")
            return self
        return super().build(input_sample)

    def compute_loss(
        self,
        x: tuple[torch.Tensor, torch.Tensor],
        output: AdaGVAEOutput,
        beta: float = 1.0,
        likelihood: LikelihoodLike | None = None,
        free_bits: float = 0.0,
    ) -> LossResult:
        r"""Sum of the two views' beta-ELBO losses on the adapted posteriors.

        .. math::

            \mathcal L = \mathcal L_\beta\big(x_1; \tilde q(z \mid x_1)\big)
                       + \mathcal L_\beta\big(x_2; \tilde q(z \mid x_2)\big)

        Returns
        -------
        LossResult
            Diagnostics ``elbo`` (sum of the two true ELBOs), ``log_likelihood_x1``,
            ``log_likelihood_x2``, ``kl_divergence_x1``, ``kl_divergence_x2`` and
            ``shared_dims`` (mean number of shared dimensions per pair, from
            ``output.shared_mask``; for an output built by hand, the dimensions whose
            adapted posteriors coincide).
        """
        x1, x2 = self.split_pair(x)
        likelihood = self.vae.resolve_likelihood(likelihood)
        o1, o2 = output.output1, output.output2
        obj1, ll1, kl1 = self.vae._loss_terms(x1, o1, beta, likelihood, free_bits)
        obj2, ll2, kl2 = self.vae._loss_terms(x2, o2, beta, likelihood, free_bits)
        mask = output.shared_mask
        if mask is None:
            mask = (o1.mu == o2.mu) & (o1.log_var == o2.log_var)
        diagnostics = float_diagnostics(
            {
                "elbo": (ll1 - kl1) + (ll2 - kl2),
                "log_likelihood_x1": ll1,
                "log_likelihood_x2": ll2,
                "kl_divergence_x1": kl1,
                "kl_divergence_x2": kl2,
                "shared_dims": mask.sum(1).to(o1.mu.dtype).mean(),
            },
            targets={"x1": (x1, likelihood), "x2": (x2, likelihood)},
        )
        return LossResult(objective=obj1 + obj2, diagnostics=diagnostics)
