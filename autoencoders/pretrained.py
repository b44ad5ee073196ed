r"""The model zoo: pretrained sprite models for chapters 6 and 7, and how they were made.

Training a model that disentangles takes tens of thousands of steps, far more than a
chapter can afford while a reader waits. The zoo ships those models inside the
package (``autoencoders/zoo``) together with a manifest per model that records how to
remake it::

    from autoencoders import pretrained

    pretrained.available()             # ['ch6-betavae-b16-seed0', ...]
    pretrained.info("ch7-adagvae-k1-seed0")["metrics"]["mig"]
    model = pretrained.load("ch7-adagvae-k1-seed0")   # eval mode, on get_device()

and from a shell, to retrain one from scratch (resumable; ``make pretrained`` trains
them all)::

    python -m autoencoders.pretrained train ch7-adagvae-k1-seed0

**Data.** Every model is trained on :class:`~autoencoders.procedural_sprites.ProceduralSprites`
at ``side=32`` (32 x 32 block averages of the 64 x 64 rendering, about four times
cheaper to train on than 64 x 64), on *fresh* weakly-supervised pairs every step
(:class:`~autoencoders.weak_pairs.WeakPairs` in stream mode). The β-VAEs see exactly
the images the Ada-GVAE of the same seed sees, without the pairing: each step's
batch is the two views of the same pairs, concatenated.

**Architecture.** The convolutional VAE of disentanglement_lib scaled to 32 x 32:
three 4 x 4 / 2 convolutions (32, 32, 64 channels), a 256-unit layer, 10 latent
dimensions, the mirror decoder, leaky ReLUs and a Bernoulli likelihood.

**Files.** ``NAME.pt`` is a :func:`~autoencoders.checkpoint.save_checkpoint` file
with float16 weights (:func:`load` restores float32), ``NAME.json`` its manifest:

* ``command``: the shell command that trains the model from scratch;
* ``config``: architecture, data, β, k, steps, pairs per step, learning rate, seed;
* ``provenance``: package version and git commit, torch version, hardware, wall time;
* ``history``: training means every ``eval_every`` steps with the learning curve of
  MIG and DCI disentanglement on the evaluation set, and ``early``, the training
  means over the first 50 steps in blocks of 10 (what the replay test compares);
* ``metrics``: measured on the fixed evaluation set (:func:`evaluation_set`) with the
  float16 weights that ship, so that loading the file reproduces them;
* ``sha256``: of ``NAME.pt``.

The metrics are those of :mod:`autoencoders.disentanglement`: MIG on the posterior
means of the evaluation images and DCI (extra-trees importances) fit on one half of
them and tested on the other.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .disentanglement import dci, mig_details
from .history import History
from .inference import encode_dataset
from .metrics import kl_per_dimension
from .nets import ConvDecoder, ConvEncoder
from .procedural_sprites import ProceduralSprites
from .train import evaluate, fit
from .utils import fast_mode, get_device, seed_everything
from .variational import VAE, AdaGVAE
from .weak_pairs import WeakPairs

__all__ = [
    "ZooConfig",
    "available",
    "info",
    "load",
    "build_model",
    "evaluation_set",
    "measure",
    "train_entry",
    "load_or_retrain",
    "retrain_requested",
    "ZOO_DIR",
    "FAST_RETRAIN_STEPS",
]

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
"""Folder of the shipped models and manifests (package data)."""

# Evaluation set shared by every entry: fixed factors, so every number is comparable.
_EVAL_SIZE = 4_000
_EVAL_RNG = 20_260_101
# The replay record: training means over the first _EARLY_STEPS steps in blocks.
_EARLY_STEPS, _EARLY_BLOCK = 50, 10
_ACTIVE_KL = 0.1  # nats: a latent dimension with a larger mean KL is "active"
FAST_RETRAIN_STEPS = 60
"""Steps of a retrained entry in fast mode (``AUTOENCODERS_FAST=1``): the loop runs, CI
stays quick, and the model learns next to nothing."""


@dataclass(frozen=True)
class ZooConfig:
    """Everything that determines a zoo model (with the code of this module).

    Attributes
    ----------
    kind : {'adagvae', 'betavae'}
        Ada-GVAE on pairs, or a β-VAE on the same images unpaired.
    beta : float
        Weight of the KL term (both kinds).
    k : int or 'random'
        Changed factors per pair (:func:`~autoencoders.weak_pairs.sample_pairs`);
        for a β-VAE it only decides which images it sees.
    seed : int
        Seeds the initial weights, the pairs and the sampled latents.
    steps : int
        Optimiser steps.
    pairs_per_step : int
        Pairs per step: ``2 * pairs_per_step`` images for either kind.
    lr : float
        Adam's learning rate.
    latent_dim, side, channels, hidden
        The networks (see the module docstring).
    eval_every : int
        Steps between two points of the learning curve.
    chapter : int
        The chapter that uses the model.
    """

    kind: str
    beta: float
    k: int | str
    seed: int
    chapter: int
    steps: int = 20_000
    pairs_per_step: int = 32
    lr: float = 1e-3
    latent_dim: int = 10
    side: int = 32
    channels: tuple[int, ...] = (32, 32, 64)
    hidden: int = 256
    eval_every: int = 1_000

    @property
    def data(self) -> str:
        """The data set, in words."""
        return f"ProceduralSprites(side={self.side}), fresh pairs every step"


def _entries() -> dict[str, ZooConfig]:
    out = {}
    for seed in (0, 1, 2):
        out[f"ch7-adagvae-k1-seed{seed}"] = ZooConfig("adagvae", 1.0, 1, seed, 7)
        out[f"ch7-betavae-b1-seed{seed}"] = ZooConfig("betavae", 1.0, 1, seed, 7)
    # The ablation: compared with the k = 1 model's learning curve at the same step.
    out["ch7-adagvae-krandom-seed0"] = ZooConfig("adagvae", 1.0, "random", 0, 7, steps=10_000)
    # Chapter 6's sweep: beta = 1 is ch7-betavae-b1-seed0 (three seeds).
    for beta in (4, 8, 16):
        out[f"ch6-betavae-b{beta}-seed0"] = ZooConfig("betavae", float(beta), 1, 0, 6)
    return out


ENTRIES: dict[str, ZooConfig] = _entries()
"""Every zoo entry by name: ``chC-MODEL[-bBETA|-kK]-seedS``."""


# ------------------------------------------------------------------------------- access
def _config(name: str) -> ZooConfig:
    if name not in ENTRIES:
        raise KeyError(f"name must be one of the zoo entries {sorted(ENTRIES)}, got {name!r}")
    return ENTRIES[name]


def _command(name: str) -> str:
    return f"python -m autoencoders.pretrained train {name}"


def _missing(path: Path, name: str, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} of zoo entry {name!r} not found at '{path}'; regenerate it with "
        f"`{_command(name)}` (or `make pretrained`)"
    )


def available(zoo_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the zoo entries whose model file and manifest are present, sorted."""
    folder = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    return sorted(
        n for n in ENTRIES if (folder / f"{n}.pt").is_file() and (folder / f"{n}.json").is_file()
    )


