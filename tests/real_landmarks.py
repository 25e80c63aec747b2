"""Landmark accuracy and steadiness on real footage (``../shared/video``), against references
run on the clean source.

A clip's clean frames are degraded the ways home video is (smaller, blurred, grainy, heavy
JPEG, a starved x264, interlaced DV); the face stage runs on the copy and its landmarks,
mapped back to the clean frame's pixels, are scored against a reference run on the clean
frames: dlib's 68-point model (as 5 points) and retinaface-onnx, so no candidate is judged
only against itself. NME: the mean distance of the 5 points in % of the reference's eye
distance. Jitter: the points' frame-to-frame acceleration |p(t−1) − 2p(t) + p(t+1)| in the
same units; its twin on the error p − reference says how much of it is not real motion.
Faces under ``MIN_EYES`` px between the eyes in the copy are left out.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from vidgpen.faces.analyze import AnalyzedFrame, FaceAnalyzer
from vidgpen.faces.detect import Detection, Detector, DlibDetector, OnnxRetinaFace
from vidgpen.io.frames import Frame

MIN_EYES = 10.0  # px between the eyes in the degraded copy: smaller faces are not scored
REFERENCES = ("dlib", "retinaface-onnx")


def read_clip(path: Path, frames: int, start: int = 0) -> tuple[list[np.ndarray], float]:
    """``frames`` RGB frames from ``start`` on, and the frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        out = []
        for i, frame in enumerate(container.decode(stream)):
            if i >= start:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
        return out, float(stream.average_rate)


def _resized(frames: list[np.ndarray], scale: float) -> list[np.ndarray]:
    return [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for f in frames]


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    _, buf = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]


