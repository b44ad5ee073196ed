r"""Training helpers: :func:`fit` and :func:`evaluate`.

The checkpoint helpers (:func:`~autoencoders.checkpoint.save_checkpoint` and
:func:`~autoencoders.checkpoint.load_checkpoint`) and the KL schedules live in
:mod:`autoencoders.checkpoint` and :mod:`autoencoders.schedules`, and are importable
from here too.

A notebook cell that trains a model reads like the idea it teaches::

    history = fit(model, TensorLoader(images, batch_size=128), epochs=10,
                  loss_kwargs={"likelihood": "bernoulli"},
                  beta_schedule=linear_warmup(2_000), eval_data=test_images)
    history.plot()

:func:`fit` runs the package's one rhythm, ``forward -> compute_loss -> backward ->
step``, and refuses to take a step whose objective or gradient is not finite.
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import distributed

# Re-exported: the checkpoint helpers used to live here.
from .checkpoint import load_checkpoint as load_checkpoint
from .checkpoint import save_checkpoint as save_checkpoint
from .history import History
from .schedules import cyclical as cyclical
from .schedules import linear_warmup as linear_warmup
from .utils import _check_positive, get_device, model_device, progress_bar

LRSchedulerLike = torch.optim.lr_scheduler.LRScheduler

__all__ = [
    "History",
    "TrainingDiverged",
    "BadBatchError",
    "fit",
    "evaluate",
    "training_step_flops",
    "linear_warmup",
    "cyclical",
]

Callback = Callable[[int, "History", nn.Module], Any]

# Diagnostics preferred for the progress bar, in this order (else the first one).
_SHOWN = ("elbo", "log_likelihood")
# Seconds between two refreshes of the progress-bar postfix.
_POSTFIX_EVERY_S = 0.5


# ---------------------------------------------------------------------------- exceptions
class _StoppedRun:
    """What a run that :func:`fit` had to stop leaves behind, for the exception to carry."""

    history: History
    step: int
    epoch: int
    batch: int

    def _attach(self, history: History, step: int, epoch: int, batch: int) -> None:
        self.history, self.step, self.epoch, self.batch = history, step, epoch, batch


class TrainingDiverged(_StoppedRun, FloatingPointError):
    """A diagnostic or the gradient became NaN or infinite during :func:`fit`.

    ``fit`` raises it *before* the optimizer step, so the model keeps the finite
    parameters of the last good step.

    Attributes
    ----------
    history : History
        The run so far; its last epoch covers the batches of the interrupted epoch
        that were trained on (``history.steps`` counts the optimizer steps taken).
    step : int
        The global index (from 0) of the step that failed; that many steps were taken.
    epoch, batch : int
        The epoch (from 1) and the batch within it (from 0) that failed.
    """


class BadBatchError(_StoppedRun, ValueError):
    """A training batch was rejected (NaN or inf values, a target out of range, a wrong
    shape) during :func:`fit`; the message names the step, the epoch and the batch.

    Attributes are those of :class:`TrainingDiverged`.
    """


# ------------------------------------------------------------------------ small helpers
def _resolve_device(device: str | torch.device | None) -> torch.device:
    """The package's one device policy: ``device`` if given, else :func:`get_device`
    (``AUTOENCODERS_DEVICE``, else CUDA when available, else the CPU)."""
    dev = get_device(device)
    if dev.type == "cuda" and dev.index is None:
        # Tensors report "cuda:0"; compare like with like so batches are not re-copied.
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    return t if t.device == device else t.to(device, non_blocking=True)


def _split_batch(batch: Any, paired: bool, device: torch.device) -> tuple[Any, int]:
    """Return the model input of a batch and the number of examples in it."""
    if isinstance(batch, torch.Tensor):
        parts: Sequence[Any] = (batch,)
    elif isinstance(batch, tuple | list) and batch:
        parts = batch
    else:
        raise TypeError(
            f"a batch must be a tensor or a non-empty tuple/list of tensors, got {type(batch).__name__}"
        )
    needed = 2 if paired else 1
    if len(parts) < needed or not all(isinstance(p, torch.Tensor) for p in parts[:needed]):
        what = "(x1, x2, ...) with two tensors" if paired else "a tensor or (x, ...)"
        raise TypeError(f"a batch for {'a paired' if paired else 'this'} model must be {what}, got {_describe(batch)}")
    if paired:
        x1, x2 = _to(parts[0], device), _to(parts[1], device)
        return (x1, x2), x1.shape[0]
    x = _to(parts[0], device)
    return x, x.shape[0]


def _describe(batch: Any) -> str:
    if isinstance(batch, torch.Tensor):
        return f"a tensor of shape {list(batch.shape)}"
    if isinstance(batch, tuple | list):
        return f"a {type(batch).__name__} of {[type(p).__name__ for p in batch]}"
    return type(batch).__name__


def _parameters(fn: Callable) -> tuple[set[str], bool]:
    """Named keyword parameters of ``fn`` and whether it takes ``**kwargs``."""
    params = inspect.signature(fn).parameters.values()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _split_loss_kwargs(model: nn.Module, loss_kwargs: Mapping[str, Any] | None) -> tuple[dict, dict]:
    """Split ``loss_kwargs`` into (forward kwargs, compute_loss kwargs), validating names."""
    if loss_kwargs is None:
        loss_kwargs = {}
    if not isinstance(loss_kwargs, Mapping):
        raise TypeError(f"loss_kwargs must be a dict or None, got {type(loss_kwargs).__name__}")
    fwd = {}
    lk = dict(loss_kwargs)
    if "S" in lk:
        names, var = _parameters(model.forward)
        if "S" not in names and not var:
            raise ValueError(
                f"loss_kwargs has 'S' (latent samples), but {type(model).__name__}.forward "
                "takes no S argument"
            )
        fwd["S"] = lk.pop("S")
    names, var = _parameters(model.compute_loss)
    if "sample" in lk and "sample" not in names:
        fwd_names, fwd_var = _parameters(model.forward)
        if "sample" in fwd_names or fwd_var:
            fwd["sample"] = lk.pop("sample")  # z = mu in training: a deterministic VAE
    names -= {"x", "output"}
    unknown = sorted(set(lk) - names)
    if unknown and not var:
        raise ValueError(
            f"unknown loss_kwargs {unknown} for {type(model).__name__}.compute_loss; "
            f"valid names: {sorted(names | ({'S'} if 'S' in fwd else set()))}"
        )
    return fwd, lk


def _default_adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with torch's fused kernel where the build supports the parameters' device.

    The fused kernel applies the same update in one pass per parameter tensor instead of
    about ten elementwise operations; on a CPU that takes most of Adam's time off every
    step (benchmarks/vae_speed.py, book/performance.md). Elsewhere: plain Adam.
    """
    params = list(model.parameters())
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device/build
        return torch.optim.Adam(params, lr=lr)


