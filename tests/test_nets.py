"""Shapes, parameter counts and argument checks of the reference networks.

Every expected parameter count is written out from the layer sizes
(``in * out + out`` for a linear layer, ``c_in * c_out * k * k + c_out`` for a
(transposed) convolution), independently of the code under test.
"""

from __future__ import annotations

import functools
import re

import pytest
import torch
from torch import nn

from autoencoders.nets import (
    ConvDecoder,
    ConvDecoder28,
    ConvDecoder64,
    ConvEncoder,
    ConvEncoder28,
    ConvEncoder64,
    MLPDecoder,
    MLPEncoder,
    checkerboard_energy,
    count_parameters,
)


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def conv(c_in: int, c_out: int, k: int = 4) -> int:
    return c_in * c_out * k * k + c_out


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------ parameter counts

MLP_FEATURES = linear(784, 400)
CONV28_FEATURES = conv(1, 32) + conv(32, 64) + linear(64 * 7 * 7, 256)
CONV64_FEATURES = conv(1, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64) + linear(1024, 256)


def test_hand_computed_counts_match_the_docstring_numbers():
    # The docstrings quote these numbers; keep the two in step.
    assert MLP_FEATURES == 314_000
    assert CONV28_FEATURES == 836_448
    assert CONV64_FEATURES == 377_792


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: MLPEncoder(), MLP_FEATURES),
        (lambda: MLPEncoder(latent_dim=20), MLP_FEATURES + linear(400, 20)),
        (lambda: MLPEncoder(hidden=(512, 256), latent_dim=8),
         linear(784, 512) + linear(512, 256) + linear(256, 8)),
        (lambda: MLPEncoder(hidden=(), latent_dim=8), linear(784, 8)),
        (lambda: MLPDecoder(20), linear(20, 400) + linear(400, 784)),
        (lambda: MLPDecoder(2, hidden=(256, 512)),
         linear(2, 256) + linear(256, 512) + linear(512, 784)),
        (lambda: MLPDecoder(8, hidden=()), linear(8, 784)),
        (lambda: ConvEncoder28(), CONV28_FEATURES),
        (lambda: ConvEncoder28(10), CONV28_FEATURES + linear(256, 10)),
        (lambda: ConvDecoder28(10),
         linear(10, 256) + linear(256, 3136) + conv(64, 32) + conv(32, 1)),
        (lambda: ConvEncoder64(), CONV64_FEATURES),
        (lambda: ConvEncoder64(10), CONV64_FEATURES + linear(256, 10)),
        (lambda: ConvDecoder64(10),
         linear(10, 256) + linear(256, 1024)
         + conv(64, 64) + conv(64, 32) + conv(32, 32) + conv(32, 1)),
    ],
)  # fmt: skip
def test_parameter_count(make, expected):
    net = make()
    assert n_params(net) == expected
    assert count_parameters(net) == expected


def test_docstring_counts_for_default_settings():
    assert n_params(MLPEncoder(latent_dim=20)) == 322_020
    assert n_params(MLPDecoder(20)) == 322_784
    assert n_params(ConvEncoder28(10)) == 839_018
    assert n_params(ConvDecoder28(10)) == 842_081
    assert n_params(ConvEncoder64(10)) == 380_362
    assert n_params(ConvDecoder64(10)) == 381_313


def test_count_parameters_trainable_only_and_lazy():
    net = MLPEncoder(latent_dim=3)
    net.net[1].weight.requires_grad_(False)
    assert count_parameters(net, trainable_only=True) == MLP_FEATURES + linear(400, 3) - 784 * 400
    with pytest.raises(ValueError, match="uninitialised"):
        count_parameters(nn.LazyLinear(3))


# ---------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("encoder", "x_shape", "out"),
    [
        (MLPEncoder(), (5, 1, 28, 28), 400),
        (MLPEncoder(latent_dim=7), (5, 1, 28, 28), 7),
        (MLPEncoder(in_shape=(3, 8, 8), hidden=(16, 32)), (5, 3, 8, 8), 32),
        (MLPEncoder(in_shape=(10,), hidden=(), latent_dim=2), (5, 10), 2),
        (ConvEncoder28(), (5, 1, 28, 28), 256),
        (ConvEncoder28(4), (5, 1, 28, 28), 4),
        (ConvEncoder28(in_channels=3, hidden=32), (5, 3, 28, 28), 32),
        (ConvEncoder64(), (5, 1, 64, 64), 256),
        (ConvEncoder64(6), (5, 1, 64, 64), 6),
    ],
)
def test_encoder_output_shape(encoder, x_shape, out):
    h = encoder(torch.rand(x_shape))
    assert h.shape == (x_shape[0], out)
    assert encoder.out_features == out
    assert encoder.in_shape == x_shape[1:]


