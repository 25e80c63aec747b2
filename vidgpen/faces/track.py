"""Assign detections to face tracks across frames, with stable ids.

Matching is a linear assignment (Hungarian, scipy) on a cost mixing box overlap and
landmark distance, both measured against where each track is predicted to be from its
recent velocity: that keeps ids when faces cross or move fast. A track survives a few
detection runs without a match (occlusion, a missed detection, frames between runs when
detecting every N frames); a shot cut ends all tracks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from vidgpen.faces.detect import Detection

_NO_MATCH = 1e6


@dataclass
class Track:
    id: int
    born: int  # sequence number of the first frame
    history: deque[tuple[int, Detection]] = field(default_factory=deque)  # recent detections, oldest first
    # Landmarks registered at frames between detection runs (faces.register), oldest first.
    between: deque[tuple[int, np.ndarray]] = field(default_factory=deque)
    hits: int = 1  # detections matched so far (the history only keeps recent ones)
    missed: int = 0  # detection runs without a match since the last one
    ended_at: int | None = None  # frame from which the track no longer exists (a cut)
    person: str | None = None  # set once, when the run links tracks into persons (faces.persons)
    keep: bool = True  # whether its person is restored (selection by person id or photo)

    @property
    def last_seen(self) -> int:
        return self.history[-1][0]

    def predict(self, frame_no: int) -> tuple[np.ndarray, np.ndarray]:
        """(box, landmarks) expected at ``frame_no``, moving at the last observed velocity."""
        f2, d2 = self.history[-1]
        lm = d2.landmarks.astype(np.float64)
        if len(self.history) >= 2:
            f1, d1 = self.history[-2]
            velocity = (lm - d1.landmarks) / max(f2 - f1, 1)
            shift = velocity.mean(0) * (frame_no - f2)
            return d2.box + np.tile(shift, 2), lm + velocity * (frame_no - f2)
        return d2.box.astype(np.float64), lm


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


class Tracker:
    """Online tracker; ``max_missed`` counts detection runs a track may go unmatched."""

    def __init__(self, max_missed: int = 5, landmark_weight: float = 1.0, max_cost: float = 1.5):
        self.max_missed = max_missed
        self.landmark_weight = landmark_weight
        self.max_cost = max_cost
        self.live: dict[int, Track] = {}
        self._next_id = 0

    def _cost(self, track: Track, frame_no: int, det: Detection) -> float:
        box, lm = track.predict(frame_no)
        overlap = iou(box, det.box)
        scale = max(np.sqrt((box[2] - box[0]) * (box[3] - box[1])), 1.0)
        distance = float(np.linalg.norm(lm - det.landmarks, axis=1).mean() / scale)
        if overlap < 0.05 and distance > 0.5:
            return _NO_MATCH
        return (1.0 - overlap) + self.landmark_weight * distance

    def update(self, frame_no: int, detections: list[Detection]) -> list[Track]:
        """Match one detection run; returns the tracks that start here (new ids)."""
        tracks = list(self.live.values())
        matched_tracks: set[int] = set()
        matched_dets: set[int] = set()
        if tracks and detections:
            cost = np.array([[self._cost(t, frame_no, d) for d in detections] for t in tracks])
            for ti, di in zip(*linear_sum_assignment(cost)):
                if cost[ti, di] <= self.max_cost:
                    tracks[ti].history.append((frame_no, detections[di]))
                    tracks[ti].missed = 0
                    tracks[ti].hits += 1
                    matched_tracks.add(ti)
                    matched_dets.add(di)
        for ti, track in enumerate(tracks):
            if ti not in matched_tracks:
                track.missed += 1
                if track.missed > self.max_missed:
                    del self.live[track.id]
        born = []
        for di, det in enumerate(detections):
            if di not in matched_dets:
                track = Track(self._next_id, frame_no, deque([(frame_no, det)]))
                self._next_id += 1
                self.live[track.id] = track
                born.append(track)
        return born

    def end_all(self, frame_no: int) -> None:
        """A shot cut at ``frame_no``: no track continues into it."""
        for track in self.live.values():
            track.ended_at = frame_no
        self.live.clear()
