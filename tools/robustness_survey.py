"""Feed a fixed list of bad inputs to the package and classify what happens.

Each case is a small function that misuses one public entry point. Its outcome is

- ``clear``: it raised ``ValueError``, ``TypeError``, ``FileNotFoundError`` or
  ``FloatingPointError`` (or a subclass) with a message that names what is wrong
  (each case lists the words a clear message must contain);
- ``cryptic``: it raised something else, or a message that does not say what is wrong;
- ``silent``: it returned (a plausible, wrong answer).

Run it against any checkout (``PYTHONPATH=<checkout> python tools/robustness_survey.py``)
to compare two versions over the same list. It needs the MNIST root of
``AUTOENCODERS_DATA`` (or ``../shared/data``) for the MNIST cases: the files are copied
to a temporary folder and damaged there, never in place.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

CLEAR_TYPES = (ValueError, TypeError, FileNotFoundError, FloatingPointError)
CASES: list[tuple[str, tuple[str, ...], Callable[[Path], object]]] = []


def case(name: str, *words: str):
    """Register a case; ``words`` are alternatives, any one of which must be in the message."""

    def wrap(fn):
        CASES.append((name, words, fn))
        return fn

    return wrap


# ------------------------------------------------------------------------- small models
def mlp_ae(act=nn.ReLU):
    from autoencoders import AE

    enc = nn.Sequential(nn.Flatten(), nn.LazyLinear(32), act(), nn.Linear(32, 4))
    dec = nn.Sequential(nn.Linear(4, 32), act(), nn.Linear(32, 64), nn.Unflatten(1, (1, 8, 8)))
    return AE(enc, dec)


def mlp_vae(act=nn.ReLU, latent=4):
    from autoencoders import VAE

    enc = nn.Sequential(nn.Flatten(), nn.LazyLinear(32), act())
    dec = nn.Sequential(nn.Linear(latent, 32), act(), nn.Linear(32, 64), nn.Unflatten(1, (1, 8, 8)))
    return VAE(enc, dec, latent)


def x8(n=16):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def built_vae(act=nn.ReLU, latent=4):
    return mlp_vae(act, latent).build(x8())


def saved(tmp: Path, model=None) -> Path:
    from autoencoders.train import save_checkpoint

    path = tmp / "c.pt"
    save_checkpoint(path, model if model is not None else built_vae())
    return path


def load_into_fresh(path: Path, model=None):
    from autoencoders.train import load_checkpoint

    return load_checkpoint(path, model if model is not None else mlp_vae())


# ----------------------------------------------------------------------- 1. checkpoints
for _frac in (0.3, 0.45, 0.5, 0.55, 0.7, 0.8, 0.9):

    def _flip(tmp: Path, frac=_frac):
        path = saved(tmp)
        data = bytearray(path.read_bytes())
        data[int(len(data) * frac)] ^= 0xFF
        path.write_bytes(bytes(data))
        return load_into_fresh(path)

    case(f"checkpoint: one byte flipped at {_frac:.0%} of the file", "corrupt", "not a valid")(_flip)


@case("checkpoint: truncated to half", "not a valid checkpoint")
def _(tmp):
    path = saved(tmp)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return load_into_fresh(path)


@case("checkpoint: empty file", "not a valid checkpoint")
def _(tmp):
    path = tmp / "c.pt"
    path.write_bytes(b"")
    return load_into_fresh(path)


@case("checkpoint: a text file", "not a valid checkpoint")
def _(tmp):
    path = tmp / "c.pt"
    path.write_text("hello")
    return load_into_fresh(path)


@case("checkpoint: Softplus model loaded into a ReLU model", "architecture")
def _(tmp):
    path = saved(tmp, built_vae(nn.Softplus))
    return load_into_fresh(path, mlp_vae(nn.ReLU))


@case("checkpoint: saving an unbuilt model", "build")
def _(tmp):
    from autoencoders.train import save_checkpoint

    return save_checkpoint(tmp / "c.pt", mlp_vae(), input_shape=(1, 1, 8, 8))


# ------------------------------------------------------------------------------- 2. fit
def _fit(model, data, **kw):
    from autoencoders.train import fit

    kw.setdefault("epochs", 1)
    return fit(model, data, progress=False, **kw)


@case("fit: optimizer built on another model's parameters", "optimizer")
def _(tmp):
    other = built_vae()
    return _fit(built_vae(), [x8()], optimizer=torch.optim.Adam(other.parameters()))


@case("fit: 0..255 pixels with the Bernoulli likelihood", "[0, 1]")
def _(tmp):
    return _fit(mlp_vae(), [x8() * 255], loss_kwargs={"likelihood": "bernoulli"})


@case("fit: NaN in the first batch", "nan")
def _(tmp):
    x = x8()
    x[0, 0, 0, 0] = float("nan")
    return _fit(mlp_vae(), [x])


@case("fit: inf in the third batch", "inf")
def _(tmp):
    bad = x8()
    bad[3, 0, 1, 1] = float("inf")
    return _fit(mlp_vae(), [x8(), x8(), bad])


@case("fit: divergence keeps finite parameters and the history", "non-finite", "nan", "inf")
def _(tmp):
    model = built_vae()
    with torch.no_grad():
        model.sampling_layer.log_var.bias.fill_(200.0)  # exp overflows at the first step
    try:
        return _fit(model, [x8()] * 4, epochs=2)
    except FloatingPointError as err:
        finite = all(torch.isfinite(p).all() for p in model.parameters())
        if not finite or getattr(err, "history", None) is None:
            raise RuntimeError(f"raised, but finite parameters={finite}, history attached="
                               f"{getattr(err, 'history', None) is not None}: {err}") from err
        raise


@case("fit: an empty batch", "empty")
def _(tmp):
    return _fit(built_vae(), [torch.empty(0, 1, 8, 8)])


# ---------------------------------------------- found by tests/test_property_bad_inputs
@case("kl_divergence_diag_gaussian: mu=None", "mu")
def _(tmp):
    from autoencoders import kl_divergence_diag_gaussian

    return kl_divergence_diag_gaussian(None, torch.zeros(2, 3))


@case("log_likelihood: integer targets", "x.float()", "floating")
def _(tmp):
    from autoencoders import log_likelihood

    return log_likelihood(torch.ones(2, 3, dtype=torch.int64), torch.zeros(2, 3), "bernoulli")


@case("VAE.forward: input of another shape than the model was built for", "shape")
def _(tmp):
    return built_vae()(torch.rand(4, 1, 6, 6))


@case("VAE.compute_loss: free_bits above the float32 range", "free_bits", "nan", "inf")
def _(tmp):
    model = built_vae()
    res = model.compute_loss(x8(), model(x8()), free_bits=3.4028234663852889e38)
    return _fit(model, [x8()], loss_kwargs={"free_bits": 3.4028234663852889e38}) if res else res


# ------------------------------------------------------------------------------ 3. loss
@case("log_likelihood: Bernoulli targets outside [0, 1]", "[0, 1]")
def _(tmp):
    from autoencoders.loss import log_likelihood

    return log_likelihood(torch.tensor([1.5, -0.2]), torch.tensor([20.0, -20.0]), "bernoulli")


@case("log_likelihood: continuous Bernoulli targets outside [0, 1]", "[0, 1]")
def _(tmp):
    from autoencoders.loss import log_likelihood

    return log_likelihood(torch.tensor([2.0]), torch.tensor([0.3]), "continuous_bernoulli")


@case("log_likelihood: NaN target", "nan")
def _(tmp):
    from autoencoders.loss import log_likelihood

    return log_likelihood(torch.tensor([float("nan")]), torch.tensor([0.3]), "gaussian")


@case("log_likelihood: misspelt likelihood", "likelihood")
def _(tmp):
    from autoencoders.loss import log_likelihood

    return log_likelihood(torch.zeros(2), torch.zeros(2), "gausian")


@case("AE.compute_loss: NaN input", "nan")
def _(tmp):
    model = mlp_ae().build(x8())
    x = x8()
    x[1, 0, 2, 2] = float("nan")
    return model.compute_loss(x, model(x)).diagnostics


@case("VAE.compute_loss: NaN input", "nan")
def _(tmp):
    model = built_vae()
    x = x8()
    x[1, 0, 2, 2] = float("nan")
    return model.compute_loss(x, model(x)).diagnostics


@case("VAE.compute_loss: Bernoulli with 0..255 input", "[0, 1]")
def _(tmp):
    model = built_vae()
    x = x8() * 255
    return model.compute_loss(x, model(x), likelihood="bernoulli").diagnostics


@case("evaluate: NaN input", "nan")
def _(tmp):
    from autoencoders.train import evaluate

    x = x8()
    x[0, 0, 0, 0] = float("nan")
    return evaluate(built_vae(), x)


@case("evaluate: Bernoulli with 0..255 input", "[0, 1]")
def _(tmp):
    from autoencoders.train import evaluate

    return evaluate(built_vae(), x8() * 255, likelihood="bernoulli")


@case("VAE.forward: sample='no'", "sample")
def _(tmp):
    return built_vae()(x8(), sample="no")


@case("kl_divergence_diag_gaussian: reduce_sum='no'", "reduce_sum")
def _(tmp):
    from autoencoders.loss import kl_divergence_diag_gaussian

    return kl_divergence_diag_gaussian(torch.zeros(2, 3), torch.zeros(2, 3), reduce_sum="no")


for _name, _value in (("beta", float("inf")), ("free_bits", float("inf")), ("beta", float("nan")),
                      ("beta", -1.0), ("free_bits", -0.5)):

    def _kw(tmp, name=_name, value=_value):
        model = built_vae()
        return model.compute_loss(x8(), model(x8()), **{name: value}).diagnostics

    case(f"VAE.compute_loss: {_name}={_value}", _name)(_kw)


@case("log_marginal_likelihood: K=0", "K ")
def _(tmp):
    return built_vae().log_marginal_likelihood(x8(), K=0)


@case("VAE.compute_loss: x_hat of the wrong shape", "shape")
def _(tmp):
    model = built_vae()
    return model.compute_loss(x8(4), model(x8(8)))


# ---------------------------------------------------------------------- 4. dtypes, empty
for _dtype in (torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool):
    for _kind in ("AE", "VAE"):

        def _dt(tmp, dtype=_dtype, kind=_kind):
            model = (mlp_ae() if kind == "AE" else mlp_vae()).build(x8())
            return model((x8() * 255).to(dtype))

        case(f"{_kind}.forward: {_dtype} input to a float32 model", "float32")(_dt)


@case("AE: empty batch", "empty")
def _(tmp):
    model = mlp_ae().build(x8())
    x = torch.empty(0, 1, 8, 8)
    return model.compute_loss(x, model(x)).diagnostics


@case("VAE: empty batch", "empty")
def _(tmp):
    return built_vae()(torch.empty(0, 1, 8, 8))


@case("VAE.log_marginal_likelihood: empty batch", "empty")
def _(tmp):
    return built_vae().log_marginal_likelihood(torch.empty(0, 1, 8, 8), K=4)


# --------------------------------------------------------------------------- 5. metrics
def _nan_images():
    x = x8(32)
    x[5, 0, 3, 3] = float("nan")
    return x


@case("active_units: NaN input", "nan")
def _(tmp):
    from autoencoders.metrics import active_units

    return active_units(built_vae(), _nan_images())


@case("encode_dataset: NaN input", "nan")
def _(tmp):
    from autoencoders.metrics import encode_dataset

    return encode_dataset(built_vae(), _nan_images())


@case("kl_per_dimension: NaN input", "nan")
def _(tmp):
    from autoencoders.metrics import kl_per_dimension

    return kl_per_dimension(built_vae(), _nan_images())


@case("factor_vae_score: a NaN code dimension", "nan", "finite")
def _(tmp):
    from autoencoders.metrics import factor_vae_score

    def represent(f):
        z = np.concatenate([f.astype(float), np.zeros((len(f), 1))], axis=1)
        z[:, -1] = np.nan
        return z

    return factor_vae_score(represent, [3, 4], rng=0, n_train=50, n_eval=20, n_var_est=100)


@case("mig: NaN codes", "finite", "nan")
def _(tmp):
    from autoencoders.metrics import mig

    codes = np.random.default_rng(0).normal(size=(50, 3))
    codes[4, 1] = np.nan
    return mig(codes, np.random.default_rng(1).integers(0, 3, size=(50, 2)))


@case("check_autoencoder: NaN sample", "nan")
def _(tmp):
    from autoencoders.testing import check_autoencoder

    x = x8()
    x[0, 0, 0, 0] = float("nan")
    return check_autoencoder(mlp_vae(), x)


@case("check_autoencoder: a list as sample", "sample")
def _(tmp):
    from autoencoders.testing import check_autoencoder

    return check_autoencoder(mlp_vae(), [[0.0] * 64])


# ----------------------------------------------------------------------------- 6. MNIST
def _mnist_copy(tmp: Path) -> Path:
    root = Path(os.environ.get("AUTOENCODERS_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(root / "MNIST" / "raw" / name, raw / name)
    return raw


def _load_test(tmp: Path):
    from autoencoders.data import load_mnist

    return load_mnist(tmp, train=False, download=False)


@case("MNIST: truncated image file", "corrupt")
def _(tmp):
    f = _mnist_copy(tmp) / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:100_000])
    return _load_test(tmp)


@case("MNIST: image header count edited to 1,000", "corrupt")
def _(tmp):
    f = _mnist_copy(tmp) / "t10k-images-idx3-ubyte"
    data = bytearray(f.read_bytes())
    data[4:8] = (1000).to_bytes(4, "big")
    f.write_bytes(bytes(data))
    return _load_test(tmp)


@case("MNIST: truncated label file", "corrupt")
def _(tmp):
    f = _mnist_copy(tmp) / "t10k-labels-idx1-ubyte"
    f.write_bytes(f.read_bytes()[:5_000])
    return _load_test(tmp)


@case("MNIST: image file with a wrong magic number", "corrupt")
def _(tmp):
    f = _mnist_copy(tmp) / "t10k-images-idx3-ubyte"
    data = bytearray(f.read_bytes())
    data[0:4] = b"\x00\x00\x09\x01"
    f.write_bytes(bytes(data))
    return _load_test(tmp)


# ------------------------------------------------------------------------------ runner
def classify(words: tuple[str, ...], fn: Callable[[Path], object]) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        try:
            result = fn(Path(d))
        except CLEAR_TYPES as err:
            msg = f"{type(err).__name__}: {err}"
            ok = any(w.lower() in str(err).lower() for w in words)
            return ("clear" if ok else "cryptic"), msg
        except Exception as err:  # noqa: BLE001 - the survey records every failure
            return "cryptic", f"{type(err).__name__}: {err}"
    return "silent", f"returned {str(result)[:100]!r}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", "-v", action="store_true", help="print every message")
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    for name, words, fn in CASES:
        outcome, msg = classify(words, fn)
        counts[outcome] += 1
        line = f"{outcome:8s} {name}"
        if args.verbose or outcome != "clear":
            line += f"\n         {msg.splitlines()[0][:200] if msg else ''}"
        print(line)
    print(f"\n{len(CASES)} cases: {counts['clear']} clear, {counts['cryptic']} cryptic, "
          f"{counts['silent']} silent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
