"""Cost of fit's guards on one training step: target validation and the gradient check.

Three variants of the same step (MLP VAE 784-400-20, Bernoulli likelihood, batch 128,
Adam, MNIST training images in memory) run in alternating blocks, so that drift in
the machine's load hits them alike:

``bare``
    forward, ``compute_loss`` with its target check switched off, backward, step.
``+ validation``
    the same with the check on (the default): the minimum and maximum of the batch
    travel with the diagnostics, in the one host read ``compute_loss`` makes anyway.
``+ validation + grad check``
    what :func:`autoencoders.train.fit` does (its own guard function): also the
    objective and the global gradient norm, read together before the step (one more
    host read).

Usage::

    python -m benchmarks.guard_cost [--blocks 12] [--steps 40] [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import torch

from autoencoders import loss as loss_module
from autoencoders.data import load_mnist
from autoencoders.train import _check_finite_step
from autoencoders.utils import get_device
from benchmarks.train_speed import BATCH_SIZE, LR, _data_root, make_model


def _without_targets(values, targets=None):
    return _original(values)


_original = loss_module.float_diagnostics


def run_block(model, optimizer, batches, validate: bool, grad_check: bool, device) -> float:
    """Seconds per step over ``batches``."""
    params = list(model.parameters())
    patches = [] if validate else [
        mock.patch("autoencoders.variational.float_diagnostics", _without_targets),
    ]
    for p in patches:
        p.start()
    try:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for x in batches:
            res = model.compute_loss(x, model(x), likelihood="bernoulli")
            if grad_check:  # fit's own guard: zero_grad, backward, one read, checks
                _check_finite_step(res.diagnostics, x, params, None, optimizer, res)
            else:
                optimizer.zero_grad(set_to_none=True)
                res.objective.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) / len(batches)
    finally:
        for p in patches:
            p.stop()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=12, help="blocks per variant (first is a warm-up)")
    parser.add_argument("--steps", type=int, default=40, help="steps per block")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    images = load_mnist(_data_root(), download=False, device=device).images
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(images.shape[0], generator=gen)
    batches = [images[order[i * BATCH_SIZE:(i + 1) * BATCH_SIZE]] for i in range(args.steps)]
    model = make_model(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    variants = {"bare": (False, False), "+ validation": (True, False),
                "+ validation + grad check": (True, True)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for block in range(args.blocks):
        for name, (validate, grad_check) in variants.items():
            t = run_block(model, optimizer, batches, validate, grad_check, device)
            if block:
                times[name].append(t)
    base = statistics.median(times["bare"])
    print(f"MLP VAE 784-400-20, Bernoulli, batch {BATCH_SIZE}, Adam; {device}, "
          f"{torch.get_num_threads()} thread(s); {args.blocks - 1} timed blocks of {args.steps} steps")
    print(f"{'variant':<28}{'ms/step':>9}{'ratio':>8}")
    result = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        result[name] = med / base
        print(f"{name:<28}{1e3 * med:>9.3f}{med / base:>8.3f}")
    return result


if __name__ == "__main__":
    main()
