"""Which encoder writes the output: PyAV's bundled FFmpeg in-process, or an external ffmpeg.

Both writers take the same arguments and have the same interface (``write``, ``close``,
context manager), so the pipeline, ``--resume`` segments and batch use either unchanged.
``backend`` is one of :data:`vidgpen.io.names.ENCODER_BACKENDS`; ``ffmpeg`` (the binary;
None: ``$VIDGPEN_FFMPEG``, then PATH) and ``ffmpeg_args`` only matter for "ffmpeg".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidgpen.io.frames import VideoInfo
from vidgpen.io.writer import VideoWriter


def open_writer(path: str | Path, info: VideoInfo, *, backend: str = "pyav", ffmpeg: str | None = None,
                ffmpeg_args: tuple[str, ...] = (), **options: Any) -> VideoWriter:
    """The writer for ``backend``, taking :class:`VideoWriter`'s keyword arguments."""
    if backend == "ffmpeg":
        from vidgpen.io.ffmpeg_writer import FfmpegWriter

        return FfmpegWriter(path, info, ffmpeg=ffmpeg, ffmpeg_args=ffmpeg_args, **options)
    return VideoWriter(path, info, **options)


def check_backend(path: str | Path, info: VideoInfo, *, backend: str = "pyav", ffmpeg: str | None = None,
                  ffmpeg_args: tuple[str, ...] = (), codec: str, crf: int, preset: str, pix_fmt: str) -> None:
    """Before any work: the ffmpeg backend's binary, encoder and options (one trial frame).
    The PyAV writer finds the same problems when it opens, which costs nothing."""
    if backend == "ffmpeg":
        from vidgpen.io.ffmpeg_writer import trial_encode

        trial_encode(path, info, codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt,
                     ffmpeg=ffmpeg, ffmpeg_args=ffmpeg_args)
