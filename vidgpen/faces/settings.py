"""What the face stage is told: one small dataclass the run plan fills, so ``faces/`` needs
neither the user's config nor the plan (restore and inspect hand it the same values)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaceStageSettings:
    """The face stage of one run, resolved: ``device`` is a real one ("cpu", "cuda:0"), never
    "auto", and ``template`` is the one the run's models were trained with."""

    detector: str = "retinaface-onnx"
    detect_max_side: int = 1280
    device: str = "cpu"
    detect_every: int = 1
    lookahead: int = 12  # frames of lookahead for smoothing (0: raw landmarks)
    max_missed: int = 10
    template: str = "gpen"
    min_face: float = 20.0
    select: str | tuple[int, ...] = "all"  # "all", "largest" or track ids
    register: bool = False  # registration costs accuracy on real faces (README, Faces across frames)
