r"""Model-level inference: codes, reconstructions, prior samples and latent paths.

These helpers are what :mod:`autoencoders.viz` and :mod:`autoencoders.metrics` are
built on, and they are usable on their own. Every function that runs a model

* puts it in **eval mode without gradients** and afterwards restores each submodule's
  own ``training`` flag (:func:`evaluating`), so dropout is off and batch-norm
  statistics are not updated, while a submodule deliberately frozen in eval mode stays
  frozen;
* encodes an image with its **mean code**,

  .. math::

      z(x) = \mu_\phi(x) = \mathbb E_{q_\phi(z \mid x)}[z] \;\text{(VAE)}, \qquad
      z(x) = f_\phi(x) \;\text{(AE)},

  where an :class:`~autoencoders.variational.AdaGVAE` encodes single images with its
  ``.vae``;
* turns a decoder output :math:`\hat x = g_\theta(z)` (distribution *parameters*: logits
  for the Bernoulli likelihoods, means for the Gaussian) into an image with the
  **distribution mean** :math:`\mathbb E[x \mid \hat x]` of the model's likelihood
  ``model.likelihood`` (:func:`~autoencoders.likelihoods.distribution_mean`).
  ``likelihood=`` overrides the model's likelihood for one call (``None`` means the
  model's own, as in ``compute_loss``), and ``raw=True`` returns :math:`\hat x` itself.

**Devices.** :func:`encode_mean`, :func:`decode`, :func:`reconstruct` and
:func:`sample_prior` compute where the model is: their inputs are moved to the device of
the model's first parameter (or buffer) and the results stay there, like the output of
``model(x)``. :func:`encode_dataset` has a ``device`` argument and follows the package's
device policy: ``device=None`` means :func:`autoencoders.utils.get_device`
(``$AUTOENCODERS_DEVICE``, else CUDA when available, else the CPU); the model is moved
there for the pass and moved back to where it was afterwards, every batch is moved
there, and the codes come back on the CPU.

:func:`~autoencoders.loss.log_normal_diag`, the diagonal-Gaussian log density that
importance-sampled bounds need, is re-exported here (it is documented in
:mod:`autoencoders.loss`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from . import utils
from .likelihoods import LikelihoodLike, distribution_mean, parameter_shape
from .loss import log_normal_diag as log_normal_diag  # re-export; documented in loss
from .utils import _renamed, torch_rng

__all__ = [
    "evaluating",
    "encode_mean",
    "decode",
    "reconstruct",
    "sample_prior",
    "interpolate",
    "encode_dataset",
]


# ---------------------------------------------------------------------- mode and place
@contextlib.contextmanager
def evaluating(model: Any) -> Iterator[Any]:
    """Run ``model`` in eval mode under :func:`torch.no_grad`, then restore its flags.

    For a :class:`torch.nn.Module` every submodule's own ``training`` flag is saved and
    restored, so mixed train/eval states survive (restoring with
    ``model.train(was_training)`` would unfreeze a submodule deliberately kept in eval
    mode). Another object only needs ``.training`` and ``.train(mode)``; without an
    ``eval`` method it is used as it is, under ``no_grad``. The flags are restored even
    when the body raises.

    Parameters
    ----------
    model : torch.nn.Module or duck-typed model

    Yields
    ------
    model
        The same object, for ``with evaluating(model) as m:``.
    """
    if isinstance(model, nn.Module):
        saved = [(module, module.training) for module in model.modules()]
        model.eval()
        try:
            with torch.no_grad():
                yield model
        finally:
            for module, flag in saved:
                module.training = flag
        return
    if not callable(getattr(model, "eval", None)):
        with torch.no_grad():
            yield model
        return
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def _home(model: Any) -> tuple[torch.device | None, torch.dtype | None]:
    """Device and floating dtype of the model's first parameter or buffer (or ``None``)."""
    if isinstance(model, nn.Module):
        device = utils.model_device(model)
        for tensor in model.parameters():
            if tensor.is_floating_point():
                return device, tensor.dtype
        return device, None
    return None, None


def _resolve(device: str | torch.device | None) -> torch.device:
    """The package's device policy: ``None`` means :func:`autoencoders.utils.get_device`."""
    if device is not None and not isinstance(device, str | torch.device):
        raise TypeError(f"device must be a str, torch.device or None, got {type(device).__name__}")
    return utils.get_device(device)  # CUDA with its index, as parameters report it


