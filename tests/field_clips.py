"""Interlaced and telecined clips made from real faces (../shared/video), with the progressive
pictures they were made from, so a deinterlacer's output can be measured against the truth.
Nothing here uses vidgpen."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from conftest import SHARED

VIDEOS = SHARED / "video"
_FIELD_ORDERS = {"tff": 2, "bff": 3}  # FFmpeg's AVFieldOrder: AV_FIELD_TT, AV_FIELD_BB
NTSC = Fraction(30000, 1001)


def pictures(name: str, count: int, side: int, skip: int = 0) -> list[np.ndarray]:
    """``count`` RGB frames of ../shared/video/``name`` from frame ``skip`` on, area-scaled to side×side."""
    out = []
    with av.open(str(VIDEOS / name)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= skip:
                out.append(cv2.resize(frame.to_ndarray(format="rgb24"), (side, side), interpolation=cv2.INTER_AREA))
            if len(out) == count:
                break
    return out


def weave(fields: list[np.ndarray], order: str) -> list[np.ndarray]:
    """A true field-rate clip: frame k's first field (even lines for "tff", odd for "bff")
    from picture 2k, its second from picture 2k+1."""
    first = slice(0, None, 2) if order == "tff" else slice(1, None, 2)
    frames = []
    for early, late in zip(fields[::2], fields[1::2]):
        frame = late.copy()
        frame[first] = early[first]
        frames.append(frame)
    return frames


def telecine(film: list[np.ndarray], break_at: int) -> tuple[list[np.ndarray], list[int]]:
    """3:2 pulldown, top field first: film frames give 3, 2, 3, 2... fields, and from film
    frame ``break_at`` on the cadence restarts (two 3-field frames in a row, as after an
    edit). Returns the frames and, per frame, the film frames of its (top, bottom) fields'
    first one."""
    fields: list[int] = []
    for k in range(len(film)):
        phase = k if k < break_at else k + 1
        fields += [k] * (3 if phase % 2 == 0 else 2)
    fields = fields[: len(fields) // 2 * 2]
    frames, sources = [], []
    for top, bottom in zip(fields[::2], fields[1::2]):
        frame = film[bottom].copy()
        frame[0::2] = film[top][0::2]
        frames.append(frame)
        sources.append(top)
    return frames, sources


def write(path: Path, frames: list[np.ndarray], fps: Fraction | int, field_order: str | None = None,
          codec: str = "ffv1") -> Path:
    """Lossless by default, so what is measured is the deinterlacer; ``field_order`` flags
    the stream TFF or BFF (None: no flag, as on many captures)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.time_base = stream.codec_context.time_base = 1 / Fraction(fps)
        if field_order:
            stream.codec_context.field_order = _FIELD_ORDERS[field_order]
        for i, image in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            picture.pts = i
            out.mux(stream.encode(picture))
        out.mux(stream.encode())
    return path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(error, 1e-10)))


def line_doubled(frame: np.ndarray, order: str) -> list[np.ndarray]:
    """The two fields of ``frame`` in time order, each line repeated: the baseline deinterlacer."""
    first, second = (0, 1) if order == "tff" else (1, 0)
    return [np.repeat(frame[parity::2], 2, axis=0)[: frame.shape[0]] for parity in (first, second)]
