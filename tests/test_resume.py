"""--resume: segments kept on disk, an interrupted run continues where it stopped, the joined
output equals an uninterrupted one frame for frame with the source's timing and audio."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
from conftest import FACES
from face_clips import load_face, make_clip, smooth_path
from gpen_checkpoints import make_gpen_checkpoint
from media import decoded_frames, frame_times, moving_frames, packet_digests, plane_bytes, write_video

from vidgpen import Pipeline, RestoreConfig
from vidgpen.io.reader import probe
from vidgpen.models.runtime.torch_restorer import FaceRestorer
from vidgpen.pipeline.segments import parts_folder, plan_segments, run_resumable

FRAMES, FPS = 100, 25  # 4 s: segments of 1 s → [0, 1), [1, 2), [2, end)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    face = load_face(FACES / "ffhq_00003.png", 150)
    clip = make_clip([(face, smooth_path(160, 120, dx=30, dy=10, period=40))], FRAMES, (320, 240), codec=None)
    video = write_video(root / "clip.mp4", clip.frames, fps=FPS, audio="aac")
    weights = make_gpen_checkpoint(root / "tiny-gpen.pth", size=64)
    return {"video": video, "weights": weights}


class _PowerCut:
    """The real restorer (with track keys, so --deflicker fuses), until the power goes out after ``calls`` batches."""

    def __init__(self, restorer: FaceRestorer, calls: int) -> None:
        self.in_size, self.out_size, self._restorer, self._left = restorer.in_size, restorer.out_size, restorer, calls

    def restore(self, faces: np.ndarray) -> np.ndarray:
        self._tick()
        return self._restorer.restore(faces)

    def restore_tracked(self, faces: np.ndarray, keys, fusion) -> np.ndarray:
        self._tick()
        return self._restorer.restore_tracked(faces, keys, fusion)

    def _tick(self) -> None:
        self._left -= 1
        if self._left < 0:
            raise KeyboardInterrupt


def _pixels(path) -> list[list[bytes]]:
    return [plane_bytes(f) for f in decoded_frames(path)]


def test_segments_cover_the_span_and_never_end_empty():
    assert [(s.start, s.end) for s in plan_segments(0.0, 4.0, 1.0)] == [(0.0, 1.0), (1.0, 2.0), (2.0, None)]
    assert [(s.start, s.end) for s in plan_segments(0.5, 3.2, 1.0)] == [(0.5, 1.5), (1.5, None)]
    assert len(plan_segments(0.0, 0.4, 60.0)) == 1


def test_interrupted_run_resumes_and_equals_an_uninterrupted_one(media, tmp_path):
    config = RestoreConfig(weights=str(media["weights"]), batch_size=1, codec="ffv1")  # batch 1: bit-exact reruns
    reference = tmp_path / "reference.mkv"
    full = run_resumable(config, media["video"], reference, 1.0)
    assert full.frames == FRAMES and not parts_folder(reference).exists()

    out = tmp_path / "out.mkv"
    cut = _PowerCut(FaceRestorer.load(media["weights"], device="cpu", batch_size=1), calls=40)  # dies in segment 2
    with pytest.raises(KeyboardInterrupt):
        run_resumable(config, media["video"], out, 1.0, restorer=cut)
    assert not out.exists()
    parts = sorted(p.name for p in parts_folder(out).iterdir())
    assert parts == ["part-00000.mkv", "state.json"]  # segment 1 done, segment 2's partial file removed

    progress: list[int] = []
    resumed = run_resumable(config, media["video"], out, 1.0, on_progress=lambda n, _: progress.append(n))
    assert resumed.frames == FRAMES - FPS  # segment 1 was not restored again
    assert progress[0] == FPS + 1 and progress[-1] == FRAMES  # the progress bar counts it as done
    assert not parts_folder(out).exists()
    assert frame_times(out) == frame_times(media["video"])
    assert [h for _, h in packet_digests(out)] == [h for _, h in packet_digests(media["video"])]  # audio copied
    assert _pixels(out) == _pixels(reference)


def test_changed_settings_discard_the_old_segments(media, tmp_path, caplog):
    out = tmp_path / "out.mkv"
    weights = str(media["weights"])
    cut = _PowerCut(FaceRestorer.load(weights, device="cpu"), calls=6)
    with pytest.raises(KeyboardInterrupt):
        run_resumable(RestoreConfig(weights=weights, codec="ffv1"), media["video"], out, 1.0, restorer=cut)
    assert (parts_folder(out) / "part-00000.mkv").exists()
    with caplog.at_level(logging.WARNING, logger="vidgpen.resume"):
        report = run_resumable(RestoreConfig(weights=weights, codec="ffv1", strength=0.5), media["video"],
                               out, 1.0)
    assert "settings changed" in caplog.text and report.frames == FRAMES


def test_trimmed_mp4_resume_keeps_the_plain_runs_timing_and_audio(media, tmp_path):
    config = RestoreConfig(weights=str(media["weights"]), start=0.5, end=3.5)
    plain, segmented = tmp_path / "plain.mp4", tmp_path / "segmented.mp4"
    Pipeline(config).run(media["video"], plain, preview=tmp_path / "plain-preview.mp4")
    run_resumable(config, media["video"], segmented, 1.0, preview=tmp_path / "segmented-preview.mp4")
    assert frame_times(segmented) == frame_times(plain) and len(frame_times(plain)) == 75
    assert packet_digests(segmented) == packet_digests(plain)
    # The before|after video is joined from its segments' parts like the output: the same file.
    assert packet_digests(tmp_path / "segmented-preview.mp4") == packet_digests(tmp_path / "plain-preview.mp4")


@pytest.mark.parametrize(("name", "audio", "rotation", "output"), [
    ("phone.mp4", "aac", 90, "out.mkv"),  # Matroska parts: B-frames with no stored decoding times
    ("broadcast.ts", "mp2", 0, "out.mp4"),  # MPEG-TS: the video starts at 0.08 s, not 0
])
def test_joined_containers_keep_rotation_timing_and_audio(media, tmp_path, name, audio, rotation, output):
    video = write_video(tmp_path / name, moving_frames(60, 96, 64), fps=25, audio=audio, rotation=rotation)
    config = RestoreConfig(weights=str(media["weights"]))
    plain, joined = tmp_path / f"plain{output}", tmp_path / output
    Pipeline(config).run(video, plain)
    run_resumable(config, video, joined, 1.0)
    assert probe(joined).rotation == rotation
    assert frame_times(joined) == frame_times(plain) and len(frame_times(plain)) == 60
    assert packet_digests(joined) == packet_digests(plain)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidgpen.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_resume_and_its_refusals(media, tmp_path):
    out, preview = tmp_path / "cli.mp4", tmp_path / "cli-preview.mp4"
    done = _cli("restore", str(media["video"]), "-o", str(out), "--weights", str(media["weights"]), "--resume", "2",
                "--preview", str(preview), "-q")
    assert done.returncode == 0, done.stderr
    assert len(frame_times(out)) == FRAMES and not parts_folder(out).exists()
    assert frame_times(preview) == frame_times(out)  # joined from both segments
    for extra, message in ((["--faces", "1"], "track ids"), (["--preview", str(tmp_path / "x.mp4")], "another file")):
        refused = _cli("restore", str(media["video"]), "-o", str(tmp_path / "x.mp4"), "--resume", *extra)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr
        assert not (tmp_path / "x.mp4").exists() and not parts_folder(tmp_path / "x.mp4").exists()


def test_a_segmented_run_probes_its_input_once(media, tmp_path, monkeypatch):
    """The input is probed and the output checked once for the run, not once per segment."""
    import vidgpen.io.probe as probe_module

    real, probed = probe_module.probe, []

    def counting_probe(path):
        probed.append(str(path))
        return real(path)

    for module in [m for name, m in sys.modules.items() if name.startswith("vidgpen")]:
        if getattr(module, "probe", None) is real:
            monkeypatch.setattr(module, "probe", counting_probe)
    out = tmp_path / "out.mkv"
    config = RestoreConfig(weights=str(media["weights"]), batch_size=1, codec="ffv1")
    run_resumable(config, media["video"], out, 1.0)
    assert len(plan_segments(0.0, probe(media["video"]).duration, 1.0)) == 3
    assert probed.count(str(media["video"])) == 1
    assert out.exists()
