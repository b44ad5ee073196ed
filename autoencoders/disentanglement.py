r"""Disentanglement scores: MIG, FactorVAE, BetaVAE, DCI and Ada-GVAE's shared dimensions.

Every score here follows the definition in its paper and the settings of
disentanglement_lib :cite:p:`locatello2019challenging`. The few deliberate deviations
are listed in the docstrings (the DCI importance model and the logistic-regression
iteration cap).

Two kinds of input occur:

* **codes and labels**: ``codes`` [N, D] (encoder means, see
  :func:`autoencoders.inference.encode_dataset`) and integer ``factors`` [N, F]
  (ground-truth factor indices). Used by :func:`mig`, :func:`mig_details`, :func:`dci`
  and :func:`shared_dim_accuracy`.
* **a representation function**: ``represent(factors [N, F] int) -> codes [N, D]``
  plus ``factor_sizes``. :func:`factor_vae_score` and :func:`beta_vae_score` must
  choose which factors to hold fixed, so they generate the factors themselves, all at
  once, and call ``represent`` on chunks of a few thousand rows.
  :func:`make_represent` turns a model and a renderer into such a function.

Everything here is also importable from :mod:`autoencoders.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from sklearn.metrics import mutual_info_score

from .inference import encode_dataset

__all__ = [
    "MIGResult",
    "beta_vae_score",
    "dci",
    "factor_vae_score",
    "make_represent",
    "mig",
    "mig_details",
    "shared_dim_accuracy",
]

ArrayLike = np.ndarray | torch.Tensor
Represent = Callable[[np.ndarray], ArrayLike]
DCIModel = Literal["extra_trees", "random_forest", "lasso", "gbt"]


# ----------------------------------------------------------------------------- represent


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
        Encoded with :func:`~autoencoders.inference.encode_dataset` (mean codes, eval
        mode, flags restored).
    render : callable
        ``render(factors [N, F] int) -> images [N, ...]``, e.g. a dataset's ``images``.
    batch_size : int, default 1024
        Rows per forward pass.
    device : str or torch.device, optional
        Where each call of ``represent`` encodes. ``None`` means
        :func:`autoencoders.utils.get_device`, resolved at every call; the model is
        moved there for the call and back to where it was afterwards.

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



class MIGResult(NamedTuple):
    r"""Result of :func:`mig_details`: the score and the quantities it is computed from.

    ``score`` (float) is the MIG that :func:`mig` returns; ``mi`` [D, F] the plug-in
    mutual information :math:`I(z_j; v_k)` in nats; ``entropy`` [F] the plug-in
    entropy :math:`H(v_k)`; ``gap`` [F] the normalised gap of each factor (``score``
    is its mean); ``code_to_factor`` [D] each code dimension's argmax-MI factor, as
    :func:`shared_dim_accuracy` needs.
    """

    score: float
    mi: np.ndarray
    entropy: np.ndarray
    gap: np.ndarray
    code_to_factor: np.ndarray


def mig_details(codes: ArrayLike, factors: ArrayLike, n_bins: int = 20) -> MIGResult:
    r"""Mutual Information Gap :cite:p:`chen2018isolating` with the MI matrix it comes from.

    Each code dimension is discretised into ``n_bins`` equal-width bins; then

    .. math::

        \mathrm{MIG} = \frac{1}{F} \sum_{k=1}^{F} \frac{1}{H(v_k)}
        \Big( I(z_{j^{(k)}}; v_k) - \max_{j \ne j^{(k)}} I(z_j; v_k) \Big),

        j^{(k)} = \arg\max_j I(z_j; v_k),

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

    Returns
    -------
    MIGResult
        ``score`` (float), ``mi`` [D, F], ``entropy`` [F], ``gap`` [F] and
        ``code_to_factor`` [D].

    Raises
    ------
    ValueError
        On bad shapes, D < 2, non-finite codes or a constant factor.
    TypeError
        For complex codes or non-integer factors.
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
    return MIGResult(float(gap.mean()), mi, entropy, gap, mi.argmax(axis=1))


