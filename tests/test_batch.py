"""Batch mode over a small real library (nested folders, real faces, a corrupt file, a
non-video): the manifest, resuming, Ctrl-C, and the same run on a local Ray cluster."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import pytest
from conftest import FACES, REPO
from face_clips import load_face, make_clip, smooth_path
from gpen_checkpoints import make_gpen_checkpoint
from media import decoded_frames, moving_frames, plane_bytes, write_video

from vidgpen import cli
from vidgpen.batch import (
    MANIFEST_NAME,
    BatchOptions,
    file_sha256,
    find_videos,
    output_names,
    run_batch,
)
from vidgpen.config import RestoreConfig
from vidgpen.io.writer import partial_path

SIZE = (256, 192)
FRAMES = 10
# input (relative to the library) → expected output (relative to the output folder)
GOOD = {
    "intro.mp4": "intro.mp4",
    "2019/party.mkv": "2019/party.mp4",
    "2019/summer/beach.mov": "2019/summer/beach.mp4",
    "family/grandma.mp4": "family/grandma.mp4",
}
BROKEN = "family/broken.mp4"
NOT_VIDEOS = ("family/notes.txt", "2019/cover.jpg")


def _face_clip(path: Path, face: str, seed: int, frames: int = FRAMES) -> Path:
    """A real face drifting over a textured background, with an AAC track."""
    image = load_face(FACES / face, 96)
    clip = make_clip([(image, smooth_path(SIZE[0] / 2, SIZE[1] / 2, dx=20, dy=10, period=10))], frames,
                     size=SIZE, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, clip.frames, fps=25, audio="aac")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return make_gpen_checkpoint(tmp_path_factory.mktemp("weights") / "gpen64.pth", size=64)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    lib = tmp_path_factory.mktemp("library")
    for seed, (rel, face) in enumerate(zip(GOOD, ("ffhq_00001.png", "ffhq_00003.png", "ffhq_00002.png",
                                                  "ffhq_00005.png"))):
        _face_clip(lib / rel, face, seed)
    (lib / BROKEN).write_bytes((lib / "intro.mp4").read_bytes()[:1500])  # cut inside the header
    (lib / "family/notes.txt").write_text("grandma's 80th, summer 2019\n")
    cv2.imwrite(str(lib / "2019/cover.jpg"), cv2.imread(str(FACES / "selfie_0.jpg")))
    return lib


def _batch(lib: Path, out: Path, weights: Path, *extra: str) -> tuple[int, str]:
    """``vidgpen batch`` in this process; returns the exit code and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        code = cli.main(["batch", str(lib), "-o", str(out), "--weights", str(weights), "--encoder-preset",
                         "veryfast", "--report", str(out.parent / f"{out.name}-report.json"), *extra])
    return code, printed.getvalue()


def _report(out: Path) -> dict:
    return json.loads((out.parent / f"{out.name}-report.json").read_text())


def _manifest(out: Path) -> dict[str, dict]:
    return {r["input"]: r for r in json.loads((out / MANIFEST_NAME).read_text())["files"]}


def _mtimes(out: Path) -> dict[str, int]:
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in out.rglob("*.mp4")}


def _partials(root: Path) -> list[Path]:
    return list(root.rglob("*.partial.*"))


@pytest.fixture(scope="module")
def first_run(library: Path, weights: Path, tmp_path_factory) -> tuple[Path, int, str]:
    out = tmp_path_factory.mktemp("first") / "out"
    code, printed = _batch(library, out, weights)
    return out, code, printed