def _bind_scheduler(scheduler: Any, optimizer: torch.optim.Optimizer) -> Any:
    """The scheduler to step: ``scheduler`` itself, or ``scheduler(optimizer)`` for a factory."""
    if scheduler is None:
        return None
    if not _is_scheduler(scheduler):
        made = scheduler(optimizer)
        if not _is_scheduler(made):
            raise TypeError(
                f"the scheduler factory must return a torch.optim.lr_scheduler scheduler, got {made!r}"
            )
        scheduler = made
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise TypeError(
            "ReduceLROnPlateau needs a metric in step(metric); fit steps schedulers without "
            "arguments, so step it from a callback: callbacks=[lambda e, h, m: sched.step(-h.last('elbo'))]"
        )
    if scheduler.optimizer is not optimizer:
        raise ValueError(
            "scheduler is bound to a different optimizer than the one fit trains with; pass that "
            "optimizer as optimizer=..., or pass a factory scheduler=lambda opt: ... instead"
        )
    return scheduler


def _is_scheduler(obj: Any) -> bool:
    return isinstance(obj, (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau))


def _set_modes(model: nn.Module, flags: Mapping[nn.Module, bool]) -> None:
    for module, flag in flags.items():
        module.training = flag


# ------------------------------------------------------------------------------ evaluate
def evaluate(
    model: nn.Module,
    data: torch.Tensor | Iterable[Any],
    *,
    sample: bool = True,
    S: int = 1,
    device: str | torch.device | None = None,
    batch_size: int = 1024,
    **loss_kwargs: Any,
) -> dict[str, float]:
    r"""Dataset means of a model's diagnostics, without gradients, in eval mode.

    Every diagnostic of ``compute_loss`` is averaged over the examples (batches are
    weighted by their size). The model runs in eval mode (dropout off, batch-norm
    running statistics used); the ``training`` flag of every submodule is restored
    afterwards.

    .. warning::

       **An "ELBO" is an ELBO only when z is sampled.** With ``sample=True`` (the
       default) a VAE draws :math:`z \sim q(z \mid x)` even in eval mode, and
       ``'elbo'`` is an unbiased Monte Carlo estimate of

       .. math::

           \mathrm{ELBO}(x) = \mathbb E_{q(z\mid x)}[\log p(x\mid z)]
                              - \mathrm{KL}(q(z\mid x)\,\|\,p(z)) \le \log p(x).

       With ``sample=False`` the decoder sees :math:`z = \mu(x)`, and the number
       :math:`\log p(x \mid \mu(x)) - \mathrm{KL}` is **not** an ELBO and not a
       bound on :math:`\log p(x)`: reconstructing from the posterior mean is usually
       better than the average over samples, so it overestimates the ELBO. It is
       therefore returned as ``'elbo_at_mean'`` instead of ``'elbo'`` (for Ada-GVAE
       likewise). ``log_likelihood`` is then the reconstruction at the mean.

    Parameters
    ----------
    model : BaseAutoencoder
        An AE, VAE, Ada-GVAE or any model with ``forward`` and ``compute_loss``.
    data : torch.Tensor or iterable of batches
        A single tensor ``[N, ...]`` (split into batches of ``batch_size``), or an
        iterable of batches as in :func:`fit`: a tensor or a tuple/list whose first
        element is ``x`` (the first two are ``(x1, x2)`` for a paired model, so a
        paired model needs an iterable).
    sample : bool, default True
        Only for models whose ``forward`` has a ``sample`` argument (VAE, Ada-GVAE):
        draw z from the posterior (``True``) or use its mean (``False``). Ignored by
        the deterministic AE.
    S : int, default 1
        Latent samples per input, for models whose ``forward`` takes ``S``.
    device : str or torch.device, optional
        Where to run. Default: :func:`~autoencoders.utils.get_device`
        (``AUTOENCODERS_DEVICE``, else CUDA when available). The model is moved there
        for the evaluation and back to where it was afterwards.
    batch_size : int, default 1024
        Batch size used when ``data`` is a tensor.
    **loss_kwargs
        Passed to ``compute_loss`` (``likelihood``, ``beta``, ...).

    Returns
    -------
    dict of str to float
        Dataset means, in the order of the model's diagnostics.

    Raises
    ------
    ValueError
        On an unknown loss keyword, ``S != 1`` for a model without ``S``, a bad
        ``batch_size`` or empty ``data``.
    TypeError
        If ``data`` is a tensor for a paired model, or a batch has the wrong form.
    """
    if not isinstance(sample, bool):
        raise TypeError(f"sample must be a bool, got {sample!r}")
    batch_size = _check_positive(batch_size, "batch_size", integer=True)
    dev = _resolve_device(device)
    home = model_device(model)
    model.to(dev)
    try:
        return _evaluate_on(model, data, dev, sample=sample, S=S, batch_size=batch_size, loss_kwargs=loss_kwargs)
    finally:
        if home is not None and home != dev:
            model.to(home)


