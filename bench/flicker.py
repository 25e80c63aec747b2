"""Flicker of restored faces with and without ``--deflicker``, on a clip whose motion is known.

    python bench/flicker.py                                  # GPEN 64, 128, 256 (random weights)
    python bench/flicker.py --sizes 128 --strengths 0 0.5 1 --strip bench/deflicker-strip.png

The clip: a real FFHQ photo (../shared/faces) moved along a known smooth path with fresh
grain and JPEG on every frame, a sudden local change (from frame ``STEP`` a dark patch covers
the mouth, as a hand would), then a hard cut to another face. It runs through the real pipeline (detection,
tracking, smoothing, GPEN, paste-back, ffv1 output). Each output frame is warped back into
the photo's coordinates by the known motion: the true face is static there, so the mean
absolute change between consecutive frames over the inner face is its flicker (input: the
same on the decoded input). Printed per GPEN size and strength:

* flicker, in levels of 255 (pairs across the step and the cut left out), and its floor: the
  same with every face replaced by one fixed restored face (the alignment's own jitter);
* lag: frames after the cut / the step until the inner face's mean level is within 1 of the
  per-frame (``--deflicker 0``) run's;
* PSNR of each shot's temporal mean against the per-frame run's (low = drift or ghosting);
* restore time per face (GPEN + fusion) and the fusion's share; then, for the released GPEN
  configs, the fusion's time per face and the state it holds per track.

GPENs are random-weight checkpoints in the official layout (no real weights here), so the
numbers say how much the fusion steadies what a GPEN passes on, not how good faces look.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from face_clips import load_face, make_clip, smooth_path  # noqa: E402
from flicker_measure import StillRestorer, flicker, inner_face, to_photo  # noqa: E402
from gpen_checkpoints import make_gpen_checkpoint  # noqa: E402
from media import decoded_frames, write_video  # noqa: E402

from vidgpen import Pipeline, RestoreConfig  # noqa: E402
from vidgpen.models.network.gpen import GPEN  # noqa: E402
from vidgpen.models.network.gpen_fast import FastGPEN  # noqa: E402
from vidgpen.models.runtime.memory import keep_freed_memory  # noqa: E402
from vidgpen.models.runtime.torch_restorer import FaceRestorer  # noqa: E402
from vidgpen.models.temporal.fusion import FaceKey, TemporalFusion  # noqa: E402

FACES = REPO.parent / "shared" / "faces"
SHOT, STEP, FPS = 48, 24, 25  # frames per shot; the mouth covered from STEP on
BREAKS = (STEP, SHOT)  # frame pairs ending here are not flicker but the change and the cut
FACE_PX = 160  # photo width in the frame (the face is about half of it)
CONFIGS = {64: dict(narrow=0.25), 128: dict(narrow=0.25), 256: dict(narrow=0.5, channel_multiplier=1, style_dim=512, n_mlp=8)}


def make_test_clip(folder: Path) -> tuple[Path, np.ndarray, int]:
    """The video, each frame's source → frame affine, and the photo's side."""
    first = load_face(FACES / "ffhq_00003.png", FACE_PX)
    covered = first.copy()  # a hand over the mouth: a sudden local change
    cv2.rectangle(covered, (FACE_PX // 3, int(FACE_PX * 0.66)), (FACE_PX * 2 // 3, int(FACE_PX * 0.8)), (70, 55, 50), -1)
    second = load_face(FACES / "ffhq_00007.png", FACE_PX)
    path = smooth_path(180, 130, dx=30, dy=12, angle=5, zoom=0.06, period=40)
    a = make_clip([(first, path)], SHOT, (360, 260), seed=0, codec=None, noise=5.0, jpeg=50)
    a_covered = make_clip([(covered, path)], SHOT, (360, 260), seed=0, codec=None, noise=5.0, jpeg=50)
    b = make_clip([(second, path)], SHOT, (360, 260), seed=3, codec=None, cut_at=0, noise=5.0, jpeg=50)
    frames = a.frames[:STEP] + a_covered.frames[STEP:] + b.frames
    motions = np.concatenate([a.motions[0], b.motions[0]])
    return write_video(folder / "clip.mp4", frames, fps=FPS, options={"crf": "20"}), motions, FACE_PX


def lag(photo: np.ndarray, per_frame: np.ndarray, mask: np.ndarray, at: int) -> int:
    """Frames from ``at`` until the inner face's mean level is within 1 of the per-frame run's."""
    for t in range(at, len(photo)):
        if abs(photo[t][mask].mean() - per_frame[t][mask].mean()) <= 1.0:
            return t - at
    return len(photo) - at


def mean_psnr(photo: np.ndarray, per_frame: np.ndarray, mask: np.ndarray) -> float:
    """The lower of the shots' temporal-mean PSNRs against the per-frame run (inner face)."""
    psnrs = []
    for span in (slice(0, STEP), slice(STEP, SHOT), slice(SHOT, None)):
        error = ((photo[span].mean(0) - per_frame[span].mean(0))[mask] ** 2).mean()
        psnrs.append(10 * np.log10(255**2 / max(error, 1e-10)))
    return float(min(psnrs))