@contextlib.contextmanager
def _placed(model: Any, device: str | torch.device | None) -> Iterator[torch.device]:
    """Move ``model`` to the resolved ``device`` for the body, then back to where it was.

    Yields the device the batches must be sent to. An object that is not a
    :class:`torch.nn.Module` cannot be moved; it only gets its batches there.
    """
    target = _resolve(device)
    if not isinstance(model, nn.Module):
        yield target
        return
    found = {t.device for t in (*model.parameters(), *model.buffers())}
    if len(found) > 1:
        raise ValueError(
            f"model has tensors on several devices {sorted(str(d) for d in found)}; it cannot be "
            f"moved to {target} and back as a whole. Put it on one device first"
        )
    home = next(iter(found), None)
    move = home is not None and home != target
    if move:
        model.to(target)
    try:
        yield target
    finally:
        if move:
            model.to(home)


def _part(model: Any, method: str) -> Any:
    """The object whose ``encode``/``decode`` handles single images (Ada-GVAE: its VAE)."""
    net = model
    if getattr(model, "paired", False):
        net = getattr(model, "vae", None)
        if net is None:
            raise TypeError(
                f"model is a paired model ({type(model).__name__}) without a .vae to "
                f"{method} single images"
            )
    if not callable(getattr(net, method, None)):
        raise TypeError(
            f"model must have a {method}(...) method (an AE, VAE or AdaGVAE), got "
            f"{type(model).__name__}"
        )
    return net


def _check_tensor(value: Any, name: str, dims: tuple[int, ...] | None = None) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if dims is not None and value.dim() not in dims:
        raise ValueError(
            f"{name} must have {' or '.join(str(d) for d in dims)} dimensions, got shape "
            f"{list(value.shape)}"
        )
    return value


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _latent_dim(model: Any, latent_dim: int | None = None) -> int:
    """``latent_dim`` if given, else ``model.latent_dim`` (TypeError if there is none)."""
    dim = latent_dim if latent_dim is not None else getattr(model, "latent_dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise TypeError(
            f"{type(model).__name__} has no usable .latent_dim (got {dim!r}); use a VAE or "
            "AdaGVAE, or pass latent_dim= explicitly for a deterministic AE"
        )
    return dim


def _mean_code(out: Any) -> torch.Tensor:
    """``out.mu`` (VAE) or ``out.z`` (AE) of an ``encode`` output."""
    mu = getattr(out, "mu", None)
    code = out.z if mu is None else mu
    if not isinstance(code, torch.Tensor):
        raise TypeError(
            f"encode(x) must return an object with a tensor .mu or .z, got {type(out).__name__}"
        )
    return code


def _image_mean(model: Any, x_hat: torch.Tensor, likelihood: LikelihoodLike | None, raw: Any) -> torch.Tensor:
    """``x_hat`` itself (``raw``) or its distribution mean under the chosen likelihood."""
    if not isinstance(raw, bool):
        raise TypeError(f"raw must be True or False, got {raw!r}")
    if raw:
        return x_hat
    chosen = likelihood if likelihood is not None else getattr(model, "likelihood", "gaussian")
    return distribution_mean(x_hat, chosen)


# ---------------------------------------------------------------------- per batch
def encode_mean(model: Any, x: torch.Tensor) -> torch.Tensor:
    r"""The mean code of each input: :math:`\mu_\phi(x)` for a VAE, :math:`f_\phi(x)` for an AE.

    .. math::

        z(x) = \mathbb E_{q_\phi(z \mid x)}[z] = \mu_\phi(x)

    (``encode(x).mu``); a deterministic AE has no posterior and gives its code
    ``encode(x).z``; an :class:`~autoencoders.variational.AdaGVAE` encodes with its
    ``.vae``. Runs in eval mode without gradients (flags restored afterwards).

    Parameters
    ----------
    model : AE, VAE or AdaGVAE
        Any object with ``encode(x)`` returning ``.mu`` or ``.z``.
    x : torch.Tensor
        Inputs ``[B, ...]``; moved to the model's device.

    Returns
    -------
    torch.Tensor
        Codes ``[B, D]`` on the model's device, without gradient.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor or ``model`` has no ``encode``.
    """
    x = _check_tensor(x, "x")
    encoder = _part(model, "encode")
    device, _ = _home(encoder)
    with evaluating(model):
        return _mean_code(encoder.encode(x if device is None else x.to(device)))


