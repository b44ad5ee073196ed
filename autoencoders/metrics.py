"""Disentanglement and latent-usage metrics, computed from codes, never per example.

Every score here follows the definition in its paper and the settings of
disentanglement_lib (Locatello et al. 2019). The few deliberate deviations are listed in
the docstrings (the DCI importance model and the logistic-regression iteration cap).

Two kinds of input occur:

* **codes and labels**: ``codes`` [N, D] (encoder means, see :func:`encode_dataset`)
  and integer ``factors`` [N, F] (ground-truth factor indices). Used by :func:`mig`,
  :func:`dci` and :func:`shared_dim_accuracy`.
* **a representation function**: ``represent(factors [N, F] int) -> codes [N, D]``
  plus ``factor_sizes``. :func:`factor_vae_score` and :func:`beta_vae_score` must
  choose which factors to hold fixed, so they generate the factors themselves, all at
  once, and call ``represent`` on chunks of a few thousand rows.
  :func:`make_represent` turns a model and a renderer into such a function.

:func:`active_units` and :func:`kl_per_dimension` measure how many latent dimensions a
VAE uses (posterior collapse, chapter 5).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from sklearn.metrics import mutual_info_score

__all__ = [
    "ActiveUnits",
    "active_units",
    "beta_vae_score",
    "dci",
    "encode_dataset",
    "factor_vae_score",
    "kl_per_dimension",
    "make_represent",
    "mig",
    "shared_dim_accuracy",
]

ArrayLike = np.ndarray | torch.Tensor
Represent = Callable[[np.ndarray], ArrayLike]
DCIModel = Literal["extra_trees", "random_forest", "lasso", "gbt"]


# ----------------------------------------------------------------------------- encoding


def _encoder_of(model: Any) -> Any:
    """Ada-GVAE encodes single images through its inner VAE."""
    return model.vae if getattr(model, "paired", False) else model


def _default_device(model: Any) -> torch.device:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Put ``model`` in eval mode and restore every submodule's own flag afterwards.

    Restoring with ``model.train(was_training)`` would also flip submodules the user
    had deliberately frozen in eval mode, so each module's flag is saved.
    """
    if isinstance(model, torch.nn.Module):
        saved = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            yield
        finally:
            for m, flag in saved:
                m.training = flag
    else:
        was_training = bool(getattr(model, "training", False))
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)


def _batches(
    data: Any, batch_size: int, name: str = "data"
) -> Iterator[tuple[torch.Tensor, str]]:
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
                f"{name} must be a non-empty tensor [N, ...] with N >= 1, "
                f"got shape {list(data.shape)}"
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
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"each batch of {name} must be a tensor or (tensor, ...), got {type(x).__name__}"
            )
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
    model: Any, data: Any, batch_size: int, device: Any, name: str = "data"
) -> Iterator[Any]:
    """Yield ``encode`` outputs batch by batch, in eval mode and without gradients.

    Each batch of ``data`` (called ``name`` in errors) is checked for NaN and inf on
    the encoding device first.
    """
    encoder = _encoder_of(model)
    if not callable(getattr(encoder, "encode", None)):
        raise TypeError(f"model must have an encode(x) method, got {type(model).__name__}")
    dev = torch.device(device) if device is not None else _default_device(encoder)
    with _eval_mode(model), torch.no_grad():
        for x, where in _batches(data, batch_size, name):
            x = x.to(dev)
            _check_finite_input(x, name, where)
            yield encoder.encode(x)


def _encode_means(
    model: Any, data: Any, batch_size: int, device: Any, name: str
) -> torch.Tensor:
    """:func:`encode_dataset` with the input's argument name for error messages."""
    codes = []
    for out in _encode_batches(model, data, batch_size, device, name):
        mu = getattr(out, "mu", None)
        codes.append((mu if mu is not None else out.z).detach().cpu())
    if not codes:
        raise ValueError(f"{name} yielded no batches; expected at least one example")
    return torch.cat(codes, dim=0)


