"""Reference encoders and decoders for 1x28x28 and 1x64x64 images, and the generic
convolutional pair (:class:`ConvEncoder`, :class:`ConvDecoder`) they are built from.

Every encoder plays one of two roles, chosen by ``latent_dim``:

``latent_dim=None`` (feature extractor, for the VAE)
    The network ends in the activation of its last hidden layer and returns features
    ``h`` of shape ``[B, out_features]``. The VAE's lazy heads map ``h`` to
    :math:`\\mu` and :math:`\\log\\sigma^2`.
``latent_dim=D_z`` (AE encoder)
    A final linear layer (no activation) maps the features to the code
    ``z`` of shape ``[B, D_z]``.

Every decoder maps ``z`` of shape ``[B, D_z]`` (or ``[..., D_z]``) to an image-shaped
tensor ``[B, *out_shape]`` with **no final activation**: the likelihood decides how to
read it (logits for Bernoulli-type likelihoods, means for Gaussian/Laplace; see
:func:`autoencoders.loss.distribution_mean`).

All convolutions use 4x4 kernels, stride 2 and padding 1, which halve the spatial size
exactly (28 -> 14 -> 7 and 64 -> 32 -> 16 -> 8 -> 4); the transposed convolutions
double it back. The convolutional decoders can instead double it by nearest-neighbour
resizing followed by a 3x3 convolution (``upsample="resize"``), which cannot produce
checkerboard artefacts on flat regions (see :class:`ConvDecoder`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

__all__ = [
    "MLPEncoder",
    "MLPDecoder",
    "ConvEncoder",
    "ConvDecoder",
    "ConvEncoder28",
    "ConvDecoder28",
    "ConvEncoder64",
    "ConvDecoder64",
    "count_parameters",
    "checkerboard_energy",
]

ActivationFactory = Callable[[], nn.Module]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``module``.

    Parameters
    ----------
    module : nn.Module
        Any module. Lazy (uninitialised) parameters cannot be counted: call the model's
        ``build`` first.
    trainable_only : bool, default False
        Count only parameters with ``requires_grad=True``.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``module`` still holds uninitialised lazy parameters.
    """
    total = 0
    for name, p in module.named_parameters():
        if isinstance(p, nn.parameter.UninitializedParameter):
            raise ValueError(
                f"parameter {name!r} is uninitialised (lazy); build the model with a "
                "sample input before counting parameters"
            )
        if trainable_only and not p.requires_grad:
            continue
        total += p.numel()
    return total


