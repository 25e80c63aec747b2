"""Resumable restores (``--resume``): a long video is restored in segments kept on disk.

A feature film at GPEN-2048 on a CPU takes days; a crash, a reboot or Ctrl-C must not
cost the work done. With ``--resume`` the video is restored in segments of
``segment_seconds``, each encoded to its own file in a hidden folder beside the output
(``.OUT.vidgpen-parts/``) and renamed there only once complete. Running the same command
again skips the finished segments, restores the rest, then joins all parts by copying
packets (no re-encode) and copies the source's audio over the whole span; the folder is
removed when the output is in place. A ``--preview`` (before|after) is written the same way,
one part per segment beside the output's, and joined like it: a segment counts as finished
only with both parts.

Each segment also decodes and tracks ``CONTEXT_S`` seconds on both sides without
restoring them, so face tracks and smoothed landmarks at a segment's edges match the
neighbouring segment's instead of starting cold. The parts are reused only for the same
input file (size and modification time) and the same output-relevant settings
(weights by path or name; a restorer object passed in is the caller's to keep the same);
otherwise they are discarded with a warning. Track ids are numbered per segment, so
``--faces`` with track ids cannot be resumed; person ids can: the persons stage
(:mod:`vidgpen.faces.persons`) is handed from segment to segment, and saved beside each
finished part (``persons-NNNNN.json``) so a rerun continues with the same people.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidgpen.config import RestoreConfig
from vidgpen.errors import ConfigError, InputError
from vidgpen.faces.persons import Identity, PersonBook
from vidgpen.io.concat import Part, join_parts
from vidgpen.io.frames import VideoInfo
from vidgpen.io.reader import probe
from vidgpen.models.runtime.restorer import Restorer
from vidgpen.pipeline.report import RunReport
from vidgpen.pipeline.run import Pipeline, check_run
from vidgpen.plan.run_plan import RunPlan, make_plan

log = logging.getLogger(__name__)

CONTEXT_S = 2.0  # tracked but not restored on each side of a segment
DEFAULT_SEGMENT_S = 60.0  # --resume's and the Ray engine's segment length
_STATE = "state.json"
_STATE_VERSION = 1


@dataclass(frozen=True)
class Segment:
    """[start, end) seconds from the video's start; ``end`` None runs to the end of the span."""

    index: int
    start: float
    end: float | None


