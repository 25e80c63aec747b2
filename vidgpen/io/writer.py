"""Encode frames to a new video that keeps the input's timing, audio, rotation and colour.

The output is written to ``<name>.partial<ext>`` beside the target and renamed only
when it is complete, so a crash or Ctrl-C never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import logging
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.container
from av.video.frame import PictureType

from vidgpen.errors import ConfigError, InputError, OutputError
from vidgpen.io.audio import SideStreams
from vidgpen.io.colour import PRIMARIES, RANGES, SPACES, TRANSFERS, tag_value
from vidgpen.io.frames import Frame, VideoInfo
from vidgpen.io.pixfmt import AUTO, auto_pix_fmt, patchable
from vidgpen.io.planes import FrameComposer

__all__ = ["CODECS", "CONTAINERS", "VideoWriter", "check_output"]

log = logging.getLogger(__name__)

CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm"}
CODECS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "ffv1", "prores_ks", "dnxhd", "h264_nvenc", "hevc_nvenc")
# Encoders that reject odd frame sizes in chroma-subsampled formats.
_EVEN_SIZE_CODECS = {"libx264", "libx265", "h264_nvenc", "hevc_nvenc"}
_X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# Matroska would otherwise shift every stream later to make AAC's negative priming
# timestamp non-negative, moving the video's PTS; keep the source's timeline instead.
MUXER_OPTIONS = {name: {"avoid_negative_ts": "disabled"} for name in ("matroska", "webm")}
# Audio is fed this far ahead of the video so the muxer can interleave without waiting.
AUDIO_LEAD_S = 1.0


def check_output(
    input_path: str | os.PathLike, output_path: str | os.PathLike, overwrite: bool = False
) -> None:
    """Refuse, before any work, an output that cannot or must not be written."""
    out, src = Path(output_path), Path(input_path)
    if out.suffix.lower() not in CONTAINERS:
        raise OutputError(
            f"{out}: unsupported output extension {out.suffix or '(none)'!r} "
            f"(use {', '.join(CONTAINERS)})"
        )
    if out.resolve() == src.resolve() or (out.exists() and src.exists() and os.path.samefile(out, src)):
        raise OutputError(f"{out}: output is the input file; choose another output path")
    if out.is_dir():
        raise OutputError(f"{out}: is a directory; give an output file name")
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: already exists (pass overwrite to replace it)")
    folder = out.parent
    if not folder.is_dir():
        raise OutputError(f"{out}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: output folder {folder} is not writable")


def partial_path(path: str | os.PathLike) -> Path:
    """Where the output is written until it is complete: ``clip.partial.mp4``."""
    p = Path(path)
    return p.with_name(f"{p.stem}.partial{p.suffix}")


def open_partial(path: Path) -> av.container.OutputContainer:
    """The muxer for ``path``, writing to its :func:`partial_path` until renamed."""
    container_format = CONTAINERS[path.suffix.lower()]
    try:
        return av.open(str(partial_path(path)), mode="w", format=container_format,
                       container_options=MUXER_OPTIONS.get(container_format, {}))
    except (av.FFmpegError, OSError) as exc:
        raise OutputError(f"{path}: cannot create the output ({exc})") from exc


def abandon_partial(path: Path, output: av.container.OutputContainer, side: SideStreams | None) -> None:
    """Drop an unfinished output: release the copied streams' input, delete the partial file."""
    if side is not None:
        side.close()
    with contextlib.suppress(Exception):  # the file is deleted anyway
        output.close()
    partial_path(path).unlink(missing_ok=True)


