"""Following each track's landmarks between detection runs (``--detect-every N``) by optical flow.

Between runs the smoother would otherwise have to interpolate over N frames, and a real
face does not move on a straight line for long: on bench/landmarks.py's held-out clips
the default's NME at N = 4 was 1.38× that at N = 1 (a posing full-body face moving an eye
distance in two frames). Here each landmark is carried from the previous frame by
pyramidal Lucas–Kanade (OpenCV) inside a crop around the face, checked forwards and
backwards; a point that fails the check is moved with the similarity the others moved by,
and a face with fewer than two good points is left out (the smoother interpolates it, as
before). Each run restarts every track from its detector's landmarks, so flow errors do
not build up over more than N − 1 frames, and a shot cut ends the following.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

MARGIN = 1.5  # crop margin around the landmarks, in eye distances: a fast face stays inside
MAX_ROUND_TRIP = 0.08  # eye distances: a point whose backward flow misses its start by more is lost
_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)


class FlowFollower:
    """Each live track's landmarks in the frame before; :meth:`start` and :meth:`follow` take the frames in order."""

    def __init__(self) -> None:
        self._image: np.ndarray | None = None
        self._shot: int | None = None
        self._frame: int | None = None
        self._points: dict[int, np.ndarray] = {}

    def start(self, image: np.ndarray, shot: int, frame: int, points: Mapping[int, np.ndarray]) -> None:
        """A detection run: each detected track continues from its detector's landmarks."""
        self._image, self._shot, self._frame = image, shot, frame
        self._points = {track: np.asarray(p, np.float32) for track, p in points.items()}

    def follow(self, image: np.ndarray, shot: int, frame: int) -> dict[int, np.ndarray]:
        """Each followed track's (5, 2) landmarks in ``image``, the frame after the last one seen."""
        followed = {}
        if self._image is not None and shot == self._shot and frame == (self._frame or 0) + 1:
            for track, points in self._points.items():
                moved = flow_points(self._image, image, points)
                if moved is not None:
                    followed[track] = moved
        self._image, self._shot, self._frame, self._points = image, shot, frame, followed
        return followed


def flow_points(before: np.ndarray, after: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """``points`` (K, 2) of RGB frame ``before`` carried into ``after`` by Lucas–Kanade; None when lost."""
    eyes = max(float(np.linalg.norm(points[0] - points[1])), 1.0)
    low = np.floor(np.maximum(points.min(0) - MARGIN * eyes, 0)).astype(int)
    high = np.ceil(np.minimum(points.max(0) + MARGIN * eyes, np.array(before.shape[1::-1]) - 1)).astype(int)
    if np.any(high - low < 8):
        return None
    crops = [cv2.cvtColor(np.ascontiguousarray(f[low[1]:high[1] + 1, low[0]:high[0] + 1]), cv2.COLOR_RGB2GRAY)
             for f in (before, after)]
    # The window spans about half an eye distance (the eye, the nose tip, a mouth corner);
    # the pyramid lets it catch a face that moves an eye distance in a frame.
    side = int(np.clip(eyes * 0.6, 7, 31)) | 1
    levels = int(np.clip(np.log2(max(eyes, 1.0) / side * 4), 1, 4))
    start = (points - low).astype(np.float32).reshape(-1, 1, 2)
    forward, found, _ = cv2.calcOpticalFlowPyrLK(*crops, start, None, winSize=(side, side), maxLevel=levels, criteria=_CRITERIA)
    back, found_back, _ = cv2.calcOpticalFlowPyrLK(crops[1], crops[0], forward, None, winSize=(side, side), maxLevel=levels,
                                                   criteria=_CRITERIA)
    round_trip = np.linalg.norm((back - start).reshape(-1, 2), axis=1)
    good = found.ravel().astype(bool) & found_back.ravel().astype(bool) & (round_trip < MAX_ROUND_TRIP * eyes)
    moved = forward.reshape(-1, 2) + low
    if good.sum() < 2:
        return None
    if not good.all():  # the lost points move with the face, by the similarity of the good ones
        similarity, _ = cv2.estimateAffinePartial2D(points[good], moved[good], method=cv2.LMEDS)
        if similarity is None:
            return None
        moved[~good] = points[~good] @ similarity[:, :2].T + similarity[:, 2]
    return moved.astype(np.float32)
