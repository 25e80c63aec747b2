"""The facexlib extra on its real code: RetinaFace (ResNet-50 and MobileNet) and ParseNet,
with random weights saved in facexlib's own layout under the names it looks up.

facexlib needs torchvision, which needs a torch other than the pinned CPU build, so this
module runs where the extra is installed: tests/test_facexlib_venv.py builds such a venv
and runs it there. Elsewhere it is skipped."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch
from conftest import FACES
from face_clips import load_face, make_clip, smooth_path
from gpen_checkpoints import make_gpen_checkpoint
from media import write_video

pytest.importorskip("facexlib", reason="the facexlib extra is not installed here (tests/test_facexlib_venv.py runs it)")

from facexlib.detection.retinaface import RetinaFace  # noqa: E402
from facexlib.parsing.parsenet import ParseNet  # noqa: E402

from vidgpen import Pipeline, RestoreConfig  # noqa: E402
from vidgpen.config import ConfigLayers, build_config  # noqa: E402
from vidgpen.faces.blend import parsing_masks  # noqa: E402
from vidgpen.faces.detect import FacexlibRetinaFace, make_detector  # noqa: E402
from vidgpen.models.runtime.device import resolve_device  # noqa: E402
from vidgpen.weights import registry  # noqa: E402


@pytest.fixture(autouse=True)
def official_weights():
    """Random weights where facexlib's loaders look (the vidgpen cache is per test, see conftest)."""
    torch.manual_seed(0)
    nets = {
        "retinaface-resnet50": RetinaFace(network_name="resnet50", half=False, device="cpu"),
        "retinaface-mobilenet0.25": RetinaFace(network_name="mobile0.25", half=False, device="cpu"),
        "parsenet": ParseNet(in_size=512, out_size=512, parsing_ch=19),
    }
    for name, net in nets.items():
        path = registry.path_of(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)


def _face(size: int) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(FACES / "ffhq_00000.png")), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("name", ["retinaface", "retinaface-mobilenet"])
def test_retinaface_runs_facexlibs_network(name, caplog):
    with caplog.at_level(logging.WARNING):
        detector = make_detector(name, score_threshold=0.0, device=str(resolve_device("auto")))  # random weights: keep every candidate
    assert isinstance(detector.inner, FacexlibRetinaFace) and "unavailable" not in caplog.text
    found = detector.detect(_face(320))
    assert found, "with no score threshold some candidates survive NMS"
    for det in found:
        assert det.box.shape == (4,) and det.landmarks.shape == (5, 2) and np.isfinite(det.landmarks).all()
        assert 0.0 <= det.score <= 1.0


def test_parsenet_mask_is_bounded_and_cut_by_the_template():
    [mask] = parsing_masks([_face(128)])
    assert mask.shape == (128, 128) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    assert mask[0].max() < 1e-3 and mask[-1].max() < 1e-3  # the template's feather fades out at the border


def test_pipeline_pastes_through_the_parsing_mask_and_runs_the_max_preset(tmp_path, caplog):
    face = load_face(FACES / "ffhq_00003.png", 150)
    clip = make_clip([(face, smooth_path(160, 120, dx=30, dy=10, period=40))], 3, (320, 240), codec=None)
    video = write_video(tmp_path / "clip.mp4", clip.frames, fps=25, audio="aac")
    weights = str(make_gpen_checkpoint(tmp_path / "tiny.pth", size=64))
    with caplog.at_level(logging.WARNING):
        report = Pipeline(RestoreConfig(weights=weights, mask="parsing", codec="ffv1")).run(video, tmp_path / "a.mkv")
        assert report.faces >= 2  # found by the default detector, pasted through ParseNet masks
        # Random detector heads call ~1500 boxes a face; with the score head zeroed every
        # score is 0.5, under the threshold: the run goes through facexlib's detector, finding none.
        detector = RetinaFace(network_name="resnet50", half=False, device="cpu")
        for name, param in detector.named_parameters():
            if name.startswith("ClassHead"):
                param.data.zero_()
        torch.save(detector.state_dict(), registry.path_of("retinaface-resnet50"))
        maximal = build_config(ConfigLayers(preset="max", overrides={"weights": weights}))
        assert (maximal.detector, maximal.mask) == ("retinaface", "parsing")
        assert Pipeline(maximal).run(video, tmp_path / "b.mkv").frames == 3
    assert "unavailable" not in caplog.text  # neither fell back: facexlib's detector and ParseNet ran
