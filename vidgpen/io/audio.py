"""Carry the input's audio and subtitle streams into the output, packet for packet.

The input is re-opened read-only and demuxed lazily, a step ahead of the video being
encoded, so the output stays interleaved and memory does not grow with length. Audio
is re-encoded only when the output container cannot hold its codec (with a warning).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import av.container

from vidgpen.io.frames import StreamInfo, VideoInfo
from vidgpen.io.probe import open_input

log = logging.getLogger(__name__)

# Re-encode targets, most compatible first, when the source codec does not fit.
_FALLBACK_AUDIO = ("aac", "libopus", "flac")


@dataclass
class _Route:
    source: av.stream.Stream
    target: av.stream.Stream
    transcode: bool  # decode with the source codec, encode with the target's


class SideStreams:
    """Copies (or, if it must, re-encodes) audio and subtitles into ``output``, limited
    to [start, end) seconds of the video's timeline and shifted to start at 0 when
    trimmed. Call :meth:`feed` as video progresses and :meth:`finish` at the end."""

    def __init__(
        self,
        info: VideoInfo,
        output: av.container.OutputContainer,
        start: float | None = None,
        end: float | None = None,
    ) -> None:
        self._output = output
        self._input = open_input(info.path) if info.streams else None
        self._routes: dict[int, _Route] = {}
        try:
            for stream_info in info.streams:
                route = self._route(stream_info, info.path)
                if route is not None:
                    self._routes[stream_info.index] = route
        except BaseException:
            self.close()  # the writer never got hold of us: release the input here
            raise
        trimmed = start is not None or end is not None
        # Window and shift in the source's absolute timeline (seconds).
        self._shift = info.start_time + (start or 0.0) if trimmed else 0.0
        self._end = info.start_time + end if end is not None else None
        self._trimmed = trimmed
        self._packets = self._demux()
        self._pending: av.Packet | None = None

    def _route(self, stream_info: StreamInfo, path: str) -> _Route | None:
        source = self._input.streams[stream_info.index]
        try:
            return _Route(source, self._output.add_stream_from_template(source), False)
        except ValueError:
            pass
        if stream_info.kind != "audio":
            log.warning(
                "%s: %s stream #%d (%s) cannot be stored in a %s file; it is left out",
                path, stream_info.kind, stream_info.index, stream_info.codec, self._output.format.name,
            )
            return None
        codec = next(
            c for c in _FALLBACK_AUDIO
            if c in av.codecs_available and c in self._output.supported_codecs
        )
        rates = av.Codec(codec, "w").audio_rates
        rate = source.sample_rate
        if rates and rate not in rates:
            rate = 48000 if 48000 in rates else max(rates)
        target = self._output.add_stream(codec, rate=rate, layout=source.layout.name)
        log.warning(
            "%s: audio stream #%d (%s) cannot be stored in a %s file; re-encoding it to %s",
            path, stream_info.index, stream_info.codec, self._output.format.name, codec,
        )
        return _Route(source, target, True)

    def _demux(self) -> Iterator[av.Packet]:
        if not self._routes:
            return
        if self._shift > 0:
            self._input.seek(int(self._shift * av.time_base), backward=True)
        sources = [route.source for route in self._routes.values()]
        for packet in self._input.demux(*sources):
            if packet.size and (packet.pts is not None or packet.dts is not None):
                yield packet  # not a flush packet, and placed in time

    def feed(self, until: float | None) -> None:
        """Write every pending packet stamped at or before ``until`` (absolute seconds
        in the source; None: all of them)."""
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    return
            packet = self._pending
            time = _seconds(packet)
            if until is not None and time > until:
                return
            self._pending = None
            if self._end is not None and time >= self._end:
                continue
            if self._trimmed and time < self._shift:
                continue
            self._write(packet)

    def finish(self) -> None:
        """Write what is left, flush re-encoders and release the input."""
        self.feed(None)
        for route in self._routes.values():
            if route.transcode:
                self._output.mux(route.target.encode(None))
        if self._input is not None:
            self._input.close()

    def close(self) -> None:
        """Release the input without writing (the output is being abandoned)."""
        if self._input is not None:
            self._input.close()

    def _write(self, packet: av.Packet) -> None:
        route = self._routes[packet.stream.index]
        offset = round(Fraction(self._shift) / packet.time_base) if self._shift else 0
        if not route.transcode:
            if offset:
                if packet.pts is not None:
                    packet.pts -= offset
                if packet.dts is not None:
                    packet.dts -= offset
            packet.stream = route.target
            self._output.mux(packet)
            return
        for frame in packet.decode():
            if frame.pts is not None and offset:
                frame.pts -= offset
            self._output.mux(route.target.encode(frame))


def _seconds(packet: av.Packet) -> float:
    stamp = packet.pts if packet.pts is not None else packet.dts
    return float(stamp * packet.time_base)
