r"""Ready-made models and training recipes that several chapters share.

The chapters teach one idea each; the set-up around it (the same MLP VAE, the
seed-loader-fit ritual, the per-image error, a linear probe of the codes, the labels
of a latent traversal) is written once here, in the manner of d2l's ``d2l`` package,
so that a notebook cell reads like the idea it teaches::

    model = mlp_vae(20, likelihood="bernoulli")
    history = train(model, x_train, epochs=10, seed=0)
    print(squared_error(x_test, reconstruct(model, x_test)))

Everything here is built from the package's public pieces (:mod:`autoencoders.nets`,
:func:`~autoencoders.train.fit`, :mod:`autoencoders.metrics`), so a student can read
each recipe and write a variant.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import TensorLoader
from .history import History
from .likelihoods import LikelihoodLike, parameter_shape
from .nets import ConvDecoder64, ConvEncoder64, MLPDecoder, MLPEncoder
from .train import fit
from .utils import _check_positive, seed_everything
from .vanilla import AE
from .variational import VAE

__all__ = [
    "mlp_ae",
    "mlp_vae",
    "conv_vae64",
    "train",
    "squared_error",
    "probe_accuracy",
    "traversal_labels",
]


# ------------------------------------------------------------------------------- models
@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Draw initial weights from ``torch.manual_seed(seed)`` inside a forked generator
    state, so the caller's random streams do not move (no-op for ``None``)."""
    if seed is None:
        yield
        return
    seed = _check_positive(seed, "seed", integer=True, allow_zero=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def mlp_ae(
    latent_dim: int,
    *,
    hidden: Sequence[int] = (400,),
    likelihood: LikelihoodLike = "gaussian",
    in_shape: tuple[int, ...] = (1, 28, 28),
    seed: int | None = None,
) -> AE:
    r"""The book's MLP autoencoder: :math:`784 \to 400 \to D \to 400 \to 784` by default.

    Softplus hidden units; the decoder outputs distribution parameters for
    ``likelihood`` (no final activation): one map per image channel, or
    ``parameter_shape(likelihood, in_shape)`` for a likelihood with several
    parameters per pixel (the 8-bit ones).

    Parameters
    ----------
    latent_dim : int
        Code size :math:`D`.
    hidden : sequence of int, default (400,)
        Hidden widths of the encoder; the decoder mirrors them.
    likelihood : str, Likelihood or callable, default ``'gaussian'``
        Stored on the model (:attr:`~autoencoders.vanilla.AE.likelihood`).
    in_shape : tuple of int, default (1, 28, 28)
        Shape of one input image.
    seed : int, optional
        Seed of the initial weights. They are drawn from a private generator state,
        so the global random streams are left as they were; ``None`` draws them from
        the global stream as ``torch.nn`` layers do.
    """
    hidden = tuple(hidden)
    with _seeded(seed):
        return AE(
            MLPEncoder(in_shape=in_shape, hidden=hidden, latent_dim=latent_dim),
            MLPDecoder(latent_dim, out_shape=tuple(parameter_shape(likelihood, in_shape)), hidden=hidden[::-1]),
            likelihood=likelihood,
        )


def mlp_vae(
    latent_dim: int,
    *,
    hidden: Sequence[int] = (400,),
    likelihood: LikelihoodLike = "gaussian",
    in_shape: tuple[int, ...] = (1, 28, 28),
    seed: int | None = None,
) -> VAE:
    r"""The book's MLP VAE: the encoder's last hidden layer feeds the
    :math:`\mu` and :math:`\log\sigma^2` heads, and the decoder mirrors the encoder.

    Parameters are those of :func:`mlp_ae`. The posterior heads are lazy until the
    first batch (:meth:`~autoencoders._base.BaseAutoencoder.build` or :func:`train`);
    with ``seed`` they are materialised at once, so every weight is seeded.
    """
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError("hidden must have at least one layer for a VAE (the heads need features), got ()")
    with _seeded(seed):
        model = VAE(
            MLPEncoder(in_shape=in_shape, hidden=hidden),
            MLPDecoder(latent_dim, out_shape=tuple(parameter_shape(likelihood, in_shape)), hidden=hidden[::-1]),
            latent_dim,
            likelihood=likelihood,
        )
        if seed is not None:
            model.build(torch.zeros(1, *in_shape))
    return model


def conv_vae64(
    latent_dim: int = 10,
    *,
    likelihood: LikelihoodLike = "bernoulli",
    activation: type[nn.Module] = nn.LeakyReLU,
    seed: int | None = None,
) -> VAE:
    """The convolutional VAE of disentanglement_lib for 64 x 64 sprites (chapters 6-7).

    :class:`~autoencoders.nets.ConvEncoder64` and
    :class:`~autoencoders.nets.ConvDecoder64` with leaky ReLUs (chapter 6 explains the
    choice) and the Bernoulli likelihood. ``seed`` seeds every initial weight (the
    model is then built at once), as in :func:`mlp_vae`.
    """
    with _seeded(seed):
        model = VAE(
            ConvEncoder64(activation=activation),
            ConvDecoder64(latent_dim, activation=activation),
            latent_dim,
            likelihood=likelihood,
        )
        if seed is not None:
            model.build(torch.zeros(1, 1, 64, 64))
    return model


# ----------------------------------------------------------------------------- training
def train(
    model: nn.Module,
    data: torch.Tensor | Iterable[Any],
    *,
    epochs: int | None,
    batch_size: int = 128,
    seed: int = 0,
    lr: float = 1e-3,
    **fit_kwargs: Any,
) -> History:
    """Seed everything, batch ``data`` and :func:`~autoencoders.train.fit` the model.

    The ritual every chapter repeats, in one call: :func:`seed_everything` (so the
    run is reproducible), a shuffling :class:`~autoencoders.data.TensorLoader` drawn
    from the seeded generator when ``data`` is a tensor, then ``fit``.

    ``seed`` controls the batches and everything drawn during training; the initial
    weights are the model's own (pass ``seed=`` to :func:`mlp_vae` and friends to
    seed them too).

    Parameters
    ----------
    model : BaseAutoencoder
        Trained in place, with its own likelihood unless ``loss_kwargs`` overrides it.
    data : torch.Tensor or iterable of batches
        Training images ``[N, ...]`` (batched here), or a ready loader such as
        :class:`~autoencoders.weak_pairs.WeakPairs` (passed to ``fit`` as it is).
    epochs : int or None
        As in ``fit`` (``None`` with ``max_steps=``).
    batch_size : int, default 128
        Used only when ``data`` is a tensor.
    seed : int, default 0
        Seeds Python, NumPy and torch, and the loader's shuffling.
    lr : float, default 1e-3
        Learning rate of ``fit``'s default Adam.
    **fit_kwargs
        Anything else ``fit`` takes: ``loss_kwargs``, ``eval_data``, ``callbacks``,
        ``scheduler``, ``max_steps``, ``progress``, ...

    Returns
    -------
    History
    """
    generator = seed_everything(seed)
    if isinstance(data, torch.Tensor):
        data = TensorLoader(data, batch_size=_check_positive(batch_size, "batch_size", integer=True),
                            rng=generator)
    return fit(model, data, epochs=epochs, lr=lr, **fit_kwargs)


# ----------------------------------------------------------------------------- measures
def squared_error(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    r"""Squared error summed over pixels and averaged over images,
    :math:`\frac1N \sum_n \lVert x_n - \hat x_n \rVert^2`, the reconstruction error the
    chapters compare models with.

    Raises
    ------
    ValueError
        If the shapes differ (nothing is broadcast).
    """
    if x.shape != x_hat.shape:
        raise ValueError(f"x_hat must have the shape of x = {list(x.shape)}, got {list(x_hat.shape)}")
    return ((x - x_hat) ** 2).flatten(1).sum(1).mean().item()


def probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    max_iter: int = 1_000,
) -> float:
    """Test accuracy of a linear probe: multinomial logistic regression from features
    (codes, or pixels) to labels, fitted on the training pairs.

    A linear probe measures how much label information a representation holds in a
    form a linear classifier can read. Features are standardised with the training
    statistics first (scikit-learn's ``StandardScaler`` and ``LogisticRegression``).

    Returns
    -------
    float
        Fraction of test labels predicted correctly.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def as_numpy(t: Any) -> np.ndarray:
        return t.detach().flatten(1).cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    probe.fit(as_numpy(train_features), as_numpy(train_labels.reshape(-1, 1)).ravel())
    return float(probe.score(as_numpy(test_features), as_numpy(test_labels.reshape(-1, 1)).ravel()))


def traversal_labels(
    kl_per_dim: torch.Tensor,
    code_to_factor: Sequence[int],
    factor_names: Sequence[str],
    *,
    threshold: float = 0.1,
    short: bool = False,
) -> tuple[list[int], list[str]]:
    """Order and label the latent dimensions for a traversal figure.

    Dimensions are sorted by their mean KL (most informative first); each label names
    the factor that the dimension's MIG matches (``code_to_factor[j]``), or
    ``'unused'`` when its KL is below ``threshold`` nats, and gives the KL::

        dims, labels = traversal_labels(kl, mig_details(codes, factors).code_to_factor,
                                        ds.factor_names)
        plot_latent_traversal(vae, x, dims=dims, dim_labels=labels)

    With ``short=True`` each label is the factor's name alone (or ``'unused'``), for
    small panels such as those of
    :func:`~autoencoders.viz.animate_latent_traversal`.

    Returns
    -------
    (list of int, list of str)
        The dimension order and one label per dimension (two lines unless ``short``).
    """
    kl = torch.as_tensor(kl_per_dim, dtype=torch.float64).flatten()
    if len(code_to_factor) != kl.numel():
        raise ValueError(
            f"code_to_factor must have one entry per latent dimension ({kl.numel()}), got {len(code_to_factor)}"
        )
    order = torch.argsort(kl, descending=True).tolist()
    labels = []
    for j in order:
        f = int(code_to_factor[j])
        used = kl[j] > threshold and 0 <= f < len(factor_names)
        name = factor_names[f] if used else "unused"
        labels.append(name if short else f"z{j}: {name}\nKL {kl[j]:.2f}")
    return order, labels
