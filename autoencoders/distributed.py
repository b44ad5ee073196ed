r"""Training on several processes with ``torch.distributed`` (launched by ``torchrun``).

The package uses PyTorch's standard route, :class:`~torch.nn.parallel.DistributedDataParallel`
(DDP): one process per device, each holding a full copy of the model, each training on
its own shard of every batch, with gradients averaged across processes after every
backward pass. A script written for one process runs unchanged on several::

    # train.py
    from autoencoders import distributed
    from autoencoders.data import TensorLoader, load_mnist
    from autoencoders.recipes import mlp_vae
    from autoencoders.train import fit

    distributed.setup()                      # no-op without torchrun
    x, _ = load_mnist(train=True)
    loader = TensorLoader(x, batch_size=64, rng=0)   # shards itself by rank
    model = mlp_vae(seed=0)
    history = fit(model, loader, epochs=5)   # wraps the model in DDP
    distributed.cleanup()

launched with ``torchrun --standalone --nproc_per_node=2 train.py`` (or
``--nproc_per_node=NUM_GPUS``). What :func:`~autoencoders.train.fit` then does:

* the model is built, moved to the process's device (``cuda:LOCAL_RANK`` or the CPU)
  and wrapped in DDP, which broadcasts rank 0's initial weights to every rank;
* :class:`~autoencoders.data.TensorLoader` draws the same permutation on every rank
  (the seed is broadcast from rank 0 when none is given) and gives rank :math:`r` of
  :math:`W` the samples ``perm[r::W]``; a step therefore trains on a combined batch of
  :math:`W B` examples, and the averaged gradient equals the gradient of the mean loss
  over that combined batch;
* the epoch means recorded in the :class:`~autoencoders.history.History` are averaged
  over all ranks (weighted by examples), so every rank returns the same history;
* only rank 0 shows a progress bar and writes checkpoints
  (:func:`~autoencoders.checkpoint.save_checkpoint` does nothing on other ranks);
* evaluation (:func:`~autoencoders.train.evaluate`, the metrics) runs on the whole
  evaluation set on every rank and gives the single-process answer, because the
  parameters are identical everywhere.

A rank that fails (an exception, a NaN batch) stops its process; ``torchrun`` then
stops the others. A rank left waiting in a collective operation gives up after the
process group's timeout (:func:`setup`'s ``timeout``, default 120 s) with an error
saying so, instead of hanging forever.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping

import torch
import torch.distributed as dist

__all__ = [
    "setup",
    "cleanup",
    "is_distributed",
    "rank",
    "world_size",
    "is_main_process",
    "broadcast_seed",
    "all_reduce_sums",
    "DEFAULT_TIMEOUT_S",
]

DEFAULT_TIMEOUT_S = 120.0
"""Seconds a rank waits in a collective operation before giving up."""


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0, and always without a process group."""
    return rank() == 0


def setup(backend: str | None = None, timeout: float | None = None) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment.

    Without ``torchrun`` (no ``WORLD_SIZE`` in the environment, or ``WORLD_SIZE=1``)
    nothing happens and the default device is returned, so the same script runs in
    one process too.

    Parameters
    ----------
    backend : {'gloo', 'nccl'}, optional
        Default ``'nccl'`` when CUDA is available (one GPU per process:
        ``cuda:LOCAL_RANK``), else ``'gloo'`` (CPU).
    timeout : float, optional
        Seconds a collective operation may wait for the other ranks; default
        ``$AUTOENCODERS_DIST_TIMEOUT`` or :data:`DEFAULT_TIMEOUT_S`.

    Returns
    -------
    torch.device
        This process's device.
    """
    from .utils import get_device

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return get_device()
    if dist.is_initialized():
        return _device()
    seconds = float(timeout if timeout is not None
                    else os.environ.get("AUTOENCODERS_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    if seconds <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {seconds}")
    wants_cuda = get_device().type == "cuda"
    if backend is None:
        backend = "nccl" if wants_cuda else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=seconds))
    return _device()


def _device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def cleanup() -> None:
    """Leave the process group (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")


def broadcast_seed(seed: int | None = None) -> int:
    """A seed that every rank agrees on: rank 0's ``seed`` (drawn when ``None``)."""
    if seed is None:
        seed = int(torch.randint(0, 2**62, ()).item())
    if not is_distributed():
        return int(seed)
    t = torch.tensor([int(seed)], dtype=torch.int64, device=_collective_device())
    dist.broadcast(t, src=0)
    return int(t.item())


def all_reduce_sums(sums: Mapping[str, float], count: int) -> tuple[dict[str, float], int]:
    """Sum per-rank ``sums`` (weighted totals) and example ``count`` over all ranks.

    Every rank must pass the same keys in the same order (they come from the same
    model's diagnostics). Without a process group the inputs are returned.
    """
    if not is_distributed():
        return dict(sums), int(count)
    keys = list(sums)
    t = torch.tensor([*(float(sums[k]) for k in keys), float(count)], dtype=torch.float64,
                     device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    values = t.tolist()
    return dict(zip(keys, values[:-1])), int(round(values[-1]))