def mig(
    codes: ArrayLike, factors: ArrayLike, n_bins: int = 20, *, return_details: Any = None
) -> float:
    r"""Mutual Information Gap :cite:p:`chen2018isolating`, always as one float.

    .. math::

        \mathrm{MIG} = \frac{1}{F} \sum_{k=1}^{F} \frac{1}{H(v_k)}
        \Big( I(z_{j^{(k)}}; v_k) - \max_{j \ne j^{(k)}} I(z_j; v_k) \Big),

        j^{(k)} = \arg\max_j I(z_j; v_k);

    see :func:`mig_details` for the binning and the estimators, and for the MI matrix,
    the per-factor gaps and each dimension's factor (``code_to_factor``).

    Parameters
    ----------
    codes : array or Tensor [N, D]
        Code means, D >= 2.
    factors : integer array or Tensor [N, F]
        Ground-truth factor indices; no factor may be constant.
    n_bins : int, default 20
        Histogram bins per code dimension.
    return_details : None
        Removed: ``mig`` used to return a ``(score, dict)`` tuple when it was true.
        Passing it raises ``TypeError``; call :func:`mig_details` instead.

    Returns
    -------
    float
        The MIG in :math:`[0, 1]`: 1 when each factor is captured by exactly one code
        dimension, about 0 for codes independent of the factors.

    Raises
    ------
    ValueError
        On bad shapes, D < 2, non-finite codes or a constant factor.
    TypeError
        If ``return_details`` is passed.
    """
    if return_details is not None:
        raise TypeError(
            f"mig always returns a float; return_details={return_details!r} is no longer "
            "accepted. Use mig_details(codes, factors) for the score together with .mi, "
            ".entropy, .gap and .code_to_factor"
        )
    return mig_details(codes, factors, n_bins).score


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
    r"""FactorVAE score :cite:p:`kim2018disentangling`, with disentanglement_lib's settings.

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
    ).var(axis=0, ddof=1)
    active = np.sqrt(global_var) >= prune_threshold
    if not active.any():
        note = f"all {global_var.size} code dimensions have std < {prune_threshold}"
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0, "note": note}
    sampler = _VoteSampler(represent, gen, sizes, batch_size, chunk_size)
    train_votes = _factor_vae_votes(sampler, n_train, global_var, active)
    classifier = train_votes.argmax(axis=0)
    cols = np.arange(train_votes.shape[1])
    eval_votes = _factor_vae_votes(sampler, n_eval, global_var, active)
    return {
        "train_accuracy": float(train_votes[classifier, cols].sum() / train_votes.sum()),
        "eval_accuracy": float(eval_votes[classifier, cols].sum() / eval_votes.sum()),
        "num_active_dims": int(active.sum()),
    }


class _VoteSampler(NamedTuple):
    """What the FactorVAE and BetaVAE samplers share: ``represent`` and the factor space."""

    represent: Represent
    gen: np.random.Generator
    sizes: np.ndarray
    batch_size: int
    chunk_size: int


def _factor_vae_votes(
    sampler: _VoteSampler, n_votes: int, global_var: np.ndarray, active: np.ndarray
) -> np.ndarray:
    """Vote counts [F, D_active] from ``n_votes`` batches that each fix one factor."""
    represent, gen, sizes, batch_size, chunk_size = sampler
    k = gen.integers(0, sizes.size, size=n_votes)
    fs = gen.integers(0, sizes, size=(n_votes, batch_size, sizes.size))
    fs[np.arange(n_votes), :, k] = gen.integers(0, sizes[k])[:, None]
    per_chunk = max(1, chunk_size // batch_size)
    argmins = []
    for start in range(0, n_votes, per_chunk):
        block = fs[start : start + per_chunk]
        z = _represent_chunked(represent, block.reshape(-1, sizes.size), block.shape[0] * batch_size)
        if z.shape[1] != global_var.size:
            raise ValueError(f"represent returned D = {z.shape[1]}, earlier D = {global_var.size}")
        local = z[:, active].reshape(block.shape[0], batch_size, -1).var(axis=1, ddof=1)
        argmins.append(np.argmin(local / global_var[active], axis=1))
    n_active = int(active.sum())
    flat = k * n_active + np.concatenate(argmins)
    return np.bincount(flat, minlength=sizes.size * n_active).reshape(sizes.size, n_active)


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
    r"""BetaVAE score :cite:p:`higgins2017beta`, with disentanglement_lib's settings.

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
    sampler = _VoteSampler(represent, gen, sizes, batch_size, chunk_size)
    x_train, y_train = _beta_vae_points(sampler, n_train)
    x_eval, y_eval = _beta_vae_points(sampler, n_eval)
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


