"""What an input is and what ``restore`` will do with each of its streams, said before a long run.

``vidgpen inspect`` prints it: container, codecs, pixel format, field order, frame count,
constant or variable rate, rotation, the audio/subtitle/data streams, and per stream
copy / re-encode / drop for the output container asked about.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidgpen.io.fields import FIELD_RATE, measure_fields, plan_deinterlace
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


def media_report(info: VideoInfo, output_suffix: str, codec: str, pix_fmt: str, deinterlace: str,
                 rate: str = "frame") -> MediaReport:
    """The input ``info`` and what a restore into a ``output_suffix`` file does with it
    (``deinterlace``/``rate``: the --deinterlace mode, off included, and --deinterlace-rate)."""
    container = CONTAINERS.get(output_suffix.lower(), "mp4")
    width, height = info.display_size
    frames = f"{info.frame_count} frames" if info.frame_count else "frame count unknown"
    target_fmt = auto_pix_fmt(codec, info) if pix_fmt == AUTO else pix_fmt
    rows = [
        ("container", info.container, container),
        ("video", f"{info.codec} {info.width}x{info.height} {info.pix_fmt} ({info.bit_depth}-bit)",
         f"re-encode → {codec} {target_fmt}"),
        *_field_rows(info, deinterlace, rate),
        ("frames", f"{frames}, {float(info.fps):.3f} fps {rate_mode(info.path)}", _frames(info, deinterlace, rate)),
        ("rotation", f"{info.rotation}° (shown {width}x{height})" if info.rotation else "none",
         "kept (display matrix)" if info.rotation else ""),
    ]
    rows += [(f"#{plan.stream.index} {plan.stream.kind}", _describe(plan.stream), plan.describe())
             for plan in routes(info.streams, container)]
    return MediaReport(output_suffix, rows)


def _field_rows(info: VideoInfo, deinterlace: str, rate: str) -> list[tuple[str, str, str]]:
    """The flag, idet's measurement, and the deinterlace plan (measured whatever the mode)."""
    structure = measure_fields(info.path, info)
    plan = plan_deinterlace(info, deinterlace, rate, structure)
    action = f"deinterlace: {plan.why}"
    if deinterlace == "off" and structure.kind in ("tff", "bff", "telecined"):
        action += f" (--deinterlace auto: {plan_deinterlace(info, 'auto', rate, structure).why})"
    return [("fields (flag)", info.field_order, ""), ("fields (measured)", structure.describe(), action)]


def _frames(info: VideoInfo, deinterlace: str, rate: str) -> str:
    """How many frames restore writes, and what that costs in GPEN time."""
    plan = plan_deinterlace(info, deinterlace, rate)
    if plan.rate == 2:
        return (f"one per field: {float(info.fps * 2):.3f} fps, twice the frames, so about twice GPEN's time "
                "(--deinterlace-rate frame: one per frame)")
    if plan.rate != 1:
        return f"the film frames: {float(info.fps * plan.rate):.3f} fps, {plan.rate} of the frames"
    hint = " (--deinterlace-rate field would give one per field, ~2x GPEN time)" if (
        rate != FIELD_RATE and plan.filters) else ""
    return "every frame, at its own time" + hint


def _describe(stream: StreamInfo) -> str:
    parts = [stream.codec]
    if stream.sample_rate:
        parts.append(f"{stream.sample_rate} Hz")
    if stream.channels:
        parts.append(f"{stream.channels} ch")
    if stream.language:
        parts.append(stream.language)
    return " ".join(parts)