def info(name: str, zoo_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest of entry ``name`` (a dict; see the module docstring).

    Raises
    ------
    KeyError
        If ``name`` is not a zoo entry.
    FileNotFoundError
        If its manifest is missing (the message gives the command that remakes it).
    """
    _config(name)
    path = (Path(zoo_dir) if zoo_dir is not None else ZOO_DIR) / f"{name}.json"
    if not path.is_file():
        raise _missing(path, name, "the manifest")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_model(config: ZooConfig | str) -> nn.Module:
    """A fresh, built model of an entry's architecture (untrained weights).

    Returns a :class:`~autoencoders.variational.VAE` for a β-VAE and an
    :class:`~autoencoders.variational.AdaGVAE` around one for Ada-GVAE.
    """
    cfg = _config(config) if isinstance(config, str) else config
    vae = VAE(
        ConvEncoder(side=cfg.side, channels=cfg.channels, hidden=cfg.hidden,
                    activation=nn.LeakyReLU),
        ConvDecoder(cfg.latent_dim, side=cfg.side, channels=cfg.channels[::-1],
                    hidden=cfg.hidden, activation=nn.LeakyReLU),
        cfg.latent_dim,
        likelihood="bernoulli",
    )
    vae.build(torch.zeros(1, 1, cfg.side, cfg.side))
    if cfg.kind == "adagvae":
        return AdaGVAE(vae)
    if cfg.kind == "betavae":
        return vae
    raise ValueError(f"config.kind must be 'adagvae' or 'betavae', got {cfg.kind!r}")


def load(
    name: str,
    device: str | torch.device | None = None,
    zoo_dir: str | os.PathLike | None = None,
) -> nn.Module:
    """Load zoo entry ``name``: built, float32, in eval mode, on ``device``.

    The file's SHA-256 must match its manifest, and the checkpoint's own digest its
    contents (:func:`~autoencoders.checkpoint.load_checkpoint`).

    Parameters
    ----------
    name : str
        One of :data:`ENTRIES` (see :func:`available`).
    device : str or torch.device, optional
        Default :func:`~autoencoders.utils.get_device`.
    zoo_dir : path, optional
        Folder holding ``NAME.pt`` and ``NAME.json``; default the package's.

    Raises
    ------
    FileNotFoundError
        If the model file or its manifest is missing.
    ValueError
        If the file's SHA-256 differs from the manifest's (corrupt or replaced file).
    """
    manifest = info(name, zoo_dir)
    path = (Path(zoo_dir) if zoo_dir is not None else ZOO_DIR) / f"{name}.pt"
    if not path.is_file():
        raise _missing(path, name, "the model file")
    digest = _sha256(path)
    if digest != manifest["sha256"]:
        raise ValueError(
            f"zoo file '{path}' is corrupt or replaced: its SHA-256 is {digest}, the "
            f"manifest expects {manifest['sha256']}; regenerate it with `{_command(name)}`"
        )
    model = build_model(name).half()
    load_checkpoint(path, model, map_location="cpu")
    return model.float().to(get_device(device)).eval()


def retrain_requested() -> bool:
    """True when ``AUTOENCODERS_RETRAIN`` is ``1``, ``true``, ``yes`` or ``on``."""
    return os.environ.get("AUTOENCODERS_RETRAIN", "").strip().lower() in {"1", "true", "yes", "on"}


def _retrain_dir() -> Path:
    root = os.environ.get("AUTOENCODERS_ZOO_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "autoencoders" / "zoo"
    return base / ("fast" if fast_mode() else "full")


def load_or_retrain(
    name: str, device: str | torch.device | None = None, *, progress: bool = True
) -> tuple[nn.Module, dict[str, Any]]:
    """The model a chapter uses, and its manifest: shipped, or retrained on request.

    By default this is ``(load(name, device), info(name))``. With
    ``AUTOENCODERS_RETRAIN=1`` the entry is first trained from scratch with the same
    code (:func:`train_entry`) into ``$AUTOENCODERS_ZOO_CACHE`` (default
    ``~/.cache/autoencoders/zoo``), unless a finished retrained file is already
    there; in fast mode (``AUTOENCODERS_FAST=1``) it trains only
    :data:`FAST_RETRAIN_STEPS` steps, into a separate ``fast`` folder.
    """
    if not retrain_requested():
        return load(name, device), info(name)
    folder = _retrain_dir()
    if name not in available(folder):
        train_entry(name, steps=FAST_RETRAIN_STEPS if fast_mode() else None, out_dir=folder,
                    device=device, progress=progress)
    return load(name, device, zoo_dir=folder), info(name, zoo_dir=folder)


# --------------------------------------------------------------------------- evaluation
def evaluation_set(
    side: int = 32, n: int = _EVAL_SIZE, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed evaluation images and their factors: ``(x [n, 1, side, side], factors [n, 5])``.

    The same factors for every entry and every call (a fixed seed), so the zoo's
    numbers are comparable with each other and reproducible.
    """
    ds = ProceduralSprites(side=side)
    factors = ds.sample_factors(n, rng=_EVAL_RNG)
    return ds.images(factors).to(get_device(device)), factors


def measure(model: nn.Module, x: torch.Tensor, factors: torch.Tensor) -> dict[str, Any]:
    r"""The zoo's numbers for a model on evaluation images ``x`` with true ``factors``.

    Returns a dict with ``mig`` (:func:`~autoencoders.disentanglement.mig_details` on
    the posterior means), ``dci_d``, ``dci_c``, ``dci_i`` (DCI fit on the first half,
    tested on the second), ``elbo``, ``log_likelihood``, ``kl`` (nats per image, one
    sampled :math:`z` per image, with the torch seed fixed at 0 so repeated calls
    agree), ``kl_per_dim`` and ``active_units`` (mean KL above 0.1 nats),
    ``code_to_factor`` (MIG's argmax factor per latent dimension), ``mig_gap`` (the
    normalised gap per factor, whose mean is MIG) and ``factor_to_code`` (the latent
    dimension with the most information about each factor).
    """
    vae = model.vae if isinstance(model, AdaGVAE) else model
    codes = encode_dataset(vae, x)
    details = mig_details(codes, factors)
    half = len(x) // 2
    d = dci(codes[:half], factors[:half], codes[half:], factors[half:])
    state = torch.get_rng_state()
    torch.manual_seed(0)
    try:
        res = evaluate(vae, x, device=x.device)
    finally:
        torch.set_rng_state(state)
    kl_dims = kl_per_dimension(vae, x)
    return {
        "mig": float(details.score),
        "dci_d": float(d["disentanglement"]),
        "dci_c": float(d["completeness"]),
        "dci_i": float(d["informativeness"]),
        "elbo": float(res["elbo"]),
        "log_likelihood": float(res["log_likelihood"]),
        "kl": float(res["kl_divergence"]),
        "kl_per_dim": [round(float(v), 4) for v in kl_dims],
        "active_units": int((kl_dims > _ACTIVE_KL).sum()),
        "code_to_factor": [int(j) for j in details.code_to_factor],
        "mig_gap": [round(float(g), 5) for g in details.gap],
        "factor_to_code": [int(j) for j in np.argmax(details.mi, axis=0)],
    }


# ----------------------------------------------------------------------------- training
class _Unpaired:
    """The images of a :class:`WeakPairs` stream, unpaired: ``(cat(x1, x2),)`` per step."""

    def __init__(self, pairs: WeakPairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[tuple[torch.Tensor]]:
        for x1, x2, _ in self.pairs:
            yield (torch.cat([x1, x2]),)


def _segments(cfg: ZooConfig, steps: int) -> list[int]:
    """Segment lengths: blocks of 10 up to step 50 (the replay record), then eval_every."""
    out, done = [], 0
    while done < steps:
        size = _EARLY_BLOCK if done < _EARLY_STEPS else cfg.eval_every - done % cfg.eval_every
        out.append(min(size, steps - done))
        done += out[-1]
    return out


def _segment_data(cfg: ZooConfig, index: int, steps: int, device: torch.device) -> Any:
    seed = int(np.random.SeedSequence([cfg.seed, index]).generate_state(1)[0])
    pairs = WeakPairs(ProceduralSprites(side=cfg.side), batch_size=cfg.pairs_per_step,
                      k=cfg.k, rng=seed, steps_per_epoch=steps, device=device)
    return pairs if cfg.kind == "adagvae" else _Unpaired(pairs)


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s)"


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _round(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 5) for k, v in values.items()}


