"""Decode → encode unchanged frames must keep everything but the picture coding: frame
count, PTS, audio packets (bytes and times), duration, rotation, colour tags; with ffv1
the picture too."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest
from media import (
    BT709_TV,
    decoded_frames,
    frame_times,
    moving_frames,
    packet_digests,
    plane_bytes,
    write_video,
)

from vidgpen.io.reader import open_video, probe
from vidgpen.io.writer import VideoWriter


@dataclass
class Case:
    name: str
    ext: str = ".mp4"
    size: tuple[int, int] = (96, 64)  # stored width, height
    frames: int = 16
    source: dict = field(default_factory=dict)  # write_video arguments
    deinterlace: str | None = None
    lossless_pix_fmt: str = "yuv420p"  # ffv1 output format that holds the source exactly


VFR_PTS = [0, 40, 80, 150, 170, 250, 290, 300, 380, 420, 500, 520, 600, 640, 700, 760]

CASES = [
    Case("cfr_aac", source={"audio": "aac", "tags": BT709_TV}),
    Case("vfr_opus", ext=".mkv", source={"audio": "libopus", "pts": VFR_PTS, "time_base": Fraction(1, 1000)}),
    Case("no_audio"),
    Case("rotated_90", source={"audio": "aac", "rotation": 90, "tags": BT709_TV}),
    Case("ten_bit", source={"pix_fmt": "yuv420p10le", "tags": BT709_TV}, lossless_pix_fmt="yuv420p10le"),
    Case("odd_size", size=(65, 49), source={"pix_fmt": "yuv444p", "audio": "aac"}, lossless_pix_fmt="yuv444p"),
    Case("interlaced", source={"interlaced": True, "audio": "aac"}, deinterlace="auto"),
]


def _transcode(case: Case, src: Path, out: Path, **writer_options) -> list[list[bytes]]:
    """Read and write every frame unchanged; return the planes of the frames written."""
    written = []
    with (
        open_video(src, deinterlace=case.deinterlace) as reader,
        VideoWriter(out, reader.info, **writer_options) as writer,
    ):
        for frame in reader:
            written.append(plane_bytes(frame.source))
            writer.write(frame)
    return written


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_round_trip_keeps_timing_audio_and_tags(case: Case, tmp_path: Path) -> None:
    width, height = case.size
    src = write_video(tmp_path / f"src{case.ext}", moving_frames(case.frames, width, height), **case.source)
    out = tmp_path / f"out{case.ext}"
    _transcode(case, src, out)

    before, after = probe(src), probe(out)
    assert len(frame_times(out)) == len(frame_times(src)) == case.frames
    assert frame_times(out) == frame_times(src)
    assert packet_digests(out) == packet_digests(src)
    assert abs(after.duration - before.duration) <= 1 / float(before.fps)
    assert (after.width, after.height, after.rotation) == (before.width, before.height, before.rotation)
    tags = ("color_range", "color_space", "color_primaries", "color_trc")
    assert [getattr(after, t) for t in tags] == [getattr(before, t) for t in tags]
    if "audio" in case.source:
        assert [s.codec for s in after.streams] == [s.codec for s in before.streams]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_ffv1_output_is_pixel_identical(case: Case, tmp_path: Path) -> None:
    width, height = case.size
    src = write_video(tmp_path / f"src{case.ext}", moving_frames(case.frames, width, height), **case.source)
    out = tmp_path / "out.mkv"
    written = _transcode(case, src, out, codec="ffv1", pix_fmt=case.lossless_pix_fmt)

    decoded = [plane_bytes(f) for f in decoded_frames(out)]
    assert decoded == written
    # Matroska stores milliseconds: the times match to that resolution.
    assert [round(t, 3) for t in map(float, frame_times(out))] == [round(float(t), 3) for t in frame_times(src)]
    src_audio, out_audio = packet_digests(src), packet_digests(out)
    assert [h for _, h in out_audio] == [h for _, h in src_audio]
    assert all(abs(a - b) <= Fraction(1, 1000) for (a, _), (b, _) in zip(out_audio, src_audio))