def checkerboard_energy(images: torch.Tensor, period: int = 2) -> torch.Tensor:
    r"""Strength of the ``period`` x ``period``-periodic pattern in each image.

    A stride-2 upsampling layer can print a pattern that repeats every two pixels (the
    checkerboard artefact of :class:`ConvDecoder`). This measure averages the image over
    all pixels of the same phase :math:`(a, b)`, removes the mean, and returns the mean
    absolute value of what is left. With :math:`p` = ``period``:

    .. math::

        P_{ab} = \frac{p^2}{HW} \sum_{i, j} x_{p i + a,\, p j + b}, \qquad
        E = \frac{1}{p^2} \sum_{a, b = 0}^{p - 1}
            \Big| P_{ab} - \frac{1}{p^2}\sum_{a', b'} P_{a'b'} \Big| .

    :math:`E = 0` for a constant image, and for any image whose :math:`p^2` phase
    averages are equal; :math:`E = c` for the pure checkerboard
    :math:`x_{ij} = m + c\,(-1)^{i + j}`. For :math:`p = 2`, :math:`P - \bar P` is
    set by the image's Fourier coefficients at the three highest spatial frequencies,
    :math:`(\pi, \pi)`, :math:`(\pi, 0)` and :math:`(0, \pi)`.

    Parameters
    ----------
    images : torch.Tensor
        ``[..., H, W]`` with ``H`` and ``W`` divisible by ``period``.
    period : int, default 2
        The period of the pattern, the stride of the upsampling layer.

    Returns
    -------
    torch.Tensor
        ``[...]``: one value per image (and channel), in the units of the pixels.

    Raises
    ------
    ValueError
        If ``period`` is not a positive int, or ``H`` or ``W`` is not divisible by it.
    TypeError
        If ``images`` is not a tensor.
    """
    period = _positive_int("period", period)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() < 2 or images.shape[-1] % period or images.shape[-2] % period:
        raise ValueError(
            f"images must have shape [..., H, W] with H and W divisible by period={period}, "
            f"got {list(images.shape)}"
        )
    h, w = images.shape[-2:]
    phases = images.unflatten(-1, (w // period, period)).unflatten(-3, (h // period, period))
    means = phases.mean(dim=(-4, -2))  # [..., period, period]: one mean per phase
    return (means - means.mean(dim=(-2, -1), keepdim=True)).abs().mean(dim=(-2, -1))


# ---------------------------------------------------------------------------- checks


def _positive_int(name: str, value: object) -> int:
    # bool is an Integral too, but latent_dim=True is always a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _optional_latent_dim(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            "latent_dim must be a positive int (AE encoder) or None (VAE feature "
            f"extractor), got {value!r}"
        )
    return int(value)


def _int_tuple(name: str, value: object, *, allow_empty: bool) -> tuple[int, ...]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise ValueError(f"{name} must be a tuple of positive ints, got {value!r}")
    sizes = tuple(value)
    if not allow_empty and not sizes:
        raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {value!r}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s <= 0:
            raise ValueError(f"{name} must be a tuple of positive ints, got {value!r}")
    return tuple(int(s) for s in sizes)


def _activation(factory: ActivationFactory) -> nn.Module:
    """Build one activation module from a class or zero-argument factory."""
    if isinstance(factory, nn.Module):
        # An instance would be shared by every layer; harmless for ReLU but a trap for
        # activations with parameters (PReLU), so insist on the class.
        raise TypeError(
            "activation must be a module class or zero-argument factory such as nn.ReLU, "
            f"got the instance {factory!r}; pass {type(factory).__name__} instead"
        )
    if not callable(factory):
        raise TypeError(f"activation must be callable (e.g. nn.ReLU), got {factory!r}")
    module = factory()
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"activation() must return an nn.Module, got {type(module).__name__} "
            f"from {factory!r}"
        )
    return module


def _check_image(x: object, shape: tuple[int, ...], owner: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner} expects a torch.Tensor, got {type(x).__name__}")
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        expected = ", ".join(str(s) for s in shape)
        raise ValueError(f"{owner} expects x of shape [B, {expected}], got {list(x.shape)}")
    return x


def _flatten_latent(z: object, latent_dim: int, owner: str) -> tuple[torch.Tensor, torch.Size]:
    """Return ``z`` as ``[N, D_z]`` plus the leading shape to restore afterwards."""
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{owner} expects a torch.Tensor, got {type(z).__name__}")
    if z.dim() < 2 or z.shape[-1] != latent_dim:
        raise ValueError(
            f"{owner} expects z of shape [B, {latent_dim}] (or [..., {latent_dim}]), "
            f"got {list(z.shape)}"
        )
    return z.reshape(-1, latent_dim), z.shape[:-1]


class _Encoder(nn.Module):
    """Shared forward: check the input shape, run ``self.net``."""

    in_shape: tuple[int, ...]
    latent_dim: int | None
    out_features: int
    net: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``[B, *in_shape]`` to ``[B, out_features]``."""
        return self.net(_check_image(x, self.in_shape, type(self).__name__))

    def extra_repr(self) -> str:
        role = "features" if self.latent_dim is None else f"latent_dim={self.latent_dim}"
        return f"in_shape={self.in_shape}, {role}, out_features={self.out_features}"


class _Decoder(nn.Module):
    """Shared forward: flatten leading dims of ``z``, run ``self.net``, restore them."""

    latent_dim: int
    out_shape: tuple[int, ...]
    net: nn.Sequential

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map codes ``[..., D_z]`` to logits/means ``[..., *out_shape]``."""
        flat, lead = _flatten_latent(z, self.latent_dim, type(self).__name__)
        return self.net(flat).reshape(*lead, *self.out_shape)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, out_shape={self.out_shape}"


