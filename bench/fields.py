"""Deinterlacing and inverse telecine measured against the truth, on clips made from real faces.

For each ../shared/video clip named, its frames are taken as 50p pictures and woven into
25i (TFF and BFF: frame k's first field from picture 2k, its second from 2k+1), then read
back by vidgpen's reader with ``--deinterlace auto`` at field rate and at frame rate, and
by plain line doubling; each output is scored (PSNR, RGB) against the source pictures of
its times (a frame-rate frame against both pictures it stands for). A 3:2 pulldown with a
cadence break is made from the same clips taken as 23.976p film and inverse-telecined.

    python bench/fields.py                      # prints the table
    python bench/fields.py --png bench/field-rate.png   # and the README's picture
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the clip makers shared with the tests
sys.path.insert(0, str(REPO))

CLIPS = ("talk_d11.mp4", "talk_d14.mp4", "talk_d10.mp4", "talk_d0.mp4", "talk_s20.mp4")


def interlaced(name: str, folder: Path, side: int, count: int) -> list[str]:
    """One row per field order: field rate, frame rate and line doubling, mean dB."""
    from field_clips import line_doubled, pictures, psnr, weave, write

    from vidgpen.io.reader import open_video

    truth = pictures(name, count, side)
    rows = []
    for order in ("tff", "bff"):
        src = write(folder / f"{order}.mkv", weave(truth, order), 25)
        with open_video(src, deinterlace="auto", rate="field") as reader:
            field = np.mean([psnr(f.image, truth[f.index]) for f in reader])
        with open_video(src, deinterlace="auto", rate="frame") as reader:
            frame = np.mean([psnr(f.image, truth[2 * f.index + k]) for f in reader for k in (0, 1)])
        with open_video(src) as reader:
            doubled = np.mean([psnr(a, b) for a, b in zip((d for f in reader for d in line_doubled(f.image, order)),
                                                          truth)])
        rows.append(f"| {name} | {order} | {field:.2f} | {frame:.2f} | {doubled:.2f} |")
    return rows


def telecined(name: str, folder: Path, side: int, count: int) -> str:
    """Inverse telecine: frames out, film frames in, the worst and mean dB, idet's verdict."""
    from field_clips import NTSC, pictures, psnr, telecine, write

    from vidgpen.io.fields import measure_fields
    from vidgpen.io.reader import open_video, probe

    film = pictures(name, count, side)
    frames, _ = telecine(film, break_at=count // 2 - 5)
    src = write(folder / "telecined.mkv", frames, NTSC)
    measured = measure_fields(src, probe(src)).kind
    with open_video(src, deinterlace="ivtc") as reader:
        out = [(round(f.time * 24000 / 1001), f.image) for f in reader]
    scores = [psnr(image, film[i]) for i, image in out if i < len(film)]
    ivtc = folder / "ivtc.mkv"
    write(ivtc, [image for _, image in out], Fraction(24000, 1001))
    verdict = measure_fields(ivtc, probe(ivtc))
    return (f"| {name} | {measured} | {len(out)} / {len(film)} | {min(scores):.2f} | {np.mean(scores):.2f} | "
            f"{verdict.kind} ({verdict.tff + verdict.bff} combed) |")


def picture(path: Path, folder: Path, side: int) -> None:
    """The interlaced frame, the frame-rate frame and the two field-rate frames for it, side by side."""
    import cv2
    from field_clips import pictures, weave, write

    from vidgpen.io.reader import open_video

    truth = pictures("talk_d11.mp4", 40, side)
    src = write(folder / "picture.mkv", weave(truth, "tff"), 25)
    k = 7  # a frame where the head turns
    with open_video(src) as reader:
        woven = [f.image for f in reader][k]
    with open_video(src, deinterlace="auto", rate="frame") as reader:
        frame = [f.image for f in reader][k]
    with open_video(src, deinterlace="auto", rate="field") as reader:
        fields = [f.image for f in reader][2 * k: 2 * k + 2]
    top, left, crop = side // 5, side // 4, side // 2  # the face
    panels = [image[top:top + crop, left:left + crop] for image in (woven, frame, *fields)]
    strip = np.concatenate([np.pad(p, ((0, 0), (0, 2), (0, 0)), constant_values=255) for p in panels], axis=1)
    cv2.imwrite(str(path), cv2.cvtColor(strip[:, :-2], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {path}: interlaced frame {k} | frame rate {k} | field rate {2 * k}, {2 * k + 1}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=256, help="frames are scaled to side×side (default 256)")
    parser.add_argument("--frames", type=int, default=60, help="source pictures per clip (default 60)")
    parser.add_argument("--png", type=Path, help="also write the field-rate against frame-rate picture here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidgpen-fields-") as folder:
        print("| clip (as 50p) | order | field rate dB | frame rate dB | line doubling dB |\n|---|---|---|---|---|")
        for name in CLIPS:
            print("\n".join(interlaced(name, Path(folder), args.side, args.frames)))
        print("\n| clip (as 23.976p film) | measured | frames out / film | worst dB | mean dB | idet on output |"
              "\n|---|---|---|---|---|---|")
        for name in CLIPS:
            print(telecined(name, Path(folder), args.side, args.frames))
        if args.png:
            picture(args.png, Path(folder), args.side)


if __name__ == "__main__":
    main()