def _evaluate_on(
    model: nn.Module, data: Any, dev: torch.device, *, sample: bool, S: int, batch_size: int,
    loss_kwargs: Mapping[str, Any],
) -> dict[str, float]:
    """:func:`evaluate` once the model is on ``dev``."""
    paired = bool(getattr(model, "paired", False))
    fwd_names, fwd_var = _parameters(model.forward)
    takes_sample = "sample" in fwd_names or fwd_var
    fwd, lk = _split_loss_kwargs(model, loss_kwargs)
    if "S" in fwd_names or fwd_var:
        fwd["S"] = S
    elif S != 1:
        raise ValueError(f"S must be 1 for {type(model).__name__}, whose forward takes no S; got {S!r}")
    if takes_sample:
        fwd["sample"] = sample

    if isinstance(data, torch.Tensor):
        if paired:
            raise TypeError(
                f"{type(model).__name__} is a paired model: pass an iterable of (x1, x2, ...) "
                "batches, not a single tensor"
            )
        data = [data[i : i + batch_size] for i in range(0, data.shape[0], batch_size)]

    sums: dict[str, float] = {}
    total = 0
    flags = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            for batch in data:
                x, n = _split_batch(batch, paired, dev)
                result = model.compute_loss(x, model(x, **fwd), **lk)
                for name, value in result.diagnostics.items():
                    sums[name] = sums.get(name, 0.0) + float(value) * n
                total += n
    finally:
        _set_modes(model, flags)
    if total == 0:
        raise ValueError("data yielded no examples to evaluate")
    means = {name: value / total for name, value in sums.items()}
    if takes_sample and not sample and "elbo" in means:
        means = {("elbo_at_mean" if k == "elbo" else k): v for k, v in means.items()}
    return means