# ------------------------------------------------------------------------------ MLP


class MLPEncoder(_Encoder):
    r"""Fully connected encoder for flattened images.

    .. math::

        h_0 &= \operatorname{vec}(x), \qquad
        h_\ell = a(W_\ell h_{\ell-1} + b_\ell),\\
        z &= W_{L+1} h_L + b_{L+1} \quad \text{(only when latent_dim is set)}

    With the defaults (``in_shape=(1, 28, 28)``, ``hidden=(400,)``, ``latent_dim=None``)
    the output is ``[B, 400]`` and the network has
    :math:`784 \cdot 400 + 400 = 314{,}000` parameters. With ``latent_dim=20`` it outputs
    ``[B, 20]`` and has :math:`314{,}000 + 400 \cdot 20 + 20 = 322{,}020` parameters.

    Parameters
    ----------
    in_shape : tuple of int, default (1, 28, 28)
        Shape of one input, without the batch dimension.
    hidden : tuple of int, default (400,)
        Widths of the hidden layers. ``()`` gives a linear encoder (then ``latent_dim``
        is required), which is handy for comparing with PCA.
    latent_dim : int or None, default None
        ``None``: feature extractor ending in the last hidden activation. An int: AE
        encoder ending in a linear layer of that width.
    activation : class or zero-argument factory, default nn.Softplus
        Builds one activation module per hidden layer.

    Attributes
    ----------
    out_features : int
        Width of the output: ``hidden[-1]`` or ``latent_dim``.

    Raises
    ------
    ValueError
        On a non-positive or non-integer size, or ``hidden=()`` with ``latent_dim=None``.
    TypeError
        If ``activation`` is an instance instead of a class/factory.
    """

    def __init__(
        self,
        *,
        in_shape: tuple[int, ...] = (1, 28, 28),
        hidden: tuple[int, ...] = (400,),
        latent_dim: int | None = None,
        activation: ActivationFactory = nn.Softplus,
    ) -> None:
        super().__init__()
        self.in_shape = _int_tuple("in_shape", in_shape, allow_empty=False)
        hidden = _int_tuple("hidden", hidden, allow_empty=True)
        self.latent_dim = _optional_latent_dim(latent_dim)
        if not hidden and self.latent_dim is None:
            raise ValueError(
                "MLPEncoder with hidden=() has no features to extract: pass an int "
                "latent_dim (a linear encoder) or at least one hidden width"
            )
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(self.in_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), _activation(activation)]
            width = h
        if self.latent_dim is not None:
            layers.append(nn.Linear(width, self.latent_dim))
            width = self.latent_dim
        self.net = nn.Sequential(*layers)
        self.out_features = width


class MLPDecoder(_Decoder):
    r"""Fully connected decoder that reshapes its output to the image shape.

    .. math::

        h_0 = z, \qquad h_\ell = a(W_\ell h_{\ell-1} + b_\ell), \qquad
        \hat x = \operatorname{reshape}(W_{L+1} h_L + b_{L+1})

    No activation is applied to :math:`\hat x`. With ``latent_dim=20`` and the other
    defaults the output is ``[B, 1, 28, 28]`` and the network has
    :math:`(20 \cdot 400 + 400) + (400 \cdot 784 + 784) = 322{,}784` parameters
    (in general :math:`400 D_z + 314{,}784`).

    Parameters
    ----------
    latent_dim : int
        Width :math:`D_z` of the code.
    out_shape : tuple of int, default (1, 28, 28)
        Shape of one output, without the batch dimension.
    hidden : tuple of int, default (400,)
        Hidden widths from ``z`` outwards (pass an encoder's ``hidden`` reversed to
        mirror it). ``()`` gives a linear decoder.
    activation : class or zero-argument factory, default nn.Softplus
        Builds one activation module per hidden layer.

    Raises
    ------
    ValueError
        On a non-positive or non-integer size.
    TypeError
        If ``activation`` is an instance instead of a class/factory.
    """

    def __init__(
        self,
        latent_dim: int,
        *,
        out_shape: tuple[int, ...] = (1, 28, 28),
        hidden: tuple[int, ...] = (400,),
        activation: ActivationFactory = nn.Softplus,
    ) -> None:
        super().__init__()
        self.latent_dim = _positive_int("latent_dim", latent_dim)
        self.out_shape = _int_tuple("out_shape", out_shape, allow_empty=False)
        hidden = _int_tuple("hidden", hidden, allow_empty=True)
        layers: list[nn.Module] = []
        width = self.latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), _activation(activation)]
            width = h
        layers.append(nn.Linear(width, math.prod(self.out_shape)))
        self.net = nn.Sequential(*layers)


