"""The restore pipeline end to end: real clips of real faces with audio, real decoding,
the real detector, and small random-weight GPEN checkpoints in the official layout."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FACES, REPO
from face_clips import load_face, make_clip, smooth_path
from gpen_checkpoints import make_gpen_checkpoint
from media import decoded_frames, frame_times, packet_digests, plane_bytes, write_video

from vidgpen import Pipeline, RestoreConfig, restore_video
from vidgpen.cli import main
from vidgpen.io.reader import probe

STAGES = {"decode", "detect", "track", "smooth", "align", "restore", "paste", "encode"}


def _face_clip(frames: int, seed: int = 0):
    face = load_face(FACES / "ffhq_00003.png", 150)
    return make_clip([(face, smooth_path(160, 120, dx=30, dy=10, period=40))], frames, (320, 240), seed=seed,
                     codec=None)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    clip = _face_clip(16)
    video = write_video(root / "clip.mp4", clip.frames, fps=25, audio="aac")
    weights = make_gpen_checkpoint(root / "tiny-gpen.pth", size=64)
    return {"root": root, "video": video, "clip": clip, "weights": weights}


def _near_faces(motions: np.ndarray, shape: tuple[int, int], margin: int = 24) -> np.ndarray:
    """Per frame, where a face (its whole source square) lands, grown by ``margin`` px."""
    h, w = shape
    out = []
    for m in motions[0]:
        area = cv2.warpAffine(np.ones((150, 150), np.uint8), m, (w, h))
        out.append(cv2.dilate(area, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0)
    return np.stack(out)


def _rgb(path: Path) -> list[np.ndarray]:
    return [f.to_ndarray(format="rgb24") for f in decoded_frames(path)]


def test_restore_changes_only_faces_and_keeps_timing_and_audio(media, tmp_path):
    out, report = tmp_path / "out.mkv", tmp_path / "report.json"
    code = main(["restore", str(media["video"]), "-o", str(out), "--weights", str(media["weights"]),
                 "--codec", "ffv1", "--report", str(report), "-q"])
    assert code == 0
    assert frame_times(out) == frame_times(media["video"])
    copied, source = packet_digests(out), packet_digests(media["video"])
    assert [h for _, h in copied] == [h for _, h in source]  # audio copied byte for byte
    assert all(abs(a - b) <= 0.001 for (a, _), (b, _) in zip(copied, source))  # Matroska keeps ms
    before, after = _rgb(media["video"]), _rgb(out)
    near = _near_faces(media["clip"].motions, before[0].shape[:2])
    for b, a, n in zip(before, after, near):
        assert np.array_equal(b[~n], a[~n])  # far from every face: identical
    changed = sum(not np.array_equal(b, a) for b, a in zip(before, after))
    assert changed >= len(before) - 2  # the face is restored in (nearly) every frame
    data = json.loads(report.read_text())
    assert STAGES <= set(data["stage_seconds"])
    assert data["frames"] == len(before) and data["faces"] >= len(before) - 2
    assert data["settings"]["weights"] == str(media["weights"])


def test_strength_zero_gives_identical_frames(media, tmp_path):
    out = tmp_path / "same.mkv"
    restore_video(media["video"], out, weights=str(media["weights"]), strength=0.0, codec="ffv1")
    for a, b in zip(decoded_frames(media["video"]), decoded_frames(out), strict=True):
        assert plane_bytes(a) == plane_bytes(b)


def test_batch_size_does_not_change_the_result(media, tmp_path):
    outputs = []
    for batch in (1, 8):
        out = tmp_path / f"b{batch}.mkv"
        config = RestoreConfig(weights=str(media["weights"]), batch_size=batch, codec="ffv1", dtype="float32")
        Pipeline(config).run(media["video"], out)
        outputs.append(np.concatenate([np.frombuffer(b"".join(plane_bytes(f)), np.uint8) for f in decoded_frames(out)]))
    # The stored samples agree; only float rounding of different GEMM blockings may flip one level.
    diff = np.abs(outputs[0].astype(int) - outputs[1].astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-4


class _Identity:
    """A user-supplied restorer: returns the crop unchanged (plug-in contract)."""

    in_size = 96

    def __init__(self) -> None:
        self.batches: list[int] = []

    def restore(self, faces: np.ndarray) -> np.ndarray:
        self.batches.append(len(faces))
        return faces.copy()


def test_pipeline_accepts_any_restorer_and_previews(media, tmp_path):
    restorer = _Identity()
    out, preview = tmp_path / "id.mp4", tmp_path / "preview.mp4"
    report = Pipeline(RestoreConfig(batch_size=4), restorer=restorer).run(media["video"], out, preview=preview)
    assert report.faces >= 14 and max(restorer.batches) == 4  # faces gathered across frames
    side = decoded_frames(preview)
    assert len(side) == 16 and (side[0].width, side[0].height) == (640, 240)


def _cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidgpen", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kwargs)


def _cli_here(*args: str) -> subprocess.CompletedProcess:
    """`vidgpen` run in this process (no interpreter and torch start-up per case), its stderr
    caught as a child's would be; a SystemExit (argparse) counts as the exit code."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            code = main(list(args))
        except SystemExit as exit:
            code = exit.code
    return subprocess.CompletedProcess(["vidgpen", *args], code, "", stderr.getvalue())


