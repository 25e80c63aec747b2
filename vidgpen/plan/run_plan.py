"""The run plan: everything a run works out before its first frame, in one frozen value.

``RestoreConfig`` is what the user asked for and stays so; :func:`make_plan` turns it, the
probed input and this machine into what the run does: the device and dtype GPEN runs in, the
models and the template they were trained with, the face stage's settings, the output's pixel
format and what happens to every other stream. restore, inspect, batch, ``--resume``
segments and Ray workers all take their plan from here, so they cannot drift apart. A plan
is plain data (picklable): a Ray driver resolves it once and ships it, so a mixed cluster
runs one dtype and one set of models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from vidgpen.config import RestoreConfig, parse_size
from vidgpen.faces.settings import FaceStageSettings
from vidgpen.io.fields import DeinterlacePlan, plan_deinterlace
from vidgpen.io.frames import VideoInfo
from vidgpen.io.pixfmt import AUTO, auto_pix_fmt
from vidgpen.io.report import MediaReport, media_report
from vidgpen.models.runtime.device import resolve_device, resolve_dtype
from vidgpen.models.runtime.restorer import Restorer
from vidgpen.models.temporal.deflicker import auto_state_budget
from vidgpen.plan.choice import ModelPlan, plan_models


@dataclass(frozen=True)
class RunPlan:
    """What one run does. ``config``: the user's settings, untouched; the rest is resolved."""

    config: RestoreConfig
    device: str  # "cpu", "cuda:0"…: never "auto"
    dtype: str  # "float32", "bfloat16" or "float16": never "auto"
    models: ModelPlan
    faces: FaceStageSettings
    info: VideoInfo | None = None  # the probed input, once there is one
    pix_fmt: str | None = None  # the output's pixel format for that input
    media: MediaReport | None = None  # each input stream and what the output gets of it
    fields: DeinterlacePlan = DeinterlacePlan()  # deinterlace / inverse telecine, from the measured fields
    deflicker_memory: int | None = None  # bytes all tracks' fusion states may hold (--deflicker-memory); None: no bound

    @property
    def frames_info(self) -> VideoInfo | None:
        """The input as its frames reach the writer: the rate and time base after deinterlacing."""
        return self.fields.output_info(self.info) if self.info is not None else None

    @property
    def frames_per_source_frame(self) -> float:
        """2 at field rate, 4/5 after inverse telecine, else 1: what frame-counted settings scale by."""
        return float(self.fields.rate)

    @property
    def template(self) -> str:
        """The alignment template of the run's models (the config's only for ``--weights`` files)."""
        return self.models.template

    def summary(self) -> dict[str, Any]:
        """What ``--report`` and ``inspect --json`` record of the plan: the resolved device, dtype,
        template, models, deinterlacing and face stage (restore and inspect show the same for the
        same flags)."""
        models = [self.models.fixed] if self.models.fixed else [c.name for c in self.models.candidates]
        return {"device": self.device, "dtype": self.dtype, "template": self.template, "models": models,
                "deinterlace": self.fields.why, "face_stage": asdict(self.faces)}

    def for_span(self, start: float | None, end: float | None) -> RunPlan:
        """The same plan for one segment of the span (``--resume``, Ray): nothing re-resolved."""
        return replace(self, config=replace(self.config, start=start, end=end))

    @property
    def encoding(self) -> dict[str, Any]:
        """The writer's arguments: the config's, with the pixel format resolved for this input."""
        return {**self.config.encoding, "pix_fmt": self.pix_fmt or self.config.pix_fmt}


def make_plan(config: RestoreConfig, info: VideoInfo | None = None, output_suffix: str = ".mp4",
              restorer: Restorer | None = None, find_weights: bool = True) -> RunPlan:
    """The plan of ``config`` on this machine; with the probed ``info`` also the pixel format and
    what each stream becomes in an ``output_suffix`` file. ``restorer``: an object the caller
    plugged in instead of a model. Every model is found (downloaded if need be) here, before any
    output exists, unless ``find_weights`` is False (inspect: templates from the specs alone);
    nothing is loaded."""
    device = resolve_device(config.device)
    dtype = str(resolve_dtype(config.dtype, device)).removeprefix("torch.")
    models = plan_models(config, restorer, find_weights)
    memory = auto_state_budget(str(device)) if config.deflicker_memory == "auto" else parse_size(config.deflicker_memory)
    plan = RunPlan(config, str(device), dtype, models, face_settings(config, str(device), models.template),
                   deflicker_memory=memory)
    if info is None:
        return plan
    pix_fmt = auto_pix_fmt(config.codec, info) if config.pix_fmt == AUTO else config.pix_fmt
    media = media_report(info, output_suffix, config.codec, pix_fmt, config.deinterlace, config.deinterlace_rate)
    fields = deinterlace_plan(config, info)
    faces = face_settings(config, str(device), models.template, float(fields.rate))
    return replace(plan, info=info, pix_fmt=pix_fmt, media=media, fields=fields, faces=faces)


def deinterlace_plan(config: RestoreConfig, info: VideoInfo) -> DeinterlacePlan:
    """What the reader will do to the fields (idet's measurement is cached per file, so the
    reader, the encoder check and every ``--resume`` segment share one)."""
    if config.decoder != "pyav":
        return DeinterlacePlan()  # open_video refuses decord with a deinterlacer
    return plan_deinterlace(info, config.deinterlace_filter, config.deinterlace_rate)


def face_settings(config: RestoreConfig, device: str, template: str,
                  frames_per_source_frame: float = 1.0) -> FaceStageSettings:
    """The face stage of ``config``, on the resolved ``device``, aligned to the models' ``template``.

    ``smooth`` and ``max_missed`` count source frames: deinterlaced at field rate
    (``frames_per_source_frame`` 2) or inverse-telecined (4/5) they are scaled to span the
    same time. ``detect_every`` stays in output frames: at field rate faces are detected
    on every field, so tracking sees the real motion."""
    selection = config.face_selection()
    return FaceStageSettings(
        detector=config.detector, detect_max_side=config.detect_max_side, device=device,
        detect_every=config.detect_every, lookahead=round(config.smooth * frames_per_source_frame),
        max_missed=round(config.max_missed * frames_per_source_frame),
        template=template, min_face=config.min_face,
        select=selection if isinstance(selection, str) else tuple(selection), register=config.register,
    )