def encode_dataset(
    model: Any,
    images: Any,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    r"""Encode a whole dataset to its code means, in batches.

    The code of an image is the encoder mean :math:`\mu_\phi(x) = \mathbb{E}_{q_\phi(z|x)}[z]`
    for a VAE (``encode(x).mu``), the deterministic code ``encode(x).z`` for an AE, and
    the inner VAE's mean for an Ada-GVAE (``model.vae``). The model is switched to eval
    mode for the pass and every submodule's previous mode is restored afterwards.

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
        Where the batches are sent; defaults to the device of the model's parameters
        (CPU for a model without parameters).

    Returns
    -------
    Tensor [N, D]
        The codes, on the CPU, without gradient.

    Raises
    ------
    ValueError
        If ``images`` is empty or contains NaN or inf (checked batch by batch; the
        message names ``images`` and the rows or batch).
    """
    return _encode_means(model, images, batch_size, device, "images")


def make_represent(
    model: Any,
    render: Callable[[np.ndarray], ArrayLike],
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """Build ``represent(factors) -> codes`` for the FactorVAE and BetaVAE scores.

    Parameters
    ----------
    model : AE, VAE or AdaGVAE
        Encoded with :func:`encode_dataset`.
    render : callable
        ``render(factors [N, F] int) -> images [N, ...]``, e.g. a dataset's ``images``.
    batch_size, device
        Passed to :func:`encode_dataset`.

    Returns
    -------
    callable
        ``represent(factors [N, F]) -> ndarray [N, D]`` (float64).
    """

    def represent(factors: np.ndarray) -> np.ndarray:
        images = render(factors)
        return encode_dataset(model, images, batch_size, device).double().numpy()

    return represent


# ----------------------------------------------------------------------------- validation


def _as_codes(codes: ArrayLike, name: str = "codes") -> np.ndarray:
    if isinstance(codes, torch.Tensor):
        codes = codes.detach().cpu().numpy()
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] < 2 or codes.shape[1] < 1:
        raise ValueError(
            f"{name} must have shape [N, D] with N >= 2, D >= 1, got {list(codes.shape)}"
        )
    if not np.issubdtype(codes.dtype, np.number) or np.issubdtype(codes.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real-valued, got dtype {codes.dtype}")
    codes = codes.astype(np.float64)
    if not np.isfinite(codes).all():
        bad = ~np.isfinite(codes)
        raise ValueError(
            f"{name} must be finite, got {int(bad.sum())} non-finite values (NaN or inf) "
            f"in dimensions {np.flatnonzero(bad.any(axis=0)).tolist()}"
        )
    return codes


def _as_factors(factors: ArrayLike, n: int, name: str = "factors") -> np.ndarray:
    if isinstance(factors, torch.Tensor):
        factors = factors.detach().cpu().numpy()
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] < 1:
        raise ValueError(f"{name} must have shape [N, F] with F >= 1, got {list(factors.shape)}")
    if factors.shape[0] != n:
        raise ValueError(f"{name} must have N = {n} rows like the codes, got {factors.shape[0]}")
    if not (np.issubdtype(factors.dtype, np.integer) or factors.dtype == np.bool_):
        raise TypeError(f"{name} must hold integer factor indices, got dtype {factors.dtype}")
    return factors.astype(np.int64)


def _as_sizes(factor_sizes: Sequence[int]) -> np.ndarray:
    sizes = np.asarray(factor_sizes)
    if (
        sizes.ndim != 1
        or sizes.size < 1
        or not np.issubdtype(sizes.dtype, np.integer)
        or (sizes < 1).any()
    ):
        raise ValueError(
            f"factor_sizes must be a non-empty sequence of positive ints, got {factor_sizes!r}"
        )
    return sizes.astype(np.int64)


def _as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator or a non-negative int seed, got {rng!r}")


def _positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _represent_chunked(represent: Represent, factors: np.ndarray, chunk_size: int) -> np.ndarray:
    """Call ``represent`` on row chunks of ``factors`` [M, F] and check what comes back."""
    out = []
    for start in range(0, factors.shape[0], chunk_size):
        rows = factors[start : start + chunk_size]
        codes = represent(rows)
        if isinstance(codes, torch.Tensor):
            codes = codes.detach().cpu().numpy()
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim != 2 or codes.shape[0] != rows.shape[0]:
            raise ValueError(
                f"represent must return codes of shape [{rows.shape[0]}, D] for "
                f"{rows.shape[0]} factor rows, got {list(codes.shape)}"
            )
        if not np.isfinite(codes).all():
            bad = ~np.isfinite(codes)
            raise ValueError(
                f"represent returned non-finite codes (NaN or inf): {int(bad.sum())} values "
                f"in dimensions {np.flatnonzero(bad.any(axis=0)).tolist()} for factor rows "
                f"{start}..{start + rows.shape[0] - 1}; the score needs finite codes "
                "(has the model diverged?)"
            )
        out.append(codes)
    return np.concatenate(out, axis=0)


# ----------------------------------------------------------------------------- MIG


def _histogram_discretize(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """Per-dimension equal-width bins, exactly as disentanglement_lib's discretizer."""
    out = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], n_bins)[1]
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def mig(
    codes: ArrayLike,
    factors: ArrayLike,
    n_bins: int = 20,
    return_details: bool = False,
) -> float | tuple[float, dict[str, np.ndarray]]:
    r"""Mutual Information Gap (Chen et al. 2018).

    Each code dimension is discretised into ``n_bins`` equal-width bins; then

    .. math::

        \mathrm{MIG} = \frac{1}{F} \sum_{k=1}^{F} \frac{1}{H(v_k)}
        \Big( I(z_{j^{(k)}}; v_k) - \max_{j \ne j^{(k)}} I(z_j; v_k) \Big),
        \qquad j^{(k)} = \arg\max_j I(z_j; v_k),

    with the plug-in mutual information of ``sklearn.metrics.mutual_info_score`` and
    the plug-in entropy :math:`H(v_k) = I(v_k; v_k)` (nats; the ratio is unit-free).

    Parameters
    ----------
    codes : array or Tensor [N, D]
        Code means, D >= 2.
    factors : integer array or Tensor [N, F]
        Ground-truth factor indices; no factor may be constant.
    n_bins : int, default 20
        Histogram bins per code dimension (disentanglement_lib's value).
    return_details : bool, default False
        Also return a dict with ``mi`` [D, F], ``entropy`` [F], ``gap`` [F] (the
        normalised gap per factor) and ``code_to_factor`` [D] (each code dimension's
        argmax-MI factor, used by :func:`shared_dim_accuracy`).

    Returns
    -------
    float, or (float, dict)

    Raises
    ------
    ValueError
        On bad shapes, D < 2, non-finite codes or a constant factor.
    """
    z = _as_codes(codes)
    v = _as_factors(factors, z.shape[0])
    n_bins = _positive_int(n_bins, "n_bins")
    if z.shape[1] < 2:
        raise ValueError(f"codes must have D >= 2 dimensions for a gap, got D = {z.shape[1]}")
    discrete = _histogram_discretize(z, n_bins)
    d, f = z.shape[1], v.shape[1]
    mi = np.array(
        [[mutual_info_score(v[:, k], discrete[:, j]) for k in range(f)] for j in range(d)]
    )
    entropy = np.array([mutual_info_score(v[:, k], v[:, k]) for k in range(f)])
    if (entropy <= 0).any():
        raise ValueError(
            f"factors must vary; constant factor columns: {np.flatnonzero(entropy <= 0).tolist()}"
        )
    top = np.sort(mi, axis=0)[::-1]
    gap = (top[0] - top[1]) / entropy
    score = float(gap.mean())
    if not return_details:
        return score
    return score, {"mi": mi, "entropy": entropy, "gap": gap, "code_to_factor": mi.argmax(axis=1)}