def _assert_usage_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_inputs_exit_2_with_one_line_and_no_output(media, tmp_path):
    weights = str(media["weights"])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    audio_only = tmp_path / "audio.m4a"
    _audio_only(media["video"], audio_only)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x00garbage" * 100)
    out = tmp_path / "out.mp4"
    cases = [
        ([str(tmp_path / "missing.mp4"), "-o", str(out), "--weights", weights], "missing.mp4"),
        ([str(empty), "-o", str(out), "--weights", weights], "empty.mp4"),
        ([str(text), "-o", str(out), "--weights", weights], "notes.mp4"),
        ([str(audio_only), "-o", str(out), "--weights", weights], "audio.m4a"),
        ([str(media["video"]), "-o", str(media["video"]), "--weights", weights], "clip.mp4"),
        ([str(media["video"]), "-o", str(tmp_path / "no" / "such" / "dir" / "o.mp4"), "--weights", weights], "dir"),
        ([str(media["video"]), "-o", str(out), "--weights", str(corrupt)], "corrupt.pth"),
        ([str(media["video"]), "-o", str(out), "--model", "gpen-bfr-512"], "GPEN-BFR-512.pth"),
        ([str(media["video"]), "-o", str(out), "--strength", "2"], "strength"),
        ([str(media["video"]), "-o", str(out), "--weights", weights, "--start", "30"], "past the end"),
        ([str(media["video"]), "-o", str(out), "--weights", weights, "--report", str(tmp_path / "no" / "r.json")],
         "r.json"),
        ([str(media["video"]), "-o", str(out), "--weights", weights, "--preview", str(out)], "preview"),
        ([str(media["video"]), "-o", str(out), "--weights", weights, "--preview", str(tmp_path / "p.webm")],
         "p.webm"),
    ]
    size_before = media["video"].stat().st_size
    for number, (args, fragment) in enumerate(cases):
        # A real process for the first and the corrupt checkpoint (no traceback reaches the
        # terminal); the others in this process, each about 2.5 s less.
        run = _cli if number in (0, 6) else _cli_here
        _assert_usage_error(run("restore", *args), fragment)
        assert not out.exists() and not list(tmp_path.glob("*.partial*"))
    assert media["video"].stat().st_size == size_before  # the input is never touched


