"""The encode stage: the output writer, the optional before|after preview, and the counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from vidgpen.io.backends import open_writer
from vidgpen.io.frames import Frame, VideoInfo
from vidgpen.pipeline.stages import FrameWork
from vidgpen.plan.run_plan import RunPlan
from vidgpen.stats import StageTimes


class Writers:
    """The output writer and the optional side-by-side preview writer, entered together."""

    def __init__(self, info: VideoInfo, output: str, plan: RunPlan, preview: str | Path | None, overwrite: bool,
                 copy_streams: bool = True):
        cfg = plan.config
        options = dict(**plan.encoding, start=cfg.start, end=cfg.end, overwrite=overwrite, copy_streams=copy_streams)
        self.output = open_writer(output, info, **options)
        self.preview = None
        if preview is not None:
            width, height = info.display_size
            side_info = replace(info, width=2 * width, height=height + height % 2, rotation=0)
            try:
                self.preview = open_writer(str(preview), side_info, **options)
            except BaseException as exc:
                self.output.__exit__(type(exc), exc, exc.__traceback__)  # drops its partial file
                raise

    def __enter__(self) -> Writers:
        self.output.__enter__()
        if self.preview is not None:
            try:
                self.preview.__enter__()
            except BaseException as exc:
                self.output.__exit__(type(exc), exc, exc.__traceback__)
                raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.preview is not None:
                self.preview.__exit__(*exc)
        finally:
            self.output.__exit__(*exc)


class Encoder:
    """The encode stage: writes the frames of the span (not context frames) and counts them."""

    def __init__(self, writers: Writers, times: StageTimes, written: Callable[[Frame], bool],
                 on_progress: Callable[[int, int], None] | None) -> None:
        self._writers, self._times, self._written, self._on_progress = writers, times, written, on_progress
        self.frames = self.faces = 0
        self.tracks: set[int] = set()

    def __call__(self, work: FrameWork) -> None:
        if not self._written(work.frame):
            return  # context: tracked, not written
        with self._times.timed("encode"):
            self._writers.output.write(work.frame)
            if self._writers.preview is not None:
                self._writers.preview.write(side_by_side(work.frame, work.before))
        self.frames += 1
        self.faces += len(work.jobs)
        self.tracks.update(job.face.track for job in work.jobs)
        if self._on_progress is not None:
            self._on_progress(self.frames, self.faces)


def side_by_side(frame: Frame, before: np.ndarray | None) -> Frame:
    after = frame.image
    both = np.concatenate([before if before is not None else after, after], axis=1)
    pad_h, pad_w = both.shape[0] % 2, both.shape[1] % 2
    if pad_h or pad_w:
        both = np.pad(both, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return Frame(index=frame.index, pts=frame.pts, time=frame.time, image=both)
