"""Landmark smoothing: steadier aligned crops without lag, measured against known motion."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FACES
from face_clips import crop_stability, load_face, make_clip, smooth_path
from scipy.signal import savgol_filter
from test_faces_track import analyze

from vidgpen.faces.align import face_affine
from vidgpen.faces.detect import make_detector
from vidgpen.faces.smooth import LandmarkSmoother

S = 512


@pytest.fixture(scope="module")
def film_clip():
    """A ~150 px face panning, turning and zooming; blur, grain, JPEG and H.264 artefacts."""
    src = load_face(FACES / "ffhq_00001.png", 300)
    return make_clip([(src, smooth_path(240, 180))], 90, seed=1, noise=5.0, jpeg=50)


def _stability(landmarks: np.ndarray, motions: np.ndarray) -> tuple[float, float]:
    return crop_stability(np.stack([face_affine(lm, S) for lm in landmarks]), motions, S)


@pytest.mark.parametrize("detector_name", ["dlib", "retinaface-onnx"])
def test_smoothed_crop_jitters_less_without_drifting(film_clip, detector_name):
    detector = make_detector(detector_name, upsample=0)
    result = analyze(film_clip.frames, detector, lookahead=6, register=False)  # smoothing alone
    assert all(len(r.faces) == 1 and r.faces[0].detected for r in result)
    raw = np.stack([r.faces[0].landmarks_raw for r in result]).astype(np.float64)
    smoothed = np.stack([r.faces[0].landmarks for r in result]).astype(np.float64)
    raw_jitter, raw_drift = _stability(raw, film_clip.motions[0])
    jitter, drift = _stability(smoothed, film_clip.motions[0])
    sg_jitter, sg_drift = _stability(savgol_filter(raw, 15, 2, axis=0), film_clip.motions[0])
    print(f"{detector_name}: raw {raw_jitter:.3f}/{raw_drift:.3f}  smoothed {jitter:.3f}/{drift:.3f}  "
          f"offline SG15/2 {sg_jitter:.3f}/{sg_drift:.3f} (jitter/drift px at S={S})")
    assert jitter * 2.5 <= raw_jitter
    assert drift <= raw_drift


def test_follows_a_real_jump_without_lag():
    rng = np.random.default_rng(0)
    t = np.arange(60)
    truth = np.zeros((60, 5, 2)) + np.arange(10).reshape(5, 2) * 10.0
    truth[30:] += 25.0  # the face really jumps (fast head turn, camera shake)
    raw = truth + rng.normal(0, 0.8, truth.shape)
    smoother = LandmarkSmoother(lookahead=6)
    out = np.stack([smoother.smooth(t, raw, i) for i in t])
    assert np.abs(out - truth)[26:34].max() < 3.0  # no smear across the jump
    assert np.diff(out[:29], axis=0).std() < 0.4 * np.diff(raw[:29], axis=0).std()


def test_smoothing_uses_only_the_window():
    t = np.arange(40)
    pts = np.zeros((40, 5, 2))
    pts[:10] = 1000.0  # far outside the window of frame 30
    smoother = LandmarkSmoother(lookahead=4, past=6)
    np.testing.assert_allclose(smoother.smooth(t, pts, 30), 0.0, atol=1e-9)


def test_lookahead_zero_gives_raw_landmarks(film_clip):
    result = analyze(film_clip.frames[:8], make_detector("retinaface-onnx"), lookahead=0, register=False)
    for r in result:
        np.testing.assert_array_equal(r.faces[0].landmarks, r.faces[0].landmarks_raw)


def test_each_track_measures_its_detector_noise_and_motion():
    """The smoother's own model, simulated (white acceleration q, detector noise r, per landmark):
    its moment estimates find both, so a noisy point is smoothed more than a steady one."""
    rng = np.random.default_rng(3)
    n, q = 2000, np.array([1e-4, 1e-4, 1e-4, 4e-4, 4e-4])
    r = np.array([4e-4, 4e-4, 1e-4, 1e-4, 1e-4])
    step = np.linalg.cholesky(np.array([[1 / 3, 1 / 2], [1 / 2, 1]]))  # the process noise of one frame, per unit q
    state = np.zeros((5, 2, 2))  # landmark, axis, (position, velocity)
    truth = []
    for _ in range(n):
        state[..., 0] += state[..., 1]
        state += (rng.normal(0, 1, (5, 2, 2)) @ step.T) * np.sqrt(q)[:, None, None]
        truth.append(state[..., 0].copy())
    measured = np.stack(truth) + rng.normal(0, 1, (n, 5, 2)) * np.sqrt(r)[:, None]
    r_est, q_est = LandmarkSmoother(strength=1.0).noise(np.arange(n, dtype=float), measured)
    np.testing.assert_allclose(r_est, r, rtol=0.25)
    # q is the small part of the second differences' variance: within 2× where it is not
    # buried under four times as much detector noise (landmarks 0 and 1).
    assert np.all((q_est[2:] > q[2:] / 2) & (q_est[2:] < 2 * q[2:])) and q_est[3:].min() > q_est[2]