# ----------------------------------------------------------------------------- FactorVAE


def factor_vae_score(
    represent: Represent,
    factor_sizes: Sequence[int],
    rng: np.random.Generator | int,
    batch_size: int = 64,
    n_train: int = 10000,
    n_eval: int = 5000,
    n_var_est: int = 10000,
    prune_threshold: float = 0.05,
    chunk_size: int = 4096,
) -> dict[str, Any]:
    r"""FactorVAE score (Kim & Mnih 2018), with disentanglement_lib's settings.

    The global scale :math:`s_j` of each code dimension is the standard deviation over
    ``n_var_est`` random points; dimensions with :math:`s_j <` ``prune_threshold`` are
    dropped. One *vote* picks a factor :math:`k` uniformly, draws ``batch_size`` points
    that share one random value of :math:`k`, and records

    .. math::

        d = \arg\min_{j \,\text{active}} \frac{\widehat{\mathrm{Var}}_{\text{batch}}(z_j)}{s_j^2}.

    The classifier maps each dimension :math:`d` to the factor that voted for it most
    (majority vote on ``n_train`` votes); the score is its accuracy on ``n_eval`` fresh
    votes. Variances use ``ddof=1`` as disentanglement_lib does.

    Parameters
    ----------
    represent : callable
        ``represent(factors [M, F] int64) -> codes [M, D]``; called on at most
        ``chunk_size`` rows at a time. Non-finite codes (NaN or inf) raise
        ``ValueError`` instead of being pruned as a dimension without variance.
    factor_sizes : sequence of int [F]
        Number of values of each factor; factors are drawn uniformly and independently.
    rng : numpy Generator or int
        Randomness for the factors (an int seeds a new Generator).
    batch_size, n_train, n_eval, n_var_est : int
        disentanglement_lib's 64, 10000, 5000, 10000 by default.
    prune_threshold : float, default 0.05
        Minimum global standard deviation of an active dimension.
    chunk_size : int, default 4096
        Rows per ``represent`` call (rounded to whole votes).

    Returns
    -------
    dict
        ``train_accuracy``, ``eval_accuracy`` (floats in [0, 1]) and
        ``num_active_dims``; when every dimension is pruned both accuracies are 0 and
        a ``note`` says why.
    """
    sizes = _as_sizes(factor_sizes)
    gen = _as_rng(rng)
    batch_size = _positive_int(batch_size, "batch_size", 2)
    n_train = _positive_int(n_train, "n_train")
    n_eval = _positive_int(n_eval, "n_eval")
    n_var_est = _positive_int(n_var_est, "n_var_est", 2)
    chunk_size = _positive_int(chunk_size, "chunk_size")
    if not prune_threshold >= 0:
        raise ValueError(f"prune_threshold must be >= 0, got {prune_threshold!r}")

    global_var = _represent_chunked(
        represent, gen.integers(0, sizes, size=(n_var_est, sizes.size)), chunk_size
    )
    global_var = global_var.var(axis=0, ddof=1)
    active = np.sqrt(global_var) >= prune_threshold
    if not active.any():
        return {
            "train_accuracy": 0.0,
            "eval_accuracy": 0.0,
            "num_active_dims": 0,
            "note": f"all {global_var.size} code dimensions have std < {prune_threshold}",
        }

    def votes(n_votes: int) -> np.ndarray:
        """Vote counts [F, D_active] from n_votes fixed-factor batches."""
        k = gen.integers(0, sizes.size, size=n_votes)
        fs = gen.integers(0, sizes, size=(n_votes, batch_size, sizes.size))
        fs[np.arange(n_votes), :, k] = gen.integers(0, sizes[k])[:, None]
        per_chunk = max(1, chunk_size // batch_size)
        argmins = []
        for start in range(0, n_votes, per_chunk):
            block = fs[start : start + per_chunk]
            z = _represent_chunked(
                represent, block.reshape(-1, sizes.size), block.shape[0] * batch_size
            )
            if z.shape[1] != global_var.size:
                raise ValueError(
                    f"represent returned D = {z.shape[1]}, earlier D = {global_var.size}"
                )
            local = z[:, active].reshape(block.shape[0], batch_size, -1).var(axis=1, ddof=1)
            argmins.append(np.argmin(local / global_var[active], axis=1))
        n_active = int(active.sum())
        flat = k * n_active + np.concatenate(argmins)
        return np.bincount(flat, minlength=sizes.size * n_active).reshape(sizes.size, n_active)

    train_votes = votes(n_train)
    classifier = train_votes.argmax(axis=0)
    cols = np.arange(train_votes.shape[1])
    eval_votes = votes(n_eval)
    return {
        "train_accuracy": float(train_votes[classifier, cols].sum() / train_votes.sum()),
        "eval_accuracy": float(eval_votes[classifier, cols].sum() / eval_votes.sum()),
        "num_active_dims": int(active.sum()),
    }


# ----------------------------------------------------------------------------- BetaVAE


def beta_vae_score(
    represent: Represent,
    factor_sizes: Sequence[int],
    rng: np.random.Generator | int,
    batch_size: int = 64,
    n_train: int = 10000,
    n_eval: int = 5000,
    chunk_size: int = 4096,
) -> dict[str, float]:
    r"""BetaVAE score (Higgins et al. 2017), with disentanglement_lib's settings.

    One training point picks a factor :math:`k` uniformly and ``batch_size`` pairs
    :math:`(v^{(1)}_b, v^{(2)}_b)` drawn independently except that they share factor
    :math:`k`. Its feature vector and label are

    .. math::

        x = \frac{1}{B} \sum_{b=1}^{B} \big| z(v^{(1)}_b) - z(v^{(2)}_b) \big| \in \mathbb{R}^D,
        \qquad y = k.

    A logistic regression (scikit-learn, L2, ``C=1``) is fitted on ``n_train`` points
    and scored on ``n_eval`` fresh ones. Deviation: ``max_iter=1000`` instead of
    scikit-learn's 100 so that lbfgs converges on unscaled codes.

    Parameters
    ----------
    represent : callable
        ``represent(factors [M, F] int64) -> codes [M, D]``; non-finite codes (NaN
        or inf) raise ``ValueError``.
    factor_sizes : sequence of int [F]
    rng : numpy Generator or int
    batch_size, n_train, n_eval : int
        disentanglement_lib's 64, 10000, 5000 by default.
    chunk_size : int, default 4096
        Rows per ``represent`` call (rounded to whole points).

    Returns
    -------
    dict
        ``train_accuracy`` and ``eval_accuracy`` in [0, 1]; chance is about 1/F.
    """
    from sklearn.linear_model import LogisticRegression

    sizes = _as_sizes(factor_sizes)
    gen = _as_rng(rng)
    batch_size = _positive_int(batch_size, "batch_size")
    n_train = _positive_int(n_train, "n_train")
    n_eval = _positive_int(n_eval, "n_eval")
    chunk_size = _positive_int(chunk_size, "chunk_size")

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        k = gen.integers(0, sizes.size, size=n)
        f1 = gen.integers(0, sizes, size=(n, batch_size, sizes.size))
        f2 = gen.integers(0, sizes, size=(n, batch_size, sizes.size))
        rows = np.arange(n)
        f2[rows, :, k] = f1[rows, :, k]
        per_chunk = max(1, chunk_size // (2 * batch_size))
        feats = []
        for start in range(0, n, per_chunk):
            both = np.concatenate([f1[start : start + per_chunk], f2[start : start + per_chunk]])
            z = _represent_chunked(
                represent, both.reshape(-1, sizes.size), both.shape[0] * batch_size
            )
            z = z.reshape(2, -1, batch_size, z.shape[1])
            feats.append(np.abs(z[0] - z[1]).mean(axis=1))
        return np.concatenate(feats), k

    x_train, y_train = points(n_train)
    x_eval, y_eval = points(n_eval)
    if x_eval.shape[1] != x_train.shape[1]:
        raise ValueError(
            f"represent returned D = {x_eval.shape[1]}, earlier D = {x_train.shape[1]}"
        )
    if np.unique(y_train).size < 2:
        # A single class: logistic regression cannot be fitted, every vote is that class.
        return {"train_accuracy": 1.0, "eval_accuracy": float(np.mean(y_eval == y_train[0]))}
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return {
        "train_accuracy": float(np.mean(model.predict(x_train) == y_train)),
        "eval_accuracy": float(np.mean(model.predict(x_eval) == y_eval)),
    }


# ----------------------------------------------------------------------------- DCI


def _dci_estimator(model: str, estimator_kwargs: dict[str, Any] | None) -> Any:
    from sklearn import ensemble, linear_model

    defaults: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
        "extra_trees": (
            ensemble.ExtraTreesClassifier,
            {
                "n_estimators": 20,
                "max_depth": 8,
                "max_features": None,
                "n_jobs": 1,
                "random_state": 0,
            },
        ),
        "random_forest": (
            ensemble.RandomForestClassifier,
            {
                "n_estimators": 10,
                "max_depth": 8,
                "max_features": None,
                "n_jobs": 1,
                "random_state": 0,
            },
        ),
        "lasso": (linear_model.Lasso, {"alpha": 0.01}),
        "gbt": (ensemble.GradientBoostingClassifier, {}),
    }
    if model not in defaults:
        raise ValueError(f"model must be one of {sorted(defaults)}, got {model!r}")
    cls, kwargs = defaults[model]
    return cls(**{**kwargs, **(estimator_kwargs or {})})


def _one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """``1 - H_base`` of each column of non-negative weights (normalised per column)."""
    p = p + 1e-11  # disentanglement_lib's smoothing, which also keeps all-zero columns finite
    p = p / p.sum(axis=0, keepdims=True)
    return 1.0 + (p * np.log(p)).sum(axis=0) / math.log(base)


def dci(
    codes_train: ArrayLike,
    factors_train: ArrayLike,
    codes_test: ArrayLike,
    factors_test: ArrayLike,
    model: DCIModel = "extra_trees",
    estimator_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    r"""Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    One predictor per factor :math:`k` gives the importances :math:`R_{jk} \ge 0` of
    code dimension :math:`j`, forming :math:`R` [D, F]. With
    :math:`P_{jk} = R_{jk} / \sum_{k'} R_{jk'}` and
    :math:`\tilde P_{jk} = R_{jk} / \sum_{j'} R_{j'k}`:

    .. math::

        D = \sum_j \rho_j \Big(1 + \sum_k P_{jk} \log_F P_{jk}\Big),
        \quad \rho_j = \frac{\sum_k R_{jk}}{\sum_{jk} R_{jk}},
        \qquad
        C = \sum_k \tilde\rho_k \Big(1 + \sum_j \tilde P_{jk} \log_D \tilde P_{jk}\Big),
        \quad \tilde\rho_k = \frac{\sum_j R_{jk}}{\sum_{jk} R_{jk}},

    and informativeness is the mean test accuracy of the predictors. Entropy smoothing
    (``+1e-11``) and weights follow disentanglement_lib.

    **Deviation from disentanglement_lib.** The reference importance model,
    ``GradientBoostingClassifier()`` per factor (``model='gbt'``), takes minutes on 10k
    points (about 450 s on the CI machine). The default is an
    ``ExtraTreesClassifier(n_estimators=20, max_depth=8, max_features=None)``: about a
    second on 10k points, and because every split considers all dimensions (as GBT
    does) irrelevant dimensions get almost no importance, so a perfect code scores
    D close to 1. Random forests with the usual ``max_features='sqrt'`` spread
    importance onto irrelevant dimensions (a perfect code gets D of about 0.8 on
    dSprites-like factors), hence ``max_features=None`` for ``'random_forest'`` too.
    ``'lasso'`` is Eastwood & Williams' linear choice: ``Lasso(alpha=0.01)`` on
    standardised codes regressing the standardised factor index, importances
    :math:`|w_j|`, informativeness the accuracy of the prediction rounded to the
    nearest valid index (it treats every factor as ordinal, so it is poor for
    categorical factors such as shape). With codes that carry no information the L1
    penalty leaves a few tiny spurious weights, and D is then meaningless (random
    codes score D of about 0.9); the tree models give D of about 0 there.

    Parameters
    ----------
    codes_train, codes_test : array or Tensor [N, D], [M, D]
    factors_train, factors_test : integer array or Tensor [N, F], [M, F]
    model : {'extra_trees', 'random_forest', 'lasso', 'gbt'}, default 'extra_trees'
    estimator_kwargs : dict, optional
        Overrides of the estimator's default settings above.

    Returns
    -------
    dict
        ``disentanglement``, ``completeness``, ``informativeness`` (= test accuracy),
        ``informativeness_train`` and ``importance_matrix`` [D, F].
    """
    z_tr, z_te = _as_codes(codes_train, "codes_train"), _as_codes(codes_test, "codes_test")
    v_tr = _as_factors(factors_train, z_tr.shape[0], "factors_train")
    v_te = _as_factors(factors_test, z_te.shape[0], "factors_test")
    if z_te.shape[1] != z_tr.shape[1] or v_te.shape[1] != v_tr.shape[1]:
        raise ValueError(
            f"test data must have D = {z_tr.shape[1]}, F = {v_tr.shape[1]} like the training data, "
            f"got D = {z_te.shape[1]}, F = {v_te.shape[1]}"
        )
    d, f = z_tr.shape[1], v_tr.shape[1]
    if d < 2 or f < 2:
        raise ValueError(f"DCI needs D >= 2 and F >= 2 (entropy bases), got D = {d}, F = {f}")
    _dci_estimator(model, estimator_kwargs)  # validate the name before any fitting

    if model == "lasso":
        mean, std = z_tr.mean(axis=0), z_tr.std(axis=0)
        std[std == 0] = 1.0  # a constant dimension then gets weight 0, not a division by 0
        z_tr, z_te = (z_tr - mean) / std, (z_te - mean) / std

    importance = np.zeros((d, f))
    acc_train, acc_test = [], []
    for k in range(f):
        est = _dci_estimator(model, estimator_kwargs)
        if model == "lasso":
            mu, sd = v_tr[:, k].mean(), v_tr[:, k].std() or 1.0
            est.fit(z_tr, (v_tr[:, k] - mu) / sd)
            importance[:, k] = np.abs(est.coef_)
            hi = max(v_tr[:, k].max(), v_te[:, k].max())

            def predict(
                z: np.ndarray, est: Any = est, mu: float = mu, sd: float = sd, hi: int = hi
            ) -> np.ndarray:
                return np.clip(np.rint(est.predict(z) * sd + mu), 0, hi)
        else:
            est.fit(z_tr, v_tr[:, k])
            importance[:, k] = np.abs(est.feature_importances_)
            predict = est.predict
        acc_train.append(np.mean(predict(z_tr) == v_tr[:, k]))
        acc_test.append(np.mean(predict(z_te) == v_te[:, k]))

    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    code_w = weights.sum(axis=1) / weights.sum()
    factor_w = weights.sum(axis=0) / weights.sum()
    return {
        "disentanglement": float(np.sum(_one_minus_entropy(importance.T, f) * code_w)),
        "completeness": float(np.sum(_one_minus_entropy(importance, d) * factor_w)),
        "informativeness": float(np.mean(acc_test)),
        "informativeness_train": float(np.mean(acc_train)),
        "importance_matrix": importance,
    }


# ----------------------------------------------------------------------------- Ada-GVAE


def shared_dim_accuracy(
    shared_mask_pred: ArrayLike,
    changed_mask_true: ArrayLike,
    code_to_factor: ArrayLike,
) -> dict[str, float]:
    r"""Agreement of Ada-GVAE's inferred shared dimensions with the truly unchanged factors.

    Each code dimension :math:`j` is matched to a factor :math:`m(j)` (typically
    ``mig(..., return_details=True)[1]["code_to_factor"]``, the argmax of the MI
    matrix). For a pair :math:`n`, dimension :math:`j` is *truly shared* iff its
    factor did not change, :math:`t_{nj} = \lnot c_{n,m(j)}`, and

    .. math::

        \text{accuracy} = \frac{1}{N |J|} \sum_n \sum_{j \in J} [\hat s_{nj} = t_{nj}],

    where :math:`J` holds the dimensions with :math:`m(j) \ge 0`; set
    :math:`m(j) = -1` to leave out a dimension (e.g. a collapsed one, which is matched
    to an arbitrary factor because its MI is zero everywhere).

    Parameters
    ----------
    shared_mask_pred : bool array or Tensor [N, D]
        True where the model averaged (shared) dimension j for pair n.
    changed_mask_true : bool array or Tensor [N, F]
        True where factor k differs between the two images of pair n.
    code_to_factor : int array or Tensor [D]
        Factor index matched to each code dimension, or -1 to exclude it.

    Returns
    -------
    dict
        ``accuracy``; ``precision`` = P(truly shared | predicted shared);
        ``recall`` = P(predicted shared | truly shared) (NaN when undefined);
        ``n_dims`` = :math:`|J|`.
    """

    def as_bool(x: ArrayLike, name: str) -> np.ndarray:
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if x.dtype != np.bool_ or x.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-D bool array, got dtype {x.dtype} and shape {list(x.shape)}"
            )
        return x

    pred = as_bool(shared_mask_pred, "shared_mask_pred")
    changed = as_bool(changed_mask_true, "changed_mask_true")
    match = (
        code_to_factor.detach().cpu().numpy()
        if isinstance(code_to_factor, torch.Tensor)
        else np.asarray(code_to_factor)
    )
    if changed.shape[0] != pred.shape[0]:
        raise ValueError(
            f"changed_mask_true must have N = {pred.shape[0]} rows, got {changed.shape[0]}"
        )
    if match.shape != (pred.shape[1],) or not np.issubdtype(match.dtype, np.integer):
        raise ValueError(
            f"code_to_factor must be an int array of shape [{pred.shape[1]}], "
            f"got dtype {match.dtype} and shape {list(match.shape)}"
        )
    if ((match < -1) | (match >= changed.shape[1])).any():
        raise ValueError(
            f"code_to_factor values must be in [-1, {changed.shape[1] - 1}], got {match.tolist()}"
        )
    keep = match >= 0
    if not keep.any():
        raise ValueError("code_to_factor excludes every dimension (all -1)")
    truth = ~changed[:, match[keep]]
    pred = pred[:, keep]
    hits = pred & truth
    return {
        "accuracy": float(np.mean(pred == truth)),
        "precision": float(hits.sum() / pred.sum()) if pred.any() else float("nan"),
        "recall": float(hits.sum() / truth.sum()) if truth.any() else float("nan"),
        "n_dims": int(keep.sum()),
    }


# ----------------------------------------------------------------------------- latent usage


class ActiveUnits(NamedTuple):
    """Result of :func:`active_units`: how many units are active, and each one's variance."""

    count: int
    variances: torch.Tensor


def active_units(
    model: Any, data: Any, threshold: float = 0.01, batch_size: int = 1024
) -> ActiveUnits:
    r"""Active units (Burda et al. 2015): latent dimensions whose posterior mean moves with x.

    .. math::

        A_u = \mathrm{Cov}_x\big(\mathbb{E}_{q(z|x)}[z_u]\big) > \text{threshold},

    with the unbiased sample variance over ``data`` of the encoder mean.

    Parameters
    ----------
    model : VAE, AdaGVAE or AE
        Encoded with :func:`encode_dataset`.
    data : Tensor [N, ...] or an iterable of batches
        At least two examples.
    threshold : float, default 0.01
        Burda et al.'s value.
    batch_size : int, default 1024

    Returns
    -------
    ActiveUnits
        ``count`` (int) and ``variances`` (Tensor [D], float64).

    Raises
    ------
    ValueError
        If ``data`` contains NaN or inf, or the encoder means are not finite (a count
        of 0 would then read like posterior collapse).
    """
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    mu = _encode_means(model, data, batch_size, None, "data").double()
    if mu.shape[0] < 2:
        raise ValueError(f"data must hold at least 2 examples for a variance, got {mu.shape[0]}")
    var = mu.var(dim=0, unbiased=True)
    if not bool(torch.isfinite(var).all()):
        raise ValueError(
            "the model's encoder means are NaN or inf for finite data (variance not finite "
            f"in dimensions {torch.nonzero(~torch.isfinite(var)).flatten().tolist()}); "
            "has the model diverged? Active units cannot be counted"
        )
    return ActiveUnits(int((var > threshold).sum()), var)


def kl_per_dimension(model: Any, data: Any, batch_size: int = 1024) -> torch.Tensor:
    r"""Dataset-mean KL of each latent dimension's posterior from the standard normal prior.

    .. math::

        \overline{\mathrm{KL}}_j = \frac{1}{N} \sum_{n=1}^{N}
        \tfrac12 \big(\mu_{nj}^2 + e^{\ell_{nj}} - 1 - \ell_{nj}\big),
        \qquad \ell = \log \sigma^2.

    Parameters
    ----------
    model : VAE or AdaGVAE
        ``encode(x)`` must return ``.mu`` and ``.log_var``.
    data : Tensor [N, ...] or an iterable of batches
    batch_size : int, default 1024

    Returns
    -------
    Tensor [D]
        In nats, float64, on the CPU.

    Raises
    ------
    ValueError
        If ``data`` is empty or contains NaN or inf.
    """
    total, n = None, 0
    for out in _encode_batches(model, data, batch_size, None, "data"):
        if getattr(out, "mu", None) is None or getattr(out, "log_var", None) is None:
            raise TypeError(
                "kl_per_dimension needs a model whose encode(x) returns .mu and .log_var (a VAE)"
            )
        mu, lv = out.mu.double().cpu(), out.log_var.double().cpu()
        kl = 0.5 * (mu.pow(2) + lv.exp() - 1.0 - lv)
        total = kl.sum(dim=0) if total is None else total + kl.sum(dim=0)
        n += mu.shape[0]
    if total is None:
        raise ValueError("data is empty")
    return total / n
