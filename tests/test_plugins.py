"""The README's extension recipes, proven: a plug-in module (tests/toy_plugin.py) adds a restorer
kind, two models and a detector through vidgpen's registrations alone, and they run through
``restore`` (``--weights`` by content, ``--model auto``) and ``inspect``, from the command line
(``$VIDGPEN_PLUGINS``) and the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FACES, REPO
from face_clips import load_face, make_clip, smooth_path
from media import decoded_frames, write_video
from toy_weights import write_weights

TESTS = Path(__file__).resolve().parent
FRAMES = 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    face = load_face(FACES / "ffhq_00003.png", 240)  # a face of about 120 px
    frames = make_clip([(face, smooth_path(160, 130, dx=6, dy=4, angle=0, zoom=0.02))], FRAMES, size=(320, 256),
                       seed=2, codec=None).frames
    return write_video(tmp_path_factory.mktemp("plugin") / "face.mp4", frames, codec="libx264")


def _vidgpen(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIDGPEN_PLUGINS": "toy_plugin", "VIDGPEN_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "vidgpen", *args], capture_output=True, text=True, env=env, cwd=REPO)


def _brighter_on_the_face(source: Path, restored: Path) -> float:
    before = np.stack([f.to_ndarray(format="rgb24") for f in decoded_frames(source)]).astype(float)
    after = np.stack([f.to_ndarray(format="rgb24") for f in decoded_frames(restored)]).astype(float)
    return float((after - before)[:, 90:170, 120:200].mean())  # the face's middle: the toy lifts it by 40


def test_the_plugin_runs_through_inspect_and_restore(clip, tmp_path):
    home = tmp_path / "home"
    for factor in (2, 4):
        write_weights(home / "weights" / f"toy-{factor}x.bin", 64, factor, 40.0)
    faces = tmp_path / "faces.json"
    done = _vidgpen("inspect", str(clip), "--detector", "toy-haar", "--json", str(faces), home=home)
    assert done.returncode == 0, done.stderr
    tracks = {f["track"] for frame in json.loads(faces.read_text())["frames"] for f in frame["faces"]}
    assert tracks == {0}

    out, report = tmp_path / "auto.mp4", tmp_path / "auto.json"
    done = _vidgpen("restore", str(clip), "-o", str(out), "--detector", "toy-haar", "--model", "auto",
                    "--auto-models", "toy-2x,toy-4x", "--report", str(report), home=home)
    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text())["models"] == {"toy-4x": "64→256"}  # 120 px × auto_factor 2 > 128
    assert done.stderr.count("cannot fuse") == 1  # one warning, at the default --deflicker
    assert _brighter_on_the_face(clip, out) > 20

    # --weights: the kind comes from the file's content, whatever its suffix says
    weights = write_weights(tmp_path / "looks-like-gpen.pth", 64, 2, 40.0)
    out = tmp_path / "weights.mp4"
    done = _vidgpen("restore", str(clip), "-o", str(out), "--detector", "toy-haar", "--weights", str(weights),
                    "--deflicker", "0", home=home)
    assert done.returncode == 0 and "cannot fuse" not in done.stderr, done.stderr
    assert _brighter_on_the_face(clip, out) > 20


API_SCRIPT = """
import sys
import toy_plugin  # the user's plug-in: its registrations, then the API
from vidgpen import restore_video
report = restore_video(sys.argv[1], sys.argv[2], detector="toy-haar", weights=sys.argv[3], deflicker=0)
print(report.faces, report.plan["face_stage"]["detector"])
"""


def test_the_plugin_works_from_the_python_api(clip, tmp_path):
    # A script of the user's, in its own process: a plug-in's registrations last as long as the process.
    weights = write_weights(tmp_path / "toy.bin", 64, 2, 40.0)
    env = {**os.environ, "VIDGPEN_HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    done = subprocess.run([sys.executable, "-c", API_SCRIPT, str(clip), str(tmp_path / "api.mp4"), str(weights)],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    faces, detector = done.stdout.split()
    assert int(faces) >= FRAMES - 2 and detector == "toy-haar"
    assert _brighter_on_the_face(clip, tmp_path / "api.mp4") > 20


def test_a_file_of_no_known_kind_is_one_clear_error(clip, tmp_path):
    import torch

    other = tmp_path / "codeformer.pth"
    torch.save({"encoder.conv_in.weight": torch.zeros(4, 3, 3, 3)}, other)
    done = _vidgpen("restore", str(clip), "-o", str(tmp_path / "o.mp4"), "--weights", str(other), home=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0
    assert "a torch checkpoint of another network than GPEN (tensors encoder.conv_in.weight" in done.stderr
    assert not (tmp_path / "o.mp4").exists()
