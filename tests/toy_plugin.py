"""A vidgpen plug-in as a user writes one (README: How to add a restorer, How to add a detector).

It registers a restorer kind, two models of that kind and a face detector, with vidgpen's
registration calls only: no edit of the package, no monkeypatching. The CLI loads it from
``VIDGPEN_PLUGINS=toy_plugin``; Python code imports it.

* ``toy-upscaler`` files start with :data:`MAGIC` followed by JSON (``in_size``, ``factor``,
  ``gain``): the restorer scales each aligned face ``factor`` times (bicubic) and lifts it by
  ``gain`` levels, so the result is easy to find in the output. It cannot fuse frames (no
  ``restore_tracked``), so ``--deflicker`` warns that it does not apply.
* ``toy-haar`` is OpenCV's frontal-face Haar cascade (shipped with opencv-python), with the
  five landmarks placed at the GPEN template's positions inside each box.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from toy_weights import MAGIC, params

from vidgpen.faces.detect import Detection
from vidgpen.faces.names import TEMPLATES, register_detector
from vidgpen.models.runtime.kinds import RestorerKind, RunOptions, register_restorer_kind
from vidgpen.weights.registry import register_model
from vidgpen.weights.spec import ModelSpec


class ToyUpscaler:
    def __init__(self, in_size: int, factor: int, gain: float) -> None:
        self.in_size, self.out_size, self.gain = in_size, in_size * factor, gain

    def restore(self, faces: np.ndarray) -> np.ndarray:
        scaled = [cv2.resize(face, (self.out_size, self.out_size), interpolation=cv2.INTER_CUBIC) for face in faces]
        return np.clip(np.stack(scaled).astype(np.float32) + self.gain, 0, 255).astype(np.uint8)


def _recognises(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(len(MAGIC)) == MAGIC


def _build(spec: ModelSpec, path: Path, options: RunOptions) -> ToyUpscaler:
    return ToyUpscaler(**params(path))


def _sides(spec: ModelSpec, path: Path) -> tuple[int, int]:
    toy = params(path)
    return toy["in_size"], toy["in_size"] * toy["factor"]


register_restorer_kind(RestorerKind("toy-upscaler", _recognises, _build, _sides))
for factor in (2, 4):
    register_model(ModelSpec(name=f"toy-{factor}x", kind="toy-upscaler", filename=f"toy-{factor}x.bin", sources=(),
                             description=f"toy upscaler ×{factor}", template="gpen"))


class HaarDetector:
    name = "toy-haar"

    def __init__(self) -> None:
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        found = []
        for x, y, w, h in self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40)):
            # The template's points span the middle of its crop; the cascade's box is about that crop.
            landmarks = (TEMPLATES["gpen"] * [w, h] + [x, y]).astype(np.float32)
            found.append(Detection(np.array([x, y, x + w, y + h], np.float64), 1.0, landmarks))
        return found


register_detector("toy-haar", lambda device: HaarDetector())