@pytest.mark.parametrize("encoder", [MLPEncoder(), ConvEncoder28(), ConvEncoder64()])
def test_feature_role_ends_in_the_activation(encoder):
    # Softplus features are strictly positive, ReLU features non-negative; a linear last
    # layer would give negative values for some inputs.
    h = encoder(torch.randn(16, *encoder.in_shape))
    assert encoder.latent_dim is None
    assert h.min() >= 0
    assert not isinstance(encoder.net[-1], nn.Linear)


@pytest.mark.parametrize("encoder", [MLPEncoder(latent_dim=5), ConvEncoder28(5), ConvEncoder64(5)])
def test_latent_role_ends_in_a_linear_layer(encoder):
    last = encoder.net[-1]
    assert isinstance(last, nn.Linear) and last.out_features == 5
    assert encoder.latent_dim == 5


@pytest.mark.parametrize(
    ("decoder", "image_shape"),
    [
        (MLPDecoder(3), (1, 28, 28)),
        (MLPDecoder(3, out_shape=(2, 5, 5), hidden=(8,)), (2, 5, 5)),
        (ConvDecoder28(3), (1, 28, 28)),
        (ConvDecoder28(3, out_channels=3, hidden=16), (3, 28, 28)),
        (ConvDecoder64(3), (1, 64, 64)),
    ],
)
def test_decoder_output_shape_and_leading_dims(decoder, image_shape):
    z = torch.randn(4, 3)
    x_hat = decoder(z)
    assert x_hat.shape == (4, *image_shape)
    # [B, S, D] gives [B, S, *image] and the same values as the flattened batch.
    z3 = torch.randn(2, 5, 3)
    x3 = decoder(z3)
    assert x3.shape == (2, 5, *image_shape)
    torch.testing.assert_close(x3.reshape(10, *image_shape), decoder(z3.reshape(10, 3)))


def test_decoder_has_no_final_activation():
    # Logits/means must be free to be negative and above one.
    torch.manual_seed(0)
    for decoder in (MLPDecoder(2), ConvDecoder28(2), ConvDecoder64(2)):
        x_hat = decoder(10 * torch.randn(64, 2))
        assert x_hat.min() < 0
        assert not isinstance(decoder.net[-1], nn.ReLU | nn.Sigmoid | nn.Softplus)


