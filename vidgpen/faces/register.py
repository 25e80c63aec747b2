"""Sub-pixel alignment of each track's faces by registering its crops (``--register``, off by default:
on real talking faces it costs accuracy, bench/landmarks.py).

Smoothed landmarks still wobble: a detector's five points on a grainy frame are off by a
pixel or two, and smoothing leaves a third of that. Every wobble moves the restored face on
screen, so it is flicker that no filtering of the face itself can remove. The face's pixels
say far more precisely where it went than five points do, so on each detection run each
face's crop is registered to its track's reference crop (OpenCV ECC, an affine over the
inner face, at ``SIDE`` pixels): a complementary filter where the registration carries the
motion from run to run and the detector's landmarks pull it back so it cannot drift. The
pull is a steady-state Kalman gain: registration a random walk of ``REGISTRATION_NOISE`` a
run, the landmarks a measurement whose noise each track learns from its own innovations
(0.1 for retinaface-onnx's landmarks, about 1 crop pixel RMS at 128; about 0.25 for dlib's
steadier ones, 0.4 px), so a precise detector holds the registration tighter. The reference is a running mean of the track's registered crops
(``REFERENCE_RATE``), steadier than the last crop alone. The registered landmarks are then
what :mod:`vidgpen.faces.smooth` smooths.

Between detection runs (``--detect-every N``) each track is followed by registration alone,
from its last registered landmarks: the smoother then has a sample in every frame instead of
interpolating over N. On tests/test_faces_register.py's clip (a face moving up to 5 pixels a
frame) the jitter at 512 fell from 1.6 to 0.24 px at N = 2 and from 3.2 to 0.28 at N = 4.

Why this shape (crop pixels at 512, a face panning, turning and zooming with fresh grain and
JPEG, tests/test_faces_register.py; jitter / drift from the true motion):

* smoothing alone: 0.63 / 1.9; through H.264 at CRF 30 0.67 / 2.2;
* registering the smoothed landmarks: 0.32 / 1.0, but through H.264 0.66 / 0.9: the
  codec's quarter-pixel motion vectors move the decoded face by their own errors, and
  registration follows them;
* registering first, then smoothing (this module): 0.19 / 1.0 and through H.264 0.23 / 0.8.
* Against the previous crop rather than a running mean, Euclidean rather than affine (the
  zoom is motion too), pre-blurred gradients, the upper face only (to ignore the mouth), or
  a fixed pull of 0.2–0.5 with retinaface-onnx: each steadied less. A fixed pull of 0.1 let
  registration wander with dlib (drift 0.75 against 0.37 smoothed alone); the learnt one
  gives 0.09 / 0.33 there and the same as 0.1 with retinaface-onnx. 30 ECC iterations cost
  about 3 ms a face; 100 were no steadier.

A track starts from its landmarks when it is new, after a shot cut or a detection run
without it, and whenever the registration fails: no convergence, a correlation under
``MIN_CORRELATION`` (an occlusion, a turn away), or a result further than
``MAX_CORRECTION`` of the crop from the landmarks. One reference per live track; a track's
is dropped at the first run without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from vidgpen.faces.align import (
    affine_scale,
    apply_affine,
    compose_affine,
    face_affine,
    invert_affine,
    template_points,
    umeyama,
    warp_face,
)
from vidgpen.faces.detect import Detection

SIDE = 128  # crop side the registration runs at
REGISTRATION_NOISE = 0.0127  # crop px² a frame: with retinaface-onnx's landmark noise (1.07 px RMS) a pull of 0.1
INITIAL_LANDMARK_NOISE = 1.15  # crop px²: what a new track assumes until its own innovations say otherwise
NOISE_RATE, NOISE_CAP = 0.1, 4.0  # how fast a track's landmark noise follows its innovations; each capped at 4×
REFERENCE_RATE = 0.2  # how fast a track's reference crop follows its registered crops
MIN_CORRELATION = 0.6  # ECC's correlation under which the registration is not trusted
MAX_CORRECTION = 0.1  # RMS distance from the landmarks' position, in crop sides, beyond which neither is trusted
_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-4)
_TEMPLATE = template_points("gpen", SIDE)


def _inner_face_mask() -> np.ndarray:
    """SIDE×SIDE uint8: the eyes-to-chin ellipse of a GPEN-aligned crop, where ECC compares."""
    mask = np.zeros((SIDE, SIDE), np.uint8)
    cv2.ellipse(mask, (SIDE // 2, int(SIDE * 0.58)), (int(SIDE * 0.2), int(SIDE * 0.26)), 0, 0, 360, 255, -1)
    return mask


_MASK = _inner_face_mask()


@dataclass
class _Reference:
    shot: int
    frame: int
    crop: np.ndarray  # SIDE×SIDE float32 grey: the running mean of the track's registered crops
    points: np.ndarray  # (5, 2) the track's registered landmarks in that frame
    landmark_noise: float = INITIAL_LANDMARK_NOISE  # crop px²: the detector's landmarks against registration

    def pull(self, innovation: float) -> float:
        """The landmarks' gain for this frame (a steady-state Kalman gain: registration a random walk
        of variance ``REGISTRATION_NOISE`` a frame, the landmarks its noisy measurement), then the
        noise estimate follows ``innovation`` (each capped, so an expression barely moves it)."""
        ratio = REGISTRATION_NOISE / self.landmark_noise
        gain = (np.sqrt(ratio * ratio + 4 * ratio) - ratio) / 2
        capped = min(innovation, NOISE_CAP * self.landmark_noise)
        self.landmark_noise += NOISE_RATE * (capped - self.landmark_noise)
        return float(gain)


class CropRegistrar:
    """The registration state of every live track; :meth:`refine` and :meth:`follow` take the frames in order."""

    def __init__(self) -> None:
        self._references: dict[int, _Reference] = {}
        self._last_frame: int | None = None  # the previous frame registered (refined or followed)
        self.restarts = 0  # faces that started from their landmarks (new track, cut, failed registration)

    def __len__(self) -> int:
        return len(self._references)

    def refine(self, image: np.ndarray, shot: int, frame: int, detections: Mapping[int, Detection]) -> None:
        """A detection run: set each detection's ``registered`` landmarks (``detections``: by track id)."""
        previous, self._last_frame = self._last_frame, frame
        for track in [t for t in self._references if t not in detections]:
            del self._references[track]
        for track, detection in detections.items():
            landmark_affine = face_affine(detection.landmarks, SIDE)
            reference = self._references.get(track)
            fresh = reference is None or reference.shot != shot or reference.frame != previous
            affine = None if fresh else _registered(image, landmark_affine, reference, pulled=True)
            if affine is None:
                self.restarts += 1
                detection.registered = detection.landmarks.copy()
                self._references[track] = _Reference(shot, frame, _grey(image, landmark_affine), detection.registered)
                continue
            detection.registered = _moved(detection.landmarks, landmark_affine, affine)
            _update(reference, image, affine, frame, detection.registered)

    def follow(self, image: np.ndarray, shot: int, frame: int) -> dict[int, np.ndarray]:
        """A frame between detection runs (``--detect-every``): each live track's registered landmarks
        there, from its last ones moved by registration alone; a track whose registration fails
        is left out (its landmarks come from the detections around it, as without registration)."""
        previous, self._last_frame = self._last_frame, frame
        followed = {}
        for track, reference in list(self._references.items()):
            start = face_affine(reference.points, SIDE)
            affine = None
            if reference.shot == shot and reference.frame == previous:
                affine = _registered(image, start, reference, pulled=False)
            if affine is None:
                del self._references[track]
                continue
            followed[track] = _moved(reference.points, start, affine)
            _update(reference, image, affine, frame, followed[track])
        return followed


