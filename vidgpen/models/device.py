"""Pick where and in what precision GPEN runs.

"auto" means a CUDA GPU in float16 when one is present (GPEN's activations stay well
inside fp16 range and tensor cores roughly double throughput), otherwise the CPU in
float32 (CPU half precision is slow and inexact). bfloat16 is selectable for GPUs where
fp16 misbehaves.
"""

from __future__ import annotations

import torch

from vidgpen.errors import ConfigError

DeviceLike = str | torch.device | None
DtypeLike = str | torch.dtype | None

_DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}


def resolve_device(device: DeviceLike = "auto") -> torch.device:
    """``None``/"auto" → cuda if available else cpu; anything else as torch understands it."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device: {device!r} is not a torch device ({exc})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} requested but CUDA is not available in this torch build or machine")
    return resolved


def resolve_dtype(dtype: DtypeLike, device: torch.device) -> torch.dtype:
    """``None``/"auto" → float16 on CUDA, float32 elsewhere; names like "bf16" or a torch.dtype."""
    if dtype is None or dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    elif dtype.lower() in _DTYPES:
        resolved = _DTYPES[dtype.lower()]
    else:
        raise ConfigError(f"dtype: {dtype!r} is not one of auto, {', '.join(_DTYPES)}")
    if not resolved.is_floating_point:
        raise ConfigError(f"dtype: {dtype!r} is not a floating-point type")
    return resolved
