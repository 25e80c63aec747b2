"""Flicker of restored faces on clips with known motion (tests/test_deflicker.py, bench/flicker.py).

Each output frame is warped back into the source photo's coordinates by the known motion:
the true face is static there, so the mean absolute change between consecutive frames over
the inner face is flicker. Part of it is the alignment's own jitter moving even a perfectly
steady restored face; :class:`StillRestorer` measures that floor through the same pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vidgpen.faces.align import invert_affine
from vidgpen.models.runtime.restorer import Restorer


def to_photo(frames: Sequence[np.ndarray], motions: np.ndarray, side: int) -> np.ndarray:
    """Every frame warped back into the photo's coordinates (float32, T×side×side×3)."""
    return np.stack([cv2.warpAffine(f.astype(np.float32), invert_affine(m), (side, side), flags=cv2.INTER_LINEAR)
                     for f, m in zip(frames, motions)])


def inner_face(side: int) -> np.ndarray:
    """side×side bool: the eyes-to-chin part of an FFHQ photo of that width."""
    mask = np.zeros((side, side), np.uint8)
    cv2.ellipse(mask, (side // 2, int(side * 0.55)), (side // 5, int(side * 0.26)), 0, 0, 360, 1, -1)
    return mask.astype(bool)


def flicker(photo: np.ndarray, mask: np.ndarray, breaks: Sequence[int] = ()) -> float:
    """Mean |frame-to-frame change| over ``mask``, leaving out the pairs ending at a frame in ``breaks``."""
    changes = [np.abs(photo[t + 1] - photo[t])[mask].mean() for t in range(len(photo) - 1) if t + 1 not in breaks]
    return float(np.mean(changes))


class StillRestorer:
    """Every face becomes the first one ``restorer`` restored: flicker left is the alignment's alone."""

    def __init__(self, restorer: Restorer) -> None:
        self.in_size, self._restorer, self._face = restorer.in_size, restorer, None

    def restore(self, faces: np.ndarray) -> np.ndarray:
        if self._face is None:
            self._face = self._restorer.restore(faces[:1])[0]
        return np.repeat(self._face[None], len(faces), axis=0)
