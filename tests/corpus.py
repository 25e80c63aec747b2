"""A conformance corpus of the formats a home-video or film library holds, made with PyAV's
own encoders: each clip a real face (../shared/faces) moving over two seconds, with the
audio its format carries. Nothing here uses vidgpen."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from conftest import FACES
from face_clips import Clip, load_face, make_clip, smooth_path
from media import BT709_TV

SECONDS = 2
_FIELD_ORDERS = {"tff": 2, "bff": 3}  # FFmpeg's AVFieldOrder: AV_FIELD_TT, AV_FIELD_BB
_SRT = "1\n00:00:00,000 --> 00:00:00,900\nGrandma's 80th\n\n2\n00:00:01,000 --> 00:00:01,900\nsummer 2019\n"


@dataclass(frozen=True)
class Format:
    """One kind of file: how to encode its video and audio, and into what container."""

    name: str
    filename: str
    video: str
    pix_fmt: str
    size: tuple[int, int]
    audio: tuple[str, ...]  # one encoder per audio track
    fps: Fraction = Fraction(25)
    container: str | None = None  # muxer name when the extension does not say
    audio_rate: int = 48000
    layout: str = "stereo"  # of every audio track
    video_options: dict[str, str] = field(default_factory=dict)
    codec_tag: str | None = None
    rotation: int = 0
    fields: str | None = None  # "bff"/"tff": each frame's two fields shot 1/(2 fps) apart
    subtitles: bool = False
    tags: dict[str, int] = field(default_factory=dict)
    timecode: str | None = None  # a QuickTime timecode (tmcd) track starting here
    remux_of: str | None = None  # made by copying this format's packets into the container


FORMATS = (
    Format("dv-avi", "tape.avi", "dvvideo", "yuv420p", (720, 576), ("pcm_s16le",), fields="bff"),
    # The same tape as raw DV: dv-avi's packets remuxed (DV is intra-only), not encoded again.
    Format("dv-raw", "tape.dv", "dvvideo", "yuv420p", (720, 576), ("pcm_s16le",), container="dv", fields="bff",
           remux_of="dv-avi"),
    Format("divx-avi", "divx.avi", "mpeg4", "yuv420p", (320, 240), ("libmp3lame",), audio_rate=44100,
           video_options={"bf": "1", "qscale": "4"}, codec_tag="DX50"),
    Format("dvd-vob", "VTS_01_1.VOB", "mpeg2video", "yuv420p", (352, 288), ("ac3",), container="vob",
           video_options={"bf": "2", "b": "3000k"}),
    Format("vcd-mpg", "vcd.mpg", "mpeg1video", "yuv420p", (352, 288), ("mp2",), audio_rate=44100,
           video_options={"b": "1500k"}),
    Format("avchd-mts", "00001.mts", "libx264", "yuv420p", (640, 360), ("ac3",), container="mpegts",
           video_options={"preset": "veryfast", "x264-params": "interlaced=1:tff=1"}, fields="tff", tags=BT709_TV),
    Format("mjpeg-mov", "camera.mov", "mjpeg", "yuvj420p", (320, 240), ("pcm_s16le",),
           video_options={"q:v": "3"}),
    Format("phone-3gp", "phone.3gp", "h263", "yuv420p", (352, 288), ("aac",), audio_rate=16000),
    Format("wmv", "clip.wmv", "wmv2", "yuv420p", (320, 240), ("wmav2",), container="asf", audio_rate=44100),
    Format("flv", "clip.flv", "flv", "yuv420p", (320, 240), ("libmp3lame",), audio_rate=44100),
    Format("iphone-hevc", "IMG_0001.MOV", "libx265", "yuv420p", (320, 240), ("aac",), codec_tag="hvc1",
           video_options={"preset": "ultrafast", "x265-params": "log-level=error"}, rotation=90, tags=BT709_TV),
    Format("huffyuv-422", "vhs.avi", "huffyuv", "yuv422p", (320, 240), ("pcm_s16le",), layout="mono"),
    Format("prores-10bit", "scan.mov", "prores_ks", "yuv422p10le", (320, 240), ("pcm_s24le",),
           video_options={"profile": "2"}, fps=Fraction(24), timecode="01:00:00:00"),
    Format("mkv-tracks", "film.mkv", "libx264", "yuv420p", (320, 240), ("aac", "ac3"),
           video_options={"preset": "veryfast"}, subtitles=True),
)


def clip(fmt: Format, seed: int = 0) -> Clip:
    """The clip's RGB frames (display orientation) and the face's motion; interlaced
    formats get twice as many pictures, one per field time, woven in :func:`_weave`."""
    width, height = display_size(fmt)
    count = int(SECONDS * fmt.fps) * (2 if fmt.fields else 1)
    face = load_face(FACES / f"ffhq_0000{seed % 10}.png", face_size(fmt))
    # Quick motion so field combing is plain to see: a sixth of the width a second.
    path = smooth_path(width / 2, height / 2, dx=width / 10, dy=height / 20, period=count / 2)
    return make_clip([(face, path)], count, (width, height), seed=seed, codec=None)


def display_size(fmt: Format) -> tuple[int, int]:
    return fmt.size[::-1] if fmt.rotation in (90, 270) else fmt.size


def face_size(fmt: Format) -> int:
    """Side of the (square) face photo pasted into the clip, px."""
    return int(0.45 * min(fmt.size))


def _weave(pictures: list[np.ndarray], order: str) -> list[np.ndarray]:
    """Interlaced frames: the first field (bottom for "bff") from the earlier picture."""
    frames = []
    for first, second in zip(pictures[::2], pictures[1::2]):
        frame = second.copy()
        rows = slice(1, None, 2) if order == "bff" else slice(0, None, 2)
        frame[rows] = first[rows]
        frames.append(frame)
    return frames


def make_all(root: Path) -> dict[str, Path]:
    """Every format's clip, each in a folder of its own under ``root`` (seed: its index)."""
    clips: dict[str, Path] = {}
    for seed, fmt in enumerate(FORMATS):
        folder = root / fmt.name
        folder.mkdir()
        if fmt.remux_of:
            clips[fmt.name] = remux(clips[fmt.remux_of], folder / fmt.filename, fmt.container)
        else:
            clips[fmt.name] = make(fmt, folder, seed)
    return clips