# ----------------------------------------------------------------------------------- fit
def fit(
    model: nn.Module,
    train: Iterable[Any],
    *,
    epochs: int | None,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    loss_kwargs: Mapping[str, Any] | None = None,
    beta_schedule: Callable[[int], float] | None = None,
    eval_data: torch.Tensor | Iterable[Any] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
    grad_clip: float | None = None,
    scheduler: LRSchedulerLike | Callable[[torch.optim.Optimizer], LRSchedulerLike] | None = None,
    scheduler_interval: str = "epoch",
    max_steps: int | None = None,
    max_seconds: float | None = None,
) -> History:
    r"""Train a model with its own ``compute_loss`` and return the :class:`~autoencoders.history.History`.

    Each step runs the package's rhythm::

        out = model(x, S=S)                       # S only when given in loss_kwargs
        res = model.compute_loss(x, out, **loss_kwargs)
        # stop here if a diagnostic is NaN or inf
        optimizer.zero_grad(set_to_none=True)
        res.objective.backward()
        # stop here if the objective or the gradient norm is NaN or inf
        # (the norm is clipped to grad_clip if given)
        optimizer.step()

    The running numbers (progress bar, :class:`~autoencoders.history.History`) come from
    ``res.diagnostics``, which ``compute_loss`` has already converted to Python floats
    (the models' one synchronisation per step, which also validates the batch). ``fit``
    adds one more: reading the objective and the global gradient norm before the
    step, so that a non-finite objective or gradient never reaches the parameters.

    **Lazy layers.** If the model still has unbuilt lazy modules, ``fit`` calls
    ``model.build(x)`` with the first training batch before creating the optimizer,
    and records the input shape in ``model._build_input_shape`` so that
    :func:`~autoencoders.checkpoint.save_checkpoint` can store it.

    Parameters
    ----------
    model : BaseAutoencoder
        AE, VAE, Ada-GVAE, or any module with ``forward`` and ``compute_loss``.
        Trained in place.
    train : iterable of batches
        Re-iterable (each epoch calls ``iter(train)``): a
        :class:`~autoencoders.data.TensorLoader`, a ``DataLoader``, a list, ... A batch
        is a tensor or a tuple/list of tensors. Single-input models use ``x =
        batch[0]`` (labels and other extras are ignored); paired models
        (``model.paired``, e.g. Ada-GVAE) use ``x = (batch[0], batch[1])``. Batches
        are moved to ``device`` unless they are there already.
    epochs : int or None
        Number of passes over ``train`` (``>= 1``). ``None`` trains until ``max_steps``
        or ``max_seconds`` runs out (one of them is then required).
    optimizer : torch.optim.Optimizer, optional
        Default ``torch.optim.Adam(model.parameters(), lr=lr, fused=True)``, created
        after the build; torch's fused kernel gives the same update faster, and where
        the torch build or device has none, plain ``Adam`` is used. An optimizer made
        before the build also works with torch's optimizers: the build materialises the
        same parameter objects in place.
    lr : float, default 1e-3
        Learning rate of the default optimizer (ignored when ``optimizer`` is given).
    loss_kwargs : dict, optional
        Keyword arguments of ``compute_loss`` (``beta``, ``likelihood``,
        ``free_bits``); ``'S'`` goes to ``forward`` instead. Unknown names raise.
    beta_schedule : callable, optional
        ``step -> beta``, called with the global step (``0, 1, ...``, restarting at
        every call of ``fit``); overrides ``loss_kwargs['beta']``. See
        :func:`~autoencoders.schedules.linear_warmup` and
        :func:`~autoencoders.schedules.cyclical`.
    eval_data : torch.Tensor or iterable of batches, optional
        Evaluated with :func:`evaluate` (``sample=True``, the same ``loss_kwargs``)
        after every epoch and stored in ``history.eval`` under the same names as the
        training diagnostics (``history.eval["elbo"]``).
    device : str or torch.device, optional
        Default: :func:`~autoencoders.utils.get_device` (``AUTOENCODERS_DEVICE``,
        else CUDA when available). The model is moved there and stays there.
    progress : bool, default True
        Show a ``tqdm.auto`` bar with the epoch and the running mean of the ELBO (or
        log-likelihood) of the current epoch; ``False`` prints nothing.
    callbacks : sequence of callables, default ()
        Each is called as ``cb(epoch, history, model)`` after every epoch, where
        ``epoch`` is the number of completed epochs (1 after the first). If any
        returns a true value, training stops after that epoch.
    grad_clip : float, optional
        Clip the global gradient norm to this value before each step.
    scheduler : LRScheduler or callable, optional
        A learning-rate schedule from ``torch.optim.lr_scheduler``, stepped without
        arguments. Either a scheduler already bound to ``optimizer``, or a factory
        ``optimizer -> scheduler`` that ``fit`` calls on the optimizer it trains with
        (the only way to schedule the default optimizer), e.g.
        ``scheduler=lambda opt: ExponentialLR(opt, gamma=0.9)``. With a scheduler,
        ``history.train['lr']`` holds the mean learning rate of each epoch (first
        parameter group). ``ReduceLROnPlateau`` needs a metric: step it from a
        callback instead.
    scheduler_interval : {'epoch', 'step'}, default 'epoch'
        Step the scheduler after every epoch (after the callbacks) or after every
        optimizer step.
    max_steps : int, optional
        Budget of optimizer steps: training stops before step ``max_steps + 1``, even
        in the middle of an epoch.
    max_seconds : float, optional
        Budget of training wall-clock time (the sum of :attr:`History.epoch_time`;
        evaluation and callbacks do not count). Checked before every step but the
        first (so at least one step is taken), and the run stops at the first step
        that would start after the budget is spent; compare models
        "at equal wall time" with it. An epoch cut short by either budget is recorded
        like any other (its means cover the batches it saw), and ``eval_data`` and the
        callbacks still run after it.

    Returns
    -------
    History

    Raises
    ------
    ValueError
        On ``epochs < 1``, ``epochs=None`` without a budget, unknown ``loss_kwargs``, a ``beta_schedule`` for a model
        without ``beta``, an empty ``train``, a ``scheduler_interval`` other than
        ``'epoch'``/``'step'``, or a scheduler bound to another optimizer.
    TypeError
        On a one-shot iterator with ``epochs`` other than 1, a badly formed batch, or a
        ``scheduler`` that is neither a scheduler nor a factory returning one.
    TrainingDiverged
        A :class:`FloatingPointError`: a diagnostic or the gradient norm became NaN or
        infinite. It is raised before that step's optimizer update, so the parameters
        stay finite; ``err.history`` holds the run so far and the message names the
        step, epoch and batch.
    BadBatchError
        A :class:`ValueError`: a batch was rejected (NaN or inf values, targets
        outside :math:`[0, 1]` for a Bernoulli likelihood, ...); the message names the
        step, epoch and batch, and ``err.history`` holds the run so far.
    """
    callbacks = tuple(callbacks)
    _check_fit_arguments(
        epochs=epochs, optimizer=optimizer, lr=lr, beta_schedule=beta_schedule, grad_clip=grad_clip,
        scheduler=scheduler, scheduler_interval=scheduler_interval, max_steps=max_steps,
        max_seconds=max_seconds, callbacks=callbacks, train=train,
    )
    run = _Run.start(
        model, train, optimizer=optimizer, lr=lr, loss_kwargs=loss_kwargs, beta_schedule=beta_schedule,
        device=device, grad_clip=grad_clip, scheduler=scheduler, scheduler_interval=scheduler_interval,
        epochs=epochs, max_steps=max_steps, max_seconds=max_seconds, progress=progress,
    )
    try:
        for epoch in itertools.count(1) if epochs is None else range(1, epochs + 1):
            sums, seen, elapsed, out_of_budget = run.train_epoch(epoch)
            if seen == 0 and out_of_budget:
                break  # the budget ran out exactly at the end of the previous epoch
            if seen == 0:
                raise ValueError(f"train yielded no batches in epoch {epoch}")
            stop = run.end_epoch(epoch, sums, seen, elapsed, eval_data, callbacks)
            if stop or out_of_budget:
                break
    finally:
        if run.bar is not None:
            run.bar.close()
    return run.history


