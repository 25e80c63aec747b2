"""What ``vidgpen inspect`` reports of the face stage: per-frame JSON, overlay drawing, track and
person stats, the persons' contact sheet.

The JSON is written frame by frame, so memory stays bounded however long the video.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

from vidgpen.faces.analyze import AnalyzedFrame
from vidgpen.io.frames import VideoInfo


@dataclass
class TrackStats:
    frames: int = 0
    detected: int = 0
    first: int = 0
    last: int = 0
    sizes: list[float] = field(default_factory=list)


@dataclass
class PersonStats:
    tracks: set[int] = field(default_factory=set)
    frames: int = 0
    first: float = 0.0  # seconds
    last: float = 0.0


@dataclass
class FaceSummary:
    """Shots, tracks, persons and faces per frame, counted frame by frame."""

    tracks: dict[int, TrackStats] = field(default_factory=dict)
    persons: dict[str, PersonStats] = field(default_factory=dict)
    per_frame: list[int] = field(default_factory=list)
    shots: int = 0

    def add(self, item: AnalyzedFrame) -> None:
        self.shots = max(self.shots, item.shot + 1)
        self.per_frame.append(len(item.faces))
        for face in item.faces:
            stats = self.tracks.setdefault(face.track, TrackStats(first=item.frame.index))
            stats.frames += 1
            stats.detected += face.detected
            stats.last = item.frame.index
            stats.sizes.append(float(max(face.box[2] - face.box[0], face.box[3] - face.box[1])))
            if face.person is not None:
                person = self.persons.setdefault(face.person, PersonStats(first=item.frame.time))
                person.tracks.add(face.track)
                person.frames += 1
                person.last = item.frame.time


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def video_json(info: VideoInfo) -> dict[str, Any]:
    out = _jsonable(asdict(info))
    out["display_width"], out["display_height"] = info.display_size
    return out


def _round(a: np.ndarray, digits: int = 3) -> list:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def frame_json(item: AnalyzedFrame, size: int, template: str) -> dict[str, Any]:
    f = item.frame
    return {
        "index": f.index,
        "pts": f.pts,
        "time": round(f.time, 6),
        "shot": item.shot,
        "faces": [
            {
                "track": face.track,
                "person": face.person,
                "box": _round(face.box, 2),
                "score": round(float(face.score), 4),
                "detected": face.detected,
                "landmarks_raw": None if face.landmarks_raw is None else _round(face.landmarks_raw),
                "landmarks": _round(face.landmarks),
                "affine": _round(face.affine(size, template), 6),
            }
            for face in item.faces
        ],
    }


def draw_overlay(item: AnalyzedFrame) -> None:
    image = item.frame.image
    thick = max(1, round(max(image.shape[:2]) / 500))
    for face in item.faces:
        x0, y0, x1, y1 = (round(float(v)) for v in face.box)
        colour = (0, 220, 0) if face.detected else (255, 160, 0)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thick)
        label = str(face.track) if face.person is None else f"{face.track} {face.person}"
        cv2.putText(image, label, (x0, max(y0 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, colour, thick)
        if face.landmarks_raw is not None:
            for x, y in face.landmarks_raw:
                cv2.circle(image, (round(float(x)), round(float(y))), 2 * thick, (255, 40, 40), -1)
        for x, y in face.landmarks:
            cv2.drawMarker(image, (round(float(x)), round(float(y))), (40, 255, 255), cv2.MARKER_CROSS, 6 * thick, thick)
    item.frame.changed = [(0, 0, image.shape[1], image.shape[0])]
    item.frame.deep = None  # the drawing is on the 8-bit image: encode that one


SHEET_COLUMNS = 6
_SHEET_LABEL = 22  # px under each crop for its id


def _sheet_order(ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda pid: int(pid[1:]))


def contact_sheet(portraits: dict[str, tuple[float, np.ndarray]], columns: int = SHEET_COLUMNS) -> np.ndarray:
    """Each person's best crop with its id under it, in id order, as one RGB image."""
    ids = _sheet_order(list(portraits))
    side = max((crop.shape[0] for _, crop in portraits.values()), default=112)
    label = _SHEET_LABEL
    rows = max(1, -(-len(ids) // columns))
    sheet = np.full((rows * (side + label), min(max(len(ids), 1), columns) * side, 3), 255, np.uint8)
    for n, pid in enumerate(ids):
        y, x = (n // columns) * (side + label), (n % columns) * side
        crop = portraits[pid][1]
        sheet[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
        cv2.putText(sheet, pid, (x + 4, y + side + label - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def person_at(ids: list[str], sheet_width: int, x: float, y: float, columns: int = SHEET_COLUMNS) -> str | None:
    """The id whose tile of :func:`contact_sheet` (of persons ``ids``, ``sheet_width`` px wide)
    holds pixel (``x``, ``y``); None between or beyond the tiles."""
    ids, shown = _sheet_order(ids), min(len(ids), columns)
    if not shown:
        return None
    side = sheet_width // shown
    row, column = int(y) // (side + _SHEET_LABEL), int(x) // side
    index = row * columns + column
    return ids[index] if column < shown and 0 <= index < len(ids) else None