class VideoWriter:
    """Encodes :class:`Frame` objects with the input's PTS, copying its other streams.

    ``start``/``end`` are the span (seconds of the video timeline) the reader was given:
    audio and subtitles are cut to it and everything is shifted to start at 0.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        info: VideoInfo,
        *,
        codec: str = "libx264",
        crf: int = 18,
        preset: str = "medium",
        pix_fmt: str = AUTO,
        copy_streams: bool = True,
        start: float | None = None,
        end: float | None = None,
        overwrite: bool = False,
    ) -> None:
        check_output(info.path, path, overwrite)
        self.path = Path(path)
        self.info = info
        self._partial = partial_path(path)
        pix_fmt = _checked_pix_fmt(self.path, codec, pix_fmt, info)
        options = _encoder_options(codec, crf, preset)
        self._composer = FrameComposer(info, pix_fmt)
        trimmed = start is not None or end is not None
        self._offset = round(Fraction(info.start_time + (start or 0.0)) / info.time_base) if trimmed else 0
        self._last_pts: int | None = None
        self._side: SideStreams | None = None
        self._output = self._open_output()
        try:
            self._stream = self._add_video(codec, options, pix_fmt)
            if copy_streams:
                self._side = SideStreams(info, self._output, start, end)
            self._output.start_encoding()  # surfaces codec/container/device problems now
        except BaseException as exc:
            self._abandon()
            if isinstance(exc, (av.FFmpegError, ValueError)):
                raise OutputError(f"{self.path}: cannot start encoding with {codec} ({exc})") from exc
            raise

    def _open_output(self) -> av.container.OutputContainer:
        """Where the encoded streams go (the ffmpeg backend puts its pipe here)."""
        return open_partial(self.path)

    def _add_video(self, codec: str, options: dict[str, str], pix_fmt: str) -> av.video.stream.VideoStream:
        if codec not in av.codecs_available:
            raise OutputError(f"{self.path}: codec {codec!r} is not available in this FFmpeg build")
        if codec not in self._output.supported_codecs:
            fits = [c for c in CODECS if c in self._output.supported_codecs]
            raise OutputError(
                f"{self.path}: a {self.path.suffix} file cannot hold {codec} video "
                f"(use one of {', '.join(fits)}, or another container)"
            )
        if codec == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its config on stderr otherwise
        info = self.info
        stream = self._output.add_stream(codec, rate=info.fps, options=options)
        stream.width, stream.height, stream.pix_fmt = info.width, info.height, pix_fmt
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        ctx = stream.codec_context
        for attr, table, name in (
            ("color_range", RANGES, info.color_range),
            ("colorspace", SPACES, info.color_space),
            ("color_primaries", PRIMARIES, info.color_primaries),
            ("color_trc", TRANSFERS, info.color_trc),
        ):
            value = tag_value(table, name)
            if value is not None:
                setattr(ctx, attr, value)
        if info.rotation:
            stream.set_display_rotation(-info.rotation)  # PyAV's angle is counter-clockwise
        return stream

    def write(self, frame: Frame) -> None:
        """Encode one frame at its source PTS (shifted when trimmed)."""
        picture = self._composer.compose(frame)
        pts = frame.pts - self._offset if frame.pts is not None else None
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = 0 if self._last_pts is None else self._last_pts + 1  # encoders need increasing PTS
        self._last_pts = picture.pts = pts
        picture.time_base = self.info.time_base
        picture.pict_type = PictureType.NONE  # let the encoder choose; not the source's
        if self._side is not None:
            self._side.feed(float((pts + self._offset) * self.info.time_base) + AUDIO_LEAD_S)
        try:
            self._output.mux(self._stream.encode(picture))
        except av.FFmpegError as exc:
            raise OutputError(f"{self.path}: encoding frame {frame.index} failed ({exc})") from exc

    def close(self) -> None:
        """Flush, finalise and move the finished file into place."""
        if self._last_pts is None:  # an output without a video stream would be no video at all
            raise InputError(f"{self.info.path}: no video frames to write (nothing decodable in the span asked for)")
        self._output.mux(self._stream.encode(None))
        if self._side is not None:
            self._side.finish()
        self._output.close()
        os.replace(self._partial, self.path)

    def _abandon(self) -> None:
        """Drop the unfinished output; the target is never touched."""
        abandon_partial(self.path, self._output, self._side)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            try:
                self.close()
            except BaseException:
                self._abandon()
                raise
        else:
            self._abandon()


def _checked_pix_fmt(path: Path, codec: str, pix_fmt: str, info: VideoInfo) -> str:
    if pix_fmt == AUTO:
        pix_fmt = auto_pix_fmt(codec, info)
    if not patchable(pix_fmt):
        raise OutputError(f"{path}: pix_fmt {pix_fmt!r} is not supported (use auto, or a planar YUV or gray "
                          "format such as yuv420p, yuv422p10le, yuv444p)")
    odd = info.width % 2 or info.height % 2
    if odd and codec in _EVEN_SIZE_CODECS and not pix_fmt.startswith("yuv444"):
        full = pix_fmt.replace("420", "444").replace("422", "444")
        log.warning(
            "%s: %s cannot encode the odd frame size %dx%d in %s; writing %s instead "
            "(or use codec ffv1, libvpx-vp9 or libsvtav1)",
            path, codec, info.width, info.height, pix_fmt, full,
        )
        pix_fmt = full
    if codec in av.codecs_available:
        supported = av.Codec(codec, "w").video_formats
        if supported and pix_fmt not in {f.name for f in supported}:
            raise OutputError(f"{path}: codec {codec} cannot encode pix_fmt {pix_fmt}")
    return pix_fmt


def _encoder_options(codec: str, crf: int, preset: str) -> dict[str, str]:
    """crf/preset in each encoder's own terms (x264 names are the common vocabulary)."""
    if preset not in _X264_PRESETS:
        raise ConfigError(f"preset: unknown value {preset!r} (choose from {', '.join(_X264_PRESETS)})")
    speed = _X264_PRESETS.index(preset)
    if codec in ("libx264", "libx265"):
        options = {"crf": str(crf), "preset": _X264_PRESETS[speed]}
        if codec == "libx265":
            options["x265-params"] = "log-level=error"
        return options
    if codec == "libvpx-vp9":
        return {"crf": str(crf), "b": "0", "row-mt": "1", "cpu-used": str(min(8, max(0, 8 - speed)))}
    if codec == "libsvtav1":
        return {"crf": str(crf), "preset": str(min(13, 12 - speed))}
    if codec in ("h264_nvenc", "hevc_nvenc"):
        return {"rc": "vbr", "cq": str(crf), "preset": f"p{min(7, max(1, speed))}"}
    return {}  # ffv1: lossless, nothing to tune
