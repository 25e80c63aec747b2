"""The external ``ffmpeg`` binary: where it is, which version, what its encoders take.

Looked up in ``--ffmpeg PATH``, then ``$VIDGPEN_FFMPEG``, then ``PATH``. Each question
asked of a binary is one short ``ffmpeg -h ...`` run (~30 ms), cached per binary path.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vidgpen.errors import OutputError

ENV_VAR = "VIDGPEN_FFMPEG"
# -enc_time_base demux, -display_rotation and -fps_mode passthrough are FFmpeg 7 options.
MIN_MAJOR = 7
_QUERY_TIMEOUT_S = 30


@dataclass(frozen=True)
class EncoderHelp:
    """What ``ffmpeg -h encoder=NAME`` says: options and pixel formats it takes."""

    name: str
    options: frozenset[str]  # option names without the dash: crf, qp, preset, ...
    preset_names: frozenset[str]  # named values of -preset; empty when it takes any string
    pix_fmts: tuple[str, ...]  # empty when the encoder does not say


def find_ffmpeg(explicit: str | None = None) -> Path:
    """The binary to run: ``explicit``, else ``$VIDGPEN_FFMPEG``, else ``ffmpeg`` on PATH."""
    for given, origin in ((explicit, "--ffmpeg"), (os.environ.get(ENV_VAR) or None, f"${ENV_VAR}")):
        if given is None:
            continue
        path = Path(given).expanduser()
        found = shutil.which(str(path)) if path.parent == Path(".") else str(path)
        if found is None or not Path(found).is_file() or not os.access(found, os.X_OK):
            raise OutputError(f"{given}: no executable ffmpeg there (given by {origin})")
        return Path(found).resolve()
    found = shutil.which("ffmpeg")
    if found is None:
        raise OutputError(
            f"ffmpeg: not found on PATH (install FFmpeg {MIN_MAJOR}+, or give one with --ffmpeg PATH or "
            f"${ENV_VAR}; --encoder-backend pyav needs none)"
        )
    return Path(found).resolve()


def checked_ffmpeg(explicit: str | None, codec: str) -> tuple[Path, EncoderHelp]:
    """The binary and its ``codec`` encoder, refusing an old FFmpeg or a missing encoder."""
    binary = find_ffmpeg(explicit)
    major = _major_version(str(binary))
    if major is not None and major < MIN_MAJOR:
        raise OutputError(f"{binary}: FFmpeg {major} is too old for --encoder-backend ffmpeg (needs {MIN_MAJOR}+)")
    if codec not in _video_encoders(str(binary)):
        raise OutputError(f"{binary}: this ffmpeg has no video encoder {codec!r} (see `{binary} -encoders`)")
    return binary, encoder_help(str(binary), codec)


def _run(binary: str, *args: str) -> str:
    try:
        done = subprocess.run([binary, "-hide_banner", *args], capture_output=True, text=True,
                              timeout=_QUERY_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OutputError(f"{binary}: cannot run it ({exc})") from exc
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise OutputError(f"{binary}: `ffmpeg {' '.join(args)}` failed ({tail})")
    return done.stdout


@functools.cache
def _major_version(binary: str) -> int | None:
    """The major version, or None for builds that name a git revision instead (N-123-g...)."""
    match = re.search(r"version n?(\d+)\.", _run(binary, "-version"))
    return int(match.group(1)) if match else None


@functools.cache
def _video_encoders(binary: str) -> frozenset[str]:
    listing = _run(binary, "-encoders")
    return frozenset(m.group(1) for m in re.finditer(r"^ V\S{5} (\S+)", listing, re.MULTILINE))


@functools.cache
def encoder_help(binary: str, codec: str) -> EncoderHelp:
    text = _run(binary, "-h", f"encoder={codec}")
    options = frozenset(re.findall(r"^  -(\S+)\s", text, re.MULTILINE))
    presets: set[str] = set()
    block = re.search(r"^  -preset\s+<int>.*\n((?:     \S.*\n)*)", text, re.MULTILINE)
    if block:
        presets = {line.split()[0] for line in block.group(1).splitlines()}
    formats = re.search(r"Supported pixel formats: (.*)", text)
    return EncoderHelp(codec, options, frozenset(presets), tuple(formats.group(1).split()) if formats else ())
