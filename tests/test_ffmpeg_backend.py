"""--encoder-backend ffmpeg: a real ffmpeg binary (imageio-ffmpeg's) encodes what vidgpen
pipes to it; timing, rotation, colour tags and audio come out as with the PyAV backend."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import psutil
import pytest
from conftest import FACES
from face_clips import load_face, make_clip, smooth_path
from gpen_checkpoints import make_gpen_checkpoint
from media import (
    BT709_TV,
    decoded_frames,
    frame_times,
    moving_frames,
    packet_digests,
    plane_bytes,
    with_subtitles,
    write_video,
)

from vidgpen import RestoreConfig
from vidgpen.batch import BatchOptions, run_batch
from vidgpen.cli import main
from vidgpen.errors import ConfigError, OutputError
from vidgpen.io.backends import open_writer
from vidgpen.io.ffmpeg_tool import ENV_VAR, find_ffmpeg
from vidgpen.io.reader import open_video, probe
from vidgpen.io.writer import partial_path
from vidgpen.pipeline.segments import run_resumable

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
# Irregular frame steps in 1/25 s: a VFR clip.
VFR_STEPS = [0, 3, 5, 9, 10, 14, 20, 21, 27, 30, 31, 36]


@pytest.fixture(autouse=True)
def _ffmpeg_from_env(monkeypatch):
    monkeypatch.setenv(ENV_VAR, FFMPEG)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("ffmpeg_backend")
    face = load_face(FACES / "ffhq_00003.png", 150)
    clip = make_clip([(face, smooth_path(160, 120, dx=30, dy=10, period=40))], len(VFR_STEPS), (320, 240),
                     codec=None)
    vfr = write_video(root / "vfr.mp4", clip.frames, fps=25, pts=[600 * s for s in VFR_STEPS],
                      time_base=Fraction(1, 15000), audio="aac")
    return {"root": root, "vfr": vfr, "weights": make_gpen_checkpoint(root / "tiny-gpen.pth", size=64)}


def _copy(src: Path, out: Path, backend: str, **options) -> None:
    with open_video(src) as reader, open_writer(out, reader.info, backend=backend, **options) as writer:
        for frame in reader:
            writer.write(frame)


def _rgb(path: Path) -> list[np.ndarray]:
    return [f.to_ndarray(format="rgb24").astype(np.float64) for f in decoded_frames(path)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_writer_keeps_vfr_times_rotation_colour_and_audio(tmp_path):
    src = write_video(tmp_path / "src.mp4", moving_frames(10), pts=[600 * s for s in VFR_STEPS[:10]],
                      time_base=Fraction(1, 15000), audio="aac", rotation=90, tags=BT709_TV)
    _copy(src, tmp_path / "pyav.mp4", "pyav")
    _copy(src, tmp_path / "ffmpeg.mp4", "ffmpeg")
    source, out = probe(src), probe(tmp_path / "ffmpeg.mp4")
    assert frame_times(tmp_path / "ffmpeg.mp4") == frame_times(src)
    tags = [(i.rotation, i.color_range, i.color_space, i.color_primaries, i.color_trc) for i in (source, out)]
    assert tags[0] == tags[1] == (90, "tv", "bt709", "bt709", "bt709")
    assert packet_digests(tmp_path / "ffmpeg.mp4") == packet_digests(src)  # audio: same bytes, same times
    for a, b in zip(_rgb(tmp_path / "pyav.mp4"), _rgb(tmp_path / "ffmpeg.mp4"), strict=True):
        assert _psnr(a, b) > 40  # libx264 on both sides, crf 18: within encoder tolerance


def test_text_subtitles_nut_cannot_carry_are_left_out_with_the_pyav_rules_warning(tmp_path, caplog):
    src = with_subtitles(write_video(tmp_path / "v.mkv", moving_frames(12)), tmp_path / "s.mkv")
    with caplog.at_level(logging.WARNING):
        _copy(src, tmp_path / "out.mkv", "ffmpeg", codec="ffv1")
    assert "subtitle stream #1 (subrip) cannot be stored in a matroska (piped to ffmpeg as NUT) file" in caplog.text
    assert probe(tmp_path / "out.mkv").streams == () and frame_times(tmp_path / "out.mkv") == frame_times(src)


def test_restore_with_ffmpeg_backend_matches_pyav_backend(media, tmp_path):
    """The issue's acceptance run: --encoder-backend ffmpeg --codec libx264 on a VFR clip."""
    outputs = {}
    for backend in ("pyav", "ffmpeg"):
        out, report = tmp_path / f"{backend}.mp4", tmp_path / f"{backend}.json"
        code = main(["restore", str(media["vfr"]), "-o", str(out), "--weights", str(media["weights"]),
                     "--encoder-backend", backend, "--codec", "libx264", "--strength", "0",
                     "--report", str(report), "-q"])
        assert code == 0
        outputs[backend] = out
        data = json.loads(report.read_text())
        assert data["frames"] == len(VFR_STEPS) and data["stage_seconds"]["encode"] > 0
        assert data["settings"]["encoder_backend"] == backend
    restored = outputs["ffmpeg"]
    assert frame_times(restored) == frame_times(media["vfr"]) == [Fraction(s, 25) for s in VFR_STEPS]
    assert packet_digests(restored) == packet_digests(media["vfr"])  # audio packets copied
    # Two libx264 builds (PyAV's, imageio-ffmpeg's) may choose differently; crf 18 bounds it.
    for a, b in zip(_rgb(outputs["pyav"]), _rgb(restored), strict=True):
        assert _psnr(a, b) > 40


