"""The writer: atomic output, refusals, codecs and containers, trimming, and lossless
pass-through of every pixel outside the regions a stage changed."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import (
    decoded_frames,
    frame_times,
    moving_frames,
    packet_digests,
    plane_bytes,
    with_subtitles,
    write_video,
)

from vidgpen.errors import ConfigError, InputError, OutputError
from vidgpen.io.frames import VideoInfo
from vidgpen.io.pixfmt import auto_pix_fmt, depth
from vidgpen.io.planes import plane_arrays
from vidgpen.io.reader import open_video, probe
from vidgpen.io.writer import VideoWriter, check_output, partial_path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", moving_frames(12), audio="aac")


def _copy(src: Path, out: Path, **options) -> None:
    with open_video(src) as reader, VideoWriter(out, reader.info, **options) as writer:
        for frame in reader:
            writer.write(frame)


# --- refusals -------------------------------------------------------------------------


def test_output_equal_to_input_is_refused(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="output is the input"):
        check_output(clip, clip, overwrite=True)
    link = tmp_path / "link.mp4"
    os.link(clip, link)  # another name for the same file
    with pytest.raises(OutputError, match="output is the input"):
        check_output(clip, link, overwrite=True)
    with pytest.raises(OutputError, match="output is the input"):
        VideoWriter(tmp_path / "sub" / ".." / "clip.mp4", probe(clip), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "link.mp4"]


def test_existing_missing_folder_and_bad_extension_are_refused(clip: Path, tmp_path: Path) -> None:
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        check_output(clip, existing)
    check_output(clip, existing, overwrite=True)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(clip, tmp_path / "missing" / "out.mp4")
    with pytest.raises(OutputError, match="unsupported output extension"):
        check_output(clip, tmp_path / "out.avi")
    assert existing.read_bytes() == b"keep me"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder_is_refused(clip: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(OutputError, match="not writable"):
        check_output(clip, locked / "out.mp4")


@pytest.mark.parametrize(
    ("name", "codec", "message"),
    [("out.webm", "libx264", "cannot hold libx264"), ("out.mov", "ffv1", "cannot hold ffv1"),
     ("out.mp4", "nonesuch264", "not available")],
)
def test_codec_container_mismatch_is_a_clear_error(clip: Path, tmp_path: Path, name, codec, message) -> None:
    with pytest.raises(OutputError, match=message):
        VideoWriter(tmp_path / name, probe(clip), codec=codec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_bad_pix_fmt_and_preset_are_refused(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="pix_fmt"):
        VideoWriter(tmp_path / "o.mp4", probe(clip), pix_fmt="rgb24")
    with pytest.raises(ConfigError, match="preset"):
        VideoWriter(tmp_path / "o.mp4", probe(clip), preset="warp9")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


# --- atomic output --------------------------------------------------------------------


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_interrupted_write_leaves_no_partial_and_keeps_old_output(clip: Path, tmp_path: Path, interruption) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    with (
        pytest.raises(interruption),
        open_video(clip) as reader,
        VideoWriter(out, reader.info, overwrite=True) as writer,
    ):
        for frame in reader:
            writer.write(frame)
            assert partial_path(out).exists()  # work in progress is written beside it
            if frame.index == 5:
                raise interruption()
    assert not partial_path(out).exists()
    assert out.read_bytes() == b"previous result"


def test_finished_output_replaces_partial(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    _copy(clip, out)
    assert out.exists() and not partial_path(out).exists()
    assert partial_path(out).name == "out.partial.mp4"


# --- codecs and containers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "ext"), [("libx265", ".mp4"), ("libvpx-vp9", ".webm"), ("libsvtav1", ".mkv"), ("ffv1", ".mov.mkv")]
)
def test_each_codec_keeps_frames_and_times(clip: Path, tmp_path: Path, codec: str, ext: str) -> None:
    out = tmp_path / f"out{ext}"
    _copy(clip, out, codec=codec, preset="ultrafast")
    info = probe(out)
    assert info.codec == {"libx265": "hevc", "libvpx-vp9": "vp9", "libsvtav1": "av1"}.get(codec, codec)
    assert [round(float(t), 3) for t in frame_times(out)] == [round(float(t), 3) for t in frame_times(clip)]


def test_nvenc_either_works_or_fails_cleanly(clip: Path, tmp_path: Path) -> None:
    if "h264_nvenc" not in av.codecs_available:
        pytest.skip("FFmpeg build without NVENC")
    out = tmp_path / "out.mp4"
    try:
        _copy(clip, out, codec="h264_nvenc")
    except OutputError as exc:  # no NVIDIA GPU or driver
        assert "h264_nvenc" in str(exc) and str(out) in str(exc)
        assert list(tmp_path.iterdir()) == [clip]
    else:
        assert len(frame_times(out)) == 12


def test_audio_the_container_cannot_hold_is_reencoded_with_a_warning(clip: Path, tmp_path: Path, caplog) -> None:
    out = tmp_path / "out.webm"
    with caplog.at_level(logging.WARNING):
        _copy(clip, out, codec="libvpx-vp9", preset="ultrafast")
    assert "re-encoding it to libopus" in caplog.text and str(clip) in caplog.text
    info = probe(out)
    assert [s.codec for s in info.streams] == ["opus"]
    audio_end = max(t for t, _ in packet_digests(out))
    assert abs(float(audio_end) - probe(clip).duration) < 0.1


def test_copy_streams_false_writes_video_only(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    _copy(clip, out, copy_streams=False)
    assert probe(out).streams == () and len(frame_times(out)) == 12


def test_trimmed_output_starts_at_zero_with_matching_audio(tmp_path: Path) -> None:
    src = write_video(tmp_path / "long.mkv", moving_frames(30), audio="libopus")
    out = tmp_path / "cut.mkv"
    with (
        open_video(src, start=0.4, end=0.8) as reader,
        VideoWriter(out, reader.info, start=0.4, end=0.8) as writer,
    ):
        for frame in reader:
            writer.write(frame)
    assert [float(t) for t in frame_times(out)] == pytest.approx([i * 0.04 for i in range(10)])
    kept = [(t, h) for t, h in packet_digests(src) if Fraction(2, 5) <= t < Fraction(4, 5)]
    assert [h for _, h in packet_digests(out)] == [h for _, h in kept]
    assert [t for t, _ in packet_digests(out)] == [t - Fraction(2, 5) for t, _ in kept]


# --- pass-through quality -------------------------------------------------------------


@pytest.mark.parametrize("rotation", [0, 90, 270])
def test_only_changed_boxes_differ_after_ffv1(tmp_path: Path, rotation: int) -> None:
    """Pixels outside the changed boxes decode identical to the input; inside, the
    edited image is what was encoded."""
    src = write_video(tmp_path / "src.mp4", moving_frames(6, 96, 64), rotation=rotation)
    out = tmp_path / "out.mkv"
    box = (11, 7, 30, 25)  # upright pixels, odd edges on purpose
    with open_video(src) as reader, VideoWriter(out, reader.info, codec="ffv1") as writer:
        originals = []
        for frame in reader:
            originals.append(plane_bytes(frame.source))
            if frame.index % 2:
                x0, y0, x1, y1 = box
                frame.image[y0:y1, x0:x1] = 255
                frame.changed = [box]
            writer.write(frame)
    upright_w = 64 if rotation in (90, 270) else 96
    for index, (frame, before) in enumerate(zip(decoded_frames(out), originals)):
        if index % 2 == 0:
            assert plane_bytes(frame) == before
            continue
        luma_after = plane_arrays(frame)[0]
        luma_before = np.frombuffer(before[0], np.uint8).reshape(luma_after.shape)
        differs = luma_after != luma_before
        upright_diff = np.rot90(differs, k=-(rotation // 90))
        ys, xs = np.nonzero(upright_diff)
        # Changes stay inside the box grown to 2-pixel chroma alignment ...
        assert xs.min() >= box[0] - 1 and xs.max() < box[2] + 1 and upright_w >= box[2]
        assert ys.min() >= box[1] - 1 and ys.max() < box[3] + 1
        # ... and the box itself now holds the painted white (studio-range luma 235).
        upright_luma = np.rot90(luma_after, k=-(rotation // 90))
        assert upright_luma[box[1]:box[3], box[0]:box[2]].min() >= 230


def test_pass_through_converts_only_when_pix_fmt_differs(tmp_path: Path) -> None:
    src = write_video(tmp_path / "src.mkv", moving_frames(4), codec="ffv1", pix_fmt="yuv444p")
    out = tmp_path / "out.mkv"
    with open_video(src) as reader, VideoWriter(out, reader.info, codec="ffv1", pix_fmt="yuv420p") as writer:
        expected = []
        for frame in reader:
            expected.append(plane_bytes(frame.source.reformat(format="yuv420p")))
            writer.write(frame)
    assert [plane_bytes(f) for f in decoded_frames(out)] == expected


def test_frames_without_source_are_converted_from_the_image(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    with open_video(clip, decoder="decord") as reader, VideoWriter(out, reader.info, codec="ffv1") as writer:
        images = []
        for frame in reader:
            images.append(frame.image)
            writer.write(frame)
    assert [round(float(t), 3) for t in frame_times(out)] == [round(float(t), 3) for t in frame_times(clip)]
    with open_video(out) as again:
        for frame, image in zip(again, images):
            # Only the RGB → yuv420p → RGB round trip separates them.
            assert np.abs(frame.image.astype(int) - image).mean() < 3


def test_subtitles_are_copied_or_converted_to_mov_text(tmp_path: Path, caplog) -> None:
    """SubRip is copied into MKV; MP4 gets it as mov_text (tests/test_subtitles.py: cues and times)."""
    src = with_subtitles(write_video(tmp_path / "v.mkv", moving_frames(12)), tmp_path / "subbed.mkv")
    assert [s.codec for s in probe(src).streams] == ["subrip"]
    _copy(src, tmp_path / "out.mkv")
    assert packet_digests(tmp_path / "out.mkv", "subtitle") == packet_digests(src, "subtitle")
    assert len(packet_digests(src, "subtitle")) == 2
    with caplog.at_level(logging.WARNING):
        _copy(src, tmp_path / "out.mp4")
    assert "subtitle" not in caplog.text
    assert [s.codec for s in probe(tmp_path / "out.mp4").streams] == ["mov_text"]


def test_a_writer_given_no_frames_leaves_no_file(clip: Path, tmp_path: Path) -> None:
    """A span with nothing decodable must not yield a 'video' without a video stream."""
    target = tmp_path / "empty.mp4"
    with pytest.raises(InputError, match="no video frames"):
        with VideoWriter(target, probe(clip)):
            pass
    assert not target.exists() and not partial_path(target).exists()


@pytest.mark.parametrize(("codec", "source", "expected"), [
    ("libx264", "yuv422p", "yuv420p"),  # delivery: what every player decodes
    ("libx264", "yuv422p10le", "yuv420p10le"),  # ... at 10 bits for a 10-bit source
    ("libx265", "yuv420p10le", "yuv420p10le"),
    ("libvpx-vp9", "yuv420p10le", "yuv420p"),  # this build's VP9 encodes no 10-bit
    ("ffv1", "yuv422p", "yuv422p"),  # archival: the source's own format
    ("ffv1", "yuv411p", "yuv411p"),  # NTSC DV
    ("ffv1", "yuvj420p", "yuv420p"),  # MJPEG: the same planes, full range carried by the tag
    ("ffv1", "yuv422p10le", "yuv422p10le"),
    ("prores_ks", "yuv420p", "yuv422p10le"),  # nearest ProRes holds: nothing lost
    ("huffyuv", "yuv420p", "yuv422p"),
])
def test_pix_fmt_auto(codec, source, expected):
    info = VideoInfo(path="x", container="x", width=64, height=64, fps=Fraction(25), time_base=Fraction(1, 25),
                     duration=1.0, frame_count=25, rotation=0, codec="x", pix_fmt=source, bit_depth=depth(source))
    assert auto_pix_fmt(codec, info) == expected
