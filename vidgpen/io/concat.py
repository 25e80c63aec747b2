"""Join video-only segment files into one output, packet for packet, with the source's audio.

Segments of a resumable run are encoded separately with the same settings, each starting
at timestamp 0. Joining copies their packets (no re-encode) shifted to each segment's
place in the output, and carries the input's audio and subtitles across the whole span
as :class:`~vidgpen.io.writer.VideoWriter` does. Written to the partial name, renamed
when complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from vidgpen.io.audio import SideStreams
from vidgpen.io.frames import VideoInfo
from vidgpen.io.writer import AUDIO_LEAD_S, abandon_partial, open_partial, partial_path


@dataclass(frozen=True)
class Part:
    """A finished segment file and where it starts in the source (seconds from the video's start)."""

    path: Path
    start: float


def join_parts(parts: list[Part], info: VideoInfo, output: Path, start: float | None, end: float | None) -> None:
    """Write ``output`` from ``parts`` (in order) plus the side streams of ``info``'s file in [start, end).

    Timestamps follow the writer's convention: the source's own timeline, or from 0 at
    ``start`` when the run was trimmed.
    """
    trimmed = start is not None or end is not None
    origin = info.start_time + (start or 0.0) if trimmed else 0.0  # source seconds at output time 0
    muxer = open_partial(output)
    side = None
    try:
        with av.open(str(parts[0].path)) as first:
            video = muxer.add_stream_from_template(first.streams.video[0])
        side = SideStreams(info, muxer, start, end)
        for part in parts:
            shift = info.start_time + part.start - origin  # seconds: the part's 0 in the output
            with av.open(str(part.path)) as source:
                stream = source.streams.video[0]
                offset = round(Fraction(shift) / stream.time_base)
                for packet in source.demux(stream):
                    if not packet.size or packet.pts is None:  # the demuxer's flush packet
                        continue
                    side.feed(origin + float((packet.pts + offset) * stream.time_base) + AUDIO_LEAD_S)
                    packet.pts += offset
                    # Matroska stores no decoding times: the demuxer gives some packets one, others
                    # none. Left to the muxer, they come out ordered; mixing both breaks at a join.
                    packet.dts = None if source.format.name.startswith("matroska") else packet.dts + offset
                    packet.stream = video
                    muxer.mux(packet)
        side.finish()
        muxer.close()
    except BaseException:
        abandon_partial(output, muxer, side)
        raise
    os.replace(partial_path(output), output)
