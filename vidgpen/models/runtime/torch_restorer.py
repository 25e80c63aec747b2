"""GPEN in torch: a checkpoint of the official layout on one device and dtype.

The ``gpen-torch`` kind of :mod:`vidgpen.models.runtime.factory`. The fast forward
(:class:`~vidgpen.models.network.gpen_fast.FastGPEN`) runs on the same weights as the reference
module; ``torch.compile`` is opt-in (:mod:`vidgpen.models.runtime.compiled`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from vidgpen.models.network.gpen import GPEN
from vidgpen.models.network.gpen_fast import FastGPEN
from vidgpen.models.network.loader import load_gpen, resolve_source
from vidgpen.models.runtime.device import DeviceLike, DtypeLike, resolve_device, resolve_dtype
from vidgpen.models.runtime.restorer import faces_to_input, output_to_faces, restore_in_chunks, shared_per_file
from vidgpen.models.temporal.fusion import FaceKey, TemporalFusion, track_noise

CPU_PER_FACE_FROM = 512


class FaceRestorer:
    """A GPEN model moved to one device/dtype, run in chunks of ``batch_size`` faces.

    Chunking bounds GPU memory independently of how many faces a frame batch holds.
    The model is moved and cast in place (``nn.Module.to``): the restorer owns it.
    ``fast`` runs :class:`FastGPEN` on the same weights (same outputs to float rounding,
    2–5× faster on CPU); ``fast=False`` runs the reference module. ``compile`` wraps the
    forward in ``torch.compile`` (CUDA graphs on GPUs; see :mod:`vidgpen.models.runtime.compiled`).
    """

    def __init__(
        self,
        model: GPEN,
        device: DeviceLike = None,
        dtype: DtypeLike = None,
        batch_size: int = 8,
        fast: bool = True,
        compile: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.fast_gpen = FastGPEN(self.model)  # restore_tracked's encode/decode halves, even with fast=False
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.fast_gpen if fast else self.model
        if fast and self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes per model: let cuDNN pick the fastest algorithms
        # On the CPU, batching large faces buys no speed (the fast path already runs per-face
        # kernels at high resolution) but multiplies activation memory: GPEN-512 peaks at
        # 1.1 GB for one face and 3.5 GB for eight, and eight GPEN-2048 faces would not fit
        # in 24 GB. So faces of CPU_PER_FACE_FROM px and up run one at a time there.
        self.batch_size = 1 if self.device.type == "cpu" and self.in_size >= CPU_PER_FACE_FROM else batch_size
        self._encode, self._decode = self.fast_gpen.encode, self.fast_gpen.decode
        if compile:
            from vidgpen.models.runtime.compiled import CompiledForward  # imports Inductor: only when asked for

            self.forward = CompiledForward(self.forward, self.device, self.batch_size)
            self._encode = CompiledForward(self._encode, self.device, self.batch_size, keep_outputs=True)
            self._decode = CompiledForward(self._decode, self.device, self.batch_size)

    @classmethod
    def load(
        cls,
        source: str | os.PathLike[str],
        device: DeviceLike = None,
        dtype: DtypeLike = None,
        batch_size: int = 8,
        fast: bool = True,
        compile: bool = False,
    ) -> FaceRestorer:
        """From a checkpoint path or registry name (see :func:`load_gpen`).

        Weights are shared: loading the same unchanged file for the same device and dtype
        again (another video of a batch, another thread) reuses the model in memory.
        """
        path = resolve_source(source).resolve()
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        model = _shared_model(path, dev, dt)
        return cls(model, device=dev, dtype=dt, batch_size=batch_size, fast=fast, compile=compile)

    @property
    def in_size(self) -> int:
        """Input face side."""
        return self.model.in_size

    @property
    def out_size(self) -> int:
        """Output face side (> ``in_size`` only for super-resolution layouts)."""
        return self.model.out_size

    def restore(self, faces: np.ndarray | torch.Tensor, precise: bool = False) -> np.ndarray:
        """uint8 RGB N×in×in×3 (array or tensor, any device) → uint8 RGB N×out×out×3
        (``precise``: float32 in [0, 255], unrounded)."""
        with torch.inference_mode():
            return restore_in_chunks(faces, self.in_size, self.out_size, self.batch_size,
                                     lambda chunk, start, exact: self._run(chunk, exact), precise)

    def restore_tracked(self, faces: np.ndarray | torch.Tensor, keys: Sequence[FaceKey],
                        fusion: TemporalFusion | None, precise: bool = False) -> np.ndarray:
        """:meth:`restore` for faces in frame order with their track keys.

        Super-resolution levels get fixed noise per track. With ``fusion``, each face's
        encoder outputs are fused with its track's state between the batched encode and the
        batched decode. Faces whose key is ``prime`` are only encoded and fused (rows left 0).
        """
        if len(keys) != len(faces):
            raise ValueError(f"{len(keys)} track keys for {len(faces)} faces")
        def run(chunk: torch.Tensor, start: int, exact: bool) -> torch.Tensor:
            return self._run_tracked(chunk, keys[start : start + len(chunk)], fusion, exact)

        with torch.inference_mode():
            return restore_in_chunks(faces, self.in_size, self.out_size, self.batch_size, run, precise)

    def _run(self, chunk: torch.Tensor, precise: bool = False) -> torch.Tensor:
        return output_to_faces(self.forward(self._input(chunk)), precise=precise)

    def _input(self, chunk: torch.Tensor) -> torch.Tensor:
        return faces_to_input(chunk.to(self.device, non_blocking=True)).to(self.dtype)

    def _run_tracked(self, chunk: torch.Tensor, keys: Sequence[FaceKey], fusion: TemporalFusion | None,
                     precise: bool = False) -> torch.Tensor:
        code, features = self._encode(self._input(chunk))
        if fusion is not None:
            for i, key in enumerate(keys):  # frame order: each face is fused after its track's previous one
                fusion.fuse(key, code[i], [feature[i] for feature in features])
        out = torch.zeros((len(keys), self.out_size, self.out_size, 3), dtype=torch.float32 if precise else torch.uint8)
        kept = [i for i, key in enumerate(keys) if not key.prime]
        if kept:
            if len(kept) < len(keys):
                code, features = code[kept], [feature[kept] for feature in features]
            if self.model.n_noise_levels:  # per-track noise generators: eager
                faces = self.fast_gpen.decode(code, features, track_noise([keys[i] for i in kept], self.device))
            else:
                faces = self._decode(code, features)
            out[kept] = output_to_faces(faces, precise=precise).cpu()
        return out


@shared_per_file
def _shared_model(path: Path, device: torch.device, dtype: torch.dtype) -> GPEN:
    return load_gpen(path, device=device, dtype=dtype)
