"""Shot-cut detection from colour-histogram change between consecutive frames.

A cut ends every face track: landmarks must never be matched or smoothed across it.
"""

from __future__ import annotations

import cv2
import numpy as np


class ShotDetector:
    """Flags a frame whose hue/saturation/value histogram differs sharply from the previous one.

    Histograms of a small copy ignore motion within the shot (pans, people moving) but
    change wholesale at a cut; the Bhattacharyya distance is in [0, 1].
    """

    def __init__(self, threshold: float = 0.45, bins: tuple[int, int, int] = (16, 8, 8)):
        self.threshold = threshold
        self.bins = bins
        self._previous: np.ndarray | None = None
        self.shot = 0

    def _histogram(self, image_rgb: np.ndarray) -> np.ndarray:
        small = cv2.resize(image_rgb, (160, 90), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(self.bins), [0, 180, 0, 256, 0, 256])
        return cv2.normalize(hist, hist).flatten()

    def update(self, image_rgb: np.ndarray) -> bool:
        """Whether this frame starts a new shot (the first frame does not count as a cut)."""
        if image_rgb.ndim == 2:
            image_rgb = np.repeat(image_rgb[:, :, None], 3, axis=2)
        hist = self._histogram(image_rgb)
        cut = self._previous is not None and cv2.compareHist(self._previous, hist, cv2.HISTCMP_BHATTACHARYYA) > self.threshold
        self._previous = hist
        if cut:
            self.shot += 1
        return cut