def test_activation_factory_is_used_for_every_hidden_layer():
    enc = MLPEncoder(hidden=(8, 8, 8), activation=functools.partial(nn.LeakyReLU, 0.2))
    acts = [m for m in enc.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 3 and all(a.negative_slope == 0.2 for a in acts)
    assert len({id(a) for a in acts}) == 3
    dec = ConvDecoder64(2, activation=nn.ELU)
    assert sum(isinstance(m, nn.ELU) for m in dec.modules()) == 5


def test_mlp_encoder_flattens_in_row_major_order():
    # A linear encoder is W vec(x) + b with vec = torch.flatten order.
    enc = MLPEncoder(in_shape=(2, 3), hidden=(), latent_dim=4)
    x = torch.randn(5, 2, 3)
    w, b = enc.net[-1].weight, enc.net[-1].bias
    torch.testing.assert_close(enc(x), x.reshape(5, 6) @ w.T + b)


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", True])
@pytest.mark.parametrize("cls", [MLPEncoder, ConvEncoder28, ConvEncoder64])
def test_encoder_rejects_bad_latent_dim(cls, bad):
    with pytest.raises(ValueError, match="latent_dim"):
        cls(latent_dim=bad)


@pytest.mark.parametrize("bad", [0, -1, 2.0, None, False])
@pytest.mark.parametrize("cls", [MLPDecoder, ConvDecoder28, ConvDecoder64])
def test_decoder_rejects_bad_latent_dim(cls, bad):
    with pytest.raises(ValueError, match="latent_dim"):
        cls(bad)


def test_bad_sizes_and_activations_raise():
    with pytest.raises(ValueError, match="hidden"):
        MLPEncoder(hidden=(400, 0))
    with pytest.raises(ValueError, match="in_shape"):
        MLPEncoder(in_shape=())
    with pytest.raises(ValueError, match=r"hidden=\(\)"):
        MLPEncoder(hidden=())
    with pytest.raises(ValueError, match="out_shape"):
        MLPDecoder(2, out_shape=(1, -28, 28))
    with pytest.raises(ValueError, match="in_channels"):
        ConvEncoder64(in_channels=0)
    with pytest.raises(ValueError, match="hidden"):
        ConvDecoder28(2, hidden=-1)
    with pytest.raises(TypeError, match="instance"):
        MLPEncoder(activation=nn.ReLU())
    with pytest.raises(TypeError, match="nn.Module"):
        MLPEncoder(activation=lambda: torch.relu)


@pytest.mark.parametrize(
    ("net", "bad_shape", "message"),
    [
        (MLPEncoder(), (4, 784), r"\[B, 1, 28, 28\], got \[4, 784\]"),
        (ConvEncoder28(), (4, 1, 64, 64), r"\[B, 1, 28, 28\], got \[4, 1, 64, 64\]"),
        (ConvEncoder64(), (1, 64, 64), r"\[B, 1, 64, 64\], got \[1, 64, 64\]"),
        (MLPDecoder(3), (4, 2), r"\[B, 3\] \(or \[..., 3\]\), got \[4, 2\]"),
        (ConvDecoder28(3), (3,), r"got \[3\]"),
        (ConvDecoder64(3), (4, 4), r"got \[4, 4\]"),
    ],
)
def test_forward_rejects_wrong_shapes(net, bad_shape, message):
    with pytest.raises(ValueError, match=message):
        net(torch.zeros(bad_shape))


def test_forward_rejects_non_tensors():
    with pytest.raises(TypeError, match="torch.Tensor"):
        MLPEncoder()([[0.0]])


# ----------------------------------------------------------- generic conv geometry


def test_generic_conv_pair_for_cifar_sized_images():
    encoder = ConvEncoder(8, side=32, channels=(32, 64, 64), in_channels=3)
    decoder = ConvDecoder(8, side=32, channels=(64, 64, 32), out_channels=3)
    x = torch.rand(2, 3, 32, 32)
    assert encoder(x).shape == (2, 8)
    assert decoder(encoder(x)).shape == (2, 3, 32, 32)
    # Hand counts: convs 3->32->64->64 (4x4 kernels), FC 64*4*4 -> 256, head 256 -> 8.
    conv = (3 * 32 + 32 * 64 + 64 * 64) * 16 + (32 + 64 + 64)
    assert count_parameters(encoder) == conv + (1024 * 256 + 256) + (256 * 8 + 8)
    # FC 8 -> 256 -> 64*4*4, transposed convs 64->64->32->3.
    deconv = (64 * 64 + 64 * 32 + 32 * 3) * 16 + (64 + 32 + 3)
    assert count_parameters(decoder) == (8 * 256 + 256) + (256 * 1024 + 1024) + deconv


def test_fixed_size_classes_are_the_generic_ones_with_presets():
    torch.manual_seed(0)
    preset = ConvEncoder64(10)
    torch.manual_seed(0)
    generic = ConvEncoder(10, side=64, channels=(32, 32, 64, 64))
    x = torch.rand(2, 1, 64, 64)
    assert torch.equal(preset(x), generic(x))
    assert isinstance(ConvDecoder28(4), ConvDecoder) and ConvDecoder28(4).channels == (64, 32)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ConvEncoder(side=30, channels=(32, 64)), r"side must be divisible by 2\*\*len\(channels\) = 4"),
        (lambda: ConvEncoder(channels=(8,)), "ConvEncoder needs side, got None"),
        (lambda: ConvDecoder(4, side=32), "ConvDecoder needs channels, got None"),
        (lambda: ConvDecoder(4, side=32, channels=()), "channels must be a non-empty tuple"),
        (lambda: ConvEncoder28(side=64), "ConvEncoder28 has side=28, got 64; use ConvEncoder"),
        (lambda: ConvDecoder64(4, channels=(1, 2)), r"ConvDecoder64 has channels=\(64, 64, 32, 32\), got \(1, 2\)"),
    ],
)
def test_generic_conv_geometry_errors_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ------------------------------------------------------- upsampling: transposed vs resize


