"""Smoke tests of the benchmark scripts: every code path on a tiny budget, no timing.

They check the structure of the reports (table, JSON, plot), that every runner trains
and returns a finite, plausible ELBO, that failures are reported instead of raised, and
that the ELBO used by the hand-written runners agrees with ``torch.distributions``.
Nothing here asserts a speed.
"""

from __future__ import annotations

import json
import math
import os

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import distributions as D

from benchmarks import book_time, scaling
from benchmarks import vae_speed as vs

LIMIT = 512  # images per split: 2 batches of 256 per epoch


def _expected_status(name: str) -> str:
    return "skipped" if name == "pyro" and not vs.pyro_available() else "ok"


def test_flop_per_image_is_three_times_the_forward_weight_count():
    # Independent count: a linear layer does one multiply-add (2 FLOP) per weight per
    # image forward; backward does twice that.
    weights = sum(
        m.weight.numel()
        for module in (vs.Encoder(), vs.Decoder())
        for m in module.modules()
        if isinstance(m, torch.nn.Linear)
    )
    assert vs.FLOP_PER_IMAGE == 3 * 2 * weights == 4_123_200
    assert vs.flop_per_image(latent_dim=2) == 3 * 2 * (2 * 784 * 400 + 3 * 400 * 2)


def test_negative_elbo_matches_torch_distributions():
    torch.manual_seed(0)
    enc, dec = vs.Encoder(latent_dim=3, hidden=8), vs.Decoder(latent_dim=3, hidden=8)
    x = torch.rand(5, 784)
    torch.manual_seed(1)
    got = vs.negative_elbo(x, enc, dec)
    torch.manual_seed(1)
    mu, log_var = enc(x)
    q = D.Normal(mu, torch.exp(0.5 * log_var))
    z = mu + q.scale * torch.randn_like(mu)  # the same draw as negative_elbo's
    logits = dec(z)
    # Bernoulli cross-entropy written out; valid for grey-level x too.
    log_px = x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)
    kl = D.kl_divergence(q, D.Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    expected = -(log_px.sum(1) - kl.sum(1)).mean()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


@pytest.fixture(scope="module")
def speed_report(tmp_path_factory, mnist_root):
    path = tmp_path_factory.mktemp("bench") / "vae_speed.json"
    runners = "autoencoders,hand-written,tutorial,pyro"
    report = vs.main(
        ["--epochs", "1", "--repeats", "1", "--limit", str(LIMIT), "--runners", runners,
         "--json", str(path), "--device", "cpu"]
    )
    return report, path


def test_vae_speed_json_has_every_runner_with_a_finite_elbo(speed_report):
    report, path = speed_report
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    assert report["config"]["n_train"] == LIMIT and report["config"]["first_epoch_timed"]
    assert report["gemm_gflops"]["roofline"] > 0
    runs = {r["name"]: r for r in report["runs"]}
    assert list(runs) == ["autoencoders", "hand-written", "tutorial", "pyro"]
    for name, run in runs.items():
        assert run["status"] == _expected_status(name), (name, run["note"])
        if run["status"] != "ok":
            assert "pyro-ppl" in run["note"]
            continue
        assert len(run["epoch_s"]) == 1 and run["median_s"] > 0 and run["min_s"] > 0
        # Two Adam steps from a random init: far from trained, but a real ELBO per image
        # is negative and above -784 * log(1 + e^|logit|) for moderate logits.
        assert math.isfinite(run["mean_test_elbo"]) and -2000 < run["mean_test_elbo"] < 0
        assert 0 < run["roofline_fraction"] < 1
        assert run["s_per_60k_epoch"] == pytest.approx(run["median_s"] * 60_000 / LIMIT)
    assert runs["hand-written"]["ratio_to_baseline"] == 1.0
    assert runs["autoencoders"]["ratio_to_baseline"] == pytest.approx(
        runs["autoencoders"]["median_s"] / runs["hand-written"]["median_s"]
    )


def test_vae_speed_table_has_one_row_per_runner(speed_report):
    report, _ = speed_report
    results = {r["name"]: vs.RunnerResult(**r) for r in report["runs"]}
    table = vs.format_table(results, cuda=False).splitlines()
    assert table[0].split()[:3] == ["runner", "median", "s/ep"]
    assert [line.split()[0] for line in table[1:]] == list(results)


def test_failing_runner_is_reported_not_raised(monkeypatch):
    def broken(setup, epochs):
        raise RuntimeError("no C compiler\nmore detail")

    monkeypatch.setitem(vs.RUNNERS, "autoencoders+compile", broken)
    setup = vs.Setup(train=torch.rand(8, 1, 28, 28), test=torch.rand(8, 1, 28, 28),
                     root=vs.REPO, device=torch.device("cpu"))
    results = vs.run_all(setup, ["autoencoders+compile"], epochs=1, repeats=2, log=lambda s: None)
    res = results["autoencoders+compile"]
    assert res.status == "failed" and res.note == "RuntimeError: no C compiler"
    res.summarise(8, 1.0, None)  # a failed row stays without numbers
    assert res.median_s is None and "failed: RuntimeError" in vs.format_table(results, cuda=False)


def test_unknown_runner_is_rejected():
    with pytest.raises(SystemExit):
        vs.main(["--runners", "autoencoders,keras"])


@pytest.mark.skipif(
    os.environ.get("AUTOENCODERS_BENCH_COMPILE") != "1",
    reason="torch.compile takes minutes on a cold cache; set AUTOENCODERS_BENCH_COMPILE=1",
)
def test_compiled_runner_trains_or_reports_failure(mnist_root):
    setup = vs.build_setup(torch.device("cpu"), limit=256)
    res = vs.run_all(setup, ["autoencoders+compile"], epochs=1, repeats=1, log=lambda s: None)
    res = res["autoencoders+compile"]
    if res.status == "ok":
        assert math.isfinite(res.test_elbo[0]) and res.test_elbo[0] < 0
    else:
        assert res.status == "failed" and res.note


def test_scaling_writes_plot_and_rows(tmp_path, mnist_root):
    png, js = tmp_path / "scaling.png", tmp_path / "scaling.json"
    report = scaling.main(
        ["--epochs", "1", "--limit", str(LIMIT), "--batch-sizes", "128,512", "--latent-dims", "2",
         "--runners", "hand-written", "--png", str(png), "--json", str(js), "--device", "cpu"]
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads(js.read_text())["rows"]
    assert rows == json.loads(json.dumps(report["rows"]))
    assert [(r["parameter"], r["value"]) for r in rows] == [
        ("batch_size", 128), ("batch_size", 512), ("latent_dim", 2)
    ]
    assert all(r["s_per_epoch"] > 0 and math.isfinite(r["test_elbo"]) for r in rows)


def test_book_time_runs_a_copy_in_each_mode(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os\nassert os.environ['OMP_NUM_THREADS'] == '1'\n"
        "assert os.environ['AUTOENCODERS_FAST'] == '1', 'full mode'\nprint('ran')"
    )]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, book / "01_tiny.ipynb")
    before = (book / "01_tiny.ipynb").read_bytes()
    js = tmp_path / "book_time.json"
    report = book_time.main(
        ["--book", str(book), "--json", str(js), "--timeout", "120", "--threads", "1"]
    )
    fast, full = report["results"]["fast"], report["results"]["full"]
    assert [(r["notebook"], r["status"]) for r in fast] == [("01_tiny", "ok")]
    # AUTOENCODERS_FAST=0 in full mode makes the notebook's assertion fail.
    assert full[0]["status"] == "error" and "full mode" in full[0]["error"]
    assert (book / "01_tiny.ipynb").read_bytes() == before  # never modified
    assert sorted(p.name for p in book.iterdir()) == ["01_tiny.ipynb"]
    assert report["totals_s"]["fast"] == pytest.approx(fast[0]["seconds"])
    table = book_time.format_table(report["results"]).splitlines()
    assert table[0].split() == ["notebook", "fast", "s", "full", "s"]
    assert table[1].startswith("01_tiny") and table[-1].split()[0] == "target"


