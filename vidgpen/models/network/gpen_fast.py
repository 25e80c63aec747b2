"""A faster forward pass for :class:`~vidgpen.models.network.gpen.GPEN`, reading the same parameters.

The reference module mirrors the original code; this one computes the same function with
less memory traffic, which is what limits GPEN on a CPU (and on a GPU at high resolution):

* channels_last (NHWC) activations throughout: oneDNN/cuDNN convolve them without the
  layout reorders that NCHW costs on every call (about 1.6× per conv on CPU).
* Modulation/demodulation: ``d_o · conv(x · s_i, W)`` equals the reference's per-sample
  kernels. The demodulation norms come from a cached Σ_k W² (O×I) and a small matmul, not
  from the modulated kernels. Where convs are large and batching gains little (CPU levels
  ≥ 128²) ``s`` and ``d`` are folded into one kernel per face (no pass over the
  activations); below that, all faces share one batched conv with ``x · s`` as input.
  The choice hangs on the level alone, never on how many faces share the batch: the two
  forms round differently in bf16 (a face alone moved by up to 4 levels against the same
  face in a batch of eight), and a face must come out the same in a preview or a whole run.
* Upsampling: one stride-2 transposed conv, then the blur as a depthwise conv carrying the
  bias. (Pre-blurring the kernel into a 6×6 transposed conv is exact too but costs 4× the
  multiply-adds.) The RGB skip is upsampled by a depthwise transposed conv, no zero-insertion.
* The ``cat([conv, w·feature])`` of each StyledConv is a preallocated buffer whose halves
  are written in place by the activation; the √2 gain of every leaky ReLU is folded into
  the modulation of the layers that read it, so it costs no pass.
* ToRGB and the RGB skip sum run in float32 whatever the model's dtype, and the output is
  float32: in bf16 that path's rounding would land on the face as fresh noise every frame.

Outputs match the reference to float32 rounding (≈1e-5 relative); the super-resolution
noise is drawn in the same order and shapes, so a seeded generator gives the same output.
The derived Σ_k W² tables are buffers computed once from the weights: build a new
FastGPEN if the reference's weights change (moving it with ``.to`` is fine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgpen.models.network.gpen import GPEN, GPENConfig
from vidgpen.models.network.layers import LEAKY_SLOPE, ModulatedConv2d, StyledConv, ToRGB

_GAIN = math.sqrt(2.0)  # the leaky ReLU's output gain, applied by the layers downstream
_CL = torch.channels_last
_CPU_PER_FACE_FROM = 128  # CPU levels from this side up fold the style into per-face kernels
_UPCAST_PIXELS = 2**22  # to_rgb upcasts a bf16/fp16 level this many values at a time (16 MB of float32)
Noise = torch.Generator | Sequence[torch.Generator] | None  # the SR levels' noise: global, batch or per-face


class FastGPEN(nn.Module):
    """GPEN's function with a faster forward; wraps (does not copy) a reference :class:`GPEN`.

    Same call as the reference: ``fast(x, generator=None)``, N×3×I×I in [-1, 1] → N×3×S×S,
    returned in channels_last memory (i.e. NHWC, ready to become an image).
    """

    def __init__(self, model: GPEN) -> None:
        super().__init__()
        self.model = model
        self._styled: list[StyledConv] = [model.generator.conv1, *model.generator.convs]
        for i, layer in enumerate(self._styled):
            weight = layer.conv.weight.detach()[0].float()  # float32 even for half models: it feeds a norm
            self.register_buffer(f"_wsq{i}", weight.square().sum((2, 3)), persistent=False)

    @classmethod
    def from_reference(cls, model: GPEN) -> FastGPEN:
        return cls(model)

    @property
    def out_size(self) -> int:
        return self.model.out_size

    @property
    def in_size(self) -> int:
        return self.model.in_size

    @property
    def config(self) -> GPENConfig:
        return self.model.config

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(*self.encode(x), generator)

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """N×3×I×I in [-1, 1] → (the style code ``w``, N×D; the encoder's maps, fine to coarse).

        These are what GPEN passes from its encoder to its generator, so per-track temporal
        fusion (:mod:`vidgpen.models.temporal.fusion`) works on them. The maps are channels_last
        and carry no √2 gain (``decode`` applies it in the injection).
        """
        model = self.model
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != model.in_size or x.shape[3] != model.in_size:
            raise ValueError(
                f"GPEN-{model.out_size} expects N×3×{model.in_size}×{model.in_size} input, got {tuple(x.shape)}"
            )
        code, features = self._encode(x.contiguous(memory_format=_CL))
        return self.model.generator.style(code), features

    def decode(self, w: Tensor, features: list[Tensor], generator: Noise = None) -> Tensor:
        """The StyleGAN2 generator on :meth:`encode`'s outputs → N×3×S×S float32 (channels_last).

        ``features`` is emptied so each map is freed once used. ``generator`` draws the
        super-resolution levels' noise: one for the batch, or one per face (a fixed seed
        per track gives a face the same noise in every frame).
        """
        model = self.model
        gen = model.generator
        # Coarse to fine; None → noise. Features carry no √2 gain (folded into the injection).
        levels: list[Tensor | None] = [
            *features[::-1],
            *([None] * model.n_noise_levels),
        ]
        features.clear()
        out = self._styled_conv(
            0,
            gen.input(w.shape[0]).contiguous(memory_format=_CL),
            w,
            1.0,
            levels[0],
            generator,
        )
        skip = _to_rgb(gen.to_rgb1, out, w, None)
        for i, to_rgb in enumerate(gen.to_rgbs):
            feature, levels[i + 1] = (
                levels[i + 1],
                None,
            )  # free each encoder map once used
            out = self._styled_conv(2 * i + 1, out, w, _GAIN, feature, generator)
            out = self._styled_conv(2 * i + 2, out, w, _GAIN, feature, generator)
            skip = _to_rgb(to_rgb, out, w, skip)
        return skip

    def _encode(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The reference encoder, each map left without its √2 gain (the reader applies it)."""
        model = self.model
        conv, act = model.ecd0[0]
        x = F.leaky_relu_(F.conv2d(x, conv.weight * conv.scale, act.bias), LEAKY_SLOPE)
        features = [x]
        for i in range(1, model.n_encoder):
            blur, conv, act = getattr(model, f"ecd{i}")[0]
            x = F.conv2d(
                x,
                _depthwise(blur.kernel, x.shape[1]),
                padding=blur.pad[0],
                groups=x.shape[1],
            )
            x = F.conv2d(x, conv.weight * (conv.scale * _GAIN), act.bias, stride=2)
            x = F.leaky_relu_(x, LEAKY_SLOPE)
            features.append(x)
        return model.final_linear(x.flatten(1) * _GAIN), features

    def _styled_conv(
        self,
        index: int,
        x: Tensor,
        w: Tensor,
        gain: float,
        feature: Tensor | None,
        generator: Noise,
    ) -> Tensor:
        """StyledConv ``index`` on ``x`` (whose values are the true input / ``gain``)."""
        layer = self._styled[index]
        conv = layer.conv
        batch, channels = x.shape[0], conv.out_channels
        side = x.shape[2] * (2 if conv.upsample else 1)
        style = conv.modulation(w) * conv.scale  # B×I: the equalised-lr scale rides on the style
        demod = torch.rsqrt(style.float().square() @ getattr(self, f"_wsq{index}").float().t() + 1e-8).to(x.dtype)
        style = style * gain
        bias_conv, bias_feature = (
            layer.activate.bias[:channels],
            layer.activate.bias[channels:],
        )
        # Eager: both halves are activated in place into one preallocated buffer (no concat
        # copy). Under torch.compile (which cannot trace ``out=`` views) they are concatenated
        # and the compiler fuses bias, demodulation, activation and the concat into the producers.
        out = None if torch.compiler.is_compiling() else torch.empty((batch, 2 * channels, side, side), device=x.device, dtype=x.dtype,
                                                 memory_format=_CL)
        if x.device.type == "cpu" and side >= _CPU_PER_FACE_FROM:
            parts = [
                _activate(_conv(conv, x[i : i + 1], _kernel(conv, style[i].view(1, -1) * demod[i].view(-1, 1)),
                                bias_conv), out, slice(i, i + 1), slice(0, channels))
                for i in range(batch)
            ]
        else:
            y = _conv(conv, x * style.view(batch, -1, 1, 1), _kernel(conv, None), None)
            y = torch.addcmul(bias_conv.view(1, -1, 1, 1), y, demod.view(batch, -1, 1, 1))
            parts = [_activate(y, out, slice(None), slice(0, channels))]
            del y
        weight = layer.noise.weight
        if feature is None:  # same shape, dtype and order of draws as the reference
            feature = _noise((batch, channels, side, side), generator, x)
        else:
            weight = weight * _GAIN
        if out is None:
            injected = F.leaky_relu(torch.addcmul(bias_feature.view(1, -1, 1, 1), feature, weight), LEAKY_SLOPE)
            return torch.cat([torch.cat(parts), injected], 1).contiguous(memory_format=_CL)
        injected = out[:, channels:]
        torch.addcmul(bias_feature.view(1, -1, 1, 1), feature, weight, out=injected)
        F.leaky_relu_(injected, LEAKY_SLOPE)
        return out