def _moved(points: np.ndarray, start: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """``points`` moved by the similarity that takes the alignment ``start`` to ``affine``."""
    return apply_affine(compose_affine(invert_affine(affine), start), points).astype(np.float32)


def _update(reference: _Reference, image: np.ndarray, affine: np.ndarray, frame: int, points: np.ndarray) -> None:
    reference.crop += REFERENCE_RATE * (_grey(image, affine) - reference.crop)
    reference.frame, reference.points = frame, points


def _grey(image: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(warp_face(image, affine, SIDE), cv2.COLOR_RGB2GRAY).astype(np.float32)


def _registered(image: np.ndarray, start: np.ndarray, reference: _Reference, pulled: bool) -> np.ndarray | None:
    """The frame → crop similarity: registration from the alignment ``start``, and when ``pulled``
    (``start`` is the detector's) fused with it at the track's gain; None when the registration fails."""
    warp = np.eye(2, 3, dtype=np.float32)  # reference coordinates → this crop's
    try:
        correlation, warp = cv2.findTransformECC(reference.crop, _grey(image, start), warp, cv2.MOTION_AFFINE,
                                                 _CRITERIA, _MASK, 1)
    except cv2.error:  # no convergence: a face that changed too much, or no texture
        return None
    if correlation < MIN_CORRELATION:
        return None
    crop_to_frame = invert_affine(start)  # the template's points in the frame, two ways:
    by_start = apply_affine(crop_to_frame, _TEMPLATE)
    by_registration = apply_affine(compose_affine(crop_to_frame, warp.astype(np.float64)), _TEMPLATE)
    innovation = ((by_registration - by_start) ** 2).sum(-1).mean() / affine_scale(crop_to_frame) ** 2  # crop px²
    if innovation > (MAX_CORRECTION * SIDE) ** 2:
        return None
    if pulled:
        by_registration += reference.pull(innovation) * (by_start - by_registration)
    return umeyama(by_registration, _TEMPLATE)
