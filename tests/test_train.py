"""Tests of autoencoders.train: fit, evaluate, beta schedules, History and checkpoints."""

from __future__ import annotations

import math
import os

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autoencoders import AE, VAE, AdaGVAE, BaseAutoencoder
from autoencoders.data import TensorLoader, load_mnist
from autoencoders.loss import LossResult
from autoencoders.train import (
    History,
    cyclical,
    evaluate,
    fit,
    linear_warmup,
    load_checkpoint,
    save_checkpoint,
)
from autoencoders.utils import get_device
from autoencoders.vanilla import AEOutput

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DEVICE = get_device()
BERNOULLI = {"likelihood": "bernoulli"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # The test machine has 2 shared cores; one intra-op thread avoids oversubscription.
    # Module scope (and autouse) makes it run before the module-scoped training fixture.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def mnist(mnist_root):
    """2,000 training and 1,000 test images of the real (offline) MNIST copy."""
    train = load_mnist(root=mnist_root, download=False).images[:2000]
    test = load_mnist(root=mnist_root, train=False, download=False).images[:1000]
    return train, test


def make_vae(seed: int = 0, latent_dim: int = 10) -> VAE:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.Softplus())
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 200), nn.Softplus(), nn.Linear(200, 784), nn.Unflatten(1, (1, 28, 28))
    )
    return VAE(encoder, decoder, latent_dim)


def make_ae(seed: int = 0, latent_dim: int = 8) -> AE:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.Softplus(), nn.Linear(64, latent_dim))
    decoder = nn.Sequential(nn.Linear(latent_dim, 64), nn.Softplus(), nn.Linear(64, 784), nn.Unflatten(1, (1, 28, 28)))
    return AE(encoder, decoder)


def loader(x: torch.Tensor, batch_size: int, seed: int = 0) -> TensorLoader:
    return TensorLoader(x, batch_size=batch_size, rng=torch.Generator().manual_seed(seed))


def mean_image_log_likelihood(train: torch.Tensor, test: torch.Tensor) -> float:
    """Independent baseline: every pixel Bernoulli with the training-set mean intensity."""
    p = train.mean(0).clamp(1e-4, 1 - 1e-4)
    logits = (torch.log(p) - torch.log1p(-p)).expand_as(test)
    return float(-F.binary_cross_entropy_with_logits(logits, test, reduction="none").flatten(1).sum(1).mean())


@pytest.fixture(scope="module")
def trained_vae(mnist):
    """A VAE trained for 2 epochs (batch 50, Adam 3e-3), with its optimizer."""
    train, _ = mnist
    model = make_vae(seed=0).to(DEVICE)
    model.build(train[:2].to(DEVICE))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = fit(model, loader(train, 50), epochs=2, optimizer=optimizer, loss_kwargs=BERNOULLI, progress=False)
    return model, optimizer, history


