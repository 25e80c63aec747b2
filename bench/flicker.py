"""Flicker of restored faces with and without ``--deflicker``, on clips whose motion is known.

    python bench/flicker.py                                  # every clip, GPEN-64, float32 (+ bf16 where native)
    python bench/flicker.py --sizes 64 256 --dtypes float32 bfloat16 --json bench/out/flicker.json
    python bench/flicker.py --clips grain12-jpeg30-hand --strip bench/deflicker-strip.png

The clips (tests/flicker_clips.py): real FFHQ photos moved along known smooth paths with
fresh grain (σ 5–12) and JPEG (quality 30–70) on every frame, x264 on top; one or two
faces; sudden local changes on the first face (a dark hand over the mouth from a frame on,
a blink made by swapping in a closed-eye version for four frames) and a hard cut to other
faces. Each runs through the real pipeline (detection, tracking, registration, GPEN,
paste-back, ffv1 10-bit 4:4:4 output: no rounding of its own to speak of). Each output frame
is warped back into each photo's coordinates by the known motion: the true face is still
there, so the mean absolute change between consecutive frames over the inner face is its
flicker. Printed per clip, GPEN size and dtype, at ``--deflicker 0`` and the default:

* flicker in levels of 255 (pairs across a change or the cut left out), and the default's share;
* lag: frames after each change (over its region: mouth, eyes, whole face at the cut) until
  the region's mean level is within 1 of the per-frame run's (0: followed in its first frame);
* the lowest PSNR of a still span's temporal mean against the per-frame run's (drift, ghosts);
* restore time per face (GPEN + fusion) and the fusion's part; then bf16's flicker as a
  share of float32's; then, for the released GPEN configs, the fusion's time per face and
  the state it holds per track.

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

from flicker_clips import CLIPS, PHOTO_PX, FlickerClip, make_flicker_clip  # noqa: E402
from flicker_measure import clip_photos, compare  # noqa: E402
from gpen_checkpoints import make_gpen_checkpoint  # noqa: E402
from media import decoded_frames  # noqa: E402

from vidgpen import Pipeline, RestoreConfig  # noqa: E402
from vidgpen.models.network.gpen import GPEN  # noqa: E402
from vidgpen.models.network.gpen_fast import FastGPEN  # noqa: E402
from vidgpen.models.runtime.device import cpu_bf16_native  # noqa: E402
from vidgpen.models.runtime.memory import keep_freed_memory  # noqa: E402
from vidgpen.models.temporal.fusion import FaceKey, TemporalFusion  # noqa: E402

CONFIGS = {64: dict(narrow=0.25), 128: dict(narrow=0.25), 256: dict(narrow=0.5, channel_multiplier=1, style_dim=512, n_mlp=8)}
DEFAULT = RestoreConfig().deflicker


def restore(clip: FlickerClip, weights: Path, strength: float, dtype: str, out: Path,
            register: bool) -> tuple[list[np.ndarray], dict]:
    """The pipeline on ``clip`` at ``strength``; its faces in photo coordinates and its report."""
    config = RestoreConfig(weights=str(weights), deflicker=strength, device="cpu", dtype=dtype, codec="ffv1", register=register,
                           pix_fmt="yuv444p10le")  # 10-bit 4:4:4: no chroma loss, 1/4-level rounding
    report = Pipeline(config).run(clip.video, out, overwrite=True).to_dict()
    frames = [f.to_ndarray(format="rgb24") for f in decoded_frames(out)]
    return clip_photos(frames, clip.motions, PHOTO_PX), report


def measure(clip: FlickerClip, size: int, dtype: str, strength: float, folder: Path,
            register: bool = False) -> tuple[dict, dict]:
    """One clip, GPEN size and dtype at --deflicker 0 and ``strength``: the row, and the faces (for the strip)."""
    weights = make_gpen_checkpoint(folder / f"gpen-{size}.pth", size=size, **CONFIGS[size])
    faces, row = {}, dict(clip=clip.spec.name, size=size, dtype=dtype, deflicker=strength)
    for value in (0.0, strength):
        faces[value], report = restore(clip, weights, value, dtype, folder / f"out-{value}.mkv", register)
        count = max(report["faces"], 1)
        row[f"restore_ms_per_face_{value:g}"] = 1000 * report["stage_seconds"].get("restore", 0.0) / count
        row["fusion_ms_per_face"] = 1000 * report["stage_seconds"].get("deflicker", 0.0) / count
        row["tracks"], row["state_mb"] = report["tracks"], report["deflicker_state_mb"]
    per_frame = compare(faces[0.0], faces[0.0], clip.events, clip.shots, PHOTO_PX)
    fused = compare(faces[strength], faces[0.0], clip.events, clip.shots, PHOTO_PX)
    row.update(flicker_0=per_frame["flicker"], flicker=fused["flicker"], share=fused["flicker"] / per_frame["flicker"],
               lags=fused["lags"], mean_psnr=fused["mean_psnr"])
    return row, faces


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


def _table(rows: list[dict]) -> str:
    lines = ["clip | GPEN | dtype | flicker at 0 | at default | share | lag (frames) | temporal-mean PSNR | "
             "restore ms/face at 0 / default | fusion ms/face"]
    for r in rows:
        lags = ", ".join(f"{event} {frames}" for event, frames in r["lags"].items()) or "–"
        fused_ms = r[f"restore_ms_per_face_{r['deflicker']:g}"]
        lines.append(f"{r['clip']} | {r['size']} | {r['dtype']} | {r['flicker_0']:.2f} | {r['flicker']:.2f} | "
                     f"{100 * r['share']:.0f}% | {lags} | {r['mean_psnr']:.1f} dB | "
                     f"{r['restore_ms_per_face_0']:.0f} / {fused_ms:.0f} | {r['fusion_ms_per_face']:.1f}")
    pairs = {(r["clip"], r["size"], r["dtype"]): r for r in rows}
    for (clip, size, dtype), r in pairs.items():
        if dtype != "float32" and (clip, size, "float32") in pairs:
            base = pairs[(clip, size, "float32")]
            lines.append(f"{clip} GPEN-{size}: {dtype} flicker / float32's: {r['flicker_0'] / base['flicker_0']:.2f}x "
                         f"at 0, {r['flicker'] / base['flicker']:.2f}x at default")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", nargs="*", default=[c.name for c in CLIPS], choices=[c.name for c in CLIPS])
    parser.add_argument("--sizes", type=int, nargs="*", default=[64], choices=sorted(CONFIGS))
    parser.add_argument("--dtypes", nargs="*", default=["float32", *(["bfloat16"] if cpu_bf16_native() else [])],
                        help="GPEN's dtypes (default: float32, and bfloat16 where this CPU has it natively)")
    parser.add_argument("--strength", type=float, default=DEFAULT, help="the --deflicker compared with 0")
    parser.add_argument("--strip", type=Path, help="write a crop strip of the first clip's last run here (PNG)")
    parser.add_argument("--cost-sizes", type=int, nargs="*", default=[256, 512, 1024],
                        help="released GPEN configs to time the fusion alone on")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--register", action="store_true", help="with --register (off by default since issue 21)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.clips:
            clip = make_flicker_clip(next(c for c in CLIPS if c.name == name), folder)
            for size in args.sizes:
                for dtype in args.dtypes:
                    row, faces = measure(clip, size, dtype, args.strength, folder, args.register)
                    rows.append(row)
                    print(_table([row]).splitlines()[1], flush=True)
            if args.strip and name == args.clips[0]:
                source = [f.to_ndarray(format="rgb24") for f in decoded_frames(clip.video)]
                strip({k: v[0] for k, v in faces.items()}, clip_photos(source, clip.motions, PHOTO_PX)[0],
                      args.strength, args.strip)
    costs = [fusion_cost(size) for size in args.cost_sizes]
    print(_table(rows))
    for cost in costs:
        print(f"released GPEN-{cost['size']} config: fusion {cost['fusion_ms_per_face']:.0f} ms/face, "
              f"state {cost['state_mb_per_track']:.0f} MB/track")
    if args.json:
        args.json.write_text(json.dumps(dict(rows=rows, costs=costs), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
