"""How the cost of an epoch grows with the batch size and with the latent size.

Two sweeps of the VAE of :mod:`benchmarks.vae_speed` (784-400-D_z, softplus, Bernoulli,
Adam 1e-3), each point one run of ``--epochs`` epochs whose first epoch is a warm-up:

* batch size 64, 128, ..., 4096 at ``D_z = 50``;
* latent size 2, 4, ..., 256 at batch 256.

Each point is run by the ``autoencoders`` runner (``fit``) and the ``hand-written`` loop,
alternating. The learning rate stays at 1e-3 throughout: the sweep measures time, and
the test ELBO recorded in the JSON shows what a larger batch costs in fewer steps.

The plot (two panels, log-log) is written to ``book/figures/scaling.png`` and shown in
``book/performance.md``; the numbers go to ``benchmarks/results/scaling.json``. The
dashed line is the GEMM floor, ``N * FLOP(D_z) / roofline``, where the roofline is the
float32 throughput of ``[256, 784] @ [784, 400]`` measured at the start.

Usage::

    python -m benchmarks.scaling [--epochs 2] [--threads N] [--device cpu] [--limit N]
        [--batch-sizes 64,128,...] [--latent-dims 2,4,...] [--runners autoencoders,hand-written]
        [--png PATH] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from autoencoders.utils import get_device
from benchmarks import vae_speed as vs

BATCH_SIZES = (64, 128, 256, 512, 1024, 2048, 4096)
LATENT_DIMS = (2, 4, 8, 16, 32, 64, 128, 256)
SWEEP_RUNNERS = ("autoencoders", "hand-written")
PNG = vs.REPO / "book" / "figures" / "scaling.png"


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive ints, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive ints, got {text!r}")
    return values


def sweep(
    base: vs.Setup,
    parameter: str,
    values: Sequence[int],
    epochs: int,
    runners: Sequence[str] = SWEEP_RUNNERS,
    log: Callable[[str], None] = print,
) -> list[dict[str, object]]:
    """One row per (value, runner): timed seconds per epoch and the test ELBO.

    ``parameter`` is ``'batch_size'`` or ``'latent_dim'``; every other setting is taken
    from ``base``.
    """
    if parameter not in ("batch_size", "latent_dim"):
        raise ValueError(f"parameter must be 'batch_size' or 'latent_dim', got {parameter!r}")
    rows = []
    for i, value in enumerate(values):
        setup = vs.Setup(**{**vars(base), parameter: value})
        order = list(runners) if i % 2 == 0 else list(reversed(runners))
        for name in order:
            outcome = vs.RUNNERS[name](setup, epochs)
            walls = [e[0] for e in outcome.epochs]
            timed = walls[1:] if len(walls) > 1 else walls
            row = {
                "parameter": parameter,
                "value": value,
                "runner": name,
                "s_per_epoch": statistics.median(timed),
                "epoch_s": walls,
                "test_elbo": outcome.test_elbo,
                "load_1min": vs.load_average(),
            }
            log(
                f"  {parameter}={value:<5d} {name:<13} {row['s_per_epoch']:.3f} s/epoch, "
                f"test ELBO {outcome.test_elbo:.2f}, load {row['load_1min']:.2f}"
            )
            rows.append(row)
    return rows


def plot(rows: Sequence[dict[str, object]], n_images: int, gemm_gflops: float, path: Path, title: str):
    """Two log-log panels: seconds per epoch against batch size and against latent size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullLocator

    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.4), layout="constrained")
    for ax, parameter, xlabel in (
        (axes[0], "batch_size", f"batch size (latent size {vs.LATENT_DIM})"),
        (axes[1], "latent_dim", f"latent size $D_z$ (batch {vs.BATCH_SIZE})"),
    ):
        mine = [r for r in rows if r["parameter"] == parameter]
        values = sorted({r["value"] for r in mine})
        for k, name in enumerate(dict.fromkeys(r["runner"] for r in mine)):
            pts = sorted((r["value"], r["s_per_epoch"]) for r in mine if r["runner"] == name)
            ax.plot(*zip(*pts), marker="o", color=f"C{k}", label=name)
        if values:
            if parameter == "batch_size":
                floor = [n_images * vs.FLOP_PER_IMAGE / (gemm_gflops * 1e9)] * len(values)
            else:
                floor = [n_images * vs.flop_per_image(latent_dim=v) / (gemm_gflops * 1e9) for v in values]
            ax.plot(values, floor, "k--", label="GEMM floor")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(values, [str(v) for v in values])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("seconds per epoch")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[0].set_title("cost against batch size")
    axes[1].set_title("cost against latent size")
    fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)  # 700 px: the width of the column
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per point; the first is a warm-up")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N train/test images")
    parser.add_argument("--batch-sizes", type=_ints, default=list(BATCH_SIZES))
    parser.add_argument("--latent-dims", type=_ints, default=list(LATENT_DIMS))
    parser.add_argument("--runners", type=vs.parse_runners, default=list(SWEEP_RUNNERS),
                        help=f"comma-separated runners of benchmarks.vae_speed (default {','.join(SWEEP_RUNNERS)})")
    parser.add_argument("--png", type=Path, default=PNG)
    parser.add_argument("--json", type=Path, default=vs.RESULTS / "scaling.json")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    info = vs.machine_info(device)
    info["load_1min_start"] = vs.load_average()
    print(
        f"os.cpu_count()={info['cpu_count']}, torch {info['torch']}, {info['threads']} thread(s), "
        f"device {device}, 1-min load average {info['load_1min_start']:.2f}"
    )
    base = vs.build_setup(device, args.limit)
    n = int(base.train.shape[0])
    gemm = vs.gemm_gflops(device)["best"]
    print(f"GEMM roofline {gemm:.1f} GFLOP/s; {n:,} training images, {args.epochs} epoch(s) per point")
    rows = sweep(base, "batch_size", args.batch_sizes, args.epochs, args.runners)
    rows += sweep(base, "latent_dim", args.latent_dims, args.epochs, args.runners)
    info["load_1min_end"] = vs.load_average()
    title = (
        f"VAE 784-400-$D_z$ on {n:,} MNIST images, {device}, {info['threads']} thread(s), "
        f"{info['date'][:10]}, load {info['load_1min_start']:.1f}-{info['load_1min_end']:.1f}"
    )
    plot(rows, n, gemm, args.png, title)
    report = {"machine": info, "n_train": n, "epochs": args.epochs, "gemm_gflops": gemm, "rows": rows}
    vs.write_json(args.json, report)
    print(f"wrote {args.png} and {args.json}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