# ------------------------------------------------------------------------ conv 28x28


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1)


def _deconv(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)


_UPSAMPLE_MODES = ("transposed", "resize")


def _check_upsample(value: object) -> str:
    if not isinstance(value, str) or value not in _UPSAMPLE_MODES:
        allowed = ", ".join(repr(m) for m in _UPSAMPLE_MODES)
        raise ValueError(f"upsample must be one of {allowed}, got {value!r}")
    return value


def _upsample(c_in: int, c_out: int, mode: str) -> nn.Module:
    """One layer that doubles the side: a 4x4/2 transposed conv, or resize-conv."""
    if mode == "transposed":
        return _deconv(c_in, c_out)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
    )


def _conv_geometry(cls: type, side: object, channels: object) -> tuple[int, tuple[int, ...]]:
    """Validated (side, channels): the arguments, else the class's preset; side must halve exactly.

    A subclass with a preset geometry (``ConvEncoder28``, ...) refuses a different one.
    """
    given = {
        "side": None if side is None else _positive_int("side", side),
        "channels": None if channels is None else _int_tuple("channels", channels, allow_empty=False),
    }
    for name, value in given.items():
        preset = getattr(cls, name, None)
        if preset is not None and value is not None and value != preset:
            base = cls.__mro__[1].__name__
            raise ValueError(f"{cls.__name__} has {name}={preset!r}, got {value!r}; use {base} for other sizes")
        if value is None and preset is None:
            raise ValueError(f"{cls.__name__} needs {name}, got None")
        given[name] = preset if value is None else value
    side, channels = given["side"], given["channels"]
    if side % 2 ** len(channels):
        raise ValueError(
            f"side must be divisible by 2**len(channels) = {2 ** len(channels)} (each layer halves "
            f"or doubles it), got side={side} with {len(channels)} channel entries"
        )
    return side, channels


