"""StyleGAN2's building blocks as GPEN's reference code computes them.

Upfirdn blur, equalised-learning-rate convolutions and linears, modulated convolution
with demodulation, GPEN's concatenated feature injection and ToRGB. Names and parameter
shapes follow the released checkpoints' state_dict keys (see :mod:`.gpen`), so faster
variants (:mod:`.gpen_fast`) reuse these modules and their weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BLUR_KERNEL = (1, 3, 3, 1)
LEAKY_SLOPE = 0.2
LEAKY_GAIN = math.sqrt(2.0)


def channels_at(resolution: int, channel_multiplier: float, narrow: float) -> int:
    """Feature channels at one resolution, exactly as the original code truncates them."""
    if resolution <= 32:
        return int(512 * narrow)
    return int((16384 // resolution) * channel_multiplier * narrow)


def make_kernel(taps: Sequence[float] = BLUR_KERNEL, gain: float = 1.0) -> Tensor:
    """Separable FIR taps → normalised 2-D kernel; ``gain`` restores energy lost to zero-insertion."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum() * gain


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Zero-insertion upsample by ``up``, pad (before, after) on both axes, then FIR filter.

    Filtering is a true convolution (kernel flipped), as in the original CUDA op; the
    GPEN kernels are symmetric so the flip only matters for fidelity of the definition.
    """
    n, c, h, w = x.shape
    if up > 1:
        upsampled = x.new_zeros(n, c, h * up, w * up)
        upsampled[:, :, ::up, ::up] = x
        x = upsampled
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=c)


def fused_leaky_relu(x: Tensor, bias: Tensor) -> Tensor:
    """Bias, leaky ReLU(0.2), then ×√2 to keep unit variance (StyleGAN2's fused op)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), LEAKY_SLOPE) * LEAKY_GAIN


class PixelNorm(nn.Module):
    """Normalise each latent vector to unit RMS before the mapping MLP."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    """Learned per-channel bias + scaled leaky ReLU (key ``...activate.bias``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias)


class Blur(nn.Module):
    """FIR low-pass with fixed padding; the kernel is a buffer because checkpoints store it."""

    def __init__(self, pad: tuple[int, int], gain: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(gain=gain))
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """×2 zero-insertion + blur, used on the RGB skip path."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(gain=factor**2))
        p = len(BLUR_KERNEL) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class EqualConv2d(nn.Module):
    """Conv whose weights are stored N(0,1) and scaled by 1/√fan_in at run time (equalised lr)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear layer with run-time weight scaling; ``lr_mul`` also scales the bias (mapping MLP)."""

    def __init__(
        self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        if self.activate:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


class ConvLayer(nn.Sequential):
    """Encoder conv: [blur →] EqualConv2d (stride 2 when downsampling) → FusedLeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False) -> None:
        layers: list[nn.Module] = []
        if downsample:
            p = len(BLUR_KERNEL) - 2 + kernel_size - 1
            layers.append(Blur(pad=((p + 1) // 2, p // 2)))
            layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride=2, bias=False))
        else:
            layers.append(EqualConv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False))
        layers.append(FusedLeakyReLU(out_channels))
        super().__init__(*layers)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 conv: per-sample weights = weight × style, optionally demodulated to unit norm.

    Upsampling is a stride-2 transposed conv followed by the [1,3,3,1] blur.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        if upsample:
            p = len(BLUR_KERNEL) - 2 - (kernel_size - 1)
            self.blur = Blur(pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)

    def modulated_weight(self, style: Tensor) -> Tensor:
        """Per-sample kernels, N×out×in×k×k."""
        batch = style.shape[0]
        s = self.modulation(style).view(batch, 1, self.in_channels, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.out_channels, 1, 1, 1)
        return weight

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        k = self.kernel_size
        weight = self.modulated_weight(style)
        x = x.reshape(1, batch * self.in_channels, height, width)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(batch * self.in_channels, self.out_channels, k, k)
            out = F.conv_transpose2d(x, weight, stride=2, groups=batch)
            out = out.view(batch, self.out_channels, *out.shape[2:])
            return self.blur(out)
        weight = weight.reshape(batch * self.out_channels, self.in_channels, k, k)
        out = F.conv2d(x, weight, padding=self.padding, groups=batch)
        return out.view(batch, self.out_channels, *out.shape[2:])


class ConcatInjection(nn.Module):
    """GPEN's replacement for noise injection: ``cat([x, weight·feature])`` along channels.

    ``feature`` is the encoder map of the same resolution; when it is ``None`` (generator
    levels above the encoder's input size) Gaussian noise of x's shape is drawn, from
    ``generator`` when one is given so results can be reproduced.
    """

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, feature: Tensor | None, generator: torch.Generator | None = None) -> Tensor:
        if feature is None:
            feature = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return torch.cat([x, self.weight * feature], dim=1)


class StyledConv(nn.Module):
    """ModulatedConv2d → concatenate the injected feature → FusedLeakyReLU over both halves."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, upsample=upsample)
        self.noise = ConcatInjection()
        self.activate = FusedLeakyReLU(2 * out_channels)

    def forward(
        self, x: Tensor, style: Tensor, feature: Tensor | None, generator: torch.Generator | None = None
    ) -> Tensor:
        return self.activate(self.noise(self.conv(x, style), feature, generator))


class ToRGB(nn.Module):
    """1×1 modulated conv to RGB (no demodulation), added to the upsampled previous skip."""

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    """The learned 4×4 map the generator starts from."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.repeat(batch, 1, 1, 1)