def decode(
    model: Any, z: torch.Tensor, *, likelihood: LikelihoodLike | None = None, raw: bool = False
) -> torch.Tensor:
    r"""Decode codes into images: :math:`\mathbb E[x \mid \hat x]` with :math:`\hat x = g_\theta(z)`.

    .. math::

        \text{bernoulli:}\quad & \sigma(\hat x),\\
        \text{continuous_bernoulli:}\quad & \frac{\sigma(\hat x)}{\tanh(\hat x / 2)} - \frac{1}{\hat x},\\
        \text{gaussian, laplace:}\quad & \hat x.

    Parameters
    ----------
    model : AE, VAE or AdaGVAE
        Any object with ``decode(z)`` returning ``.x_hat``.
    z : torch.Tensor
        Codes ``[N, D]``; moved to the model's device and floating dtype.
    likelihood : str, Likelihood or None, default None
        Whose mean to take; ``None`` means the model's own ``model.likelihood``.
    raw : bool, default False
        Return the decoder output :math:`\hat x` (distribution parameters) instead.

    Returns
    -------
    torch.Tensor
        ``[N, ...]`` on the model's device, without gradient.

    Raises
    ------
    ValueError
        If the likelihood has no known mean (a plain callable): pass ``raw=True`` and
        transform the output yourself.
    """
    z = _check_tensor(z, "z")
    decoder = _part(model, "decode")
    device, dtype = _home(decoder)
    if device is not None:
        z = z.to(device=device, dtype=dtype if z.is_floating_point() and dtype else z.dtype)
    with evaluating(model):
        x_hat = decoder.decode(z).x_hat
    return _image_mean(model, x_hat, likelihood, raw)


def reconstruct(
    model: Any, x: torch.Tensor, *, likelihood: LikelihoodLike | None = None, raw: bool = False
) -> torch.Tensor:
    r"""The reconstruction of ``x``: the decoder's distribution mean at the mean code.

    .. math::

        \tilde x = \mathbb E\big[x \mid \hat x\big], \qquad \hat x = g_\theta\big(z(x)\big),
        \qquad z(x) = \mu_\phi(x) \;\text{(VAE)}, \; f_\phi(x) \;\text{(AE)},

    that is ``distribution_mean(x_hat, model.likelihood)``: :math:`\sigma(\hat x)` for
    a Bernoulli model, :math:`\hat x` for a Gaussian one. Deterministic (no latent
    sample) and in eval mode without gradients; an Ada-GVAE reconstructs single
    images with its ``.vae``.

    Parameters
    ----------
    model : AE, VAE or AdaGVAE
    x : torch.Tensor
        Inputs ``[B, ...]``; moved to the model's device.
    likelihood : str, Likelihood or None, default None
        Overrides ``model.likelihood`` for this call.
    raw : bool, default False
        Return :math:`\hat x` (logits for the Bernoulli likelihoods) instead of the mean.

    Returns
    -------
    torch.Tensor
        ``x.shape``, on the model's device, without gradient.

    Raises
    ------
    ValueError
        If the decoder output does not have the shape of ``x``, or the likelihood has
        no known mean.
    """
    x = _check_tensor(x, "x")
    with evaluating(model):
        x_hat = decode(model, encode_mean(model, x), raw=True)
    # more channels than x for a likelihood with several parameters per pixel
    expected = parameter_shape(likelihood if likelihood is not None else getattr(model, "likelihood", "gaussian"), x.shape)
    if x_hat.shape != expected:
        wanted = f"the shape of x = {list(x.shape)}" if expected == x.shape else f"shape {list(expected)}"
        raise ValueError(f"the reconstruction must have {wanted}, got {list(x_hat.shape)}")
    return _image_mean(model, x_hat, likelihood, raw)


