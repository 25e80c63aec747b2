"""Pick where and in what precision GPEN runs.

"auto" means a CUDA GPU in float16 when one is present (GPEN's activations stay well
inside fp16 range and tensor cores roughly double throughput), otherwise the CPU: in
bfloat16 where it computes bf16 natively (AMX or AVX512-BF16: on a Xeon with AMX GPEN-512
runs 2.8× faster than in fp32, at the quality cost the README's Speed section measures),
in float32 elsewhere (without those instructions oneDNN emulates bf16, slower than fp32).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

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


NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})  # /proc/cpuinfo's names


def has_native_bf16(flags: Iterable[str]) -> bool:
    """Whether a CPU with these feature flags computes bf16 in hardware."""
    return not NATIVE_BF16_FLAGS.isdisjoint(flags)


def cpuinfo_flags(text: str) -> set[str]:
    """The feature flags of ``/proc/cpuinfo``'s text (those of its first processor)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


@cache
def cpu_bf16_native() -> bool:
    """This CPU: torch's own capability query, else the kernel's CPU flags."""
    queries = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(callable(q) for q in queries):
        return any(q() for q in queries)
    try:
        return has_native_bf16(cpuinfo_flags(Path("/proc/cpuinfo").read_text()))
    except OSError:
        return False


def auto_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA; on the CPU bfloat16 where it is native, else float32."""
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_bf16_native() else torch.float32


def resolve_dtype(dtype: DtypeLike, device: torch.device) -> torch.dtype:
    """``None``/"auto" → :func:`auto_dtype`; names like "bf16" or a torch.dtype."""
    if dtype is None or dtype == "auto":
        return auto_dtype(device)
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    elif dtype.lower() in _DTYPES:
        resolved = _DTYPES[dtype.lower()]
    else:
        raise ConfigError(f"dtype: {dtype!r} is not one of auto, {', '.join(_DTYPES)}")
    if not resolved.is_floating_point:
        raise ConfigError(f"dtype: {dtype!r} is not a floating-point type")
    return resolved