class ConvEncoder(_Encoder):
    r"""Convolutional encoder for square ``[B, C, side, side]`` images.

    Layers: one conv 4x4/2 per entry of ``channels`` (each halves the side), flatten
    (:math:`c_L (\mathrm{side}/2^L)^2` features), FC ``hidden``, each followed by the
    activation; then, when ``latent_dim`` is set, a linear layer to ``latent_dim``.
    :class:`ConvEncoder28` and :class:`ConvEncoder64` are this class with fixed
    geometry; use it directly for other sizes, for example CIFAR-10::

        ConvEncoder(side=32, channels=(32, 64, 64), in_channels=3)  # 32 -> 4

    Parameters
    ----------
    latent_dim : int or None, default None
        ``None``: feature extractor (output ``[B, hidden]``). An int: AE encoder
        (output ``[B, latent_dim]``).
    side : int
        Image height = width; divisible by :math:`2^L`, :math:`L` = ``len(channels)``.
        Required here, preset by the subclasses.
    channels : sequence of int
        Output channels of the convolutions, in order. Required here, preset by the
        subclasses.
    in_channels : int, default 1
    hidden : int, default 256
        Width of the fully connected layer.
    activation : class or zero-argument factory, default nn.ReLU

    Raises
    ------
    ValueError
        On a non-positive size or a ``side`` that the convolutions cannot halve exactly.
    """

    def __init__(
        self,
        latent_dim: int | None = None,
        *,
        side: int | None = None,
        channels: Sequence[int] | None = None,
        in_channels: int = 1,
        hidden: int = 256,
        activation: ActivationFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.side, self.channels = _conv_geometry(type(self), side, channels)
        self.latent_dim = _optional_latent_dim(latent_dim)
        in_channels = _positive_int("in_channels", in_channels)
        hidden = _positive_int("hidden", hidden)
        self.in_shape = (in_channels, self.side, self.side)
        layers: list[nn.Module] = []
        for c_in, c_out in zip((in_channels, *self.channels[:-1]), self.channels):
            layers += [_conv(c_in, c_out), _activation(activation)]  # side -> side / 2
        end = self.side // 2 ** len(self.channels)
        layers += [nn.Flatten(), nn.Linear(self.channels[-1] * end * end, hidden), _activation(activation)]
        width = hidden
        if self.latent_dim is not None:
            layers.append(nn.Linear(hidden, self.latent_dim))
            width = self.latent_dim
        self.net = nn.Sequential(*layers)
        self.out_features = width


class ConvDecoder(_Decoder):
    r"""Convolutional decoder to square ``[B, C, side, side]`` images.

    Layers: FC ``hidden`` -> FC to a ``channels[0]`` x :math:`s_0` x :math:`s_0` grid
    (:math:`s_0 = \mathrm{side}/2^L`, :math:`L` = ``len(channels)``) -> one upsampling
    layer per entry of ``channels`` (each doubles the side), from ``channels[i]`` to
    ``channels[i + 1]`` and the last one to ``out_channels``, with the activation after
    every layer but the last. :class:`ConvDecoder28` and :class:`ConvDecoder64` are
    this class with fixed geometry; the mirror of the CIFAR-10 example of
    :class:`ConvEncoder` is::

        ConvDecoder(latent_dim, side=32, channels=(64, 64, 32), out_channels=3)

    **Upsampling layers.** With ``upsample="transposed"`` (the default) each layer is a
    transposed convolution with kernel :math:`k = 4`, stride :math:`s = 2` and padding
    :math:`p = 1`. Along one axis it computes

    .. math::

        y_o = b + \sum_i x_i\, w_{o + p - s i}
        \qquad (0 \le o + p - s i < k),

    so every input pixel :math:`x_i` stamps the kernel, scaled by :math:`x_i`, into the
    output at offset :math:`s i - p`, and the stamps add where they overlap. An output
    position receives :math:`c_o = \#\{i : 0 \le o + p - s i < k\}` stamps: in the
    interior :math:`k / s = 2` everywhere when :math:`s` divides :math:`k` (here), but
    alternately :math:`\lceil k/s \rceil` and :math:`\lfloor k/s \rfloor` when it does
    not (kernel 3: counts 1, 2, 1, 2, ... per axis, 1, 2 and 4 in 2-D). Even with
    :math:`k = 4`, a constant input :math:`x \equiv c` gives
    :math:`y_o = b + c \sum_{t \equiv o + p \ (\mathrm{mod}\ 2)} w_t`: the output's
    even and odd positions use disjoint halves of the kernel, so unless those halves
    sum to the same value, a flat input comes out as a 2x2-periodic checkerboard
    :cite:p:`odena2016deconvolution`.

    With ``upsample="resize"`` each layer is nearest-neighbour upsampling by 2 followed
    by a 3x3 convolution with padding 1 (same size):

    .. math::

        u_o = x_{\lfloor o / 2 \rfloor}, \qquad
        y_o = b + \sum_{t=0}^{2} w_t\, u_{o + t - 1} \quad \text{(per axis)}.

    Every output position applies the whole kernel, so a constant input gives the
    constant :math:`y = b + c \sum_t w_t` away from the zero-padded border, whatever
    the weights. A 3x3 layer has :math:`C_\text{out}(9 C_\text{in} + 1)` parameters
    against :math:`C_\text{out}(16 C_\text{in} + 1)` for the transposed 4x4 one, and
    it convolves at the doubled resolution, which costs about
    :math:`4 \cdot 9 / 16 = 2.25` times the multiply-adds.

    Parameters
    ----------
    latent_dim : int
    side : int
        Image height = width; divisible by :math:`2^L`. Required here, preset by the
        subclasses.
    channels : sequence of int
        Input channels of the upsampling layers, in order. Required here, preset by
        the subclasses.
    out_channels : int, default 1
    hidden : int, default 256
    activation : class or zero-argument factory, default nn.ReLU
    upsample : {"transposed", "resize"}, default "transposed"
        How each layer doubles the side: a 4x4/2 transposed convolution, or
        nearest-neighbour resizing followed by a same-padded 3x3 convolution.

    Raises
    ------
    ValueError
        On a non-positive size, a ``side`` that the layers cannot double exactly, or
        an ``upsample`` other than ``"transposed"`` and ``"resize"``.
    """

    def __init__(
        self,
        latent_dim: int,
        *,
        side: int | None = None,
        channels: Sequence[int] | None = None,
        out_channels: int = 1,
        hidden: int = 256,
        activation: ActivationFactory = nn.ReLU,
        upsample: str = "transposed",
    ) -> None:
        super().__init__()
        self.side, self.channels = _conv_geometry(type(self), side, channels)
        self.latent_dim = _positive_int("latent_dim", latent_dim)
        self.upsample = _check_upsample(upsample)
        out_channels = _positive_int("out_channels", out_channels)
        hidden = _positive_int("hidden", hidden)
        self.out_shape = (out_channels, self.side, self.side)
        start = self.side // 2 ** len(self.channels)
        layers: list[nn.Module] = [
            nn.Linear(self.latent_dim, hidden), _activation(activation),
            nn.Linear(hidden, self.channels[0] * start * start), _activation(activation),
            nn.Unflatten(1, (self.channels[0], start, start)),
        ]  # fmt: skip
        outs = (*self.channels[1:], out_channels)
        for i, (c_in, c_out) in enumerate(zip(self.channels, outs)):
            layers.append(_upsample(c_in, c_out, self.upsample))  # side -> 2 side
            if i < len(outs) - 1:
                layers.append(_activation(activation))
        self.net = nn.Sequential(*layers)

    def extra_repr(self) -> str:
        # The default is left out, so the architecture string of a transposed-conv
        # decoder (which checkpoints store and check) is what it was before the option.
        if self.upsample == "transposed":
            return super().extra_repr()
        return f"{super().extra_repr()}, upsample={self.upsample!r}"


class ConvEncoder28(ConvEncoder):
    r"""Convolutional encoder for ``[B, C, 28, 28]`` images (MNIST).

    Layers: conv 4x4/2 (32) -> conv 4x4/2 (64) -> flatten (64 x 7 x 7 = 3136) ->
    FC ``hidden``, each followed by the activation; then, when ``latent_dim`` is set,
    a linear layer to ``latent_dim``.

    With the defaults (``in_channels=1``, ``hidden=256``, ``latent_dim=None``) the
    output is ``[B, 256]`` and the parameter count is

    .. math::

        \underbrace{(1\cdot 32\cdot 16 + 32)}_{544}
        + \underbrace{(32\cdot 64\cdot 16 + 64)}_{32{,}832}
        + \underbrace{(3136\cdot 256 + 256)}_{803{,}072} = 836{,}448.

    ``latent_dim=D_z`` adds :math:`256 D_z + D_z` (``latent_dim=10``: 839,018).

    Parameters
    ----------
    latent_dim : int or None, default None
        ``None``: feature extractor (output ``[B, hidden]``). An int: AE encoder
        (output ``[B, latent_dim]``).
    in_channels : int, default 1
    hidden : int, default 256
        Width of the fully connected layer.
    activation : class or zero-argument factory, default nn.ReLU
    """

    side = 28
    channels = (32, 64)


class ConvDecoder28(ConvDecoder):
    r"""Convolutional decoder to ``[B, C, 28, 28]``, mirroring :class:`ConvEncoder28`.

    Layers: FC ``hidden`` -> FC 3136, reshaped to 64 x 7 x 7 -> transposed conv 4x4/2
    (32) -> transposed conv 4x4/2 (``out_channels``), with the activation after every
    layer but the last.

    With ``latent_dim=10`` and the defaults the output is ``[B, 1, 28, 28]`` and the
    parameter count is

    .. math::

        & (10\cdot 256 + 256) + (256\cdot 3136 + 3136) + (64\cdot 32\cdot 16 + 32)
        + (32\cdot 1\cdot 16 + 1)\\
        &= 2816 + 805{,}952 + 32{,}800 + 513 = 842{,}081

    (in general :math:`256 D_z + 839{,}521`). With ``upsample="resize"`` the two
    transposed convolutions become nearest-neighbour upsampling followed by 3x3
    convolutions (64 -> 32 -> ``out_channels``, 7 -> 14 -> 28), with
    :math:`(64\cdot 32\cdot 9 + 32) + (32\cdot 1\cdot 9 + 1) = 18{,}753` parameters
    instead of 33,313 (in general :math:`256 D_z + 824{,}961`); see
    :class:`ConvDecoder` for the difference between the two.

    Parameters
    ----------
    latent_dim : int
    out_channels : int, default 1
    hidden : int, default 256
    activation : class or zero-argument factory, default nn.ReLU
    upsample : {"transposed", "resize"}, default "transposed"
    """

    side = 28
    channels = (64, 32)


# ------------------------------------------------------------------------ conv 64x64


class ConvEncoder64(ConvEncoder):
    r"""The disentanglement_lib convolutional encoder for ``[B, C, 64, 64]`` images.

    Layers: four conv 4x4/2 with 32, 32, 64, 64 channels (64 -> 32 -> 16 -> 8 -> 4),
    flatten (64 x 4 x 4 = 1024), FC 256, each followed by the activation (ReLU in
    disentanglement_lib); then, when ``latent_dim`` is set, a linear layer to
    ``latent_dim``.

    With the defaults (``in_channels=1``, ``latent_dim=None``) the output is
    ``[B, 256]`` and the parameter count is

    .. math::

        & 544 + \underbrace{(32\cdot 32\cdot 16 + 32)}_{16{,}416}
        + \underbrace{(32\cdot 64\cdot 16 + 64)}_{32{,}832}\\
        & + \underbrace{(64\cdot 64\cdot 16 + 64)}_{65{,}600}
        + \underbrace{(1024\cdot 256 + 256)}_{262{,}400} = 377{,}792.

    ``latent_dim=D_z`` adds :math:`257 D_z` (``latent_dim=10``: 380,362).

    Parameters
    ----------
    latent_dim : int or None, default None
    in_channels : int, default 1
    hidden : int, default 256
    activation : class or zero-argument factory, default nn.ReLU
    """

    side = 64
    channels = (32, 32, 64, 64)


class ConvDecoder64(ConvDecoder):
    r"""The disentanglement_lib deconvolutional decoder to ``[B, C, 64, 64]``.

    Layers: FC 256 -> FC 1024, reshaped to 64 x 4 x 4 -> four transposed conv 4x4/2
    with 64, 32, 32, ``out_channels`` channels (4 -> 8 -> 16 -> 32 -> 64), with the
    activation after every layer but the last.

    With ``latent_dim=10`` and the defaults the output is ``[B, 1, 64, 64]`` and the
    parameter count is

    .. math::

        & (10\cdot 256 + 256) + (256\cdot 1024 + 1024) + (64\cdot 64\cdot 16 + 64)\\
        & + (64\cdot 32\cdot 16 + 32) + (32\cdot 32\cdot 16 + 32) + (32\cdot 1\cdot 16 + 1)\\
        &= 381{,}313

    (in general :math:`256 D_z + 378{,}753`).

    Parameters
    ----------
    latent_dim : int
    out_channels : int, default 1
    hidden : int, default 256
    activation : class or zero-argument factory, default nn.ReLU
    upsample : {"transposed", "resize"}, default "transposed"
        See :class:`ConvDecoder`.
    """

    side = 64
    channels = (64, 64, 32, 32)
