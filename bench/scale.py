"""How `--engine ray` scales: a many-segment clip with 1 and 2 workers, the per-segment
overhead, and the speed-up it projects for a feature film at each GPEN size.

    python bench/scale.py                                # 12 s clip, 1 s segments, tiny GPEN
    python bench/scale.py --seconds 20 --segment 2 --sizes 256,512 --json bench/out/scale.json

Measured here, on whatever this machine is:
- wall time of the clip restored on Ray (started by vidgpen on this machine) with 1 and
  2 workers, and their ratio; on a 2-core machine both workers share the same two cores,
  so no speed-up can show and the ratio says only what the second worker costs;
- the per-segment overhead: a local ``--resume`` run minus a plain run, per segment (the
  2 × 2 s of context decoded and tracked, a pipeline set up per segment), and the fixed
  cost of a Ray run (start, workers up, weights loaded, pre-flight) beside the local run;
- per GPEN size: one face's forward and the weights' load (once per worker), random
  weights in the official configuration (speed does not depend on the weights).

The projection: a film of ``--film-minutes`` at 25 fps, one face per frame, in 60 s
segments; a segment costs its frames' analysis and GPEN plus its context's analysis, a
worker its start and one load, and W workers take ceil(segments / W) segments in turn.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from face_clips import load_face, make_clip, smooth_path  # noqa: E402
from gpen_checkpoints import make_gpen_checkpoint  # noqa: E402
from media import write_video  # noqa: E402

from vidgpen import Pipeline, RestoreConfig  # noqa: E402
from vidgpen.api import run_restore  # noqa: E402
from vidgpen.cluster.restore import RayOptions  # noqa: E402
from vidgpen.models.network.gpen import GPEN  # noqa: E402
from vidgpen.models.runtime.factory import load_restorer  # noqa: E402
from vidgpen.pipeline.segments import CONTEXT_S, run_resumable  # noqa: E402

FACES = REPO.parent / "shared" / "faces"
ANALYSIS = ("decode", "detect", "track", "register", "smooth", "align")
KEYS = REPO.parent / "shared" / "fixtures" / "gpen"  # the released models' configurations


def make_inputs(folder: Path, seconds: int, fps: int) -> tuple[Path, Path]:
    face = load_face(FACES / "ffhq_00003.png", 96)
    clip = make_clip([(face, smooth_path(120, 90, dx=30, dy=10, period=30))], seconds * fps, (240, 180), codec=None)
    return (write_video(folder / "clip.mp4", clip.frames, fps=fps, audio="aac"),
            make_gpen_checkpoint(folder / "tiny-gpen.pth", size=64))


def timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    report = run()
    return time.perf_counter() - started, report


def measure_clip(video: Path, config: RestoreConfig, segment: float, fps: int, folder: Path) -> dict:
    plain_s, plain = timed(lambda: Pipeline(config).run(video, folder / "plain.mkv"))
    local_s, local = timed(lambda: run_resumable(config, video, folder / "local.mkv", segment))
    walls = {}
    for workers in (1, 2):
        walls[workers], report = timed(lambda w=workers: run_restore(config, video, folder / f"ray{w}.mkv",
                                                                     resume_segments=segment, ray=RayOptions(jobs=w)))
    count = len(local.segments)
    analysis = sum(plain.stage_seconds.get(stage, 0.0) for stage in ANALYSIS) / plain.frames
    overhead = (local_s - plain_s) / count
    context = context_frames(local.segments, plain.frames / fps, fps) * analysis
    return {"frames": plain.frames, "segments": count, "plain_s": round(plain_s, 2), "local_resume_s": round(local_s, 2),
            "ray_1_worker_s": round(walls[1], 2), "ray_2_workers_s": round(walls[2], 2),
            "ratio_1_over_2": round(walls[1] / walls[2], 3),
            "segment_overhead_s": round(overhead, 3), "setup_s_per_segment": round(max(overhead - context, 0.0), 3),
            "ray_fixed_s": round(walls[1] - local_s, 2), "analysis_s_per_frame": round(analysis, 4),
            "nodes": sorted({s["node"][:8] for s in report.segments}),
            "workers_seen": sorted({s["worker"] for s in report.segments})}


def gpen_costs(size: int, folder: Path) -> dict:
    """The restorer a worker runs: its load from disk (once per worker) and one face's restore
    (the second of two: the first warms up), random weights in the released configuration."""
    path = folder / f"gpen{size}.pth"
    config = json.loads((KEYS / f"gpen-bfr-{size}.keys.json").read_text())["config"]
    torch.save(GPEN(**config).state_dict(), path)
    load, restorer = timed(lambda: load_restorer(str(path), device="cpu", dtype="float32", batch_size=1))
    face = np.random.default_rng(0).integers(0, 256, (1, restorer.in_size, restorer.in_size, 3), dtype=np.uint8)
    restorer.restore(face)
    forward, _ = timed(lambda: restorer.restore(face))
    path.unlink()
    return {"size": size, "forward_s": round(forward, 3), "load_s": round(load, 2)}


def context_frames(segments: list[dict], duration: float, fps: int) -> float:
    """Frames decoded and tracked but not restored, per segment, in a segmented run of the clip."""
    seconds = sum(min(CONTEXT_S, s["start"]) + (min(CONTEXT_S, duration - s["end"]) if s["end"] else 0.0)
                  for s in segments)
    return seconds * fps / len(segments)


def projection(clip: dict, gpen: dict, film_minutes: float, workers: list[int], analysis: float) -> dict:
    """Film wall time and speed-up per worker count, from the measured costs.

    A 60 s segment at 25 fps with one face a frame: 1500 × (analysis + forward); its overhead:
    the context's 2 × 2 s × 25 frames analysed plus the clip's measured set-up per segment.
    """
    fps, segment = 25, 60.0
    segments = math.ceil(film_minutes * 60 / segment)
    work = segment * fps * (analysis + gpen["forward_s"])
    overhead = 2 * CONTEXT_S * fps * analysis + clip["setup_s_per_segment"]
    fixed = clip["ray_fixed_s"] + gpen["load_s"]
    walls = {w: fixed + math.ceil(segments / w) * (work + overhead) for w in workers}
    return {"size": gpen["size"], "segment_work_s": round(work, 1), "segment_overhead_s": round(overhead, 1),
            "overhead_share": round(overhead / (work + overhead), 4), "film_hours_1_worker": round(walls[1] / 3600, 1),
            "speedup": {w: round(walls[1] / walls[w], 2) for w in workers}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--segment", type=float, default=1.0)
    parser.add_argument("--sizes", default="256,512,1024,2048")
    parser.add_argument("--film-minutes", type=float, default=100.0)
    parser.add_argument("--analysis-s", type=float, default=None,
                        help="analysis seconds per frame for the projection (default: as measured on the clip)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidgpen-scale-") as tmp:
        folder = Path(tmp)
        video, weights = make_inputs(folder, args.seconds, args.fps)
        config = RestoreConfig(weights=str(weights), dtype="float32", codec="ffv1")
        clip = measure_clip(video, config, args.segment,
                            args.fps, folder)
        gpen = [gpen_costs(int(size), folder) for size in args.sizes.split(",")]
    analysis = args.analysis_s if args.analysis_s is not None else clip["analysis_s_per_frame"]
    workers = [1, 2, 4, 8, 16, 32]
    curves = [projection(clip, g, args.film_minutes, workers, analysis) for g in gpen]
    result = {"cpu_threads": torch.get_num_threads(), "clip": clip, "gpen": gpen, "projection": curves}
    print(json.dumps(result, indent=1))
    print(f"\nclip: {clip['frames']} frames in {clip['segments']} segments; Ray wall 1 worker "
          f"{clip['ray_1_worker_s']} s, 2 workers {clip['ray_2_workers_s']} s (ratio {clip['ratio_1_over_2']}) "
          f"on {torch.get_num_threads()} threads")
    if torch.get_num_threads() <= 2:
        print("this machine has 2 cores or fewer: both workers share them, so the ratio cannot show a speed-up")
    print(f"per segment: {clip['segment_overhead_s']} s overhead on the clip ({clip['setup_s_per_segment']} s set-up "
          f"+ context analysis); Ray's fixed cost {clip['ray_fixed_s']} s")
    print(f"projected, {args.film_minutes:g}-minute film, 60 s segments, {analysis:.4f} s analysis/frame:")
    print("size  forward  load  overhead/segment  " + "  ".join(f"{w:>5}w" for w in workers))
    for g, c in zip(gpen, curves):
        print(f"{c['size']:>4}  {g['forward_s']:>6.3f}s {g['load_s']:>4.1f}s  {c['segment_overhead_s']:>6.1f}s "
              f"({100 * c['overhead_share']:.1f}%)   " + "  ".join(f"{c['speedup'][w]:>5.2f}x" for w in workers))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
