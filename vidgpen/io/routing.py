"""Decide, per output container, what happens to each non-video stream: copy, re-encode or drop.

One decision serves ``restore`` (which acts on it) and ``inspect`` (which prints it before
a long run). A stream is copied when the container can hold its codec as it is; audio it
cannot hold is re-encoded to the container's own codec; text subtitles (SubRip, ASS,
WebVTT) go into MP4/MOV as mov_text; other subtitles and data (timecode) streams it cannot
hold are left out. Each stream left out or audio re-encoded gets one warning naming it.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from functools import lru_cache

import av
import av.container

from vidgpen.io.frames import StreamInfo
from vidgpen.io.subtitles import TIMED_TEXT, converts

log = logging.getLogger(__name__)

COPY, REENCODE, DROP = "copy", "re-encode", "drop"
# What a container's own audio codec is when the source's does not fit.
_AUDIO_TARGET = {"mp4": "aac", "mov": "aac", "matroska": "flac", "webm": "libopus"}
# Muxable as far as FFmpeg's codec query goes, but not a file players read: PCM in MP4
# (ISO 23003-5 ipcm) fails when the file is finalised and is read by almost nothing.
_REFUSED = {"mp4": ("pcm_",)}
# Bits per second per channel for lossy re-encodes (AAC-LC, Opus): transparent for speech
# and home-video sound; 5.1 gets 576 kb/s, under AAC's limit of about 6144 kb/s for 8 channels.
BITRATE_PER_CHANNEL = 96_000


@dataclass(frozen=True)
class Route:
    """What ``restore`` does with one input stream."""

    stream: StreamInfo
    action: str  # copy | re-encode | drop
    target: str | None = None  # codec written: the source's when copied, the encoder when re-encoded

    def describe(self) -> str:
        if self.action == COPY:
            return f"copy ({self.stream.codec})"
        if self.action == REENCODE and self.stream.kind == "subtitle":
            return f"convert {self.stream.codec} → {self.target} (text and timing)"
        if self.action == REENCODE:
            return f"re-encode {self.stream.codec} → {self.target}"
        return f"drop ({self.stream.codec} does not fit)"


@lru_cache(maxsize=16)
def _probe_muxer(container_format: str) -> av.container.OutputContainer:
    """An in-memory muxer to ask what the container accepts (never written)."""
    return av.open(io.BytesIO(), mode="w", format=container_format)


def holds(container_format: str, codec: str, supported: set[str] | None = None) -> bool:
    """Whether a ``container_format`` file can carry ``codec`` (a descriptor name) as it is;
    ``supported``: what the output being written accepts, when it is not a plain muxer."""
    if any(codec.startswith(prefix) for prefix in _REFUSED.get(container_format, ())):
        return False
    return codec in (supported if supported is not None else _probe_muxer(container_format).supported_codecs)


def route(stream: StreamInfo, container_format: str, supported: set[str] | None = None) -> Route:
    """The plan for ``stream`` in a ``container_format`` output."""
    if stream.kind in ("audio", "subtitle") and holds(container_format, stream.codec, supported):
        return Route(stream, COPY, stream.codec)
    if stream.kind == "audio":
        return Route(stream, REENCODE, audio_target(container_format))
    usable = supported if supported is not None else _probe_muxer(container_format).supported_codecs
    if stream.kind == "subtitle" and converts(container_format, stream.codec, usable):
        return Route(stream, REENCODE, TIMED_TEXT)
    return Route(stream, DROP)


def audio_target(container_format: str) -> str:
    codec = _AUDIO_TARGET.get(container_format, "aac")
    return codec if codec in av.codecs_available else "aac"


def routes(streams: tuple[StreamInfo, ...], container_format: str, supported: set[str] | None = None) -> list[Route]:
    return [route(s, container_format, supported) for s in streams]


def warn(path: str, plan: Route, container_format: str) -> None:
    """The one warning for a stream that is not copied as it is (``container_format``:
    the output's name as its muxer gives it)."""
    stream = plan.stream
    if plan.action == REENCODE and stream.kind == "subtitle":
        log.info("%s: subtitle stream #%d (%s) goes into the %s file as %s", path, stream.index, stream.codec,
                 container_format, plan.target)
    elif plan.action == REENCODE:
        log.warning("%s: audio stream #%d (%s) cannot be stored in a %s file; re-encoding it to %s",
                    path, stream.index, stream.codec, container_format, plan.target)
    elif plan.action == DROP:
        log.warning("%s: %s stream #%d (%s) cannot be stored in a %s file; it is left out",
                    path, stream.kind, stream.index, stream.codec, container_format)
