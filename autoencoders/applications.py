r"""What a trained autoencoder is for, and how good its encoder is at inference.

Three uses of a trained model, each a few lines of math:

* **Anomaly detection.** An image unlike the training data should be expensive to
  explain. :func:`anomaly_scores` gives each image a score, either the negative ELBO

  .. math::

      s_{\text{ELBO}}(x) = -\Big(\mathbb E_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]
      - \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)\Big)

  or the squared error of the reconstruction at the posterior mean,
  :math:`s_{\text{rec}}(x) = \lVert x - \tilde x \rVert^2`, and :func:`roc_auc` says how
  well a score separates normal from anomalous images.
* **Retrieval.** :func:`nearest_neighbours` finds the closest codes (or pixels) by
  Euclidean distance, and :func:`precision_at_k` measures how often the neighbours
  share the query's label.
* **Amortised inference.** The encoder predicts :math:`q_\phi(z \mid x)` for every
  image with one network; :func:`amortisation_gap` optimises a separate Gaussian for
  each image instead and splits the inference gap :math:`\log p(x) - \mathrm{ELBO}`
  into an *approximation* gap (the Gaussian family) and an *amortisation* gap (the
  shared encoder) :cite:p:`cremer2018inference`. :func:`gaussian_elbo` evaluates the
  ELBO of any diagonal Gaussian :math:`q` of one's choosing (optimised per image, or
  computed by the encoder in another mode) under the model's decoder.

Random draws come from a CPU generator seeded with ``seed`` and are then moved to the
model's device, so that a seed gives the same scores on every device.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._base import ModelOutput
from .inference import _batches, _check_finite_input, _placed, evaluating, reconstruct
from .likelihoods import LikelihoodLike, log_likelihood, log_normalizer, validate_target
from .loss import kl_divergence_diag_gaussian, log_normal_diag
from .utils import progress_bar
from .variational import VAE

__all__ = [
    "anomaly_scores",
    "roc_auc",
    "nearest_neighbours",
    "precision_at_k",
    "AmortisationGap",
    "amortisation_gap",
    "gaussian_elbo",
]

ANOMALY_SCORES = ("neg_elbo", "reconstruction_error")
# decoder evaluations held in memory at once (images x latent samples)
_CHUNK = 8192


# ------------------------------------------------------------------------- checks
def _int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _positive_float(value: Any, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.floating)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite float > 0, got {value!r}")
    return float(value)


def _the_vae(model: Any, name: str = "model") -> VAE:
    """``model`` itself, or the ``.vae`` of a paired model such as Ada-GVAE."""
    vae = model.vae if getattr(model, "paired", False) else model
    if not isinstance(vae, VAE):
        raise TypeError(
            f"{name} must be an autoencoders.VAE (or a paired model with a .vae), "
            f"got {type(model).__name__}"
        )
    if vae.unbuilt_modules():
        raise ValueError(
            f"{name} has unbuilt lazy layers {vae.unbuilt_modules()}; call {name}.build(x) "
            "or train it first"
        )
    return vae


def _scores(values: Any, name: str) -> np.ndarray:
    """A non-empty, finite, 1-D float64 array of scores."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be a 1-D sequence of numbers (tensor, array or list), got "
            f"{type(values).__name__}"
        ) from err
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D array of scores [N], got shape {list(array.shape)}"
        )
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(f"{name} must be finite, got {bad} NaN or inf of {array.size} values")
    return array


def _matrix(values: Any, name: str) -> torch.Tensor:
    """Rows ``[N, ...]`` flattened to a finite float matrix ``[N, F]`` on the CPU."""
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(values)
    if not isinstance(values, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy array [N, ...], got {type(values).__name__}"
        )
    if values.dim() < 2 or values.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape [N, ...] with N >= 1 and at least 2 dims, "
            f"got {list(values.shape)}"
        )
    values = values.detach().flatten(1).cpu()
    values = values if values.is_floating_point() else values.float()
    _check_finite_input(values, name, f"rows 0..{len(values) - 1}")
    return values