def _check_fit_arguments(
    *,
    epochs: Any,
    optimizer: Any,
    lr: Any,
    beta_schedule: Any,
    grad_clip: Any,
    scheduler: Any,
    scheduler_interval: Any,
    max_steps: Any,
    max_seconds: Any,
    callbacks: Any,
    train: Any,
) -> None:
    """Validate :func:`fit`'s arguments before anything runs; each message names one."""
    if max_steps is not None:
        _check_positive(max_steps, "max_steps", integer=True)
    if max_seconds is not None:
        _check_positive(max_seconds, "max_seconds")
    if epochs is None:
        if max_steps is None and max_seconds is None:
            raise ValueError("epochs=None trains until a budget runs out: give max_steps or max_seconds")
    else:
        _check_positive(epochs, "epochs", integer=True)
    if grad_clip is not None:
        _check_positive(grad_clip, "grad_clip")
    if optimizer is None:
        _check_positive(lr, "lr")
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    if beta_schedule is not None and not callable(beta_schedule):
        raise TypeError(f"beta_schedule must be a callable step -> beta, got {beta_schedule!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    if scheduler is not None and not callable(scheduler) and not hasattr(scheduler, "step"):
        raise TypeError(f"scheduler must be an LRScheduler or a callable optimizer -> scheduler, got {scheduler!r}")
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"every callback must be callable cb(epoch, history, model), got {cb!r}")
    if epochs != 1 and isinstance(train, Iterator):
        raise TypeError(
            "train is a one-shot iterator, which would be empty after the first epoch; "
            "pass a re-iterable such as a list, DataLoader or TensorLoader"
        )


