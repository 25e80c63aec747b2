"""What an input is and what ``restore`` will do with each of its streams, said before a long run.

``vidgpen inspect`` prints it: container, codecs, pixel format, field order, frame count,
constant or variable rate, rotation, the audio/subtitle/data streams, and per stream
copy / re-encode / drop for the output container asked about.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidgpen.io.frames import StreamInfo, VideoInfo
from vidgpen.io.pixfmt import AUTO, auto_pix_fmt
from vidgpen.io.probe import open_input
from vidgpen.io.routing import routes
from vidgpen.io.writer import CONTAINERS

# Packets looked at to tell constant from variable frame rate (a few seconds of video).
_RATE_PACKETS = 300


@dataclass(frozen=True)
class MediaReport:
    suffix: str  # the output container asked about
    rows: list[tuple[str, str, str]]  # (what, the source's, what restore does with it)


def rate_mode(path: str) -> str:
    """"CFR" when the first packets are evenly spaced (to a tick), else "VFR"."""
    with open_input(path) as container:
        stream = container.streams.video[0]
        stamps = []
        for packet in container.demux(stream):
            if packet.pts is not None and packet.size:
                stamps.append(packet.pts)
            if len(stamps) >= _RATE_PACKETS:
                break
    steps = {b - a for a, b in zip(sorted(stamps), sorted(stamps)[1:])}
    return "CFR" if not steps or max(steps) - min(steps) <= 1 else "VFR"


def media_report(info: VideoInfo, output_suffix: str, codec: str, pix_fmt: str, deinterlace: str) -> MediaReport:
    """The input ``info`` and what a restore into a ``output_suffix`` file does with it."""
    container = CONTAINERS.get(output_suffix.lower(), "mp4")
    width, height = info.display_size
    frames = f"{info.frame_count} frames" if info.frame_count else "frame count unknown"
    target_fmt = auto_pix_fmt(codec, info) if pix_fmt == AUTO else pix_fmt
    rows = [
        ("container", info.container, container),
        ("video", f"{info.codec} {info.width}x{info.height} {info.pix_fmt} ({info.bit_depth}-bit)",
         f"re-encode → {codec} {target_fmt}"),
        ("fields", info.field_order, f"deinterlace {_deinterlace(info, deinterlace)}"),
        ("frames", f"{frames}, {float(info.fps):.3f} fps {rate_mode(info.path)}", "every frame, at its own time"),
        ("rotation", f"{info.rotation}° (shown {width}x{height})" if info.rotation else "none",
         "kept (display matrix)" if info.rotation else ""),
    ]
    rows += [(f"#{plan.stream.index} {plan.stream.kind}", _describe(plan.stream), plan.describe())
             for plan in routes(info.streams, container)]
    return MediaReport(output_suffix, rows)


def _deinterlace(info: VideoInfo, mode: str) -> str:
    if mode == "off":
        return "off" + (" (--deinterlace auto or --preset home-video would)" if info.interlaced else "")
    if mode == "auto":
        return "bwdif on frames flagged interlaced" if info.interlaced else "auto (nothing flagged interlaced)"
    return f"{mode} on every frame"


def _describe(stream: StreamInfo) -> str:
    parts = [stream.codec]
    if stream.sample_rate:
        parts.append(f"{stream.sample_rate} Hz")
    if stream.channels:
        parts.append(f"{stream.channels} ch")
    if stream.language:
        parts.append(stream.language)
    return " ".join(parts)
