"""The streaming restore pipeline: decode → faces → align → GPEN in batches → paste → encode.

Stages run in threads joined by bounded queues, so memory is bounded by the queue sizes,
the smoothing lookahead and the batch, never by the video's length; nothing but the
output is written to disk. PyAV, OpenCV and torch release the GIL in their heavy calls,
so decode, face analysis, GPEN and encode overlap. Frames leave in order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vidgpen.config import ConfigLayers, RestoreConfig, build_config
from vidgpen.errors import ConfigError, InputError, OutputError
from vidgpen.faces.align import warp_face
from vidgpen.faces.analyze import AnalyzedFrame, TrackedFace, make_analyzer
from vidgpen.faces.blend import paste_faces
from vidgpen.faces.paste import paste_of, usable_mask
from vidgpen.io.frames import Frame, VideoInfo
from vidgpen.io.reader import in_span, open_video, probe
from vidgpen.io.writer import VideoWriter, check_output
from vidgpen.models.memory import keep_freed_memory
from vidgpen.models.choice import RestorerSet
from vidgpen.models.deflicker import TrackedRestore
from vidgpen.models.restorer import Restorer
from vidgpen.models.temporal import FaceKey
from vidgpen.stats import StageTimes, peak_rss_mb

log = logging.getLogger(__name__)

_END = object()


@dataclass
class FaceJob:
    """One face of one frame on its way through GPEN."""

    face: TrackedFace
    size: int
    affine: np.ndarray  # 2×3, frame px → crop px at `size`
    crop: np.ndarray  # S×S×3 uint8, the aligned unrestored face
    restored: np.ndarray | None = None


@dataclass
class FrameWork:
    """A frame with its faces; frames travel in order even when they hold no face."""

    analyzed: AnalyzedFrame
    jobs: list[FaceJob] = field(default_factory=list)
    prime: bool = False  # a context frame before the span: its faces only prime --deflicker's state

    @property
    def frame(self) -> Frame:
        return self.analyzed.frame


@dataclass
class RunReport:
    """What a run did: written by ``--report`` and returned by the API."""

    input: str
    output: str
    frames: int
    faces: int
    tracks: int
    wall_seconds: float
    fps: float
    stage_seconds: dict[str, float]
    skipped_packets: int
    peak_rss_mb: float  # of the whole process, so of everything it ran before too
    models: dict[str, str]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


class _Stopped(Exception):
    """Raised inside a stage thread when another stage failed or the run was interrupted."""


class _Channel:
    """A bounded queue whose put/get give up when the run is stopping."""

    def __init__(self, size: int, stop: threading.Event) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._stop = stop

    def put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def get(self) -> Any:
        while not self._stop.is_set():
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
        raise _Stopped

    def __iter__(self) -> Iterator[Any]:
        while (item := self.get()) is not _END:
            yield item


class Pipeline:
    """Restore faces in a video, streaming.

    ``restorer`` may be any object with ``size`` (crop side, px) and ``restore(batch)``
    (N×S×S×3 uint8 RGB → same), so users and tests can plug in their own; without it
    the GPEN named by the config is loaded.
    """

    def __init__(self, config: RestoreConfig | None = None, restorer: Restorer | None = None) -> None:
        self.config = config or RestoreConfig()
        self.restorer = restorer  # None: loaded from the config at each run (weights are cached per file)

    def run(
        self,
        input: str | Path,
        output: str | Path,
        *,
        overwrite: bool = False,
        preview: str | Path | None = None,
        on_start: Callable[[VideoInfo], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        context: tuple[float, float] = (0.0, 0.0),
        copy_streams: bool = True,
    ) -> RunReport:
        """Restore ``input`` into ``output``.

        Every check that can fail on bad input (the media, the output path, the weights,
        the detector) runs before ``on_start`` is called and before any output exists.
        ``on_progress(frames, faces)`` is called after each encoded frame.

        ``context``: seconds before the config's start and after its end that are decoded
        and tracked but neither restored nor written, so a segment of a longer run sees
        its faces' tracks and smoothed landmarks as the continuous run would at its edges.
        ``copy_streams=False`` writes the video alone (segments get the audio at the join).
        """
        cfg = self.config
        input, output = str(input), str(output)
        info = probe(input)
        if cfg.start is not None and info.duration is not None and cfg.start >= info.duration:
            raise InputError(f"{input}: --start {cfg.start:g} s is past the end of the video ({info.duration:.2f} s)")
        check_output(input, output, overwrite=overwrite)
        if preview is not None:
            if Path(preview).resolve() == Path(output).resolve():
                raise OutputError(f"{preview}: the preview must be another file than the output")
            check_output(input, str(preview), overwrite=overwrite)
        keep_freed_memory()  # before the stage threads exist: GPEN's activations then reuse pages
        restorers = RestorerSet(cfg, self.restorer)
        tracked = TrackedRestore(cfg.deflicker)
        mask = usable_mask(cfg.mask, cfg.device)
        analyzer = make_analyzer(cfg)
        times = StageTimes()
        stop = threading.Event()
        errors: list[BaseException] = []
        decoded = _Channel(cfg.queue_size, stop)
        aligned = _Channel(cfg.queue_size, stop)
        restored = _Channel(cfg.queue_size, stop)
        pasted = _Channel(cfg.queue_size, stop)
        frames = faces = 0
        tracks: set[int] = set()
        started = time.perf_counter()

        def written(frame: Frame) -> bool:  # False for context frames
            return in_span(frame.time, cfg.start, cfg.end)

        with (
            open_video(input, decoder=cfg.decoder, deinterlace=cfg.deinterlace_filter, info=info,
                       start=max(0.0, cfg.start - context[0]) if cfg.start and context[0] else cfg.start,
                       end=cfg.end + context[1] if cfg.end is not None else None) as reader,
            _writers(info, output, cfg, preview, overwrite, copy_streams) as (writer, preview_writer),
        ):
            if on_start is not None:
                on_start(info)  # every input, output, encoder and weights check has passed

            def decode() -> None:
                source = iter(reader)
                while True:
                    with times.timed("decode"):
                        frame = next(source, _END)
                    decoded.put(frame)
                    if frame is _END:
                        return

            def analyze() -> None:
                for frame in decoded:
                    for item in analyzer.push(frame):
                        aligned.put(self._align(item, restorers, times, written(item.frame)))
                for item in analyzer.flush():
                    aligned.put(self._align(item, restorers, times, written(item.frame)))
                aligned.put(_END)

            def restore() -> None:
                for batch in _gather(aligned, cfg.batch_size, cfg.queue_size):
                    self._restore_batch(batch, restorers, tracked, times)
                    for work in batch:
                        restored.put(work)
                restored.put(_END)

            def paste() -> None:
                for work in restored:
                    before = work.frame.image.copy() if preview is not None and work.jobs else None
                    with times.timed("paste"):
                        self._paste(work, mask)
                    pasted.put((work, before))
                pasted.put(_END)

            threads = [
                threading.Thread(target=_guard(fn, stop, errors), name=f"vidgpen-{fn.__name__}", daemon=True)
                for fn in (decode, analyze, restore, paste)
            ]
            for thread in threads:
                thread.start()
            try:
                for work, before in pasted:
                    if not written(work.frame):
                        continue  # context: tracked, not written
                    with times.timed("encode"):
                        writer.write(work.frame)
                        if preview_writer is not None:
                            preview_writer.write(_side_by_side(work.frame, before))
                    frames += 1
                    faces += len(work.jobs)
                    tracks.update(job.face.track for job in work.jobs)
                    if on_progress is not None:
                        on_progress(frames, faces)
                if errors:
                    raise errors[0]
            except _Stopped:
                raise errors[0] from None
            finally:
                stop.set()
                for thread in threads:
                    thread.join()
            skipped = reader.skipped

        for stage, seconds in analyzer.timings.items():
            times.add(stage, seconds)
        if cfg.deflicker > 0:
            times.add("deflicker", tracked.seconds)
        wall = time.perf_counter() - started
        return RunReport(
            input=input,
            output=output,
            frames=frames,
            faces=faces,
            tracks=len(tracks),
            wall_seconds=round(wall, 3),
            fps=round(frames / wall, 3) if wall > 0 else 0.0,
            stage_seconds=times.snapshot(),
            skipped_packets=skipped,
            peak_rss_mb=round(peak_rss_mb(), 1),
            models=restorers.names,
            settings=cfg.to_dict(),
        )

    def _align(self, item: AnalyzedFrame, restorers: RestorerSet, times: StageTimes, restore: bool) -> FrameWork:
        cfg = self.config
        # Context before a segment's span primes --deflicker's state as a continuous run has it.
        work = FrameWork(item, prime=not restore and cfg.deflicker > 0 and item.frame.time < (cfg.start or 0.0))
        if cfg.strength == 0 or not (restore or work.prime):
            return work  # nothing will be pasted (or written): leave the frame exactly as decoded
        with times.timed("align"):
            for face in item.faces:
                size = restorers.size_for(face)
                affine = face.affine(size, self.config.template)
                crop = warp_face(item.frame.image, affine, size)
                work.jobs.append(FaceJob(face, size, affine, crop))
        return work

    def _restore_batch(self, batch: list[FrameWork], restorers: RestorerSet, tracked: TrackedRestore,
                       times: StageTimes) -> None:
        by_size: dict[int, list[tuple[FaceJob, FaceKey]]] = {}
        for work in batch:  # in frame order, as the temporal fusion needs them
            for job in work.jobs:
                key = FaceKey(job.face.track, work.analyzed.shot, work.frame.index, work.prime)
                by_size.setdefault(job.size, []).append((job, key))
        for size, pairs in by_size.items():
            jobs = [job for job, _ in pairs]
            with times.timed("restore"):
                out = tracked.restore(restorers.get(size), np.stack([job.crop for job in jobs]), [k for _, k in pairs])
            for job, face in zip(jobs, out):
                job.restored = face

    def _paste(self, work: FrameWork, mask: str) -> None:
        if not work.jobs or work.prime:
            return
        cfg = self.config
        pastes = [paste_of(job.restored, job.crop, job.affine) for job in work.jobs]
        changed = paste_faces(
            work.frame.image, pastes, strength=cfg.strength, template=cfg.template,
            mask=mask, color_match=cfg.color_match, grain=cfg.grain, device=cfg.device,
        )
        work.frame.changed.extend(changed)


def _gather(channel: _Channel, batch_size: int, max_frames: int) -> Iterator[list[FrameWork]]:
    """Group consecutive frames until they hold ``batch_size`` faces (bounded by frames)."""
    pending: list[FrameWork] = []
    faces = 0
    for work in channel:
        pending.append(work)
        faces += len(work.jobs)
        if faces >= batch_size or len(pending) >= max_frames:
            yield pending
            pending, faces = [], 0
    if pending:
        yield pending


def _guard(fn: Callable[[], None], stop: threading.Event, errors: list[BaseException]) -> Callable[[], None]:
    """Run a stage; on failure record the error and stop every other stage."""

    def run() -> None:
        try:
            fn()
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
            stop.set()

    run.__name__ = fn.__name__
    return run


class _writers:
    """The output writer and the optional side-by-side preview writer, entered together."""

    def __init__(self, info: VideoInfo, output: str, cfg: RestoreConfig, preview: str | Path | None, overwrite: bool,
                 copy_streams: bool = True):
        options = dict(codec=cfg.codec, crf=cfg.crf, preset=cfg.encoder_preset, pix_fmt=cfg.pix_fmt,
                       start=cfg.start, end=cfg.end, overwrite=overwrite, copy_streams=copy_streams)
        self._writer = VideoWriter(output, info, **options)
        self._preview = None
        if preview is not None:
            width, height = info.display_size
            side_info = replace(info, width=2 * width, height=height + height % 2, rotation=0)
            try:
                self._preview = VideoWriter(str(preview), side_info, **options)
            except BaseException as exc:
                self._writer.__exit__(type(exc), exc, exc.__traceback__)  # drops its partial file
                raise

    def __enter__(self) -> tuple[VideoWriter, VideoWriter | None]:
        self._writer.__enter__()
        if self._preview is not None:
            try:
                self._preview.__enter__()
            except BaseException as exc:
                self._writer.__exit__(type(exc), exc, exc.__traceback__)
                raise
        return self._writer, self._preview

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._preview is not None:
                self._preview.__exit__(*exc)
        finally:
            self._writer.__exit__(*exc)


def _side_by_side(frame: Frame, before: np.ndarray | None) -> Frame:
    after = frame.image
    both = np.concatenate([before if before is not None else after, after], axis=1)
    pad_h, pad_w = both.shape[0] % 2, both.shape[1] % 2
    if pad_h or pad_w:
        both = np.pad(both, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return Frame(index=frame.index, pts=frame.pts, time=frame.time, image=both)


def restore_video(input: str | Path, output: str | Path, *, preset: str | None = None,
                  config_file: str | None = None, restorer: Restorer | None = None,
                  overwrite: bool = False, preview: str | Path | None = None,
                  resume_segments: float | None = None, **options: Any) -> RunReport:
    """Restore every face in ``input`` and write ``output`` (the Python API of ``vidgpen restore``).

    ``options`` are RestoreConfig fields (``model``, ``weights``, ``strength``, ...) and
    take precedence over the preset and the config file, as flags do on the command line.
    ``resume_segments`` (seconds) restores in segments that a rerun after an interruption
    reuses (see :mod:`vidgpen.resume`).
    """
    config = build_config(ConfigLayers(preset=preset, config_file=config_file, overrides=options))
    pipeline = Pipeline(config, restorer=restorer)
    if resume_segments is None:
        return pipeline.run(input, output, overwrite=overwrite, preview=preview)
    if preview is not None:
        raise ConfigError("preview: not available with resumable (segmented) runs")
    from vidgpen.resume import run_resumable

    return run_resumable(pipeline, input, output, resume_segments, overwrite=overwrite)