def sample_prior(
    model: Any,
    n: int,
    rng: int | torch.Generator | None = None,
    *,
    likelihood: LikelihoodLike | None = None,
    raw: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Decode ``n`` draws from the prior: :math:`\mathbb E[x \mid g_\theta(z)]`, :math:`z \sim \mathcal N(0, I_D)`.

    ``z`` is drawn **on the CPU** (from ``rng`` when given), then moved to the
    model's device, so a seed gives the same samples on any device.

    Parameters
    ----------
    model : VAE or AdaGVAE
        Any built model with ``.latent_dim`` and ``decode``.
    n : int
        Number of samples, ``>= 1``.
    rng : int or torch.Generator, optional
        A seed or a CPU generator (``generator=`` is its earlier name).
    likelihood : str, Likelihood or None, default None
        Overrides ``model.likelihood``.
    raw : bool, default False
        Return the decoder outputs :math:`\hat x` instead of the means.

    Returns
    -------
    torch.Tensor
        ``[n, ...]`` on the model's device, without gradient.

    Raises
    ------
    TypeError
        If the model has no ``.latent_dim`` (a deterministic AE has no prior), ``n`` is
        not an int or ``rng`` is neither a seed nor a ``torch.Generator``.
    ValueError
        If ``n < 1`` or ``rng`` is a generator on another device than the CPU.
    """
    n = _check_int(n, "n", 1)
    dim = _latent_dim(model)
    rng = torch_rng(_renamed(rng, generator, "rng", "generator"))
    if rng is not None and rng.device.type != "cpu":
        raise ValueError(f"rng must be a CPU generator, got one on {rng.device}")
    z = torch.randn(n, dim, generator=rng)
    return decode(model, z, likelihood=likelihood, raw=raw)


def interpolate(
    z_a: torch.Tensor, z_b: torch.Tensor, steps: int, method: str = "linear"
) -> torch.Tensor:
    r"""Points on a path from ``z_a`` to ``z_b`` at ``t = 0, 1/(steps-1), ..., 1``.

    .. math::

        \text{linear:}\quad z(t) = (1 - t)\, z_a + t\, z_b \\
        \text{slerp:}\quad z(t) = \frac{\sin((1-t)\,\Omega)}{\sin\Omega}\, z_a
            + \frac{\sin(t\,\Omega)}{\sin\Omega}\, z_b, \qquad
            \cos\Omega = \frac{z_a \cdot z_b}{\lVert z_a\rVert\,\lVert z_b\rVert}

    Spherical interpolation :cite:p:`white2016sampling` follows a
    great circle: for codes of equal norm every point keeps that norm, whereas the
    linear midpoint of two independent draws from :math:`\mathcal N(0, I_D)` has about
    :math:`1/\sqrt 2` of their norm for large :math:`D`, a norm the prior rarely
    produces. When :math:`\sin\Omega \approx 0` (parallel or anti-parallel codes, or
    a zero code) the great circle is undefined and the linear path is used for that pair.

    Parameters
    ----------
    z_a, z_b : torch.Tensor
        Codes ``[K, D]`` (or ``[D]``), equal shapes.
    steps : int
        Number of points, ``>= 2`` (both ends included).
    method : {'linear', 'slerp'}

    Returns
    -------
    torch.Tensor
        ``[K, steps, D]`` (``[steps, D]`` for 1-D inputs), on the device of ``z_a``.
    """
    steps = _check_int(steps, "steps", 2)
    if method not in ("linear", "slerp"):
        raise ValueError(f"method must be 'linear' or 'slerp', got {method!r}")
    if not isinstance(z_a, torch.Tensor) or not isinstance(z_b, torch.Tensor):
        raise TypeError(f"z_a and z_b must be tensors, got {type(z_a).__name__} and {type(z_b).__name__}")
    if z_a.shape != z_b.shape or z_a.dim() not in (1, 2):
        raise ValueError(f"z_a and z_b must both be [K, D] or [D], got {list(z_a.shape)} and {list(z_b.shape)}")
    single = z_a.dim() == 1
    a, b = (z_a.unsqueeze(0), z_b.unsqueeze(0)) if single else (z_a, z_b)
    t = torch.linspace(0.0, 1.0, steps, dtype=a.dtype, device=a.device).view(1, steps, 1)
    a, b = a.unsqueeze(1), b.to(a.device).unsqueeze(1)
    path = (1 - t) * a + t * b
    if method == "slerp":
        norms = a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)
        cos = ((a * b).sum(-1, keepdim=True) / norms.clamp_min(1e-12)).clamp(-1.0, 1.0)
        omega = torch.arccos(cos)
        sin = torch.sin(omega)
        ok = (sin.abs() > 1e-6) & (norms > 0)
        safe = torch.where(ok, sin, torch.ones_like(sin))
        spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / safe
        path = torch.where(ok, spherical, path)
    return path[0] if single else path


# ---------------------------------------------------------------------- whole datasets
def _batches(data: Any, batch_size: int, name: str = "data") -> Iterator[tuple[torch.Tensor, str]]:
    """Yield ``(batch, where)`` from a tensor/array [N, ...] or an iterable of batches.

    ``where`` locates the batch in ``data`` (rows or batch index) for error messages.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        if data.dim() < 1 or data.shape[0] == 0:
            raise ValueError(
                f"{name} must be a non-empty tensor [N, ...] with N >= 1, got shape {list(data.shape)}"
            )
        n = data.shape[0]
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield data[start:stop], f"rows {start}..{stop - 1}"
        return
    if not isinstance(data, Iterable):
        raise TypeError(
            f"{name} must be a tensor/array [N, ...] or an iterable of batches "
            f"(tensors or (x, ...) tuples), got {type(data).__name__}"
        )
    for i, batch in enumerate(data):
        x = batch[0] if isinstance(batch, tuple | list) else batch
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"each batch of {name} must be a tensor or (tensor, ...), got {type(x).__name__}")
        yield x, f"batch {i}"