def train_entry(
    name: str,
    *,
    steps: int | None = None,
    out_dir: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    evaluate_curve: bool = True,
) -> dict[str, Any]:
    """Train zoo entry ``name`` from scratch (or resume it) and write its file and manifest.

    Training runs in segments (blocks of 10 steps up to step 50, then ``eval_every``
    steps); after each, the model, the optimizer, the torch random state and the
    record so far are saved to ``work_dir/NAME.train.pt``, so a killed run resumes
    where its last segment ended. Each segment's pairs come from their own seed
    (the entry's seed and the segment's index), so a resumed run sees the same data
    as an uninterrupted one.

    Parameters
    ----------
    name : str
        A zoo entry (:data:`ENTRIES`).
    steps : int, optional
        Train this many steps instead of the entry's (e.g. 50 to replay the start).
    out_dir : path, optional
        Where ``NAME.pt`` and ``NAME.json`` go; default :data:`ZOO_DIR`.
    work_dir : path, optional
        Where the resumable checkpoint goes; default ``out_dir``.
    device : str or torch.device, optional
        Default :func:`~autoencoders.utils.get_device`.
    progress : bool, default True
        Progress bars of :func:`~autoencoders.train.fit` and one line per segment.
    evaluate_curve : bool, default True
        Measure MIG and DCI after every ``eval_every`` steps (the learning curve).

    Returns
    -------
    dict
        The manifest that was written.
    """
    cfg = _config(name)
    steps = cfg.steps if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    out = Path(out_dir) if out_dir is not None else ZOO_DIR
    work = Path(work_dir) if work_dir is not None else out
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    dev = get_device(device)
    resume_path = work / f"{name}.train.pt"

    seed_everything(cfg.seed)
    model = build_model(cfg).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    record: dict[str, Any] = {"done": 0, "segment": 0, "train_seconds": 0.0,
                              "eval_seconds": 0.0, "early": [], "curve": []}
    if resume_path.is_file():
        meta = load_checkpoint(resume_path, model, optimizer, map_location=dev)
        saved = json.loads(meta["record"])
        # the same run if only the step budget changed and it has not been passed yet
        same = {**saved.get("config", {}), "steps": None} == {**_jsonable(cfg), "steps": None}
        if same and saved.get("done", 0) <= steps:
            record = saved
            torch.set_rng_state(meta["torch_rng"])
            if progress:
                print(f"{name}: resuming at step {record['done']:,}", flush=True)
        else:  # another configuration: start again
            seed_everything(cfg.seed)
            model = build_model(cfg).to(dev)
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x_eval = factors_eval = None
    if evaluate_curve:
        x_eval, factors_eval = evaluation_set(cfg.side, device=dev)

    lengths = _segments(cfg, steps)
    for index in range(record["segment"], len(lengths)):
        n = lengths[index]
        t0 = time.perf_counter()
        history: History = fit(model, _segment_data(cfg, index, n, dev), epochs=1,
                               optimizer=optimizer, loss_kwargs={"beta": cfg.beta},
                               device=dev, progress=False)
        record["train_seconds"] += time.perf_counter() - t0
        record["done"] += n
        record["segment"] = index + 1
        means = _round({k: v[-1] for k, v in history.train.items()})
        if record["done"] <= _EARLY_STEPS:
            record["early"].append({"step": record["done"], **means})
        if record["done"] % cfg.eval_every == 0 or record["done"] == steps:
            point = {"step": record["done"], **means}
            if evaluate_curve:
                t1 = time.perf_counter()
                m = measure(model, x_eval, factors_eval)
                model.train()
                point |= {"mig": round(m["mig"], 5), "dci_d": round(m["dci_d"], 5),
                          "active_units": m["active_units"]}
                record["eval_seconds"] += time.perf_counter() - t1
            record["curve"].append(point)
            if progress:
                print(f"{name}: step {record['done']:,}/{steps:,} "
                      + " ".join(f"{k}={v}" for k, v in point.items() if k != "step"),
                      flush=True)
        record |= {"config": _jsonable(cfg), "steps": steps}
        save_checkpoint(resume_path, model, optimizer,
                        input_shape=(1, 1, cfg.side, cfg.side),
                        record=json.dumps(record), torch_rng=torch.get_rng_state())
    return _finish(name, cfg, model, record, steps, out, dev)


