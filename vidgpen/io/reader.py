"""Stream decoded frames, upright RGB with their source timestamps, from a video file.

Two back ends share one interface: PyAV (default; threaded decode, deinterlacing,
tolerant of damaged packets, keeps the decoded frame for lossless pass-through) and
decord. Frames are produced one at a time, so memory does not grow with the video.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Protocol, TypeVar

import av
import numpy as np

from vidgpen.errors import ConfigError, InputError, first_line
from vidgpen.io.colour import swscale_matrix, swscale_range
from vidgpen.io.frames import Frame, VideoInfo
from vidgpen.io.names import DECODERS, DEINTERLACERS
from vidgpen.io.probe import open_input, probe

__all__ = ["DecordReader", "VideoReader", "open_video", "probe", "upright"]

log = logging.getLogger(__name__)
T = TypeVar("T")



class Reader(Protocol):
    """What the pipeline relies on, whichever back end decodes."""

    info: VideoInfo
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
) -> Reader:
    """Open ``path`` for frame-by-frame reading of the span [start, end) in seconds
    from the start of the video stream. ``info`` is what :func:`probe` already returned
    for it, so a caller that probed first does not decode the first frame twice."""
    if decoder not in DECODERS:
        raise ConfigError(f"decoder: unknown value {decoder!r} (choose from {', '.join(DECODERS)})")
    if deinterlace is not None and deinterlace not in DEINTERLACERS:
        raise ConfigError(
            f"deinterlace: unknown value {deinterlace!r} (choose from {', '.join(DEINTERLACERS)})"
        )
    if start is not None and start < 0:
        raise ConfigError(f"start: must be >= 0 seconds, got {start}")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"end: must be after start ({start} s), got {end}")
    if decoder == "decord":
        if deinterlace is not None:
            raise ConfigError("deinterlace: needs decoder 'pyav' (decord cannot deinterlace)")
        return DecordReader(path, start=start, end=end, info=info)
    return VideoReader(path, deinterlace=deinterlace, start=start, end=end, info=info)


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
    """Puts decoded frames in pts order on the stream's timeline and cuts [start, end).

    Damaged streams and AVI files can hand frames over with missing or out-of-order
    timestamps. A few frames are held back and released in pts order (decoders reorder
    no further); a frame still late or duplicated after that is damaged and dropped, and
    a missing pts is taken as one frame after its predecessor's. So every kept frame
    keeps its own time and none is shifted onto a neighbour's slot.
    """

    DEPTH = 4

    def __init__(self, info: VideoInfo, start: float | None, end: float | None) -> None:
        self.info = info
        self.start = start or 0.0
        self.end = end
        self.origin = round(info.start_time / info.time_base)
        self.step = max(1, round(1 / (info.fps * info.time_base))) if info.fps else 1
        self.dropped = 0  # late or duplicate timestamps: damaged frames
        self.guessed = 0  # missing timestamps filled in

    def frames(self, stamped: Iterable[tuple[int | None, T]]) -> Iterator[tuple[int, float, T]]:
        """(pts, seconds from the stream start, item) for the frames in the span."""
        last = None
        for pts, item in self._sorted(stamped):
            if last is not None and pts <= last:
                self.dropped += 1
                continue
            last = pts
            time = float((pts - self.origin) * self.info.time_base)
            if not in_span(time, self.start, self.end):
                if time < self.start:
                    continue  # before the span
                return  # past it
            yield pts, time, item

    def _sorted(self, stamped: Iterable[tuple[int | None, T]]) -> Iterator[tuple[int, T]]:
        held: list[tuple[int, int, T]] = []
        previous = None
        for order, (pts, item) in enumerate(stamped):
            if pts is None:
                pts = self.origin if previous is None else previous + self.step
                self.guessed += 1
            previous = pts
            heapq.heappush(held, (pts, order, item))
            if len(held) > self.DEPTH:
                pts, _, item = heapq.heappop(held)
                yield pts, item
        while held:
            pts, _, item = heapq.heappop(held)
            yield pts, item


class VideoReader:
    """PyAV reader: threaded decode, optional deinterlace, damaged packets skipped."""

    def __init__(
        self,
        path: str | os.PathLike,
        deinterlace: str | None = None,
        start: float | None = None,
        end: float | None = None,
        info: VideoInfo | None = None,
    ) -> None:
        self.info = info or probe(path)
        self.skipped = 0  # damaged packets and frames, known once iteration ends
        self._damaged = 0
        self._start, self._end = start, end
        self._filter = _deinterlacer(self.info, deinterlace)
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
        timeline = _Timeline(self.info, self._start, self._end)
        if self._start:
            target = timeline.origin + int(self._start / self.info.time_base)
            self._container.seek(target, stream=self._stream, backward=True)
        stamped = ((self._stamp(picture), picture) for picture in self._pictures())
        for index, (pts, time, picture) in enumerate(timeline.frames(stamped)):
            image = upright(picture.to_ndarray(**self._rgb), self.info.rotation)
            yield Frame(index=index, pts=pts, time=time, image=image, source=picture)
        self.skipped = self._damaged + timeline.dropped
        self._report(timeline)

    def _stamp(self, decoded: av.VideoFrame) -> int | None:
        """The frame's pts in the stream's time base (bwdif/yadif halve the time base)."""
        pts = decoded.pts if decoded.pts is not None else decoded.dts
        if pts is not None and decoded.time_base and decoded.time_base != self.info.time_base:
            pts = round(pts * decoded.time_base / self.info.time_base)
        return pts

    def _pictures(self) -> Iterator[av.VideoFrame]:
        """Decoded (and deinterlaced) frames in order; damage is counted and skipped."""
        for frame in self._decoded():
            if self._filter is None:
                yield frame
                continue
            self._filter.push(frame)
            yield from _drain(self._filter)
        if self._filter is not None:
            self._filter.push(None)
            yield from _drain(self._filter)

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

    def _report(self, timeline: _Timeline) -> None:
        if self.skipped:
            log.warning(
                "%s: skipped %d damaged packet(s)/frame(s) while decoding; timing kept",
                self.info.path, self.skipped,
            )
        if timeline.guessed:
            log.warning(
                "%s: %d frame(s) had no timestamp; placed one frame after their predecessor",
                self.info.path, timeline.guessed,
            )


def _deinterlacer(info: VideoInfo, mode: str | None) -> av.filter.Graph | None:
    """A bwdif/yadif graph emitting one frame per input frame with its own pts.

    "auto" filters only when the stream says it is interlaced, and then only the frames
    flagged interlaced; naming a filter forces it on every frame, for captures whose
    flags are missing or wrong (common with VHS/DV transfers).
    """
    if mode is None or (mode == "auto" and not info.interlaced):
        return None
    name = "bwdif" if mode == "auto" else mode
    deint = "interlaced" if mode == "auto" else "all"
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=info.width, height=info.height, format=av.VideoFormat(info.pix_fmt),
        time_base=info.time_base,
    )
    deinterlace = graph.add(name, f"mode=send_frame:parity=auto:deint={deint}")
    sink = graph.add("buffersink")
    source.link_to(deinterlace)
    deinterlace.link_to(sink)
    graph.configure()
    return graph


def _drain(graph: av.filter.Graph) -> Iterator[av.VideoFrame]:
    while True:
        try:
            yield graph.pull()
        except (BlockingIOError, EOFError):
            return


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

        self.info = info or probe(path)
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
        for index, (pts, time, image) in enumerate(timeline.frames(self._stamped(timeline))):
            yield Frame(index=index, pts=pts, time=time, image=image, source=None)

    def _stamped(self, timeline: _Timeline) -> Iterator[tuple[int, np.ndarray]]:
        """(pts, RGB image) from the first frame at or after start, a batch at a time."""
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


