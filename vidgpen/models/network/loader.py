"""Load any GPEN checkpoint of the official layout, with the config read from its shapes.

Released files differ only in wrapping (raw state_dict, ``{"g_ema": ...}``,
``{"state_dict": ...}``, a DataParallel ``module.`` prefix) and in whether the constant
blur ``kernel`` buffers were saved; everything else must match :class:`GPEN` exactly and
is loaded with ``strict=True``. Files are read with ``weights_only=True`` so a checkpoint
can never run code. Every failure is one :class:`WeightsError` line naming the file.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from vidgpen.errors import WeightsError, first_line
from vidgpen.models.network.gpen import GPEN, GPENConfig
from vidgpen.weights.registry import resolve_source

StateDict = dict[str, Tensor]

_WRAPPERS = ("g_ema", "state_dict")
_PREFIX = "module."
_SHOWN = 3  # keys listed in a "not a GPEN" message
_REQUIRED = ("final_linear.0.weight", "generator.input.input", "ecd0.0.0.weight", "generator.style.1.weight")


def read_state_dict(path: Path) -> StateDict:
    """The checkpoint's tensors, unwrapped and without a ``module.`` prefix."""
    return _unwrapped(_torch_load(path), path)


def _unwrapped(obj: object, path: Path) -> StateDict:
    for key in _WRAPPERS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{path}: not a GPEN checkpoint (holds {_describe(obj)}, not a state_dict)")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, Tensor)}
    others = [k for k in obj if k not in tensors]
    if others:
        raise WeightsError(f"{path}: not a GPEN checkpoint (a dict with non-tensor entries: {_few(others)})")
    if all(k.startswith(_PREFIX) for k in tensors):
        tensors = {k[len(_PREFIX) :]: v for k, v in tensors.items()}
    return tensors


def _torch_load(path: Path) -> object:
    """torch.load, with its many failure modes turned into 'not torch' / 'truncated' / 'corrupt'."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc.strerror})") from None
    if not head:
        raise WeightsError(f"{path}: empty file, not a torch checkpoint")
    if head.startswith(b"PK"):  # torch ≥1.6 zip format: the index sits at the end
        try:
            with zipfile.ZipFile(path) as z:
                if not any(n.endswith("data.pkl") for n in z.namelist()):
                    raise WeightsError(f"{path}: not a torch file (a zip archive without data.pkl)")
                # torch does not check the records' CRCs; no sha256 is published for the GPEN
                # files, so this is what catches a download damaged in the middle.
                damaged = z.testzip()
        except zipfile.BadZipFile:
            raise WeightsError(f"{path}: truncated or corrupt torch checkpoint (incomplete zip archive)") from None
        if damaged is not None:
            raise WeightsError(f"{path}: corrupt torch checkpoint (checksum mismatch in {damaged})")
    elif head[0] != 0x80:  # the legacy format starts with a pickle protocol opcode
        raise WeightsError(f"{path}: not a torch file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, struct.error, zipfile.BadZipFile):  # ran out of bytes mid-record
        raise WeightsError(f"{path}: truncated torch checkpoint") from None
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "truncated" in text:
            raise WeightsError(f"{path}: truncated torch checkpoint") from None
        if "Weights only load failed" in text:
            refused = "holds Python objects besides tensors; refused (loaded with weights_only=True)"
            raise WeightsError(f"{path}: {refused}") from None
        raise WeightsError(f"{path}: not a torch file ({first_line(text)})") from None
    except Exception as exc:  # torch raises many types for damaged files; all mean the same here
        raise WeightsError(f"{path}: truncated or corrupt torch checkpoint ({first_line(str(exc))})") from None


def infer_config(state_dict: StateDict, name: str = "checkpoint") -> GPENConfig:
    """Read size, in_size, style_dim, n_mlp, narrow and channel_multiplier from tensor shapes.

    ``name`` (usually the file) prefixes error messages. The result is only a guess
    from a few keys; :func:`check_layout` confirms every key and shape against it.
    """
    missing = [k for k in _REQUIRED if k not in state_dict]
    if missing:
        raise WeightsError(f"{name}: not a GPEN checkpoint (missing {_few(missing)}; has {_few(state_dict)})")
    n_encoder = _count(state_dict, r"ecd(\d+)\.")
    n_to_rgbs = _count(state_dict, r"generator\.to_rgbs\.(\d+)\.")
    in_size = 2 ** (n_encoder + 1)
    size = 2 ** (n_to_rgbs + 2)
    style_dim = _dim(state_dict, "final_linear.0.weight", 0, name)
    n_mlp = _count(state_dict, r"generator\.style\.(\d+)\.weight", start=1)
    narrow: float = _dim(state_dict, "generator.input.input", 1, name) / 512
    channel_multiplier: float = 2
    if size >= 64:  # channels at 64×64 and above depend on the multiplier
        ch64 = _dim(state_dict, "generator.to_rgbs.3.conv.weight", 2, name) // 2
        channel_multiplier = ch64 / (256 * narrow)
    return GPENConfig(
        size=size,
        style_dim=style_dim,
        n_mlp=n_mlp,
        channel_multiplier=_int_if_whole(channel_multiplier),
        narrow=_int_if_whole(narrow),
        in_size=None if in_size == size else in_size,
    )


def _dim(state_dict: StateDict, key: str, axis: int, name: str) -> int:
    if key not in state_dict:
        raise WeightsError(f"{name}: not a GPEN checkpoint (missing {key})")
    shape = state_dict[key].shape
    if len(shape) <= axis or shape[axis] == 0:
        raise WeightsError(f"{name}: unsupported shape {list(shape)} for {key}")
    return int(shape[axis])


def _int_if_whole(value: float) -> float:
    return int(value) if float(value).is_integer() else value


def _count(state_dict: StateDict, pattern: str, start: int = 0) -> int:
    """Number of consecutive indices ``start, start+1, ...`` present for a numbered module."""
    found = {int(m.group(1)) for k in state_dict if (m := re.match(pattern, k))}
    n = 0
    while start + n in found:
        n += 1
    return n


def check_layout(state_dict: StateDict, config: GPENConfig, name: str = "checkpoint") -> None:
    """Every key and shape must be what ``GPEN(config)`` has; only ``kernel`` buffers may be absent."""
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in GPEN.from_config(config).state_dict().items()}
    except ValueError as exc:
        raise WeightsError(f"{name}: unsupported GPEN layout ({exc})") from None
    missing = [k for k in expected if k not in state_dict and not k.endswith(".kernel")]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = [f"missing {_few(missing)}" if missing else "", f"unexpected {_few(unexpected)}" if unexpected else ""]
        layout = f"GPEN-{config.size}" + (f" from {config.in_size}" if config.in_size else "")
        raise WeightsError(f"{name}: not a GPEN checkpoint ({layout} layout: {'; '.join(p for p in parts if p)})")
    for key, shape in expected.items():
        if key in state_dict and tuple(state_dict[key].shape) != shape:
            got = tuple(state_dict[key].shape)
            raise WeightsError(
                f"{name}: unsupported shape {list(got)} for {key} (GPEN {_describe_config(config)} needs {list(shape)})"
            )


def torch_file_keys(path: Path) -> list[str] | None:
    """The tensor names of a torch file, read memory-mapped (milliseconds for GPEN-2048); None
    when it is not a torch zip checkpoint holding tensors by name (the loader says what it is)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint, damaged, or not torch at all
        return None
    for key in _WRAPPERS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    names = [k.removeprefix(_PREFIX) for k, v in obj.items() if isinstance(k, str) and isinstance(v, Tensor)] \
        if isinstance(obj, dict) else []
    return names or None


