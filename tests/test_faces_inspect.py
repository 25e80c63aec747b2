"""``vidgpen inspect`` on a made clip: JSON schema, overlay video, summary."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from conftest import FACES
from face_clips import load_face, make_clip, smooth_path
from media import write_video

from vidgpen.cli import main

N = 12


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    src = load_face(FACES / "ffhq_00002.png", 240)
    clip = make_clip([(src, smooth_path(200, 150, dx=20, dy=10))], N, size=(400, 300), seed=2, codec=None)
    return write_video(tmp_path_factory.mktemp("inspect") / "clip.mp4", clip.frames, audio="aac")


def _is_points(value, n: int) -> bool:
    return isinstance(value, list) and len(value) == n and all(len(p) == 2 and all(isinstance(c, float) for c in p) for p in value)


def test_inspect_json_matches_the_schema(clip_path, tmp_path, capsys):
    out = tmp_path / "faces.json"
    assert main(["inspect", str(clip_path), "--json", str(out), "--model-size", "256", "--smooth", "4"]) == 0
    data = json.loads(out.read_text())
    assert set(data) == {"video", "model_size", "template", "plan", "frames"}
    assert data["model_size"] == 256 and data["template"] == "gpen" == data["plan"]["face_stage"]["template"]
    assert data["video"]["width"] == 400 and data["video"]["height"] == 300
    assert [f["index"] for f in data["frames"]] == list(range(N))
    for f in data["frames"]:
        assert set(f) == {"index", "pts", "time", "shot", "faces"}
        assert isinstance(f["pts"], int) and isinstance(f["time"], float) and f["shot"] == 0
        assert len(f["faces"]) == 1
        face = f["faces"][0]
        assert set(face) == {"track", "person", "box", "score", "detected", "landmarks_raw", "landmarks", "affine"}
        assert face["track"] == 0 and face["person"] == "p1" and face["detected"] is True and len(face["box"]) == 4
        assert _is_points(face["landmarks_raw"], 5) and _is_points(face["landmarks"], 5)
        affine = np.array(face["affine"])
        assert affine.shape == (2, 3)
        # The affine maps the smoothed landmarks near the template at S = 256.
        mapped = np.array(face["landmarks"]) @ affine[:, :2].T + affine[:, 2]
        assert np.abs(mapped[:2] - np.array([[0.394611, 0.474383], [0.604356, 0.473223]]) * 256).max() < 8
    summary = capsys.readouterr().out
    assert "1 track(s)" in summary and "1 shot(s)" in summary


def test_inspect_overlay_and_detect_every(clip_path, tmp_path):
    out_json, overlay = tmp_path / "faces.json", tmp_path / "overlay.mp4"
    args = ["inspect", str(clip_path), "--json", str(out_json), "--overlay", str(overlay), "--detect-every", "3", "--detector", "dlib"]
    assert main(args) == 0
    frames = json.loads(out_json.read_text())["frames"]
    assert [f["faces"][0]["detected"] for f in frames] == [i % 3 == 0 for i in range(N)]
    assert all(f["faces"][0]["landmarks_raw"] is None for f in frames if f["index"] % 3)
    with av.open(str(overlay)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == N and decoded[0].shape == (300, 400, 3)
    assert main(args) == 2  # outputs exist: refused without --overwrite


def test_inspect_missing_input_is_one_line_error(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nope.mp4" in err and err.count("\n") == 1


def test_inspect_track_ids_are_the_ones_restore_selects(tmp_path):
    from vidgpen.config import ConfigLayers, build_config
    from vidgpen.faces.analyze import make_analyzer
    from vidgpen.io.reader import open_video
    from vidgpen.plan.run_plan import make_plan

    a, b = load_face(FACES / "ffhq_00003.png", 200), load_face(FACES / "ffhq_00007.png", 160)
    clip = make_clip([(a, smooth_path(110, 150, dx=15)), (b, smooth_path(300, 150, dy=10))], N, size=(400, 300), seed=7, codec=None)
    path = write_video(tmp_path / "two.mp4", clip.frames)
    out = tmp_path / "faces.json"
    assert main(["inspect", str(path), "--json", str(out), "--smooth", "3", "--min-face", "30", "--start", "0.1"]) == 0
    shown = [[f["track"] for f in frame["faces"]] for frame in json.loads(out.read_text())["frames"]]
    cfg = build_config(ConfigLayers(overrides={"smooth": 3, "min_face": 30, "start": 0.1}))
    analyzer = make_analyzer(make_plan(cfg, find_weights=False).faces)
    with open_video(path, start=cfg.start) as reader:
        items = [item for frame in reader for item in analyzer.push(frame)] + analyzer.flush()
    assert shown == [[f.track for f in item.faces] for item in items]
    assert 0 < len(shown) < N and {t for ids in shown for t in ids} == {0, 1}


def test_inspect_failing_output_leaves_no_json(clip_path, tmp_path, capsys):
    out = tmp_path / "faces.json"
    assert main(["inspect", str(clip_path), "--json", str(out), "--overlay", str(tmp_path / "no" / "dir" / "o.mp4")]) == 2
    assert capsys.readouterr().err.startswith("error:")
    assert list(tmp_path.iterdir()) == []


def test_json_is_renamed_into_place_only_on_success(tmp_path):
    from vidgpen.cli.inspect import _open_json

    out = tmp_path / "faces.json"
    with pytest.raises(RuntimeError), _open_json(str(out), overwrite=False) as js:
        js.write('{"frames": [')
        raise RuntimeError("decode failed")
    assert list(tmp_path.iterdir()) == []
    with _open_json(str(out), overwrite=False) as js:
        js.write("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["faces.json"] and out.read_text() == "{}"
