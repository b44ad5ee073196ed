"""The example of book/distributed.md: an MNIST VAE trained with torchrun.

    torchrun --standalone --nproc_per_node=2 -m benchmarks.ddp_mnist --epochs 3

Each of the W processes takes batch_size // W images per step, so the combined batch
(and hence the optimisation) is the same for any W. Rank 0 prints one JSON line with
the seconds per epoch and the final epoch's mean ELBO.
"""

from __future__ import annotations

import argparse
import json

from autoencoders import distributed
from autoencoders.data import TensorLoader, load_mnist
from autoencoders.recipes import mlp_vae
from autoencoders.train import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256, help="combined batch")
    args = parser.parse_args()
    device = distributed.setup()
    w = distributed.world_size()
    x = load_mnist(train=True, device=device).images
    loader = TensorLoader(x, batch_size=args.batch_size // w, rng=0)
    model = mlp_vae(50, likelihood="bernoulli", seed=0)
    history = fit(model, loader, epochs=args.epochs, progress=distributed.is_main_process())
    if distributed.is_main_process():
        print(json.dumps({
            "processes": w, "device": str(device), "steps": history.steps,
            "seconds_per_epoch": history.epoch_time,
            "final_elbo": history.last("elbo"),
        }))
    distributed.cleanup()


if __name__ == "__main__":
    main()