def stamp_counts(n_in: int, k: int, stride: int = 2, padding: int = 0) -> list[int]:
    """How many input positions stamp their kernel onto each output position of a 1-D
    transposed convolution, counted directly from its definition: input ``i`` covers the
    outputs ``o`` with ``0 <= o + padding - stride * i < k``."""
    n_out = (n_in - 1) * stride - 2 * padding + k
    return [sum(0 <= o + padding - stride * i < k for i in range(n_in)) for o in range(n_out)]


def test_stamp_counts_closed_form():
    # Kernel 3, stride 2: alternately one and two stamps; kernel 4: two everywhere
    # inside, one at the outermost positions.
    assert stamp_counts(4, 3) == [1, 1, 2, 1, 2, 1, 2, 1, 1]
    assert stamp_counts(4, 4) == [1, 1, 2, 2, 2, 2, 2, 2, 1, 1]
    assert stamp_counts(4, 4, padding=1) == [1, 2, 2, 2, 2, 2, 2, 1]


@pytest.mark.parametrize("k", [3, 4])
def test_transposed_conv_with_ones_counts_the_overlapping_stamps(k):
    """All-ones weights on an all-ones input: every output pixel is the number of
    kernel stamps that cover it, the product of the per-axis counts."""
    n = 6
    layer = nn.ConvTranspose2d(1, 1, kernel_size=k, stride=2, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        out = layer(torch.ones(1, 1, n, n))[0, 0]
    counts = torch.tensor(stamp_counts(n, k), dtype=torch.float32)
    assert torch.equal(out, torch.outer(counts, counts))
    inner = out[k:-k, k:-k]  # away from the borders
    if k == 3:
        assert sorted(inner.unique().tolist()) == [1.0, 2.0, 4.0]
    else:
        assert torch.equal(inner, torch.full_like(inner, 4.0))


def test_package_transposed_layer_is_4x4_stride_2_padding_1():
    """The decoder's last transposed conv, with all-ones weights and zero bias, covers a
    constant input exactly as the closed-form count for k=4, s=2, p=1 says."""
    decoder = ConvDecoder28(4)
    layer = decoder.net[-1]
    assert isinstance(layer, nn.ConvTranspose2d)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.zero_()
        out = layer(torch.ones(1, 32, 14, 14))[0, 0]
    counts = torch.tensor(stamp_counts(14, 4, padding=1), dtype=torch.float32)
    assert out.shape == (28, 28)
    assert torch.equal(out, 32 * torch.outer(counts, counts))  # 32 input channels


def test_transposed_layer_turns_a_flat_input_into_a_2x2_pattern():
    """With a constant input c, an interior output pixel is b + c times the sum of the
    kernel entries w[t1, t2] with t = o + 1 (mod 2): four phase sums, a 2x2-periodic
    pattern unless they are equal."""
    torch.manual_seed(0)
    layer = ConvDecoder(2, side=8, channels=(1, 1)).net[-1]  # 1 -> 1 channel
    c = 0.7
    with torch.no_grad():
        out = layer(torch.full((1, 1, 4, 4), c))[0, 0]
        w, b = layer.weight[0, 0], layer.bias[0]
        for o1 in range(1, 7):
            for o2 in range(1, 7):
                phase = w[(o1 + 1) % 2 :: 2, (o2 + 1) % 2 :: 2].sum()
                assert torch.isclose(out[o1, o2], b + c * phase, atol=1e-6)
    assert out[1:-1, 1:-1].unique().numel() == 4  # random weights: four values


def test_resize_layer_gives_a_uniform_response_to_a_constant_input():
    torch.manual_seed(0)
    layer = ConvDecoder28(4, upsample="resize").net[-1]
    upsample, conv_layer = layer
    assert isinstance(upsample, nn.Upsample) and isinstance(conv_layer, nn.Conv2d)
    c = 0.7
    with torch.no_grad():
        out = layer(torch.full((1, 32, 14, 14), c))[0, 0]
        expected = conv_layer.bias[0] + c * conv_layer.weight.sum()
    assert out.shape == (28, 28)
    inner = out[1:-1, 1:-1]  # the zero padding only touches the outermost pixels
    assert torch.allclose(inner, expected.expand_as(inner), atol=1e-5)


def test_resize_layer_is_nearest_neighbour_then_same_conv():
    """Against a reference written with repeat_interleave and a padded conv2d."""
    torch.manual_seed(0)
    layer = ConvDecoder28(4, upsample="resize").net[5]
    x = torch.randn(2, 64, 7, 7)
    _, conv_layer = layer
    nearest = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    reference = torch.nn.functional.conv2d(
        nearest, conv_layer.weight, conv_layer.bias, padding=1
    )
    with torch.no_grad():
        assert torch.allclose(layer(x), reference, atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda up: ConvDecoder28(5, upsample=up),
        lambda up: ConvDecoder64(5, upsample=up),
        lambda up: ConvDecoder(5, side=32, channels=(64, 64, 32), out_channels=3, upsample=up),
    ],
)
def test_both_upsampling_modes_give_the_same_output_shape(make):
    z = torch.randn(3, 2, 5)  # leading dims are kept
    transposed, resize = make("transposed"), make("resize")
    assert transposed(z).shape == resize(z).shape == (3, 2, *transposed.out_shape)
    assert resize.upsample == "resize" and "upsample='resize'" in repr(resize)