def _jsonable(cfg: ZooConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["channels"] = list(d["channels"])
    return d


def _finish(name: str, cfg: ZooConfig, model: nn.Module, record: dict[str, Any],
            steps: int, out: Path, dev: torch.device) -> dict[str, Any]:
    """Round the weights to float16, measure them, write NAME.pt and NAME.json."""
    from . import __version__

    model = model.half().float().eval()  # what the file will hold, exactly
    x_eval, factors_eval = evaluation_set(cfg.side, device=dev)
    metrics = measure(model, x_eval, factors_eval)
    path = out / f"{name}.pt"
    save_checkpoint(path, model.half(), input_shape=(1, 1, cfg.side, cfg.side),
                    zoo_entry=name, steps=steps)
    manifest = {
        "name": name,
        "command": _command(name) + ("" if steps == cfg.steps else f" --steps {steps}"),
        "config": {**_jsonable(cfg), "steps": steps, "data": cfg.data,
                   "evaluation_set": {"size": _EVAL_SIZE, "rng": _EVAL_RNG}},
        "provenance": {
            "package_version": __version__,
            "git_commit": _git_commit(),
            "torch_version": torch.__version__,
            "hardware": _hardware(dev),
            "train_seconds": round(record["train_seconds"], 1),
            "eval_seconds": round(record["eval_seconds"], 1),
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
        },
        "history": {"early": record["early"], "curve": record["curve"]},
        "metrics": _round({k: v for k, v in metrics.items() if isinstance(v, float)})
        | {k: v for k, v in metrics.items() if not isinstance(v, float)},
        "file_bytes": path.stat().st_size,
        "sha256": _sha256(path),
    }
    tmp = out / f".{name}.json.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    os.replace(tmp, out / f"{name}.json")
    return manifest


# -------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m autoencoders.pretrained {list,train,verify} ...``."""
    parser = argparse.ArgumentParser(prog="python -m autoencoders.pretrained",
                                     description="The autoencoders model zoo.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the entries and whether their files are present")
    p_train = sub.add_parser("train", help="train entries from scratch (resumable)")
    p_train.add_argument("names", nargs="+", help="entry names, or 'all'")
    p_train.add_argument("--steps", type=int, default=None)
    p_train.add_argument("--out", default=None, help="output folder (default: the package's)")
    p_train.add_argument("--work", default=None, help="folder of the resumable checkpoints")
    p_train.add_argument("--device", default=None)
    sub.add_parser("verify", help="check every present file against its manifest")
    args = parser.parse_args(argv)
    if args.command == "list":
        present = set(available())
        for name in ENTRIES:
            print(f"{name:<28} {'present' if name in present else 'missing'}")
        return 0
    if args.command == "verify":
        for name in available():
            load(name, device="cpu")
            print(f"{name}: ok")
        return 0
    names = list(ENTRIES) if args.names == ["all"] else args.names
    for name in names:
        t0 = time.perf_counter()
        manifest = train_entry(name, steps=args.steps, out_dir=args.out, work_dir=args.work,
                               device=args.device)
        print(f"{name}: done in {time.perf_counter() - t0:.0f} s, "
              f"MIG {manifest['metrics']['mig']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
