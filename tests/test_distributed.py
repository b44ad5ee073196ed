"""Training under torchrun with two CPU processes (gloo), against one process.

Each test launches ``torchrun --standalone --nproc_per_node=2`` on
``tests/scripts/ddp_train.py`` and checks what the ranks wrote: identical parameters
on both ranks; the same parameters and epoch means as one process trained on the
combined batches (an independent single-process loop built from the documented
sharding rule ``perm[rank::W]``); a checkpoint that loads into a single-process
model; and a failing or stalled rank that ends the run with a clear error instead of
a hang.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from autoencoders.checkpoint import load_checkpoint
from autoencoders.train import fit
from autoencoders.utils import torch_rng

SCRIPT = Path(__file__).parent / "scripts" / "ddp_train.py"
_spec = importlib.util.spec_from_file_location("ddp_train", SCRIPT)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)
WORLD = 2


def torchrun(out: Path, mode: str, timeout: float = 150, **env: str):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={WORLD}", "--max-restarts=0", str(SCRIPT), str(out), mode]
    environ = {**os.environ, "AUTOENCODERS_DEVICE": "cpu", "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **env}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=environ)
    return proc, time.perf_counter() - t0


def single_process_reference(deterministic: bool):
    """One process, one batch per step = the union of the ranks' batches."""
    x = worker.data()
    g = torch_rng(0)
    per_rank = worker.N // WORLD
    batches = []
    for _ in range(worker.EPOCHS):
        perm = torch.randperm(worker.N, generator=g)
        shards = [perm[r : per_rank * WORLD : WORLD] for r in range(WORLD)]
        for start in range(0, per_rank, worker.BATCH):
            idx = torch.cat([s[start : start + worker.BATCH] for s in shards])
            batches.append((x[idx],))
    vae = worker.model()
    steps_per_epoch = len(batches) // worker.EPOCHS
    history = fit(vae, Epochs(batches, steps_per_epoch), epochs=worker.EPOCHS,
                  loss_kwargs={"sample": False} if deterministic else {}, progress=False)
    return vae, history


class Epochs:
    """The reference batches, one epoch's worth per iteration."""

    def __init__(self, batches, per_epoch):
        self.batches, self.per_epoch, self.epoch = batches, per_epoch, 0

    def __len__(self):
        return self.per_epoch

    def __iter__(self):
        start = self.epoch * self.per_epoch
        self.epoch += 1
        return iter(self.batches[start : start + self.per_epoch])


@pytest.fixture(scope="module")
def deterministic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp_det")
    proc, seconds = torchrun(out, "deterministic")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, seconds


def test_both_ranks_end_with_identical_parameters_and_history(deterministic_run):
    out, _ = deterministic_run
    a, b = (torch.load(out / f"rank{r}.pt") for r in range(WORLD))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    h = [json.loads((out / f"history{r}.json").read_text()) for r in range(WORLD)]
    assert h[0] == h[1]


def test_two_processes_match_one_process_on_the_combined_batches(deterministic_run):
    out, seconds = deterministic_run
    ddp = torch.load(out / "rank0.pt")
    ref, history = single_process_reference(deterministic=True)
    diff = max((ddp[k] - v).abs().max().item() for k, v in ref.state_dict().items())
    print(f"2-process run: {seconds:.1f} s; largest parameter difference {diff:.2e}")
    assert diff < 1e-5
    ddp_history = json.loads((out / "history0.json").read_text())
    for key, values in history.train.items():
        assert ddp_history[key] == pytest.approx(values, rel=1e-5, abs=1e-5), key
    # the run did learn something: the parameters moved from the seeded start
    start = worker.model().state_dict()
    assert max((ddp[k] - v).abs().max().item() for k, v in start.items()) > 1e-3


def test_rank0_checkpoint_loads_into_a_single_process_model(deterministic_run):
    out, _ = deterministic_run
    assert (out / "saved0.txt").read_text() == "True"
    vae = worker.model()
    meta = load_checkpoint(out / "model.pt", vae)
    assert meta["steps"] == worker.EPOCHS * (worker.N // WORLD) // worker.BATCH
    ddp = torch.load(out / "rank0.pt")
    for k, v in vae.state_dict().items():
        assert torch.equal(v, ddp[k]), k


def test_sampled_vae_ranks_stay_identical(tmp_path):
    proc, _ = torchrun(tmp_path, "sampled")
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD))
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize(
    "mode, timeout, expected",
    [("raise", "20", ("BadBatchError", "NaN")),  # a rank raises: the run ends with its error
     ("stall", "8", ("rank 0 of 2", "another rank stopped"))],  # the other times out
)
def test_a_failing_rank_ends_the_run_with_a_clear_error(tmp_path, mode, timeout, expected):
    proc, seconds = torchrun(tmp_path, mode, AUTOENCODERS_DIST_TIMEOUT=timeout)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert all(e in text for e in expected), text[-3000:]
    assert seconds < 120
    assert not (tmp_path / "rank0.pt").exists()
