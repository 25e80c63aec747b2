"""Which encoder writes the output: PyAV's bundled FFmpeg in-process, or an external ffmpeg.

Both writers take the same arguments and have the same interface (``write``, ``close``,
context manager), so the pipeline, ``--resume`` segments and batch use either unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidgpen.io.frames import VideoInfo
from vidgpen.io.writer import VideoWriter

BACKENDS = ("pyav", "ffmpeg")


@dataclass(frozen=True)
class EncoderBackend:
    """``name`` from :data:`BACKENDS`; ``ffmpeg`` and ``args`` only matter for "ffmpeg"."""

    name: str = "pyav"
    ffmpeg: str | None = None  # the binary; None: $VIDGPEN_FFMPEG, then PATH
    args: tuple[str, ...] = ()  # extra ffmpeg output options


def open_writer(path: str | Path, info: VideoInfo, backend: EncoderBackend | None = None,
                **options: Any) -> VideoWriter:
    """The writer for ``backend``, taking :class:`VideoWriter`'s keyword arguments."""
    if backend is not None and backend.name == "ffmpeg":
        from vidgpen.io.ffmpeg_writer import FfmpegWriter

        return FfmpegWriter(path, info, ffmpeg=backend.ffmpeg, ffmpeg_args=backend.args, **options)
    return VideoWriter(path, info, **options)


def check_backend(path: str | Path, info: VideoInfo, backend: EncoderBackend, *, codec: str, crf: int,
                  preset: str, pix_fmt: str) -> None:
    """Before any work: the ffmpeg backend's binary, encoder and options (one trial frame).
    The PyAV writer finds the same problems when it opens, which costs nothing."""
    if backend.name == "ffmpeg":
        from vidgpen.io.ffmpeg_writer import trial_encode

        trial_encode(path, info, codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt,
                     ffmpeg=backend.ffmpeg, ffmpeg_args=backend.args)
