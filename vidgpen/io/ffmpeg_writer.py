"""The ffmpeg encoder backend: an external ``ffmpeg`` encodes and muxes the output.

vidgpen composes each frame exactly as the PyAV backend does, then muxes it losslessly
(rawvideo) with its own timestamp into a NUT stream on ffmpeg's stdin, together with the
audio and subtitle packets that :class:`~vidgpen.io.audio.SideStreams` copies. ffmpeg
re-encodes only the video, with the user's encoder, and copies the rest (``-c:a copy``),
so timing, audio and the copy rules are the PyAV backend's; only the encoder differs.

NUT keeps every frame's own pts (VFR survives) but cannot store negative timestamps,
and AAC's priming starts at -1024 samples: the pipe runs :data:`PIPE_SHIFT_S` whole
seconds late and ``-itsoffset`` takes that back exactly (NUT's time bases are all 1/N).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import logging
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import av.container
import numpy as np

from vidgpen.errors import ConfigError, OutputError
from vidgpen.io.colour import PRIMARIES, RANGES, SPACES, TRANSFERS, tag_value
from vidgpen.io.ffmpeg_tool import EncoderHelp, checked_ffmpeg
from vidgpen.io.frames import Frame, VideoInfo
from vidgpen.io.writer import CODECS, CONTAINERS, MUXER_OPTIONS, VideoWriter, partial_path

__all__ = ["FfmpegWriter", "trial_encode"]

log = logging.getLogger(__name__)

PIPE_SHIFT_S = 10  # seconds the pipe's timeline runs late; more than any priming or negative start
_STDERR_LINES = 40  # ffmpeg's last lines kept for the error message and the -v log
_KILL_WAIT_S = 10
_FILTER_OPTIONS = ("-vf", "-filter:v", "-filter:v:0", "-filter_complex")
# -copyts: keep the pipe's timestamps (less the shift) instead of starting the output at 0.
_GLOBAL_OPTIONS = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+warning", "-y", "-copyts")


class _FfmpegFailed(OutputError):
    """ffmpeg exited with an error; the message is its own reason."""


class _FfmpegPipe:
    """A running ffmpeg and the NUT muxer on its stdin, standing in for the PyAV output.

    Asked which codecs it holds (by :class:`SideStreams`), it answers for the final
    container and the pipe both, so the PyAV backend's rule (copy what fits, re-encode
    audio that does not, leave out other streams with a warning) decides here too.
    """

    def __init__(self, command: list[str], final_format: str, label: Path) -> None:
        self._label = label
        self._tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        log.debug("running %s", subprocess.list2cmdline(command))
        self._fit = av.open(io.BytesIO(), "w", format=final_format)  # never written: only asked what fits
        try:  # its own session: Ctrl-C reaches vidgpen, which then stops ffmpeg itself
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self._fit.close()
            raise OutputError(f"{label}: cannot start {command[0]} ({exc})") from exc
        self._reader = threading.Thread(target=self._read_stderr, name="vidgpen-ffmpeg-stderr", daemon=True)
        self._reader.start()
        try:
            self._pipe = av.open(f"pipe:{self._process.stdin.fileno()}", "w", format="nut")
        except BaseException:
            self._process.kill()
            self._fit.close()
            raise
        self.format = SimpleNamespace(name=f"{final_format} (piped to ffmpeg as NUT)")
        self._closed = False

    def _read_stderr(self) -> None:
        for line in io.TextIOWrapper(self._process.stderr, errors="replace"):
            self._tail.append(line.rstrip())

    @property
    def supported_codecs(self) -> set[str]:
        return self._fit.supported_codecs & self._pipe.supported_codecs

    def add_stream_from_template(self, template: av.stream.Stream) -> av.stream.Stream:
        self._fit.add_stream_from_template(template)  # ValueError when the output cannot hold it
        return self._pipe.add_stream_from_template(template)

    def add_stream(self, codec: str, **kwargs: Any) -> av.stream.Stream:
        return self._pipe.add_stream(codec, **kwargs)

    def start_encoding(self) -> None:
        self._pipe.start_encoding()

    def mux(self, packets: av.Packet | list[av.Packet]) -> None:
        for packet in packets if isinstance(packets, list) else [packets]:
            shift = round(Fraction(PIPE_SHIFT_S) / packet.time_base)
            if packet.pts is not None:
                packet.pts += shift
            if packet.dts is not None:
                packet.dts += shift
            self._pipe.mux(packet)

    def close(self) -> None:
        """End the pipe and wait for ffmpeg to finish the file; raise its error if it failed."""
        if self._closed:
            return
        self._closed = True
        try:
            self._pipe.close()
            self._process.stdin.close()
        except (av.FFmpegError, OSError) as exc:
            raise self.failure() from exc
        finally:
            self._fit.close()
        if self._process.wait() != 0:
            raise self.failure()
        self._reader.join()
        if self._tail:
            log.info("%s: ffmpeg said:\n  %s", self._label, "\n  ".join(self._tail))

    def failure(self) -> _FfmpegFailed:
        """ffmpeg's own reason, once it has ended (it is stopped if it has not)."""
        try:
            code = self._process.wait(timeout=_KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self._process.returncode
        self._reader.join(timeout=_KILL_WAIT_S)
        lines = list(self._tail)
        log.info("%s: ffmpeg exited with %s:\n  %s", self._label, code, "\n  ".join(lines) or "(no output)")
        errors = [line for line in lines if re.search(r"\[(error|fatal|panic)\]", line)]
        reason = (errors or lines or ["no output"])[0]
        return _FfmpegFailed(f"{self._label}: ffmpeg failed (exit {code}): {reason} (run with -v for its output)")

    def kill(self) -> None:
        """Stop ffmpeg now (interrupted or failed run); the caller deletes the file."""
        self._process.kill()
        self._process.wait()
        self._closed = True
        for closing in (self._pipe.close, self._process.stdin.close, self._fit.close):
            with contextlib.suppress(Exception):  # the pipe is broken by now
                closing()


class FfmpegWriter(VideoWriter):
    """:class:`VideoWriter` whose video an external ffmpeg encodes (see the module doc).

    Takes the writer's arguments plus ``ffmpeg`` (the binary; None: ``$VIDGPEN_FFMPEG``,
    then PATH) and ``ffmpeg_args`` (extra output options, after vidgpen's, so they win).
    """

    def __init__(self, path: str | Path, info: VideoInfo, *, ffmpeg: str | None = None,
                 ffmpeg_args: tuple[str, ...] = (), crf: int = 18, preset: str = "medium", **options: Any) -> None:
        self._ffmpeg, self._ffmpeg_args, self._crf, self._preset = ffmpeg, tuple(ffmpeg_args), crf, preset
        super().__init__(path, info, crf=crf, preset=preset, **options)

    def _open_output(self) -> av.container.OutputContainer:
        return None  # type: ignore[return-value]  # ffmpeg starts in _add_video, once the encoder is known

    def _add_video(self, codec: str, options: dict[str, str], pix_fmt: str) -> av.video.stream.VideoStream:
        binary, encoder = checked_ffmpeg(self._ffmpeg, codec)
        # With their own video filter (VAAPI's hwupload) users convert the pipe's frames themselves.
        own_filter = any(arg in _FILTER_OPTIONS for arg in self._ffmpeg_args)
        if encoder.pix_fmts and pix_fmt not in encoder.pix_fmts and not own_filter:
            raise OutputError(f"{self.path}: {codec} in {binary} cannot encode pix_fmt {pix_fmt} "
                              f"(it takes {', '.join(encoder.pix_fmts)}; or convert with -vf in --ffmpeg-args)")
        video = options if codec in CODECS else _guessed_options(encoder, self._crf, self._preset)
        if not own_filter:
            video = {**video, "pix_fmt": pix_fmt}
        command = ffmpeg_command(binary, self.info, self.path, codec, video, self._ffmpeg_args)
        self._output = _FfmpegPipe(command, CONTAINERS[self.path.suffix.lower()], self.path)
        stream = self._output.add_stream("rawvideo", rate=self.info.fps)
        stream.width, stream.height, stream.pix_fmt = self.info.width, self.info.height, pix_fmt
        stream.time_base = stream.codec_context.time_base = self.info.time_base
        return stream

    def write(self, frame: Frame) -> None:
        with self._ffmpeg_reason():
            super().write(frame)

    def close(self) -> None:
        with self._ffmpeg_reason():
            super().close()

    @contextlib.contextmanager
    def _ffmpeg_reason(self) -> Iterator[None]:
        """A broken pipe means ffmpeg stopped: report its reason, not the pipe's."""
        try:
            yield
        except _FfmpegFailed:
            raise
        except (av.FFmpegError, OSError, OutputError) as exc:
            if isinstance(exc, OutputError) and not isinstance(exc.__cause__, av.FFmpegError):
                raise  # not about the pipe: no frames, a bad option
            raise self._output.failure() from exc

    def _abandon(self) -> None:
        if self._output is not None:
            self._output.kill()
        super()._abandon()


def ffmpeg_command(binary: Path, info: VideoInfo, path: Path, codec: str, video: dict[str, str],
                   extra: tuple[str, ...]) -> list[str]:
    """The ffmpeg command line that reads the NUT pipe and writes ``path``'s partial file."""
    try:
        import ffmpeg
    except ImportError:
        raise ConfigError("encoder_backend: ffmpeg needs ffmpeg-python (pip install 'vidgpen[ffmpeg]')") from None
    colour = {key: name for key, name, table in (
        ("color_range", info.color_range, RANGES), ("colorspace", info.color_space, SPACES),
        ("color_primaries", info.color_primaries, PRIMARIES), ("color_trc", info.color_trc, TRANSFERS),
    ) if tag_value(table, name) is not None}  # rawvideo in NUT carries no colour tags: the decoder is told them
    rotation = {"display_rotation:v:0": -info.rotation} if info.rotation else {}  # ffmpeg's angle: anticlockwise
    source = ffmpeg.input("pipe:0", format="nut", itsoffset=-PIPE_SHIFT_S, noautorotate=None, **rotation, **colour)
    container = CONTAINERS[path.suffix.lower()]
    output = source.output(
        str(partial_path(path)), format=container, map="0", fps_mode="passthrough", enc_time_base="demux",
        **{"c:v": codec, "c:a": "copy", "c:s": "copy"}, **video, **MUXER_OPTIONS.get(container, {}),
    )
    command = ffmpeg.compile(output, cmd=str(binary))  # [binary, input options, -i, output options, file]
    return [str(binary), *_GLOBAL_OPTIONS, *command[1:-1], *extra, command[-1]]  # the user's last: they win


def _guessed_options(encoder: EncoderHelp, crf: int, preset: str) -> dict[str, str]:
    """crf and preset for an encoder the PyAV backend does not know, where it has them."""
    options = {}
    quality = next((name for name in ("crf", "qp", "cq") if name in encoder.options), None)
    if quality is not None:
        options[quality] = str(crf)
    if "preset" in encoder.options and (not encoder.preset_names or preset in encoder.preset_names):
        options["preset"] = preset
    log.info("%s: passing %s (use --ffmpeg-args for its other options)", encoder.name, options or "no crf/preset")
    return options


def trial_encode(path: str | Path, info: VideoInfo, *, codec: str, crf: int, preset: str, pix_fmt: str,
                 ffmpeg: str | None, ffmpeg_args: tuple[str, ...]) -> None:
    """Encode one black frame with the run's encoder and options, before any work is done,
    so a missing binary, an encoder that fails to start (no GPU, bad option) or a codec the
    container refuses is an error up front. ~0.2 s; once per process for the same settings."""
    checked_ffmpeg(ffmpeg, codec)  # its own errors name the binary
    key = (str(Path(path).suffix.lower()), info.width, info.height, info.rotation, info.fps, info.time_base)
    try:
        _trial(key, codec, crf, preset, pix_fmt, ffmpeg, tuple(ffmpeg_args))
    except OutputError as exc:  # named after the trial's temporary file: name the real output
        raise OutputError(f"{path}: a trial frame with {codec} failed: {str(exc).split(': ', 1)[-1]}") from None


@functools.cache
def _trial(key: tuple, codec: str, crf: int, preset: str, pix_fmt: str, ffmpeg: str | None,
           ffmpeg_args: tuple[str, ...]) -> None:
    suffix, width, height, rotation, fps, time_base = key
    with tempfile.TemporaryDirectory(prefix="vidgpen-trial-") as folder:
        info = VideoInfo(path=str(Path(folder) / "none"), container="", width=width, height=height, fps=fps,
                         time_base=time_base, duration=None, frame_count=1, rotation=rotation, codec="",
                         pix_fmt=pix_fmt, bit_depth=8)
        upright = (width, height) if rotation in (90, 270) else (height, width)
        black = Frame(index=0, pts=0, time=0.0, image=np.zeros((*upright, 3), np.uint8))
        with FfmpegWriter(Path(folder) / f"trial{suffix}", info, codec=codec, crf=crf, preset=preset,
                          pix_fmt=pix_fmt, copy_streams=False, ffmpeg=ffmpeg, ffmpeg_args=ffmpeg_args) as writer:
            writer.write(black)
