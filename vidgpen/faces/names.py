"""The face stages' names and extension points, importable without OpenCV or ONNX Runtime:
config checks settings against them, so ``import vidgpen.config`` stays light.

A plug-in adds a detector with :func:`register_detector` (README, *How to add a detector*);
the alignment templates are defined here once, as the five points they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BUILTIN_DETECTORS = ("retinaface-onnx", "retinaface", "retinaface-mobilenet", "dlib")
MASKS = ("feather", "parsing")

# Five points (left eye, right eye, nose tip, mouth left, mouth right in the image) as
# fractions of the crop size S.
TEMPLATES: dict[str, np.ndarray] = {
    # What GPEN was trained with (the default).
    "gpen": np.array(
        [[0.394611, 0.474383], [0.604356, 0.473223], [0.500150, 0.593670], [0.413984, 0.716461], [0.587678, 0.715501]],
        dtype=np.float64,
    ),
    # FFHQ's tighter alignment.
    "ffhq": np.array(
        [[0.376917, 0.468647], [0.622857, 0.469128], [0.501239, 0.613319], [0.393088, 0.725411], [0.611502, 0.724905]],
        dtype=np.float64,
    ),
}

DetectorBuilder = Callable[[str], Any]  # device → an object with ``name`` and ``detect(image_rgb)``
_PLUGGED_DETECTORS: dict[str, DetectorBuilder] = {}


def register_detector(name: str, build: DetectorBuilder) -> None:
    """Make ``--detector NAME`` build a detector with ``build(device)``: an object with a ``name``
    and ``detect(image_rgb) -> list[Detection]`` (5 landmarks each). vidgpen runs it on frames
    downscaled to ``--detect-max-side`` and maps the results back."""
    if name in BUILTIN_DETECTORS:
        raise ValueError(f"detector {name!r} is built in; register another name")
    _PLUGGED_DETECTORS[name] = build


def detector_names() -> tuple[str, ...]:
    """Every ``--detector`` value: the built-in ones, then those plug-ins registered."""
    return (*BUILTIN_DETECTORS, *_PLUGGED_DETECTORS)


def plugged_detector(name: str) -> DetectorBuilder | None:
    return _PLUGGED_DETECTORS.get(name)