def test_resize_parameter_count_by_hand():
    # FC 10 -> 256 -> 3136, then 3x3 convs 64 -> 32 -> 1.
    expected = linear(10, 256) + linear(256, 3136) + conv(64, 32, k=3) + conv(32, 1, k=3)
    assert count_parameters(ConvDecoder28(10, upsample="resize")) == expected == 827_521


def test_transposed_upsampling_stays_the_default():
    torch.manual_seed(0)
    default = ConvDecoder28(6)
    torch.manual_seed(0)
    explicit = ConvDecoder28(6, upsample="transposed")
    assert default.upsample == "transposed"
    assert default.state_dict().keys() == explicit.state_dict().keys()
    z = torch.randn(2, 6)
    assert torch.equal(default(z), explicit(z))
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in default.modules()) == 2
    assert count_parameters(default) == 842_081 - 256 * 4


@pytest.mark.parametrize("bad", ["bilinear", "Transposed", "", None, 2])
def test_bad_upsample_names_the_argument_and_the_choices(bad):
    message = rf"upsample must be one of 'transposed', 'resize', got {re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=message):
        ConvDecoder28(4, upsample=bad)
    with pytest.raises(ValueError, match="upsample must be one of"):
        ConvDecoder(4, side=32, channels=(8, 8), upsample=bad)


# ------------------------------------------------------------------ checkerboard energy


def test_checkerboard_energy_of_known_patterns():
    i = torch.arange(6)
    sign = (-1.0) ** (i[:, None] + i[None, :])  # the (pi, pi) checkerboard
    assert torch.isclose(checkerboard_energy(0.4 + 0.25 * sign), torch.tensor(0.25))
    stripes = (-1.0) ** i[:, None].expand(6, 6)  # rows alternate: (pi, 0)
    assert torch.isclose(checkerboard_energy(stripes), torch.tensor(1.0))
    assert checkerboard_energy(torch.full((2, 3, 4, 4), 0.7)).abs().max() < 1e-7
    # The period-2 checkerboard cancels within each phase at period 3, not at 6.
    assert checkerboard_energy(sign, period=3) < checkerboard_energy(sign, period=6)


def test_checkerboard_energy_against_a_loop_reference():
    torch.manual_seed(0)
    x = torch.rand(3, 8, 6)
    expected = []
    for img in x.tolist():
        means = [
            [sum(img[r][c] for r in range(a, 8, 2) for c in range(b, 6, 2)) / 12 for b in (0, 1)]
            for a in (0, 1)
        ]
        grand = sum(map(sum, means)) / 4
        expected.append(sum(abs(m - grand) for row in means for m in row) / 4)
    assert torch.allclose(checkerboard_energy(x), torch.tensor(expected), atol=1e-6)


@pytest.mark.parametrize(
    ("images", "period", "error", "message"),
    [
        (torch.zeros(1, 5, 4), 2, ValueError, r"divisible by period=2, got \[1, 5, 4\]"),
        (torch.zeros(4), 2, ValueError, r"shape \[..., H, W\]"),
        (torch.zeros(4, 4), 0, ValueError, "period must be a positive int, got 0"),
        ([[0.0]], 1, TypeError, "images must be a torch.Tensor, got list"),
    ],
)
def test_checkerboard_energy_rejects_bad_inputs(images, period, error, message):
    with pytest.raises(error, match=message):
        checkerboard_energy(images, period=period)