@dataclass
class _Run:
    """The state of one :func:`fit` run: set up by :meth:`start`, advanced one epoch at
    a time by :meth:`train_epoch` and :meth:`end_epoch`."""

    model: nn.Module
    train: Iterable[Any]
    first: Any
    batches: Iterator[Any]
    dev: torch.device
    paired: bool
    fwd: dict[str, Any]
    lk: dict[str, Any]
    optimizer: torch.optim.Optimizer
    params: list[torch.Tensor]
    scheduler: Any
    step_each_batch: bool
    beta_schedule: Callable[[int], float] | None
    grad_clip: float | None
    epochs: int | None
    max_steps: int | None
    max_seconds: float | None
    bar: Any
    net: nn.Module  # the model, or its DistributedDataParallel wrapper under torchrun
    history: History = field(default_factory=History)
    step: int = 0
    trained_s: float = 0.0  # training seconds of the completed epochs, for max_seconds

    @classmethod
    def start(
        cls, model: nn.Module, train: Iterable[Any], *, optimizer: Any, lr: float, loss_kwargs: Any,
        beta_schedule: Any, device: Any, grad_clip: Any, scheduler: Any, scheduler_interval: str,
        epochs: Any, max_steps: Any, max_seconds: Any, progress: bool,
    ) -> _Run:
        """Resolve the device, build lazy layers with the first batch, and create the
        optimizer, the scheduler and the progress bar."""
        fwd, lk = _split_loss_kwargs(model, loss_kwargs)
        if beta_schedule is not None:
            names, var = _parameters(model.compute_loss)
            if "beta" not in names and not var:
                raise ValueError(f"beta_schedule was given, but {type(model).__name__}.compute_loss takes no beta")
        dev = _resolve_device(device)
        model.to(dev)
        paired = bool(getattr(model, "paired", False))
        # Peek at the first batch: it builds lazy layers before the optimizer sees them,
        # and it is then trained on as usual, so no extra pass over the loader is made.
        batches = iter(train)
        try:
            first = next(batches)
        except StopIteration:
            raise ValueError("train yielded no batches") from None
        _build_with(model, _split_batch(first, paired, dev)[0], paired)
        _check_placement(model, _split_batch(first, paired, dev)[0], dev)
        net = _wrap_distributed(model, dev, max_seconds)
        progress = progress and distributed.is_main_process()
        if optimizer is None:
            optimizer = _default_adam(model, _check_positive(lr, "lr"))
        params = [p for group in optimizer.param_groups for p in group["params"]]
        _check_optimizer_params(model, params, lk)
        scheduler = _bind_scheduler(scheduler, optimizer)
        return cls(
            model=model, train=train, first=first, batches=batches, dev=dev, paired=paired, fwd=fwd,
            lk=lk, optimizer=optimizer, params=params, scheduler=scheduler,
            step_each_batch=scheduler is not None and scheduler_interval == "step",
            beta_schedule=beta_schedule,
            grad_clip=None if grad_clip is None else _check_positive(grad_clip, "grad_clip"),
            epochs=None if epochs is None else int(epochs),
            max_steps=None if max_steps is None else int(max_steps),
            max_seconds=None if max_seconds is None else float(max_seconds),
            bar=_progress_bar(train, epochs, max_steps) if progress else None,
            net=net,
            history=History(device=str(dev)),
        )

    def _out_of_time(self, start: float) -> bool:
        return (
            self.max_seconds is not None
            and self.step > 0
            and self.trained_s + time.perf_counter() - start >= self.max_seconds
        )

    def train_epoch(self, epoch: int) -> tuple[dict[str, float], int, float, bool]:
        """One pass over ``train`` (or up to a budget):
        ``(sums, examples, seconds, out_of_budget)``."""
        batches = itertools.chain([self.first], self.batches) if epoch == 1 else iter(self.train)
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch}/{self.epochs or '?'}", refresh=False)
        sums: dict[str, float] = {}
        seen = 0
        self.model.train()
        start = shown_at = time.perf_counter()
        for index, batch in enumerate(batches):
            if self._out_of_time(start):
                return sums, seen, self._seconds_since(start), True
            try:
                n, diag = self._step(batch)
            except RuntimeError as err:
                raise _distributed_context(err) from err
            except (ValueError, FloatingPointError) as err:
                if seen:
                    _record_epoch(self.history, sums, seen, time.perf_counter() - start, self.step)
                raise _stopped(err, self.history, self.step, epoch, index) from err
            self._accumulate(sums, diag, n)
            seen += n
            shown_at = self._show(sums, seen, shown_at)
            if self.max_steps is not None and self.step >= self.max_steps:
                return sums, seen, self._seconds_since(start), True
        return sums, seen, self._seconds_since(start), False

    def _step(self, batch: Any) -> tuple[int, Mapping[str, float]]:
        """forward, compute_loss, guarded backward, optimizer step."""
        x, n = _split_batch(batch, self.paired, self.dev)
        if self.beta_schedule is not None:
            self.lk["beta"] = self.beta_schedule(self.step)
        res = self.model.compute_loss(x, self.net(x, **self.fwd), **self.lk)
        _check_finite_step(res.diagnostics, x, self.params, self.grad_clip, self.optimizer, res)
        self.optimizer.step()
        self.step += 1
        return n, res.diagnostics

    def _accumulate(self, sums: dict[str, float], diag: Mapping[str, float], n: int) -> None:
        for name, value in diag.items():
            sums[name] = sums.get(name, 0.0) + float(value) * n
        if self.beta_schedule is not None:
            sums["beta"] = sums.get("beta", 0.0) + float(self.lk["beta"]) * n
        if self.scheduler is not None:
            sums["lr"] = sums.get("lr", 0.0) + float(self.optimizer.param_groups[0]["lr"]) * n
            if self.step_each_batch:
                self.scheduler.step()

    def _show(self, sums: Mapping[str, float], seen: int, shown_at: float) -> float:
        """Advance the progress bar; refresh its running mean every half second."""
        if self.bar is None:
            return shown_at
        self.bar.update(1)
        now = time.perf_counter()
        if now - shown_at >= _POSTFIX_EVERY_S and sums:
            key = _shown_key(sums)
            self.bar.set_postfix_str(f"{key}={sums[key] / seen:.4g}", refresh=False)
            return now
        return shown_at

    def _seconds_since(self, start: float) -> float:
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)  # once per epoch, so epoch_time is honest
        return time.perf_counter() - start

    def end_epoch(
        self,
        epoch: int,
        sums: Mapping[str, float],
        seen: int,
        elapsed: float,
        eval_data: Any,
        callbacks: Sequence[Callback],
    ) -> bool:
        """Record the epoch, evaluate, run the callbacks and the scheduler; ``True`` to stop."""
        self.trained_s += elapsed
        sums, seen = distributed.all_reduce_sums(sums, seen)  # means over every rank
        _record_epoch(self.history, sums, seen, elapsed, self.step)
        key = _shown_key(sums) if sums else None
        postfix = f"{key}={sums[key] / seen:.4g}" if key else ""
        if eval_data is not None:
            results = evaluate(self.model, eval_data, device=self.dev, **_eval_kwargs(self.fwd, self.lk))
            for name, value in results.items():
                self.history.eval.setdefault(name, []).append(value)
            if key in results:
                postfix += f", eval_{key}={results[key]:.4g}"
        if self.bar is not None:
            self.bar.set_postfix_str(postfix, refresh=True)
        stop = [bool(cb(epoch, self.history, self.model)) for cb in callbacks]
        if self.scheduler is not None and not self.step_each_batch:
            self.scheduler.step()
        return any(stop)