def restore(video: Path, weights: Path, strength: float | None, out: Path, settings: dict) -> tuple[list[np.ndarray], dict]:
    """The pipeline at ``strength``; None: :class:`StillRestorer` (the alignment's flicker floor).
    ``settings``: the bench's own (detector, dtype, register)."""
    config = RestoreConfig(weights=str(weights), deflicker=strength or 0.0, device="cpu", codec="ffv1",
                           pix_fmt="yuv444p10le", **settings)  # 10-bit 4:4:4: no chroma loss, 1/4-level rounding
    still = None if strength is not None else StillRestorer(FaceRestorer.load(weights, device="cpu", dtype=config.dtype))
    report = Pipeline(config, restorer=still).run(video, out, overwrite=True)
    return [f.to_ndarray(format="rgb24") for f in decoded_frames(out)], report.to_dict()


def measure(size: int, strengths: list[float], clip: tuple[Path, np.ndarray, int], folder: Path,
            settings: dict) -> list[dict]:
    video, motions, side = clip
    weights = make_gpen_checkpoint(folder / f"gpen-{size}.pth", size=size, **CONFIGS[size])
    mask = inner_face(side)
    floor = flicker(to_photo(restore(video, weights, None, folder / "still.mkv", settings)[0], motions, side), mask, BREAKS)
    photos, rows = {}, []
    for strength in sorted(set([0.0, *strengths])):
        frames, report = restore(video, weights, strength, folder / f"out-{size}-{strength}.mkv", settings)
        photos[strength] = to_photo(frames, motions, side)
        faces = max(report["faces"], 1)
        rows.append(dict(size=size, deflicker=strength, flicker=flicker(photos[strength], mask, BREAKS), floor=floor,
                         tracks=report["tracks"], faces=report["faces"],
                         restore_ms_per_face=1000 * report["stage_seconds"].get("restore", 0.0) / faces,
                         fusion_ms_per_face=1000 * report["stage_seconds"].get("deflicker", 0.0) / faces))
    for row in rows:
        photo = photos[row["deflicker"]]
        row.update(lag_cut=lag(photo, photos[0.0], mask, SHOT), lag_step=lag(photo, photos[0.0], mask, STEP),
                   mean_psnr=mean_psnr(photo, photos[0.0], mask))
    rows[0]["photos"] = photos  # for the strip; dropped before printing
    return rows


def strip(photos: dict[float, np.ndarray], input_photo: np.ndarray, strength: float, path: Path) -> None:
    """Six consecutive frames of the first shot in photo coordinates: input, per-frame, fused, then the
    frame-to-frame change (grey, ×16) of the per-frame and the fused run."""
    frames = range(8, 14)
    side = input_photo.shape[1]
    box = slice(int(side * 0.22), int(side * 0.88)), slice(int(side * 0.17), int(side * 0.83))

    def tile(image: np.ndarray) -> np.ndarray:
        return cv2.resize(np.clip(image[box], 0, 255).astype(np.uint8), (80, 80), interpolation=cv2.INTER_AREA)

    def change(photo: np.ndarray, t: int) -> np.ndarray:
        return np.repeat(16 * np.abs(photo[t] - photo[t - 1]).mean(-1, keepdims=True), 3, -1)

    rows = [[tile(p[t]) for t in frames] for p in (input_photo, photos[0.0], photos[strength])]
    rows += [[tile(change(p, t)) for t in frames] for p in (photos[0.0], photos[strength])]
    image = np.concatenate([np.concatenate(r, 1) for r in rows], 0)
    cv2.imwrite(str(path), image[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])