def _audio_only(source: Path, target: Path) -> None:
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_mid_run_exits_without_partial_file(media, tmp_path, signum, code):
    """Ctrl-C, SIGTERM as docker stop, systemd and batch schedulers send it, and SIGHUP
    (the terminal closed)."""
    video = write_video(tmp_path / "long.mp4", _face_clip(150, seed=1).frames, fps=25, audio="aac")
    out = tmp_path / "out.mp4"
    process = subprocess.Popen([sys.executable, "-m", "vidgpen", "restore", str(video), "-o", str(out),
                                "--weights", str(media["weights"]), "--batch-size", "1", "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "out.partial.mp4"
    deadline = time.monotonic() + 60
    while not partial.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert partial.exists(), "the run never started writing"
    time.sleep(0.5)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert not out.exists() and not partial.exists()


def test_presets_show_prints_merged_settings():
    result = _cli("presets", "show", "film")
    assert result.returncode == 0
    assert 'model = "gpen-bfr-2048"' in result.stdout and "strength = 0.8" in result.stdout
    assert "batch_size = 8" in result.stdout  # defaults are part of the merged view
    listing = _cli("presets", "list").stdout
    assert all(name in listing for name in ("film", "home-video", "fast", "max"))


def test_flags_beat_preset_and_config(media, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("strength = 0.3\nsmooth = 2\n")
    out = tmp_path / "o.mkv"
    report = tmp_path / "r.json"
    code = main(["restore", str(media["video"]), "-o", str(out), "--preset", "film", "--config", str(config),
                 "--weights", str(media["weights"]), "--smooth", "3", "--codec", "ffv1", "--report", str(report),
                 "-q"])
    assert code == 0
    settings = json.loads(report.read_text())["settings"]
    assert settings["strength"] == 0.3 and settings["smooth"] == 3  # config file, then the flag
    assert settings["color_match"] is True and settings["grain"] == 0.5  # from the film preset
    assert json.loads(report.read_text())["faces"] > 0


@pytest.mark.slow
def test_memory_does_not_grow_with_length(media, tmp_path):
    """Peak RSS of a 10× longer clip stays about the same (measured properly in bench/)."""
    script = (
        "import sys\n"
        "from vidgpen import restore_video\n"
        "restore_video(sys.argv[1], sys.argv[2], weights=sys.argv[3], detect_every=2)\n"
        "from vidgpen.stats import peak_rss_mb\n"
        "print(peak_rss_mb())\n"
    )
    peaks = []
    for frames in (20, 200):
        clip = write_video(tmp_path / f"c{frames}.mp4", _face_clip(frames).frames, fps=25, audio="aac")
        run = subprocess.run([sys.executable, "-c", script, str(clip), str(tmp_path / f"o{frames}.mp4"),
                              str(media["weights"])], capture_output=True, text=True, cwd=REPO, check=True)
        peaks.append(float(run.stdout.split()[-1]))
    assert peaks[1] < peaks[0] * 1.25, peaks


def _auto_among(monkeypatch, checkpoints: dict[str, dict]) -> None:
    """``--model auto`` chooses among these registry names, placed in the cache ($VIDGPEN_HOME/weights)."""
    from vidgpen.weights import registry

    monkeypatch.setattr(registry, "AUTO_MODELS", tuple(checkpoints))
    for name, layout in checkpoints.items():
        make_gpen_checkpoint(registry.path_of(name), narrow=1 / 32, channel_multiplier=1, **layout)


def test_auto_model_picks_the_smallest_gpen_above_the_face_size(media, tmp_path, monkeypatch):
    _auto_among(monkeypatch, {"gpen-bfr-256": {"size": 256}, "gpen-bfr-512": {"size": 512}})
    chosen = {}
    for factor in (1.0, 2.0):
        report = restore_video(media["video"], tmp_path / f"auto{factor}.mp4", model="auto", auto_factor=factor,
                               end=0.2)
        assert report.faces > 0
        chosen[factor] = report.models
    # The face spans ~130 px on screen: 1× → 256 is enough, 2× → 512.
    assert chosen == {1.0: {"gpen-bfr-256": "256→256"}, 2.0: {"gpen-bfr-512": "512→512"}}


def test_auto_model_feeds_a_super_resolution_checkpoint_its_input_side(media, tmp_path, monkeypatch):
    """A 256 → 512 checkpoint is picked for the 512 px it returns, cut at 256 and pasted from 512."""
    _auto_among(monkeypatch, {"gpen-bfr-256": {"size": 256}, "gpen-bfr-512": {"size": 512, "in_size": 256}})
    out = tmp_path / "sr.mkv"
    report = restore_video(media["video"], out, model="auto", auto_factor=2.0, end=0.2, codec="ffv1")
    assert report.faces > 0 and report.models == {"gpen-bfr-512": "256→512"}
    restored, source = _rgb(out), _rgb(media["video"])[: len(_rgb(out))]
    changed = np.abs(np.stack(restored).astype(int) - np.stack(source)).max(axis=-1) > 20
    near = _near_faces(media["clip"].motions, source[0].shape[:2])[: len(restored)]
    assert changed.any(axis=(1, 2)).all() and not (changed & ~near).any()  # every frame's face, only the face


def test_auto_model_offline_fails_before_the_first_frame(media, tmp_path, monkeypatch, capsys):
    import dataclasses

    from vidgpen.errors import WeightsError
    from vidgpen.weights import registry

    refused = "http://127.0.0.1:9/gone.pth"  # discard port: refused at once
    for name in registry.AUTO_MODELS:
        monkeypatch.setitem(registry.REGISTRY, name, dataclasses.replace(registry.REGISTRY[name], sources=(refused,)))
    started = []
    with pytest.raises(WeightsError, match=f"gpen-bfr-256 weights missing .*no source reachable: {refused}"):
        Pipeline(RestoreConfig(model="auto")).run(media["video"], tmp_path / "o.mp4", on_start=started.append)
    out = tmp_path / "cli.mp4"
    code = main(["restore", str(media["video"]), "-o", str(out), "--model", "auto", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and refused in err[0]
    assert started == [] and sorted(p.name for p in tmp_path.iterdir()) == []  # no output, not even a part file


def test_rotated_phone_clip_is_restored_upright_and_keeps_its_rotation(media, tmp_path):
    """Faces are found in the upright picture; the output keeps the stored orientation
    and the display matrix, and pixels far from the face stay identical."""
    upright = media["clip"].frames
    stored = [np.ascontiguousarray(np.rot90(f, k=1)) for f in upright]  # what a phone writes for rotation 90
    video = write_video(tmp_path / "phone.mp4", stored, fps=25, audio="aac", rotation=90)
    out = tmp_path / "phone-out.mkv"
    report = restore_video(video, out, weights=str(media["weights"]), codec="ffv1")
    assert report.faces >= len(upright) - 2
    before, after = decoded_frames(video), decoded_frames(out)
    assert len(after) == len(before)
    assert probe(out).rotation == probe(video).rotation == 90
    near = _near_faces(media["clip"].motions, upright[0].shape[:2])
    for b, a, n in zip(before, after, near):
        far = ~np.rot90(n, k=1)
        b, a = b.to_ndarray(format="rgb24"), a.to_ndarray(format="rgb24")
        assert np.array_equal(b[far], a[far])
        assert not np.array_equal(b, a)


def test_variable_frame_rate_clip_keeps_every_timestamp(media, tmp_path):
    """Phone clips are VFR: each frame keeps its own time, nothing is re-timed."""
    from fractions import Fraction

    pts = [0, 40, 70, 130, 150, 200, 260, 270, 330, 400, 420, 480, 560, 580, 600, 690]  # ms
    video = write_video(tmp_path / "vfr.mkv", media["clip"].frames, fps=25, pts=pts, time_base=Fraction(1, 1000),
                        audio="libopus")
    out = tmp_path / "vfr-out.mkv"
    restore_video(video, out, weights=str(media["weights"]))
    assert frame_times(out) == frame_times(video) == [Fraction(p, 1000) for p in pts]
    assert [h for _, h in packet_digests(out)] == [h for _, h in packet_digests(video)]


def test_max_preset_without_facexlib_falls_back_to_the_feathered_mask(media, tmp_path, caplog):
    """``max`` asks for facexlib's detector and ParseNet mask; without the extra the run
    still works, saying what it used instead."""
    report = restore_video(media["video"], tmp_path / "max.mp4", preset="max", weights=str(media["weights"]),
                           end=0.2)
    assert report.faces > 0
    assert "face-parsing mask unavailable" in caplog.text
