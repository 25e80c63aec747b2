"""Warping error on real footage: how much restored faces change beyond what the motion explains.

    python bench/warp_error.py                               # talk_d0, talk_d18, talk_s20; GPEN-256 random
    python bench/warp_error.py --clips talk_d11 --frames 60 --size 128 --dtype bfloat16

Each clean clip of ``../shared/video`` (its first ``--frames`` frames) is degraded as a home
video is: half the size, grain σ 8, JPEG 40 on every frame, then x264 at CRF 28. vidgpen
restores the copy at ``--deflicker 0`` and at the default (ffv1 10-bit 4:4:4 output).

Optical flow (OpenCV's DIS, medium preset) is computed on the *clean* source, scaled to the
copy's size, both ways between consecutive frames; a pixel counts where the two agree
(forward-backward check: |f + b| ≤ 0.01 (|f|² + |b|²) + 0.5 px, as in Sundaram et al. 2010)
and lies in the face (an ellipse in the clean frame's largest retinaface-onnx box).
Frame t−1 of a video is warped onto frame t with that flow, and the warping error is the
mean absolute difference over those pixels, in levels of 255, averaged over the clip: the
temporal-consistency measure of video-restoration papers. It is printed for the clean
source, the degraded input and both outputs.

GPEN here has random weights (no real weights are available), and a random GPEN's output has
no real texture: it can be smoother than the clean source and then warp with *less* error
than the source itself. Compare only the default against ``--deflicker 0`` on the same weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from face_clips import codec_roundtrip, degrade  # noqa: E402
from gpen_checkpoints import make_gpen_checkpoint  # noqa: E402
from media import decoded_frames, write_video  # noqa: E402

from vidgpen import Pipeline, RestoreConfig  # noqa: E402
from vidgpen.faces.detect import OnnxRetinaFace  # noqa: E402

VIDEOS = REPO.parent / "shared" / "video"
CONFIGS = {128: dict(narrow=0.25), 256: dict(narrow=0.5, channel_multiplier=1, style_dim=512, n_mlp=8)}
SCALE, GRAIN, JPEG, CRF = 0.5, 8.0, 40, 28


def degraded_copy(frames: list[np.ndarray], path: Path) -> tuple[Path, list[np.ndarray]]:
    """Half size, grain, JPEG, x264: the file vidgpen restores, and the frames it decodes to."""
    rng = np.random.default_rng(0)
    height, width = (int(side * SCALE) // 2 * 2 for side in frames[0].shape[:2])
    small = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]
    damaged = codec_roundtrip([degrade(f, rng, blur=0, noise=GRAIN, jpeg=JPEG) for f in small], crf=CRF)
    video = write_video(path, damaged, codec="ffv1", pix_fmt="yuv444p")  # lossless: the damage is the one above
    return video, [f.to_ndarray(format="rgb24") for f in decoded_frames(video)]


class FlowPairs:
    """For each frame t ≥ 1 of the clean clip at the copy's size: the map that pulls frame t−1 onto t,
    and the pixels where it holds (forward-backward consistent, inside the face)."""

    def __init__(self, clean: list[np.ndarray], size: tuple[int, int]) -> None:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        grey = [cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY) for f in clean]
        faces = [_face_mask(f, size) for f in clean]
        grid = np.stack(np.meshgrid(np.arange(size[0]), np.arange(size[1])), -1).astype(np.float32)
        self.maps: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        for before, now, face in zip(grey, grey[1:], faces[1:]):
            backward = dis.calc(now, before, None)  # t → t−1: where each pixel of t was
            forward = dis.calc(before, now, None)
            pulled = grid + backward
            back_again = cv2.remap(forward, pulled[..., 0], pulled[..., 1], cv2.INTER_LINEAR)
            gap = np.square(backward + back_again).sum(-1)
            bound = 0.01 * (np.square(backward).sum(-1) + np.square(back_again).sum(-1)) + 0.5
            self.maps.append(pulled)
            self.masks.append((gap <= bound) & face)

    def error(self, frames: list[np.ndarray]) -> float:
        """Mean |frame t − frame t−1 warped onto t| over the held face pixels, in levels."""
        errors = []
        for t, (pulled, mask) in enumerate(zip(self.maps, self.masks), start=1):
            if mask.any():
                warped = cv2.remap(frames[t - 1].astype(np.float32), pulled[..., 0], pulled[..., 1], cv2.INTER_LINEAR)
                errors.append(np.abs(frames[t].astype(np.float32) - warped)[mask].mean())
        return float(np.mean(errors))


_DETECTOR: list[OnnxRetinaFace] = []


def _face_mask(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The largest face's inner ellipse (80% of its box) at ``size``; empty where none is found."""
    if not _DETECTOR:
        _DETECTOR.append(OnnxRetinaFace())
    mask = np.zeros(size[::-1], np.uint8)
    found = _DETECTOR[0].detect(frame)
    if found:
        x0, y0, x1, y1 = max(found, key=lambda d: d.size).box * (size[0] / frame.shape[1])
        centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
        cv2.ellipse(mask, centre, (int(0.4 * (x1 - x0)), int(0.4 * (y1 - y0))), 0, 0, 360, 1, -1)
    return mask.astype(bool)


def restored(video: Path, weights: Path, strength: float, dtype: str, out: Path) -> list[np.ndarray]:
    config = RestoreConfig(weights=str(weights), deflicker=strength, device="cpu", dtype=dtype, codec="ffv1",
                           pix_fmt="yuv444p10le")
    Pipeline(config).run(video, out, overwrite=True)
    return [f.to_ndarray(format="rgb24") for f in decoded_frames(out)]


def measure(name: str, frames: int, weights: Path, dtype: str, folder: Path) -> dict:
    clean = [f.to_ndarray(format="rgb24") for f in decoded_frames(VIDEOS / f"{name}.mp4")[:frames]]
    video, copy = degraded_copy(clean, folder / f"{name}.mkv")
    size = copy[0].shape[1::-1]
    pairs = FlowPairs(clean, size)
    row = dict(clip=name, frames=len(clean), held=float(np.mean([m.mean() for m in pairs.masks])),
               clean=pairs.error([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in clean]),
               degraded=pairs.error(copy))
    for label, strength in (("deflicker_0", 0.0), ("default", RestoreConfig().deflicker)):
        row[label] = pairs.error(restored(video, weights, strength, dtype, folder / f"{name}-{label}.mkv"))
    row["share"] = row["default"] / row["deflicker_0"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", nargs="*", default=["talk_d0", "talk_d18", "talk_s20"])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=256, choices=sorted(CONFIGS))
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"GPEN-{args.size} random weights, {args.dtype}; warping error in levels of 255 over the face's "
          "flow-consistent pixels (held: their share of the frame)")
    print("clip | frames | held | clean source | degraded input | --deflicker 0 | default | default / 0")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = make_gpen_checkpoint(Path(tmp) / "gpen.pth", size=args.size, **CONFIGS[args.size])
        for name in args.clips:
            rows.append(measure(name, args.frames, weights, args.dtype, Path(tmp)))
            r = rows[-1]
            print(f"{r['clip']} | {r['frames']} | {100 * r['held']:.1f}% | {r['clean']:.2f} | {r['degraded']:.2f} | "
                  f"{r['deflicker_0']:.2f} | {r['default']:.2f} | {100 * r['share']:.0f}%", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