class Recorder(BaseAutoencoder):
    """A one-parameter model that records what fit passes to forward and compute_loss.

    Its only diagnostic is the batch mean of x, so the epoch means that fit reports can
    be checked against plain arithmetic on the data.
    """

    def __init__(self, nan_at_call: int | None = None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.forward_S: list[int] = []
        self.betas: list[float] = []
        self.nan_at_call = nan_at_call

    def _encode(self, x):
        return AEOutput(x_hat=x, z=x)

    def _decode(self, z):
        return AEOutput(x_hat=z, z=z)

    def forward(self, x, S: int = 1):
        self.forward_S.append(S)
        return AEOutput(x_hat=x * self.w, z=x)

    def compute_loss(self, x, output, beta: float = 1.0):
        self.betas.append(beta)
        value = float(x.mean())
        if self.nan_at_call is not None and len(self.betas) - 1 == self.nan_at_call:
            value = math.nan
        objective = ((output.x_hat - 2 * x) ** 2).mean()
        return LossResult(objective=objective, diagnostics={"x_mean": value})


# ------------------------------------------------------------------------------- fit
@pytest.mark.parametrize("progress", [False, True])
def test_fit_improves_vae_elbo_on_mnist(mnist, capsys, progress):
    train, test = mnist
    model = make_vae(seed=1)
    model.build(train[:2])
    before = evaluate(model, test, device=DEVICE, **BERNOULLI)["elbo"]
    history = fit(
        model, loader(train, 50, seed=1), epochs=2, lr=3e-3, loss_kwargs=BERNOULLI,
        device=DEVICE, progress=progress,
    )
    after = evaluate(model, test, **BERNOULLI)["elbo"]
    # Measured: about -565 -> -177 nats/image (3 seeds). An untrained decoder outputs
    # logits near 0, i.e. about 784 log 2 = 543 nats.
    assert after > before + 250.0, (before, after)
    # It has also learnt more than the mean image (baseline about -202.5 nats).
    assert after > mean_image_log_likelihood(train, test) + 10.0
    assert history.steps == 2 * 40 and len(history.epoch_time) == 2
    assert history.train["elbo"][1] > history.train["elbo"][0]
    err = capsys.readouterr().err
    if progress:
        assert "epoch 2/2" in err and "elbo=" in err and "80/80" in err
    else:
        assert err == ""


def test_fit_reads_one_tensor_value_beyond_compute_loss(mnist, monkeypatch):
    """fit adds one host-device synchronisation per step: with SGD the tensor reads
    are the single ``tolist`` inside ``compute_loss``'s diagnostics and the single
    ``tolist`` of the objective and the gradient norm that guards the optimizer step."""
    train, _ = mnist
    model = make_vae(seed=2)
    model.build(train[:2])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    counts = {"item": 0, "__float__": 0, "tolist": 0, "__bool__": 0}
    for name in counts:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    history = fit(model, loader(train[:400], 100), epochs=2, optimizer=optimizer, loss_kwargs=BERNOULLI, progress=False, grad_clip=10.0)
    monkeypatch.undo()
    assert history.steps == 8
    assert counts == {"item": 0, "__float__": 0, "tolist": 16, "__bool__": 0}


def test_fit_epoch_means_are_weighted_by_batch_size():
    x = torch.arange(7, dtype=torch.float32).reshape(7, 1)
    batches = [(x[:3], "label"), (x[3:6], "label"), (x[6:], "label")]  # sizes 3, 3, 1
    model = Recorder()
    history = fit(model, batches, epochs=2, device="cpu", progress=False)
    # Mean over the 7 examples is 3.0; the unweighted mean of batch means would be 11/3.
    assert history.train["x_mean"] == pytest.approx([3.0, 3.0])
    assert history.steps == 6 and len(history) == 2


def test_fit_routes_S_to_forward_and_schedules_beta_by_global_step():
    x = torch.ones(8, 1)
    model = Recorder()
    schedule = linear_warmup(4, beta_max=2.0)
    history = fit(
        model, [x[:4], x[4:]], epochs=3, loss_kwargs={"S": 3, "beta": 9.0},
        beta_schedule=schedule, device="cpu", progress=False,
    )
    assert model.forward_S == [3] * 6
    # Steps 0..5 of a warm-up over 4 steps to 2.0: 0, 0.5, 1, 1.5, then 2, 2.
    assert model.betas == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    assert history.train["beta"] == pytest.approx([0.25, 1.25, 2.0])


def test_fit_trains_an_ae(mnist):
    train, test = mnist
    model = make_ae()
    history = fit(
        model, loader(train[:1000], 50), epochs=3, lr=3e-3, loss_kwargs=BERNOULLI,
        eval_data=test[:500], device=DEVICE, progress=False,
    )
    ll = history.train["log_likelihood"]
    assert len(ll) == 3 and ll[2] > ll[0] + 100.0, ll
    assert set(history.eval) == {"log_likelihood"}  # the same names as in train
    assert history.eval["log_likelihood"][-1] > history.eval["log_likelihood"][0]


def test_fit_trains_adagvae_on_pairs(mnist):
    train, test = mnist
    gen = torch.Generator().manual_seed(0)

    def pairs(x, batch_size):
        noisy = (x + 0.05 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
        return [(x[i : i + batch_size], noisy[i : i + batch_size]) for i in range(0, len(x), batch_size)]

    model = AdaGVAE(make_vae(seed=3, latent_dim=6))
    history = fit(
        model, pairs(train[:1000], 50), epochs=2, lr=3e-3, loss_kwargs=BERNOULLI,
        eval_data=pairs(test[:200], 100), device=DEVICE, progress=False,
    )
    keys = {"elbo", "log_likelihood_x1", "log_likelihood_x2", "kl_divergence_x1", "kl_divergence_x2", "shared_dims"}
    assert set(history.train) == keys
    assert set(history.eval) == set(keys)
    assert history.train["elbo"][1] > history.train["elbo"][0] + 50.0
    assert model.vae.unbuilt_modules() == []


def test_fit_builds_lazy_layers_before_creating_the_optimizer(mnist):
    train, _ = mnist
    model = make_vae(seed=4)
    assert model.unbuilt_modules()
    fit(model, [train[:20]], epochs=1, device="cpu", progress=False, loss_kwargs=BERNOULLI)
    assert model.unbuilt_modules() == []
    assert model._build_input_shape == (1, 1, 28, 28)


def test_callback_returning_true_stops_training():
    seen = []

    def stop_after_two(epoch, history, model):
        seen.append((epoch, len(history), type(model).__name__))
        return epoch == 2

    history = fit(Recorder(), [torch.ones(2, 1)], epochs=5, callbacks=[stop_after_two], device="cpu", progress=False)
    assert seen == [(1, 1, "Recorder"), (2, 2, "Recorder")]
    assert len(history) == 2 and history.steps == 2


def test_nan_diagnostic_raises_with_the_step():
    with pytest.raises(FloatingPointError, match="step 3"):
        fit(Recorder(nan_at_call=3), [torch.ones(2, 1)] * 2, epochs=3, device="cpu", progress=False)


def test_fit_with_a_scheduler_matches_a_hand_written_loop():
    # Reference: plain SGD on the Recorder's one parameter with ExponentialLR stepped
    # once per epoch, written out by hand; fit must reproduce the weight exactly.
    x = torch.linspace(0.1, 1.0, 8).reshape(8, 1)
    batches = [x[:4], x[4:]]
    w_ref, lr, gamma = torch.ones(()), 0.1, 0.5
    lrs = []
    for epoch in range(3):
        for xb in batches:
            grad = (2 * (xb * w_ref - 2 * xb) * xb).mean()  # d/dw mean((w x - 2x)^2)
            w_ref = w_ref - lr * gamma**epoch * grad
            lrs.append(lr * gamma**epoch)
    model = Recorder()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    history = fit(
        model, batches, epochs=3, optimizer=optimizer, device="cpu", progress=False,
        scheduler=torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma),
    )
    assert float(model.w.detach()) == pytest.approx(float(w_ref), rel=1e-6)
    assert history.train["lr"] == pytest.approx([0.1, 0.05, 0.025])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0125)


