"""Detectors on real photographs from ../shared/faces."""

from __future__ import annotations

import logging
import warnings

import cv2
import numpy as np
import pytest
from conftest import FACES

from vidgpen.errors import ConfigError
from vidgpen.faces.detect import _warn_once, make_detector


def _read(name: str, max_side: int | None = None) -> np.ndarray:
    image = cv2.imread(str(FACES / name), cv2.IMREAD_COLOR)[:, :, ::-1]
    if max_side and max(image.shape[:2]) > max_side:
        s = max_side / max(image.shape[:2])
        image = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


PORTRAITS = [f"ffhq_0000{i}.png" for i in range(10)] + [f"selfie_{i}.jpg" for i in range(5)]


@pytest.fixture(scope="module")
def dlib_detector():
    return make_detector("dlib", upsample=1, max_side=None)


@pytest.fixture(scope="module")
def onnx_detector():
    return make_detector("retinaface-onnx")


def _check_order(face) -> None:
    """Eye on the image's left comes first, mouth below the eyes, nose between."""
    lm = face.landmarks
    assert lm.shape == (5, 2) and lm.dtype == np.float32
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
    assert lm[3:, 1].mean() > lm[2, 1] > lm[:2, 1].mean() - 0.05 * (face.box[3] - face.box[1])
    x0, y0, x1, y1 = face.box
    assert x0 < x1 and y0 < y1


def test_dlib_finds_solvay_faces(dlib_detector):
    faces = dlib_detector.detect(_read("solvay_conference_1927.png"))
    assert len(faces) >= 28
    for f in faces:
        _check_order(f)


def test_onnx_retinaface_finds_all_solvay_faces(onnx_detector):
    faces = onnx_detector.detect(_read("solvay_conference_1927.png"))
    assert len(faces) == 29
    # Float landmarks (the wheel's own API rounds them to integers).
    assert any(not np.allclose(f.landmarks, np.round(f.landmarks)) for f in faces)
    for f in faces:
        _check_order(f)


# selfie_1's eyes are hidden under a hat brim: dlib's HOG model (trained on visible eyes)
# scores it below its false positives at any threshold, so it is the one it cannot find.
DLIB_BLIND = {"selfie_1.jpg"}


@pytest.mark.parametrize("name", PORTRAITS)
def test_portraits_found_once(name, dlib_detector, onnx_detector):
    image = _read(name, max_side=640)
    detectors = [onnx_detector] if name in DLIB_BLIND else [dlib_detector, onnx_detector]
    for detector in detectors:
        faces = detector.detect(image)
        assert len(faces) == 1, detector.name
        _check_order(faces[0])
    if name in DLIB_BLIND:
        assert dlib_detector.detect(image) == []


def test_detectors_agree_on_landmarks(dlib_detector, onnx_detector):
    image = _read("ffhq_00002.png", max_side=640)
    a, b = dlib_detector.detect(image)[0], onnx_detector.detect(image)[0]
    eye_dist = np.linalg.norm(a.landmarks[1] - a.landmarks[0])
    # Eyes and mouth corners within a fraction of the eye distance (the nose tips differ by design).
    assert np.abs(a.landmarks[[0, 1, 3, 4]] - b.landmarks[[0, 1, 3, 4]]).max() < 0.25 * eye_dist


def test_large_frames_are_downscaled_for_detection_with_coordinates_mapped_back(onnx_detector):
    image = _read("selfie_1.jpg", max_side=640)
    big = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    small_face = onnx_detector.detect(image)[0]
    capped = make_detector("retinaface-onnx", max_side=640).detect(big)[0]
    np.testing.assert_allclose(capped.landmarks, small_face.landmarks * 3, atol=3.0)
    np.testing.assert_allclose(capped.box, small_face.box * 3, atol=6.0)


def test_grayscale_input(onnx_detector):
    gray = cv2.cvtColor(_read("ffhq_00004.png", max_side=512), cv2.COLOR_RGB2GRAY)
    assert len(onnx_detector.detect(gray)) == 1


def test_facexlib_missing_falls_back_with_a_warning(caplog):
    try:
        import facexlib  # noqa: F401
        import torchvision  # noqa: F401

        pytest.skip("facexlib is installed here: no fallback to show")
    except ImportError:
        pass
    _warn_once.cache_clear()  # another test may have warned already
    with caplog.at_level(logging.WARNING, logger="vidgpen.faces.detect"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        detector = make_detector("retinaface-mobilenet")
    warned = [r for r in caplog.records if "retinaface-onnx" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert not [w for w in caught if "retinaface-onnx" in str(w.message)]  # said once, as a log line only
    assert detector.name == "retinaface-onnx"
    assert len(detector.detect(_read("selfie_0.jpg", max_side=512))) == 1


def test_unknown_detector_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown face detector 'mtcnn'"):
        make_detector("mtcnn")
