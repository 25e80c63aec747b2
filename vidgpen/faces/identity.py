"""Who a face is: 128-d embeddings from dlib's face-recognition ResNet, and reference photos.

dlib's ResNet (``dlib_face_recognition_resnet_model_v1.dat``, 99.38% on LFW) and its 5-point
shape predictor ship in ``face-recognition-models``, which vidgpen already installs for the
dlib detector, so identity works offline. Two embeddings of one person are close in
Euclidean distance; :data:`MATCH_DISTANCE` is the threshold ``bench/identity.py`` chose on
clean photos against degraded footage (README, Persons).

A track is embedded on a few of its best detections only (:func:`detection_quality`: big,
sharp, frontal), not on every frame: a track's three embeddings cost about a dozen
detection runs of RetinaFace-ONNX on the same frames (bench/identity.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from vidgpen.errors import InputError, WeightsError
from vidgpen.faces.detect import Detection, Detector, face_recognition_models_dir, make_detector

# bench/identity.py on ../shared: clean photo vs 35%-scale crf-30 footage of the same person,
# and different people; the lowest sum of miss and false-match rates (true match 100%, false
# 1.24% photo → track, 2.22% track → track; README, Persons). dlib's LFW threshold 0.6 let
# 7% / 16% of different people through on such footage.
MATCH_DISTANCE = 0.47
# Below this (px, the box's longer side) the ResNet's 150 px chip is mostly upscaled blur: a 36 px
# face measured 0.53-0.86 from its own photo (bench/identity.py), as far as strangers are.
MIN_FACE = 48.0
EMBED_PER_TRACK = 3  # detections embedded per track: the best of those seen when its person is decided
CROP_SIDE = 112  # the contact sheet's crop of each person
# A photo is searched at these longer sides in turn, until faces are found: RetinaFace's largest
# anchors are 512 px, and a face filling a 1024 px portrait was also found a second time, in
# part (4 of the 15 single-person photos of ../shared/faces at 1280 px, none at 640).
PHOTO_SIDES = (640, 1280)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@cache
def _models() -> tuple[object, object]:
    """(5-point shape predictor, ResNet), loaded once per process."""
    import dlib

    folder = face_recognition_models_dir()
    predictor, network = folder / "shape_predictor_5_face_landmarks.dat", folder / "dlib_face_recognition_resnet_model_v1.dat"
    for path in (predictor, network):
        if not path.is_file():
            raise WeightsError(f"{path}: a face-recognition-models file is missing (pip install face-recognition-models)")
    return dlib.shape_predictor(str(predictor)), dlib.face_recognition_model_v1(str(network))


def embed(image_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The face in ``box`` (x0, y0, x1, y1) as a 128-d float32 embedding.

    dlib's predictor places its 5 points inside the box and the ResNet aligns its own
    150 px chip from them, as it was trained: our detector's landmarks use another order
    and another template.
    """
    import dlib

    predictor, network = _models()
    image = np.ascontiguousarray(image_rgb if image_rgb.ndim == 3 else np.repeat(image_rgb[:, :, None], 3, 2))
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    shape = predictor(image, dlib.rectangle(x0, y0, x1, y1))
    return np.asarray(network.compute_face_descriptor(image, shape), dtype=np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def detection_quality(image_rgb: np.ndarray, det: Detection) -> float:
    """How much a detection is worth embedding: size × frontalness × sharpness, each in 0..1.

    Size saturates at the ResNet's 150 px chip; frontalness falls with the nose's offset
    from the eyes' midpoint (a profile's nose lies beside its eyes); sharpness is the
    Laplacian's variance of the face at 64 px, so motion blur and defocus rank low.
    """
    left, right, nose = (det.landmarks[i].astype(np.float64) for i in range(3))
    eyes = max(float(np.linalg.norm(right - left)), 1.0)
    frontal = max(0.0, 1.0 - 2.0 * abs(float(np.dot(nose - (left + right) / 2, (right - left) / eyes))) / eyes)
    crop = face_crop(image_rgb, det.box, 64)
    variance = float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())
    sharp = variance / (variance + 100.0)
    return min(det.size / 150.0, 1.0) * frontal * sharp


def face_crop(image_rgb: np.ndarray, box: np.ndarray, side: int = CROP_SIDE) -> np.ndarray:
    """A square crop around ``box``, 20% wider than it, at ``side`` pixels (edges replicated)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    half = max(x1 - x0, y1 - y0) * 0.6
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = side / (2 * half)
    m = np.array([[scale, 0, side / 2 - cx * scale], [0, scale, side / 2 - cy * scale]])
    image = image_rgb if image_rgb.ndim == 3 else np.repeat(image_rgb[:, :, None], 3, 2)
    return cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


@dataclass
class Reference:
    """One person's photo: where it came from and its embedding."""

    path: str
    embedding: np.ndarray


def reference_images(path: str) -> list[Path]:
    """The image, or the images of the folder (sorted), that ``--faces-of PATH`` names."""
    p = Path(path)
    if p.is_dir():
        images = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not images:
            raise InputError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return images
    if not p.is_file():
        raise InputError(f"{path}: no such reference photo or folder")
    return [p]


def photo_detectors(name: str) -> list[Detector]:
    """The detector ``name`` at each of :data:`PHOTO_SIDES`."""
    return [make_detector(name, max_side=side) for side in PHOTO_SIDES]


def faces_in_photo(image_rgb: np.ndarray, detectors: list[Detector], min_face: float) -> list[Detection]:
    """The faces of a still photo, from the first of ``detectors`` that finds any."""
    for detector in detectors:
        faces = [d for d in detector.detect(image_rgb) if d.size >= min_face]
        if faces:
            return faces
    return []


def load_references(paths: list[str], detector_name: str, min_face: float) -> list[Reference]:
    """One embedding per photo; a photo must show exactly one face.

    Faces under a quarter of the largest one's size are ignored (a crowd far behind the
    person), so "several faces" means several people the photo could be of.
    """
    out = []
    detectors = photo_detectors(detector_name)
    for image_path in (image for path in paths for image in reference_images(path)):
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{image_path}: not an image OpenCV can read")
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        faces = faces_in_photo(rgb, detectors, min_face)
        faces = [d for d in faces if d.size >= max(f.size for f in faces) / 4]
        if len(faces) != 1:
            what = "no face" if not faces else f"{len(faces)} faces"
            raise InputError(f"{image_path}: {what} found; a reference photo must show exactly one person's face")
        out.append(Reference(str(image_path), embed(rgb, faces[0].box)))
    return out
