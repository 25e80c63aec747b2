"""Text subtitles for MP4/MOV: SubRip, ASS/SSA and WebVTT become ``mov_text`` (3GPP timed text).

MP4 cannot hold SubRip or ASS packets as they are, but it carries timed text, and
FFmpeg's ``mov_text`` encoder takes the events every text subtitle decoder produces (ASS
dialogue lines): its plain text with bold, italic, underline and colour kept, other ASS
styling (positions, fonts, karaoke) dropped. Each cue keeps its start and duration; with
``--start/--end`` a cue that straddles an edge is cut to the span rather than lost.
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.container

# Decoders whose output is ASS text events the mov_text encoder takes.
TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"})
TIMED_TEXT = "mov_text"
_MOV_CONTAINERS = ("mp4", "mov")


def converts(container_format: str, codec: str, supported: set[str]) -> bool:
    """Whether a ``codec`` subtitle stream goes into a ``container_format`` output as mov_text."""
    return container_format in _MOV_CONTAINERS and codec in TEXT_SUBTITLES and TIMED_TEXT in supported


def cue_span(packet: av.Packet, start: float, end: float | None) -> tuple[float, float] | None:
    """The cue's [on, off) seconds (source timeline) cut to [start, end); None when nothing is left.
    A cue without a duration (some muxers leave it out) is taken as a point in time."""
    stamp = packet.pts if packet.pts is not None else packet.dts
    on = float(stamp * packet.time_base)
    off = on + float((packet.duration or 0) * packet.time_base)
    on, off = max(on, start), off if end is None else min(off, end)
    if off < on or (end is not None and on >= end) or (off == on and packet.duration):
        return None
    return on, off


def retimed(packet: av.Packet, span: tuple[float, float], shift: float) -> av.Packet:
    """``packet`` placed at ``span`` (source seconds), shifted so ``shift`` becomes 0."""
    time_base = packet.time_base
    packet.pts = packet.dts = round(Fraction(span[0] - shift) / time_base)
    packet.duration = round(Fraction(span[1] - span[0]) / time_base)
    return packet


class TimedText:
    """Converts one text subtitle stream's packets into a mov_text stream of ``output``."""

    def __init__(self, source: av.subtitles.stream.SubtitleStream, output: av.container.OutputContainer) -> None:
        self.source = source
        decoder = source.codec_context
        decoder.open()  # the decoder writes its ASS header (styles) when opened; mov_text needs it
        header = decoder.subtitle_header
        if not header:
            raise ValueError(f"the {decoder.codec.name} decoder gives no ASS header")
        self.target = output.add_stream(TIMED_TEXT)
        encoder = self.target.codec_context
        encoder.subtitle_header = header
        self.target.time_base = encoder.time_base = source.time_base
        encoder.open()
        if source.language:
            self.target.metadata["language"] = source.language

    def convert(self, packet: av.Packet) -> av.Packet | None:
        """The cue as a mov_text packet with the source packet's timing; None for an empty one."""
        cue = self.source.codec_context.decode2(packet)
        if cue is None or not len(cue):
            return None
        converted = self.target.codec_context.encode_subtitle(cue)
        converted.time_base = packet.time_base
        converted.pts, converted.dts, converted.duration = packet.pts, packet.dts, packet.duration
        if not converted.duration:  # no container duration: the decoder's display time (ms)
            converted.duration = round(Fraction(cue.end_display_time, 1000) / packet.time_base)
        converted.stream = self.target
        return converted
