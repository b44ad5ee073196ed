"""Tests for the model zoo (autoencoders.pretrained).

The shipped files are checked against their manifests with an independent SHA-256
(hashlib over the raw bytes); loading a model and measuring it on the fixed
evaluation set must reproduce the manifest's metrics; and retraining the first 50
steps from the manifest's configuration must reproduce the stored early history,
which shows that the recorded command made the file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict

import pytest
import torch

import autoencoders.pretrained as pretrained
from autoencoders import VAE, AdaGVAE

NAMES = sorted(pretrained.ENTRIES)
# Replaying 50 steps covers each kind, each k and a beta other than 1.
REPLAY = ["ch7-adagvae-k1-seed0", "ch7-betavae-b1-seed1", "ch7-adagvae-krandom-seed0",
          "ch6-betavae-b4-seed0"]
MAX_ZOO_BYTES = 25 * 2**20


@pytest.fixture(scope="module")
def eval_set():
    return pretrained.evaluation_set(device="cpu")


def test_every_entry_ships_and_the_zoo_is_small():
    assert pretrained.available() == NAMES
    total = sum((pretrained.ZOO_DIR / f"{n}.pt").stat().st_size for n in NAMES)
    assert total < MAX_ZOO_BYTES, f"zoo files take {total:,} bytes"


def test_the_chapters_have_what_they_need():
    ch7 = [c for c in pretrained.ENTRIES.values() if c.chapter == 7]
    for kind in ("adagvae", "betavae"):
        seeds = {c.seed for c in ch7 if c.kind == kind and c.k == 1 and c.beta == 1}
        assert len(seeds) >= 3, (kind, seeds)
    assert any(c.k == "random" for c in ch7)
    betas = {c.beta for c in pretrained.ENTRIES.values() if c.kind == "betavae"}
    assert len(betas) >= 4


@pytest.mark.parametrize("name", NAMES)
def test_file_sha256_matches_manifest(name):
    manifest = pretrained.info(name)
    data = (pretrained.ZOO_DIR / f"{name}.pt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
    assert manifest["file_bytes"] == len(data)


@pytest.mark.parametrize("name", NAMES)
def test_manifest_records_how_the_model_was_made(name):
    m = pretrained.info(name)
    cfg = pretrained.ENTRIES[name]
    assert m["name"] == name
    assert m["command"] == f"python -m autoencoders.pretrained train {name}"
    want = asdict(cfg) | {"channels": list(cfg.channels)}
    assert {k: m["config"][k] for k in want} == want
    assert m["config"]["steps"] == cfg.steps
    prov = m["provenance"]
    for key in ("package_version", "git_commit", "torch_version", "hardware"):
        assert isinstance(prov[key], str) and prov[key]
    assert prov["train_seconds"] > 0
    assert [p["step"] for p in m["history"]["early"]] == [10, 20, 30, 40, 50]
    curve_steps = [p["step"] for p in m["history"]["curve"]]
    assert curve_steps == list(range(cfg.eval_every, cfg.steps + 1, cfg.eval_every))
    assert all(0 <= p["mig"] <= 1 and 0 <= p["dci_d"] <= 1 for p in m["history"]["curve"])
    for key in ("mig", "dci_d", "elbo", "kl", "active_units", "code_to_factor"):
        assert key in m["metrics"]


@pytest.mark.parametrize("name", NAMES)
def test_loading_reproduces_the_stored_metrics(name, eval_set):
    model = pretrained.load(name, device="cpu")
    kind = pretrained.ENTRIES[name].kind
    assert isinstance(model, AdaGVAE if kind == "adagvae" else VAE)
    assert not model.training
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())
    stored = pretrained.info(name)["metrics"]
    got = pretrained.measure(model, *eval_set)
    # MIG and DCI on the same codes; float noise between machines can only move a
    # histogram bin edge or a tree split by a hair.
    for key in ("mig", "dci_d", "dci_c", "dci_i"):
        assert got[key] == pytest.approx(stored[key], abs=0.01), key
    for key in ("elbo", "log_likelihood", "kl"):
        assert got[key] == pytest.approx(stored[key], rel=2e-3, abs=0.05), key
    assert got["active_units"] == stored["active_units"]


@pytest.mark.parametrize("name", REPLAY)
def test_replaying_the_first_50_steps_matches_the_stored_history(name, tmp_path):
    stored = pretrained.info(name)["history"]["early"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the zoo was trained with one thread per model
    try:
        replay = pretrained.train_entry(name, steps=50, out_dir=tmp_path, device="cpu",
                                        progress=False, evaluate_curve=False)
    finally:
        torch.set_num_threads(threads)
    early = replay["history"]["early"]
    assert [p["step"] for p in early] == [p["step"] for p in stored]
    for mine, theirs in zip(early, stored):
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert mine[key] == pytest.approx(theirs[key], rel=0.02, abs=0.05), (mine["step"], key)
    assert replay["command"].endswith("--steps 50")


def test_a_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    name = "ch7-betavae-b1-seed0"
    whole = pretrained.train_entry(name, steps=30, out_dir=tmp_path / "a", device="cpu",
                                   progress=False, evaluate_curve=False)
    real_fit, calls = pretrained.fit, []

    def fit_then_crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during the third segment
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(pretrained, "fit", fit_then_crash)
    with pytest.raises(KeyboardInterrupt):
        pretrained.train_entry(name, steps=30, out_dir=tmp_path / "b", device="cpu",
                               progress=False, evaluate_curve=False)
    monkeypatch.setattr(pretrained, "fit", real_fit)
    resumed = pretrained.train_entry(name, steps=30, out_dir=tmp_path / "b", device="cpu",
                                     progress=False, evaluate_curve=False)
    assert resumed["history"]["early"] == whole["history"]["early"]
    assert resumed["sha256"] == whole["sha256"]


def test_missing_and_corrupt_files_name_the_file_and_the_command(tmp_path):
    name = "ch7-adagvae-k1-seed0"
    command = f"python -m autoencoders.pretrained train {name}"
    with pytest.raises(FileNotFoundError) as err:
        pretrained.load(name, zoo_dir=tmp_path)
    assert str(tmp_path / f"{name}.json") in str(err.value) and command in str(err.value)
    shutil.copy(pretrained.ZOO_DIR / f"{name}.json", tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        pretrained.load(name, zoo_dir=tmp_path)
    assert str(tmp_path / f"{name}.pt") in str(err.value) and command in str(err.value)
    data = bytearray((pretrained.ZOO_DIR / f"{name}.pt").read_bytes())
    data[len(data) // 2] ^= 0x10
    (tmp_path / f"{name}.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt") as err:
        pretrained.load(name, zoo_dir=tmp_path)
    assert str(tmp_path / f"{name}.pt") in str(err.value) and command in str(err.value)
    assert pretrained.available(tmp_path) == [name]  # present, though corrupt


def test_unknown_name_lists_the_entries():
    with pytest.raises(KeyError, match="ch7-adagvae-k1-seed0"):
        pretrained.info("ch7-adagvae")


def test_manifests_are_valid_json_with_no_nan():
    for name in NAMES:
        text = (pretrained.ZOO_DIR / f"{name}.json").read_text()
        assert "NaN" not in text and "Infinity" not in text
        json.loads(text)


def test_the_guide_quotes_the_zoo_as_it_is():
    """book/which_autoencoder.md states chapter 7's zoo numbers; they must be the
    manifests' (seed means, rounded to 2 decimals)."""
    import re

    import numpy as np

    page = (pretrained.ZOO_DIR.parent.parent / "book" / "which_autoencoder.md").read_text()
    quoted = re.search(r"mean MIG of ([\d.]+) and DCI D of ([\d.]+) against ([\d.]+) and "
                       r"([\d.]+)", page)
    assert quoted, "the guide does not quote the zoo's numbers"
    means = []
    for kind in ("adagvae-k1", "betavae-b1"):
        ms = [pretrained.info(f"ch7-{kind}-seed{s}")["metrics"] for s in (0, 1, 2)]
        means += [np.mean([m["mig"] for m in ms]), np.mean([m["dci_d"] for m in ms])]
    assert [float(g) for g in quoted.groups()] == [round(v, 2) for v in
                                                   (means[0], means[1], means[2], means[3])]
