"""Text subtitles into MP4/MOV as mov_text (issue 27): an MKV holding SubRip, ASS or WebVTT
cues over a real face clip, restored into .mp4, has a mov_text stream with the same cues at
the same times; --start/--end cut them; what cannot be converted is left out with a warning."""

from __future__ import annotations

import logging
import re
from fractions import Fraction

import av
import pytest
from field_clips import pictures, write
from gpen_checkpoints import make_gpen_checkpoint
from media import with_subtitles

from vidgpen.cli import main
from vidgpen.io.reader import open_video
from vidgpen.io.writer import VideoWriter

CUES = [(Fraction(1, 10), Fraction(1, 2), "Grandma's 80th"), (Fraction(3, 5), Fraction(9, 10), "summer 2019")]
SRT = ("1\n00:00:00,100 --> 00:00:00,500\nGrandma's <i>80th</i>\n\n"
       "2\n00:00:00,600 --> 00:00:00,900\nsummer 2019\n")
VTT = ("WEBVTT\n\n00:00:00.100 --> 00:00:00.500\nGrandma's <i>80th</i>\n\n"
       "00:00:00.600 --> 00:00:00.900\nsummer 2019\n")
ASS = """[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.10,0:00:00.50,Default,,0,0,0,,Grandma's {\\i1}80th{\\i0}
Dialogue: 0,0:00:00.60,0:00:00.90,Default,,0,0,0,,{\\pos(10,10)}summer 2019
"""
FORMATS = {"subrip": (SRT, ".srt"), "ass": (ASS, ".ass"), "webvtt": (VTT, ".vtt")}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    root = tmp_path_factory.mktemp("subtitles")
    return write(root / "face.mkv", pictures("talk_d20.mp4", 25, 96), 25, codec="libx264")


def _cues(path) -> tuple[str, list[tuple[Fraction, Fraction, str]]]:
    """The first subtitle stream's codec and its cues (start, end in seconds, plain text)."""
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        cues = []
        for packet in container.demux(stream):
            subtitle = stream.codec_context.decode2(packet) if packet.size else None
            if subtitle is None or not len(subtitle):  # mov_text's empty samples between cues
                continue
            text = subtitle[0].ass.decode().split(",", 8)[-1]
            start = Fraction(packet.pts) * packet.time_base
            cues.append((start, start + packet.duration * packet.time_base, re.sub(r"\{[^}]*\}", "", text)))
        return stream.codec_context.codec.canonical_name, cues


def _copy(src, out, **options) -> None:
    with open_video(src) as reader, VideoWriter(out, reader.info, **options) as writer:
        for frame in reader:
            writer.write(frame)


@pytest.mark.parametrize("codec", FORMATS)
def test_text_subtitles_go_into_mp4_as_mov_text_with_their_cues_and_times(video, tmp_path, codec):
    src = with_subtitles(video, tmp_path / "source.mkv", *FORMATS[codec])
    assert _cues(src) == (codec, CUES)
    _copy(src, tmp_path / "out.mp4")
    assert _cues(tmp_path / "out.mp4") == ("mov_text", CUES)


def test_mkv_with_subrip_restored_into_mp4_keeps_the_cues_and_cuts_them_with_start_end(video, tmp_path):
    src = with_subtitles(video, tmp_path / "source.mkv", SRT)
    weights = make_gpen_checkpoint(tmp_path / "tiny-gpen.pth", size=64)
    out, cut = tmp_path / "restored.mp4", tmp_path / "cut.mov"
    for target, span in ((out, []), (cut, ["--start", "0.3", "--end", "0.7"])):
        code = main(["restore", str(src), "-o", str(target), "--weights", str(weights), "-q", "--strength", "0",
                     "--detect-every", "10", *span])
        assert code == 0
    assert _cues(out) == ("mov_text", CUES)
    # The first cue (0.1-0.5 s) loses what was before 0.3 s, the second (0.6-0.9 s) what is after 0.7 s.
    assert _cues(cut) == ("mov_text", [(Fraction(0), Fraction(1, 5), CUES[0][2]),
                                       (Fraction(3, 10), Fraction(2, 5), CUES[1][2])])


def test_subtitles_a_container_cannot_take_are_left_out_with_one_warning(video, tmp_path, caplog):
    src = with_subtitles(video, tmp_path / "source.mkv", SRT)
    with caplog.at_level(logging.WARNING):
        _copy(src, tmp_path / "out.webm", codec="libvpx-vp9")
    assert "subtitle stream #1 (subrip) cannot be stored in a webm file; it is left out" in caplog.text
    with av.open(str(tmp_path / "out.webm")) as container:
        assert not container.streams.subtitles
