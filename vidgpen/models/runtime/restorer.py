"""What every restorer is to the pipeline, and the helpers all runtimes share.

The pipeline needs only the :class:`Restorer` protocol (``in_size``, ``out_size`` and
``restore``), so GPEN in torch (:mod:`vidgpen.models.runtime.torch_restorer`), an ONNX session
(:mod:`vidgpen.models.runtime.onnx_restorer`) or a test double can stand in; the factory
(:mod:`vidgpen.models.runtime.factory`) builds the right one from a model's kind. This module
imports no runtime, so none of them imports another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
import torch

from vidgpen.models.temporal.fusion import FaceKey, TemporalFusion
from vidgpen.weights.spec import GPEN_IO, Normalisation

T = TypeVar("T")


@runtime_checkable
class Restorer(Protocol):
    """What the pipeline calls.

    ``in_size``: the side of the aligned faces it takes; ``out_size``: the side it returns
    (larger than ``in_size`` for super-resolution models: paste-back scales by
    ``out_size / in_size``). ``restore(faces)`` maps uint8 RGB N×in_size×in_size×3 to uint8 RGB
    N×out_size×out_size×3. vidgpen's restorers also take ``precise=True``: float32 RGB in
    [0, 255], not rounded, for frames deeper than 8 bits.
    """

    @property
    def in_size(self) -> int: ...

    @property
    def out_size(self) -> int: ...

    def restore(self, faces: np.ndarray | torch.Tensor) -> np.ndarray: ...


@runtime_checkable
class TrackedRestorer(Restorer, Protocol):
    """A restorer that also takes each face's track, for ``--deflicker``
    (see :meth:`~vidgpen.models.runtime.torch_restorer.FaceRestorer.restore_tracked`)."""

    def restore_tracked(self, faces: np.ndarray | torch.Tensor, keys: Sequence[FaceKey],
                        fusion: TemporalFusion | None, precise: bool = False) -> np.ndarray: ...


def restore_in_chunks(
    faces: np.ndarray | torch.Tensor,
    in_size: int,
    out_size: int,
    batch_size: int,
    run: Callable[[torch.Tensor, int, bool], torch.Tensor],
    precise: bool = False,
) -> np.ndarray:
    """Check uint8 RGB N×in_size×in_size×3 faces and map them through ``run`` ``batch_size`` at a time.

    ``run(chunk, start, precise)`` takes a uint8 chunk (a view of the input, on its device)
    and its first row's index in ``faces`` (to find per-face data such as track keys), and returns RGB NHWC faces, uint8 or (``precise``) float32 in [0, 255]. Every runtime
    shares this so chunking and validation cannot drift.
    """
    # One array first: torch copies a list of arrays element by element (a 512² face ~0.1 s).
    batch = torch.from_numpy(np.ascontiguousarray(np.asarray(faces)))
    if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[1:] != (in_size, in_size, 3):
        raise ValueError(f"faces must be uint8 N×{in_size}×{in_size}×3, got {batch.dtype} {tuple(batch.shape)}")
    out = np.empty((batch.shape[0], out_size, out_size, 3), dtype=np.float32 if precise else np.uint8)
    for start in range(0, batch.shape[0], batch_size):
        chunk = batch[start : start + batch_size]
        out[start : start + len(chunk)] = run(chunk, start, precise).cpu().numpy()
    return out


def faces_to_input(faces: torch.Tensor, io: Normalisation = GPEN_IO) -> torch.Tensor:
    """uint8 RGB N×S×S×3 → float32 N×3×S×S in the network's range (GPEN: RGB in [-1, 1])."""
    x = faces.permute(0, 3, 1, 2)
    if io.bgr:
        x = x.flip(1)
    return x.float() / (255.0 / (io.high - io.low)) + io.low  # GPEN: x / 127.5 - 1, exactly


def output_to_faces(output: torch.Tensor, io: Normalisation = GPEN_IO, precise: bool = False) -> torch.Tensor:
    """The network's N×3×S×S output (unclamped, any float dtype) → uint8 RGB N×S×S×3, clamped and
    rounded; ``precise``: float32 in [0, 255], not rounded (for frames deeper than 8 bits)."""
    y = output.float().clamp(io.low, io.high)  # not in place: a compiled forward's output is its graph's buffer
    if io.bgr:
        y = y.flip(1)
    rgb = ((y - io.low) * (255.0 / (io.high - io.low))).permute(0, 2, 3, 1)
    return rgb if precise else rgb.round().to(torch.uint8)


def shared_per_file(load: Callable[..., T]) -> Callable[..., T]:
    """Cache ``load(path, *args)`` per file, its size and mtime, and args, behind one lock.

    Batch threads (or Ray tasks on one worker) that start together then load a model once,
    and a file rewritten in place loads afresh. Four entries bound the memory held.
    """
    cached = lru_cache(maxsize=4)(lambda path, stamp, *args: load(path, *args))
    lock = threading.Lock()

    def get(path: Path, *args: object) -> T:
        stat = path.stat()
        with lock:
            return cached(path, (stat.st_size, stat.st_mtime_ns), *args)

    return get
