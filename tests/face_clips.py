"""Synthetic clips of real faces moving along known smooth paths, degraded like old footage.

Each face of ``../shared/faces`` is pasted (soft elliptical edge) onto a plain background
with a known similarity per frame (source pixels → frame pixels), then the frame is blurred,
noised, JPEG-compressed and optionally passed through a real video codec. Because the true
motion is known, a tracker/smoother can be scored by how still the aligned crop stays.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from vidgpen.faces.align import (
    apply_affine,
    compose_affine,
    invert_affine,
    template_points,
)
from vidgpen.faces.analyze import AnalyzedFrame, FaceAnalyzer
from vidgpen.faces.detect import Detector
from vidgpen.io.frames import Frame

MotionPath = Callable[[int], tuple[float, float, float, float]]  # t -> (cx, cy, angle_deg, scale)


@dataclass
class Clip:
    frames: list[np.ndarray]  # RGB uint8
    motions: np.ndarray  # (faces, frames, 2, 3): source-face pixels -> frame pixels


def load_face(path: Path, width: int) -> np.ndarray:
    """The image resized so that it is ``width`` pixels wide (FFHQ: face ≈ width / 2)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]
    scale = width / image.shape[1]
    return np.ascontiguousarray(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))


def similarity(src_size: tuple[int, int], cx: float, cy: float, angle: float, scale: float) -> np.ndarray:
    """Source → frame: the source centre goes to (cx, cy), rotated by ``angle``° and scaled."""
    w, h = src_size
    return cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale) + np.array([[0, 0, cx - w / 2], [0, 0, cy - h / 2]])


def smooth_path(cx: float, cy: float, *, dx: float = 50, dy: float = 25, angle: float = 8, zoom: float = 0.1, period: float = 60) -> MotionPath:
    """Sinusoidal pan, tilt and zoom: smooth, with changing direction and speed."""

    def at(t: int) -> tuple[float, float, float, float]:
        p = 2 * np.pi * t / period
        return (cx + dx * np.sin(p), cy + dy * np.sin(0.7 * p + 1), angle * np.sin(0.9 * p + 0.5), 1 + zoom * np.sin(0.6 * p))

    return at


def linear_path(start: tuple[float, float], end: tuple[float, float], frames: int) -> MotionPath:
    def at(t: int) -> tuple[float, float, float, float]:
        a = t / max(frames - 1, 1)
        return (start[0] + a * (end[0] - start[0]), start[1] + a * (end[1] - start[1]), 0.0, 1.0)

    return at


def _soft_ellipse(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, int(h * 0.52)), (int(w * 0.4), int(h * 0.46)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), max(w, h) * 0.03)[:, :, None]


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth coloured gradient with low-frequency blotches (no face-like structure)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([90 + 60 * xx / width, 110 + 40 * yy / height, 120 - 30 * xx / width], -1)
    blotches = cv2.resize(rng.normal(0, 20, (6, 8, 3)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(base + blotches, 0, 255)


def degrade(frame: np.ndarray, rng: np.random.Generator, *, blur: float = 0.8, noise: float = 4.0, jpeg: int = 60) -> np.ndarray:
    out = frame.astype(np.float32)
    if blur:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    out = np.clip(out + rng.normal(0, noise, out.shape), 0, 255).astype(np.uint8)
    if jpeg:
        _, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(out)


def codec_roundtrip(frames: list[np.ndarray], codec: str = "libx264", crf: int = 30) -> list[np.ndarray]:
    """Encode and decode with a real video codec (in memory) to add its artefacts."""
    buf = io.BytesIO()
    h, w = frames[0].shape[:2]
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream(codec, rate=25, options={"crf": str(crf), "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as inp:
        return [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def make_clip(
    faces: list[tuple[np.ndarray, MotionPath]],
    frames: int,
    size: tuple[int, int] = (480, 360),
    *,
    seed: int = 0,
    codec: str | None = "libx264",
    cut_at: int | None = None,
    **degradation,
) -> Clip:
    """Render the faces along their paths; later faces are drawn over earlier ones.

    ``cut_at``: from that frame on, a different background and colour grading (a hard cut).
    """
    width, height = size
    rng = np.random.default_rng(seed)
    backgrounds = [background(width, height, seed), background(width, height, seed + 1)[:, :, ::-1] * 0.6 + 60]
    alphas = [_soft_ellipse(*src.shape[:2]) for src, _ in faces]
    motions = np.zeros((len(faces), frames, 2, 3))
    out = []
    for t in range(frames):
        canvas = backgrounds[1 if cut_at is not None and t >= cut_at else 0].copy()
        for i, ((src, path), alpha) in enumerate(zip(faces, alphas)):
            m = similarity((src.shape[1], src.shape[0]), *path(t))
            motions[i, t] = m
            warped = cv2.warpAffine(src.astype(np.float32), m, size, flags=cv2.INTER_CUBIC)
            a = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR)[:, :, None]
            canvas = canvas * (1 - a) + warped * a
        out.append(degrade(np.clip(canvas, 0, 255).astype(np.uint8), rng, **degradation))
    if codec:
        out = codec_roundtrip(out, codec)
    return Clip(out, motions)


def crop_stability(affines: np.ndarray, motions: np.ndarray, size: int, template: str = "gpen") -> tuple[float, float]:
    """(jitter, drift) in crop pixels of the composed map source → crop over the clip.

    Composing each frame's alignment with the known motion cancels the real movement, so
    with perfect landmarks the face would not move in the crop at all. Jitter: RMS
    frame-to-frame displacement of the template points; drift: RMS distance from their
    mean position over the clip.
    """
    composed = np.stack([compose_affine(a, m) for a, m in zip(affines, motions)])
    reference = invert_affine(composed.mean(0))
    points = apply_affine(reference, template_points(template, size))
    q = np.stack([apply_affine(c, points) for c in composed])
    jitter = float(np.sqrt((np.diff(q, axis=0) ** 2).sum(-1).mean()))
    drift = float(np.sqrt(((q - q.mean(0)) ** 2).sum(-1).mean()))
    return jitter, drift


def analyze(frames: list[np.ndarray], detector: Detector, **kwargs) -> list[AnalyzedFrame]:
    """Run the streaming analyzer over in-memory frames; checks they come back in order."""
    analyzer = FaceAnalyzer(detector, **kwargs)
    out: list[AnalyzedFrame] = []
    for i, image in enumerate(frames):
        out += analyzer.push(Frame(index=i, pts=i, time=i / 25, image=image))
    out += analyzer.flush()
    assert [a.frame.index for a in out] == list(range(len(frames)))
    return out
