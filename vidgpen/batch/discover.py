"""Find the videos of a library folder and name their mirrored outputs."""

from __future__ import annotations

import fnmatch
import os
from collections import Counter
from pathlib import Path

from vidgpen.errors import InputError

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".mts", ".m2ts", ".ts",
                    ".dv", ".wmv", ".flv", ".3gp", ".vob", ".ogv", ".mxf"}
# Never probed: still images open as one-frame "videos" in FFmpeg, and the rest is noise.
NOT_VIDEO_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".txt", ".json",
                        ".xml", ".pdf", ".doc", ".docx", ".mp3", ".wav", ".flac", ".aac", ".m4a", ".ogg", ".opus",
                        ".srt", ".ass", ".vtt", ".nfo", ".db", ".ini", ".zip", ".py", ".toml", ".md", ".csv"}


def find_videos(root: Path, include: list[str] | None = None, exclude: list[str] | None = None,
                skip_dir: Path | None = None) -> list[Path]:
    """Video files under ``root`` (by extension, or by probing unknown extensions), sorted.

    Hidden files and folders are left out: ``._clip.mp4`` AppleDouble files and the like
    carry a video extension but hold no video.
    """
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and here / d != skip_dir)
        for name in sorted(files):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if name.startswith(".") or not _selected(rel, name, include, exclude):
                continue
            suffix = path.suffix.lower()
            if suffix in VIDEO_EXTENSIONS or (suffix not in NOT_VIDEO_EXTENSIONS and _has_video_stream(path)):
                found.append(path)
    return found


def _selected(rel: str, name: str, include: list[str] | None, exclude: list[str] | None) -> bool:
    def matches(globs: list[str]) -> bool:
        return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in globs)

    return (not include or matches(include)) and not (exclude and matches(exclude))


def _has_video_stream(path: Path) -> bool:
    from vidgpen.io.probe import open_input

    try:
        open_input(path).close()
    except (InputError, OSError, UnicodeDecodeError):
        return False
    return True


def output_names(rels: list[str], suffix: str) -> dict[str, str]:
    """Mirrored output path per input; ``a.mov`` and ``a.mp4`` side by side keep their
    extension in the name (``a.mov.mp4``, ``a.mp4.mp4``) instead of overwriting each other."""
    plain = {rel: Path(rel).with_suffix(suffix).as_posix() for rel in rels}
    taken = Counter(plain.values())
    return {rel: out if taken[out] == 1 else f"{rel}{suffix}" for rel, out in plain.items()}
