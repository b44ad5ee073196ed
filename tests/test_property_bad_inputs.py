"""Property-based robustness: one argument of a public entry point at a time is replaced
by an arbitrary value. The call must either succeed with a correct result, or raise
one of the documented exception types with a message that names that argument.

The valid baselines and the references for "correct" are independent of the code
under test (closed forms, ``torch.distributions``).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from autoencoders import VAE, kl_divergence_diag_gaussian, log_likelihood
from autoencoders.data import TensorLoader
from autoencoders.train import cyclical, evaluate, fit, linear_warmup

DOCUMENTED = (ValueError, TypeError)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

X = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(0))


def tiny_vae() -> VAE:
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU())
    dec = nn.Sequential(nn.Linear(2, 16), nn.Unflatten(1, (1, 4, 4)))
    return VAE(enc, dec, 2).build(X)


def tensors(shape=(2, 3)):
    """Tensors that are often wrong: other shapes, dtypes, NaN, inf, out of [0, 1]."""
    special = st.sampled_from([0.0, 1.0, -0.5, 1.5, 255.0, math.nan, math.inf, -math.inf])
    shapes = st.sampled_from([shape, (3, 2), (2,), (0, 3), (2, 3, 1)])

    def build(s, fill, dtype):
        t = torch.rand(s, generator=torch.Generator().manual_seed(1))
        if t.numel():
            t.view(-1)[0] = fill
        return t.to(dtype) if dtype is not torch.float32 and math.isfinite(fill) else t

    return st.builds(build, shapes, special, st.sampled_from([torch.float32, torch.float64, torch.int64]))


ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.sampled_from(["no", "gaussian", "Bernoulli", "laplace", [], (), {}, object()]),
    tensors(),
)


def call(fn, name, kwargs):
    """Run ``fn(**kwargs)``; a failure must be documented and name ``name``."""
    try:
        return True, fn(**kwargs)
    except DOCUMENTED as err:
        assert name in str(err), f"{type(err).__name__} does not name {name!r}: {err}"
        return False, None


# ---------------------------------------------------------------------------- loss math
@SETTINGS
@given(name=st.sampled_from(["x", "x_hat", "likelihood", "validate"]), value=ANYTHING)
def test_log_likelihood(name, value):
    kwargs = {"x": torch.rand(2, 3), "x_hat": torch.randn(2, 3), "likelihood": "bernoulli", "validate": True}
    kwargs[name] = value
    ok, out = call(log_likelihood, name, kwargs)
    if ok:
        x, x_hat, kind = kwargs["x"], kwargs["x_hat"], kwargs["likelihood"]
        assert out.shape == x.shape
        if torch.isnan(x_hat).any():  # a NaN parameter must not give a clean number
            assert torch.isnan(out).any()
            return
        if not torch.isfinite(x_hat).all() or not kwargs["validate"]:
            return  # infinite logits are limits; validate=False leaves x unchecked
        if kind.strip().lower() == "bernoulli":
            ref = torch.distributions.ContinuousBernoulli(logits=x_hat)  # same x * l - softplus(l) part
            expected = ref.log_prob(x) - ref._cont_bern_log_norm()
        elif kind.strip().lower() == "laplace":
            expected = torch.distributions.Laplace(x_hat, 1.0).log_prob(x)
        else:  # gaussian, without the constant
            expected = torch.distributions.Normal(x_hat, 1.0).log_prob(x) + 0.5 * math.log(2 * math.pi)
        torch.testing.assert_close(out, expected.to(out.dtype), rtol=1e-5, atol=1e-5)


@SETTINGS
@given(name=st.sampled_from(["mu", "log_var", "reduce_sum"]), value=ANYTHING)
def test_kl_divergence(name, value):
    kwargs = {"mu": torch.randn(2, 3), "log_var": torch.randn(2, 3), "reduce_sum": True}
    kwargs[name] = value
    ok, out = call(kl_divergence_diag_gaussian, name, kwargs)
    if ok and torch.isfinite(kwargs["mu"]).all() and torch.isfinite(kwargs["log_var"]).all():
        mu, log_var = kwargs["mu"].double(), kwargs["log_var"].double()
        q = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
        expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
        if kwargs["reduce_sum"]:
            expected = expected.sum(-1)
        big = expected > torch.finfo(out.dtype).max / 2  # overflows in the output's dtype
        assert torch.isposinf(out[big]).all() or (out[big] > 1e30).all()
        torch.testing.assert_close(out[~big].double(), expected[~big], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------- models
@SETTINGS
@given(
    name=st.sampled_from(["beta", "free_bits", "likelihood"]),
    value=st.one_of(ANYTHING, st.floats(0, 10)),
)
def test_vae_compute_loss(name, value):
    model = tiny_vae()
    out = model(X)
    kwargs = {"beta": 1.0, "free_bits": 0.0, "likelihood": "gaussian"}
    kwargs[name] = value
    ok, res = call(lambda **kw: model.compute_loss(X, out, **kw), name, kwargs)
    if ok:
        d = res.diagnostics
        assert math.isfinite(d["elbo"]) and d["elbo"] == pytest.approx(d["log_likelihood"] - d["kl_divergence"])
        if name == "beta" and value <= 1e6:  # beyond that float32 overflows, as it should
            expected = -(d["log_likelihood"] - value * d["kl_divergence"])
            assert res.objective.item() == pytest.approx(expected, rel=1e-5, abs=1e-5)


@SETTINGS
@given(name=st.sampled_from(["S", "sample"]), value=ANYTHING)
def test_vae_forward(name, value):
    model = tiny_vae()
    kwargs = {"S": 1, "sample": None}
    kwargs[name] = value
    ok, out = call(lambda **kw: model(X, **kw), name, kwargs)
    if ok:
        assert out.x_hat.shape == (4, kwargs["S"], 1, 4, 4) and torch.isfinite(out.x_hat).all()


@SETTINGS
@given(name=st.sampled_from(["x"]), value=ANYTHING)
def test_vae_forward_input(name, value):
    model = tiny_vae()
    ok, out = call(lambda x: model.compute_loss(x, model(x)), name, {"x": value})
    if ok:
        assert math.isfinite(out.diagnostics["elbo"])


# ------------------------------------------------------------------------ training API
@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(["epochs", "lr", "max_steps", "grad_clip", "loss_kwargs", "max_seconds"]),
    value=ANYTHING,
)
def test_fit_arguments(name, value):
    model = tiny_vae()
    kwargs = {"epochs": 1, "lr": 1e-3, "max_steps": None, "grad_clip": None, "loss_kwargs": None,
              "max_seconds": None}
    kwargs[name] = value
    if name == "epochs" and value is None:
        return  # epochs=None is valid with a budget; checked in test_train
    ok, history = call(lambda **kw: fit(model, [X], progress=False, device="cpu", **kw), name, kwargs)
    if ok:
        expected = kwargs["epochs"] if kwargs["max_steps"] is None else min(kwargs["epochs"], kwargs["max_steps"])
        if kwargs["max_seconds"] is None:  # a time budget may end the run after any step
            assert history.steps == expected
        assert 1 <= history.steps <= expected
        assert all(math.isfinite(v) for v in history.train["elbo"])


@SETTINGS
@given(name=st.sampled_from(["batch_size", "S", "sample"]), value=ANYTHING)
def test_evaluate_arguments(name, value):
    model = tiny_vae()
    kwargs = {"batch_size": 2, "S": 1, "sample": True}
    kwargs[name] = value
    ok, means = call(lambda **kw: evaluate(model, X, device="cpu", **kw), name, kwargs)
    if ok:
        assert math.isfinite(means.get("elbo", means.get("elbo_at_mean")))


@SETTINGS
@given(name=st.sampled_from(["batch_size", "shuffle", "drop_last"]), value=ANYTHING)
def test_tensor_loader_arguments(name, value):
    kwargs = {"batch_size": 2, "shuffle": True, "drop_last": False}
    kwargs[name] = value
    ok, loader = call(lambda **kw: TensorLoader(X, **kw), name, kwargs)
    if ok:
        seen = torch.cat([b[0] for b in loader])
        expected = 4 - (4 % value if kwargs["drop_last"] else 0)
        assert seen.shape[0] == expected


@SETTINGS
@given(name=st.sampled_from(["warmup_steps", "beta_max", "beta_min"]), value=ANYTHING)
def test_linear_warmup_arguments(name, value):
    kwargs = {"warmup_steps": 10, "beta_max": 1.0, "beta_min": 0.0}
    kwargs[name] = value
    ok, schedule = call(linear_warmup, name, kwargs)
    if ok:
        w, hi, lo = kwargs["warmup_steps"], kwargs["beta_max"], kwargs["beta_min"]
        assert schedule(0) == pytest.approx(lo if w else hi) and schedule(w) == pytest.approx(hi)


@SETTINGS
@given(name=st.sampled_from(["period", "beta_max", "ratio", "n_cycles"]), value=ANYTHING)
def test_cyclical_arguments(name, value):
    kwargs = {"period": 10, "beta_max": 1.0, "ratio": 0.5, "n_cycles": None}
    kwargs[name] = value
    ok, schedule = call(cyclical, name, kwargs)
    if ok:
        assert schedule(0) == pytest.approx(0.0) and 0.0 <= schedule(7) <= kwargs["beta_max"]