def _noise(shape: tuple[int, int, int, int], generator: Noise, like: Tensor) -> Tensor:
    """Gaussian noise of ``shape``: from one generator (or the global one), or one per face."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
    return torch.cat([torch.randn((1, *shape[1:]), generator=g, device=like.device, dtype=like.dtype) for g in generator])


def _activate(y: Tensor, out: Tensor | None, rows: slice, cols: slice) -> Tensor:
    """leaky_relu(y) written into ``out[rows, cols]`` (returned), or a new tensor when ``out`` is None."""
    if out is None:
        return F.leaky_relu(y, LEAKY_SLOPE)
    return torch.ops.aten.leaky_relu.out(y, LEAKY_SLOPE, out=out[rows, cols])


def _kernel(conv: ModulatedConv2d, factor: Tensor | None) -> Tensor:
    """The conv's weight × ``factor`` (O×I, or None) in one pass, laid out as its op reads it."""
    weight = conv.weight[0]
    if conv.upsample:  # conv_transpose2d wants I×O×k×k
        weight = weight.transpose(0, 1)
        factor = None if factor is None else factor.t()
    if factor is None:
        return weight.contiguous()
    return torch.mul(weight, factor[:, :, None, None], out=weight.new_empty(weight.shape))


def _conv(conv: ModulatedConv2d, x: Tensor, kernel: Tensor, bias: Tensor | None) -> Tensor:
    """The modulated conv's spatial part with a :func:`_kernel`; upsampling includes the blur."""
    if not conv.upsample:
        return F.conv2d(x, kernel, bias, padding=conv.padding)
    y = F.conv_transpose2d(x, kernel, stride=2)
    pad = conv.blur.pad
    return F.conv2d(
        y,
        _depthwise(conv.blur.kernel, y.shape[1]),
        bias,
        padding=pad[0],
        groups=y.shape[1],
    )


