"""The face stage's final landmarks on real talking faces, degraded like home video, against
dlib's 68-point model on the clean source: as accurate as the detector's and much steadier
(README, Faces across frames; bench/landmarks.py measures all clips and stages)."""

from __future__ import annotations

import pytest
from conftest import SHARED
from real_landmarks import degraded, detect_all, dlib_reference, followed, landmarks_of, read_clip, run_stage, score

from vidgpen.config import RestoreConfig
from vidgpen.faces.analyze import make_analyzer
from vidgpen.faces.detect import make_detector
from vidgpen.plan.run_plan import face_settings

# One clip the defaults were chosen on, one held out (bench/landmarks.py's CHOSEN / HELD_OUT).
CLIPS = [("talk_d18", "x264"), ("talk_d19", "small")]


@pytest.fixture(scope="module")
def detector():
    return make_detector("retinaface-onnx")


def _default(replay, frames, **settings):
    """The face stage exactly as a default run plans it (``settings``: RestoreConfig fields), on saved detections."""
    return run_stage(frames, make_analyzer(face_settings(RestoreConfig(**settings), "cpu", "gpen"), detector=replay))


@pytest.mark.parametrize(("clip", "damage"), CLIPS)
def test_default_landmarks_are_as_accurate_as_the_detector_and_steadier(detector, clip, damage):
    clean, _ = read_clip(SHARED / "video" / f"{clip}.mp4", 100)
    reference = dlib_reference(clean)
    frames, scale = degraded(clean, damage)
    replay = detect_all(detector, frames)
    result = _default(replay, frames)
    raw = score(followed(landmarks_of(result, raw=True), reference, scale), reference, scale).summary()
    final = score(followed(landmarks_of(result), reference, scale), reference, scale)
    assert len(final.nme) >= 90  # the face is followed (and scored) in almost every frame
    final = final.summary()
    sparse = {every: score(followed(landmarks_of(_default(replay, frames, detect_every=every)), reference, scale),
                           reference, scale).summary()["nme"] for every in (2, 4)}
    print(f"{clip} {damage}: raw {raw}\n  default {final}\n  NME at --detect-every 2, 4: {sparse}")
    assert final["nme"] <= 1.05 * raw["nme"] and final["p95"] <= 1.10 * raw["p95"]
    assert final["jitter"] * 2.5 <= raw["jitter"]
    assert max(sparse.values()) <= 1.1 * final["nme"]
