"""Interlaced and telecined sources (issue 27), on clips made from real faces (../shared/video):

* a true field-rate clip (a 25 fps talk clip taken as 50p, woven into 25i: frame k's
  first field from picture 2k, its second from 2k+1), TFF and BFF, with and without the
  stream's flag, restored at strength 0 and field rate: twice the frames at the field
  times, each against its own source picture;
* a 3:2 pulldown of a clip taken as 23.976p film, with one cadence break, measured as
  telecined and inverse-telecined back to the film frames;
* idet's verdicts, the plans ``auto`` makes from them, and the frame-counted settings
  scaled to the same time span.
"""

from __future__ import annotations

from fractions import Fraction

import av
import imageio_ffmpeg
import numpy as np
import pytest
from field_clips import NTSC, line_doubled, pictures, psnr, telecine, weave, write
from gpen_checkpoints import make_gpen_checkpoint
from media import decoded_frames, frame_times, write_video

from vidgpen.cli import main
from vidgpen.config import RestoreConfig
from vidgpen.io.fields import measure_fields, plan_deinterlace
from vidgpen.io.reader import open_video, probe
from vidgpen.models.temporal.fusion import MIN_GAIN, TemporalFusion
from vidgpen.plan.run_plan import face_settings

SIDE = 160  # px: small for speed, large enough for a face
FIELDS = 40  # source pictures → 20 interlaced frames
FILM = 60  # film frames → 75 telecined frames
CASES = [("tff", True), ("tff", False), ("bff", True), ("bff", False)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("fields")
    fields = pictures("talk_d11.mp4", FIELDS, SIDE)  # a child's quick head moves: fields differ
    made = {"fields": fields, "weights": make_gpen_checkpoint(root / "tiny-gpen.pth", size=64)}
    for order, flagged in CASES:
        name = f"{order}-{'flag' if flagged else 'noflag'}"
        made[name] = write(root / f"{name}.mkv", weave(fields, order), 25, order if flagged else None)
    film = pictures("talk_d0.mp4", FILM, SIDE)
    telecined, _ = telecine(film, break_at=FILM // 2 - 5)
    made.update(film=film, telecined=write(root / "telecined.mkv", telecined, NTSC),
                progressive=write(root / "film.mkv", film, NTSC * Fraction(4, 5)))
    return made


def _restore(clips: dict, src, out, *flags: str) -> int:
    return main(["restore", str(src), "-o", str(out), "--weights", str(clips["weights"]), "-q", "--strength", "0",
                 "--codec", "ffv1", "--detect-every", "10", *flags])


@pytest.mark.parametrize(("order", "flagged"), CASES)
def test_field_structure_is_measured_whatever_the_flag_says(clips, order, flagged):
    src = clips[f"{order}-{'flag' if flagged else 'noflag'}"]
    info = probe(src)
    assert info.field_order == (order if flagged else "progressive")
    structure = measure_fields(src, info)
    assert structure.kind == order and structure.frames == FIELDS // 2
    plan = plan_deinterlace(info, "auto", "field")
    assert plan.filters == (("bwdif", f"mode=send_field:parity={order}:deint=all"),) and plan.rate == 2


@pytest.mark.parametrize(("order", "flagged"), CASES)
def test_field_rate_restores_one_frame_per_field_at_field_times(clips, tmp_path, order, flagged):
    """Strength 0 at field rate: 2x the frames, 20 ms apart, each ≥ 30 dB (mean) against its
    own source picture and closer to it than frame-rate output or line doubling."""
    src, out = clips[f"{order}-{'flag' if flagged else 'noflag'}"], tmp_path / "field.mkv"
    assert _restore(clips, src, out, "--deinterlace", "auto", "--deinterlace-rate", "field") == 0
    restored = [f.to_ndarray(format="rgb24") for f in decoded_frames(out)]
    assert len(restored) == 2 * len(decoded_frames(src)) == FIELDS
    assert [float(t) for t in frame_times(out)] == pytest.approx([i / 50 for i in range(FIELDS)], abs=1e-3)
    truth = clips["fields"]
    field_rate = np.mean([psnr(a, b) for a, b in zip(restored, truth)])
    with open_video(src, deinterlace="auto", rate="frame") as reader:
        frame_rate = np.mean([psnr(f.image, truth[2 * f.index + k]) for f in reader for k in (0, 1)])
    with open_video(src) as reader:
        doubled = [field for f in reader for field in line_doubled(f.image, order)]
    line_doubling = np.mean([psnr(a, b) for a, b in zip(doubled, truth)])
    print(f"{order} flagged={flagged}: field rate {field_rate:.2f} dB, frame rate {frame_rate:.2f} dB, "
          f"line doubling {line_doubling:.2f} dB")
    assert field_rate >= 30 and field_rate > frame_rate and field_rate > line_doubling


def test_telecined_clip_is_measured_and_inverse_telecined_to_the_film_frames(clips, tmp_path, capsys, monkeypatch):
    src, out = clips["telecined"], tmp_path / "film.mkv"
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["inspect", str(src), "--detect-every", "25", "--end", "0.2"]) == 0
    assert "telecined (3:2 pulldown)" in capsys.readouterr().out
    assert plan_deinterlace(probe(src), "auto").filters[0][0] == "fieldmatch"  # auto picks it too
    assert _restore(clips, src, out, "--deinterlace", "ivtc") == 0
    restored = decoded_frames(out)
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == Fraction(24000, 1001)
    film = clips["film"]
    assert len(restored) == len(film)
    matched = [round(float(t) * 24000 / 1001) for t in frame_times(out)]
    assert matched == list(range(len(film)))  # each film frame once, at its film time
    quality = [psnr(f.to_ndarray(format="rgb24"), film[i]) for f, i in zip(restored, matched)]
    print(f"ivtc: worst film frame {min(quality):.2f} dB, mean {np.mean(quality):.2f} dB")
    assert min(quality) >= 32
    verdict = measure_fields(out, probe(out))
    assert verdict.kind == "progressive" and verdict.tff + verdict.bff == 0


def test_progressive_clip_is_left_alone_by_auto(clips):
    info = probe(clips["progressive"])
    assert measure_fields(clips["progressive"], info).kind == "progressive"
    assert plan_deinterlace(info, "auto", "field").filters == ()


def test_frame_counted_settings_keep_their_time_span_at_field_rate():
    cfg = RestoreConfig(smooth=6, max_missed=10)
    for scale, lookahead, max_missed in ((1.0, 6, 10), (2.0, 12, 20), (0.8, 5, 8)):  # 50p from 50i, film from 60i
        faces = face_settings(cfg, "cpu", "gpen", scale)
        assert (faces.lookahead, faces.max_missed, faces.detect_every) == (lookahead, max_missed, 1)
    # The deflicker estimate keeps the same weight after the same time: two fields per frame.
    for strength in (0.25, 0.75, 1.0):
        per_frame, per_field = (_steady_gain(TemporalFusion(strength, scale)._q) for scale in (1.0, 2.0))
        assert per_frame == pytest.approx(MIN_GAIN**strength)
        assert (1 - per_field) ** 2 == pytest.approx(1 - per_frame)


def _steady_gain(q: float) -> float:
    """The Kalman gain a random walk of variance ``q`` seen with unit noise settles at."""
    prior = (q + (q * q + 4 * q) ** 0.5) / 2
    return prior / (prior + 1)


def test_field_rate_keeps_audio_and_works_with_span_preview_resume_and_the_ffmpeg_backend(clips, tmp_path,
                                                                                           monkeypatch):
    """A 50i tape with sound, restored at field rate over [0.2, 0.7) s: 25 frames 20 ms apart
    from 0, the sound cut to the span; the preview has the same frames; --resume (segments
    of 0.2 s, joined on field frames) and the ffmpeg backend give the same pictures."""
    src = write_video(tmp_path / "tape.mkv", weave(clips["fields"], "tff"), fps=25, audio="aac", codec="ffv1")
    span = ["--start", "0.2", "--end", "0.7", "--deinterlace", "auto", "--deinterlace-rate", "field"]
    out, preview = tmp_path / "out.mkv", tmp_path / "preview.mkv"
    assert _restore(clips, src, out, *span, "--preview", str(preview)) == 0
    expected = [i / 50 for i in range(25)]
    assert [float(t) for t in frame_times(out)] == pytest.approx(expected, abs=1e-3)
    assert [float(t) for t in frame_times(preview)] == pytest.approx(expected, abs=1e-3)
    with av.open(str(out)) as container:
        sound = sum(frame.samples for frame in container.decode(audio=0)) / container.streams.audio[0].rate
    assert sound == pytest.approx(0.5, abs=0.05)
    pictures_out = [f.to_ndarray(format="rgb24") for f in decoded_frames(out)]
    truth = clips["fields"][10:35]  # fields 10..34: 0.2 s to 0.68 s
    assert np.mean([psnr(a, b) for a, b in zip(pictures_out, truth)]) >= 30
    resumed = tmp_path / "resumed.mkv"
    assert _restore(clips, src, resumed, *span, "--resume", "0.2") == 0
    monkeypatch.setenv("VIDGPEN_FFMPEG", imageio_ffmpeg.get_ffmpeg_exe())
    piped = tmp_path / "ffmpeg.mkv"
    assert _restore(clips, src, piped, *span, "--encoder-backend", "ffmpeg") == 0
    for other in (resumed, piped):
        assert frame_times(other) == frame_times(out)
        assert all(np.array_equal(a.to_ndarray(format="rgb24"), b)
                   for a, b in zip(decoded_frames(other), pictures_out, strict=True))
