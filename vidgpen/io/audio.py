"""Carry the input's audio and subtitle streams into the output, packet for packet.

The input is re-opened read-only and demuxed lazily, a step ahead of the video being
encoded, so the output stays interleaved and memory does not grow with length. Audio
is re-encoded only when the output container cannot hold its codec, and then from any
sample format, rate and channel layout; text subtitles go into MP4/MOV as mov_text
(:mod:`vidgpen.io.subtitles`; see :mod:`vidgpen.io.routing` for the rules).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import av.container

from vidgpen.errors import OutputError
from vidgpen.io.frames import VideoInfo
from vidgpen.io.probe import open_input
from vidgpen.io.routing import BITRATE_PER_CHANNEL, COPY, DROP, Route, routes, warn
from vidgpen.io.subtitles import TEXT_SUBTITLES, TimedText, cue_span, retimed

log = logging.getLogger(__name__)
_LOSSY = {"aac", "libopus", "opus", "libmp3lame"}  # encoders given a bit rate
# Per channel count, a layout AAC, Opus and FLAC all encode (sources often have an unnamed one).
_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@dataclass
class _Route:
    source: av.stream.Stream
    target: av.stream.Stream
    resampler: av.AudioResampler | None = None  # set when re-encoding: to the encoder's format and frame size
    next_pts: int | None = None  # where the decoded sound has reached, for frames the decoder leaves unstamped
    timed_text: TimedText | None = None  # set when a text subtitle is converted to mov_text


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
        # The ffmpeg backend's pipe is named "mp4 (piped to ffmpeg as NUT)" and answers
        # supported_codecs for the final container and the pipe both.
        container = output.format.name.split(" ")[0]
        try:
            for plan in routes(info.streams, container, output.supported_codecs):
                opened = self._open(plan, info.path) if plan.action != DROP else None
                warn(info.path, plan if opened is not None else Route(plan.stream, DROP), output.format.name)
                if opened is not None:
                    self._routes[plan.stream.index] = opened
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

    def _open(self, plan: Route, path: str) -> _Route | None:
        """The stream's route; None for a subtitle stream that cannot be converted (left out)."""
        source = self._input.streams[plan.stream.index]
        if plan.action == COPY:
            return _Route(source, self._output.add_stream_from_template(source))
        if plan.stream.kind == "subtitle":
            try:
                timed_text = TimedText(source, self._output)
            except (av.FFmpegError, ValueError) as exc:
                log.info("%s: subtitle stream #%d cannot be converted (%s)", path, source.index, exc)
                return None
            return _Route(source, timed_text.target, timed_text=timed_text)
        try:
            return self._encoder(source, plan.target)
        except (av.FFmpegError, ValueError) as exc:
            # Said as audio, before any video work: not blamed on the video encoder.
            raise OutputError(f"{path}: cannot set up audio stream #{source.index} ({plan.stream.codec} → "
                              f"{plan.target}) for a {self._output.format.name} output ({exc})") from exc

    def _encoder(self, source: av.audio.stream.AudioStream, codec: str) -> _Route:
        """An opened ``codec`` encoder for ``source``'s sound: its rate when the codec takes it,
        its channel count (stereo above 8), the codec's sample format and frame size."""
        rates = av.Codec(codec, "w").audio_rates
        rate = source.sample_rate
        if rates and rate not in rates:
            rate = 48000 if 48000 in rates else max(rates)
        channels = source.channels if 0 < source.channels <= 8 else 2
        layout = _LAYOUTS[channels]
        target = self._output.add_stream(codec, rate=rate, layout=layout)
        if codec in _LOSSY:
            target.bit_rate = BITRATE_PER_CHANNEL * channels
        target.codec_context.open()
        frame_size = target.codec_context.frame_size or None
        resampler = av.AudioResampler(format=target.format.name, layout=layout, rate=rate, frame_size=frame_size)
        return _Route(source, target, resampler)

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
            route = self._routes[packet.stream.index]
            if route.timed_text is not None or route.source.codec_context.name in TEXT_SUBTITLES:
                self._write_cue(packet, route)
                continue
            if self._end is not None and time >= self._end:
                continue
            if self._trimmed and time < self._shift:
                continue
            self._write(packet)

    def finish(self) -> None:
        """Write what is left, flush re-encoders and release the input."""
        self.feed(None)
        for route in self._routes.values():
            if route.resampler is not None:
                self._encode(route, route.source.decode(None))  # frames the decoder still holds
                for frame in route.resampler.resample(None):
                    self._output.mux(route.target.encode(frame))
                self._output.mux(route.target.encode(None))
        if self._input is not None:
            self._input.close()

    def close(self) -> None:
        """Release the input without writing (the output is being abandoned)."""
        if self._input is not None:
            self._input.close()

    def _write(self, packet: av.Packet) -> None:
        route = self._routes[packet.stream.index]
        if route.resampler is None:
            offset = round(Fraction(self._shift) / packet.time_base) if self._shift else 0
            if offset:
                if packet.pts is not None:
                    packet.pts -= offset
                if packet.dts is not None:
                    packet.dts -= offset
            packet.stream = route.target
            self._output.mux(packet)
            return
        self._encode(route, packet.decode())

    def _write_cue(self, packet: av.Packet, route: _Route) -> None:
        """A text subtitle cue, cut to the span (a cue straddling --start or --end keeps its part)."""
        span = cue_span(packet, self._shift if self._trimmed else float("-inf"), self._end)
        if span is None:
            return
        if route.timed_text is not None:
            packet = route.timed_text.convert(packet)
            if packet is None:
                return
        packet.stream = route.target
        self._output.mux(retimed(packet, span, self._shift))

    def _encode(self, route: _Route, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            if frame.pts is None:  # e.g. the last frame of a WMA decoder's flush
                frame.pts, frame.time_base = route.next_pts, route.source.time_base
            if frame.pts is None:
                continue  # nothing to place it by
            route.next_pts = frame.pts + round(Fraction(frame.samples, frame.sample_rate) / frame.time_base)
            if self._shift:
                frame.pts -= round(Fraction(self._shift) / frame.time_base)
            for chunk in route.resampler.resample(frame):
                self._output.mux(route.target.encode(chunk))


def _seconds(packet: av.Packet) -> float:
    stamp = packet.pts if packet.pts is not None else packet.dts
    return float(stamp * packet.time_base)