def remux(source: Path, target: Path, container: str | None = None) -> Path:
    """Every stream of ``source`` copied packet for packet into ``target``."""
    with av.open(str(source)) as src, av.open(str(target), "w", format=container) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    return target


def make(fmt: Format, folder: Path, seed: int = 0) -> Path:
    """Encode the format's clip into ``folder``; returns its path."""
    pictures = clip(fmt, seed).frames
    frames = _weave(pictures, fmt.fields) if fmt.fields else pictures
    if fmt.rotation:
        frames = [np.ascontiguousarray(np.rot90(f, k=fmt.rotation // 90)) for f in frames]  # stored orientation
    path = folder / fmt.filename
    with av.open(str(path), "w", format=fmt.container) as out:
        video = _video_stream(out, fmt)
        sounds = [_audio_stream(out, codec, fmt.audio_rate, fmt.layout) for codec in fmt.audio]
        subtitles = _subtitle_source(folder) if fmt.subtitles else None
        subtitle = out.add_stream_from_template(subtitles.streams[0]) if subtitles else None
        for i, image in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=fmt.pix_fmt)
            picture.pts = i
            out.mux(video.encode(picture))
        out.mux(video.encode())
        for stream in sounds:
            _tone(out, stream, SECONDS)
        if subtitles is not None:
            with subtitles:
                for packet in subtitles.demux():
                    if packet.size:
                        packet.stream = subtitle
                        out.mux(packet)
    return path


def _video_stream(out: av.container.OutputContainer, fmt: Format) -> av.video.stream.VideoStream:
    video = out.add_stream(fmt.video, rate=fmt.fps, options=dict(fmt.video_options))
    video.width, video.height, video.pix_fmt = *fmt.size, fmt.pix_fmt
    video.time_base = video.codec_context.time_base = 1 / fmt.fps
    if fmt.codec_tag:
        video.codec_tag = fmt.codec_tag
    if fmt.fields:
        video.codec_context.field_order = _FIELD_ORDERS[fmt.fields]
    for name, value in fmt.tags.items():
        setattr(video.codec_context, name, value)
    if fmt.video_options.get("bf"):
        video.codec_context.max_b_frames = int(fmt.video_options["bf"])
    if fmt.rotation:
        video.set_display_rotation(-fmt.rotation)
    if fmt.timecode:
        video.metadata["timecode"] = fmt.timecode  # the mov muxer writes it as a tmcd track
    return video


def _audio_stream(out: av.container.OutputContainer, codec: str, rate: int, layout: str) -> av.audio.stream.AudioStream:
    stream = out.add_stream(codec, rate=rate, layout=layout)
    if codec in ("wmav2", "ac3", "mp2", "libmp3lame", "aac"):
        stream.bit_rate = 128_000
    return stream


def _tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    """A 440 Hz tone with a 3 Hz beat, in the encoder's own sample format and frame size."""
    rate = stream.rate
    chunk = stream.codec_context.frame_size or 1152
    resampler = av.AudioResampler(format=stream.format.name, layout=stream.layout.name, rate=rate, frame_size=chunk)
    total = int(seconds * rate)
    for start in range(0, total, chunk):
        t = np.arange(start, min(total, start + chunk)) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for part in resampler.resample(frame):
            out.mux(stream.encode(part))
    for part in resampler.resample(None):
        out.mux(stream.encode(part))
    out.mux(stream.encode())


def _subtitle_source(folder: Path) -> av.container.InputContainer:
    """Two SubRip cues, read from an .srt file so their packets can be copied into the clip."""
    path = folder / "cues.srt"
    path.write_text(_SRT, encoding="utf-8")
    return av.open(str(path))


def pack_bframes(source: Path, target: Path) -> Path:
    """``source``'s MPEG-4 ASP stream (one B-frame between references) rewritten as DivX 5
    and Xvid wrote AVIs in "packed bitstream" mode: each B-frame travels in the chunk of
    the reference it follows in decode order, its own slot holds a 1-frame N-VOP, and the
    VOL carries DivX's "p" user data. FFmpeg decodes it in display order, but each
    picture keeps the pts of the chunk it arrived in, so pts go back and forth
    (1, 3, 2, 5, 4, ...) while the chunks' dts climb. Audio is copied along."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        video = src.streams.video[0]
        out_video = dst.add_stream_from_template(video)
        audio = {a.index: dst.add_stream_from_template(a) for a in src.streams.audio}
        vops, sound = [], []
        for packet in src.demux(video, *src.streams.audio):
            if packet.size:
                (vops if packet.stream.index == video.index else sound).append(packet)
        for n, data in enumerate(_packed([bytes(p) for p in vops], video.codec_context.framerate)):
            packet = av.Packet(data)
            packet.pts = packet.dts = n
            packet.time_base, packet.stream, packet.is_keyframe = video.time_base, out_video, n == 0
            dst.mux(packet)
        for packet in sound:
            packet.stream = audio[packet.stream.index]
            dst.mux(packet)
    return target


def _packed(vops: list[bytes], rate: Fraction) -> list[bytes]:
    chunks: list[bytes] = []
    bits = max(1, (int(rate) - 1).bit_length())  # vop_time_increment width for a resolution of ``rate``
    i = 0
    while i < len(vops):
        if i + 1 < len(vops) and _vop_type(vops[i + 1]) == "B":
            chunks += [vops[i] + vops[i + 1], _nvop(len(chunks) % int(rate), bits)]
            i += 2
        else:
            chunks.append(vops[i])
            i += 1
    first = chunks[0]
    at = first.find(b"\x00\x00\x01\xb6")  # user data goes between the VOL and the first VOP
    chunks[0] = first[:at] + b"\x00\x00\x01\xb2DivX503b1393p" + first[at:]
    return chunks


def _vop_type(data: bytes) -> str:
    """I, P, B or S from the vop_coding_type bits after the VOP start code."""
    at = data.find(b"\x00\x00\x01\xb6")
    return "IPBS"[data[at + 4] >> 6]


def _nvop(time_increment: int, bits: int) -> bytes:
    """A not-coded P-VOP: start code, coding type, no seconds, the increment, vop_coded 0,
    then MPEG-4 stuffing (a 0 and 1s to the byte boundary)."""
    code = "01" + "0" + "1" + format(time_increment, f"0{bits}b") + "1" + "0"
    code += "0" + "1" * ((8 - (len(code) + 1) % 8) % 8)
    return b"\x00\x00\x01\xb6" + int(code, 2).to_bytes(len(code) // 8, "big")
