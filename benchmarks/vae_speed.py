"""Seconds per epoch of one VAE trained five ways, side by side, in one process.

The model is the MLP VAE of Pyro's VAE example: 784-400-50, softplus hidden layers, a
Bernoulli likelihood on grey-level MNIST, batch 256, Adam with learning rate 1e-3. It is
trained on the same images for the same number of epochs by

``autoencoders``
    ``VAE`` + ``fit`` + ``TensorLoader`` (the package's own path).
``hand-written``
    A plain PyTorch loop over in-memory tensors with its own small ``Encoder`` and
    ``Decoder`` modules, ``F.binary_cross_entropy_with_logits`` and the closed-form KL.
    The epoch loss is summed on the device and read once per epoch.
``tutorial``
    The same modules and loss fed by ``DataLoader(MNIST(transform=ToTensor()),
    batch_size=256, shuffle=True)``, the loop most tutorials teach.
``pyro``
    Pyro ``SVI`` with ``Trace_ELBO`` (Monte Carlo KL) on the same modules, fed from
    in-memory tensors; skipped with a note when ``pyro-ppl`` is not installed.
``autoencoders+compile``
    Like ``autoencoders``, after ``model.compile()`` (``torch.compile``); a failure to
    compile is reported in the table instead of stopping the benchmark.

With ``--candidates`` it also runs the speed-ups that were tried (see ``CANDIDATES``):
``fit`` with torch's default ``Adam`` instead of its fused default, the hand-written loop
with fused Adam (the like-for-like comparison), and a 4x larger batch with a 2x learning
rate.

Every run starts from the same seed. The first epoch of a run is a warm-up (it includes
``torch.compile``'s compilation) and is reported separately; the median and minimum are
over the other epochs of every repeat. Repeats interleave the runners in a rotated order
so that drift in the machine's load hits all of them alike. After training, each model's
test ELBO is estimated on the test split with :math:`z` sampled from :math:`q(z \\mid x)`
(one sample per image, nats per image).

The roofline is the float32 GEMM throughput of this machine, measured on the shape of
the largest layer (``[256, 784] @ [784, 400]``). A run's fraction of it is
``N_train * FLOP_PER_IMAGE / seconds_per_epoch / gemm_flops``.

Usage::

    python -m benchmarks.vae_speed [--epochs 3] [--repeats 2] [--threads N] [--device cpu]
        [--runners autoencoders,hand-written,...] [--candidates] [--limit N] [--json PATH]

On a machine shared with other jobs, two intra-op threads lose most of their time
waiting for each other; ``--threads 1`` gives steadier numbers there, and the process
CPU time (column ``CPU s/ep``) is steadier than the wall clock.

The data root is ``$AUTOENCODERS_DATA``, else ``../shared/data`` next to the repository.
On CUDA the images live on the device, no runner syncs per step except Pyro (``svi.step``
returns a float) and ``fit`` (``compute_loss`` returns float diagnostics), and the table
adds the seconds of one epoch of the 60,000-image MNIST (scaled from the images used).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from autoencoders import VAE
from autoencoders.data import TensorLoader, load_mnist
from autoencoders.nets import MLPDecoder, MLPEncoder
from autoencoders.train import evaluate, fit
from autoencoders.utils import get_device

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

PIXELS = 784
HIDDEN = 400
LATENT_DIM = 50
BATCH_SIZE = 256
LR = 1e-3
SEED = 0
FULL_MNIST = 60_000
EVAL_BATCH = 1000


def flop_per_image(latent_dim: int = LATENT_DIM, hidden: int = HIDDEN, pixels: int = PIXELS) -> float:
    """Matrix-multiply FLOP of one training step per image (forward + backward).

    A linear layer ``n_in -> n_out`` costs ``2 n_in n_out`` FLOP per image forward (one
    multiply and one add per weight). With the defaults, per image::

        encoder  784 -> 400          2 * 784 * 400      =   627,200
        heads    400 -> 50, twice    2 * 2 * 400 * 50   =    80,000
        decoder   50 -> 400          2 * 50 * 400       =    40,000
        decoder  400 -> 784          2 * 400 * 784      =   627,200
        forward                                          1,374,400

    Backward costs twice the forward (one GEMM for the weight gradient and one for the
    input gradient of every layer), so an epoch costs ``3 * 1,374,400 = 4,123,200``
    FLOP per image, about **4.1 MFLOP**. This is the conventional count. Autograd skips
    the input gradient of the first layer (the images need none), so the GEMMs actually
    executed amount to ``4,123,200 - 627,200 = 3,496,000`` FLOP (3.5 MFLOP). The
    elementwise work (softplus, BCE, sampling, and Adam's ~10 FLOP per parameter per step
    for 688,884 parameters, ~27 kFLOP per image at batch 256) is under 1 % and left out.
    """
    forward = 2 * (2 * pixels * hidden + 3 * hidden * latent_dim)
    return 3.0 * forward


FLOP_PER_IMAGE = flop_per_image()  # 4.1232e6


# -------------------------------------------------------------------------- environment
def data_root() -> Path:
    """``$AUTOENCODERS_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("AUTOENCODERS_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "data"
    if not (root / "MNIST" / "raw").is_dir():
        raise FileNotFoundError(
            f"no MNIST under {str(root)!r}: set AUTOENCODERS_DATA to a torchvision data root "
            "(root/MNIST/raw/...) or put the offline copy at ../shared/data"
        )
    return root


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def write_json(path: Path, report: dict[str, object]) -> None:
    """Write a benchmark's report as indented JSON, creating the folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))


def machine_info(device: torch.device) -> dict[str, object]:
    info: dict[str, object] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


Clock = tuple[float, float]  # (wall seconds, process CPU seconds)


def now(device: torch.device) -> Clock:
    sync(device)
    return time.perf_counter(), time.process_time()


def durations(stamps: Sequence[Clock]) -> list[Clock]:
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:])]


def gemm_gflops(device: torch.device, reps: int = 50, blocks: int = 10) -> dict[str, float]:
    """float32 throughput of ``[256, 784] @ [784, 400]`` with ``torch.matmul``.

    ``blocks`` blocks of ``reps`` products each; returns the best and the median block
    in GFLOP/s. The best is the roofline (what the machine can do when it is not
    disturbed).
    """
    gen = torch.Generator().manual_seed(SEED)
    a = torch.randn(BATCH_SIZE, PIXELS, generator=gen).to(device)
    b = torch.randn(PIXELS, HIDDEN, generator=gen).to(device)
    out = torch.empty(BATCH_SIZE, HIDDEN, device=device)
    flop = 2.0 * BATCH_SIZE * PIXELS * HIDDEN
    for _ in range(reps):  # warm-up: thread pool, caches, cuBLAS handles
        torch.matmul(a, b, out=out)
    rates = []
    for _ in range(blocks):
        t0 = now(device)[0]
        for _ in range(reps):
            torch.matmul(a, b, out=out)
        rates.append(reps * flop / (now(device)[0] - t0) / 1e9)
    return {"best": max(rates), "median": statistics.median(rates)}


# ------------------------------------------------------------------------------- setup
@dataclass
class Setup:
    """What every runner shares: data, device and hyperparameters."""

    train: torch.Tensor  # [N, 1, 28, 28] on device
    test: torch.Tensor  # [M, 1, 28, 28] on device
    root: Path
    device: torch.device
    batch_size: int = BATCH_SIZE
    latent_dim: int = LATENT_DIM
    lr: float = LR
    compile_mode: str | None = None
    seed: int = SEED


@dataclass
class RunOutcome:
    """One training run: per-epoch (wall, CPU) seconds and the final test ELBO."""

    epochs: list[Clock]
    test_elbo: float


Runner = Callable[[Setup, int], RunOutcome]


# ------------------------------------------------------------ hand-written model parts
class Encoder(nn.Module):
    """784 -> 400 (softplus) -> (mu, log_var), each 50 wide."""

    def __init__(self, latent_dim: int = LATENT_DIM, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.fc = nn.Linear(PIXELS, hidden)
        self.mu = nn.Linear(hidden, latent_dim)
        self.log_var = nn.Linear(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.softplus(self.fc(x))
        return self.mu(h), self.log_var(h)


class Decoder(nn.Module):
    """50 -> 400 (softplus) -> 784 Bernoulli logits."""

    def __init__(self, latent_dim: int = LATENT_DIM, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.fc = nn.Linear(latent_dim, hidden)
        self.out = nn.Linear(hidden, PIXELS)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(F.softplus(self.fc(z)))


def negative_elbo(x: torch.Tensor, encoder: Encoder, decoder: Decoder) -> torch.Tensor:
    """Batch mean of ``-ELBO`` for flat images ``x [B, 784]``, one sample of z."""
    mu, log_var = encoder(x)
    z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
    rec = F.binary_cross_entropy_with_logits(decoder(z), x, reduction="sum")
    kl = 0.5 * (mu.pow(2) + log_var.exp() - 1.0 - log_var).sum()
    return (rec + kl) / x.shape[0]


@torch.no_grad()
def sampled_elbo(x: torch.Tensor, encoder: Encoder, decoder: Decoder) -> float:
    """Mean ELBO per image (nats), z sampled, of images ``x [M, 1, 28, 28]``."""
    encoder.eval()
    decoder.eval()
    total = 0.0
    for start in range(0, x.shape[0], EVAL_BATCH):
        total += -negative_elbo(x[start : start + EVAL_BATCH].flatten(1), encoder, decoder).item() * min(
            EVAL_BATCH, x.shape[0] - start
        )
    return total / x.shape[0]


def _hand_model(setup: Setup, adam: dict | None = None) -> tuple[Encoder, Decoder, torch.optim.Optimizer]:
    torch.manual_seed(setup.seed)
    encoder = Encoder(setup.latent_dim).to(setup.device)
    decoder = Decoder(setup.latent_dim).to(setup.device)
    params = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=setup.lr, **(adam or {}))
    return encoder, decoder, optimizer


def _batches(x: torch.Tensor, batch_size: int, gen: torch.Generator):
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    for start in range(0, x.shape[0], batch_size):
        yield x[perm[start : start + batch_size]]


# ------------------------------------------------------------------------------ runners
def run_autoencoders(
    setup: Setup, epochs: int, *, compile: bool = False, adam: dict | None = None
) -> RunOutcome:
    """``VAE`` + ``TensorLoader`` + ``fit``; with ``compile``, after ``model.compile()``.

    ``adam=None`` lets ``fit`` create its default optimizer; a dict creates
    ``torch.optim.Adam(model.parameters(), lr, **adam)`` instead.
    """
    torch.manual_seed(setup.seed)
    model = VAE(
        MLPEncoder(hidden=(HIDDEN,)), MLPDecoder(setup.latent_dim, hidden=(HIDDEN,)), setup.latent_dim
    )
    model = model.build(setup.train[:1].cpu()).to(setup.device)
    if compile:
        model.compile(**({"mode": setup.compile_mode} if setup.compile_mode else {}))
    optimizer = None if adam is None else torch.optim.Adam(model.parameters(), lr=setup.lr, **adam)
    loader = TensorLoader(
        setup.train, batch_size=setup.batch_size, rng=torch.Generator().manual_seed(setup.seed)
    )
    stamps = [now(setup.device)]
    fit(
        model,
        loader,
        epochs=epochs,
        lr=setup.lr,
        optimizer=optimizer,
        loss_kwargs={"likelihood": "bernoulli"},
        progress=False,
        callbacks=[lambda *_: stamps.append(now(setup.device))],
    )
    elbo = evaluate(model, setup.test, likelihood="bernoulli", batch_size=EVAL_BATCH)["elbo"]
    return RunOutcome(durations(stamps), elbo)


def run_autoencoders_compiled(setup: Setup, epochs: int) -> RunOutcome:
    return run_autoencoders(setup, epochs, compile=True)


def run_hand_written(setup: Setup, epochs: int, *, adam: dict | None = None) -> RunOutcome:
    """The loop one writes by hand over tensors already in memory."""
    encoder, decoder, optimizer = _hand_model(setup, adam)
    x_all = setup.train.flatten(1)
    gen = torch.Generator().manual_seed(setup.seed)
    stamps = [now(setup.device)]
    for _ in range(epochs):
        encoder.train()
        decoder.train()
        total = torch.zeros((), device=setup.device)
        for x in _batches(x_all, setup.batch_size, gen):
            loss = negative_elbo(x, encoder, decoder)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * x.shape[0]
        _ = total.item() / x_all.shape[0]  # the epoch's mean loss, read once per epoch
        stamps.append(now(setup.device))
    return RunOutcome(durations(stamps), sampled_elbo(setup.test, encoder, decoder))


def run_tutorial(setup: Setup, epochs: int, *, limit: int | None = None) -> RunOutcome:
    """``DataLoader(MNIST(transform=ToTensor()), batch_size=256, shuffle=True)``."""
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import MNIST
    from torchvision.transforms import ToTensor

    dataset = MNIST(str(setup.root), train=True, download=False, transform=ToTensor())
    n = setup.train.shape[0]
    if n < len(dataset):  # a --limit run: the same first n images as the others
        dataset = Subset(dataset, range(n))
    loader = DataLoader(
        dataset, batch_size=setup.batch_size, shuffle=True, generator=torch.Generator().manual_seed(setup.seed)
    )
    encoder, decoder, optimizer = _hand_model(setup)
    stamps = [now(setup.device)]
    for _ in range(epochs):
        encoder.train()
        decoder.train()
        total = 0.0
        for x, _ in loader:
            x = x.to(setup.device).view(-1, PIXELS)
            loss = negative_elbo(x, encoder, decoder)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * x.shape[0]  # as the tutorials do
        stamps.append(now(setup.device))
    return RunOutcome(durations(stamps), sampled_elbo(setup.test, encoder, decoder))


def run_pyro(setup: Setup, epochs: int) -> RunOutcome:
    """Pyro ``SVI`` + ``Trace_ELBO`` over the same modules and in-memory tensors."""
    import pyro
    import pyro.distributions as dist
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import Adam

    pyro.clear_param_store()
    pyro.set_rng_seed(setup.seed)
    encoder, decoder, _ = _hand_model(setup)
    D = setup.latent_dim

    def model(x: torch.Tensor) -> None:
        pyro.module("decoder", decoder)
        with pyro.plate("data", x.shape[0]):
            prior = dist.Normal(x.new_zeros(x.shape[0], D), x.new_ones(x.shape[0], D))
            z = pyro.sample("latent", prior.to_event(1))
            # validate_args=False: grey-level pixels are outside a Bernoulli's {0, 1}
            # support; the log density is still the cross-entropy used by the others.
            pyro.sample("obs", dist.Bernoulli(logits=decoder(z), validate_args=False).to_event(1), obs=x)

    def guide(x: torch.Tensor) -> None:
        pyro.module("encoder", encoder)
        with pyro.plate("data", x.shape[0]):
            mu, log_var = encoder(x)
            pyro.sample("latent", dist.Normal(mu, torch.exp(0.5 * log_var)).to_event(1))

    svi = SVI(model, guide, Adam({"lr": setup.lr}), loss=Trace_ELBO())
    x_all = setup.train.flatten(1)
    gen = torch.Generator().manual_seed(setup.seed)
    stamps = [now(setup.device)]
    for _ in range(epochs):
        encoder.train()
        decoder.train()
        total = 0.0
        for x in _batches(x_all, setup.batch_size, gen):
            total += svi.step(x)  # a Python float: one host read per step
        stamps.append(now(setup.device))
    return RunOutcome(durations(stamps), sampled_elbo(setup.test, encoder, decoder))


RUNNERS: dict[str, Runner] = {
    "autoencoders": run_autoencoders,
    "hand-written": run_hand_written,
    "tutorial": run_tutorial,
    "pyro": run_pyro,
    "autoencoders+compile": run_autoencoders_compiled,
}
BASELINE = "hand-written"
DEFAULT_RUNNERS = tuple(RUNNERS)

# Candidate speed-ups, run with --candidates (or by name with --runners). Each is kept
# only if it wins at an equal or better test ELBO; book/performance.md has the verdicts.
BIG_BATCH, BIG_BATCH_LR = 1024, 2e-3  # 4x the batch, sqrt(4) = 2x the learning rate
CANDIDATES: dict[str, Runner] = {
    "autoencoders+torch-adam": lambda s, e: run_autoencoders(s, e, adam={}),
    "autoencoders+fused-adam": lambda s, e: run_autoencoders(s, e, adam={"fused": True}),
    "hand-written+fused-adam": lambda s, e: run_hand_written(s, e, adam={"fused": True}),
    "autoencoders+batch1024": lambda s, e: run_autoencoders(
        replace(s, batch_size=BIG_BATCH, lr=BIG_BATCH_LR), e
    ),
}
RUNNERS.update(CANDIDATES)


def pyro_available() -> bool:
    try:
        import pyro  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- results
@dataclass
class RunnerResult:
    """Everything measured for one runner across repeats (the JSON row)."""

    name: str
    status: str = "ok"  # ok | failed | skipped
    note: str = ""
    epoch_s: list[float] = field(default_factory=list)  # timed epochs, wall
    epoch_cpu_s: list[float] = field(default_factory=list)  # timed epochs, process CPU
    warmup_s: list[float] = field(default_factory=list)  # first epoch of each repeat
    test_elbo: list[float] = field(default_factory=list)  # one per repeat
    load_1min: list[float] = field(default_factory=list)  # after each repeat
    median_s: float | None = None
    min_s: float | None = None
    cpu_median_s: float | None = None
    mean_test_elbo: float | None = None
    ratio_to_baseline: float | None = None
    roofline_fraction: float | None = None
    s_per_60k_epoch: float | None = None

    def summarise(self, n_images: int, gemm: float, baseline: RunnerResult | None) -> None:
        if self.status != "ok":
            return
        self.median_s = statistics.median(self.epoch_s)
        self.min_s = min(self.epoch_s)
        self.cpu_median_s = statistics.median(self.epoch_cpu_s)
        self.mean_test_elbo = statistics.fmean(self.test_elbo)
        self.roofline_fraction = n_images * FLOP_PER_IMAGE / self.median_s / (gemm * 1e9)
        self.s_per_60k_epoch = self.median_s * FULL_MNIST / n_images
        if baseline is not None and baseline.median_s:
            self.ratio_to_baseline = self.median_s / baseline.median_s


def run_all(
    setup: Setup, names: Sequence[str], epochs: int, repeats: int, log: Callable[[str], None] = print
) -> dict[str, RunnerResult]:
    """Run each named runner ``repeats`` times, in a rotated order every repeat."""
    results = {name: RunnerResult(name) for name in names}
    if "pyro" in results and not pyro_available():
        results["pyro"].status = "skipped"
        results["pyro"].note = "pyro-ppl is not installed (pip install -e '.[bench]')"
        log("note: pyro-ppl is not installed; skipping the Pyro runner (pip install -e '.[bench]')")
    active = [n for n in names if results[n].status == "ok"]
    for r in range(repeats):
        k = r % len(active) if active else 0
        for name in active[k:] + active[:k]:
            res = results[name]
            if res.status != "ok":
                continue
            try:
                outcome = RUNNERS[name](setup, epochs)
            except Exception as err:  # report the failure in the table, keep going
                res.status = "failed"
                res.note = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"[:300]
                log(f"{name}: FAILED, {res.note}")
                log("".join(traceback.format_exception(err)[-3:]).rstrip())
                continue
            walls = [e[0] for e in outcome.epochs]
            cpus = [e[1] for e in outcome.epochs]
            timed = slice(1, None) if len(walls) > 1 else slice(None)
            res.warmup_s.append(walls[0])
            res.epoch_s += walls[timed]
            res.epoch_cpu_s += cpus[timed]
            res.test_elbo.append(outcome.test_elbo)
            res.load_1min.append(load_average())
            log(
                f"  repeat {r + 1}/{repeats} {name:<22} epochs {' '.join(f'{w:.2f}' for w in walls)} s, "
                f"test ELBO {outcome.test_elbo:.2f}, load {res.load_1min[-1]:.2f}"
            )
            if not math.isfinite(outcome.test_elbo):
                res.status = "failed"
                res.note = f"non-finite test ELBO {outcome.test_elbo}"
    return results


def format_table(results: dict[str, RunnerResult], cuda: bool) -> str:
    header = ["runner", "median s/ep", "min s/ep", "warm-up s", "CPU s/ep", "test ELBO",
              f"x {BASELINE}", "% roofline", "load"]
    if cuda:
        header.append("s / 60k epoch")
    rows = []
    for res in results.values():
        if res.status != "ok":
            rows.append([res.name, f"{res.status}: {res.note}"])
            continue
        row = [
            res.name,
            f"{res.median_s:.3f}",
            f"{res.min_s:.3f}",
            f"{statistics.median(res.warmup_s):.2f}",
            f"{res.cpu_median_s:.3f}",
            f"{res.mean_test_elbo:.2f}",
            "-" if res.ratio_to_baseline is None else f"{res.ratio_to_baseline:.3f}",
            f"{100 * res.roofline_fraction:.0f}",
            f"{statistics.fmean(res.load_1min):.1f}",
        ]
        if cuda:
            row.append(f"{res.s_per_60k_epoch:.3f}")
        rows.append(row)
    widths = [len(h) for h in header]
    for row in rows:
        if len(row) == len(header):
            widths = [max(w, len(c)) for w, c in zip(widths, row)]
    lines = ["  ".join(h.rjust(w) if j else h.ljust(w) for j, (h, w) in enumerate(zip(header, widths)))]
    for row in rows:
        if len(row) != len(header):
            lines.append(f"{row[0].ljust(widths[0])}  {row[1]}")
            continue
        lines.append("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


# -------------------------------------------------------------------------------- main
def build_setup(device: torch.device, limit: int | None = None, **overrides) -> Setup:
    root = data_root()
    train = load_mnist(root, train=True, download=False, device=device).images
    test = load_mnist(root, train=False, download=False, device=device).images
    if limit is not None:
        train, test = train[:limit], test[:limit]
    return Setup(train=train, test=test, root=root, device=device, **overrides)


def parse_runners(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNNERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"runners must be among {list(RUNNERS)}, got {text!r}")
    return list(dict.fromkeys(names))


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is a warm-up")
    parser.add_argument("--repeats", type=int, default=2, help="runs per runner, interleaved")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: autoencoders.get_device)")
    parser.add_argument("--runners", type=parse_runners, default=list(DEFAULT_RUNNERS),
                        help=f"comma-separated runners among {','.join(RUNNERS)} (default: the first five)")
    parser.add_argument("--candidates", action="store_true",
                        help=f"also run the candidate speed-ups {','.join(CANDIDATES)}")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N train/test images")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of every run (default 0)")
    parser.add_argument("--compile-mode", default=None,
                        help="torch.compile mode for autoencoders+compile (e.g. reduce-overhead)")
    parser.add_argument("--json", type=Path, default=RESULTS / "vae_speed.json", help="where to write the JSON")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1, got {args.limit}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    if args.candidates:
        args.runners = list(dict.fromkeys([*args.runners, *CANDIDATES]))

    info = machine_info(device)
    info["load_1min_start"] = load_average()
    print(
        f"os.cpu_count()={info['cpu_count']}, torch {info['torch']}, {info['threads']} thread(s), "
        f"device {device}, 1-min load average {info['load_1min_start']:.2f} ({info['date']})"
    )
    setup = build_setup(device, args.limit, compile_mode=args.compile_mode, seed=args.seed)
    n = setup.train.shape[0]
    gemm_start = gemm_gflops(device)
    print(
        f"VAE 784-{HIDDEN}-{LATENT_DIM}, softplus, Bernoulli, batch {BATCH_SIZE}, Adam {LR:g}; "
        f"{n:,} train / {setup.test.shape[0]:,} test MNIST images; {args.repeats} x {args.epochs} epochs "
        f"per runner ({'first epoch untimed' if args.epochs > 1 else 'single epoch timed'})"
    )
    print(f"GEMM [256,784]@[784,400] float32: {gemm_start['best']:.1f} GFLOP/s (best block), "
          f"{gemm_start['median']:.1f} (median); {FLOP_PER_IMAGE / 1e6:.2f} MFLOP per image per epoch")

    results = run_all(setup, args.runners, args.epochs, args.repeats)
    gemm_end = gemm_gflops(device)
    gemm = max(gemm_start["best"], gemm_end["best"])
    baseline = results.get(BASELINE)
    baseline = baseline if baseline is not None and baseline.status == "ok" else None
    if baseline is not None:
        baseline.summarise(n, gemm, baseline)
    for res in results.values():
        if res is not baseline:
            res.summarise(n, gemm, baseline)
    info["load_1min_end"] = load_average()
    floor = n * FLOP_PER_IMAGE / (gemm * 1e9)
    print()
    print(format_table(results, device.type == "cuda"))
    print(
        f"roofline {gemm:.1f} GFLOP/s -> floor {floor:.3f} s/epoch for {n:,} images; "
        f"load average {info['load_1min_start']:.2f} at start, {info['load_1min_end']:.2f} at end"
    )

    report = {
        "machine": info,
        "config": {
            "architecture": f"784-{HIDDEN}-{LATENT_DIM} softplus, Bernoulli",
            "batch_size": BATCH_SIZE, "lr": LR, "latent_dim": LATENT_DIM,
            "epochs": args.epochs, "repeats": args.repeats, "first_epoch_timed": args.epochs == 1,
            "n_train": n, "n_test": int(setup.test.shape[0]), "seed": args.seed,
            "compile_mode": args.compile_mode,
        },
        "flop_per_image": FLOP_PER_IMAGE,
        "gemm_gflops": {"start": gemm_start, "end": gemm_end, "roofline": gemm},
        "floor_s_per_epoch": floor,
        "baseline": BASELINE,
        "runs": [asdict(r) for r in results.values()],
    }
    write_json(args.json, report)
    print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
