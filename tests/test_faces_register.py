"""Registration (``--register``): each crop registered to its track's recent crops steadies the
alignment beyond smoothing, without drift; it starts over at cuts and when registration fails."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FACES
from face_clips import analyze, crop_stability, load_face, make_clip, smooth_path

from vidgpen.config import RestoreConfig
from vidgpen.faces.analyze import make_analyzer
from vidgpen.faces.detect import Detection, make_detector
from vidgpen.faces.register import CropRegistrar
from vidgpen.plan.run_plan import face_settings

S = 512


@pytest.fixture(scope="module")
def detector():
    return make_detector("retinaface-onnx")


@pytest.fixture(scope="module")
def cut_clip():
    """A ~120 px face panning, turning and zooming (grain, JPEG, H.264), then a cut to another face."""
    path = smooth_path(200, 150, dx=30, dy=12, angle=5, zoom=0.06, period=40)
    first = make_clip([(load_face(FACES / "ffhq_00003.png", 240), path)], 40, (400, 300), seed=2, noise=5.0, jpeg=50)
    second = make_clip([(load_face(FACES / "ffhq_00007.png", 240), path)], 20, (400, 300), seed=5, cut_at=0,
                       noise=5.0, jpeg=50)
    return first.frames + second.frames, np.concatenate([first.motions[0], second.motions[0][:20]])


def _stability(result, motions: np.ndarray, span: slice) -> tuple[float, float]:
    affines = np.stack([r.faces[0].affine(S) for r in result[span]])
    return crop_stability(affines, motions[span], S)


def test_registered_crops_jitter_less_than_smoothed_ones_without_drift(cut_clip, detector):
    frames, motions = cut_clip
    runs = {register: analyze(frames, detector, register=register) for register in (False, True)}
    assert all(len(r.faces) == 1 for run in runs.values() for r in run)
    for span in (slice(0, 40), slice(40, 60)):
        (smoothed_jitter, smoothed_drift), (jitter, drift) = (_stability(runs[r], motions, span) for r in (False, True))
        print(f"frames {span.start}-{span.stop}: smoothed {smoothed_jitter:.3f}/{smoothed_drift:.3f}  "
              f"registered {jitter:.3f}/{drift:.3f} (jitter/drift px at S={S})")
        assert jitter <= 0.6 * smoothed_jitter
        assert drift <= smoothed_drift


def test_between_detection_runs_registration_follows_the_face(cut_clip, detector):
    frames, motions = cut_clip
    for every in (2, 4):
        runs = {register: analyze(frames[:40], detector, register=register, detect_every=every) for register in (False, True)}
        (by_flow, _), (followed, drift) = (_stability(runs[r], motions, slice(0, 40)) for r in (False, True))
        print(f"--detect-every {every}: followed by optical flow {by_flow:.3f}  registered {followed:.3f}/{drift:.3f} px at S={S}")
        assert followed <= 0.6 * by_flow and drift < 2.0


def _detections(frames: list[np.ndarray]) -> list[Detection]:
    detector = make_detector("retinaface-onnx")
    return [detector.detect(image)[0] for image in frames]


def test_each_shot_and_track_starts_from_its_landmarks(cut_clip):
    frames, _ = cut_clip
    detections = _detections(frames[:42])
    registrar = CropRegistrar()
    for t, detection in enumerate(detections):
        registrar.refine(frames[t], 0 if t < 40 else 1, t, {7: detection})
    assert registrar.restarts == 2  # the track's first frame and the first frame after the cut
    for t in (0, 40):  # nothing to register to yet
        np.testing.assert_array_equal(detections[t].registered, detections[t].landmarks)
    for t in (1, 39, 41):
        assert 0 < np.abs(detections[t].registered - detections[t].landmarks).max() < 5


def test_a_face_that_no_longer_matches_its_reference_starts_over(cut_clip):
    frames, _ = cut_clip
    first, second, other = _detections([frames[0], frames[1], frames[45]])
    registrar = CropRegistrar()
    registrar.refine(frames[0], 0, 0, {1: first})
    registrar.refine(frames[1], 0, 1, {1: second})
    assert registrar.restarts == 1 and not np.array_equal(second.registered, second.landmarks)
    # The same track and shot, but another face where this one was (an occlusion, a swap).
    swapped = Detection(other.box, other.score, first.landmarks.copy())
    registrar.refine(frames[45], 0, 2, {1: swapped})
    assert registrar.restarts == 2
    np.testing.assert_array_equal(swapped.registered, first.landmarks)


def test_one_reference_per_live_track(cut_clip):
    frames, _ = cut_clip
    detection = _detections(frames[:1])[0]
    registrar, sizes = CropRegistrar(), []
    for frame in range(30):  # two tracks per run; every 5 runs both end and two new ones start
        first = 2 * (frame // 5)
        runs = {track: Detection(detection.box, detection.score, detection.landmarks) for track in (first, first + 1)}
        registrar.refine(frames[frame], 0, frame, runs)
        sizes.append(len(registrar))
    assert max(sizes) == 2 and registrar.restarts == 12


def test_the_run_settings_turn_it_on_and_off():
    assert make_analyzer(face_settings(RestoreConfig(), "cpu", "gpen")).registrar is None  # off by default: it costs accuracy on real faces
    assert make_analyzer(face_settings(RestoreConfig(register=True), "cpu", "gpen")).registrar is not None
