"""End-to-end pipeline benchmark: per-stage time, overhead beside GPEN, memory vs length,
and the same clip through a naive loop (what frame-by-frame tools do).

    python bench/pipeline.py                       # GPEN-512 (random weights), 720p, 2 faces
    python bench/pipeline.py --size 256 --seconds 4 --json bench/out/pipeline.json

The clip is made here: real FFHQ faces from ../shared/faces moving across a 1280×720
frame, degraded, with an AAC track. GPEN uses random weights in the official config of
the size asked (speed does not depend on the weights). Overhead is the share of wall
time not spent in the GPEN forward. Peak RSS is measured in fresh processes for a short
and a 10× longer clip with a tiny GPEN, since memory growth, not the model, is in question.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from face_clips import background, degrade, load_face, similarity  # noqa: E402
from media import write_video  # noqa: E402

from vidgpen.config import RestoreConfig  # noqa: E402
from vidgpen.faces.align import warp_face  # noqa: E402
from vidgpen.faces.analyze import FaceAnalyzer  # noqa: E402
from vidgpen.faces.blend import FacePaste, paste_faces  # noqa: E402
from vidgpen.faces.detect import make_detector  # noqa: E402
from vidgpen.io.reader import open_video  # noqa: E402
from vidgpen.io.writer import VideoWriter  # noqa: E402
from vidgpen.models.network.gpen import GPEN  # noqa: E402
from vidgpen.models.runtime.memory import keep_freed_memory  # noqa: E402
from vidgpen.models.runtime.torch_restorer import FaceRestorer  # noqa: E402
from vidgpen.pipeline import Pipeline  # noqa: E402

FACES = REPO.parent / "shared" / "faces"
KEYS = REPO.parent / "shared" / "fixtures" / "gpen"


def frames_720p(seconds: float, fps: int, faces: int, seed: int = 0):
    """Yield degraded 1280×720 frames with ``faces`` FFHQ faces on smooth paths (streamed)."""
    width, height = 1280, 720
    rng = np.random.default_rng(seed)
    sources = [load_face(FACES / f"ffhq_0000{i}.png", 360) for i in range(faces)]
    alpha = np.zeros((360, 360), np.float32)
    import cv2

    cv2.ellipse(alpha, (180, 170), (120, 160), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 12)
    bg = background(width, height, seed)
    for t in range(round(seconds * fps)):
        canvas = bg.astype(np.float32)
        for i, src in enumerate(sources):
            cx = width * (i + 1) / (faces + 1) + 60 * np.sin(2 * np.pi * t / (3 * fps) + i)
            cy = height / 2 + 40 * np.sin(2 * np.pi * t / (4 * fps) + 2 * i)
            m = similarity((360, 360), cx, cy, 6 * np.sin(t / fps + i), 0.8 + 0.1 * np.sin(t / (2 * fps)))
            warped = cv2.warpAffine(src.astype(np.float32), m, (width, height), flags=cv2.INTER_LINEAR)
            a = cv2.warpAffine(alpha, m, (width, height))[..., None]
            canvas = canvas * (1 - a) + warped * a
        yield degrade(np.clip(canvas, 0, 255).astype(np.uint8), rng)


def random_gpen(size: int, path: Path) -> Path:
    """Random weights in the released config of that size (from the keys fixture)."""
    config = json.loads((KEYS / f"gpen-bfr-{size}.keys.json").read_text())["config"] if size >= 256 else dict(
        size=size, style_dim=64, n_mlp=2, channel_multiplier=2, narrow=0.125)
    torch.manual_seed(0)
    torch.save(GPEN(**config).state_dict(), path)
    return path


def naive_loop(video: Path, output: Path, weights: Path, config: RestoreConfig, fast: bool) -> float:
    """Detect every frame, raw landmarks, one face per GPEN call, no threads.

    ``fast=False`` runs the reference GPEN forward, as the original code (and tools that
    embed it) do; ``fast=True`` isolates what the pipeline itself adds. Each runs in its
    own process, with glibc's allocator defaults (a plain script) or vidgpen's setting.
    """
    restorer = FaceRestorer.load(str(weights), device=config.device, dtype=config.dtype, batch_size=1, fast=fast)
    restorer.restore(np.zeros((1, restorer.in_size, restorer.in_size, 3), np.uint8))  # warm-up, not timed
    started = time.perf_counter()
    detector = make_detector(config.detector, max_side=config.detect_max_side)
    analyzer = FaceAnalyzer(detector, detect_every=1, lookahead=0, template=config.template)
    with open_video(video) as reader, VideoWriter(output, reader.info, overwrite=True) as writer:
        for frame in reader:
            for item in analyzer.push(frame):
                pastes = []
                for face in item.faces:
                    affine = face.affine(restorer.in_size, config.template)
                    crop = warp_face(item.frame.image, affine, restorer.in_size)
                    pastes.append(FacePaste(restorer.restore(crop[None])[0], crop, affine))
                item.frame.changed.extend(paste_faces(item.frame.image, pastes, template=config.template))
                writer.write(item.frame)
    return time.perf_counter() - started


def peak_rss_mb(video: Path, weights: Path, out: Path) -> float:
    code = ("import sys\nfrom vidgpen import restore_video\n"
            "restore_video(sys.argv[1], sys.argv[2], weights=sys.argv[3], overwrite=True, detect_every=5)\n"
            "from vidgpen.stats import peak_rss_mb\nprint(peak_rss_mb())")
    run = subprocess.run([sys.executable, "-c", code, str(video), str(out), str(weights)], capture_output=True,
                         text=True, check=True)
    return float(run.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="GPEN size (random weights, released config)")
    parser.add_argument("--seconds", type=float, default=2.0, help="clip length for the speed runs")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--faces", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rss-seconds", type=float, nargs=2, default=(10.0, 100.0))
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--naive-allocators", nargs="+", choices=("glibc", "keep"), default=["glibc", "keep"],
                        help="run the naive loops with glibc's default allocator (as a plain script runs), "
                        "with vidgpen's keep_freed_memory, or both")
    parser.add_argument("--naive-child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.naive_child:
        video, output, weights, label, allocator = args.naive_child
        if allocator == "keep":
            keep_freed_memory()
        config = RestoreConfig(weights=weights)
        print(naive_loop(Path(video), Path(output), Path(weights), config, fast=label == "fast"))
        return
    keep_freed_memory()  # as the `vidgpen` command does, before any thread

    results: dict = {"size": args.size, "faces_per_frame": args.faces, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="vidgpen-bench-") as tmp:
        tmp = Path(tmp)
        video = write_video(tmp / "clip.mp4", frames_720p(args.seconds, args.fps, args.faces), fps=args.fps,
                            audio="aac")
        weights = random_gpen(args.size, tmp / f"gpen-{args.size}.pth")
        config = RestoreConfig(weights=str(weights), batch_size=args.batch_size)

        warm = FaceRestorer.load(str(weights), device=config.device, dtype=config.dtype)  # cached for the run
        warm.restore(np.zeros((args.batch_size, warm.in_size, warm.in_size, 3), np.uint8))  # warm-up, not timed
        report = Pipeline(config).run(video, tmp / "out.mp4")
        gpen = report.stage_seconds.get("restore", 0.0)
        results["pipeline"] = {"wall_s": report.wall_seconds, "frames": report.frames, "faces": report.faces,
                               "stage_s": report.stage_seconds, "gpen_s": gpen,
                               "overhead_share": round(1 - gpen / report.wall_seconds, 4),
                               "s_per_face": round(report.wall_seconds / max(report.faces, 1), 3)}
        print(f"pipeline  GPEN-{args.size}: {report.frames} frames, {report.faces} faces, "
              f"wall {report.wall_seconds:.1f} s, GPEN forward {gpen:.1f} s, "
              f"overhead {100 * results['pipeline']['overhead_share']:.1f}% of wall")
        for stage, seconds in sorted(report.stage_seconds.items(), key=lambda kv: -kv[1]):
            print(f"    {stage:8s} {seconds:8.2f} s")

        if not args.skip_naive:
            for label in ("reference", "fast"):
                for allocator in args.naive_allocators:
                    naive = float(subprocess.run(
                        [sys.executable, __file__, "--naive-child", str(video), str(tmp / "naive.mp4"), str(weights),
                         label, allocator], capture_output=True, text=True, check=True).stdout.split()[-1])
                    speedup = naive / report.wall_seconds
                    results[f"naive_{label}_gpen_{allocator}"] = {"wall_s": round(naive, 3), "speedup": round(speedup, 2)}
                    print(f"naive loop, {label} GPEN, {allocator} allocator: wall {naive:.1f} s "
                          f"→ pipeline is {speedup:.2f}× faster")

        if not args.skip_rss:
            tiny = random_gpen(64, tmp / "tiny.pth")
            rss = {}
            for seconds in args.rss_seconds:
                clip = write_video(tmp / f"rss{seconds:g}.mp4", frames_720p(seconds, 25, args.faces), fps=25,
                                   audio="aac")
                rss[f"{seconds:g}s"] = round(peak_rss_mb(clip, tiny, tmp / "rss-out.mp4"), 1)
                clip.unlink()
            short, long = rss.values()
            results["peak_rss_mb"] = rss
            print(f"peak RSS (720p, tiny GPEN): {rss} → {100 * (long / short - 1):+.1f}%")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
