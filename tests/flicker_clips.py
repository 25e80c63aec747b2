"""Known-motion clips for measuring flicker (tests/test_deflicker_clips.py, bench/flicker.py).

Real FFHQ photos move along known smooth paths with fresh grain and JPEG on every frame
(x264 on top), so each output frame can be warped back into the photo's coordinates, where
the true face is still. A clip can hold several faces and sudden local changes on the
first face, each starting at a known frame: a dark hand over the mouth (from then on), a
blink (a closed-eye version of the photo for a few frames), and a hard cut to other faces.
Flicker leaves out the frame pairs that end at a change; lag and ghosting are measured
around them (:mod:`flicker_measure`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from face_clips import load_face, make_clip, smooth_path
from media import write_video

FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"  # as conftest has it; bench/ imports this too
FPS = 25
PHOTO_PX = 160  # photo width in the frame (the face is about half of it)
_SECOND_SHOT = ("ffhq_00007.png", "ffhq_00001.png")  # the faces after a cut


@dataclass(frozen=True)
class ClipSpec:
    """What a clip holds; frame numbers count from the clip's start."""

    name: str
    photos: tuple[str, ...] = ("ffhq_00003.png",)
    noise: float = 5.0  # grain σ, levels
    jpeg: int = 50  # JPEG quality of every frame
    frames: int = 48  # of the first shot
    hand: int | None = None  # the first face's mouth covered from this frame on
    blink: tuple[int, int] | None = None  # the first face's eyes closed over [start, end)
    cut: int = 0  # frames of a second shot of other faces after a hard cut (0: none)


@dataclass
class FlickerClip:
    spec: ClipSpec
    video: Path
    motions: np.ndarray  # faces × frames × 2 × 3: photo pixels → frame pixels
    events: dict[str, int] = field(default_factory=dict)  # "hand", "blink", "open", "cut" → frame

    @property
    def breaks(self) -> tuple[int, ...]:
        return tuple(self.events.values())

    @property
    def shots(self) -> list[slice]:
        """Spans over which the true face is one still picture (for temporal-mean PSNR)."""
        edges = sorted({0, *self.events.values(), self.motions.shape[1]})
        return [slice(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def covered_mouth(photo: np.ndarray) -> np.ndarray:
    """A dark hand over the mouth (a sudden local change)."""
    out, side = photo.copy(), photo.shape[1]
    cv2.rectangle(out, (side // 3, int(side * 0.66)), (side * 2 // 3, int(side * 0.8)), (70, 55, 50), -1)
    return out


def closed_eyes(photo: np.ndarray) -> np.ndarray:
    """The eyes shut: each eye (FFHQ-aligned: at 37.5% / 62.5% of the width, 47% of the height) is
    replaced by the skin just under it, with a dark lash line across."""
    out, side = photo.copy(), photo.shape[1]
    half_w, half_h = int(side * 0.07), int(side * 0.035)
    for x in (int(side * 0.375), int(side * 0.625)):
        y = int(side * 0.47)
        skin = photo[y + 2 * half_h:y + 4 * half_h, x - half_w:x + half_w].astype(np.float32)
        mask = np.zeros(skin.shape[:2], np.float32)
        cv2.ellipse(mask, (half_w, half_h), (half_w, half_h), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), side * 0.006)[:, :, None]
        patch = out[y - half_h:y + half_h, x - half_w:x + half_w].astype(np.float32)
        out[y - half_h:y + half_h, x - half_w:x + half_w] = (skin * mask + patch * (1 - mask)).astype(np.uint8)
        cv2.line(out, (x - half_w + 2, y + 1), (x + half_w - 2, y + 1), (45, 35, 35), max(1, side // 80))
    return out


def _paths(count: int) -> tuple[list, tuple[int, int]]:
    """Smooth paths for ``count`` faces side by side, each with its own phase, and the frame size."""
    paths = [smooth_path(180 + 300 * i, 130, dx=30, dy=12, angle=5, zoom=0.06, period=40 + 7 * i) for i in range(count)]
    return paths, (60 + 300 * count, 260)


def make_flicker_clip(spec: ClipSpec, folder: Path, seed: int = 0) -> FlickerClip:
    """Render ``spec`` into an x264 file under ``folder``."""
    photos = [load_face(FACES / name, PHOTO_PX) for name in spec.photos]
    paths, size = _paths(len(photos))
    kinds = {"open": photos[0]}
    if spec.hand is not None:
        kinds["hand"] = covered_mouth(photos[0])
    if spec.blink is not None:
        kinds["blink"] = closed_eyes(photos[0])
    grain = dict(noise=spec.noise, jpeg=spec.jpeg)
    renders = {kind: make_clip([(first, paths[0]), *zip(photos[1:], paths[1:])], spec.frames, size, seed=seed,
                               codec=None, **grain) for kind, first in kinds.items()}  # same seed: same grain
    events: dict[str, int] = {}
    frames = []
    for t in range(spec.frames):
        kind = "hand" if spec.hand is not None and t >= spec.hand else "open"
        if spec.blink is not None and spec.blink[0] <= t < spec.blink[1]:
            kind = "blink"
        frames.append(renders[kind].frames[t])
    if spec.hand is not None:
        events["hand"] = spec.hand
    if spec.blink is not None:
        events["blink"], events["open"] = spec.blink
    motions = renders["open"].motions
    if spec.cut:
        others = [load_face(FACES / name, PHOTO_PX) for name in _SECOND_SHOT[:len(photos)]]
        second = make_clip(list(zip(others, paths)), spec.cut, size, seed=seed + 3, codec=None, cut_at=0, **grain)
        events["cut"] = spec.frames
        frames += second.frames
        motions = np.concatenate([motions, second.motions], axis=1)
    video = write_video(folder / f"{spec.name}.mp4", frames, fps=FPS, options={"crf": "20"})
    return FlickerClip(spec, video, motions, events)


# The bench's clips: each grain/compression level with at least one sudden change and a cut.
CLIPS = (
    ClipSpec("grain5-jpeg50-hand-cut", hand=24, cut=24),
    ClipSpec("grain9-jpeg35-blink-cut", noise=9.0, jpeg=35, blink=(20, 24), cut=24),
    ClipSpec("grain12-jpeg30-hand", noise=12.0, jpeg=30, hand=24),
    ClipSpec("grain7-jpeg70-two-faces-blink", photos=("ffhq_00003.png", "ffhq_00005.png"), noise=7.0, jpeg=70,
             blink=(24, 28), cut=16),
)
