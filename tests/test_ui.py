"""`vidgpen ui` without a browser: who may listen where, what the Settings screen's command line
means, and that a job a stopped UI left running is picked up by the next one at its segment."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import FACES, REPO
from face_clips import load_face, make_clip, smooth_path
from gpen_checkpoints import make_gpen_checkpoint
from media import write_video

from vidgpen.cli import main as cli
from vidgpen.cli.ui import check_binding
from vidgpen.config import ConfigLayers, build_config
from vidgpen.errors import ConfigError
from vidgpen.io.reader import open_video
from vidgpen.pipeline.segments import parts_folder
from vidgpen.ui.jobs import CANCELLED, DONE, FAILED, RUNNING, Job, JobQueue
from vidgpen.ui.settings import command_line, config_from_argv, settings_argv
from vidgpen.ui.work import run_job


def test_listening_beyond_loopback_needs_a_login():
    assert check_binding("127.0.0.1", None, None) is None
    assert check_binding("::1", None, None) is None
    assert check_binding("localhost", None, None) is None
    assert check_binding("0.0.0.0", "ana:secret", None) == ("ana", "secret")
    assert check_binding("192.168.1.5", None, "tok") == ("", "tok")
    for host in ("0.0.0.0", "192.168.1.5", "::", "my-host.lan"):
        with pytest.raises(ConfigError, match="needs --auth USER:PASS or --token"):
            check_binding(host, None, None)
    with pytest.raises(ConfigError, match="expected USER:PASS"):
        check_binding("0.0.0.0", "no-colon", None)


def test_the_command_refuses_before_importing_anything_heavy():
    code = ("import sys; from vidgpen.cli import main; rc = main(['ui', '--host', '0.0.0.0', '--no-browser']); "
            "print(rc, 'gradio' in sys.modules, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.stdout.split() == ["2", "False", "False"], done
    assert done.stderr.startswith("error: --host 0.0.0.0: listening beyond this machine needs --auth")


def test_settings_become_the_cli_flags_and_its_messages(capsys):
    values = {"strength": 0.5, "deflicker": 0.0, "color_match": False, "weights": "", "crf": 18.0,
              "deinterlace": "auto", "batch_size": 1.0, "faces": "largest"}
    argv = settings_argv("film", values)
    assert argv == ["--preset", "film", "--strength", "0.5", "--deflicker", "0", "--no-color-match",
                    "--deinterlace=auto", "--batch-size", "1", "--faces", "largest"]
    expected = build_config(ConfigLayers(preset="film", overrides={"strength": 0.5, "deflicker": 0.0,
                                         "color_match": False, "deinterlace": "auto", "batch_size": 1,
                                         "faces": "largest"}))
    assert config_from_argv(argv) == expected
    line = command_line("in clip.mp4", "out.mp4", argv, 60)
    assert line.startswith("vidgpen restore 'in clip.mp4' -o out.mp4 --preset film") and line.endswith("--resume 60")

    bad = settings_argv(None, {"strength": 1.5})
    with pytest.raises(ConfigError) as raised:
        config_from_argv(bad)
    assert cli(["restore", "in.mp4", "-o", "out.mp4", *bad]) == 2
    assert capsys.readouterr().err.strip() == f"error: {raised.value}"


FRAMES = 150  # 6 s: ~2 s of run left after the first segment, for the preview to wait on (idle 2 cores)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui-jobs")
    face = load_face(FACES / "ffhq_00003.png", 120)
    frames = make_clip([(face, smooth_path(96, 80, dx=20, dy=8, period=40))], FRAMES, (192, 160), codec=None).frames
    return {"video": write_video(root / "clip.mp4", frames, fps=25, audio="aac"),
            "weights": make_gpen_checkpoint(root / "tiny-gpen.pth", size=64), "root": root}


def _wait(predicate, seconds: float = 240.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_restarted_ui_continues_the_job_at_its_last_segment(clip, tmp_path):
    """Cancel after the first 1 s segment, leave the state file as a killed UI leaves it
    (running), start a new queue on it: the job ends where the finished segment stays."""
    output = tmp_path / "out.mkv"
    argv = ["--weights", str(clip["weights"]), "--codec", "ffv1"]  # libx264 is not bit-reproducible across runs
    job = Job(0, "restore", str(clip["video"]), str(output), argv, "cpu", segment_seconds=1.0)
    first = JobQueue(tmp_path, run_job)
    first.submit(job)
    _wait(lambda: job.frames > 25)  # in the second segment
    # A preview holds the device as a job does: it waits for the running job ...
    entered, release = threading.Event(), threading.Event()
    status_when_entered: list[str] = []

    def preview() -> None:
        with first.holding("cpu"):
            status_when_entered.append(job.status)
            entered.set()
            release.wait(60)

    holder = threading.Thread(target=preview)
    holder.start()
    assert not entered.wait(0.5)
    assert job.status == RUNNING, "the job ended before the preview's wait was checked: make the clip longer"
    first.cancel(job.id)
    assert entered.wait(60) and status_when_entered == [CANCELLED]
    # ... and a job queued meanwhile waits for the preview (a broken input: it fails at once when it starts).
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    queued = first.submit(Job(0, "restore", str(broken), str(tmp_path / "b.mkv"), argv, "cpu"))
    time.sleep(0.5)
    assert queued.status == "queued"
    release.set()
    holder.join(60)
    _wait(lambda: queued.status == FAILED)
    assert "broken.mp4" in queued.error
    assert not output.exists() and len(list(parts_folder(output).glob("part-*"))) >= 1

    state = json.loads((tmp_path / "jobs.json").read_text())
    state["jobs"][0]["status"] = RUNNING
    (tmp_path / "jobs.json").write_text(json.dumps(state))
    second = JobQueue(tmp_path, run_job)
    resumed = second.jobs[job.id]
    _wait(lambda: resumed.status not in ("queued", RUNNING))
    assert resumed.status == DONE, resumed.error
    assert resumed.frames == FRAMES and not parts_folder(output).exists()

    reference = tmp_path / "cli.mkv"
    assert cli(["restore", str(clip["video"]), "-o", str(reference), *argv, "--resume", "1", "-q"]) == 0
    with open_video(str(output)) as ours, open_video(str(reference)) as theirs:
        assert all(np.array_equal(a.image, b.image) for a, b in zip(ours, theirs, strict=True))