def _to_rgb(layer: ToRGB, x: Tensor, w: Tensor, skip: Tensor | None) -> Tensor:
    """1×1 modulated conv as a matmul over NHWC pixels, plus the upsampled skip: float32 in any dtype.

    In bf16 the RGB path is where the rounding that changes with every frame's input lands on
    the face unfiltered: random GPEN-256 crops fused at the default strength flicker 0.49
    levels in bf16 against 0.36 in float32, 0.40 with this path alone in float32 (the skip sum
    alone: 0.42; the encoder, the style MLP or the last level's convs: ≥ 0.44). It is a few
    MFLOP against GFLOPs of convs. The pixels are upcast in chunks so a GPEN-2048 face needs
    no float32 copy of its last level.
    """
    conv, modulation = layer.conv, layer.conv.modulation
    batch, channels, height, width = x.shape
    style = F.linear(w.float(), modulation.weight.float() * modulation.scale, modulation.bias.float() * modulation.lr_mul)
    kernel = (style * (conv.scale * _GAIN))[:, :, None] * conv.weight[0, :, :, 0, 0].t().float()[None]  # B×C×3
    pixels = x.permute(0, 2, 3, 1).reshape(batch, height * width, channels)  # a view when channels_last
    bias = layer.bias.float().view(1, 3)
    if pixels.dtype == torch.float32 or torch.compiler.is_compiling():
        out = torch.baddbmm(bias[None], pixels.float(), kernel)
    else:
        out = torch.empty((batch, height * width, 3), device=x.device, dtype=torch.float32)
        step = max(1, _UPCAST_PIXELS // channels)
        for i in range(batch):
            for start in range(0, height * width, step):
                rows = slice(start, start + step)
                torch.addmm(bias, pixels[i, rows].float(), kernel[i], out=out[i, rows])
    out = out.view(batch, height, width, 3).permute(0, 3, 1, 2)
    if skip is not None:
        up = layer.upsample
        # upfirdn2d(up=2, pad=(2, 1)) is a stride-2 transposed conv with padding 1 (no zero-insertion).
        out = out.add_(F.conv_transpose2d(skip, _depthwise(up.kernel.float(), 3), stride=2, padding=1, groups=3))
    return out


def _depthwise(kernel: Tensor, channels: int) -> Tensor:
    """A stored FIR kernel as a depthwise conv weight (flipped: upfirdn2d convolves)."""
    return torch.flip(kernel, [0, 1])[None, None].expand(channels, 1, *kernel.shape)