def test_fit_scheduler_factory_schedules_the_default_optimizer_per_step():
    x = torch.ones(8, 1)
    history = fit(
        Recorder(), [x[:4], x[4:]], epochs=2, lr=1.0, device="cpu", progress=False,
        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
        scheduler_interval="step",
    )
    # Per-step learning rates 1, 1/2, 1/4, 1/8: epoch means 3/4 and 3/16.
    assert history.train["lr"] == pytest.approx([0.75, 0.1875])


def test_fit_stops_at_max_steps_in_the_middle_of_an_epoch():
    x = torch.arange(6, dtype=torch.float32).reshape(6, 1)
    batches = [x[:2], x[2:4], x[4:]]  # batch means 0.5, 2.5, 4.5
    model = Recorder()
    history = fit(model, batches, epochs=None, max_steps=5, device="cpu", progress=False)
    assert history.steps == 5 and len(model.betas) == 5
    # Epoch 1 sees all six numbers (mean 2.5); the cut epoch 2 only 0..3 (mean 1.5).
    assert len(history) == 2
    assert history.train["x_mean"] == pytest.approx([2.5, 1.5])
    # A budget at an epoch boundary leaves no empty epoch; epochs still caps the run.
    assert len(fit(Recorder(), batches, epochs=4, max_steps=6, progress=False)) == 2
    assert fit(Recorder(), batches, epochs=1, max_steps=100, progress=False).steps == 3


