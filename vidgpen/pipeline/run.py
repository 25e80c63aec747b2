"""``Pipeline.run``: one video through decode → analyze → align → restore → paste → encode."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import vidgpen.pipeline.stages as stages
from vidgpen.config import RestoreConfig
from vidgpen.errors import InputError, OutputError, RunCancelled
from vidgpen.faces.analyze import make_analyzer
from vidgpen.faces.paste import usable_mask
from vidgpen.faces.persons import Identity
from vidgpen.io.backends import check_backend
from vidgpen.io.frames import Frame, VideoInfo
from vidgpen.io.reader import in_span, open_video, probe
from vidgpen.io.writer import check_output
from vidgpen.models.runtime.memory import keep_freed_memory
from vidgpen.models.runtime.restorer import Restorer
from vidgpen.models.temporal.deflicker import TrackedRestore
from vidgpen.models.temporal.fusion import StateBudget
from vidgpen.pipeline.outputs import Encoder, Writers
from vidgpen.pipeline.people import make_identity
from vidgpen.pipeline.report import RunReport
from vidgpen.pipeline.restorers import RestorerSet
from vidgpen.pipeline.runner import StageRunner
from vidgpen.plan.run_plan import RunPlan, deinterlace_plan, make_plan
from vidgpen.stats import StageTimes


class Pipeline:
    """Restore faces in a video, streaming.

    ``restorer`` may be any object with ``size`` (crop side, px), optionally ``out_size``,
    and ``restore(batch)`` (N×S×S×3 uint8 RGB → N×S'×S'×3), so users and tests can plug in
    their own; without it the model named by the config is loaded.

    ``run`` makes every check that can fail on bad input (the media, the output path,
    the weights, the detector) before ``on_start`` is called and before any output
    exists; ``on_progress(frames, faces)`` follows each encoded frame. ``context``:
    seconds before the config's start and after its end that are decoded and tracked
    but neither restored nor written, so a segment of a longer run sees its faces'
    tracks and smoothed landmarks at its edges as the continuous run would.
    ``copy_streams=False`` writes the video alone (segments get the audio at the join).
    ``cancel``: an event that stops the run at the next frame with :class:`RunCancelled`.
    ``plan``: the run plan of a caller that already probed the input and checked the
    output (the segmented runner, a Ray worker), so none of it is done again. ``identity``:
    the persons stage a segmented run hands from segment to segment (built from the config
    when None and the config needs persons).
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
        plan: RunPlan | None = None,
        cancel: threading.Event | None = None,
        identity: Identity | None = None,
    ) -> RunReport:
        """Restore ``input`` into ``output``; see the class docstring for the options."""
        input, output = str(input), str(output)
        if plan is None:
            info = check_run(input, output, preview, overwrite, self.config)
            plan = make_plan(self.config, info, Path(output).suffix, self.restorer)  # every model found: before any output
        info, cfg = plan.info, plan.config
        keep_freed_memory()  # before the stage threads exist: GPEN's activations then reuse pages
        restorers = RestorerSet(plan, self.restorer)  # a fixed model loaded: a broken one fails before any output
        tracked = _tracked_restore(plan)
        times = StageTimes()  # every stage's seconds, the face stage's too
        analyzer = make_analyzer(plan.faces, times, _persons(cfg, identity, context))
        mask, started = usable_mask(cfg.mask, plan.device), time.perf_counter()

        def written(frame: Frame) -> bool:  # False for context frames
            return in_span(frame.time, cfg.start, cfg.end)

        with (
            open_video(input, decoder=cfg.decoder, deinterlace=cfg.deinterlace_filter, info=info,
                       rate=cfg.deinterlace_rate, fields=plan.fields,
                       start=max(0.0, cfg.start - context[0]) if cfg.start and context[0] else cfg.start,
                       end=cfg.end + context[1] if cfg.end is not None else None) as reader,
            Writers(plan.frames_info, output, plan, preview, overwrite, copy_streams) as writers,
            StageRunner(cfg.queue_size, times) as runner,
        ):
            if on_start is not None:
                on_start(info)  # every input, output, encoder and weights check has passed
            decoded, aligned, restored, pasted = (runner.channel() for _ in range(4))
            align = stages.Aligner(plan, restorers, times, written)
            paster = stages.Paster(plan, mask, times, keep_before=preview is not None)
            runner.start("decode", lambda: stages.decode(reader, decoded, times))
            runner.start("analyze", lambda: stages.analyze(decoded, aligned, analyzer, align))
            runner.start("restore", lambda: stages.restore(aligned, restored, restorers, tracked, cfg.batch_size,
                                                           cfg.queue_size, times))
            runner.start("paste", lambda: stages.paste(restored, pasted, paster))
            encode = Encoder(writers, times, written, on_progress)
            for work in runner.results(pasted):
                if cancel is not None and cancel.is_set():
                    raise RunCancelled(f"{output}: cancelled")  # leaving the with-blocks drops the partial file
                encode(work)
        if cfg.deflicker > 0:
            times.add("deflicker", tracked.seconds)  # a part of restore's
        return RunReport.of(input, output, frames=encode.frames, faces=encode.faces, tracks=len(encode.tracks),
                            wall=time.perf_counter() - started, stage_seconds=times.snapshot(),
                            skipped_packets=reader.skipped, models=restorers.names, settings=cfg.to_dict(),
                            plan=plan.summary(), deflicker_state_mb=tracked.budget.peak / 2**20)


def _tracked_restore(plan: RunPlan) -> TrackedRestore:
    """``--deflicker``'s side of the restore stage: its gain per source frame (the same time span at
    field rate), its state within ``--deflicker-memory``."""
    return TrackedRestore(plan.config.deflicker, plan.frames_per_source_frame, StateBudget(plan.deflicker_memory))


def _persons(cfg: RestoreConfig, identity: Identity | None, context: tuple[float, float]) -> Identity | None:
    """The run's persons stage (reference photos read before any output exists); the frames
    the next segment also decodes will carry each face's person."""
    identity = identity or make_identity(cfg)
    if identity is not None:
        identity.book.new_segment(cfg.end - context[0] if cfg.end is not None and context[0] else None)
    return identity


def check_run(input: str, output: str, preview: str | Path | None, overwrite: bool, cfg: RestoreConfig) -> VideoInfo:
    """Probe the input and check the outputs and the encoder, before any work: bad input fails here."""
    info, start = probe(input), cfg.start
    if start is not None and info.duration is not None and start >= info.duration:
        raise InputError(f"{input}: --start {start:g} s is past the end of the video ({info.duration:.2f} s)")
    check_output(input, output, overwrite=overwrite)
    check_backend(output, deinterlace_plan(cfg, info).output_info(info), **cfg.encoding)
    if preview is not None:
        if Path(preview).resolve() == Path(output).resolve():
            raise OutputError(f"{preview}: the preview must be another file than the output")
        check_output(input, str(preview), overwrite=overwrite)
    return info
