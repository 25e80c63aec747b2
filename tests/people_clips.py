"""Clips of real people for the persons tests: degraded copies of ``../shared/video``.

The reference photo of a person is a clean frame of their video at one moment; the clips
are made from other moments, scaled to 35% and encoded at crf 30, so a match is never a
frame matched with itself.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
from conftest import SHARED

from vidgpen.io.frames import Frame

VIDEO = SHARED / "video"
SCALE = 0.35


@cache
def _clean(name: str, start: int, count: int) -> tuple[np.ndarray, ...]:
    out = []
    with av.open(str(VIDEO / f"{name}.mp4")) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= start + count:
                break
            if index >= start:
                out.append(frame.to_ndarray(format="rgb24"))
    return tuple(out)


def degraded(name: str, start: int, count: int) -> list[np.ndarray]:
    """``count`` frames of ``name`` from ``start``, scaled to 35% (a 512 px clip: 178 px)."""
    h, w = _clean(name, start, 1)[0].shape[:2]
    size = (round(w * SCALE) // 2 * 2, round(h * SCALE) // 2 * 2)
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in _clean(name, start, count)]


def clean_frame(name: str, index: int = 0) -> np.ndarray:
    return _clean(name, index, 1)[0]


def reference_photo(path: Path, name: str, index: int = 0) -> Path:
    """The clean frame ``index`` of ``name`` as a PNG: the person's photo."""
    cv2.imwrite(str(path), clean_frame(name, index)[:, :, ::-1])
    return path


def side_by_side(*clips: list[np.ndarray]) -> list[np.ndarray]:
    """The clips next to each other, each resized to the first one's size."""
    h, w = clips[0][0].shape[:2]
    return [np.hstack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]) for frames in zip(*clips)]


def crossing(first: list[np.ndarray], second: list[np.ndarray], width: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``first`` walks left to right in front of ``second``, which walks right to left and is
    hidden behind it at the crossing. Returns the frames and each clip's left edge per frame
    (frames × 2)."""
    side = first[0].shape[1]
    count = len(first)
    xs = np.stack([np.linspace(0, width - side, count), np.linspace(width - side, 0, count)], 1).round().astype(int)
    frames = []
    for a, b, (xa, xb) in zip(first, second, xs):
        canvas = np.full((a.shape[0], width, 3), 40, np.uint8)
        canvas[:, xb:xb + side] = b
        canvas[:, xa:xa + side] = a
        frames.append(canvas)
    return frames, xs


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10, crf: int = 30) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "veryfast"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        out.mux(stream.encode())
    return path


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def as_frames(images: list[np.ndarray], fps: int = 10) -> list[Frame]:
    return [Frame(index=i, pts=i, time=i / fps, image=image) for i, image in enumerate(images)]