class _ClockedRecorder(Recorder):
    """A Recorder whose every forward pass takes exactly one second of a fake clock."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def forward(self, x, S: int = 1):
        self.clock.now += 1.0
        return super().forward(x, S=S)


class _FakeTime:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def test_fit_stops_when_max_seconds_of_training_are_spent(monkeypatch):
    import autoencoders.train as train_module

    clock = _FakeTime()
    monkeypatch.setattr(train_module, "time", clock)
    x = torch.ones(6, 1)
    batches = [x[:2], x[2:4], x[4:]]
    evaluated = []
    history = fit(
        _ClockedRecorder(clock), batches, epochs=None, max_seconds=4.5, progress=False,
        callbacks=[lambda epoch, history, model: evaluated.append(epoch)],
    )
    # Steps start at t = 0, 1, 2, 3, 4 (< 4.5); the sixth would start at t = 5.
    assert history.steps == 5
    assert history.epoch_time == pytest.approx([3.0, 2.0])
    assert evaluated == [1, 2]  # callbacks still run after the cut epoch


def test_fit_rejects_bad_schedulers():
    x = torch.ones(4, 1)
    other = torch.optim.SGD([nn.Parameter(torch.ones(()))], lr=0.1)
    with pytest.raises(ValueError, match="scheduler_interval must be 'epoch' or 'step', got 'batch'"):
        fit(Recorder(), [x], epochs=1, progress=False, scheduler_interval="batch")
    with pytest.raises(ValueError, match="bound to a different optimizer"):
        fit(Recorder(), [x], epochs=1, progress=False,
            scheduler=torch.optim.lr_scheduler.StepLR(other, step_size=1))
    with pytest.raises(TypeError, match="ReduceLROnPlateau needs a metric"):
        fit(Recorder(), [x], epochs=1, progress=False,
            scheduler=lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt))
    with pytest.raises(TypeError, match="factory must return a torch.optim.lr_scheduler scheduler, got 0.5"):
        fit(Recorder(), [x], epochs=1, progress=False, scheduler=lambda opt: 0.5)
    with pytest.raises(TypeError, match="scheduler must be an LRScheduler or a callable"):
        fit(Recorder(), [x], epochs=1, progress=False, scheduler=0.9)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs must be an int >= 1, got 0"),
        ({"epochs": 2.5}, TypeError, "epochs must be an int"),
        ({"epochs": 1, "loss_kwargs": {"bta": 1.0}}, ValueError, r"unknown loss_kwargs \['bta'\]"),
        ({"epochs": 1, "lr": -1.0}, ValueError, "lr must be a finite number > 0"),
        ({"epochs": 1, "grad_clip": 0.0}, ValueError, "grad_clip"),
        ({"epochs": 1, "optimizer": "adam"}, TypeError, "optimizer must be a torch.optim.Optimizer"),
        ({"epochs": 1, "callbacks": [3]}, TypeError, "callback must be callable"),
        ({"epochs": None}, ValueError, "epochs=None trains until a budget runs out"),
        ({"epochs": None, "max_steps": 0}, ValueError, "max_steps must be an int >= 1, got 0"),
        ({"epochs": 1, "max_seconds": -2.0}, ValueError, "max_seconds must be a finite number > 0"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        fit(make_vae(), [torch.rand(4, 1, 28, 28)], device="cpu", progress=False, **kwargs)


def test_fit_rejects_wrong_data_and_model_combinations():
    x = torch.rand(4, 1, 28, 28)
    with pytest.raises(ValueError, match="compute_loss takes no beta"):
        fit(make_ae(), [x], epochs=1, beta_schedule=linear_warmup(10), progress=False)
    with pytest.raises(ValueError, match="forward takes no S"):
        fit(make_ae(), [x], epochs=1, loss_kwargs={"S": 2}, progress=False)
    with pytest.raises(TypeError, match="one-shot iterator"):
        fit(make_ae(), iter([x, x]), epochs=2, progress=False)
    with pytest.raises(TypeError, match="one-shot iterator"):
        fit(make_ae(), iter([x, x]), epochs=None, max_steps=3, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        fit(make_ae(), [], epochs=1, progress=False)
    with pytest.raises(TypeError, match="paired model must be"):
        fit(AdaGVAE(make_vae()), [x], epochs=1, progress=False)


# -------------------------------------------------------------------------- schedules
def test_linear_warmup_values():
    schedule = linear_warmup(10)
    assert [schedule(t) for t in (0, 1, 5, 9, 10, 11, 1000)] == pytest.approx([0, 0.1, 0.5, 0.9, 1, 1, 1])
    shifted = linear_warmup(4, beta_max=0.8, beta_min=0.2)
    assert [shifted(t) for t in (0, 1, 2, 4, 7)] == pytest.approx([0.2, 0.35, 0.5, 0.8, 0.8])
    assert linear_warmup(0, beta_max=0.5)(0) == 0.5


def test_cyclical_values_follow_fu_et_al():
    schedule = cyclical(10, beta_max=2.0, ratio=0.5)
    steps = (0, 1, 2, 4, 5, 9, 10, 13, 15, 29)
    expected = (0.0, 0.4, 0.8, 1.6, 2.0, 2.0, 0.0, 1.2, 2.0, 2.0)
    assert [schedule(t) for t in steps] == pytest.approx(expected)
    limited = cyclical(4, ratio=1.0, n_cycles=2)
    # Two cycles rising over all 4 steps (0, .25, .5, .75), then constant 1.
    assert [limited(t) for t in range(11)] == pytest.approx([0, 0.25, 0.5, 0.75] * 2 + [1, 1, 1])


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: linear_warmup(-1), "warmup_steps must be an int >= 0, got -1"),
        (lambda: linear_warmup(10, beta_max=0.1, beta_min=0.5), "beta_min must be <= beta_max"),
        (lambda: linear_warmup(10, beta_max=float("nan")), "beta_max"),
        (lambda: cyclical(0), "period must be an int >= 1, got 0"),
        (lambda: cyclical(10, ratio=1.5), r"ratio must be in \(0, 1\], got 1.5"),
        (lambda: cyclical(10, ratio=0.0), "ratio"),
        (lambda: cyclical(10, n_cycles=0), "n_cycles"),
        (lambda: cyclical(10)(-1), "step must be an int >= 0, got -1"),
    ],
)
def test_schedules_reject_bad_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


# --------------------------------------------------------------------------- evaluate
def test_evaluate_at_mean_is_labelled_and_matches_a_hand_computation(trained_vae, mnist):
    model, _, _ = trained_vae
    _, test = mnist
    x = test[:250].to(DEVICE)
    # Uneven batches (100, 100, 50) check the weighting by batch size.
    result = evaluate(model, x, sample=False, batch_size=100, **BERNOULLI)
    assert "elbo" not in result and set(result) == {"log_likelihood", "kl_divergence", "elbo_at_mean"}
    with torch.no_grad():
        model.eval()
        h = model.encoder(x)
        mu, log_var = model.sampling_layer.mu(h), model.sampling_layer.log_var(h)
        logits = model.decoder(mu)
        model.train()
    recon = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(1)
    assert result["log_likelihood"] == pytest.approx(float(recon.mean()), rel=1e-5)
    assert result["kl_divergence"] == pytest.approx(float(kl.mean()), rel=1e-5)
    assert result["elbo_at_mean"] == pytest.approx(float((recon - kl).mean()), rel=1e-5)


def test_sampled_elbo_is_below_reconstruction_at_the_mean(trained_vae, mnist):
    model, _, _ = trained_vae
    _, test = mnist
    torch.manual_seed(0)
    # Measured gap about 3 nats; the Monte Carlo noise of the mean over 1,000 images
    # with S=4 is about 0.1 nats.
    sampled = evaluate(model, test, S=4, **BERNOULLI)
    at_mean = evaluate(model, test, sample=False, **BERNOULLI)
    assert sampled["elbo"] < at_mean["elbo_at_mean"] - 1.0
    assert sampled["kl_divergence"] == pytest.approx(at_mean["kl_divergence"], rel=1e-5)


def test_evaluate_restores_every_training_flag(trained_vae, mnist):
    model, _, _ = trained_vae
    model.train()
    model.decoder.eval()
    flags = {name: m.training for name, m in model.named_modules()}
    evaluate(model, mnist[1][:10], **BERNOULLI)
    assert {name: m.training for name, m in model.named_modules()} == flags
    model.train()


def test_evaluate_ae_ignores_sample_and_rejects_S(mnist):
    model = make_ae()
    x = mnist[1][:64]
    model.build(x)
    assert evaluate(model, x, sample=False) == pytest.approx(evaluate(model, x))
    assert set(evaluate(model, x)) == {"log_likelihood"}
    with pytest.raises(ValueError, match="S must be 1"):
        evaluate(model, x, S=2)
    with pytest.raises(ValueError, match="unknown loss_kwargs"):
        evaluate(model, x, beta=1.0)
    with pytest.raises(TypeError, match="paired model"):
        evaluate(AdaGVAE(make_vae()), x)


# ---------------------------------------------------------------------------- History
def make_history() -> History:
    return History(
        train={"elbo": [-200.0, -150.0, -120.0], "kl_divergence": [5.0, 8.0, 9.0]},
        eval={"elbo": [-190.0, -155.0, -125.0]},
        epoch_time=[1.0, 1.1, 1.2],
        steps=30,
    )


def test_history_plot_draws_train_solid_and_eval_dashed():
    history = make_history()
    fig = history.plot()
    assert len(fig.axes) == 2
    elbo_ax, kl_ax = fig.axes
    assert [line.get_linestyle() for line in elbo_ax.get_lines()] == ["-", "--"]
    train_line, eval_line = elbo_ax.get_lines()
    assert train_line.get_color() != eval_line.get_color()  # told apart by colour too
    assert elbo_ax.get_title() == ""  # the y label names the quantity once
    assert fig.get_size_inches()[0] <= 7.0
    assert len(kl_ax.get_lines()) == 1
    assert elbo_ax.get_xlabel() == "epoch" and elbo_ax.get_legend() is not None
    assert list(elbo_ax.get_lines()[1].get_ydata()) == [-190.0, -155.0, -125.0]
    fig2, ax = plt.subplots()
    assert history.plot(keys="eval_elbo", ax=ax) is fig2 and len(ax.get_lines()) == 2
    # one key into a given axes: train and eval still differ in colour, and the legend
    # says train/eval without repeating the key
    train_line, eval_line = ax.get_lines()
    assert train_line.get_color() != eval_line.get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "eval"]
    fig3, ax3 = plt.subplots()
    history.plot(keys=["elbo", "kl_divergence"], ax=ax3)  # several keys: a colour each
    labels = [t.get_text() for t in ax3.get_legend().get_texts()]
    assert labels == ["train elbo", "eval elbo", "train kl_divergence"]
    with pytest.raises(ValueError, match="keys must be among"):
        history.plot(keys=["nope"])
    plt.close("all")


def test_history_table_and_last():
    history = make_history()
    assert history.last("elbo") == -120.0 and history.last("eval_elbo") == -125.0
    assert history.last("elbo", split="eval") == -125.0
    with pytest.raises(KeyError, match="recorded names"):
        history.last("loss")
    table = history.as_table().splitlines()
    assert table[0].split() == ["epoch", "elbo", "kl_divergence", "eval_elbo", "time_s"]
    assert table[3].split() == ["3", "-120", "9", "-125", "1.20"]
    assert repr(history).startswith("History(epochs=3, steps=30)")


# ------------------------------------------------------------------------ checkpoints
def test_checkpoint_round_trip_into_a_fresh_unbuilt_model(trained_vae, mnist, tmp_path):
    model, optimizer, history = trained_vae
    path = tmp_path / "vae.pt"
    save_checkpoint(path, model, optimizer, epoch=2, elbo=history.last("elbo"), tags=["mnist", 1])
    fresh = make_vae(seed=123).to(DEVICE)
    assert fresh.unbuilt_modules()
    meta = load_checkpoint(path, fresh)
    assert meta == {"epoch": 2, "elbo": history.last("elbo"), "tags": ["mnist", 1]}
    x = mnist[1][:32].to(DEVICE)
    model.eval()
    fresh.eval()
    with torch.no_grad():
        a, b = model(x), fresh(x)
    model.train()
    assert torch.equal(a.x_hat, b.x_hat) and torch.equal(a.mu, b.mu) and torch.equal(a.log_var, b.log_var)

    new_optimizer = torch.optim.Adam(fresh.parameters(), lr=1.0)
    load_checkpoint(path, fresh, new_optimizer)
    saved, restored = optimizer.state_dict(), new_optimizer.state_dict()
    assert restored["param_groups"][0]["lr"] == saved["param_groups"][0]["lr"] == 3e-3
    for key, state in saved["state"].items():
        assert torch.equal(restored["state"][key]["exp_avg"], state["exp_avg"])
        assert torch.equal(restored["state"][key]["exp_avg_sq"], state["exp_avg_sq"])
        assert float(restored["state"][key]["step"]) == float(state["step"]) == 80


def test_checkpoint_of_a_paired_model_rebuilds_from_a_pair(tmp_path):
    x = torch.rand(6, 1, 28, 28)
    model = AdaGVAE(make_vae(seed=5, latent_dim=4))
    fit(model, [(x, x.flip(0))], epochs=1, progress=False, device="cpu")
    save_checkpoint(tmp_path / "ada.pt", model)
    fresh = AdaGVAE(make_vae(seed=6, latent_dim=4))
    load_checkpoint(tmp_path / "ada.pt", fresh)
    with torch.no_grad():
        a = model((x, x.flip(0)), sample=False).output1.x_hat
        b = fresh((x, x.flip(0)), sample=False).output1.x_hat
    assert torch.equal(a, b)


def test_checkpoint_without_input_shape_needs_a_sample(tmp_path):
    x = torch.rand(3, 1, 28, 28)
    model = make_vae().build(x)  # build() records the input shape itself
    save_checkpoint(tmp_path / "built.pt", model)
    rebuilt = make_vae(seed=9)
    load_checkpoint(tmp_path / "built.pt", rebuilt)
    assert torch.equal(rebuilt.sampling_layer.mu.weight, model.sampling_layer.mu.weight)
    # a model materialised some other way has no recorded shape
    del model._build_input_shape
    save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(ValueError, match="sample="):
        load_checkpoint(tmp_path / "m.pt", make_vae())
    fresh = make_vae(seed=9)
    load_checkpoint(tmp_path / "m.pt", fresh, sample=x)
    assert torch.equal(fresh.sampling_layer.mu.weight, model.sampling_layer.mu.weight)
    save_checkpoint(tmp_path / "s.pt", model, input_shape=(1, 1, 28, 28))
    load_checkpoint(tmp_path / "s.pt", make_vae(seed=9))
    with pytest.raises(ValueError, match="holds no optimizer state"):
        load_checkpoint(tmp_path / "s.pt", fresh, torch.optim.SGD(fresh.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="meta"):
        save_checkpoint(tmp_path / "bad.pt", model, note=object())


def test_interrupted_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = make_vae().build(torch.rand(2, 1, 28, 28))
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, input_shape=(1, 1, 28, 28), epoch=1)
    good = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", crash)
    with torch.no_grad():
        model.decoder[0].weight.add_(1.0)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, model, input_shape=(1, 1, 28, 28), epoch=2)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.pt"]
    assert path.read_bytes() == good
    assert load_checkpoint(path, make_vae(seed=1)) == {"epoch": 1}


def test_device_none_means_get_device_and_evaluate_moves_the_model_back(monkeypatch):
    """One device policy: device=None asks get_device (AUTOENCODERS_DEVICE, else CUDA),
    not the model. A sentinel device 'cpu:0' (a CPU, but unequal to 'cpu') makes the
    moves visible on a machine without a GPU."""
    import autoencoders.train as train_module

    sentinel = torch.device("cpu", 0)
    asked = []
    monkeypatch.setattr(train_module, "get_device", lambda d=None: asked.append(d) or sentinel)
    model = make_vae()
    moves = []
    original_to = model.to

    def recording_to(*args, **kwargs):
        moves.append(torch.device(args[0]) if args else kwargs.get("device"))
        return original_to(*args, **kwargs)

    model.to = recording_to
    fit(model, [torch.rand(4, 1, 28, 28)], epochs=1, progress=False)
    assert asked == [None] and moves == [sentinel]  # an unbuilt lazy model goes there too
    asked.clear(), moves.clear()
    evaluate(model, torch.rand(4, 1, 28, 28))
    assert asked == [None]
    assert moves == [sentinel, torch.device("cpu")]  # there and back to where it was


def test_history_records_the_training_device():
    history = fit(make_vae(), [torch.rand(4, 1, 28, 28)], epochs=1, progress=False, device="cpu")
    assert history.device == "cpu"


def test_fit_refuses_to_train_off_the_required_device(monkeypatch):
    """Under AUTOENCODERS_DEVICE=cuda the test suite sets AUTOENCODERS_REQUIRE_DEVICE=cuda,
    and every fit (in the tests and in the chapters' kernels) must then train on the GPU."""
    from autoencoders.recipes import mlp_vae
    from autoencoders.train import REQUIRE_DEVICE_ENV, fit

    model = mlp_vae(2, hidden=(8,), likelihood="bernoulli")
    x = torch.rand(8, 1, 28, 28)
    monkeypatch.setenv(REQUIRE_DEVICE_ENV, "cuda")
    with pytest.raises(RuntimeError, match=r"training on cpu, but \$AUTOENCODERS_REQUIRE_DEVICE='cuda'"):
        fit(model, [x], epochs=1, device="cpu", progress=False)
    monkeypatch.setenv(REQUIRE_DEVICE_ENV, "cpu")
    history = fit(model, [x], epochs=1, device="cpu", progress=False)
    assert history.device == "cpu"


def test_placement_check_names_a_tensor_on_another_device():
    from autoencoders.train import _check_placement

    model = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match=r"1 tensor\(s\) are elsewhere: batch tensor 0 on meta"):
        _check_placement(model, torch.empty(3, 2, device="meta"), torch.device("cpu"))
    _check_placement(model, torch.zeros(3, 2), torch.device("cpu"))