def _check_finite_input(x: torch.Tensor, name: str, where: str) -> None:
    """Raise if a floating batch holds NaN or inf (one reduction; integers cannot)."""
    if (x.is_floating_point() or x.is_complex()) and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"{name} contains NaN or inf: {bad} non-finite values in {where} "
            f"(shape {list(x.shape)}); the metric needs finite inputs. Clean or drop "
            "those examples first"
        )


def _encode_batches(
    model: Any, data: Any, batch_size: int, device: str | torch.device | None, name: str = "data"
) -> Iterator[Any]:
    """Yield ``encode`` outputs batch by batch (package-internal; see :func:`encode_dataset`).

    The model is in eval mode without gradients and on the resolved ``device`` while the
    generator runs; consume it inside ``contextlib.closing`` so that an exception in the
    consumer restores the model's flags and device at once. Each batch of ``data``
    (called ``name`` in errors) is checked for NaN and inf on the device.
    """
    encoder = _part(model, "encode")
    with evaluating(model), _placed(model, device) as target:
        for x, where in _batches(data, batch_size, name):
            x = x.to(target)
            _check_finite_input(x, name, where)
            yield encoder.encode(x)


def _encode_means(model: Any, data: Any, batch_size: int, device: Any, name: str) -> torch.Tensor:
    """:func:`encode_dataset` with the input's argument name for error messages."""
    codes = []
    with contextlib.closing(_encode_batches(model, data, batch_size, device, name)) as outputs:
        for out in outputs:
            codes.append(_mean_code(out).detach().cpu())
    if not codes:
        raise ValueError(f"{name} yielded no batches; expected at least one example")
    return torch.cat(codes, dim=0)


def encode_dataset(
    model: Any,
    images: Any,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    r"""Encode a whole dataset to its mean codes, in batches.

    The code of an image is :func:`encode_mean`'s: the encoder mean
    :math:`\mu_\phi(x) = \mathbb{E}_{q_\phi(z|x)}[z]` for a VAE (``encode(x).mu``), the
    deterministic code ``encode(x).z`` for an AE, and the inner VAE's mean for an
    Ada-GVAE (``model.vae``). The model is switched to eval mode for the pass and every
    submodule's previous mode is restored afterwards.

    Parameters
    ----------
    model : AE, VAE or AdaGVAE
        Any object with ``encode(x)`` returning ``.mu`` or ``.z`` (or with ``paired``
        true and a ``.vae`` that has one).
    images : Tensor or ndarray [N, ...], or an iterable of batches
        The inputs; an iterable (e.g. a DataLoader) may yield tensors or ``(x, ...)``.
    batch_size : int, default 1024
        Rows per forward pass when ``images`` is a tensor.
    device : str or torch.device, optional
        Where the computation runs. ``None`` means
        :func:`autoencoders.utils.get_device` (``$AUTOENCODERS_DEVICE``, else CUDA
        when available). The model is moved there for the pass and back to where it
        was afterwards; the batches are moved there.

    Returns
    -------
    Tensor [N, D]
        The codes, on the CPU, without gradient.

    Raises
    ------
    ValueError
        If ``images`` is empty or contains NaN or inf (checked batch by batch; the
        message names ``images`` and the rows or batch), or the model's tensors are
        spread over several devices.
    """
    return _encode_means(model, images, batch_size, device, "images")