def _x264(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    buf = io.BytesIO()
    h, w = (s - s % 2 for s in frames[0].shape[:2])
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h, :w]), format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as inp:
        return [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def _interlaced(frames: list[np.ndarray]) -> list[np.ndarray]:
    """DV-like: the odd lines a frame later than the even ones (two fields woven), chroma at a
    quarter of the width, then intra DCT compression."""
    out = []
    for now, later in zip(frames, frames[1:] + frames[-1:]):
        woven = now.copy()
        woven[1::2] = later[1::2]
        ycc = cv2.cvtColor(woven, cv2.COLOR_RGB2YCrCb)
        h, w = ycc.shape[:2]
        ycc[:, :, 1:] = cv2.resize(cv2.resize(ycc[:, :, 1:], (max(1, w // 4), h), interpolation=cv2.INTER_AREA), (w, h))
        out.append(_jpeg(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB), 70))
    return out


def _noisy(frames: list[np.ndarray], sigma: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8) for f in frames]


Degradation = Callable[[list[np.ndarray]], list[np.ndarray]]
# name → (scale, what is done to the frames at that scale)
DEGRADATIONS: dict[str, tuple[float, Degradation]] = {
    "small": (0.35, lambda fs: fs),
    "blur": (0.5, lambda fs: [cv2.GaussianBlur(f, (0, 0), 1.5) for f in fs]),
    "noise": (0.5, lambda fs: _noisy(fs, 10.0, 0)),
    "jpeg": (0.5, lambda fs: [_jpeg(f, 12) for f in fs]),
    "x264": (0.5, lambda fs: _x264(fs, 38)),
    "dv": (0.5, _interlaced),
}


def degraded(frames: list[np.ndarray], name: str) -> tuple[list[np.ndarray], float]:
    scale, damage = DEGRADATIONS[name]
    return damage(_resized(frames, scale)), scale


def to_clean(points: np.ndarray, scale: float) -> np.ndarray:
    """Copy pixel coordinates → clean frame pixel coordinates (pixel centres on integers)."""
    return (points + 0.5) / scale - 0.5


def _largest(detections: list[Detection]) -> Detection | None:
    return max(detections, key=lambda d: d.size) if detections else None


def references(frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """(F, 5, 2) per reference on the clean frames, NaN where it found no face. The face is the
    largest retinaface-onnx finds; dlib runs on a crop around it, upsampled until the face is
    about 200 px (its detector needs 80)."""
    retina, dlib = OnnxRetinaFace(), DlibDetector(upsample=0)
    out = {name: np.full((len(frames), 5, 2), np.nan) for name in REFERENCES}
    for i, image in enumerate(frames):
        face = _largest(retina.detect(image))
        if face is None:
            continue
        out["retinaface-onnx"][i] = face.landmarks
        centre, side = (face.box[:2] + face.box[2:]) / 2, face.size * 1.6
        x0, y0 = np.maximum(centre - side / 2, 0).astype(int)
        x1, y1 = np.minimum(centre + side / 2, image.shape[1::-1]).astype(int)
        zoom = max(1.0, 200 / face.size)
        crop = cv2.resize(image[y0:y1, x0:x1], None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
        found = _largest(dlib.detect(crop))
        if found is not None:
            out["dlib"][i] = (found.landmarks + 0.5) / zoom - 0.5 + [x0, y0]
    return out


def dlib_reference(frames: list[np.ndarray], find_scale: float = 0.5) -> np.ndarray:
    """(F, 5, 2) dlib's 68-point model as 5 points on the clean frames, NaN where it found no
    face: its detector on a copy at ``find_scale`` (a big face needs no more, at a quarter
    of the cost), its shape model on the full frame."""
    import dlib

    model = DlibDetector(upsample=0)
    out = np.full((len(frames), 5, 2), np.nan)
    for i, image in enumerate(frames):
        small = cv2.resize(image, None, fx=find_scale, fy=find_scale, interpolation=cv2.INTER_AREA)
        rects = model.detector(small, 0)
        if len(rects):
            rect = max(rects, key=lambda r: r.width() * r.height())
            box = dlib.rectangle(*(round(v / find_scale) for v in (rect.left(), rect.top(), rect.right(), rect.bottom())))
            shape = model.predictor(np.ascontiguousarray(image), box)
            p = np.array([(shape.part(k).x, shape.part(k).y) for k in range(68)], dtype=np.float64)
            out[i] = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
    return out


class Replay:
    """A detector that answers with detections made earlier on the same frames (by identity),
    so every candidate stage sees exactly the same detections; copies, as registration writes
    into them."""

    def __init__(self, name: str, frames: list[np.ndarray], detections: list[list[Detection]]):
        self.name = name
        self._by_frame = {id(f): d for f, d in zip(frames, detections)}

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        return copy.deepcopy(self._by_frame[id(image_rgb)])


def detect_all(detector: Detector, frames: list[np.ndarray]) -> Replay:
    return Replay(detector.name, frames, [detector.detect(f) for f in frames])


def run_stage(frames: list[np.ndarray], analyzer: FaceAnalyzer) -> list[AnalyzedFrame]:
    out: list[AnalyzedFrame] = []
    for i, image in enumerate(frames):
        out += analyzer.push(Frame(index=i, pts=i, time=i / 25, image=image))
    return out + analyzer.flush()


def landmarks_of(result: list[AnalyzedFrame], raw: bool = False) -> list[list[np.ndarray]]:
    """Each frame's faces' final landmarks (or the detector's, ``raw``, where it ran)."""
    return [[np.asarray(f.landmarks_raw if raw else f.landmarks, np.float64) for f in item.faces
             if not raw or f.landmarks_raw is not None] for item in result]


def followed(faces: list[list[np.ndarray]], reference: np.ndarray, scale: float) -> np.ndarray:
    """(F, 5, 2) in clean pixels: in each frame the face (of ``landmarks_of``) nearest the
    reference, within an eye distance; NaN where none."""
    out = np.full(reference.shape, np.nan)
    for i, frame_faces in enumerate(faces):
        ref = reference[i]
        if np.isnan(ref).any():
            continue
        eyes = np.linalg.norm(ref[0] - ref[1])
        best = np.inf
        for points in frame_faces:
            points = to_clean(points, scale)
            distance = np.linalg.norm(points.mean(0) - ref.mean(0))
            if distance < min(best, eyes):
                best, out[i] = distance, points
    return out


@dataclass
class Scores:
    nme: np.ndarray  # (n,) % of the eye distance, one per scored frame
    jitter: np.ndarray  # (m,) acceleration of the points, same unit, one per scored frame triple
    error_jitter: np.ndarray  # (m,) acceleration of their error

    @staticmethod
    def join(parts: list[Scores]) -> Scores:
        return Scores(*(np.concatenate([getattr(p, k) for p in parts]) if parts else np.zeros(0)
                        for k in ("nme", "jitter", "error_jitter")))

    def summary(self) -> dict[str, float]:
        nan = float("nan")
        return {
            "nme": float(self.nme.mean()) if len(self.nme) else nan,
            "p95": float(np.percentile(self.nme, 95)) if len(self.nme) else nan,
            "jitter": float(self.jitter.mean()) if len(self.jitter) else nan,
            "error_jitter": float(self.error_jitter.mean()) if len(self.error_jitter) else nan,
        }


def score(points: np.ndarray, reference: np.ndarray, scale: float) -> Scores:
    """NME and jitter of ``points`` against ``reference`` (both (F, 5, 2) clean pixels, NaN = absent)."""
    eyes = np.linalg.norm(reference[:, 0] - reference[:, 1], axis=-1)
    valid = ~np.isnan(points).any((1, 2)) & ~np.isnan(reference).any((1, 2)) & (eyes * scale >= MIN_EYES)
    nme = np.linalg.norm(points - reference, axis=-1).mean(-1) / eyes * 100
    triple = valid[:-2] & valid[1:-1] & valid[2:]

    def acceleration(p: np.ndarray) -> np.ndarray:
        return (np.linalg.norm(p[:-2] - 2 * p[1:-1] + p[2:], axis=-1).mean(-1) / eyes[1:-1] * 100)[triple]

    return Scores(nme[valid], acceleration(points), acceleration(points - reference))