def _labels(values: Any, name: str, n: int, rows: str) -> torch.Tensor:
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(values)
    if not isinstance(values, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy array [N], got {type(values).__name__}"
        )
    if values.dim() != 1 or len(values) != n:
        raise ValueError(
            f"{name} must have shape [N] = [{n}] (one label per row of {rows}), "
            f"got {list(values.shape)}"
        )
    return values.detach().cpu()


# ------------------------------------------------------------------- ELBO pieces
def _draw(generator: torch.Generator, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise drawn on the CPU, then moved next to ``like``."""
    eps = torch.randn(shape, generator=generator, dtype=like.dtype)
    return eps.to(like.device)


def _log_px_given_z(
    vae: VAE, x: torch.Tensor, z: torch.Tensor, likelihood: LikelihoodLike
) -> torch.Tensor:
    r""":math:`\log p(x \mid z)` with the likelihood's constant: ``[B, S]`` for ``z [B, S, D]``."""
    x_hat = vae._decode(z).x_hat
    if tuple(x_hat.shape[2:]) != tuple(x.shape[1:]):
        raise ValueError(
            f"the decoder output must have shape [B, S, *x.shape[1:]] = "
            f"{[*z.shape[:2], *x.shape[1:]]}, got {list(x_hat.shape)}"
        )
    target = x.unsqueeze(1).expand_as(x_hat)
    log_px = log_likelihood(target, x_hat, likelihood, validate=False).flatten(2).sum(2)
    return log_px + log_normalizer(likelihood) * math.prod(x.shape[1:])


def _elbo(
    vae: VAE,
    x: torch.Tensor,
    mu: torch.Tensor,
    log_var: torch.Tensor,
    eps: torch.Tensor,
    likelihood: LikelihoodLike,
) -> torch.Tensor:
    r"""Per-example ELBO ``[B]`` of :math:`q = \mathcal N(\mu, \sigma^2)`, noise ``eps [B, S, D]``.

    The expected log-likelihood is averaged over the ``S`` reparameterised codes
    :math:`z_s = \mu + \sigma \odot \epsilon_s`, in chunks of at most ``_CHUNK`` decoder
    evaluations; the KL is in closed form.
    """
    std = torch.exp(0.5 * log_var).unsqueeze(1)
    S = eps.shape[1]
    step = max(1, _CHUNK // max(1, x.shape[0]))
    total = torch.zeros(x.shape[0], dtype=mu.dtype, device=mu.device)
    for s0 in range(0, S, step):
        z = mu.unsqueeze(1) + std * eps[:, s0 : s0 + step]
        total = total + _log_px_given_z(vae, x, z, likelihood).sum(1)
    return total / S - kl_divergence_diag_gaussian(mu, log_var)


def _iwae(
    vae: VAE,
    x: torch.Tensor,
    mu: torch.Tensor,
    log_var: torch.Tensor,
    K: int,
    generator: torch.Generator,
    likelihood: LikelihoodLike,
) -> torch.Tensor:
    r"""The importance-sampled bound :math:`\mathcal L_K` ``[B]`` with proposal
    :math:`\mathcal N(\mu, \sigma^2)` (any Gaussian, not only the encoder's)."""
    step = max(1, _CHUNK // max(1, x.shape[0]))
    std = torch.exp(0.5 * log_var).unsqueeze(1)
    log_w = []
    for k0 in range(0, K, step):
        eps = _draw(generator, (x.shape[0], min(step, K - k0), mu.shape[1]), mu)
        z = mu.unsqueeze(1) + std * eps
        log_pz = log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz = log_normal_diag(z, mu.unsqueeze(1), log_var.unsqueeze(1))
        log_w.append(_log_px_given_z(vae, x, z, likelihood) + log_pz - log_qz)
    return torch.logsumexp(torch.cat(log_w, 1), dim=1) - math.log(K)


def _checked_batches(
    data: Any,
    batch_size: int,
    target: torch.device,
    likelihood: LikelihoodLike | None,
    name: str = "data",
) -> Iterator[torch.Tensor]:
    """Batches of ``data`` on ``target``, finite and inside the likelihood's support;
    errors call the argument ``name`` and give the rows of the batch."""
    for x, where in _batches(data, batch_size, name):
        x = x.to(target)
        _check_finite_input(x, name, where)
        if likelihood is not None:
            validate_target(x, likelihood, name=f"{name} ({where})")
        yield x


# ------------------------------------------------------------------ anomaly scores
def anomaly_scores(
    model: Any,
    data: Any,
    *,
    kind: str = "neg_elbo",
    S: int = 10,
    seed: int = 0,
    batch_size: int = 512,
    likelihood: LikelihoodLike | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    r"""One anomaly score per image: high means unlike the training data.

    .. math::

        \texttt{neg_elbo:}\quad s(x) &= -\frac1S\sum_{s=1}^{S}
            \log p_\theta(x \mid z_s)
            + \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,\mathcal N(0, I)\big),\\
            z_s &\sim q_\phi(z \mid x)

        \texttt{reconstruction_error:}\quad s(x) &= \sum_i \big(x_i - \tilde x_i\big)^2,\\
            \tilde x &= \mathbb E\big[x \mid g_\theta(\mu_\phi(x))\big]

    The negative ELBO includes the likelihood's normalising constant (for the
    Gaussian, :math:`\tfrac12\log 2\pi` per pixel), so it is an upper bound on
    :math:`-\log p_\theta(x)` in nats, comparable with
    :meth:`~autoencoders.variational.VAE.log_marginal_likelihood`. The reconstruction
    is :func:`~autoencoders.inference.reconstruct`'s: the likelihood's mean at the
    posterior mean (an AE uses its code), so it needs no sampling.

    The model runs in eval mode without gradients, on ``device``; its flags and its
    device are restored afterwards. The latent noise is drawn on the CPU from a
    generator seeded with ``seed``, batch after batch, so the same ``seed`` and
    ``batch_size`` give the same scores on every device.

    Parameters
    ----------
    model : VAE, AdaGVAE or AE
        A trained model; ``'neg_elbo'`` needs a VAE (an Ada-GVAE scores with its
        ``.vae``).
    data : Tensor or ndarray [N, ...], or an iterable of batches
        The images; an iterable may yield tensors or ``(x, ...)`` tuples.
    kind : {'neg_elbo', 'reconstruction_error'}, default 'neg_elbo'
    S : int, default 10
        Latent samples per image for ``'neg_elbo'`` (ignored otherwise).
    seed : int, default 0
        Seed of the latent noise.
    batch_size : int, default 512
        Images per forward pass when ``data`` is a tensor.
    likelihood : str, Likelihood or callable, optional
        Overrides the model's likelihood (for ``'reconstruction_error'``, the one
        whose mean is the reconstruction).
    device : str or torch.device, optional
        ``None`` means :func:`autoencoders.utils.get_device`.

    Returns
    -------
    torch.Tensor
        ``[N]`` scores on the CPU (float32 for a float32 model), without gradient.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, ``S``, ``seed`` or ``batch_size`` is out of range, or
        ``data`` is empty, not finite or outside the likelihood's support.
    TypeError
        If ``'neg_elbo'`` is asked of a model that is not a VAE.
    """
    if kind not in ANOMALY_SCORES:
        raise ValueError(f"kind must be one of {ANOMALY_SCORES}, got {kind!r}")
    S = _int(S, "S", 1)
    seed = _int(seed, "seed", 0)
    _int(batch_size, "batch_size", 1)
    scores = []
    if kind == "reconstruction_error":
        with evaluating(model), _placed(model, device) as target:
            for x in _checked_batches(data, batch_size, target, None):
                x_rec = reconstruct(model, x, likelihood=likelihood)
                scores.append(((x - x_rec) ** 2).flatten(1).sum(1).cpu())
        return torch.cat(scores)
    vae = _the_vae(model)
    likelihood = vae.resolve_likelihood(likelihood)
    generator = torch.Generator().manual_seed(seed)
    with evaluating(model), _placed(vae, device) as target:
        for x in _checked_batches(data, batch_size, target, likelihood):
            mu, log_var = vae.posterior(x)
            eps = _draw(generator, (x.shape[0], S, vae.latent_dim), mu)
            scores.append(-_elbo(vae, x, mu, log_var, eps, likelihood).cpu())
    return torch.cat(scores)


def roc_auc(scores_normal: Any, scores_anomalous: Any) -> float:
    r"""Area under the ROC curve of a score that should be higher for anomalies.

    .. math::

        \mathrm{AUC} = \frac{1}{n_0 n_1} \sum_{i=1}^{n_0} \sum_{j=1}^{n_1}
        \Big(\mathbb 1[s^{(1)}_j > s^{(0)}_i] + \tfrac12\,\mathbb 1[s^{(1)}_j = s^{(0)}_i]\Big)

    the probability that a random anomalous image scores higher than a random normal
    one (ties count one half): 1 separates perfectly, 0.5 is chance, below 0.5 the
    score points the wrong way. Computed by :func:`sklearn.metrics.roc_auc_score` with
    the anomalous images as the positive class.

    Parameters
    ----------
    scores_normal, scores_anomalous : tensor, array or sequence [N]
        Finite scores of the normal (:math:`n_0`) and anomalous (:math:`n_1`) images.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If either set is empty, not 1-D or not finite.
    TypeError
        If either set is not numeric.
    """
    from sklearn.metrics import roc_auc_score

    normal = _scores(scores_normal, "scores_normal")
    anomalous = _scores(scores_anomalous, "scores_anomalous")
    labels = np.concatenate([np.zeros(normal.size), np.ones(anomalous.size)])
    return float(roc_auc_score(labels, np.concatenate([normal, anomalous])))


# ------------------------------------------------------------------------ retrieval
def nearest_neighbours(
    query: Any,
    base: Any,
    k: int,
    *,
    exclude_self: bool = False,
    chunk_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The ``k`` rows of ``base`` closest to each query, by Euclidean distance.

    .. math::

        \mathcal N_k(q) = \operatorname*{arg\,min}_{|I| = k} \sum_{n \in I}
        \lVert q - b_n \rVert_2

    Rows are flattened, so images ``[N, 1, 28, 28]`` are compared as pixel vectors and
    codes ``[N, D]`` as codes. Distances are computed with :func:`torch.cdist` on the
    CPU, ``chunk_size`` queries at a time.

    Parameters
    ----------
    query : Tensor or ndarray [Q, ...]
    base : Tensor or ndarray [N, ...]
        Same number of features per row as ``query``.
    k : int
        Neighbours per query, ``1 <= k <= N`` (``N - 1`` with ``exclude_self``).
    exclude_self : bool, default False
        ``query`` and ``base`` are the same set, row for row (``Q == N``): query ``i``
        never returns base row ``i``.
    chunk_size : int, default 1024

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``indices [Q, k]`` (int64, into ``base``) and ``distances [Q, k]``, nearest
        first.

    Raises
    ------
    ValueError
        If shapes do not match, ``k`` is out of range, or a row holds NaN or inf.
    TypeError
        If an input is not a tensor or array, or ``exclude_self`` is not a bool.
    """
    if not isinstance(exclude_self, bool):
        raise TypeError(f"exclude_self must be True or False, got {exclude_self!r}")
    q = _matrix(query, "query")
    b = _matrix(base, "base")
    if q.shape[1] != b.shape[1]:
        raise ValueError(
            f"query and base must have the same features per row, got {q.shape[1]} "
            f"(query shape {list(query.shape)}) and {b.shape[1]} (base shape {list(base.shape)})"
        )
    if exclude_self and len(q) != len(b):
        raise ValueError(
            f"exclude_self=True needs query and base to be the same rows (Q == N), got "
            f"Q = {len(q)} and N = {len(b)}"
        )
    k_max = len(b) - int(exclude_self)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= k_max:
        raise ValueError(f"k must be an int in [1, {k_max}] (rows of base available), got {k!r}")
    chunk_size = _int(chunk_size, "chunk_size", 1)
    dtype = torch.promote_types(q.dtype, b.dtype)
    q, b = q.to(dtype), b.to(dtype)
    indices, distances = [], []
    for start in range(0, len(q), chunk_size):
        d = torch.cdist(q[start : start + chunk_size], b)
        if exclude_self:
            rows = torch.arange(d.shape[0])
            d[rows, rows + start] = math.inf
        found = torch.topk(d, int(k), dim=1, largest=False, sorted=True)
        indices.append(found.indices)
        distances.append(found.values)
    return torch.cat(indices), torch.cat(distances)


def precision_at_k(
    query_codes: Any,
    query_labels: Any,
    base_codes: Any,
    base_labels: Any,
    k: int = 10,
    *,
    exclude_self: bool = False,
) -> float:
    r"""Mean fraction of each query's ``k`` nearest neighbours that share its label.

    .. math::

        \mathrm{P@}k = \frac1Q \sum_{q=1}^{Q} \frac1k \sum_{n \in \mathcal N_k(q)}
        \mathbb 1\big[y_n = y_q\big]

    with :math:`\mathcal N_k(q)` from :func:`nearest_neighbours` (Euclidean distance
    between codes, or between pixels when the "codes" are the images). A random
    ordering scores the share of the query's class in ``base``, about 0.1 for MNIST.

    Parameters
    ----------
    query_codes : Tensor or ndarray [Q, ...]
    query_labels : Tensor or ndarray [Q]
    base_codes : Tensor or ndarray [N, ...]
    base_labels : Tensor or ndarray [N]
    k : int, default 10
    exclude_self : bool, default False
        The queries are the base itself (leave-one-out); see :func:`nearest_neighbours`.

    Returns
    -------
    float
        In :math:`[0, 1]`.

    Raises
    ------
    ValueError
        If the labels do not have one entry per row, or as in :func:`nearest_neighbours`.
    """
    indices, _ = nearest_neighbours(query_codes, base_codes, k, exclude_self=exclude_self)
    yq = _labels(query_labels, "query_labels", len(indices), "query_codes")
    yb = _labels(base_labels, "base_labels", len(base_codes), "base_codes")
    return float((yb[indices] == yq.unsqueeze(1)).double().mean())


# ------------------------------------------------------------------ any Gaussian q
def gaussian_elbo(
    model: Any,
    x: torch.Tensor,
    mu: torch.Tensor,
    log_var: torch.Tensor,
    *,
    S: int = 100,
    seed: int = 0,
    batch_size: int = 512,
    likelihood: LikelihoodLike | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    r"""Per-image ELBO of given diagonal Gaussians under a VAE's decoder, in nats.

    .. math::

        \mathrm{ELBO}(x_n; \mu_n, \sigma_n^2) = {}& \frac1S \sum_{s=1}^{S}
            \log p_\theta(x_n \mid \mu_n + \sigma_n \odot \epsilon_{n,s})\\
            & - \mathrm{KL}\big(\mathcal N(\mu_n, \sigma_n^2)\,\|\,\mathcal N(0, I)\big),
        \qquad \epsilon_{n,s} \sim \mathcal N(0, I),

    with the KL in closed form and the likelihood's normalising constant included (as in
    :func:`anomaly_scores`). The Gaussians are whatever the caller passes: the
    encoder's posteriors computed in some other way (in train mode, so that a
    BatchNorm layer uses the statistics of the batch), Gaussians optimised per image,
    or any other guess. The decoder runs in eval mode without gradients.

    The noise is drawn on the CPU from a generator seeded with ``seed``, batch after
    batch, so the same ``seed``, ``S`` and ``batch_size`` give the same noise for the
    same rows: two sets of Gaussians for the same images are compared with common
    random numbers, and their difference is much less noisy than either ELBO. With
    ``mu, log_var = model.posterior(x)`` in eval mode the result is minus
    :func:`anomaly_scores` with ``kind='neg_elbo'`` and the same ``S``, ``seed`` and
    ``batch_size``.

    Parameters
    ----------
    model : VAE or AdaGVAE
        A built model (an Ada-GVAE uses its ``.vae``); its flags and device are
        restored afterwards and its parameters are not changed.
    x : torch.Tensor
        Images ``[N, ...]``.
    mu, log_var : torch.Tensor
        ``[N, D_z]`` means and log-variances of the Gaussians, one row per image.
    S : int, default 100
        Latent samples per image.
    seed : int, default 0
        Seed of the latent noise.
    batch_size : int, default 512
        Images decoded at once.
    likelihood : str, Likelihood or callable, optional
        Overrides the model's likelihood.
    device : str or torch.device, optional
        ``None`` means :func:`autoencoders.utils.get_device`.

    Returns
    -------
    torch.Tensor
        ``[N]`` ELBOs on the CPU, without gradient.

    Raises
    ------
    ValueError
        If ``mu`` or ``log_var`` is not ``[N, D_z]`` for the ``N`` images and the
        model's ``D_z``, or not finite; if ``x`` is empty, not finite or outside the
        likelihood's support; or if ``S``, ``seed`` or ``batch_size`` is out of range.
    TypeError
        If ``model`` is not a VAE, or ``x``, ``mu`` or ``log_var`` is not a tensor.
    """
    vae = _the_vae(model)
    S, seed = _int(S, "S", 1), _int(seed, "seed", 0)
    batch_size = _int(batch_size, "batch_size", 1)
    for name, value in (("x", x), ("mu", mu), ("log_var", log_var)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if x.dim() < 2 or len(x) == 0:
        raise ValueError(f"x must have shape [N, ...] with N >= 1, got {list(x.shape)}")
    want = [len(x), vae.latent_dim]
    for name, value in (("mu", mu), ("log_var", log_var)):
        if list(value.shape) != want:
            raise ValueError(
                f"{name} must have shape [N, D_z] = {want} (one row per image), "
                f"got {list(value.shape)}"
            )
        _check_finite_input(value.detach(), name, f"rows 0..{len(value) - 1}")
    likelihood = vae.resolve_likelihood(likelihood)
    generator = torch.Generator().manual_seed(seed)
    out = []
    start = 0
    with evaluating(model), _placed(vae, device) as target:
        for xb in _checked_batches(x, batch_size, target, likelihood, name="x"):
            rows = slice(start, start + len(xb))
            start += len(xb)
            mb = mu[rows].detach().to(target, xb.dtype)
            lvb = log_var[rows].detach().to(target, xb.dtype)
            eps = _draw(generator, (len(xb), S, vae.latent_dim), mb)
            out.append(_elbo(vae, xb, mb, lvb, eps, likelihood).cpu())
    return torch.cat(out)


# --------------------------------------------------------------- amortisation gap
@dataclass(repr=False)
class AmortisationGap(ModelOutput):
    r"""Per-image bounds on :math:`\log p_\theta(x)` from :func:`amortisation_gap`, in nats.

    Attributes
    ----------
    elbo_encoder : torch.Tensor
        ``[N]`` ELBO of the encoder's :math:`q_\phi(z \mid x)`.
    elbo_optimised : torch.Tensor
        ``[N]`` ELBO of the per-image Gaussian :math:`q^\star_x` found by optimisation,
        estimated with the same latent noise as ``elbo_encoder``.
    iwae_encoder : torch.Tensor
        ``[N]`` IWAE bound :math:`\mathcal L_K` with the encoder's proposal
        (:meth:`~autoencoders.variational.VAE.log_marginal_likelihood`).
    iwae_optimised : torch.Tensor
        ``[N]`` IWAE bound :math:`\mathcal L_K` with :math:`q^\star_x` as the proposal.
    mu, log_var : torch.Tensor
        ``[N, D_z]`` parameters of :math:`q^\star_x`.
    curve : torch.Tensor
        ``[steps]`` mean training ELBO over the images at each optimisation step
        (float64; an estimate with ``S`` samples per image).
    """

    elbo_encoder: torch.Tensor
    elbo_optimised: torch.Tensor
    iwae_encoder: torch.Tensor
    iwae_optimised: torch.Tensor
    mu: torch.Tensor
    log_var: torch.Tensor
    curve: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))

    @property
    def log_px(self) -> torch.Tensor:
        r"""``[N]`` the estimate of :math:`\log p_\theta(x)` that the gaps use:
        ``iwae_optimised``, the bound with the better proposal.

        Not the per-image larger of the two bounds: each is a lower bound only on
        average, and with a poor proposal a single estimate can land above
        :math:`\log p_\theta(x)`, so a maximum would be biased upwards.
        """
        return self.iwae_optimised

    @property
    def amortisation(self) -> torch.Tensor:
        r"""``[N]`` amortisation gap :math:`\mathrm{ELBO}(q^\star_x) - \mathrm{ELBO}(q_\phi)`."""
        return self.elbo_optimised - self.elbo_encoder

    @property
    def approximation(self) -> torch.Tensor:
        r"""``[N]`` approximation gap :math:`\log p_\theta(x) - \mathrm{ELBO}(q^\star_x)`."""
        return self.log_px - self.elbo_optimised

    @property
    def inference(self) -> torch.Tensor:
        r"""``[N]`` inference gap :math:`\log p_\theta(x) - \mathrm{ELBO}(q_\phi)`."""
        return self.log_px - self.elbo_encoder

    def means(self) -> dict[str, float]:
        """Dataset means of the bounds and gaps, as Python floats."""
        names = ("elbo_encoder", "elbo_optimised", "iwae_encoder", "iwae_optimised",
                 "log_px", "amortisation", "approximation", "inference")
        return {name: float(getattr(self, name).double().mean()) for name in names}


@contextlib.contextmanager
def _forked_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global streams for the body, leaving the caller's streams as they were."""
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def amortisation_gap(
    vae: Any,
    x: torch.Tensor,
    *,
    steps: int = 200,
    lr: float = 0.05,
    S: int = 8,
    S_eval: int = 100,
    K: int = 1000,
    seed: int = 0,
    batch_size: int = 256,
    likelihood: LikelihoodLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> AmortisationGap:
    r"""Split the inference gap of a VAE into approximation and amortisation gaps.

    The encoder predicts :math:`q_\phi(z \mid x) = \mathcal N(\mu_\phi(x),
    \sigma^2_\phi(x))` with one network for all images. For each image we also look for
    the best Gaussian of the same family, with the decoder frozen,

    .. math::

        q^\star_x = \operatorname*{arg\,max}_{\mu, \log\sigma^2}\;
        \mathbb E_{\mathcal N(z;\mu,\sigma^2)}\big[\log p_\theta(x \mid z)\big]
        - \mathrm{KL}\big(\mathcal N(\mu, \sigma^2)\,\|\,\mathcal N(0, I)\big),

    by ``steps`` Adam steps on :math:`(\mu, \log\sigma^2)` from the encoder's values,
    with ``S`` fresh reparameterised samples per step and a learning rate that decays
    from ``lr`` to 0 on a cosine. The inference gap then splits as
    :cite:p:`cremer2018inference`

    .. math::

        \underbrace{\log p_\theta(x) - \mathrm{ELBO}(q_\phi)}_{\text{inference gap}}
        = \underbrace{\log p_\theta(x) - \mathrm{ELBO}(q^\star_x)}_{\text{approximation}}
        + \underbrace{\mathrm{ELBO}(q^\star_x) - \mathrm{ELBO}(q_\phi)}_{\text{amortisation}},

    with :math:`\log p_\theta(x)` estimated by the IWAE bound :math:`\mathcal L_K`
    :cite:p:`burda2015importance` with :math:`q^\star_x` as the proposal; the bound with
    the encoder's proposal (the package's
    :meth:`~autoencoders.variational.VAE.log_marginal_likelihood`) is returned too, for
    comparison. Both ELBOs are evaluated with the same
    ``S_eval`` noise draws (common random numbers), so their difference is far less
    noisy than either. All images of a batch are optimised in parallel; every image
    has its own parameters, so the result does not depend on ``batch_size`` beyond the
    noise drawn.

    Parameters
    ----------
    vae : VAE or AdaGVAE
        A trained model (an Ada-GVAE uses its ``.vae``). It runs in eval mode and its
        parameters are not changed; its flags and device are restored.
    x : torch.Tensor
        Images ``[N, ...]``.
    steps : int, default 200
        Optimisation steps per image (``0`` keeps the encoder's :math:`q`).
    lr : float, default 0.05
        Initial Adam learning rate for :math:`\mu` and :math:`\log\sigma^2`.
    S : int, default 8
        Latent samples per image and step.
    S_eval : int, default 100
        Latent samples per image for the two final ELBOs.
    K : int, default 1000
        Importance samples of each IWAE bound.
    seed : int, default 0
        Seeds every draw (CPU generator, and torch's global streams inside
        ``log_marginal_likelihood``, restored afterwards).
    batch_size : int, default 256
        Images optimised at once.
    likelihood : str, Likelihood or callable, optional
        Overrides the model's likelihood.
    device : str or torch.device, optional
        ``None`` means :func:`autoencoders.utils.get_device`.
    progress : bool, default False
        Show a ``tqdm.auto`` bar over the optimisation steps.

    Returns
    -------
    AmortisationGap
        Per-image tensors on the CPU; ``.amortisation``, ``.approximation``,
        ``.inference`` and ``.means()`` give the split.

    Raises
    ------
    ValueError
        If an argument is out of range, or ``x`` is empty, not finite or outside the
        likelihood's support.
    TypeError
        If ``vae`` is not a VAE or ``x`` is not a tensor.
    """
    model = vae
    vae = _the_vae(model, "vae")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor [N, ...], got {type(x).__name__}")
    steps = _int(steps, "steps", 0)
    lr = _positive_float(lr, "lr")
    S, S_eval, K = _int(S, "S", 1), _int(S_eval, "S_eval", 1), _int(K, "K", 1)
    seed = _int(seed, "seed", 0)
    batch_size = _int(batch_size, "batch_size", 1)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    likelihood = vae.resolve_likelihood(likelihood)
    generator = torch.Generator().manual_seed(seed)
    n_batches = math.ceil(len(x) / batch_size) if x.dim() >= 1 else 0
    bar = None
    if progress:
        bar = progress_bar(total=steps * n_batches, desc="optimising q per image", leave=False)
    parts: dict[str, list[torch.Tensor]] = {}
    curve = torch.zeros(steps, dtype=torch.float64)
    n_seen = 0
    try:
        with evaluating(model), _placed(vae, device) as target, torch.enable_grad():
            for xb in _checked_batches(x, batch_size, target, likelihood):
                found = _optimise_batch(vae, xb, steps, lr, S, generator, likelihood, curve, bar)
                mu, log_var = found
                with torch.no_grad():
                    mu0, log_var0 = vae.posterior(xb)
                    eps = _draw(generator, (len(xb), S_eval, vae.latent_dim), mu0)
                    out = {
                        "elbo_encoder": _elbo(vae, xb, mu0, log_var0, eps, likelihood),
                        "elbo_optimised": _elbo(vae, xb, mu, log_var, eps, likelihood),
                        "iwae_optimised": _iwae(vae, xb, mu, log_var, K, generator, likelihood),
                        "mu": mu,
                        "log_var": log_var,
                    }
                    with _forked_rng(seed + n_seen, target):
                        out["iwae_encoder"] = vae.log_marginal_likelihood(
                            xb, K=K, likelihood=likelihood
                        )
                for name, value in out.items():
                    parts.setdefault(name, []).append(value.detach().cpu())
                n_seen += len(xb)
    finally:
        if bar is not None:
            bar.close()
    joined = {name: torch.cat(values) for name, values in parts.items()}
    return AmortisationGap(**joined, curve=curve / max(n_seen, 1))


def _optimise_batch(
    vae: VAE,
    x: torch.Tensor,
    steps: int,
    lr: float,
    S: int,
    generator: torch.Generator,
    likelihood: LikelihoodLike,
    curve: torch.Tensor,
    bar: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on one batch's ``(mu, log_var)`` from the encoder's; the decoder is untouched.

    Gradients are taken with respect to the variational parameters only
    (:func:`torch.autograd.grad`), so no ``.grad`` of the model is written. Adds the
    batch's summed ELBO of every step to ``curve``.
    """
    with torch.no_grad():
        mu0, log_var0 = vae.posterior(x)
    mu = mu0.detach().clone().requires_grad_(True)
    log_var = log_var0.detach().clone().requires_grad_(True)
    if steps == 0:
        return mu.detach(), log_var.detach()
    optimizer = torch.optim.Adam([mu, log_var], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    for t in range(steps):
        eps = _draw(generator, (len(x), S, vae.latent_dim), mu)
        elbo = _elbo(vae, x, mu, log_var, eps, likelihood)
        # a sum, not a mean: each image's gradient is its own, whatever the batch
        grads = torch.autograd.grad(-elbo.sum(), [mu, log_var])
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            raise FloatingPointError(
                f"the ELBO gradient became NaN or inf at step {t}; lower lr (got {lr})"
            )
        mu.grad, log_var.grad = grads
        optimizer.step()
        schedule.step()
        curve[t] += float(elbo.detach().double().sum())
        if bar is not None:
            bar.update(1)
    return mu.detach(), log_var.detach()