@pytest.fixture
def copied(library: Path, first_run, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the library and of the first run's output (times kept) to rerun on."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    shutil.copytree(library, lib)
    shutil.copytree(first_run[0], out)
    return lib, out


def test_library_restored_and_failure_isolated(library: Path, first_run) -> None:
    out, code, printed = first_run
    assert code == 1  # one input failed
    manifest = _manifest(out)
    assert sorted(manifest) == sorted([*GOOD, BROKEN])  # the non-videos are not in it
    for rel, rel_out in GOOD.items():
        record = manifest[rel]
        assert (record["status"], record["output"], record["error"]) == ("done", rel_out, None)
        assert record["frames"] == FRAMES and record["faces"] == FRAMES  # one real face per frame, found
        assert record["sha256"] == file_sha256(library / rel)
        assert record["size"] == (library / rel).stat().st_size
        assert record["stage_seconds"]["restore"] > 0
        frames = decoded_frames(out / rel_out)
        assert len(frames) == FRAMES and (frames[0].width, frames[0].height) == SIZE
    broken = manifest[BROKEN]
    assert (broken["status"], broken["error_type"], broken["attempts"]) == ("failed", "InputError", 1)
    assert str(library / BROKEN) in broken["error"] and "not a readable media file" in broken["error"]
    assert "\n" not in broken["error"]
    line = next(line for line in printed.splitlines() if line.startswith(f"failed  {BROKEN} ("))
    assert line.endswith(f"s)  {broken['error']}")  # the error, whole, on the file's line
    # the output tree mirrors the library: the same folders, one .mp4 per good video, nothing else
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        [*GOOD.values(), MANIFEST_NAME])
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_dir()) == [
        "2019", "2019/summer", "family"]
    report = _report(out)
    assert (report["done"], report["skipped"], report["failed"], report["faces"]) == (4, 0, 1, 4 * FRAMES)
    assert sorted(f["input"] for f in report["files"]) == sorted(manifest)


def test_rerun_redoes_nothing(copied, weights: Path) -> None:
    lib, out = copied
    manifest, mtimes = (out / MANIFEST_NAME).read_bytes(), _mtimes(out)
    code, printed = _batch(lib, out, weights)
    assert code == 1  # the corrupt file is still not done
    assert (out / MANIFEST_NAME).read_bytes() == manifest
    assert _mtimes(out) == mtimes
    report = _report(out)
    assert (report["done"], report["skipped"], report["failed"]) == (0, 4, 1)
    assert f"failed  {BROKEN}" in printed  # the unchanged failure is still reported


def test_touched_or_changed_input_alone_is_redone(copied, weights: Path) -> None:
    lib, out = copied
    before, mtimes = _manifest(out), _mtimes(out)
    touched, changed = "intro.mp4", "2019/summer/beach.mov"
    stat = (lib / touched).stat()
    os.utime(lib / touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    _face_clip(lib / changed, "ffhq_00007.png", seed=9)  # new content
    code, _ = _batch(lib, out, weights)
    assert code == 1
    report = _report(out)
    assert (report["done"], report["skipped"], report["failed"]) == (2, 2, 1)
    after, new_mtimes = _manifest(out), _mtimes(out)
    redone = {GOOD[touched], GOOD[changed]}
    assert {rel for rel in mtimes if new_mtimes[rel] != mtimes[rel]} == redone
    assert after[touched]["mtime"] == (lib / touched).stat().st_mtime
    assert after[touched]["sha256"] == before[touched]["sha256"]  # same bytes, redone because touched
    assert after[changed]["sha256"] == file_sha256(lib / changed) != before[changed]["sha256"]
    for rel in set(GOOD) - {touched, changed} | {BROKEN}:
        assert after[rel] == before[rel]


def test_changed_setting_redoes_all_with_new_settings(copied, weights: Path) -> None:
    lib, out = copied
    before, mtimes = _manifest(out), _mtimes(out)
    old_frame = plane_bytes(decoded_frames(out / "intro.mp4")[5])
    code, _ = _batch(lib, out, weights, "--strength", "0.5")
    assert code == 1
    report = _report(out)
    assert (report["done"], report["skipped"], report["failed"]) == (4, 0, 1)
    after = _manifest(out)
    settings = {r["settings"] for r in after.values()}
    assert len(settings) == 1 and settings.isdisjoint(r["settings"] for r in before.values())
    assert all(_mtimes(out)[rel] != mtime for rel, mtime in mtimes.items())
    assert plane_bytes(decoded_frames(out / "intro.mp4")[5]) != old_frame  # half-strength restoration
    assert after[BROKEN]["status"] == "failed"  # tried again: the settings changed


def test_force_redoes_all(copied, weights: Path) -> None:
    lib, out = copied
    before, mtimes = _manifest(out), _mtimes(out)
    code, _ = _batch(lib, out, weights, "--force")
    assert code == 1
    report = _report(out)
    assert (report["done"], report["skipped"], report["failed"]) == (4, 0, 1)
    assert all(_mtimes(out)[rel] != mtime for rel, mtime in mtimes.items())
    assert {r["settings"] for r in _manifest(out).values()} == {r["settings"] for r in before.values()}


def test_all_done_exits_0_and_dry_run_lists_work(library: Path, weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, printed = _batch(library, out, weights, "--dry-run", "--exclude", "broken.*")
    assert code == 0 and not out.exists()  # nothing written
    for rel, rel_out in GOOD.items():
        assert f"pending {rel} -> {rel_out}\n" in printed
    code, _ = _batch(library, out, weights, "--include", "2019/*", "--exclude", "*.mov")
    assert code == 0  # everything selected is done
    assert sorted(_manifest(out)) == ["2019/party.mkv"]


def test_sigterm_leaves_no_partial_output_records_interrupted_and_rerun_finishes(library: Path, weights: Path,
                                                                                 tmp_path: Path) -> None:
    """SIGTERM (docker stop, systemd, schedulers) is handled as Ctrl-C: exit 143."""
    out = tmp_path / "out"
    log = tmp_path / "batch.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "vidgpen", "batch", str(library), "-o", str(out), "--weights", str(weights),
             "--encoder-preset", "veryfast"], stdout=sink, stderr=sink, env=env)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                with contextlib.suppress(FileNotFoundError):  # before the first file is done
                    if any(r["status"] == "done" for r in _manifest(out).values()):
                        break
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 143, log.read_text()
    assert "interrupted" in log.read_text()
    assert _partials(out) == []
    manifest = _manifest(out)  # whole, valid JSON
    done = {rel for rel, r in manifest.items() if r["status"] == "done"}
    cut_short = [r["status"] for rel, r in manifest.items() if rel in GOOD and r["status"] != "done"]
    assert cut_short == ["interrupted"]  # the file being restored: recorded, but not as failed
    assert 1 <= len(done) < len(GOOD)  # stopped part-way
    assert all((out / manifest[rel]["output"]).is_file() for rel in done)
    kept = {manifest[rel]["output"]: (out / manifest[rel]["output"]).stat().st_mtime_ns for rel in done}

    code, _ = _batch(library, out, weights)
    assert code == 1
    report = _report(out)
    assert (report["done"], report["skipped"], report["failed"]) == (len(GOOD) - len(done), len(done), 1)
    assert {rel: r["status"] for rel, r in _manifest(out).items()} == {**dict.fromkeys(GOOD, "done"),
                                                                       BROKEN: "failed"}
    assert {rel: (out / rel).stat().st_mtime_ns for rel in kept} == kept  # not redone
    assert _partials(out) == []


