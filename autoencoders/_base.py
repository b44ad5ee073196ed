"""The abstract autoencoder interface and the output container every model returns.

Every model in the package (and every model a student writes) follows one rhythm::

    model.build(x_sample)                      # materialise lazy layers once
    output = model(x)                          # a ModelOutput dataclass
    result = model.compute_loss(x, output)     # a LossResult
    result.objective.backward()

Subclasses implement :meth:`BaseAutoencoder._encode`, :meth:`BaseAutoencoder._decode`,
:meth:`BaseAutoencoder.forward` and :meth:`BaseAutoencoder.compute_loss`; the base class
provides gradient-free :meth:`~BaseAutoencoder.encode` / :meth:`~BaseAutoencoder.decode`,
a side-effect-free :meth:`~BaseAutoencoder.build`, and a guarded
:meth:`~BaseAutoencoder.load_state_dict`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

__all__ = ["BaseAutoencoder", "ModelOutput", "DecodeOutput", "check_tensor", "check_input_dtype", "check_input_shape"]



@dataclasses.dataclass(repr=False)
class ModelOutput:
    """Base class for model outputs: a dataclass whose ``repr`` shows tensor shapes.

    Subclasses are ordinary ``@dataclass`` classes. Printing one never dumps tensor
    values: every tensor field is shown as ``Tensor(shape=(...), dtype=...)``, so logs
    stay readable even for image batches.

    Examples
    --------
    >>> import torch
    >>> from autoencoders.vanilla import AEOutput
    >>> AEOutput(x_hat=torch.zeros(2, 784), z=torch.zeros(2, 8))  # doctest: +NORMALIZE_WHITESPACE
    AEOutput(x_hat=Tensor(shape=(2, 784), dtype=torch.float32),
             z=Tensor(shape=(2, 8), dtype=torch.float32))
    """

    def __repr__(self) -> str:
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, torch.Tensor):
                shown = f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
            else:
                shown = repr(value)
            parts.append(f"{field.name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclasses.dataclass(repr=False)
class DecodeOutput(ModelOutput):
    """Output of ``decode``, shared by every model: the decoder's raw output ``x_hat``
    (``[B, ...]``, or ``[B, S, ...]`` for ``S`` codes per input), i.e. distribution
    parameters (see :mod:`autoencoders.likelihoods`)."""

    x_hat: torch.Tensor


def check_tensor(value: Any, name: str, *, min_dim: int = 1) -> torch.Tensor:
    """Validate a model input where it enters.

    Parameters
    ----------
    value : Any
        The object received.
    name : str
        The argument's name, used in the error message.
    min_dim : int, default 1
        Minimum number of dimensions (1 means "has a batch dimension").

    Returns
    -------
    torch.Tensor
        ``value`` unchanged.

    Raises
    ------
    TypeError
        If ``value`` is not a tensor.
    ValueError
        If it has fewer than ``min_dim`` dimensions.

    Notes
    -----
    Values are not inspected here, which would cost a host-device synchronisation on
    every forward pass. The models' ``compute_loss`` checks them instead (finite, and
    in range for the likelihood) inside the one synchronisation it makes anyway
    (:func:`autoencoders.loss.float_diagnostics`).
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s) [B, ...], got shape {list(value.shape)}"
        )
    if value.dim() >= 1 and value.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {list(value.shape)}); expected B >= 1")
    return value


def check_input_shape(x: torch.Tensor, module: nn.Module, name: str = "x") -> None:
    """Raise a ``ValueError`` when ``x`` is not shaped like the batch ``module`` was built
    with (recorded by :meth:`BaseAutoencoder.build` and :func:`~autoencoders.train.fit`).

    Torch would otherwise fail deep inside a layer ("mat1 and mat2 shapes cannot be
    multiplied") or, worse, a flattening layer would accept a reshaped image.
    """
    built = getattr(module, "_build_input_shape", None)
    if x.dim() < 2:
        raise ValueError(
            f"{name} must be a batch [B, ...] with at least 2 dimensions, got shape {list(x.shape)}"
        )
    if built is not None and tuple(x.shape[1:]) != tuple(built[1:]):
        raise ValueError(
            f"{name} has shape {list(x.shape)}, but {type(module).__name__} was built for "
            f"inputs of shape [B, {', '.join(str(s) for s in built[1:])}]"
        )


def check_input_dtype(x: torch.Tensor, module: nn.Module, name: str = "x") -> None:
    """Raise a ``TypeError`` when ``x`` has another dtype than ``module``'s parameters.

    Torch would otherwise fail deep inside a layer with "mat1 and mat2 must have the
    same dtype"; this message names the argument and the fix.
    """
    for p in module.parameters():
        if x.dtype != p.dtype:
            hint = " / 255 for 8-bit pixels" if not x.is_floating_point() else ""
            raise TypeError(
                f"{name} is {str(x.dtype).removeprefix('torch.')} but the model's parameters are "
                f"{str(p.dtype).removeprefix('torch.')}; use {name}.float(){hint} or model.double()"
            )
        return


