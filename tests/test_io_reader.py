"""probe() and the readers: metadata, upright RGB frames with source PTS, 10-bit,
deinterlacing, trimming, damaged and bad inputs, and decord agreeing with PyAV."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import BT709_TV, decoded_frames, moving_frames, write_video

from vidgpen.errors import ConfigError, InputError
from vidgpen.io.reader import open_video, probe


def _mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def test_probe_describes_video_and_audio(tmp_path: Path) -> None:
    src = write_video(tmp_path / "clip.mp4", moving_frames(20, 96, 64), audio="aac", tags=BT709_TV)
    info = probe(src)
    assert (info.width, info.height, info.display_size) == (96, 64, (96, 64))
    assert info.fps == 25 and isinstance(info.fps, Fraction)
    assert info.frame_count == 20 and info.duration == pytest.approx(0.8)
    assert (info.codec, info.pix_fmt, info.bit_depth, info.rotation, info.interlaced) == ("h264", "yuv420p", 8, 0, False)
    assert (info.color_range, info.color_space, info.color_primaries, info.color_trc) == ("tv", "bt709", "bt709", "bt709")
    (audio,) = info.streams
    assert (audio.kind, audio.codec, audio.sample_rate, audio.channels) == ("audio", "aac", 44100, 2)


def test_frames_carry_index_pts_time_and_rgb(tmp_path: Path) -> None:
    images = moving_frames(10, 96, 64)
    src = write_video(tmp_path / "clip.mkv", images, codec="ffv1", pix_fmt="yuv444p")
    with open_video(src) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(10))
    assert [f.pts for f in frames] == [40 * i for i in range(10)]  # Matroska: 1/1000
    assert [f.time for f in frames] == pytest.approx([0.04 * i for i in range(10)])
    for frame, image in zip(frames, images):
        assert frame.image.dtype == np.uint8 and frame.image.shape == (64, 96, 3)
        assert _mean_error(frame.image, image) < 2  # only the 4:4:4 YUV round trip
        assert frame.source.format.name == "yuv444p"
    assert reader.skipped == 0


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_video_is_read_upright(tmp_path: Path, rotation: int) -> None:
    images = moving_frames(4, 96, 64)
    src = write_video(tmp_path / "clip.mp4", images, rotation=rotation, pix_fmt="yuv444p", options={"qp": "0"})
    info = probe(src)
    assert info.rotation == rotation and (info.width, info.height) == (96, 64)
    with open_video(src) as reader:
        for frame, image in zip(reader, images):
            expected = np.rot90(image, k=-(rotation // 90))  # clockwise
            assert frame.image.shape == expected.shape and frame.image.flags.c_contiguous
            assert _mean_error(frame.image, expected) < 2
            assert (frame.source.width, frame.source.height) == (96, 64)  # stored orientation


def test_ten_bit_input_becomes_proper_8_bit_rgb(tmp_path: Path) -> None:
    images = moving_frames(4, 96, 64)
    src = write_video(tmp_path / "clip.mkv", images, codec="ffv1", pix_fmt="yuv444p10le", tags=BT709_TV)
    info = probe(src)
    assert (info.pix_fmt, info.bit_depth) == ("yuv444p10le", 10)
    with open_video(src) as reader:
        for frame, image in zip(reader, images):
            assert frame.image.dtype == np.uint8
            assert _mean_error(frame.image, image) < 2


def test_interlaced_flag_is_detected_and_forced_filters_deinterlace(tmp_path: Path) -> None:
    """Progressive pictures coded as interlaced: bwdif/yadif filter every frame, while auto
    goes by what idet measures (no combing) and leaves them alone (tests/test_fields.py
    has the woven clips)."""
    src = write_video(tmp_path / "clip.mp4", moving_frames(10, 96, 64), interlaced=True)
    assert probe(src).interlaced
    plain = list(open_video(src))
    for mode in ("bwdif", "yadif"):
        filtered = list(open_video(src, deinterlace=mode))
        assert [f.pts for f in filtered] == [f.pts for f in plain]
        assert any(_mean_error(a.image, b.image) > 0.5 for a, b in zip(filtered, plain))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(open_video(src, deinterlace="auto"), plain))


def test_auto_deinterlace_leaves_progressive_video_alone(tmp_path: Path) -> None:
    src = write_video(tmp_path / "clip.mp4", moving_frames(6, 96, 64))
    assert not probe(src).interlaced
    for a, b in zip(open_video(src, deinterlace="auto"), open_video(src)):
        assert np.array_equal(a.image, b.image)


@pytest.mark.parametrize("decoder", ["pyav", "decord"])
def test_start_and_end_select_a_span(tmp_path: Path, decoder: str) -> None:
    src = write_video(tmp_path / "clip.mp4", moving_frames(30, 96, 64), options={"g": "8"})
    everything = list(open_video(src))
    with open_video(src, decoder=decoder, start=0.3, end=0.6) as reader:
        span = list(reader)
    assert [f.index for f in span] == list(range(len(span)))
    assert [f.pts for f in span] == [f.pts for f in everything if 0.3 <= f.time < 0.6]
    for frame, reference in zip(span, [f for f in everything if 0.3 <= f.time < 0.6]):
        assert _mean_error(frame.image, reference.image) < 1


def test_decord_reader_matches_pyav(tmp_path: Path) -> None:
    src = write_video(tmp_path / "clip.mp4", moving_frames(16, 96, 64), audio="aac")
    with open_video(src) as pyav_reader, open_video(src, decoder="decord") as decord_reader:
        pyav_frames, decord_frames = list(pyav_reader), list(decord_reader)
        assert decord_reader.info == pyav_reader.info
    assert [(f.index, f.pts) for f in decord_frames] == [(f.index, f.pts) for f in pyav_frames]
    assert [f.time for f in decord_frames] == pytest.approx([f.time for f in pyav_frames])
    for a, b in zip(decord_frames, pyav_frames):
        assert a.source is None and a.image.shape == b.image.shape
        assert _mean_error(a.image, b.image) < 1


def test_decord_refuses_what_it_gets_wrong(tmp_path: Path) -> None:
    rotated = write_video(tmp_path / "rot.mp4", moving_frames(3, 96, 64), rotation=90)
    with pytest.raises(InputError, match="rot.mp4.*rotated"):
        open_video(rotated, decoder="decord")
    with pytest.raises(ConfigError, match="deinterlace"):
        open_video(rotated, decoder="decord", deinterlace="auto")


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    src = write_video(tmp_path / "clip.mp4", moving_frames(3, 96, 64))
    for kwargs in ({"decoder": "ffmpeg"}, {"deinterlace": "weave"}, {"start": -1}, {"start": 2, "end": 1}):
        with pytest.raises(ConfigError):
            open_video(src, **kwargs)


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 44100, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: _file(d / "empty.mp4", b""), "empty"),
        (lambda d: _file(d / "notes.mp4", b"not a video at all\n"), "not a readable media file"),
        (lambda d: _audio_only(d / "song.m4a"), "no video stream"),
    ],
    ids=["missing", "empty", "not_media", "no_video"],
)
@pytest.mark.parametrize("decoder", ["pyav", "decord"])
def test_bad_inputs_raise_input_error_naming_the_file(tmp_path: Path, make, message: str, decoder: str) -> None:
    path = make(tmp_path)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(InputError, match=message) as caught:
        open_video(path, decoder=decoder)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(tmp_path.iterdir()) == before  # nothing left behind


def _damage(path: Path, fractions: tuple[float, ...], length: int = 300) -> Path:
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for fraction in fractions:
        offset = int(len(data) * fraction)
        data[offset:offset + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    damaged = path.with_name("damaged" + path.suffix)
    damaged.write_bytes(bytes(data))
    return damaged


def test_damaged_packets_are_skipped_counted_and_timing_kept(tmp_path: Path, caplog) -> None:
    src = write_video(tmp_path / "clip.mkv", moving_frames(30, 160, 120), options={"g": "5"})
    damaged = _damage(src, (0.4, 0.6))
    good_pts = [f.pts for f in decoded_frames(src)]
    with caplog.at_level(logging.WARNING), open_video(damaged) as reader:
        frames = list(reader)
    assert reader.skipped >= 1
    assert "damaged.mkv" in caplog.text and "skipped" in caplog.text
    pts = [f.pts for f in frames]
    assert 20 <= len(frames) < 30
    assert set(pts) <= set(good_pts) and pts == sorted(pts)  # each frame keeps its own time


def test_truncated_file_decodes_what_is_there(tmp_path: Path) -> None:
    src = write_video(tmp_path / "clip.mkv", moving_frames(30, 160, 120))
    truncated = tmp_path / "cut.mkv"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size * 6 // 10])
    with open_video(truncated) as reader:
        frames = list(reader)
    assert 5 < len(frames) < 30
    assert [f.pts for f in frames] == [f.pts for f in decoded_frames(src)][: len(frames)]


def test_frames_sharing_a_timestamp_keep_their_place(tmp_path: Path, caplog) -> None:
    """A frame stamped like its predecessor is not dropped as damaged: kept in decoder
    order, one tick later, and the warning says what happened."""
    images = moving_frames(8, 96, 64)
    stamps = [0, 40, 80, 80, 120, 160, 160, 200]  # ms
    src = write_video(tmp_path / "dup.mkv", images, pts=stamps, time_base=Fraction(1, 1000), codec="ffv1")
    assert [f.pts for f in decoded_frames(src)] == stamps
    with caplog.at_level(logging.WARNING), open_video(src) as reader:
        frames = list(reader)
    assert [f.pts for f in frames] == [0, 40, 80, 81, 120, 160, 161, 200]
    nearest = [int(np.argmin([_mean_error(f.image, image) for image in images])) for f in frames]
    assert nearest == list(range(8))  # each frame in its place
    assert reader.skipped == 0 and "2 frame(s) shared a timestamp" in caplog.text and "damaged" not in caplog.text
