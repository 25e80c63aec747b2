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


def region(side: int, event: str) -> np.ndarray:
    """Where an event of :mod:`flicker_clips` changes the face: the mouth, the eyes, or (a cut) the inner face."""
    if event == "cut":
        return inner_face(side)
    mask = np.zeros((side, side), bool)
    if event == "hand":
        mask[int(side * 0.64):int(side * 0.82), side // 3 - 2:side * 2 // 3 + 2] = True
    else:  # blink / open
        mask[int(side * 0.42):int(side * 0.52), int(side * 0.29):int(side * 0.71)] = True
    return mask


def lag(photo: np.ndarray, per_frame: np.ndarray, mask: np.ndarray, at: int) -> int:
    """Frames from ``at`` until the region's mean level is within 1 of the per-frame run's (0: followed at once)."""
    for t in range(at, len(photo)):
        if abs(photo[t][mask].mean() - per_frame[t][mask].mean()) <= 1.0:
            return t - at
    return len(photo) - at


def mean_psnr(photo: np.ndarray, per_frame: np.ndarray, mask: np.ndarray, shots: Sequence[slice]) -> float:
    """The lowest over ``shots`` of the temporal mean's PSNR against the per-frame run's (low: drift or a ghost)."""
    psnrs = []
    for span in shots:
        error = ((photo[span].mean(0) - per_frame[span].mean(0))[mask] ** 2).mean()
        psnrs.append(10 * np.log10(255**2 / max(error, 1e-10)))
    return float(min(psnrs))


def clip_photos(frames: Sequence[np.ndarray], motions: np.ndarray, side: int) -> list[np.ndarray]:
    """Each face of a clip warped back into its photo's coordinates (motions: faces × frames × 2 × 3)."""
    return [to_photo(frames, face_motions, side) for face_motions in motions]


def compare(runs: list[np.ndarray], per_frame: list[np.ndarray], events: dict[str, int], shots: Sequence[slice],
            side: int) -> dict:
    """One run's faces against the per-frame run's: flicker (mean over faces), lag after each event of
    the first face, and the worst temporal-mean PSNR."""
    mask, breaks = inner_face(side), tuple(events.values())
    return dict(flicker=float(np.mean([flicker(face, mask, breaks) for face in runs])),
                lags={event: lag(runs[0], per_frame[0], region(side, event), at) for event, at in events.items()},
                mean_psnr=min(mean_psnr(face, ref, mask, shots) for face, ref in zip(runs, per_frame)))
