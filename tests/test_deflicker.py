"""--deflicker: per-track temporal fusion inside GPEN steadies restored faces, resets at cuts,
holds one state per live track, does not depend on batching, and fixes SR noise per track."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import FACES
from face_clips import degrade, load_face, make_clip, smooth_path
from flicker_measure import StillRestorer, flicker, inner_face, to_photo
from gpen_checkpoints import make_gpen, make_gpen_checkpoint
from media import decoded_frames, write_video

from vidgpen import Pipeline, RestoreConfig
from vidgpen.errors import ConfigError
from vidgpen.models.runtime.torch_restorer import FaceRestorer
from vidgpen.models.temporal.fusion import FaceKey, TemporalFusion

DEFAULT = RestoreConfig().deflicker


def _grainy_crops(name: str, frames: int, side: int = 64, seed: int = 0) -> np.ndarray:
    """One real face photo as an aligned crop, with fresh grain and JPEG on every frame."""
    face = cv2.resize(load_face(FACES / name, 256)[16:240, 16:240], (side, side), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    return np.stack([degrade(face, rng, blur=0, noise=6.0, jpeg=60) for _ in range(frames)])


def _keys(track: int, shot: int, frames: range) -> list[FaceKey]:
    return [FaceKey(track, shot, frame) for frame in frames]


def _flicker(images: np.ndarray) -> float:
    return float(np.abs(np.diff(images.astype(np.float64), axis=0)).mean())


@pytest.mark.slow
def test_default_halves_the_flicker_on_a_moving_grainy_clip(tmp_path):
    """The bench's measure on a short clip: output warped back by the known motion, inner face.

    With one fixed face pasted instead (the alignment's own jitter, what no fusion inside
    GPEN can remove) the flicker left must be under a quarter of the input's: registration
    keeps that floor low enough for the fusion to halve the whole.
    """
    side = 150
    face = load_face(FACES / "ffhq_00003.png", side)
    clip = make_clip([(face, smooth_path(140, 110, dx=20, dy=8, angle=4, zoom=0.05, period=40))], 24, (280, 220),
                     codec=None, noise=5.0, jpeg=50)
    video = write_video(tmp_path / "clip.mp4", clip.frames, options={"crf": "20"})
    weights = make_gpen_checkpoint(tmp_path / "gpen.pth", size=64, narrow=0.25)
    still = StillRestorer(FaceRestorer.load(weights, device="cpu", dtype="float32"))
    flickers = {}
    for name, strength, restorer in (("floor", 0.0, still), ("per-frame", 0.0, None), ("fused", DEFAULT, None)):
        out = tmp_path / f"{name}.mkv"
        config = RestoreConfig(weights=str(weights), deflicker=strength, dtype="float32", codec="ffv1", pix_fmt="yuv444p10le",
                               register=True)
        report = Pipeline(config, restorer=restorer).run(video, out)
        assert report.tracks == 1 and report.settings["deflicker"] == strength
        assert ("deflicker" in report.stage_seconds) == (strength > 0)  # the fusion's time, for --report
        photo = to_photo([f.to_ndarray(format="rgb24") for f in decoded_frames(out)], clip.motions[0], side)
        flickers[name] = flicker(photo, inner_face(side))
    source = to_photo([f.to_ndarray(format="rgb24") for f in decoded_frames(video)], clip.motions[0], side)
    print({name: round(value, 3) for name, value in flickers.items()}, "input", round(flicker(source, inner_face(side)), 3))
    assert flickers["floor"] < 0.25 * flicker(source, inner_face(side))
    assert flickers["fused"] <= 0.5 * flickers["per-frame"]


@pytest.fixture(scope="module")
def restorer() -> FaceRestorer:
    return FaceRestorer(make_gpen(size=64), device="cpu", dtype="float32", batch_size=8)


def test_first_frame_of_a_new_shot_is_the_per_frame_result(restorer):
    crops = np.concatenate([_grainy_crops("ffhq_00003.png", 6), _grainy_crops("ffhq_00007.png", 4, seed=1)])
    keys = _keys(1, 0, range(6)) + _keys(1, 1, range(6, 10))  # same track id: the shot alone resets
    one_by_one = FaceRestorer(restorer.model, device="cpu", dtype="float32", batch_size=1)
    fused = one_by_one.restore_tracked(crops, keys, TemporalFusion(DEFAULT))
    per_frame = one_by_one.restore_tracked(crops, keys, None)
    assert np.array_equal(fused[0], per_frame[0]) and np.array_equal(fused[6], per_frame[6])
    assert not np.array_equal(fused[7], per_frame[7])  # fusing again from the shot's second frame
    assert _flicker(fused[6:]) < _flicker(per_frame[6:])


def test_at_field_rate_the_fusion_steadies_faces_over_the_same_time(restorer):
    """50p from 50i: twice the faces for the same time, fused with the per-field gain. A
    frame-rate run and a field-rate one over the same 0.32 s of grainy faces: the field-rate
    output flickers less per frame step than per-frame restoring does, and no more per
    second of video than the frame-rate output does."""
    crops = _grainy_crops("ffhq_00003.png", 16, seed=3)
    frame_rate = restorer.restore_tracked(crops[::2], _keys(1, 0, range(8)), TemporalFusion(DEFAULT))
    field_rate = restorer.restore_tracked(crops, _keys(1, 0, range(16)), TemporalFusion(DEFAULT, 2.0))
    per_field = restorer.restore_tracked(crops, _keys(1, 0, range(16)), None)
    print(f"flicker: per field {_flicker(per_field):.2f}, fused at field rate {_flicker(field_rate):.2f} "
          f"(every 2nd: {_flicker(field_rate[::2]):.2f}), fused at frame rate {_flicker(frame_rate):.2f}")
    assert _flicker(field_rate) <= 0.5 * _flicker(per_field)
    assert _flicker(field_rate[::2]) <= _flicker(frame_rate)


def test_state_is_one_per_live_track_and_memory_stays_flat(restorer):
    fusion = TemporalFusion(DEFAULT)
    crops = _grainy_crops("ffhq_00001.png", 2)
    sizes = []
    for frame in range(120):  # two faces per frame; every 5 frames both tracks end and two new ones start
        first = 2 * (frame // 5)
        restorer.restore_tracked(crops, [FaceKey(first, 0, frame), FaceKey(first + 1, 0, frame)], fusion)
        sizes.append((len(fusion), fusion.state_bytes))
    assert fusion.peak_tracks <= 4  # the live two, and two that ended at the frame before
    assert max(n for n, _ in sizes) == 4 and sizes[-1] == sizes[29]
    assert max(b for _, b in sizes) == max(b for _, b in sizes[:30])


def test_a_tracks_state_is_about_half_its_float32_encoder_outputs(restorer):
    import torch

    crops = _grainy_crops("ffhq_00001.png", 3)
    with torch.inference_mode():
        code, features = restorer.forward.encode(torch.from_numpy(crops[:1]).permute(0, 3, 1, 2) / 127.5 - 1)
    outputs = sum(t.nbytes for t in (code, *features))
    fusion = TemporalFusion(DEFAULT)
    fused = restorer.restore_tracked(crops, _keys(1, 0, range(3)), fusion)
    assert len(fusion) == 1 and fusion.state_bytes < 0.6 * outputs  # float16 estimates, float32 per-position variances
    assert _flicker(fused) < _flicker(restorer.restore(crops))  # and it still steadies the faces


def test_batch_size_does_not_change_the_output(restorer):
    crops = np.concatenate([_grainy_crops("ffhq_00003.png", 10), _grainy_crops("ffhq_00007.png", 10, seed=2)])
    order = np.arange(20).reshape(2, 10).T.ravel()  # two faces per frame, interleaved as frames hold them
    keys = [FaceKey(int(i // 10), 0, int(i % 10)) for i in order]
    outs = [FaceRestorer(restorer.model, device="cpu", dtype="float32", batch_size=b).restore_tracked(crops[order], keys,
                                                                                   TemporalFusion(DEFAULT))
            for b in (1, 8)]
    assert np.abs(outs[0].astype(int) - outs[1].astype(int)).max() <= 1  # float rounding of batched convs only
    assert _flicker(outs[0][::2]) < _flicker(restorer.restore(crops[:10]))


def test_super_resolution_face_gets_the_same_noise_in_every_frame():
    model = make_gpen(size=64, in_size=32, seed=3)
    crops = np.repeat(_grainy_crops("ffhq_00005.png", 1, side=32), 6, axis=0)
    keys = _keys(4, 0, range(6))
    sr = FaceRestorer(model, device="cpu", dtype="float32", batch_size=1)
    for fusion in (None, TemporalFusion(DEFAULT)):
        out = sr.restore_tracked(crops, keys, fusion)
        assert all(np.array_equal(out[0], face) for face in out[1:])
    batched = FaceRestorer(model, device="cpu", dtype="float32", batch_size=4).restore_tracked(crops, keys, TemporalFusion(DEFAULT))
    assert np.abs(batched.astype(int) - out[0]).max() <= 1  # chunks of 4 and 2: float rounding only
    fresh = sr.restore(crops)
    assert np.abs(fresh[0].astype(int) - fresh[1]).max() > 50  # without track keys the noise is drawn anew


def test_bad_values_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="deflicker"):
        RestoreConfig(deflicker=1.5)
    run = subprocess.run([sys.executable, "-m", "vidgpen", "restore", "in.mp4", "-o", "out.mp4", "--deflicker", "-1"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.strip().startswith("error:") and "deflicker" in run.stderr
    assert "Traceback" not in run.stderr
