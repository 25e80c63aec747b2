"""Tiny random-weight GPEN checkpoints in the official key layout, for tests.

Weights are random but not degenerate: noise-injection weights and biases are set
non-zero so every path of the network influences the output.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vidgpen.models.network.gpen import GPEN

Wrap = str | None  # None, "g_ema", "state_dict" or "module"


def make_gpen(
    size: int = 64,
    narrow: float = 0.125,
    channel_multiplier: float = 2,
    style_dim: int = 64,
    n_mlp: int = 2,
    in_size: int | None = None,
    seed: int = 0,
) -> GPEN:
    """A small GPEN with seeded random weights (eval mode, float32, CPU)."""
    gen = torch.Generator().manual_seed(seed)
    model = GPEN(size, style_dim, n_mlp, channel_multiplier, narrow, in_size)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("noise.weight"):
                param.copy_(torch.rand(param.shape, generator=gen) * 0.4 + 0.1)
            elif name.endswith("bias"):
                offset = 1.0 if name.endswith("modulation.bias") else 0.0  # as GPEN initialises them
                param.copy_(torch.rand(param.shape, generator=gen) * 0.4 - 0.2 + offset)
            else:
                param.copy_(torch.randn(param.shape, generator=gen))
    return model.eval()


def make_gpen_checkpoint(
    path: Path,
    size: int = 64,
    narrow: float = 0.125,
    channel_multiplier: float = 2,
    style_dim: int = 64,
    n_mlp: int = 2,
    wrap: Wrap = None,
    seed: int = 0,
    in_size: int | None = None,
    drop_kernels: bool = False,
) -> Path:
    """Save :func:`make_gpen`'s state_dict at ``path`` as the released files store it."""
    state = make_gpen(size, narrow, channel_multiplier, style_dim, n_mlp, in_size, seed).state_dict()
    if drop_kernels:
        state = {k: v for k, v in state.items() if not k.endswith(".kernel")}
    if wrap == "module":
        obj: object = {f"module.{k}": v for k, v in state.items()}
    elif wrap in ("g_ema", "state_dict"):
        obj = {wrap: state}
    elif wrap is None:
        obj = state
    else:
        raise ValueError(f"unknown wrap {wrap!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path
