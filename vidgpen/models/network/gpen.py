"""GPEN (Yang et al., CVPR 2021): an encoder feeding a StyleGAN2 generator.

This is the *reference* implementation: it follows the arithmetic of the original code
step by step (grouped per-sample convolutions, explicit zero-insertion upsampling) so it
reproduces the released checkpoints' outputs to float32 rounding. Faster variants should
be separate modules tested against this one; the building blocks are importable for that.

Module and parameter names are dictated by the released checkpoints' state_dict keys
(``generator.convs.3.conv.modulation.weight``, ``ecd2.0.1.weight``...), so they load with
``strict=True``; that is why some attributes have terse names.

Layout (``size`` S, ``in_size`` I, usually I == S):

* encoder: ``ecd0`` (1×1 conv at I×I), then ``ecd1``... one blurred stride-2 3×3 conv per
  halving down to 4×4; ``final_linear`` maps the flattened 4×4 features to the style code.
* generator: mapping MLP (PixelNorm + ``n_mlp`` EqualLinear, lr_mul 0.01), a learned 4×4
  constant, then per resolution two StyledConvs and a ToRGB. Where StyleGAN2 adds noise,
  GPEN concatenates ``w·feature`` with the encoder feature of the same resolution (so the
  channels double). Resolutions above I (super-resolution layout) concatenate ``w·noise``
  with fresh Gaussian noise instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from vidgpen.models.network.layers import (
    ConstantInput,
    ConvLayer,
    EqualLinear,
    PixelNorm,
    StyledConv,
    ToRGB,
    channels_at,
)


class StyleGenerator(nn.Module):
    """StyleGAN2 synthesis network with GPEN's concatenated feature injection."""

    def __init__(self, size: int, style_dim: int, n_mlp: int, channel_multiplier: float, narrow: float) -> None:
        super().__init__()
        self.style = nn.Sequential(
            PixelNorm(), *(EqualLinear(style_dim, style_dim, lr_mul=0.01, activate=True) for _ in range(n_mlp))
        )
        ch4 = channels_at(4, channel_multiplier, narrow)
        self.input = ConstantInput(ch4)
        self.conv1 = StyledConv(ch4, ch4, style_dim)
        self.to_rgb1 = ToRGB(2 * ch4, style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch4
        for level in range(3, int(math.log2(size)) + 1):
            out_ch = channels_at(2**level, channel_multiplier, narrow)
            self.convs.append(StyledConv(2 * in_ch, out_ch, style_dim, upsample=True))
            self.convs.append(StyledConv(2 * out_ch, out_ch, style_dim))
            self.to_rgbs.append(ToRGB(2 * out_ch, style_dim))
            in_ch = out_ch

    def forward(
        self, code: Tensor, features: Sequence[Tensor | None], generator: torch.Generator | None = None
    ) -> Tensor:
        """``features[i]`` is injected at resolution 4·2^i (None → noise); one style for all layers."""
        w = self.style(code)
        out = self.conv1(self.input(code.shape[0]), w, features[0], generator)
        skip = self.to_rgb1(out, w)
        for i, to_rgb in enumerate(self.to_rgbs):
            feature = features[i + 1]
            out = self.convs[2 * i](out, w, feature, generator)
            out = self.convs[2 * i + 1](out, w, feature, generator)
            skip = to_rgb(out, w, skip)
        return skip


@dataclass(frozen=True)
class GPENConfig:
    """Constructor arguments of :class:`GPEN`; ``in_size`` None means the same as ``size``."""

    size: int
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: float = 2
    narrow: float = 1.0
    in_size: int | None = None

    @property
    def input_size(self) -> int:
        return self.size if self.in_size is None else self.in_size


def _log2_exact(value: int, what: str) -> int:
    log = int(math.log2(value)) if value > 0 else 0
    if value < 4 or 2**log != value:
        raise ValueError(f"GPEN {what} must be a power of two ≥ 4, got {value}")
    return log


class GPEN(nn.Module):
    """GPEN face restorer: N×3×I×I RGB in [-1, 1] → N×3×S×S RGB (about [-1, 1], not clamped);
    ``in_size`` I and ``out_size`` S (the checkpoints' ``size``).

    ``in_size`` < ``size`` gives the super-resolution layout; its top generator levels
    draw Gaussian noise, from ``model(x, generator=g)``'s ``torch.Generator`` when given
    (it must live on x's device), else from torch's global RNG.
    """

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: float = 2,
                 narrow: float = 1.0, in_size: int | None = None) -> None:
        super().__init__()
        self.config = GPENConfig(size, style_dim, n_mlp, channel_multiplier, narrow, in_size)
        self.out_size = size
        self.in_size = self.config.input_size
        log_out = _log2_exact(size, "size")
        log_in = _log2_exact(self.in_size, "in_size")
        if log_in > log_out:
            raise ValueError(f"GPEN in_size {self.in_size} is larger than size {size}")
        self.generator = StyleGenerator(size, style_dim, n_mlp, channel_multiplier, narrow)
        # Encoder levels: ecd0 at in_size, ecd1 at in_size/2, ..., the last at 4×4.
        self.n_encoder = log_in - 1
        self.n_noise_levels = log_out - log_in
        in_ch = channels_at(self.in_size, channel_multiplier, narrow)
        self.ecd0 = nn.Sequential(ConvLayer(3, in_ch, 1))
        for i in range(1, self.n_encoder):
            out_ch = channels_at(self.in_size >> i, channel_multiplier, narrow)
            setattr(self, f"ecd{i}", nn.Sequential(ConvLayer(in_ch, out_ch, 3, downsample=True)))
            in_ch = out_ch
        self.final_linear = nn.Sequential(EqualLinear(in_ch * 4 * 4, style_dim, activate=True))

    @classmethod
    def from_config(cls, config: GPENConfig) -> GPEN:
        return cls(**asdict(config))

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Style code and the encoder maps, finest first."""
        features = []
        for i in range(self.n_encoder):
            x = getattr(self, f"ecd{i}")(x)
            features.append(x)
        return self.final_linear(x.flatten(1)), features

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != self.in_size or x.shape[3] != self.in_size:
            raise ValueError(f"GPEN-{self.out_size} expects N×3×{self.in_size}×{self.in_size} input, got {tuple(x.shape)}")
        code, features = self.encode(x)
        coarse_to_fine: list[Tensor | None] = [*features[::-1], *([None] * self.n_noise_levels)]
        return self.generator(code, coarse_to_fine, generator)
