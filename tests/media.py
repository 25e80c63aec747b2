"""Build and inspect small test videos with PyAV (imported by the I/O, faces and
pipeline tests). Nothing here uses vidgpen, so it can check vidgpen independently."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

# Sample rate each audio codec is encoded at (Opus only takes 48 kHz and a few lower).
_AUDIO_RATES = {"libopus": 48000, "opus": 48000}
# FFmpeg enum values for the bt709 / tv tags the helpers can stamp on a clip.
BT709_TV = {"color_range": 1, "colorspace": 1, "color_primaries": 1, "color_trc": 1}


def moving_frames(n: int, width: int = 96, height: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Smooth gradients with a moving square and mild noise: compressible but every frame
    distinct, so dropped, duplicated or reordered frames show up in comparisons."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(n):
        image = np.stack([(x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1),
                          np.full_like(x, (i * 37) % 256)], axis=-1).astype(np.int16)
        x0, y0 = (i * 5) % max(1, width - 12), (i * 3) % max(1, height - 12)
        image[y0:y0 + 12, x0:x0 + 12] = (240, 30, 30)
        image += rng.integers(-6, 7, image.shape, dtype=np.int16)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return frames


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: int | Fraction = 25,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    audio: str | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    interlaced: bool = False,
    tags: dict[str, int] | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB uint8 frames (stored orientation), streamed from any iterable, to
    ``path``; the container follows the extension.

    ``pts``: one timestamp per frame in ``time_base`` (default 1/fps) for VFR clips.
    ``audio``: an audio codec name (``"aac"``, ``"libopus"``, ``"mp3"``, ``"pcm_s16le"``,
    ...) to add a stereo tone as long as the video. ``rotation``: degrees clockwise a
    player turns the picture (display matrix). ``interlaced``: libx264 interlaced (TFF)
    coding. ``tags``: colour enums for the stream, e.g. :data:`BT709_TV`.
    """
    frames = iter(frames)
    first = next(frames)
    fps = Fraction(fps)
    time_base = time_base or (1 / fps)
    stamps = iter(pts) if pts is not None else (round(i / fps / time_base) for i in itertools.count())
    height, width = first.shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=fps, options=dict(options or {}))
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = video.codec_context.time_base = time_base
        if interlaced:
            video.codec_context.options["x264-params"] = "interlaced=1:tff=1"
        for name, value in (tags or {}).items():
            setattr(video.codec_context, name, value)
        if rotation:
            video.set_display_rotation(-rotation)
        sound = _add_audio(out, audio) if audio else None
        matrix = Colorspace.ITU709 if (tags or {}).get("colorspace") == 1 else Colorspace.ITU601
        first_stamp = last_stamp = None
        for image, stamp in zip(itertools.chain([first], frames), stamps):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame = frame.reformat(format=pix_fmt, dst_colorspace=matrix, dst_color_range=ColorRange.MPEG)
            frame.pts, frame.time_base = stamp, time_base
            out.mux(video.encode(frame))
            first_stamp = stamp if first_stamp is None else first_stamp
            last_stamp = stamp
        out.mux(video.encode())
        if sound is not None:
            _encode_tone(out, sound, float((last_stamp - first_stamp) * time_base + 1 / fps))
    return Path(path)


def _add_audio(out: av.container.OutputContainer, codec: str) -> av.audio.stream.AudioStream:
    return out.add_stream(codec, rate=_AUDIO_RATES.get(codec, 44100), layout="stereo")


def _encode_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    rate, chunk = stream.rate, 960
    total = int(seconds * rate)
    for start in range(0, total, chunk):
        t = np.arange(start, min(total, start + chunk)) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode())


def decoded_frames(path: str | Path) -> list[av.VideoFrame]:
    """Every frame of the first video stream, as decoded (stored orientation)."""
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def frame_times(path: str | Path) -> list[Fraction]:
    """Exact presentation times (seconds) of every decoded video frame."""
    return [Fraction(f.pts) * f.time_base for f in decoded_frames(path)]


def plane_bytes(frame: av.VideoFrame) -> list[bytes]:
    """Each plane's visible samples, without row padding: equal means pixel-identical."""
    bytes_per = 2 if max(c.bits for c in frame.format.components) > 8 else 1
    out = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, -1)
        out.append(rows[:, : plane.width * bytes_per].tobytes())
    return out


def packet_digests(path: str | Path, kind: str = "audio") -> list[tuple[Fraction, str]]:
    """(time in seconds, sha1 of the payload) of every ``kind`` packet, in stream order,
    to show streams were copied byte for byte with their timing."""
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        if not streams:
            return []
        return [
            (Fraction(p.pts) * p.time_base, hashlib.sha1(bytes(p)).hexdigest())
            for p in container.demux(streams[0])
            if p.size and p.pts is not None
        ]


TWO_CUES_SRT = "1\n00:00:00,100 --> 00:00:00,200\nHello\n\n2\n00:00:00,300 --> 00:00:00,400\nThere\n"


def with_subtitles(video: Path, out: Path, cues: str = TWO_CUES_SRT, suffix: str = ".srt") -> Path:
    """Remux ``video`` with a subtitle track read from ``cues``, a subtitle file's text
    (``suffix`` .srt, .ass or .vtt: FFmpeg's demuxer for it reads it as a subtitle stream)."""
    srt = out.with_suffix(suffix)
    srt.write_text(cues, encoding="utf-8")
    with av.open(str(video)) as v, av.open(str(srt)) as s, av.open(str(out), "w") as o:
        pairs = [(v, v.streams.video[0]), (s, s.streams.subtitles[0])]
        targets = {id(st): o.add_stream_from_template(st) for _, st in pairs}
        for container, stream in pairs:
            for packet in container.demux(stream):
                if packet.size:  # not the flush packet
                    packet.stream = targets[id(stream)]
                    o.mux(packet)
    return out