class BaseAutoencoder(nn.Module, ABC):
    """Abstract base class for every autoencoder in the package.

    Subclasses implement four methods:

    ``_encode(x) -> ModelOutput``
        The encoder with gradients (used by :meth:`forward`).
    ``_decode(z) -> ModelOutput``
        The decoder with gradients.
    ``forward(x) -> ModelOutput``
        The training forward pass, returning everything the loss needs.
    ``compute_loss(x, output) -> LossResult``
        The objective to minimise plus Python-float diagnostics.

    Attributes
    ----------
    paired : bool
        ``True`` for models whose input is a pair ``(x1, x2)`` (see
        :class:`~autoencoders.variational.AdaGVAE`). Training helpers read it to decide
        how to unpack a batch.
    """

    paired: ClassVar[bool] = False

    # ------------------------------------------------------------------- likelihood
    def _init_likelihood(self, likelihood: Any) -> None:
        """Validate and store the model's observation model (see :attr:`likelihood`)."""
        from .likelihoods import Likelihood, available_likelihoods, get_likelihood

        entry = get_likelihood(likelihood)  # raises for unknown names and bad types
        if isinstance(likelihood, str):
            likelihood = entry.name
        elif isinstance(likelihood, Likelihood) and entry.name in available_likelihoods():
            if get_likelihood(entry.name) is likelihood:  # the registered entry: keep its name
                likelihood = entry.name
        # an nn.Module likelihood (one with learnable parameters) becomes a submodule:
        # it moves, trains and is saved with the model
        self._likelihood = likelihood

    @property
    def likelihood(self) -> Any:
        r"""The observation model :math:`p(x \mid z)` the model was built with: a
        registered name such as ``'bernoulli'``, a
        :class:`~autoencoders.likelihoods.Likelihood` or a callable.

        ``compute_loss``, :func:`~autoencoders.train.fit`,
        :func:`~autoencoders.train.evaluate`, the plotting helpers and the metrics
        use it unless a call passes ``likelihood=`` explicitly.
        """
        return self.__dict__.get("_likelihood", self._modules.get("_likelihood", "gaussian"))

    def resolve_likelihood(self, likelihood: Any = None) -> Any:
        """``likelihood`` if given, else the model's own :attr:`likelihood`."""
        return self.likelihood if likelihood is None else likelihood

    def extra_repr(self) -> str:
        from .likelihoods import get_likelihood

        return f"likelihood={get_likelihood(self.likelihood).name!r}"

    # ------------------------------------------------------------------ abstract API
    @abstractmethod
    def _encode(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> ModelOutput:
        """Encode with gradients; return a :class:`ModelOutput` holding at least ``z``."""

    @abstractmethod
    def _decode(self, z: torch.Tensor, *args: Any, **kwargs: Any) -> ModelOutput:
        """Decode with gradients; return a :class:`ModelOutput` holding ``x_hat``."""

    @abstractmethod
    def forward(self, x: Any, *args: Any, **kwargs: Any) -> ModelOutput:
        """The training forward pass."""

    @abstractmethod
    def compute_loss(self, x: Any, output: ModelOutput, *args: Any, **kwargs: Any):
        """Return a :class:`~autoencoders.loss.LossResult` for ``output``."""

    # ------------------------------------------------------------------ inference API
    def encode(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> ModelOutput:
        """Encode without tracking gradients.

        Runs :meth:`_encode` under :func:`torch.no_grad` (not ``inference_mode``), so
        the returned tensors can later be used as constants inside autograd graphs.
        """
        with torch.no_grad():
            return self._encode(x, *args, **kwargs)

    def decode(self, z: torch.Tensor, *args: Any, **kwargs: Any) -> ModelOutput:
        """Decode without tracking gradients (see :meth:`encode`)."""
        with torch.no_grad():
            return self._decode(z, *args, **kwargs)

    # ------------------------------------------------------------------ build / state
    def build(self, input_sample: Any) -> BaseAutoencoder:
        r"""Materialise lazy layers with one representative batch.

        The forward pass runs under :func:`torch.no_grad` with every submodule in
        **eval mode**, so BatchNorm running statistics are not updated and dropout is
        off; afterwards each submodule's previous ``training`` flag is restored
        exactly (mixed train/eval states survive too).

        Parameters
        ----------
        input_sample : torch.Tensor or tuple of torch.Tensor
            A batch shaped like the training data. Only its shape matters.

        Returns
        -------
        BaseAutoencoder
            ``self``, so ``model = VAE(...).build(x)`` reads naturally.

        Notes
        -----
        The shape and dtype of one input (``[1, *x.shape[1:]]``; for pair models one
        view) are recorded in ``_build_input_shape`` / ``_build_input_dtype`` so that
        :func:`autoencoders.train.load_checkpoint` can rebuild the model by itself.
        """
        first = input_sample[0] if isinstance(input_sample, tuple | list) else input_sample
        if isinstance(first, torch.Tensor):
            self._build_input_shape = (1, *first.shape[1:])
            self._build_input_dtype = str(first.dtype).removeprefix("torch.")
        flags = {module: module.training for module in self.modules()}
        self.eval()
        try:
            with torch.no_grad():
                self.forward(input_sample)
        finally:
            for module, flag in flags.items():
                module.training = flag
        return self

    def unbuilt_modules(self) -> list[str]:
        """Names of lazy submodules whose parameters are still uninitialised."""
        return [
            name or type(self).__name__
            for name, module in self.named_modules()
            if isinstance(module, LazyModuleMixin) and module.has_uninitialized_params()
        ]

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ):
        """Load parameters, refusing while lazy layers are unmaterialised.

        Raises
        ------
        RuntimeError
            If any lazy submodule has not been built yet: call :meth:`build` first.
        """
        pending = self.unbuilt_modules()
        if pending:
            raise RuntimeError(
                f"call build() first: lazy modules {pending} of {type(self).__name__} "
                "have no shapes yet, so a state_dict cannot be loaded into them"
            )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
