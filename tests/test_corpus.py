"""Every format of the conformance corpus (tests/corpus.py) comes through whole: restored at
strength 0 into lossless FFV1/MKV it is the decoder's every frame and the source's audio
packets; restored at strength 1 into the default MP4 it has every frame and all its sound."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from corpus import FORMATS, clip, face_size, make_all, pack_bframes
from gpen_checkpoints import make_gpen_checkpoint
from media import decoded_frames, plane_bytes

from vidgpen.cli import main
from vidgpen.io.pixfmt import plain
from vidgpen.io.planes import plane_arrays
from vidgpen.io.reader import open_video

pytestmark = pytest.mark.slow
DIVX_PACKED = "divx-packed"
NAMES = [fmt.name for fmt in FORMATS] + [DIVX_PACKED]
BY_NAME = {fmt.name: fmt for fmt in FORMATS}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("corpus")
    clips = make_all(root)
    clips[DIVX_PACKED] = pack_bframes(clips["divx-avi"], root / "divx-packed.avi")
    weights = make_gpen_checkpoint(root / "tiny-gpen.pth", size=64)
    return {"clips": clips, "weights": weights}


def _audio(path) -> list[tuple[str, list[str], int, int, int]]:
    """Per audio stream: codec, payload digests in order, decoded sample count, rate and
    the longest decoded frame (samples)."""
    import hashlib

    with av.open(str(path)) as container:
        count = len(container.streams.audio)
    out = []
    for index in range(count):
        with av.open(str(path)) as container:
            stream = container.streams.audio[index]
            digests, samples, longest = [], 0, 0
            for packet in container.demux(stream):
                if packet.size:
                    digests.append(hashlib.sha1(bytes(packet)).hexdigest())
                for frame in packet.decode():
                    samples, longest = samples + frame.samples, max(longest, frame.samples)
            out.append((stream.codec_context.codec.canonical_name, digests, samples, stream.rate, longest))
    return out


def _restore(src, out, weights, *flags: str) -> int:
    return main(["restore", str(src), "-o", str(out), "--weights", str(weights), "-q", *flags])


@pytest.mark.parametrize("name", NAMES)
def test_strength_zero_into_ffv1_is_the_decoders_every_frame_and_the_sources_audio(corpus, tmp_path, name):
    src = corpus["clips"][name]
    out = tmp_path / "lossless.mkv"
    code = _restore(src, out, corpus["weights"], "--strength", "0", "--codec", "ffv1", "--detect-every", "25")
    assert code == 0
    expected, got = decoded_frames(src), decoded_frames(out)
    assert len(got) == len(expected)
    assert got[0].format.name == plain(expected[0].format.name)  # --pix-fmt auto keeps 4:2:2, 10-bit, ...
    for i, (a, b) in enumerate(zip(expected, got)):
        assert plane_bytes(a) == plane_bytes(b), f"frame {i} differs"
    source_audio, output_audio = _audio(src), _audio(out)
    assert len(output_audio) == len(source_audio)
    for (codec, digests, samples, *_), (out_codec, out_digests, out_samples, *_) in zip(source_audio, output_audio):
        if codec.startswith("wma"):  # PyAV refuses WMA in Matroska: re-encoded, losslessly, to FLAC
            assert out_codec == "flac" and out_samples == samples
        else:
            assert (out_codec, out_digests) == (codec, digests)
    if name == "mkv-tracks":
        with av.open(str(out)) as container:
            assert [s.codec_context.codec.canonical_name for s in container.streams.subtitles] == ["subrip"]


@pytest.mark.parametrize("name", NAMES)
def test_strength_one_into_mp4_keeps_every_frame_and_all_the_sound(corpus, tmp_path, name):
    src = corpus["clips"][name]
    out = tmp_path / "restored.mp4"
    assert _restore(src, out, corpus["weights"], "--detect-every", "5", "--encoder-preset", "ultrafast") == 0
    with av.open(str(src)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert len(decoded_frames(out)) == frames  # decodes to the end, every frame there
    source_audio, output_audio = _audio(src), _audio(out)
    assert len(output_audio) == len(source_audio) >= 1
    for (_, _, samples, rate, frame), (_, _, out_samples, out_rate, out_frame) in zip(source_audio, output_audio):
        assert abs(out_samples / out_rate - samples / rate) <= max(frame / rate, out_frame / out_rate)


def test_reader_keeps_decode_order_with_out_of_order_pts_and_increasing_times(corpus):
    """A packed-bitstream DivX AVI: the decoder's order is the display order, its pts are
    not; a pts sort would swap every B-frame with its neighbour."""
    src = corpus["clips"][DIVX_PACKED]
    with av.open(str(src)) as container:
        raw = [(frame.pts, frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]
    stamps = [pts for pts, _ in raw]
    assert sum(b < a for a, b in zip(stamps, stamps[1:])) >= len(stamps) // 3  # out of order, often
    pictures = clip(BY_NAME["divx-avi"], seed=FORMATS.index(BY_NAME["divx-avi"])).frames
    shown = [int(np.argmin([np.abs(image.astype(int) - p).mean() for p in pictures])) for _, image in raw]
    assert shown == list(range(len(pictures)))  # PyAV's decode order is the display order
    with open_video(src) as reader:
        frames = list(reader)
    assert len(frames) == len(raw)
    assert all(np.array_equal(f.image, image) for f, (_, image) in zip(frames, raw))  # PyAV's decode order
    times = [f.time for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert [t - times[0] for t in times] == pytest.approx([i / 25 for i in range(len(frames))])  # one frame apart


def _combing(frames: list[np.ndarray]) -> float:
    """Mean difference of each row from the mean of its neighbours (the other field):
    large where fields were shot at different times and the picture moved."""
    total = 0.0
    for rgb in frames:
        luma = rgb.astype(np.float32).mean(-1)
        total += float(np.abs(luma[1:-1] - (luma[:-2] + luma[2:]) / 2).mean())
    return total / len(frames)


@pytest.mark.parametrize("name", ["dv-avi", "avchd-mts"])
def test_home_video_preset_deinterlaces_at_field_rate_with_field_timing(corpus, tmp_path, name):
    """home-video deinterlaces by the measured field order, one frame per field (50p from 50i)."""
    src = corpus["clips"][name]
    out = tmp_path / "progressive.mkv"
    code = _restore(src, out, corpus["weights"], "--preset", "home-video", "--strength", "0", "--codec", "ffv1",
                    "--detect-every", "25")
    assert code == 0
    source, result = decoded_frames(src), decoded_frames(out)
    assert len(result) == 2 * len(source)  # bwdif in send_field mode: one frame per field
    times = [float((f.pts - result[0].pts) * f.time_base) for f in result]
    assert times == pytest.approx([i / float(2 * BY_NAME[name].fps) for i in range(len(result))], abs=2e-3)
    combed = _combing([f.to_ndarray(format="rgb24") for f in source])
    clean = _combing([f.to_ndarray(format="rgb24") for f in result])
    assert clean < combed / 2, (combed, clean)


def _face_area(motion: np.ndarray, side: int, shape: tuple[int, int], margin: int = 8) -> np.ndarray:
    """Where the face photo lands in the frame (from its known motion), grown by ``margin`` px."""
    area = cv2.warpAffine(np.ones((side, side), np.uint8), motion, shape[::-1])
    return cv2.dilate(area, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0


def test_ten_bit_source_is_restored_at_ten_bits(corpus, tmp_path):
    """ProRes 4:2:2 10-bit at strength 1 into FFV1: the output stays yuv422p10le, pixels
    away from the face are bit-identical, and the face carries 10-bit values."""
    fmt = BY_NAME["prores-10bit"]
    src, out = corpus["clips"][fmt.name], tmp_path / "deep.mkv"
    assert _restore(src, out, corpus["weights"], "--codec", "ffv1") == 0  # detect every frame: the face moves fast
    motions = clip(fmt, seed=FORMATS.index(fmt)).motions[0]
    expected, got = decoded_frames(src), decoded_frames(out)
    assert len(got) == len(expected) and got[0].format.name == "yuv422p10le"
    changed_luma = []
    for before, after, motion in zip(expected, got, motions):
        face = _face_area(motion, face_size(fmt), (fmt.size[1], fmt.size[0]))
        old, new = plane_arrays(before), plane_arrays(after)
        assert np.array_equal(old[0][~face], new[0][~face])  # luma, full resolution
        chroma_face = face[:, ::2] | face[:, 1::2]  # 4:2:2: a chroma sample spans two columns
        for a, b in zip(old[1:], new[1:]):
            assert np.array_equal(a[~chroma_face], b[~chroma_face])
        changed_luma.append(new[0][old[0] != new[0]])
    values = np.concatenate(changed_luma)
    assert values.size > 1000  # the faces were restored
    assert np.unique(values % 4).size == 4  # not 8-bit values scaled by 4


@pytest.mark.parametrize(("name", "suffix", "expected"), [
    ("dv-avi", ".mp4", ["dvvideo 720x576 yuv420p", "bff", "interlaced, bottom field first", "CFR",
                        "re-encode pcm_s16le → aac", "--deinterlace auto: bwdif on every frame, bff"]),
    ("mkv-tracks", ".mp4", ["#1 audio", "copy (aac)", "#2 audio", "copy (ac3)", "#3 subtitle",
                            "convert subrip → mov_text"]),
    ("mkv-tracks", ".mkv", ["copy (aac)", "copy (ac3)", "copy (subrip)"]),
    ("iphone-hevc", ".mp4", ["hevc", "90° (shown 240x320)", "kept (display matrix)", "copy (aac)"]),
    ("prores-10bit", ".mkv", ["yuv422p10le (10-bit)", "copy (pcm_s24le)", "libx264 yuv420p10le",
                              "data", "timecode", "drop (timecode"]),
])
def test_inspect_says_what_restore_does_with_each_stream(corpus, capsys, monkeypatch, name, suffix, expected):
    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    code = main(["inspect", str(corpus["clips"][name]), "--suffix", suffix, "--detect-every", "25"])
    assert code == 0
    printed = capsys.readouterr().out
    for fragment in expected:
        assert fragment in printed, fragment
