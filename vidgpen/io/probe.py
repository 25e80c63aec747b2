"""Open an input read-only and describe it as a :class:`VideoInfo`.

Every way an input can be unusable (missing, empty, not media, no video) is turned into
one :class:`InputError` here, so the reader, the writer's audio copy and the batch
scanner all report bad files the same way.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import av.container

from vidgpen.errors import InputError
from vidgpen.io.colour import PRIMARIES, RANGES, SPACES, TRANSFERS, tag_name
from vidgpen.io.frames import StreamInfo, VideoInfo

# AVFieldOrder values other than unknown (0) and progressive (1), by FFmpeg's names.
_FIELD_ORDERS = {2: "tff", 3: "bff", 4: "tb", 5: "bt"}
# Packets read while looking for the first frame (its side data holds the rotation).
_PROBE_PACKETS = 64


def open_input(path: str | os.PathLike) -> av.container.InputContainer:
    """Open a media file for reading only, or raise InputError naming the file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a video file")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty (0 bytes)")
    try:
        container = av.open(str(p), mode="r")
    except av.FFmpegError as exc:
        raise InputError(f"{p}: not a readable media file ({_reason(exc)})") from exc
    if not container.streams.video:
        container.close()
        raise InputError(f"{p}: no video stream")
    if _is_still_image(container):
        container.close()
        raise InputError(f"{p}: no video stream (a still image)")
    return container


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe the input's video stream and the streams the writer will copy."""
    with open_input(path) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        time_base = stream.time_base or Fraction(1, 90000)
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        duration = _duration(container, stream)
        first = _first_frame(container, stream)
        pix_fmt = first.format.name if first is not None else (ctx.pix_fmt or "yuv420p")
        interlaced = ctx.field_order in _FIELD_ORDERS or bool(first is not None and first.interlaced_frame)
        frame_count = stream.frames or (round(duration * fps) if duration else None)
        return VideoInfo(
            path=str(path),
            container=container.format.name,
            width=ctx.width,
            height=ctx.height,
            fps=Fraction(fps),
            time_base=Fraction(time_base),
            duration=duration,
            frame_count=frame_count,
            rotation=(-first.rotation) % 360 if first is not None else 0,
            codec=ctx.codec.canonical_name,
            pix_fmt=pix_fmt,
            bit_depth=max(c.bits for c in av.VideoFormat(pix_fmt).components),
            color_range=tag_name(RANGES, ctx.color_range),
            color_space=tag_name(SPACES, ctx.colorspace),
            color_primaries=tag_name(PRIMARIES, ctx.color_primaries),
            color_trc=tag_name(TRANSFERS, ctx.color_trc),
            interlaced=interlaced,
            field_order=_field_order(ctx, interlaced),
            start_time=float(stream.start_time * time_base) if stream.start_time else 0.0,
            streams=tuple(_stream_info(s) for s in container.streams if s.type in ("audio", "subtitle", "data")),
        )


def _field_order(ctx: av.codec.context.CodecContext, interlaced: bool) -> str:
    if ctx.field_order in _FIELD_ORDERS:
        return _FIELD_ORDERS[ctx.field_order]
    if not interlaced:
        return "progressive"
    # DV does not signal its order: IEC 61834 puts the bottom field first (PAL and NTSC).
    return "bff" if ctx.codec.canonical_name == "dvvideo" else "interlaced"


def _reason(exc: av.FFmpegError) -> str:
    """FFmpeg's short message without the errno and file name PyAV appends."""
    return (exc.strerror or str(exc)).rstrip(".").lower()


def _is_still_image(container: av.container.InputContainer) -> bool:
    """A lone PNG/JPEG opens as a one-frame "video" through image2; it is not a video."""
    return container.format.name.endswith("_pipe") or container.format.name == "image2"


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _first_frame(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> av.VideoFrame | None:
    """Decode the first picture: its side data holds the display matrix and its flags
    the interlacing, neither of which PyAV exposes on the stream. Damage is tolerated."""
    try:
        for n, packet in enumerate(container.demux(stream)):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                frames = []
            if frames:
                return frames[0]
            if n >= _PROBE_PACKETS:
                break
    except av.FFmpegError:
        pass
    return None


def _data_codec(stream: av.stream.Stream) -> str:
    """A data stream's name (PyAV gives data streams no codec): QuickTime timecode tracks
    carry their start timecode in the metadata."""
    if "timecode" in stream.metadata:
        return "timecode"
    return stream.name or "unknown"


def _stream_info(stream: av.stream.Stream) -> StreamInfo:
    ctx = stream.codec_context
    return StreamInfo(
        index=stream.index,
        kind=stream.type,
        codec=ctx.codec.canonical_name if ctx is not None else _data_codec(stream),
        time_base=Fraction(stream.time_base) if stream.time_base is not None else None,
        sample_rate=getattr(ctx, "sample_rate", None) if stream.type == "audio" else None,
        channels=getattr(ctx, "channels", None) if stream.type == "audio" else None,
        language=stream.language,
    )
