"""What a queued job does: the API's run (``vidgpen restore --resume``) or batch, nothing of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from vidgpen.errors import RunCancelled
from vidgpen.io.frames import VideoInfo
from vidgpen.ui.jobs import Job
from vidgpen.ui.settings import config_from_argv


def run_job(job: Job, cancel: threading.Event, on_frame: Callable[[], None]) -> None:
    """Run ``job``, keeping its progress fields current; ``cancel`` stops it (RunCancelled)."""
    if job.kind == "batch":
        _run_batch(job, cancel, on_frame)
    else:
        _run_restore(job, cancel, on_frame)


def _run_restore(job: Job, cancel: threading.Event, on_frame: Callable[[], None]) -> None:
    from vidgpen.api import run_restore
    from vidgpen.cli.restore import expected_frames

    config = config_from_argv(job.argv)
    first: list[tuple[float, int]] = []  # when and at which count this attempt's first frame came

    def on_start(info: VideoInfo) -> None:
        job.total = expected_frames(info.frame_count, float(info.fps), config)

    def on_progress(frames: int, faces: int) -> None:
        now = time.perf_counter()
        if not first:
            first.append((now, frames))  # frames of segments an earlier attempt finished come at once
        job.frames, job.faces = frames, faces
        since, at = first[0]
        job.fps = (frames - at) / (now - since) if now > since and frames > at else job.fps
        on_frame()

    report = run_restore(config, job.input, job.output, overwrite=job.overwrite, resume_segments=job.segment_seconds,
                         preview=job.preview, on_start=on_start, on_progress=on_progress, cancel=cancel)
    job.stage_seconds = report.stage_seconds  # frames and faces: from the progress, which counts reused segments


def _run_batch(job: Job, cancel: threading.Event, on_frame: Callable[[], None]) -> None:
    from vidgpen.batch import BatchOptions, FileResult, run_batch

    # A retry names the failed files and forces them: an unchanged unreadable file is
    # otherwise skipped as failed, as `vidgpen batch` does.
    options = BatchOptions(include=job.include, force=bool(job.include), resume_segments=job.segment_seconds)

    def on_result(result: FileResult) -> None:
        job.files[result.input] = result.status
        job.frames += 1
        on_frame()
        if cancel.is_set():  # between files: the batch's own stop records the running one as interrupted
            raise RunCancelled(f"{job.output}: batch cancelled")

    summary = run_batch(job.input, job.output, config_from_argv(job.argv), options, on_result=on_result)
    job.total, job.faces = len(summary.results), summary.faces
    if summary.failed:
        job.error = f"{summary.failed} of {len(summary.results)} files failed (see the table)"