def test_ray_missing_says_how_to_install(library: Path, weights: Path, tmp_path: Path, monkeypatch,
                                          capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code = cli.main(["batch", str(library), "-o", str(tmp_path / "out"), "--weights", str(weights),
                     "--engine", "ray"])
    assert code == 2
    assert "pip install 'vidgpen[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_finding_videos(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    write_video(tmp_path / "a/clip.mp4", moving_frames(2))
    shutil.copy(tmp_path / "a/clip.mp4", tmp_path / "a/camcorder.dat")  # unknown extension: probed
    shutil.copy(tmp_path / "a/clip.mp4", tmp_path / "a/clip.mov")  # same stem as clip.mp4
    shutil.copy(tmp_path / "a/clip.mp4", tmp_path / "a/._clip.mp4")  # macOS metadata twin: hidden
    (tmp_path / "a/data.bin").write_bytes(os.urandom(4096))  # unknown extension, not media
    cv2.imwrite(str(tmp_path / "a/still.ppm"), moving_frames(1)[0])  # a still image is not a video
    (tmp_path / ".trash").mkdir()
    shutil.copy(tmp_path / "a/clip.mp4", tmp_path / ".trash/old.mp4")
    found = [p.relative_to(tmp_path).as_posix() for p in find_videos(tmp_path)]
    assert found == ["a/camcorder.dat", "a/clip.mov", "a/clip.mp4"]
    assert [p.name for p in find_videos(tmp_path, include=["*.mp4"])] == ["clip.mp4"]
    assert [p.name for p in find_videos(tmp_path, exclude=["a/clip.*"])] == ["camcorder.dat"]
    assert output_names(found, ".mp4") == {"a/camcorder.dat": "a/camcorder.mp4", "a/clip.mov": "a/clip.mov.mp4",
                                           "a/clip.mp4": "a/clip.mp4.mp4"}


# --- Ray ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU Ray head on 127.0.0.1 in its own session, stopped through its own process
    (not `ray stop`, which would stop every Ray instance on the machine)."""
    ray_cli = shutil.which("ray")
    if ray_cli is None:
        pytest.skip("the ray command is not installed")
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="vgray", dir="/tmp"))  # short: Ray's socket paths must stay short
    # Local-only mode keeps the head on 127.0.0.1 (else `ray start` turns --node-ip-address=127.0.0.1
    # into the outward address and listens everywhere). No token auth: a token in ~/.ray, which
    # any local ray.init writes, turns it on for `ray start` but not for a driver that connects.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_AUTH_MODE": "disabled"}
    log = (temp / "start.log").open("w")
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert head.poll() is None and time.monotonic() < deadline, (temp / "start.log").read_text()
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # the head drains and stops the processes it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # anything of that session still there
            os.killpg(head.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_engine_matches_local(library: Path, weights: Path, first_run, ray_cluster: str, tmp_path: Path,
                                  monkeypatch) -> None:
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    local = first_run[0]
    out = tmp_path / "out"
    # 3 workers on 2 CPUs: they share them instead of one waiting for a CPU that never frees up
    code, printed = _batch(library, out, weights, "--engine", "ray", "--ray-address", ray_cluster, "--jobs", "3")
    assert code == 1, printed
    ray_manifest, local_manifest = _manifest(out), _manifest(local)
    fields = ("status", "output", "error", "error_type", "frames", "faces", "sha256", "settings", "size", "mtime")
    assert {rel: [r[f] for f in fields] for rel, r in ray_manifest.items()} == {
        rel: [r[f] for f in fields] for rel, r in local_manifest.items()}
    for rel_out in GOOD.values():
        ray_frames, local_frames = decoded_frames(out / rel_out), decoded_frames(local / rel_out)
        assert [plane_bytes(f) for f in ray_frames] == [plane_bytes(f) for f in local_frames], rel_out
    workers = {r["worker"] for r in ray_manifest.values()}
    assert len(workers) >= 2 and f"{socket.gethostname()}:{os.getpid()}" not in workers  # in Ray worker processes
    assert _partials(out) == []


@pytest.mark.parametrize("engine", ["local", pytest.param("ray", marks=pytest.mark.slow)])
def test_stopping_mid_file_removes_its_partial_output(engine: str, weights: Path, tmp_path: Path,
                                                      request, monkeypatch) -> None:
    """Ctrl-C while a file is being written: local jobs drop it at the next frame, killed
    Ray workers' files are deleted by the driver; the manifest keeps what was done and
    records the file being written as interrupted."""
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    lib, out = tmp_path / "lib", tmp_path / "out"
    short = _face_clip(lib / "a_short.mp4", "ffhq_00001.png", seed=0, frames=4)
    long_frames = [f.to_ndarray(format="rgb24") for f in decoded_frames(short)] * 60  # seconds of work
    write_video(lib / "b_long.mp4", long_frames, fps=25)
    writing = partial_path(out / "b_long.mp4")
    seen = []

    def stop_once_the_long_file_is_being_written(result) -> None:
        deadline = time.monotonic() + 60
        while not writing.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(writing.exists())
        raise KeyboardInterrupt

    address = request.getfixturevalue("ray_cluster") if engine == "ray" else None
    options = BatchOptions(engine=engine, ray_address=address, jobs=2)
    with pytest.raises(KeyboardInterrupt):
        run_batch(lib, out, RestoreConfig(weights=str(weights)), options,
                  on_result=stop_once_the_long_file_is_being_written)
    assert seen == [True]  # the long file was being written when the run stopped ...
    assert _partials(out) == [] and not (out / "b_long.mp4").exists()  # ... and nothing of it is left
    statuses = {rel: r["status"] for rel, r in _manifest(out).items()}
    assert statuses == {"a_short.mp4": "done", "b_long.mp4": "interrupted"}  # cut short: not failed, redone next run


def test_resume_segments_give_the_same_library_and_leave_no_parts(library: Path, weights: Path, first_run,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, printed = _batch(library, out, weights, "--resume", "2")
    assert code == 1, printed  # the broken file still fails, alone
    for rel in GOOD.values():
        restored, plain = decoded_frames(out / rel), decoded_frames(first_run[0] / rel)
        assert len(restored) == FRAMES
        assert [plane_bytes(f) for f in restored] == [plane_bytes(f) for f in plain]
    assert not list(out.rglob("*.vidgpen-parts")) and not _partials(out)
