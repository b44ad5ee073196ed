"""Conformance checks for models built on :class:`~autoencoders._base.BaseAutoencoder`.

:func:`check_autoencoder` runs the contract that every model in this package honours
on a student's (or your own) model, and explains each failure with what to change::

    from autoencoders.testing import check_autoencoder
    check_autoencoder(MyVAE(...), x_batch, loss_kwargs={"likelihood": "bernoulli"})

In pytest it raises :class:`AssertionError`; in a notebook pass ``report=True`` to
print a checklist as well.
"""

from __future__ import annotations

import copy
import dataclasses
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from ._base import BaseAutoencoder, ModelOutput
from .loss import LossResult
from .utils import get_device

__all__ = ["check_autoencoder", "CheckReport", "CheckResult"]


@dataclass
class CheckResult:
    """Outcome of one check: its name, whether it passed, and the explanation."""

    name: str
    passed: bool | None  # None: not run because an earlier check failed
    message: str = ""


@dataclass
class CheckReport:
    """All check results; ``bool(report)`` is ``True`` when every check passed."""

    results: list[CheckResult] = field(default_factory=list)

    def __bool__(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        """The checks that failed."""
        return [r for r in self.results if r.passed is False]

    def checklist(self) -> str:
        """A printable checklist: ``[x]`` passed, ``[ ]`` failed, ``[-]`` not run.

        Explanations are wrapped at 80 columns, so the checklist fits a notebook page.
        """
        import textwrap

        lines = []
        for r in self.results:
            mark = {True: "[x]", False: "[ ]", None: "[-]"}[r.passed]
            lines.append(f"{mark} {r.name}")
            if r.message and not r.passed:
                lines.append(textwrap.fill(r.message, 80, initial_indent=" " * 6, subsequent_indent=" " * 6))
        return "\n".join(lines)


class _Failure(AssertionError):
    pass


def _type_name(obj: Any) -> str:
    if isinstance(obj, tuple | list):
        return f"{type(obj).__name__} of {len(obj)} ({', '.join(type(o).__name__ for o in obj)})"
    return type(obj).__name__


def _check_sample(sample: Any, paired: bool) -> None:
    """Validate ``sample`` before any check, so that a bad batch is not blamed on the model."""
    if paired:
        if not (
            isinstance(sample, tuple | list)
            and len(sample) == 2
            and all(isinstance(s, torch.Tensor) for s in sample)
        ):
            raise TypeError(
                "paired=True needs sample=(x1, x2), a pair of tensors of the same shape; "
                f"got sample of type {_type_name(sample)}"
            )
        if sample[0].shape != sample[1].shape:
            raise ValueError(
                "paired=True needs sample=(x1, x2) of the same shape; got sample shapes "
                f"{_shape(sample[0])} and {_shape(sample[1])}"
            )
        named = [("sample[0]", sample[0]), ("sample[1]", sample[1])]
    else:
        if not isinstance(sample, torch.Tensor):
            raise TypeError(
                f"sample must be a torch.Tensor batch [B, ...], got {_type_name(sample)}"
                + ("; for a pair model pass paired=True" if isinstance(sample, tuple | list) else "")
            )
        named = [("sample", sample)]
    for name, t in named:
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(
                f"{name} contains NaN or inf ({bad} of {t.numel()} values); check_autoencoder "
                "needs a finite input batch, otherwise every check would blame the model"
            )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise _Failure(message)


def _tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """All tensors inside a ModelOutput (nested outputs included), with dotted names."""
    if isinstance(obj, torch.Tensor):
        yield prefix or "value", obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _tensors(getattr(obj, f.name), f"{prefix}.{f.name}" if prefix else f.name)


def _views(output: Any) -> list[Any]:
    """The per-view outputs holding ``x_hat``: the output itself, or its nested outputs."""
    if hasattr(output, "x_hat"):
        return [output]
    return [getattr(output, f.name) for f in dataclasses.fields(output) if hasattr(getattr(output, f.name), "x_hat")]


def _to(sample: Any, device: torch.device) -> Any:
    if isinstance(sample, tuple | list):
        return type(sample)(s.to(device) for s in sample)
    return sample.to(device)


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def _check_x_hat(x: torch.Tensor, x_hat: torch.Tensor, where: str) -> None:
    ae_shape = list(x.shape)
    sampled = [x.shape[0], x_hat.shape[1] if x_hat.dim() > 1 else 1, *x.shape[1:]]
    _require(
        isinstance(x_hat, torch.Tensor) and (_shape(x_hat) == ae_shape or _shape(x_hat) == sampled),
        f"{where}: x_hat has shape {_shape(x_hat) if isinstance(x_hat, torch.Tensor) else type(x_hat).__name__}, "
        f"expected x.shape = {ae_shape} (deterministic models) or [B, S, *x.shape[1:]] = "
        f"{[x.shape[0], 'S', *x.shape[1:]]} (sampling models). Make the decoder end with a "
        "reshape to the input's shape, e.g. nn.Unflatten(1, x.shape[1:]).",
    )


def _first_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Drop a sample dimension S so a forward tensor compares with an encode/decode one."""
    return t[:, 0] if t.dim() == like.dim() + 1 else t


class _Checker:
    """The six checks of :func:`check_autoencoder`, each a method that raises
    ``_Failure`` with an explanation, sharing what earlier checks found in ``state``."""

    def __init__(self, model: Any, sample: Any, *, paired: bool, device: Any, loss_kwargs: dict[str, Any]) -> None:
        self.model, self.sample, self.paired = model, sample, paired
        self.device, self.loss_kwargs = device, loss_kwargs
        self.state: dict[str, Any] = {}

    def inputs(self) -> Any:
        return _to(self.sample, self.state["device"])

    def check_build(self) -> None:
        model, device, state = self.model, self.device, self.state
        inputs = self.inputs
        _require(
            isinstance(model, BaseAutoencoder),
            f"model must subclass autoencoders.BaseAutoencoder, got {type(model).__name__}; "
            "inherit from BaseAutoencoder (or AE/VAE) and implement _encode, _decode, forward, compute_loss",
        )
        model.to(device)
        state["device"] = device
        model.build(inputs())
        pending = model.unbuilt_modules()
        _require(not pending, f"build: lazy modules {pending} are still unmaterialised after build(); "
                 "build() must run a forward pass that reaches every layer")
        _require(any(p.requires_grad for p in model.parameters()), "build: the model has no trainable parameters")

    def check_forward(self) -> None:
        model, paired, state = self.model, self.paired, self.state
        inputs = self.inputs
        model.train()
        out = model(inputs())
        _require(isinstance(out, ModelOutput), f"forward: returned {type(out).__name__}, expected a "
                 "ModelOutput dataclass (subclass autoencoders.ModelOutput and decorate it with @dataclass)")
        views = _views(out)
        _require(bool(views), "forward: the output has no x_hat field (nor nested outputs with one)")
        xs = inputs() if paired else [inputs()]
        _require(len(views) == len(xs), f"forward: expected {len(xs)} output view(s) with x_hat, got {len(views)}")
        for i, (view, x) in enumerate(zip(views, xs)):
            _check_x_hat(x, view.x_hat, "forward" + (f" (view {i + 1})" if paired else ""))
        state["output"] = out

    def check_inference(self) -> None:
        model, paired = self.model, self.paired
        inputs = self.inputs
        model.eval()
        x = inputs()[0] if paired else inputs()
        enc = model.encode(x)
        _require(isinstance(enc, ModelOutput), f"encode: returned {type(enc).__name__}, expected a ModelOutput")
        for name, t in _tensors(enc):
            _require(not t.requires_grad, f"encode: returned tensor '{name}' requires grad; encode/decode "
                     "must run without gradient tracking. Implement _encode and let BaseAutoencoder.encode "
                     "wrap it in torch.no_grad() (do not override encode)")
        _require(hasattr(enc, "z"), "encode: the output has no field 'z'")
        dec = model.decode(enc.z)
        for name, t in _tensors(dec):
            _require(not t.requires_grad, f"decode: returned tensor '{name}' requires grad; implement _decode "
                     "and let BaseAutoencoder.decode wrap it in torch.no_grad() (do not override decode)")
        fwd = model((x, x) if paired else x)
        view = _views(fwd)[0]
        _require(hasattr(view, "z"), "forward: the output has no field 'z' to compare with encode")
        z_fwd = _first_sample(view.z.detach(), enc.z)
        _require(z_fwd.shape == enc.z.shape and torch.allclose(z_fwd, enc.z, rtol=1e-4, atol=1e-5),
                 "encode: in eval mode encode(x).z differs from forward(x).z; both must use the same "
                 "encoder path (forward should call self._encode)")
        x_fwd = _first_sample(view.x_hat.detach(), dec.x_hat)
        _require(x_fwd.shape == dec.x_hat.shape and torch.allclose(x_fwd, dec.x_hat, rtol=1e-4, atol=1e-5),
                 "decode: in eval mode decode(encode(x).z).x_hat differs from forward(x).x_hat; forward "
                 "should call self._decode on the code it returns")

    def check_loss(self) -> None:
        model, state, loss_kwargs = self.model, self.state, self.loss_kwargs
        inputs = self.inputs
        model.train()
        model.zero_grad(set_to_none=True)
        x = inputs()
        res = model.compute_loss(x, state["output"], **loss_kwargs)
        _require(isinstance(res, LossResult), f"compute_loss: returned {type(res).__name__}, expected "
                 "autoencoders.LossResult(objective, diagnostics)")
        obj = res.objective
        _require(isinstance(obj, torch.Tensor) and obj.dim() == 0,
                 f"compute_loss: objective must be a scalar tensor, got "
                 f"{_shape(obj) if isinstance(obj, torch.Tensor) else type(obj).__name__}; reduce over the batch with .mean()")
        _require(bool(torch.isfinite(obj.detach())), f"compute_loss: objective is not finite ({obj.item()}); "
                 "look for log(0), division by zero or exp overflow (use log-space, logaddexp, softplus)")
        _require(obj.requires_grad, "compute_loss: objective does not require grad, so it is detached from "
                 "the parameters; do not call .item(), .detach() or torch.tensor(...) on the loss")
        for key, value in res.diagnostics.items():
            _require(type(value) is float, f"compute_loss: diagnostics[{key!r}] is a {type(value).__name__}, "
                     "expected a Python float; convert with float(value.detach()) or "
                     "autoencoders.loss.float_diagnostics")
        obj.backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        _require(not missing, f"compute_loss: parameters {missing} received no gradient from the "
                 "objective; every trainable parameter must influence the loss (or set requires_grad=False)")
        model.zero_grad(set_to_none=True)

    def check_state_dict(self) -> None:
        model, state = self.model, self.state
        inputs = self.inputs
        model.eval()
        x = inputs()
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        clone = copy.deepcopy(model)
        with torch.no_grad():
            for p in clone.parameters():
                p.add_(torch.randn_like(p))
        buffer.seek(0)
        clone.load_state_dict(torch.load(buffer, map_location=state["device"], weights_only=True))
        clone.eval()
        a = [t for _, t in _tensors(model(x))]
        b = [t for _, t in _tensors(clone(x))]
        same = len(a) == len(b) and all(torch.equal(u.detach(), v.detach()) for u, v in zip(a, b))
        _require(same, "state_dict: a copy loaded from state_dict() gives different eval outputs; keep all "
                 "learnable state in nn.Parameters or registered buffers, and make eval mode deterministic")

    def check_device(self) -> None:
        model, state = self.model, self.state
        inputs = self.inputs
        dev = state["device"]
        wrong = [n for n, p in model.named_parameters() if p.device != dev]
        _require(not wrong, f"device: parameters {wrong} are not on {dev}; register submodules as attributes "
                 "so model.to(device) moves them")
        model.eval()
        off = [n for n, t in _tensors(model(inputs())) if t.device != dev]
        _require(not off, f"device: output tensors {off} are not on {dev}; create new tensors with "
                 "device=x.device (e.g. torch.randn_like) instead of the default CPU")


def check_autoencoder(
    model: BaseAutoencoder,
    sample: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    *,
    loss_kwargs: dict[str, Any] | None = None,
    paired: bool = False,
    report: bool = False,
    strict: bool = True,
    device: str | torch.device | None = None,
) -> CheckReport:
    """Run the package's model contract on ``model`` and explain every violation.

    The checks, in order:

    1. ``build`` works and leaves no lazy layer unmaterialised;
    2. ``forward`` returns a :class:`~autoencoders._base.ModelOutput` whose ``x_hat``
       has shape ``x.shape`` or ``[B, S, *x.shape[1:]]``;
    3. ``encode``/``decode`` return tensors that do not track gradients, and agree with
       ``forward`` in eval mode;
    4. ``compute_loss`` returns a :class:`~autoencoders.loss.LossResult` whose objective
       is a finite scalar that reaches every trainable parameter with a gradient, and
       whose diagnostics are Python floats;
    5. a ``state_dict`` round trip into a perturbed copy gives identical eval outputs;
    6. parameters, inputs and outputs live on the same device (``device``).

    Parameters
    ----------
    model : BaseAutoencoder
        The model to check (it is modified only by ``build`` and by moving it to
        ``device``; its train/eval flags are restored).
    sample : torch.Tensor or tuple of torch.Tensor
        A small input batch; a pair ``(x1, x2)`` when ``paired`` is true.
    loss_kwargs : dict, optional
        Extra keyword arguments for ``compute_loss`` (``likelihood``, ``beta``, ...).
    paired : bool, default False
        Check a pair model such as :class:`~autoencoders.variational.AdaGVAE`.
    report : bool, default False
        Print a checklist of passes and failures.
    strict : bool, default True
        Raise :class:`AssertionError` listing every failure (after printing the
        checklist when ``report`` is true).
    device : str or torch.device, optional
        Move the model there first. Default: :func:`~autoencoders.utils.get_device`
        (``AUTOENCODERS_DEVICE``, else CUDA when available), the package's one device
        policy.

    Returns
    -------
    CheckReport
        One :class:`CheckResult` per check.

    Raises
    ------
    AssertionError
        When ``strict`` and any check failed; the message says what is wrong and how
        to fix it.
    TypeError
        Before any check, when ``sample`` is not a tensor (not a pair of tensors when
        ``paired``). For compatibility this error is also an ``AssertionError``.
    ValueError
        Before any check, when ``sample`` contains NaN or inf, or when the two tensors
        of a pair differ in shape.
    """
    _check_sample(sample, paired)
    checker = _Checker(
        model, sample, paired=paired, device=get_device(device), loss_kwargs=dict(loss_kwargs or {})
    )
    results = CheckReport()
    flags = {m: m.training for m in model.modules()} if isinstance(model, torch.nn.Module) else {}
    state = checker.state

    def run(name: str, fn: Callable[[], None], needs: tuple[str, ...] = ()) -> None:
        if any(not state.get(n) for n in needs):
            results.results.append(CheckResult(name, None, "not run: an earlier check failed"))
            return
        try:
            fn()
        except _Failure as err:
            results.results.append(CheckResult(name, False, str(err)))
            state[name] = False
        except Exception as err:  # noqa: BLE001 - any crash is a failed check, explained
            results.results.append(CheckResult(name, False, f"raised {type(err).__name__}: {err}"))
            state[name] = False
        else:
            results.results.append(CheckResult(name, True))
            state[name] = True

    try:
        run("build materialises every lazy layer", checker.check_build)
        state["build"] = state.get("build materialises every lazy layer")
        run("forward returns a ModelOutput with a well-shaped x_hat", checker.check_forward, ("build",))
        state["forward"] = state.get("forward returns a ModelOutput with a well-shaped x_hat")
        run("encode/decode track no gradients and agree with forward (eval)", checker.check_inference, ("build",))
        run("compute_loss: finite objective, gradients everywhere, float diagnostics",
            checker.check_loss, ("build", "forward"))
        run("state_dict round trip gives identical eval outputs", checker.check_state_dict, ("build",))
        run("parameters and outputs on the model's device", checker.check_device, ("build",))
    finally:
        for module, flag in flags.items():
            module.training = flag
        if isinstance(model, torch.nn.Module):
            model.zero_grad(set_to_none=True)

    if report:
        print(results.checklist())
        n_ok = sum(bool(r.passed) for r in results.results)
        print(f"{n_ok}/{len(results.results)} checks passed")
    if strict and not results:
        details = "\n".join(f"- {r.name}: {r.message}" for r in results.results if r.passed is not True)
        raise AssertionError(f"{type(model).__name__} does not satisfy the autoencoder contract:\n{details}")
    return results
