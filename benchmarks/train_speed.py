"""Seconds per epoch of :func:`autoencoders.train.fit` against a hand-written loop.

Both train the same MLP VAE (784-400-20, softplus, Bernoulli likelihood, batch 128,
Adam 1e-3) on the in-memory MNIST training images, batched by the same
:class:`~autoencoders.data.TensorLoader`, in the same process:

``fit``
    ``fit(model, loader, ...)``: forward, ``compute_loss`` (diagnostics converted to
    floats, one host read per step), backward, step, plus its bookkeeping.
``hand-written``
    The same ``model(x)`` forward, the negative ELBO written out with
    ``F.binary_cross_entropy_with_logits`` and the closed-form KL, backward, step, and
    ``loss.item()`` accumulated for a running mean (one host read per step, as in
    pytorch/examples ``vae/main.py``).

Runs alternate (fit, hand, fit, hand, ...) so that drift in the machine's load hits
both alike. Each epoch is timed by the wall clock and by the process CPU time; on a
shared machine the CPU time is the steadier of the two. The first epoch of every run is a warm-up and is not timed. Both runs of a
repeat start from the same seed, so their final losses agree closely: a check that
they did the same work.

Usage::

    python -m benchmarks.train_speed [--epochs 3] [--repeats 2] [--threads N] [--device cpu]

The data root is ``$AUTOENCODERS_DATA``, else ``../shared/data`` next to the repository.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

from autoencoders import VAE
from autoencoders.data import TensorLoader, load_mnist
from autoencoders.nets import MLPDecoder, MLPEncoder
from autoencoders.train import fit
from autoencoders.utils import get_device
from benchmarks.vae_speed import Clock, durations, now

BATCH_SIZE = 128
LR = 1e-3
LATENT_DIM = 20
SEED = 0


def make_model(device: torch.device) -> VAE:
    torch.manual_seed(SEED)
    model = VAE(MLPEncoder(hidden=(400,)), MLPDecoder(LATENT_DIM, hidden=(400,)), LATENT_DIM)
    return model.build(torch.zeros(1, 1, 28, 28)).to(device)


def make_loader(images: torch.Tensor) -> TensorLoader:
    return TensorLoader(images, batch_size=BATCH_SIZE, rng=torch.Generator().manual_seed(SEED))


def run_fit(images: torch.Tensor, epochs: int, device: torch.device) -> tuple[list[Clock], float]:
    """Per-epoch (wall, CPU) seconds, including fit's per-epoch bookkeeping, and the
    last epoch's mean loss."""
    model = make_model(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    stamps: list[Clock] = []

    def stamp(epoch, history, model):
        stamps.append(now(device))

    torch.manual_seed(SEED + 1)
    stamps.append(now(device))
    history = fit(
        model, make_loader(images), epochs=epochs, optimizer=optimizer,
        loss_kwargs={"likelihood": "bernoulli"}, device=device, progress=False, callbacks=[stamp],
    )
    return durations(stamps), -history.train["elbo"][-1]


def run_hand_written(images: torch.Tensor, epochs: int, device: torch.device) -> tuple[list[Clock], float]:
    """The same training written out by hand."""
    model = make_model(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loader = make_loader(images)
    mean_loss = float("nan")
    torch.manual_seed(SEED + 1)
    stamps = [now(device)]
    for _ in range(epochs):
        model.train()
        total, seen = 0.0, 0
        for (x,) in loader:
            out = model(x)
            x_hat = out.x_hat[:, 0]  # one latent sample: [B, 1, 28, 28]
            rec = F.binary_cross_entropy_with_logits(x_hat, x, reduction="none").flatten(1).sum(1)
            kl = 0.5 * (out.mu.pow(2) + out.log_var.exp() - 1.0 - out.log_var).sum(1)
            loss = (rec + kl).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * x.shape[0]
            seen += x.shape[0]
        stamps.append(now(device))
        mean_loss = total / seen
    return durations(stamps), mean_loss


def _data_root() -> Path | None:
    if os.environ.get("AUTOENCODERS_DATA"):
        return None  # load_mnist reads it
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return shared if shared.is_dir() else None


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is a warm-up)")
    parser.add_argument("--repeats", type=int, default=2, help="number of (fit, hand-written) run pairs")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: autoencoders.utils.get_device)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error(f"--epochs must be >= 2 (the first epoch is a warm-up), got {args.epochs}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    images = load_mnist(_data_root(), download=False, device=device).images

    timed: dict[str, list[Clock]] = {"fit": [], "hand-written": []}
    losses: dict[str, list[float]] = {"fit": [], "hand-written": []}
    for _ in range(args.repeats):
        for name, runner in (("fit", run_fit), ("hand-written", run_hand_written)):
            times, loss = runner(images, args.epochs, device)
            timed[name] += times[1:]
            losses[name].append(loss)

    wall = {name: statistics.median(t[0] for t in times) for name, times in timed.items()}
    cpu = {name: statistics.median(t[1] for t in times) for name, times in timed.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"MLP VAE 784-400-{LATENT_DIM}, Bernoulli, batch {BATCH_SIZE}, Adam {LR:g}; "
        f"{images.shape[0]:,} MNIST images on {device}, {torch.get_num_threads()} thread(s); "
        f"{args.repeats} x {args.epochs} epochs per method, first epoch of each run untimed; "
        f"1-min load average {load:.2f}"
    )
    print(f"{'method':<14}{'wall s/epoch':>14}{'min':>8}{'max':>8}{'CPU s/epoch':>13}{'epochs':>8}{'final loss':>12}")
    for name, times in timed.items():
        w = [t[0] for t in times]
        print(
            f"{name:<14}{wall[name]:>14.3f}{min(w):>8.3f}{max(w):>8.3f}{cpu[name]:>13.3f}"
            f"{len(times):>8d}{statistics.mean(losses[name]):>12.3f}"
        )
    ratio_wall = wall["fit"] / wall["hand-written"]
    ratio_cpu = cpu["fit"] / cpu["hand-written"]
    print(f"ratio fit / hand-written: wall {ratio_wall:.3f}, CPU {ratio_cpu:.3f} (medians)")
    return {"fit_s": wall["fit"], "hand_s": wall["hand-written"], "ratio": ratio_wall, "cpu_ratio": ratio_cpu}


if __name__ == "__main__":
    main()