def test_book_time_rejects_unknown_notebook():
    with pytest.raises(ValueError, match="no notebook 'nope'"):
        book_time.find_notebooks(["nope"])
    every = book_time.find_notebooks()
    assert every == sorted(book_time.BOOK.glob("*.ipynb")) and every
    assert book_time.find_notebooks([every[-1].name]) == [every[-1]]


def test_fit_default_optimizer_takes_the_same_steps_as_torch_adam():
    # The kept speed-up (fit's default Adam uses torch's fused kernel) must not change
    # the training trajectory beyond float32 rounding.
    from autoencoders import VAE
    from autoencoders.nets import MLPDecoder, MLPEncoder
    from autoencoders.train import fit

    x = torch.rand(96, 1, 28, 28, generator=torch.Generator().manual_seed(3))

    def train(optimizer_factory):
        torch.manual_seed(0)
        model = VAE(MLPEncoder(hidden=(32,)), MLPDecoder(4, hidden=(32,)), 4).build(x[:1])
        optimizer = optimizer_factory(model)
        torch.manual_seed(1)
        fit(model, [x[:48], x[48:]], epochs=3, optimizer=optimizer,
            loss_kwargs={"likelihood": "bernoulli"}, progress=False)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    default = train(lambda model: None)
    plain = train(lambda model: torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False))
    untrained = train(lambda model: torch.optim.SGD(model.parameters(), lr=0.0))
    torch.testing.assert_close(default, plain, rtol=1e-5, atol=1e-6)
    assert (default - untrained).abs().max() > 1e-3  # the comparison can fail


def test_guard_cost_runs_every_variant(capsys):
    from benchmarks import guard_cost

    ratios = guard_cost.main(["--blocks", "2", "--steps", "2", "--device", "cpu"])
    assert set(ratios) == {"bare", "+ validation", "+ validation + grad check"}
    assert ratios["bare"] == 1.0 and all(math.isfinite(r) and r > 0 for r in ratios.values())
    out = capsys.readouterr().out
    assert "ms/step" in out and "+ validation + grad check" in out
