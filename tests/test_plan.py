"""The run plan: restore and inspect build the same face stage from the same plan, and the user's
RestoreConfig is never rewritten by a run."""

from __future__ import annotations

import copy
import json

from conftest import FACES
from face_clips import load_face, make_clip, smooth_path
from gpen_checkpoints import make_gpen_checkpoint
from media import write_video

from vidgpen import Pipeline, RestoreConfig
from vidgpen.cli import main

FLAGS = ["--detector", "dlib", "--device", "cpu", "--template", "ffhq", "--smooth", "2", "--detect-every", "2",
         "--dtype", "float32"]


def test_inspect_and_restore_plan_the_same_face_stage(tmp_path):
    face = load_face(FACES / "ffhq_00007.png", 240)
    frames = make_clip([(face, smooth_path(150, 120, dx=5, dy=3, angle=0, zoom=0.0))], 6, size=(300, 240),
                       seed=1, codec=None).frames
    clip = write_video(tmp_path / "face.mp4", frames)
    weights = str(make_gpen_checkpoint(tmp_path / "g.pth", size=64))
    faces, report = tmp_path / "faces.json", tmp_path / "report.json"
    assert main(["inspect", str(clip), "--json", str(faces), "--weights", weights, *FLAGS]) == 0
    assert main(["restore", str(clip), "-o", str(tmp_path / "out.mp4"), "--report", str(report), "--weights", weights,
                 "--deflicker", "0", *FLAGS]) == 0
    inspected, restored = json.loads(faces.read_text())["plan"], json.loads(report.read_text())["plan"]
    assert inspected == restored
    stage = restored["face_stage"]
    assert (stage["detector"], stage["device"], stage["template"], stage["lookahead"], stage["detect_every"]) == \
        ("dlib", "cpu", "ffhq", 2, 2)
    assert (restored["device"], restored["dtype"], restored["models"]) == ("cpu", "float32", [weights])


def test_a_run_never_rewrites_the_users_config(tmp_path):
    face = load_face(FACES / "ffhq_00003.png", 200)
    frames = make_clip([(face, smooth_path(120, 100, dx=4, dy=2, angle=0, zoom=0.0))], 4, size=(240, 200),
                       seed=3, codec=None).frames
    clip = write_video(tmp_path / "face.mp4", frames)
    config = RestoreConfig(weights=str(make_gpen_checkpoint(tmp_path / "g.pth", size=64)), deflicker=0)
    asked = copy.deepcopy(config)
    report = Pipeline(config).run(clip, tmp_path / "out.mp4")
    assert config == asked and config.device == "auto" and config.template == "gpen"
    assert report.plan["device"] == "cpu" and report.settings == asked.to_dict()
