"""--deflicker-memory: the fusion states of all tracks stay within a budget; past it new faces fuse
fewer levels (or none), with one warning, and the run finishes."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import FACES
from face_clips import linear_path, load_face, make_clip
from gpen_checkpoints import make_gpen
from media import write_video

from vidgpen import RestoreConfig
from vidgpen.errors import ConfigError
from vidgpen.models.runtime.torch_restorer import FaceRestorer
from vidgpen.models.temporal.fusion import FaceKey, StateBudget, TemporalFusion

WARNING = "deflicker: the tracks' fusion states reached their budget"
DEFAULT = RestoreConfig().deflicker


def _crops(frames: int, side: int = 64) -> np.ndarray:
    face = cv2.resize(load_face(FACES / "ffhq_00003.png", 256)[16:240, 16:240], (side, side), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    return np.stack([np.clip(face + rng.normal(0, 6, face.shape), 0, 255).astype(np.uint8) for _ in range(frames)])


def test_tracks_past_the_budget_fuse_fewer_levels_then_none(caplog):
    restorer = FaceRestorer(make_gpen(size=64), device="cpu", dtype="float32", batch_size=4)
    crops = _crops(4)
    full = TemporalFusion(DEFAULT)
    restorer.restore_tracked(crops[:1], [FaceKey(0, 0, 0)], full)
    one_track = full.state_bytes
    budget = StateBudget(2 * one_track + one_track // 10)  # two full states, then a tenth of one
    fusion = TemporalFusion(DEFAULT, budget=budget)
    keys = [FaceKey(track, 0, frame) for frame in range(2) for track in range(4)]
    out = restorer.restore_tracked(np.concatenate([crops] * 2), keys, fusion)
    fused = [sum(f is not None for f in fusion._tracks[t].filters) for t in range(4)]
    levels = len(fusion._tracks[0].filters)
    assert fused[:2] == [levels, levels] and fused[2] < levels and fused[3] <= fused[2]
    assert budget.peak <= budget.limit and fusion.state_bytes == budget.used
    assert sum(WARNING in r.getMessage() for r in caplog.records) == 1
    per_frame = restorer.restore(crops)
    if fused[3] == 0:  # nothing of the fourth track fused: exactly the per-frame face
        assert np.array_equal(out[7], per_frame[3])
    fusion.fuse(FaceKey(9, 0, 3), *_encoded(restorer, crops[:1]))  # the others ended: their bytes are back
    assert budget.used == fusion.state_bytes == one_track


def _encoded(restorer: FaceRestorer, crops: np.ndarray) -> tuple:
    import torch

    with torch.inference_mode():
        code, features = restorer.fast_gpen.encode(torch.from_numpy(crops).permute(0, 3, 1, 2) / 127.5 - 1)
    return code[0], [f[0] for f in features]


def test_memory_setting_is_checked():
    assert RestoreConfig(deflicker_memory="1.5G").deflicker_memory == "1.5G"
    with pytest.raises(ConfigError, match="deflicker_memory"):
        RestoreConfig(deflicker_memory="lots")


def _crowd_clip(folder, frames: int = 8) -> object:
    """30 real faces in a 6×5 grid drifting slowly (a class photo), grain and JPEG."""
    photos = [load_face(path, 96) for path in sorted(FACES.glob("ffhq_*.png"))]
    photos = [np.ascontiguousarray(p[:, ::-1]) if i % 2 else p for i in range(3) for p in photos]  # 10 photos, 30 faces
    faces = [(photos[i], linear_path((56 + 104 * (i % 6), 56 + 104 * (i // 6)),
                                     (60 + 104 * (i % 6), 58 + 104 * (i // 6)), frames)) for i in range(30)]
    clip = make_clip(faces, frames, (624, 520), codec=None, noise=4.0, jpeg=70)
    return write_video(folder / "crowd.mp4", clip.frames, options={"crf": "18"})


@pytest.mark.slow
def test_thirty_faces_over_the_budget_finish_within_it(tmp_path):
    """A 30-face shot at GPEN-256 (4.5 MB of state a face, 135 MB in all): with a budget of 50 MB the run
    finishes, warns once, and its peak RSS is under the budget plus the same run's at --deflicker 0."""
    video = _crowd_clip(tmp_path, frames=4)  # the state is per track: 4 frames fill it as 8 do
    weights = tmp_path / "gpen-256.pth"
    import torch

    torch.save(make_gpen(size=256, narrow=0.25, channel_multiplier=1).state_dict(), weights)
    budget_mb = 50
    reports = {}
    for name, extra in (("per-frame", ["--deflicker", "0"]), ("budget", ["--deflicker-memory", f"{budget_mb}M"])):
        run = subprocess.run([sys.executable, "-m", "vidgpen", "restore", str(video), "-o", str(tmp_path / f"{name}.mkv"),
                              "--weights", str(weights), "--device", "cpu", "--dtype", "float32", "--codec", "ffv1",
                              "--report", str(tmp_path / f"{name}.json"), *extra], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())
        reports[name]["warnings"] = run.stderr.count(WARNING)
    fused = reports["budget"]
    print({name: (r["tracks"], r["peak_rss_mb"], r["deflicker_state_mb"]) for name, r in reports.items()})
    assert fused["tracks"] == 30 and fused["faces"] == 30 * 4
    assert fused["warnings"] == 1 and reports["per-frame"]["warnings"] == 0
    assert 0 < fused["deflicker_state_mb"] <= budget_mb
    # Peak RSS of the same run moves by up to ~10% from run to run (allocator arenas of the stage
    # threads): measured 971 against 1006 MB, and 996 against 892 MB on a fresh clone. So the bound
    # is the budget plus the per-frame run's peak, with that run-to-run margin on the peak.
    assert fused["peak_rss_mb"] <= 1.12 * reports["per-frame"]["peak_rss_mb"] + budget_mb