def test_ffv1_through_the_pipe_is_lossless_and_resume_joins_ffmpeg_segments(media, tmp_path):
    config = RestoreConfig(weights=str(media["weights"]), strength=0, codec="ffv1", encoder_backend="ffmpeg")
    out = tmp_path / "resumed.mkv"
    run_resumable(config, media["vfr"], out, 0.5)
    assert frame_times(out) == frame_times(media["vfr"])
    assert [plane_bytes(f) for f in decoded_frames(out)] == [plane_bytes(f) for f in decoded_frames(media["vfr"])]
    assert [h for _, h in packet_digests(out)] == [h for _, h in packet_digests(media["vfr"])]


def test_batch_runs_the_ffmpeg_backend(media, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    os.link(media["vfr"], library / "a.mp4")
    config = RestoreConfig(weights=str(media["weights"]), strength=0, encoder_backend="ffmpeg")
    summary = run_batch(library, tmp_path / "out", config, BatchOptions())
    assert summary.done == 1 and summary.failed == 0
    assert frame_times(tmp_path / "out" / "a.mp4") == frame_times(media["vfr"])


# --- the binary and its encoders --------------------------------------------------------


def test_binary_lookup_order_is_flag_then_env_then_path(tmp_path, monkeypatch):
    for name in ("flag", "env", "path"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "ffmpeg").symlink_to(FFMPEG)
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env" / "ffmpeg"))
    assert find_ffmpeg(str(tmp_path / "flag" / "ffmpeg")) == Path(FFMPEG).resolve()
    with pytest.raises(OutputError, match=r"nope: no executable ffmpeg there \(given by --ffmpeg\)"):
        find_ffmpeg(str(tmp_path / "nope"))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone"))
    with pytest.raises(OutputError, match=rf"gone: no executable ffmpeg there \(given by \${ENV_VAR}\)"):
        find_ffmpeg()
    monkeypatch.delenv(ENV_VAR)
    assert find_ffmpeg() == Path(FFMPEG).resolve()
    monkeypatch.setenv("PATH", str(tmp_path / "flag" / "empty"))
    with pytest.raises(OutputError, match="not found on PATH"):
        find_ffmpeg()


def _refused(media, tmp_path, capsys, *flags: str) -> str:
    out = tmp_path / "out.mp4"
    code = main(["restore", str(media["vfr"]), "-o", str(out), "--weights", str(media["weights"]),
                 "--encoder-backend", "ffmpeg", "-q", *flags])
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("error: ") and error.count("\n") == 1, error
    assert not out.exists() and not partial_path(out).exists()
    return error


def test_missing_binary_is_a_clean_exit_2(media, tmp_path, capsys):
    error = _refused(media, tmp_path, capsys, "--ffmpeg", str(tmp_path / "no-ffmpeg"))
    assert f"{tmp_path / 'no-ffmpeg'}: no executable ffmpeg there" in error


def test_encoder_the_binary_lacks_is_a_clean_exit_2(media, tmp_path, capsys):
    error = _refused(media, tmp_path, capsys, "--codec", "h264_videotoolbox")
    assert "has no video encoder 'h264_videotoolbox'" in error


def test_encoder_that_fails_to_start_is_a_clean_exit_2_with_ffmpegs_reason(media, tmp_path, capsys, caplog):
    args = "-vaapi_device /dev/dri/no-such-gpu -vf format=nv12,hwupload"
    with caplog.at_level(logging.INFO):
        error = _refused(media, tmp_path, capsys, "--codec", "h264_vaapi", f"--ffmpeg-args={args}")
    assert "a trial frame with h264_vaapi failed: ffmpeg failed" in error and "/dev/dri/no-such-gpu" in error
    assert "Device creation failed" in caplog.text  # ffmpeg's stderr tail, for -v


def test_config_checks_backend_and_args():
    with pytest.raises(ConfigError, match="encoder_backend"):
        RestoreConfig(encoder_backend="gstreamer")
    with pytest.raises(ConfigError, match="ffmpeg_args"):
        RestoreConfig(ffmpeg_args='-metadata title="unclosed')
    assert RestoreConfig(ffmpeg_args="-tune film -g 48").encoding["ffmpeg_args"] == ("-tune", "film", "-g", "48")


# --- ffmpeg stopping, or being stopped ---------------------------------------------------


def _ffmpeg_children(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(pid).children(recursive=True) if "ffmpeg" in p.name()]


def test_ffmpeg_dying_mid_run_is_one_error_and_no_file(tmp_path):
    src = write_video(tmp_path / "src.mp4", moving_frames(40), audio="aac")
    out = tmp_path / "out.mp4"
    with pytest.raises(OutputError, match=r"out.mp4: ffmpeg failed \(exit -9\)"):
        with open_video(src) as reader, open_writer(out, reader.info, backend="ffmpeg") as writer:
            for frame in reader:
                writer.write(frame)
                if frame.index == 5:
                    for child in _ffmpeg_children(os.getpid()):
                        child.kill()
    assert not out.exists() and not partial_path(out).exists()


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_stop_the_child_ffmpeg_too(media, tmp_path, stop, code):
    frames = [load_face(FACES / "ffhq_00003.png", 160)[:120, :160]] * 150
    video = write_video(tmp_path / "long.mp4", frames, fps=25, audio="aac")
    out = tmp_path / "out.mp4"
    process = subprocess.Popen([sys.executable, "-m", "vidgpen", "restore", str(video), "-o", str(out),
                                "--weights", str(media["weights"]), "--batch-size", "1", "--encoder-backend",
                                "ffmpeg", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not partial_path(out).exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    children = _ffmpeg_children(process.pid)
    assert partial_path(out).exists() and children, "the run never started ffmpeg"
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code and "Traceback" not in stderr, stderr
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)
    assert not out.exists() and not partial_path(out).exists()
