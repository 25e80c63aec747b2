"""The restore stage's side of ``--deflicker``: faces go to the restorer with their track keys."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import psutil
import torch

from vidgpen.models.runtime.restorer import Restorer, TrackedRestorer
from vidgpen.models.temporal.fusion import FaceKey, StateBudget, TemporalFusion

FREE_MEMORY_SHARE = 0.25  # --deflicker-memory auto: this share of the device's free memory when the run starts


def auto_state_budget(device: str) -> int:
    """``--deflicker-memory auto`` in bytes: a share of what ``device`` has free (the fusion state
    shares it with GPEN's activations and, on the CPU, the frames in flight)."""
    resolved = torch.device(device)
    if resolved.type == "cuda":
        return int(FREE_MEMORY_SHARE * torch.cuda.mem_get_info(resolved)[0])
    return int(FREE_MEMORY_SHARE * psutil.virtual_memory().available)


class TrackedRestore:
    """Restores batches of faces in frame order, one :class:`TemporalFusion` per model.

    A restorer with ``restore_tracked`` (vidgpen's GPEN) gets each face's key, and the
    fusion when ``strength`` > 0; any other restorer (a plug-in, an ONNX session) restores
    frame by frame and never sees ``prime`` faces.
    """

    def __init__(self, strength: float, frames_per_source_frame: float = 1.0, budget: StateBudget | None = None) -> None:
        self.strength = strength
        self.frames_per_source_frame = frames_per_source_frame  # see TemporalFusion
        self.budget = budget or StateBudget()  # shared by the models' fusions
        self._fusions: dict[str, TemporalFusion] = {}

    def restore(self, model: str, restorer: Restorer, crops: np.ndarray, keys: Sequence[FaceKey],
                precise: bool = False) -> np.ndarray:
        """``restorer`` (the run's ``model``) on ``crops``, each face with its key; ``precise``
        (a frame deeper than 8 bits): unrounded float32 faces when the restorer gives them."""
        if isinstance(restorer, TrackedRestorer):
            extra = {"precise": True} if precise and _takes_precise(restorer.restore_tracked) else {}
            return restorer.restore_tracked(crops, keys, self._fusion(model), **extra)
        kept = [i for i, key in enumerate(keys) if not key.prime]
        extra = {"precise": True} if precise and _takes_precise(restorer.restore) else {}
        out = restorer.restore(crops[kept], **extra)
        if len(kept) == len(keys):
            return out
        full = np.zeros((len(keys), *out.shape[1:]), dtype=out.dtype)
        full[kept] = out
        return full

    def _fusion(self, model: str) -> TemporalFusion | None:
        if self.strength == 0:
            return None
        if model not in self._fusions:
            self._fusions[model] = TemporalFusion(self.strength, self.frames_per_source_frame, self.budget)
        return self._fusions[model]

    @property
    def seconds(self) -> float:
        """Time spent fusing (a part of the restore stage's)."""
        return sum(fusion.seconds for fusion in self._fusions.values())


def _takes_precise(method: object) -> bool:
    """vidgpen's restorers take ``precise``; a plug-in restorer may not."""
    return "precise" in inspect.signature(method).parameters