@dataclass
class SegmentRecord:
    """What ``--report`` lists per segment: who restored it, in how many attempts, how long it took.

    ``node`` and ``worker`` name the Ray node id and the ``host:pid`` of the process (the host
    name for a local run); ``failures`` holds one line per failed attempt, with its node.
    A segment finished by an earlier run is ``reused``: 0 attempts, no node.
    """

    index: int
    start: float
    end: float | None
    frames: int
    seconds: float = 0.0
    attempts: int = 0
    node: str = ""
    worker: str = ""
    reused: bool = False
    failures: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, segment: Segment, report: RunReport, **who: Any) -> SegmentRecord:
        return cls(segment.index, segment.start, segment.end, report.frames, report.wall_seconds, **who)

    @classmethod
    def reused_part(cls, segment: Segment, frames: int) -> SegmentRecord:
        return cls(segment.index, segment.start, segment.end, frames, reused=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_segments(start: float, end: float, length: float) -> list[Segment]:
    """Cut [start, end) into pieces of ``length`` s; the last one runs open-ended.

    A remainder under a second joins the segment before it, so a container's slightly
    long duration cannot leave a last segment with no frames in it.
    """
    count = max(1, math.ceil((end - start - 1.0) / length))
    bounds = [start + i * length for i in range(count)]
    return [Segment(i, bounds[i], bounds[i + 1] if i + 1 < count else None) for i in range(count)]


def parts_folder(output: str | Path) -> Path:
    out = Path(output)
    return out.with_name(f".{out.name}.vidgpen-parts")


@dataclass(frozen=True)
class SegmentedRun:
    """One segmented restore as planned before any work: shared by the local loop and the Ray engine."""

    input: str
    output: Path
    plan: RunPlan  # with the probed input: every segment runs it over its own span
    segments: list[Segment]
    folder: Path
    preview: Path | None = None  # the before|after video, joined from its own parts

    @property
    def info(self) -> VideoInfo:
        assert self.plan.info is not None  # planned with the probed input
        return self.plan.info

    def part(self, segment: Segment) -> Path:
        return self.folder / f"part-{segment.index:05d}{self.output.suffix}"

    def preview_part(self, segment: Segment) -> Path | None:
        return None if self.preview is None else self.folder / f"preview-{segment.index:05d}{self.preview.suffix}"

    def done(self, segment: Segment) -> bool:
        """Whether an earlier run finished ``segment``: its part, and its preview part when one is asked for."""
        preview = self.preview_part(segment)
        return self.part(segment).exists() and (preview is None or preview.exists())

    def todo(self) -> list[Segment]:
        """The segments no earlier run finished."""
        return [s for s in self.segments if not self.done(s)]

    def finished(self) -> list[tuple[Segment, int]]:
        """Segments an earlier run finished, with their frames: progress counts them as done."""
        return [(s, _frame_count(self.part(s))) for s in self.segments if self.done(s)]

    def length(self, segment: Segment) -> float:
        """Seconds of video in ``segment``."""
        end = segment.end if segment.end is not None else self.info.duration or segment.start
        return end - segment.start

    def discard_if_unused(self) -> None:
        """Remove the parts folder when it holds no part yet (a run refused before any work)."""
        if not any(self.part(s).exists() for s in self.segments):
            shutil.rmtree(self.folder, ignore_errors=True)

    def join(self) -> None:
        """Copy every part's packets and the source's side streams into the output; drop the parts."""
        cfg = self.plan.config
        if self.preview is not None:  # first: the output in place means the run is done
            previews = [Part(path, s.start) for s in self.segments if (path := self.preview_part(s)) is not None]
            join_parts(previews, self.info, self.preview, cfg.start, cfg.end)
        join_parts([Part(self.part(s), s.start) for s in self.segments], self.info, self.output, cfg.start, cfg.end)
        shutil.rmtree(self.folder, ignore_errors=True)


def plan_segmented(config: RestoreConfig, input: str | Path, output: str | Path, segment_seconds: float, *,
                   restorer: Restorer | None = None, overwrite: bool = False,
                   preview: str | Path | None = None) -> SegmentedRun:
    """Probe and check once for all segments, plan the run, cut the span, and open (or reuse)
    the parts folder."""
    input, output = str(input), Path(output)
    info, segments = _checked_span(config, input, output, overwrite, segment_seconds, preview)
    plan = make_plan(config, info, output.suffix, restorer)
    folder = _prepared_folder(output, _identity(input, config, segment_seconds))
    return SegmentedRun(input, output, plan, segments, folder, Path(preview) if preview is not None else None)


def restore_segment(pipeline: Pipeline, run: SegmentedRun, segment: Segment, *,
                    on_start: Callable[[VideoInfo], None] | None = None,
                    on_progress: Callable[[int, int], None] | None = None,
                    cancel: threading.Event | None = None, identity: Identity | None = None) -> RunReport:
    """Restore one segment into its part file, tracking ``CONTEXT_S`` on both sides."""
    end = run.plan.config.end if segment.end is None else segment.end
    return pipeline.run(run.input, run.part(segment), preview=run.preview_part(segment), on_start=on_start,
                        on_progress=on_progress, context=(CONTEXT_S, CONTEXT_S), copy_streams=False, plan=run.plan.for_span(segment.start, end),
                        cancel=cancel, identity=identity, overwrite=True)


def run_resumable(
    config: RestoreConfig,
    input: str | Path,
    output: str | Path,
    segment_seconds: float,
    *,
    restorer: Restorer | None = None,
    overwrite: bool = False,
    preview: str | Path | None = None,
    on_start: Callable[[VideoInfo], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    identity: Identity | None = None,
) -> RunReport:
    """Restore ``input`` into ``output`` segment by segment, reusing finished segments; one plan
    and one persons stage (``identity``) for every segment, which runs them over its span."""
    run = plan_segmented(config, input, output, segment_seconds, restorer=restorer, overwrite=overwrite,
                         preview=preview)
    pipeline = Pipeline(config, restorer=restorer)
    started = time.perf_counter()
    reports: list[RunReport] = []
    records: list[SegmentRecord] = []
    frames = faces = 0
    reused = 0  # frames in segments finished by an earlier run: progress counts them as done
    announced = False
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def progress(n: int, f: int) -> None:  # called while a segment runs: the totals are those before it
        if on_progress is not None:
            on_progress(reused + frames + n, faces + f)

    def start(video: VideoInfo) -> None:
        nonlocal announced
        if on_start is not None and not announced:
            on_start(video)
        announced = True

    for segment in run.segments:
        book = run.folder / f"persons-{segment.index:05d}.json"
        if run.done(segment) and _persons_as_left(identity, book):
            log.info("%s: segment %d already restored", run.output, segment.index)
            records.append(SegmentRecord.reused_part(segment, _frame_count(run.part(segment))))
            reused += records[-1].frames
            continue
        report = restore_segment(pipeline, run, segment, on_start=start, on_progress=progress, cancel=cancel,
                                 identity=identity)
        reports.append(report)
        records.append(SegmentRecord.of(segment, report, attempts=1, node=socket.gethostname(), worker=worker))
        if identity is not None:  # before the next segment: a rerun starts from these persons
            identity.book.save(book)
        frames, faces = frames + report.frames, faces + report.faces
    if not announced and on_start is not None:
        on_start(run.info)
    run.join()
    return combined_report(run, reports, records, time.perf_counter() - started)


def combined_report(run: SegmentedRun, reports: list[RunReport], records: list[SegmentRecord],
                    wall: float) -> RunReport:
    """The run's report: the restored segments' sums, and every segment's record in order."""
    report = RunReport.combine(reports, run.input, str(run.output), wall, run.plan.config.to_dict(),
                               run.plan.summary())
    report.segments = sorted((r.to_dict() for r in records), key=lambda r: r["index"])
    return report


def _persons_as_left(identity: Identity | None, book: Path) -> bool:
    """Whether a finished segment can be skipped: it can when the run has no persons, or its
    persons were saved, and then they are the ones the next segment starts from."""
    if identity is None:
        return True
    if not book.exists():
        return False  # finished but its persons were not saved: it is restored again to know them
    identity.book = PersonBook.from_json(json.loads(book.read_text(encoding="utf-8")), str(book))
    return True


def _checked_span(cfg: RestoreConfig, input: str, output: Path, overwrite: bool, segment_seconds: float,
                  preview: str | Path | None) -> tuple[VideoInfo, list[Segment]]:
    """Probe and check once for all segments, then cut the span."""
    if segment_seconds <= 0:
        raise ConfigError(f"segment_seconds: {segment_seconds} must be positive")
    if cfg.faces not in ("all", "largest") and not cfg.person_ids():
        raise ConfigError(f"faces: track ids ({cfg.faces}) are numbered per segment; --resume takes all, largest "
                          "or person ids (p1,p3)")
    info = check_run(input, str(output), None if preview is None else str(preview), overwrite, cfg)
    if info.duration is None:
        raise InputError(f"{input}: the duration is unknown, so it cannot be cut into segments for --resume")
    span_end = min(cfg.end, info.duration) if cfg.end is not None else info.duration
    return info, plan_segments(cfg.start or 0.0, span_end, segment_seconds)


def _frame_count(part: Path) -> int:
    video = probe(part)
    return video.frame_count or round((video.duration or 0.0) * float(video.fps))


def _identity(input: str, config: RestoreConfig, segment_seconds: float) -> dict:
    """What the parts were made from: they are reused only if all of it is unchanged."""
    stat = Path(input).stat()
    return {
        "version": _STATE_VERSION,
        "input": str(Path(input).resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "settings": config.settings_hash(),
        "segment_seconds": segment_seconds,
    }


def _prepared_folder(output: Path, identity: dict) -> Path:
    folder = parts_folder(output)
    state = folder / _STATE
    if folder.exists():
        try:
            previous = json.loads(state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        if previous == identity:
            return folder
        log.warning("%s: the input or the settings changed since the interrupted run; restoring from the start", output)
        shutil.rmtree(folder)
    folder.mkdir()
    state.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")
    return folder
