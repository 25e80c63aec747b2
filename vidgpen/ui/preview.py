"""One restored frame before the long run: the Preview screen.

The frame is restored by the same ``Pipeline.run`` as ``vidgpen restore``, as one segment
of a ``--resume`` run is: the frame is the span, and the ``CONTEXT_S`` seconds on each side
are decoded and tracked (and, with ``--deflicker``, restored to prime the fusion) but not
written. So tracks, smoothed landmarks and the fusion's state at the frame are those of a
whole run. It is written losslessly (FFV1, in the pixel format the real output gets) and
read back, so "after" is the real output's frame before the delivery codec's loss.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from vidgpen.config import RestoreConfig
from vidgpen.io.frames import VideoInfo
from vidgpen.io.reader import open_video, probe
from vidgpen.pipeline import Pipeline
from vidgpen.pipeline.segments import CONTEXT_S
from vidgpen.plan.run_plan import make_plan


@dataclass
class FramePreview:
    before: np.ndarray  # upright RGB, as decoded (and deinterlaced)
    after: np.ndarray  # upright RGB, as the output will hold it before the delivery codec
    seconds: float  # wall time of the preview, weights loading included
    eta_seconds: float | None  # the whole video at the rate this preview ran at
    faces: int  # restored in this frame


def frame_time(frames: VideoInfo, index: int) -> float:
    """The slider's frame ``index`` → seconds from the video's start, at the rate the pipeline's
    frames come in (``frames``: the plan's frames_info: per field at field rate)."""
    return index / float(frames.fps)


def read_frame(input: str, index: int, config: RestoreConfig) -> np.ndarray:
    """The frame at ``index``, upright RGB, as the pipeline decodes (and deinterlaces) it."""
    plan = make_plan(config, probe(input), find_weights=False)
    start = frame_time(plan.frames_info, index)
    with open_video(input, decoder=config.decoder, deinterlace=config.deinterlace_filter, info=plan.info,
                    start=start, end=start + 1.0 / float(plan.frames_info.fps), rate=config.deinterlace_rate,
                    fields=plan.fields) as reader:
        for frame in reader:
            return frame.image
    raise ValueError(f"{input}: no frame at index {index}")


def preview_frame(config: RestoreConfig, input: str, index: int, suffix: str = ".mp4") -> FramePreview:
    """Restore frame ``index`` of ``input`` with ``config`` (see the module doc); ``suffix``: the
    output's container, which with the codec decides the pixel format the frame is shown in."""
    plan = make_plan(config, probe(input), suffix, find_weights=False)
    info = plan.frames_info
    step = 1.0 / float(info.fps)
    start = frame_time(info, index)
    span = replace(config, start=start, end=start + step, codec="ffv1", pix_fmt=plan.pix_fmt, encoder_backend="pyav",
                   ffmpeg_args="")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vidgpen-preview-") as folder:
        after_path, both_path = Path(folder) / "after.mkv", Path(folder) / "both.mkv"
        report = Pipeline(span).run(input, after_path, preview=both_path, context=(CONTEXT_S, CONTEXT_S),
                                    copy_streams=False)
        after, both = _first_image(after_path), _first_image(both_path)
    seconds = time.perf_counter() - began
    before = both[: after.shape[0], : after.shape[1]]  # the left half of the side-by-side
    return FramePreview(before, after, seconds, _eta(report.stage_seconds, span, info, start), report.faces)


def _first_image(path: Path) -> np.ndarray:
    with open_video(str(path)) as reader:
        return next(iter(reader)).image


def _eta(stage_seconds: dict[str, float], span: RestoreConfig, info: VideoInfo, start: float) -> float | None:
    """The whole video at this preview's rate: GPEN's seconds per restored frame plus every other
    stage's per decoded frame. Stages overlap in threads, so on many cores this is an upper bound."""
    if info.frame_count is None:
        return None
    fps = float(info.fps)
    decoded = (min(start, CONTEXT_S) + 1.0 / fps + CONTEXT_S) * fps
    restored = min(start, CONTEXT_S) * fps + 1 if span.deflicker > 0 else 1  # context primes the fusion
    gpen = stage_seconds.get("restore", 0.0)
    other = sum(v for k, v in stage_seconds.items() if k not in ("restore", "deflicker"))
    return info.frame_count * (gpen / restored + other / max(decoded, 1.0))
