"""Persons on real faces: tracks linked across shots and occlusions, selection by photo and id.

Clips are degraded copies (35% scale, crf 30) of ``../shared/video``; the reference photo is a
clean frame of the same video at another moment (tests/people_clips.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FACES
from gpen_checkpoints import make_gpen_checkpoint
from people_clips import as_frames, crossing, decoded, degraded, reference_photo, side_by_side, write_clip

from vidgpen import cli
from vidgpen.api import restore_video, run_restore
from vidgpen.config import ConfigLayers, RestoreConfig, build_config
from vidgpen.errors import ConfigError
from vidgpen.faces.align import template_points
from vidgpen.faces.analyze import TrackedFace, make_analyzer
from vidgpen.faces.identity import MATCH_DISTANCE
from vidgpen.faces.settings import FaceStageSettings
from vidgpen.models.runtime.torch_restorer import FaceRestorer
from vidgpen.pipeline.people import make_identity
from vidgpen.pipeline.restorers import RestorerSet
from vidgpen.pipeline.segments import parts_folder, run_resumable
from vidgpen.plan.choice import Choice
from vidgpen.plan.run_plan import make_plan

WOMAN, MAN, OTHER = "talk_d10", "talk_d18", "talk_d14"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return make_gpen_checkpoint(tmp_path_factory.mktemp("weights") / "gpen64.pth", size=64)


@pytest.fixture(scope="module")
def woman_photo(tmp_path_factory) -> Path:
    return reference_photo(tmp_path_factory.mktemp("photos") / "woman.png", WOMAN, 0)


def _analyzed(images: list[np.ndarray], **settings) -> list:
    analyzer = make_analyzer(FaceStageSettings(**settings), identity=make_identity(RestoreConfig(), always=True))
    out = []
    for frame in as_frames(images):
        out.extend(analyzer.push(frame))
    return out + analyzer.flush()


def _restore(src: Path, out: Path, weights: Path, *flags: str) -> int:
    return cli.main(["restore", str(src), "-o", str(out), "--weights", str(weights), "--deflicker", "0",
                     "--crf", "0", "-q", *flags])


def _changed(src: Path, out: Path, halves: int = 2) -> np.ndarray:
    """(frames, halves): mean absolute change of each vertical strip (one person each)."""
    before, after = np.stack(decoded(src)).astype(np.float32), np.stack(decoded(out)).astype(np.float32)
    strips = np.array_split(np.abs(after - before), halves, axis=2)
    return np.stack([s.mean(axis=(1, 2, 3)) for s in strips], 1)


def test_two_shots_of_one_person_are_one_person(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "shots.mp4", degraded(WOMAN, 200, 8) + degraded(MAN, 100, 8) + degraded(WOMAN, 380, 8))
    js = tmp_path / "faces.json"
    assert cli.main(["inspect", str(clip), "--json", str(js), "--people", str(tmp_path / "sheet.png")]) == 0
    frames = json.loads(js.read_text())["frames"]
    tracks = {f["track"]: f["person"] for frame in frames for f in frame["faces"]}
    shots = [{f["person"] for frame in frames[i:i + 8] for f in frame["faces"]} for i in (0, 8, 16)]
    assert len(tracks) == 3  # a cut ends a track
    assert shots[0] == shots[2] and len(shots[0]) == 1
    assert shots[1].isdisjoint(shots[0]) and len(shots[1]) == 1
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet is not None and sheet.shape[1] == 2 * 112  # one crop per person


def test_two_faces_of_one_frame_are_two_persons() -> None:
    items = _analyzed(side_by_side(degraded(WOMAN, 100, 3), degraded(WOMAN, 300, 3)))
    assert all(len({f.person for f in item.faces}) == 2 for item in items)


def test_crossing_people_keep_their_ids_when_the_tracker_breaks() -> None:
    count = 24
    images, xs = crossing(degraded(WOMAN, 150, count), degraded(OTHER, 150, count), 480)
    items = _analyzed(images, max_missed=1)
    seen: dict[str, set[str]] = {"front": set(), "back": set()}
    tracks: dict[str, set[int]] = {"front": set(), "back": set()}
    for item, (xa, xb) in zip(items, xs):
        for face in item.faces:
            centre = (face.box[0] + face.box[2]) / 2
            half = images[0].shape[0] / 2  # the clips are square
            who = "front" if abs(centre - xa - half) < abs(centre - xb - half) else "back"
            seen[who].add(face.person)
            tracks[who].add(face.track)
    assert len(tracks["back"]) >= 2  # hidden at the crossing: its track broke
    assert len(seen["front"]) == 1 and len(seen["back"]) == 1
    assert seen["front"] != seen["back"]


def test_faces_of_restores_only_that_person_and_skip_the_reverse(tmp_path: Path, weights: Path,
                                                                 woman_photo: Path) -> None:
    clip = write_clip(tmp_path / "pair.mp4", side_by_side(degraded(WOMAN, 300, 6), degraded(MAN, 150, 6)))
    only, skip = tmp_path / "only.mp4", tmp_path / "skip.mp4"
    assert _restore(clip, only, weights, "--faces-of", str(woman_photo)) == 0
    assert _restore(clip, skip, weights, "--skip-faces-of", str(woman_photo)) == 0
    only_change, skip_change = _changed(clip, only), _changed(clip, skip)
    assert only_change[:, 0].min() > 5 and only_change[:, 1].max() < 0.5
    assert skip_change[:, 1].min() > 5 and skip_change[:, 0].max() < 0.5


def test_bad_reference_photos_are_one_clear_error(tmp_path: Path, weights: Path, capsys) -> None:
    clip = write_clip(tmp_path / "man.mp4", degraded(MAN, 150, 3))
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    for photo, why in ((blank, "no face"), (FACES / "solvay_conference_1927.png", "faces found")):
        assert _restore(clip, tmp_path / "out.mp4", weights, "--faces-of", str(photo)) == 2
        err = capsys.readouterr().err
        assert str(photo) in err and why in err and "Traceback" not in err
        assert not (tmp_path / "out.mp4").exists()
    assert cli.main(["batch", str(tmp_path), "-o", str(tmp_path / "library-out"), "--faces-of", str(blank)]) == 2
    assert str(blank) in capsys.readouterr().err and not (tmp_path / "library-out").exists()


def test_nobody_matching_leaves_the_video_unchanged_with_one_warning(tmp_path: Path, weights: Path,
                                                                      woman_photo: Path, caplog) -> None:
    clip = write_clip(tmp_path / "man.mp4", degraded(MAN, 150, 4))
    with caplog.at_level(logging.WARNING):
        assert _restore(clip, tmp_path / "out.mp4", weights, "--faces-of", str(woman_photo)) == 0
    warnings = [r for r in caplog.records if "matches" in r.getMessage()]
    assert len(warnings) == 1
    assert _changed(clip, tmp_path / "out.mp4", 1).max() < 0.5


class _PowerCut:
    """A real restorer until the power goes out, after ``calls`` batches."""

    def __init__(self, weights: Path, calls: int) -> None:
        self._restorer = FaceRestorer.load(weights, device="cpu", batch_size=1)
        self.in_size, self.out_size, self._left = self._restorer.in_size, self._restorer.out_size, calls

    def restore(self, faces: np.ndarray) -> np.ndarray:
        self._left -= 1
        if self._left < 0:
            raise KeyboardInterrupt
        return self._restorer.restore(faces)


@pytest.mark.slow
def test_resume_keeps_person_ids_and_selection(tmp_path: Path, weights: Path) -> None:
    shots = degraded(WOMAN, 200, 12) + degraded(MAN, 100, 12) + degraded(WOMAN, 380, 12)  # 1.2 s each
    clip = write_clip(tmp_path / "three.mp4", shots)
    config = RestoreConfig(weights=str(weights), faces="p1", deflicker=0.0, batch_size=1, crf=0)
    whole, parts = tmp_path / "whole.mp4", tmp_path / "parts.mp4"
    run_restore(config, clip, whole)
    with pytest.raises(KeyboardInterrupt):  # segments [0, 1) and [1, 2) done, [2, end) cut short
        run_resumable(config, clip, parts, 1.0, restorer=_PowerCut(weights, 12), identity=make_identity(config))
    assert sorted(p.name for p in parts_folder(parts).glob("persons-*")) == ["persons-00000.json", "persons-00001.json"]
    resumed = run_restore(config, clip, parts, resume_segments=1.0)  # the last segment, from the saved persons
    assert resumed.frames == 16 and resumed.persons["restored"] == ["p1"]
    whole_change, parts_change = _changed(clip, whole, 1)[:, 0], _changed(clip, parts, 1)[:, 0]
    assert (whole_change > 1).tolist() == (parts_change > 1).tolist() == [True] * 12 + [False] * 12 + [True] * 12


def test_persons_file_from_inspect_selects_by_id(tmp_path: Path, weights: Path) -> None:
    clip = write_clip(tmp_path / "pair.mp4", degraded(MAN, 100, 5) + degraded(WOMAN, 250, 5))
    persons = tmp_path / "persons.json"
    assert cli.main(["inspect", str(clip), "--save-persons", str(persons)]) == 0
    assert [p["id"] for p in json.loads(persons.read_text())["persons"]] == ["p1", "p2"]
    assert _restore(clip, tmp_path / "out.mp4", weights, "--persons", str(persons), "--faces", "p2") == 0
    change = _changed(clip, tmp_path / "out.mp4", 1)[:, 0]
    assert change[:5].max() < 0.5 and change[5:].min() > 1


@pytest.mark.slow
def test_batch_selects_the_person_in_every_file(tmp_path: Path, weights: Path, woman_photo: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    for n, (start, other) in enumerate(((120, MAN), (260, OTHER), (400, "talk_d19"))):
        write_clip(library / f"tape{n}.mp4", side_by_side(degraded(WOMAN, start, 4), degraded(other, 60, 4)))
    out = tmp_path / "out"
    assert cli.main(["batch", str(library), "-o", str(out), "--weights", str(weights), "--deflicker", "0",
                     "--crf", "0", "-q", "--faces-of", str(woman_photo)]) == 0
    for n in range(3):
        change = _changed(library / f"tape{n}.mp4", out / f"tape{n}.mp4")
        assert change[:, 0].min() > 5 and change[:, 1].max() < 0.5, n


def test_photos_from_a_config_file_a_preset_and_the_api(tmp_path: Path, weights: Path, woman_photo: Path) -> None:
    settings = tmp_path / "grandma.toml"
    settings.write_text(f'faces_of = "{woman_photo}"\nskip_faces_of = []\n')
    assert build_config(ConfigLayers(config_file=str(settings))).faces_of == [str(woman_photo)]
    assert build_config(ConfigLayers(preset=str(settings))).faces_of == [str(woman_photo)]
    with pytest.raises(ConfigError, match="faces"):
        build_config(ConfigLayers(config_file=str(settings), overrides={"faces": "p1"}))
    clip = write_clip(tmp_path / "woman.mp4", degraded(WOMAN, 420, 3))
    report = restore_video(clip, tmp_path / "out.mp4", config_file=str(settings), weights=str(weights), deflicker=0.0)
    assert report.persons["restored"] == ["p1"] and report.persons["threshold"] == MATCH_DISTANCE
    assert _changed(clip, tmp_path / "out.mp4", 1).min() > 1


def test_model_auto_keeps_one_model_per_person() -> None:
    plan = make_plan(RestoreConfig(model="auto"), find_weights=False)
    candidates = (Choice("small", 256, 256), Choice("large", 1024, 1024))
    restorers = RestorerSet(replace(plan, models=replace(plan.models, candidates=candidates)))

    def face(track: int, person: str | None, side: float) -> TrackedFace:
        points = template_points("gpen", 1) * side + 100.0
        return TrackedFace(track, np.array([100, 100, 100 + side, 100 + side]), 1.0, True, points, points, person)

    assert restorers.choose(face(0, "p1", 60)).name == "small"  # 2 × 60 px is under 256
    assert restorers.choose(face(1, "p1", 400)).name == "small"  # p1 in a close-up: still p1's model
    assert restorers.choose(face(2, "p2", 400)).name == "large"
    assert restorers.choose(face(3, None, 400)).name == "large"  # no persons: per track