def _wrap_distributed(model: nn.Module, dev: torch.device, max_seconds: Any) -> nn.Module:
    """The model wrapped in DistributedDataParallel inside a process group, else itself.

    DDP broadcasts rank 0's parameters and buffers to every rank when it is created,
    and averages the gradients across ranks during every backward pass."""
    if not distributed.is_distributed():
        return model
    if max_seconds is not None:
        raise ValueError(
            "max_seconds is not supported under torch.distributed: ranks would stop at "
            f"different steps and wait for each other forever; got max_seconds={max_seconds!r}, "
            "use max_steps"
        )
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)


def _distributed_context(err: RuntimeError) -> RuntimeError:
    """Say which rank waited in vain when a collective operation fails."""
    if not distributed.is_distributed():
        return err
    return RuntimeError(
        f"rank {distributed.rank()} of {distributed.world_size()}: {err}\n(under "
        "torch.distributed this usually means another rank stopped, for example on an "
        "exception or a bad batch, while this one waited for it in a gradient "
        "all-reduce; see the other rank's traceback)"
    )


REQUIRE_DEVICE_ENV = "AUTOENCODERS_REQUIRE_DEVICE"


def _check_placement(model: nn.Module, x: Any, dev: torch.device) -> None:
    """Every parameter, buffer and tensor of the first batch is on ``dev``; and when
    ``$AUTOENCODERS_REQUIRE_DEVICE`` names a device type (the test suite sets it to
    ``cuda`` under ``AUTOENCODERS_DEVICE=cuda``), ``dev`` is of that type, so that no
    chapter can train on the CPU by accident when a GPU run was asked for."""
    required = os.environ.get(REQUIRE_DEVICE_ENV, "").strip()
    if required and dev.type != torch.device(required).type:
        raise RuntimeError(
            f"fit is training on {dev}, but ${REQUIRE_DEVICE_ENV}={required!r} requires "
            f"{torch.device(required).type}; pass device= or unset the variable"
        )
    tensors = list(x) if isinstance(x, tuple | list) else [x]
    named = [(f"parameter {n}", p) for n, p in model.named_parameters()]
    named += [(f"buffer {n}", b) for n, b in model.named_buffers()]
    named += [(f"batch tensor {i}", t) for i, t in enumerate(tensors) if isinstance(t, torch.Tensor)]
    # 'cuda' matches 'cuda:0'; a CPU tensor reports 'cpu' whatever index was asked for
    wrong = [(name, t.device) for name, t in named if t.device.type != dev.type or (
        None not in (t.device.index, dev.index) and t.device.index != dev.index)]
    if wrong:
        listed = ", ".join(f"{name} on {d}" for name, d in wrong[:3])
        raise RuntimeError(f"fit trains on {dev}, but {len(wrong)} tensor(s) are elsewhere: {listed}")


def _build_with(model: nn.Module, x: Any, paired: bool) -> None:
    """Build lazy layers with ``x`` and record its shape for checkpoints."""
    sample = x[0] if paired else x
    unbuilt = getattr(model, "unbuilt_modules", lambda: [])()
    if unbuilt:
        model.build(x)
    if unbuilt or getattr(model, "_build_input_shape", None) is None:
        model._build_input_shape = (1, *sample.shape[1:])
        model._build_input_dtype = str(sample.dtype).removeprefix("torch.")


def _progress_bar(train: Any, epochs: int | None, max_steps: int | None) -> Any:
    try:
        per_epoch = len(train)  # type: ignore[arg-type]
    except TypeError:
        per_epoch = None
    total = None if per_epoch is None or epochs is None else epochs * per_epoch
    if max_steps is not None:
        total = max_steps if total is None else min(total, max_steps)
    return progress_bar(total=total, unit="step", dynamic_ncols=True)


def _check_optimizer_params(
    model: nn.Module, params: Sequence[torch.Tensor], loss_kwargs: Mapping[str, Any]
) -> None:
    """Refuse an optimizer that would step tensors other than the model's parameters.

    Parameters of a module passed in ``loss_kwargs`` (a learnable likelihood, say) are
    part of the objective too, so they are allowed.
    """
    modules = [model, *(v for v in loss_kwargs.values() if isinstance(v, nn.Module))]
    own = {id(p) for m in modules for p in m.parameters()}
    foreign = sum(id(p) not in own for p in params)
    if foreign:
        raise ValueError(
            f"optimizer holds {foreign} of {len(params)} parameter tensors that are not "
            f"parameters of this {type(model).__name__} or of a module in loss_kwargs (was it "
            "built for another model?), so its steps would not train this model; create it "
            "from model.parameters()"
        )


