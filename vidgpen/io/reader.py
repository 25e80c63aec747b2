"""Stream decoded frames, upright RGB with their source timestamps, from a video file.

Two back ends share one interface: PyAV (default; threaded decode, deinterlacing,
tolerant of damaged packets, keeps the decoded frame for lossless pass-through) and
decord. Frames are produced one at a time, so memory does not grow with the video.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Protocol, TypeVar

import av
import numpy as np

from vidgpen.errors import ConfigError, InputError, first_line
from vidgpen.io.colour import swscale_matrix, swscale_range
from vidgpen.io.fields import FRAME_RATE, DeinterlacePlan, drain, filter_graph, plan_deinterlace
from vidgpen.io.frames import Frame, VideoInfo
from vidgpen.io.names import DECODERS, DEINTERLACE_RATES, DEINTERLACERS
from vidgpen.io.probe import open_input, probe
from vidgpen.io.timing import FrameClock

__all__ = ["DecordReader", "VideoReader", "open_video", "probe", "upright"]

log = logging.getLogger(__name__)
T = TypeVar("T")



class Reader(Protocol):
    """What the pipeline relies on, whichever back end decodes."""

    info: VideoInfo  # the frames as they come out (after deinterlacing)
    source_info: VideoInfo  # the file's video stream as probed
    skipped: int

    def __iter__(self) -> Iterator[Frame]: ...
    def __enter__(self) -> Reader: ...
    def __exit__(self, *exc: object) -> None: ...


def open_video(
    path: str | os.PathLike,
    decoder: str = "pyav",
    deinterlace: str | None = None,
    start: float | None = None,
    end: float | None = None,
    info: VideoInfo | None = None,
    rate: str = FRAME_RATE,
    fields: DeinterlacePlan | None = None,
) -> Reader:
    """Open ``path`` for frame-by-frame reading of the span [start, end) in seconds
    from the start of the video stream. ``info`` is what :func:`probe` already returned
    for it, so a caller that probed first does not decode the first frame twice.
    ``rate``: with a deinterlacer, "frame" (one frame per frame) or "field" (one per field).
    ``fields``: the run plan's deinterlace plan for these settings, so it is not worked out again."""
    if decoder not in DECODERS:
        raise ConfigError(f"decoder: unknown value {decoder!r} (choose from {', '.join(DECODERS)})")
    if deinterlace is not None and deinterlace not in DEINTERLACERS:
        raise ConfigError(
            f"deinterlace: unknown value {deinterlace!r} (choose from {', '.join(DEINTERLACERS)})"
        )
    if rate not in DEINTERLACE_RATES:
        raise ConfigError(f"deinterlace_rate: unknown value {rate!r} (choose from {', '.join(DEINTERLACE_RATES)})")
    if start is not None and start < 0:
        raise ConfigError(f"start: must be >= 0 seconds, got {start}")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"end: must be after start ({start} s), got {end}")
    if decoder == "decord":
        if deinterlace is not None:
            raise ConfigError("deinterlace: needs decoder 'pyav' (decord cannot deinterlace)")
        return DecordReader(path, start=start, end=end, info=info)
    return VideoReader(path, deinterlace=deinterlace, start=start, end=end, info=info, rate=rate, fields=fields)


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored-orientation image by ``rotation`` degrees clockwise (contiguous,
    because OpenCV and torch want it)."""
    if rotation % 360 == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=-(rotation // 90)))


def in_span(time: float, start: float | None, end: float | None) -> bool:
    """Whether a frame at ``time`` s lies in [start, end) (None: unbounded), to a nanosecond."""
    return (start is None or time >= start - 1e-9) and (end is None or time < end - 1e-9)


class _Timeline:
    """Stamps frames in the decoder's order (see :class:`FrameClock`) and cuts [start, end).

    The clock counts in the source's time base (before any filter); times are read in
    ``output``'s, the time base the frames come out of the deinterlacer in."""

    def __init__(self, info: VideoInfo, start: float | None, end: float | None,
                 output: VideoInfo | None = None) -> None:
        self.info = output or info
        self.start = start or 0.0
        self.end = end
        self.origin = round(self.info.start_time / self.info.time_base)
        step = round(1 / (info.fps * info.time_base)) if info.fps else 1
        self.clock = FrameClock(step, round(info.start_time / info.time_base))

    def frames(self, stamped: Iterable[tuple[int, T]]) -> Iterator[tuple[int, float, T]]:
        """(pts, seconds from the stream start, item) for the already stamped frames in the span."""
        for pts, item in stamped:
            time = float((pts - self.origin) * self.info.time_base)
            if not in_span(time, self.start, self.end):
                if time < self.start:
                    continue  # before the span
                return  # past it
            yield pts, time, item