def _beta_vae_points(sampler: _VoteSampler, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` BetaVAE training points: mean |z1 - z2| over pairs sharing factor k, and k."""
    represent, gen, sizes, batch_size, chunk_size = sampler
    k = gen.integers(0, sizes.size, size=n)
    f1 = gen.integers(0, sizes, size=(n, batch_size, sizes.size))
    f2 = gen.integers(0, sizes, size=(n, batch_size, sizes.size))
    rows = np.arange(n)
    f2[rows, :, k] = f1[rows, :, k]
    per_chunk = max(1, chunk_size // (2 * batch_size))
    feats = []
    for start in range(0, n, per_chunk):
        both = np.concatenate([f1[start : start + per_chunk], f2[start : start + per_chunk]])
        z = _represent_chunked(represent, both.reshape(-1, sizes.size), both.shape[0] * batch_size)
        z = z.reshape(2, -1, batch_size, z.shape[1])
        feats.append(np.abs(z[0] - z[1]).mean(axis=1))
    return np.concatenate(feats), k


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
    r"""Disentanglement, completeness and informativeness :cite:p:`eastwood2018framework`.

    One predictor per factor :math:`k` gives the importances :math:`R_{jk} \ge 0` of
    code dimension :math:`j`, forming :math:`R` [D, F]. With
    :math:`P_{jk} = R_{jk} / \sum_{k'} R_{jk'}` and
    :math:`\tilde P_{jk} = R_{jk} / \sum_{j'} R_{j'k}`:

    .. math::

        D &= \sum_j \rho_j \Big(1 + \sum_k P_{jk} \log_F P_{jk}\Big),
        \quad \rho_j = \frac{\sum_k R_{jk}}{\sum_{jk} R_{jk}},\\
        C &= \sum_k \tilde\rho_k \Big(1 + \sum_j \tilde P_{jk} \log_D \tilde P_{jk}\Big),
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
    z_tr, v_tr, z_te, v_te = _dci_inputs(codes_train, factors_train, codes_test, factors_test)
    d, f = z_tr.shape[1], v_tr.shape[1]
    _dci_estimator(model, estimator_kwargs)  # validate the name before any fitting
    if model == "lasso":
        mean, std = z_tr.mean(axis=0), z_tr.std(axis=0)
        std[std == 0] = 1.0  # a constant dimension then gets weight 0, not a division by 0
        z_tr, z_te = (z_tr - mean) / std, (z_te - mean) / std
    importance = np.zeros((d, f))
    acc_train, acc_test = [], []
    for k in range(f):
        importance[:, k], predict = _dci_fit_factor(z_tr, v_tr[:, k], v_te[:, k], model, estimator_kwargs)
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


def _dci_inputs(
    codes_train: ArrayLike, factors_train: ArrayLike, codes_test: ArrayLike, factors_test: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(z_train, v_train, z_test, v_test)`` with matching D >= 2 and F >= 2."""
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
    return z_tr, v_tr, z_te, v_te


def _dci_fit_factor(
    z_tr: np.ndarray, v_tr: np.ndarray, v_te: np.ndarray, model: str, estimator_kwargs: Any
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Fit one factor's predictor; return ``(importances [D], predict)``.

    The lasso regresses the standardised factor index and predicts the nearest valid
    index; the tree models classify the index and report their feature importances.
    """
    est = _dci_estimator(model, estimator_kwargs)
    if model != "lasso":
        est.fit(z_tr, v_tr)
        return np.abs(est.feature_importances_), est.predict
    mu, sd = v_tr.mean(), v_tr.std() or 1.0
    est.fit(z_tr, (v_tr - mu) / sd)
    hi = max(v_tr.max(), v_te.max())

    def predict(z: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(est.predict(z) * sd + mu), 0, hi)

    return np.abs(est.coef_), predict


# ----------------------------------------------------------------------------- Ada-GVAE


def shared_dim_accuracy(
    shared_mask_pred: ArrayLike,
    changed_mask_true: ArrayLike,
    code_to_factor: ArrayLike,
) -> dict[str, float]:
    r"""Agreement of Ada-GVAE's inferred shared dimensions with the truly unchanged factors.

    Each code dimension :math:`j` is matched to a factor :math:`m(j)` (typically
    ``mig_details(codes, factors).code_to_factor``, the argmax of the MI matrix). For a pair :math:`n`, dimension :math:`j` is *truly shared* iff its
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

    pred = _as_bool_mask(shared_mask_pred, "shared_mask_pred")
    changed = _as_bool_mask(changed_mask_true, "changed_mask_true")
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


def _as_bool_mask(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a 2-D numpy bool array (ValueError naming ``name`` otherwise)."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.dtype != np.bool_ or x.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D bool array, got dtype {x.dtype} and shape {list(x.shape)}"
        )
    return x