def looks_like_gpen(path: Path) -> bool:
    """Whether ``path`` is a GPEN checkpoint by its content: a torch file with GPEN's encoder and
    generator tensors. A torch-looking file too damaged to list its tensors counts as one, so
    the loader's own message (truncated, corrupt) reaches the user."""
    try:
        with open(path, "rb") as file:
            head = file.read(2)
    except OSError:
        return False
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):
        return False
    keys = torch_file_keys(path)
    return keys is None or (any(k.startswith("generator.") for k in keys) and any(k.startswith("ecd0.") for k in keys))


def checkpoint_sides(path: Path) -> tuple[int, int]:
    """(input, output) face side of a checkpoint from its tensor shapes, its data memory-mapped, not
    read: picking among GPEN-2048 and friends up front costs milliseconds, not a full load."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint (legacy format, damaged file): the full reader says why
        obj = None
    state_dict = _unwrapped(obj, path) if isinstance(obj, dict) else read_state_dict(path)
    config = infer_config(state_dict, str(path))
    return config.in_size or config.size, config.size


def inspect_checkpoint(path: Path) -> GPENConfig:
    """Read and check a checkpoint without building the model; returns its config."""
    return _checked(path)[1]


def _checked(path: Path) -> tuple[StateDict, GPENConfig]:
    state_dict = read_state_dict(path)
    config = infer_config(state_dict, str(path))
    check_layout(state_dict, config, str(path))
    return state_dict, config


def load_gpen(
    source: str | os.PathLike[str],
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> GPEN:
    """A GPEN in eval mode from a checkpoint path or a registry name (downloaded if missing).

    ``device``/``dtype`` default to CPU float32 (the checkpoint's own precision).
    """
    state_dict, config = _checked(resolve_source(source))
    model = GPEN.from_config(config)
    kernels = {k: v for k, v in model.state_dict().items() if k.endswith(".kernel")}
    model.load_state_dict({**kernels, **state_dict}, strict=True)
    return model.to(device=device, dtype=dtype).eval()


def _describe_config(config: GPENConfig) -> str:
    return ", ".join(f"{k}={v}" for k, v in vars(config).items() if v is not None)


def _describe(obj: object) -> str:
    return "an empty dict" if isinstance(obj, dict) else f"a {type(obj).__name__}"


def _few(keys: object) -> str:
    keys = list(keys)  # type: ignore[call-overload]
    shown = ", ".join(str(k) for k in keys[:_SHOWN])
    return shown + (f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")