class VideoReader:
    """PyAV reader: threaded decode, optional deinterlace, damaged packets skipped."""

    def __init__(
        self,
        path: str | os.PathLike,
        deinterlace: str | None = None,
        start: float | None = None,
        end: float | None = None,
        info: VideoInfo | None = None,
        rate: str = FRAME_RATE,
        fields: DeinterlacePlan | None = None,
    ) -> None:
        self.source_info = info or probe(path)
        self.plan = fields or plan_deinterlace(self.source_info, deinterlace, rate)
        self.info = self.plan.output_info(self.source_info)  # the frames as they come out
        self.skipped = 0  # damaged packets and frames, known once iteration ends
        self._damaged = 0
        self._start, self._end = start, end
        self._filter = filter_graph(self.source_info, self.plan)
        self._container = open_input(path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._rgb = {
            "format": "rgb24",
            "src_colorspace": swscale_matrix(self.info.color_space),
            "src_color_range": swscale_range(self.info.color_range),
        }

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def __iter__(self) -> Iterator[Frame]:
        source = self.source_info
        timeline = _Timeline(source, self._start, self._end, output=self.info)
        if self._start:
            target = round(source.start_time / source.time_base) + int(self._start / source.time_base)
            self._container.seek(target, stream=self._stream, backward=True)
        stamped = ((self._rescaled(picture), picture) for picture in self._pictures(timeline.clock))
        for index, (pts, time, picture) in enumerate(timeline.frames(stamped)):
            yield Frame(index=index, pts=pts, time=time, source=picture, **self._images(picture))
        self.skipped = self._damaged
        self._report(timeline.clock)

    def _images(self, picture: av.VideoFrame) -> dict[str, np.ndarray]:
        """The upright RGB image, and for a >8-bit source its 16-bit twin for the paste."""
        if self.info.bit_depth <= 8:
            return {"image": upright(picture.to_ndarray(**self._rgb), self.info.rotation)}
        deep = upright(picture.to_ndarray(**{**self._rgb, "format": "rgb48le"}), self.info.rotation)
        return {"image": (deep >> 8).astype(np.uint8), "deep": deep}

    def _rescaled(self, picture: av.VideoFrame) -> int:
        """The frame's pts in the output's time base (bwdif halves the stream's, decimate sets its own)."""
        pts = picture.pts
        if picture.time_base and picture.time_base != self.info.time_base:
            pts = round(pts * picture.time_base / self.info.time_base)
        return pts

    def _pictures(self, clock: FrameClock) -> Iterator[av.VideoFrame]:
        """Decoded (and deinterlaced) frames in decoder order, stamped by ``clock`` before
        the filter so it sees increasing pts; damage is counted and skipped."""
        for stamp, frame in clock.stamped((f.pts, f.dts, f) for f in self._decoded()):
            frame.pts, frame.time_base = stamp, self.source_info.time_base
            if self._filter is None:
                yield frame
                continue
            self._filter.push(frame)
            yield from drain(self._filter)
        if self._filter is not None:
            self._filter.push(None)
            yield from drain(self._filter)

    def _decoded(self) -> Iterator[av.VideoFrame]:
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError:  # unreadable rest of a truncated or broken file
                self._damaged += 1
                return
            try:
                frames = packet.decode()
            except av.FFmpegError:
                self._damaged += 1
                continue
            if packet.is_corrupt:  # flagged by the demuxer (e.g. MPEG-TS continuity errors)
                self._damaged += 1
            yield from frames

    def _report(self, clock: FrameClock) -> None:
        if self.skipped:
            log.warning(
                "%s: skipped %d undecodable packet(s) while decoding; the other frames keep their timing",
                self.info.path, self.skipped,
            )
        clock.report(self.info.path)


class DecordReader:
    """decord reader with the PyAV reader's interface (no deinterlace, no pass-through
    source frame: the writer converts its RGB images)."""

    _BATCH = 8  # frames per decord call: amortises its per-call cost, bounds memory

    def __init__(
        self,
        path: str | os.PathLike,
        start: float | None = None,
        end: float | None = None,
        info: VideoInfo | None = None,
    ) -> None:
        import decord

        self.info = self.source_info = info or probe(path)
        if self.info.rotation:
            # decord 0.6 mis-rotates (4-channel or scrambled pixels) such videos.
            raise InputError(
                f"{path}: rotated video ({self.info.rotation}°) is not read correctly by "
                "decord; use decoder 'pyav'"
            )
        self.skipped = 0
        self._start, self._end = start, end
        try:
            self._video = decord.VideoReader(str(path), ctx=decord.cpu(0))
        except decord.DECORDError as exc:
            raise InputError(f"{path}: decord cannot read it ({first_line(exc)})") from exc
        self._error = decord.DECORDError

    def __enter__(self) -> DecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._video = None

    def __iter__(self) -> Iterator[Frame]:
        timeline = _Timeline(self.info, self._start, self._end)
        stamped = timeline.clock.stamped((pts, None, image) for pts, image in self._timed(timeline))
        for index, (pts, time, image) in enumerate(timeline.frames(stamped)):
            yield Frame(index=index, pts=pts, time=time, image=image, source=None)

    def _timed(self, timeline: _Timeline) -> Iterator[tuple[int, np.ndarray]]:
        """(decord's pts, RGB image) from the first frame at or after start, a batch at a time."""
        times = self._video.get_frame_timestamp(range(len(self._video)))[:, 0]
        first = int(np.searchsorted(times, timeline.start - 1e-6))
        for batch_start in range(first, len(times), self._BATCH):
            indices = list(range(batch_start, min(batch_start + self._BATCH, len(times))))
            try:
                images = self._video.get_batch(indices).asnumpy()
            except self._error as exc:
                raise InputError(
                    f"{self.info.path}: decord cannot decode frames {indices[0]}-{indices[-1]} "
                    f"({first_line(exc)}); decoder 'pyav' skips damaged packets"
                ) from exc
            for i, image in zip(indices, images):
                yield timeline.origin + round(Fraction(float(times[i])) / self.info.time_base), image


