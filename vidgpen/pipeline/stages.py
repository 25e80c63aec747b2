"""The pipeline's stages, each a named step between two channels.

decode → analyze (detect, track, smooth; then align each face) → restore (GPEN in
batches) → paste → encode. Frames travel in order, also those without faces, and
context frames (tracked, not written) travel too, so tracks see them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from vidgpen.faces.align import warp_face
from vidgpen.faces.analyze import AnalyzedFrame, FaceAnalyzer, TrackedFace
from vidgpen.faces.blend import paste_faces
from vidgpen.faces.paste import paste_of, refresh_image
from vidgpen.io.frames import Frame
from vidgpen.models.temporal.deflicker import TrackedRestore
from vidgpen.models.temporal.fusion import FaceKey
from vidgpen.pipeline.restorers import RestorerSet
from vidgpen.pipeline.runner import END, Channel
from vidgpen.plan.run_plan import RunPlan
from vidgpen.stats import StageTimes


@dataclass
class FaceJob:
    """One face of one frame on its way through GPEN."""

    face: TrackedFace
    in_size: int
    affine: np.ndarray  # 2×3, frame px → crop px at `in_size`
    crop: np.ndarray  # S×S×3 uint8, the aligned unrestored face
    model: str  # the RestorerSet's name of the model it goes through
    restored: np.ndarray | None = None


@dataclass
class FrameWork:
    """A frame with its faces; frames travel in order even when they hold no face."""

    analyzed: AnalyzedFrame
    jobs: list[FaceJob] = field(default_factory=list)
    before: np.ndarray | None = None  # the frame before paste-back, kept for the preview
    prime: bool = False  # a context frame before the span: its faces only prime --deflicker's state

    @property
    def frame(self) -> Frame:
        return self.analyzed.frame


def decode(reader: Iterable[Frame], out: Channel, times: StageTimes) -> None:
    source = iter(reader)
    while True:
        with times.timed("decode"):
            frame = next(source, END)
        out.put(frame)
        if frame is END:
            return


class Aligner:
    """The align step: each face cropped to its restorer's size along the template."""

    def __init__(self, plan: RunPlan, restorers: RestorerSet, times: StageTimes,
                 written: Callable[[Frame], bool]) -> None:
        self._plan, self._restorers, self._times, self._written = plan, restorers, times, written

    def __call__(self, item: AnalyzedFrame) -> FrameWork:
        cfg, written = self._plan.config, self._written(item.frame)
        # Context before a segment's span primes --deflicker's state as a continuous run has it.
        work = FrameWork(item, prime=not written and cfg.deflicker > 0 and item.frame.time < (cfg.start or 0.0))
        if cfg.strength == 0 or not (written or work.prime):
            return work  # nothing will be pasted (or written): leave the frame exactly as decoded
        with self._times.timed("align"):
            for face in item.faces:
                choice = self._restorers.choose(face)
                affine = face.affine(choice.in_size, self._plan.template)
                crop = warp_face(item.frame.image, affine, choice.in_size)
                work.jobs.append(FaceJob(face, choice.in_size, affine, crop, choice.name))
        return work


def analyze(source: Channel, out: Channel, analyzer: FaceAnalyzer, align: Aligner) -> None:
    for frame in source:
        for item in analyzer.push(frame):
            out.put(align(item))
    for item in analyzer.flush():
        out.put(align(item))
    out.put(END)


def restore(source: Channel, out: Channel, restorers: RestorerSet, tracked: TrackedRestore, batch_size: int,
            queue_size: int, times: StageTimes) -> None:
    for batch in _gather(source, batch_size, queue_size):
        _restore_batch(batch, restorers, tracked, times)
        for work in batch:
            out.put(work)
    out.put(END)


def _gather(channel: Channel, batch_size: int, queue_size: int) -> Iterator[list[FrameWork]]:
    """Group consecutive frames until they hold ``batch_size`` faces, or a queue's worth of frames
    (``queue_size``) without enough faces: a batch never holds more frames than a channel does."""
    pending: list[FrameWork] = []
    faces = 0
    for work in channel:
        pending.append(work)
        faces += len(work.jobs)
        if faces >= batch_size or len(pending) >= queue_size:
            yield pending
            pending, faces = [], 0
    if pending:
        yield pending


def _restore_batch(batch: list[FrameWork], restorers: RestorerSet, tracked: TrackedRestore, times: StageTimes) -> None:
    by_model: dict[str, list[tuple[FaceJob, FaceKey]]] = {}
    for work in batch:  # in frame order, as the temporal fusion needs them
        for job in work.jobs:
            key = FaceKey(job.face.track, work.analyzed.shot, work.frame.index, work.prime)
            by_model.setdefault(job.model, []).append((job, key))
    precise = any(work.frame.deep is not None for work in batch)  # GPEN's faces unrounded for a deep frame
    for name, pairs in by_model.items():
        jobs = [job for job, _ in pairs]
        with times.timed("restore"):
            out = tracked.restore(name, restorers.get(name), np.stack([job.crop for job in jobs]),
                                  [k for _, k in pairs], precise)
        for job, face in zip(jobs, out):
            job.restored = face


class Paster:
    """The paste step: restored crops blended back into their frame."""

    def __init__(self, plan: RunPlan, mask: str, times: StageTimes, keep_before: bool) -> None:
        self._plan, self._mask, self._times, self._keep_before = plan, mask, times, keep_before

    def __call__(self, work: FrameWork) -> FrameWork:
        if not work.jobs or work.prime:
            return work
        if self._keep_before:
            work.before = work.frame.image.copy()
        plan, cfg, frame = self._plan, self._plan.config, work.frame
        with self._times.timed("paste"):
            pastes = [paste_of(job.restored, job.crop, job.affine) for job in work.jobs]
            target = frame.image if frame.deep is None else frame.deep  # a deep frame at its depth
            changed = paste_faces(target, pastes, strength=cfg.strength, template=plan.template,
                                  mask=self._mask, color_match=cfg.color_match, grain=cfg.grain, device=plan.device)
            if frame.deep is not None:
                refresh_image(frame, changed)
        frame.changed.extend(changed)
        return work


def paste(source: Channel, out: Channel, paster: Paster) -> None:
    for work in source:
        out.put(paster(work))
    out.put(END)
