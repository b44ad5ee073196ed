"""Guards against silent failure (issue 12): checkpoint digests and architectures,
target validation in the likelihoods, and fit's refusal to step on bad numbers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
from torch import nn

from autoencoders import VAE, AdaGVAE, BaseAutoencoder, log_likelihood
from autoencoders.checkpoint import checkpoint_digest, load_checkpoint, save_checkpoint
from autoencoders.loss import LossResult, float_diagnostics, validate_target
from autoencoders.train import BadBatchError, TrainingDiverged, fit
from autoencoders.vanilla import AEOutput

X = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(0))


def small_vae(act=nn.ReLU, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    enc = nn.Sequential(nn.Flatten(), nn.LazyLinear(16), act())
    dec = nn.Sequential(nn.Linear(3, 16), act(), nn.Linear(16, 36), nn.Unflatten(1, (1, 6, 6)))
    return VAE(enc, dec, 3)


def params_of(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ----------------------------------------------------------------------- checkpoint digest
def test_every_byte_flip_inside_a_weight_is_detected(tmp_path):
    model = small_vae().build(X)
    path = tmp_path / "c.pt"
    save_checkpoint(path, model)
    data = path.read_bytes()
    weight = model.decoder[2].weight.detach().numpy().tobytes()  # 36 x 16 float32
    start = data.find(weight)
    assert start > 0, "the weight's bytes are stored verbatim in the file"
    for offset in range(0, len(weight), len(weight) // 40):
        damaged = bytearray(data)
        damaged[start + offset] ^= 0xFF
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match=r"c\.pt.* is corrupt"):
            load_checkpoint(path, small_vae())
    path.write_bytes(data)  # the undamaged file still loads, with the same weights
    fresh = small_vae(seed=1)
    load_checkpoint(path, fresh)
    for a, b in zip(params_of(fresh), params_of(model), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_digest_covers_values_other_than_tensors(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, small_vae().build(X), epoch=3)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["meta"]["epoch"] = 4  # edited, but the stored digest kept
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match="is corrupt"):
        load_checkpoint(path, small_vae())


def test_digest_is_deterministic_and_sensitive():
    a = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"k": [1, 2.5, None, "s"]}}
    same = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"k": [1, 2.5, None, "s"]}}
    assert checkpoint_digest(a) == checkpoint_digest(same)
    assert len(checkpoint_digest(a)) == 64
    variants = [
        {"w": torch.arange(6.0).reshape(3, 2), "meta": a["meta"]},  # shape
        {"w": torch.arange(6.0, dtype=torch.float64).reshape(2, 3), "meta": a["meta"]},  # dtype
        {"w": a["w"], "meta": {"k": [1, 2.5, None, "t"]}},  # a string
        {"w": a["w"], "meta": {"k": [True, 2.5, None, "s"]}},  # 1 vs True
        {"w": a["w"], "meta": {"k": (1, 2.5, None, "s")}},  # list vs tuple
    ]
    digests = {checkpoint_digest(v) for v in variants}
    assert len(digests) == len(variants) and checkpoint_digest(a) not in digests


def test_two_saves_of_one_model_have_the_same_digest(tmp_path):
    model = small_vae().build(X)
    save_checkpoint(tmp_path / "a.pt", model, epoch=1)
    save_checkpoint(tmp_path / "b.pt", model, epoch=1)
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert a["sha256"] == b["sha256"] == checkpoint_digest(a)


def test_format_1_checkpoint_loads_with_a_warning(tmp_path):
    path = tmp_path / "old.pt"
    model = small_vae().build(X)
    save_checkpoint(path, model)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["format_version"] = 1
    del checkpoint["sha256"], checkpoint["architecture"]
    torch.save(checkpoint, path)
    with pytest.warns(UserWarning, match="no checksum"):
        load_checkpoint(path, small_vae())


# ------------------------------------------------------------------ checkpoint architecture
def test_a_different_activation_is_refused(tmp_path):
    path = tmp_path / "relu.pt"
    save_checkpoint(path, small_vae(nn.ReLU).build(X))
    with pytest.raises(ValueError, match=r"different architecture.*ReLU.*Softplus"):
        load_checkpoint(path, small_vae(nn.Softplus))
    other = small_vae(nn.Softplus)
    load_checkpoint(path, other, check_architecture=False)  # on request, the weights load
    torch.testing.assert_close(other.decoder[2].weight, small_vae(nn.ReLU, seed=0).build(X).decoder[2].weight)


def test_a_different_width_is_refused_before_load_state_dict(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, small_vae().build(X))
    wide = VAE(nn.Sequential(nn.Flatten(), nn.LazyLinear(16), nn.ReLU()),
               nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 36), nn.Unflatten(1, (1, 6, 6))), 3)
    with pytest.raises(ValueError, match="different architecture"):
        load_checkpoint(path, wide)


# ----------------------------------------------------------------------- stale temp files
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_save_removes_temp_files_of_dead_processes_only(tmp_path):
    host = socket.gethostname()
    dead = tmp_path / f".c.pt.{_dead_pid()}@{host}.x1y2.tmp"
    alive = tmp_path / f".c.pt.{os.getppid()}@{host}.a1b2.tmp"
    elsewhere = tmp_path / f".c.pt.{_dead_pid()}@not-{host}.q9.tmp"
    other_file = tmp_path / f".d.pt.{_dead_pid()}@{host}.z0.tmp"
    for f in (dead, alive, elsewhere, other_file):
        f.write_bytes(b"partial")
    save_checkpoint(tmp_path / "c.pt", small_vae().build(X))
    assert not dead.exists()
    assert alive.exists() and elsewhere.exists() and other_file.exists()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["c.pt", alive.name, elsewhere.name, other_file.name])


def test_a_save_killed_mid_write_is_cleaned_up_by_the_next_save(tmp_path):
    """A real process is killed while torch.save writes; the next save removes its file."""
    code = (
        "import os, sys, torch, autoencoders.checkpoint as c\n"
        "def stop(*a, **k):\n"
        "    os.kill(os.getpid(), 9)\n"
        "torch.save = stop\n"
        "from torch import nn\n"
        "c.save_checkpoint(sys.argv[1], nn.Linear(2, 2))\n"
    )
    target = tmp_path / "c.pt"
    proc = subprocess.run([sys.executable, "-c", code, str(target)], cwd=os.getcwd(), check=False)
    assert proc.returncode == -9
    left = list(tmp_path.glob(".c.pt.*.tmp"))
    assert len(left) == 1  # the killed save could not clean up after itself
    save_checkpoint(target, small_vae().build(X))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


# ---------------------------------------------------------------------- target validation
@pytest.mark.parametrize("kind", ["bernoulli", "continuous_bernoulli"])
def test_bernoulli_targets_outside_unit_interval_raise(kind):
    x, logits = torch.tensor([1.5, -0.2]), torch.tensor([20.0, -20.0])
    with pytest.raises(ValueError, match=rf"x must lie in \[0, 1\] for the '{kind}'.*\[-0.2, 1.5\]"):
        log_likelihood(x, logits, kind)
    # the documented escape hatch computes the (meaningless) numbers
    assert torch.isfinite(log_likelihood(x, logits, kind, validate=False)).all()


def test_eight_bit_targets_get_the_hint():
    with pytest.raises(ValueError, match=r"x / 255"):
        log_likelihood(torch.tensor([0.0, 255.0]), torch.zeros(2), "bernoulli")


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "bernoulli", lambda x, h: -(x - h) ** 2])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_targets_raise_for_every_likelihood(kind, bad):
    x = torch.tensor([0.5, bad])
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        log_likelihood(x, torch.zeros(2), kind)


def test_validate_flag_is_strict():
    with pytest.raises(TypeError, match="validate"):
        log_likelihood(torch.zeros(2), torch.zeros(2), "gaussian", validate="no")


def test_range_check_rides_along_with_the_diagnostics():
    ll = torch.tensor(-3.0)
    assert float_diagnostics({"ll": ll}, targets={"x": (torch.rand(5), "bernoulli")}) == {"ll": -3.0}
    with pytest.raises(ValueError, match=r"^target must lie in \[0, 1\]"):
        float_diagnostics({"ll": ll}, targets={"target": (torch.tensor([2.0]), "bernoulli")})
    validate_target(torch.tensor([0.0, 1.0]), "continuous_bernoulli")  # the edges are fine


def test_compute_loss_refuses_unscaled_images():
    model = small_vae().build(X)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*x / 255"):
        model.compute_loss(X * 255, model(X * 255), likelihood="bernoulli")
    model.compute_loss(X * 255, model(X * 255), likelihood="gaussian")  # any finite x


def test_adagvae_names_the_view():
    model = AdaGVAE(small_vae()).build((X, X))
    bad = X.clone()
    bad[1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="x2 contains NaN"):
        model.compute_loss((X, bad), model((X, bad)))


# ------------------------------------------------------------------------------------ fit
class Scripted(BaseAutoencoder):
    """One parameter; the objective is finite, but its diagnostic or its gradient is
    made non-finite at a chosen call."""

    def __init__(self, bad_at: int | None = None, what: str = "diagnostic") -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.calls, self.bad_at, self.what = 0, bad_at, what

    def _encode(self, x):
        return AEOutput(x_hat=x, z=x)

    def _decode(self, z):
        return AEOutput(x_hat=z, z=z)

    def forward(self, x):
        return AEOutput(x_hat=x * self.w, z=x)

    def compute_loss(self, x, output):
        objective = ((output.x_hat - 2 * x) ** 2).mean()
        bad = self.calls == self.bad_at
        self.calls += 1
        if bad and self.what == "gradient":
            objective = objective + torch.sqrt(self.w - self.w.detach())  # d/dw sqrt(0) = inf
        if bad and self.what == "objective":  # infinite, but its gradient is finite
            objective = objective + torch.tensor(float("inf"))
        value = float("nan") if bad and self.what == "diagnostic" else float(objective.detach())
        return LossResult(objective=objective, diagnostics={"loss": value})


BATCHES = [torch.full((4, 1), v) for v in (1.0, 2.0, 3.0)]


@pytest.mark.parametrize("what", ["diagnostic", "gradient", "objective"])
def test_divergence_stops_before_the_step_and_keeps_the_history(what):
    reference = Scripted()
    fit(reference, BATCHES, epochs=2, optimizer=torch.optim.SGD(reference.parameters(), lr=0.01),
        progress=False, device="cpu")
    assert reference.w.item() != 1.0
    model = Scripted(bad_at=4, what=what)  # epoch 2, batch 1
    with pytest.raises(TrainingDiverged, match=r"at step 4 \(epoch 2, batch 1\)") as info:
        fit(model, BATCHES, epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
            progress=False, device="cpu")
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert (err.step, err.epoch, err.batch) == (4, 2, 1)
    assert err.history.steps == 4 and len(err.history.train["loss"]) == 2  # epoch 1 + partial 2
    # the parameters are those after step 4 of a clean run: the same 4 SGD steps
    check = Scripted()
    opt = torch.optim.SGD(check.parameters(), lr=0.01)
    for x in BATCHES + BATCHES[:1]:
        opt.zero_grad()
        ((check.w * x - 2 * x) ** 2).mean().backward()
        opt.step()
    assert torch.isfinite(model.w) and model.w.item() == pytest.approx(check.w.item(), rel=1e-6)


def test_a_nan_batch_is_named_and_not_blamed_on_the_learning_rate():
    model = small_vae()
    batches = [X[:4], X[4:].clone()]
    batches[1][0, 0, 0, 0] = float("nan")
    with pytest.raises(BadBatchError, match=r"step 1 \(epoch 1, batch 1\): x contains NaN") as info:
        fit(model, batches, epochs=1, progress=False, device="cpu")
    assert isinstance(info.value, ValueError) and "lr" not in str(info.value)
    assert info.value.history.steps == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_nan_batch_is_found_for_a_model_that_does_not_validate():
    model = Scripted()
    bad = torch.tensor([[1.0], [float("nan")]])
    with pytest.raises(BadBatchError, match=r"step 0 \(epoch 1, batch 0\): the batch contains NaN"):
        fit(model, [bad], epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            progress=False, device="cpu")
    assert model.w.item() == 1.0


def test_out_of_range_targets_stop_fit_at_the_first_step():
    model = small_vae()
    with pytest.raises(BadBatchError, match=r"step 0 .*x must lie in \[0, 1\]"):
        fit(model, [X * 255], epochs=1, loss_kwargs={"likelihood": "bernoulli"}, progress=False, device="cpu")


def test_an_optimizer_of_another_model_is_refused():
    model, other = small_vae().build(X), small_vae(seed=1).build(X)
    before = params_of(model)
    with pytest.raises(ValueError, match=r"optimizer holds \d+ of \d+ parameter tensors that are not parameters"):
        fit(model, [X], epochs=1, optimizer=torch.optim.Adam(other.parameters()), progress=False, device="cpu")
    for a, b in zip(before, params_of(model), strict=True):
        assert torch.equal(a, b)
    # an optimizer over part of the model (a frozen encoder) is fine
    fit(model, [X], epochs=1, optimizer=torch.optim.Adam(model.decoder.parameters()), progress=False, device="cpu")


def test_a_learnable_likelihood_in_loss_kwargs_may_share_the_optimizer():
    class LearnedGaussian(nn.Module):
        def __init__(self):
            super().__init__()
            self.log_sigma = nn.Parameter(torch.zeros(()))

        def forward(self, x, x_hat):
            return -0.5 * ((x - x_hat) / self.log_sigma.exp()) ** 2 - self.log_sigma

    model, lik = small_vae().build(X), LearnedGaussian()
    opt = torch.optim.Adam([*model.parameters(), *lik.parameters()], lr=0.1)
    fit(model, [X], epochs=2, optimizer=opt, loss_kwargs={"likelihood": lik}, progress=False, device="cpu")
    assert lik.log_sigma.item() != 0.0  # it was trained


def test_training_step_flops_match_the_count_by_hand():
    from autoencoders import AE
    from autoencoders.train import training_step_flops

    B, a, b = 5, 12, 4
    model = AE(nn.Linear(a, b), nn.Linear(b, a))
    x = torch.rand(B, a)
    # forward: two matrix products of 2*B*a*b operations each; backward: the decoder
    # needs the gradients of its weight and of its input, the encoder only of its
    # weight (x needs no gradient): three more products.
    assert training_step_flops(model, x) == 5 * 2 * B * a * b
    assert all(p.grad is None for p in model.parameters())


def test_training_step_flops_has_no_side_effects():
    from autoencoders.train import training_step_flops

    model = VAE(nn.Sequential(nn.Flatten(), nn.LazyLinear(8), nn.BatchNorm1d(8), nn.ReLU()),
                nn.Sequential(nn.Linear(3, 36), nn.Unflatten(1, (1, 6, 6))), 3).build(X)
    model.eval()
    stats = [b.clone() for b in model.buffers()]
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    assert training_step_flops(model, X, {"S": 2}) > 0
    assert torch.equal(torch.rand(3), expected)  # the global generator did not move
    assert not model.training
    assert all(torch.equal(a, b) for a, b in zip(stats, model.buffers(), strict=True))
