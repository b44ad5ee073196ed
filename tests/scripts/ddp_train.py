"""Worker for tests/test_distributed.py, launched by torchrun: python ddp_train.py OUT MODE.

MODE is 'deterministic' (z = mu, so one process can reproduce the run exactly),
'sampled' (the usual VAE), 'raise' (rank 1 gets a NaN batch at its third step) or
'stall' (rank 1 stops answering at its third step; rank 0 must time out).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from autoencoders import distributed
from autoencoders.checkpoint import save_checkpoint
from autoencoders.data import TensorLoader
from autoencoders.recipes import mlp_vae
from autoencoders.train import fit

N, BATCH, EPOCHS = 256, 16, 2


def data() -> torch.Tensor:
    """Random test inputs in [0, 1] (not a real data set), the same on every rank."""
    return torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(123))


def model():
    return mlp_vae(3, hidden=(32,), likelihood="bernoulli", in_shape=(1, 8, 8), seed=0)


class Sabotaged:
    """The loader, with rank 1's third batch made NaN ('raise') or delayed ('stall')."""

    def __init__(self, loader, mode):
        self.loader, self.mode = loader, mode

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for i, (x,) in enumerate(self.loader):
            if distributed.rank() == 1 and i == 2:
                if self.mode == "raise":
                    x = torch.full_like(x, float("nan"))
                else:
                    time.sleep(120)
            yield (x,)


def main(out: Path, mode: str) -> None:
    distributed.setup(backend="gloo")
    r = distributed.rank()
    loader = TensorLoader(data(), batch_size=BATCH, rng=0)
    if mode in ("raise", "stall"):
        loader = Sabotaged(loader, mode)
    vae = model()
    kwargs = {"sample": False} if mode == "deterministic" else {}
    history = fit(vae, loader, epochs=EPOCHS, loss_kwargs=kwargs, progress=False)
    torch.save(vae.state_dict(), out / f"rank{r}.pt")
    (out / f"history{r}.json").write_text(json.dumps(history.train))
    written = save_checkpoint(out / "model.pt", vae, steps=history.steps)
    (out / f"saved{r}.txt").write_text(str(written.exists()))
    distributed.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