def _check_finite_step(
    diag: Mapping[str, float],
    x: Any,
    params: Sequence[torch.Tensor],
    grad_clip: float | None,
    optimizer: torch.optim.Optimizer,
    res: Any,
) -> None:
    """Back-propagate ``res.objective`` unless a diagnostic is non-finite, then check the
    objective and the gradient norm (clipping it to ``grad_clip`` when given) in one
    host read. Raises before any step, so a failure leaves the parameters as they were."""
    bad = {name: float(v) for name, v in diag.items() if not math.isfinite(float(v))}
    if bad:
        views = x if isinstance(x, tuple) else (x,)
        if not all(bool(torch.isfinite(v).all()) for v in views):
            raise ValueError("the batch contains NaN or inf values")
        raise FloatingPointError(
            f"diagnostics {bad} are not finite (all: {dict(diag)})"
        )
    optimizer.zero_grad(set_to_none=True)
    objective = res.objective
    objective.backward()
    grads = [p.grad for p in params if p.grad is not None]
    if grad_clip is not None and grads:
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    elif grads:
        norm = torch.nn.utils.get_total_norm(grads)
    else:
        norm = torch.zeros((), device=objective.device)
    # one read for both: the objective can be infinite while the diagnostics are not
    # (a huge free_bits, a custom term), and then the gradient may still be finite
    value, norm_value = torch.stack([objective.detach().double(), norm.double()]).tolist()
    if not math.isfinite(value):
        raise FloatingPointError(f"the objective is {value} (diagnostics: {dict(diag)})")
    if not math.isfinite(norm_value):
        raise FloatingPointError(f"the gradient norm is {norm_value} (the objective was finite)")


def _stopped(err: Exception, history: History, step: int, epoch: int, batch: int) -> Exception:
    """Re-raise ``err`` as :class:`TrainingDiverged` or :class:`BadBatchError`, saying where."""
    where = f"step {step} (epoch {epoch}, batch {batch})"
    if isinstance(err, FloatingPointError):
        new: _StoppedRun = TrainingDiverged(
            f"{err} at {where}; the optimizer step was not taken, so the parameters are "
            "those of the last good step. Try a lower lr, grad_clip or a beta warm-up."
        )
    else:
        new = BadBatchError(f"{where}: {err}")
    new._attach(history, step, epoch, batch)
    return new


def _record_epoch(history: History, sums: Mapping[str, float], seen: int, elapsed: float, step: int) -> None:
    history.steps = step
    history.epoch_time.append(elapsed)
    for name, value in sums.items():
        history.train.setdefault(name, []).append(value / seen)


def training_step_flops(
    model: nn.Module, x: Any, loss_kwargs: Mapping[str, Any] | None = None
) -> int:
    r"""Floating-point operations of one training step on the batch ``x``.

    Runs ``forward``, ``compute_loss`` and ``backward`` once under
    :class:`torch.utils.flop_counter.FlopCounterMode`, which counts the matrix
    products and convolutions (two operations per multiply-add), then discards the
    gradients, restores the buffers (batch-norm statistics) and leaves the random
    generators as they were, so the call has no side effects; the parameters are not
    changed. The optimizer update is not counted
    (it is linear in the number of parameters and the same for every batch).

    Use it to compare two set-ups at **equal compute** rather than equal wall time:
    a count of operations is the same on every machine, so a budget derived from it
    (``max_steps = round(steps_a * flops_a / flops_b)``) gives the same run, and the
    same conclusion, on a laptop, in CI and on a GPU.

    Parameters
    ----------
    model : BaseAutoencoder
        A built model (train mode is used and restored).
    x : torch.Tensor or tuple of torch.Tensor
        One training batch, on the model's device.
    loss_kwargs : dict, optional
        As in :func:`fit` (``'S'`` goes to ``forward``).

    Returns
    -------
    int
        Total floating-point operations, forward and backward.
    """
    from torch.utils.flop_counter import FlopCounterMode

    fwd, lk = _split_loss_kwargs(model, loss_kwargs)
    flags = {module: module.training for module in model.modules()}
    grads = {p: p.grad for p in model.parameters()}
    buffers = [(b, b.detach().clone()) for b in model.buffers()]  # e.g. batch-norm statistics
    devices = [t.device for t in (x if isinstance(x, tuple | list) else (x,)) if t.is_cuda]
    model.train()
    # fork_rng: the sampled z must not advance the generators that training will use
    try:
        with torch.random.fork_rng(devices=devices), FlopCounterMode(display=False) as counter:
            model.compute_loss(x, model(x, **fwd), **lk).objective.backward()
    finally:
        _set_modes(model, flags)
        for p, g in grads.items():
            p.grad = g
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    return int(counter.get_total_flops())


def _eval_kwargs(fwd: Mapping[str, Any], lk: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for :func:`evaluate` that match a training step's settings."""
    return {**lk, **({"S": fwd["S"]} if "S" in fwd else {})}


def _shown_key(sums: Mapping[str, float]) -> str:
    for key in _SHOWN:
        if key in sums:
            return key
    return next(iter(sums))