def fusion_cost(size: int, frames: int = 6) -> dict:
    """Fusion time per face and state memory per track for the released GPEN config of ``size``.

    The encoder outputs' shapes come from the model built on the meta device; the tensors
    fused are random (time and memory do not depend on the values). The heap is set as a run
    sets it (fresh pages for every large temporary would double the time).
    """
    keep_freed_memory()
    config = json.loads((REPO.parent / "shared" / "fixtures" / "gpen" / f"gpen-bfr-{size}.keys.json").read_text())["config"]
    with torch.device("meta"):
        code, features = FastGPEN(GPEN(**config)).encode(torch.empty(1, 3, size, size))
    shapes = [tuple(t.shape[1:]) for t in (code, *features)]
    fusion, base = TemporalFusion(RestoreConfig().deflicker), [torch.randn(shape) for shape in shapes]
    seconds = []
    for frame in range(frames):
        tensors = [t + 0.1 * torch.randn_like(t) for t in base]
        started = time.perf_counter()
        fusion.fuse(FaceKey(1, 0, frame), tensors[0], tensors[1:])
        seconds.append(time.perf_counter() - started)
    return dict(size=size, fusion_ms_per_face=1000 * min(seconds[1:]), state_mb_per_track=fusion.state_bytes / 2**20)


def _table(rows: list[dict], input_flicker: float) -> str:
    lines = [f"input flicker {input_flicker:.2f} levels (inner face, photo coordinates)",
             "GPEN | deflicker | flicker | alignment floor | lag after cut | lag after step | temporal-mean PSNR | restore ms/face | fusion ms/face"]
    for r in rows:
        lines.append(f"{r['size']} | {r['deflicker']:g} | {r['flicker']:.2f} | {r['floor']:.2f} | {r['lag_cut']} | {r['lag_step']} | "
                     f"{r['mean_psnr']:.1f} dB | {r['restore_ms_per_face']:.1f} | {r['fusion_ms_per_face']:.1f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256], choices=sorted(CONFIGS))
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--strip", type=Path, help="write the crop strip of the last size here (PNG)")
    parser.add_argument("--strip-strength", type=float, default=RestoreConfig().deflicker)
    parser.add_argument("--detector", default=RestoreConfig().detector)
    parser.add_argument("--dtype", default="float32", help="GPEN's dtype (auto: what a run picks on this CPU)")
    parser.add_argument("--no-register", dest="register", action="store_false",
                        help="align by the smoothed landmarks alone (to see what registration gives)")
    parser.add_argument("--cost-sizes", type=int, nargs="*", default=[256, 512, 1024],
                        help="released GPEN configs to time the fusion alone on")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = make_test_clip(folder)
        input_photo = to_photo([f.to_ndarray(format="rgb24") for f in decoded_frames(clip[0])], clip[1], clip[2])
        input_flicker = flicker(input_photo, inner_face(clip[2]), BREAKS)
        rows = []
        for size in args.sizes:
            size_rows = measure(size, [*args.strengths, args.strip_strength], clip, folder,
                                 dict(detector=args.detector, dtype=args.dtype, register=args.register))
            photos = size_rows[0].pop("photos")
            rows += size_rows
        if args.strip and args.sizes:
            strip(photos, input_photo, args.strip_strength, args.strip)
    costs = [fusion_cost(size) for size in args.cost_sizes]
    print(f"dtype {args.dtype}, registration {'on' if args.register else 'off'}")
    print(_table(rows, input_flicker))
    for cost in costs:
        print(f"released GPEN-{cost['size']} config: fusion {cost['fusion_ms_per_face']:.0f} ms/face, "
              f"state {cost['state_mb_per_track']:.0f} MB/track")
    if args.json:
        args.json.write_text(json.dumps(dict(input_flicker=input_flicker, rows=rows, costs=costs), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
