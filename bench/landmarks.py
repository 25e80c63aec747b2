"""Landmark accuracy and steadiness on real talking-head footage, for each temporal stage.

    python bench/landmarks.py                      # 11 clips × 6 degradations, 60 frames each
    python bench/landmarks.py --sweep 0.5 1 2 4    # the smoother's strength, on the chosen clips

Every clip of ``../shared/video`` (its first ``--frames`` frames) is degraded six ways
(``tests/real_landmarks.py``: 35% scale; half scale and blurred, grainy, JPEG q12, x264
CRF 38, or interlaced DV-like) and run through the face stage on the copy. Its landmarks
are scored against dlib's 68-point model (as 5 points) and retinaface-onnx, each run on
the clean source: NME (mean and p95, % of the eye distance) and jitter (the points'
acceleration, and that of their error). Rows: the raw detector, each temporal stage alone,
the default (also detecting every 2 and 4 frames), and the code before issue 21 (``--baseline``,
run from ``git archive`` in a subprocess on the same detections). Defaults were chosen on
the ``CHOSEN`` clips; the others are held out. Cost: the stage's time per face, detection
excluded. References are cached in ``--cache``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from real_landmarks import (  # noqa: E402
    DEGRADATIONS,
    REFERENCES,
    Replay,
    Scores,
    degraded,
    followed,
    landmarks_of,
    read_clip,
    references,
    run_stage,
    score,
)

VIDEO = REPO.parent / "shared" / "video"
CHOSEN = ("talk_d0", "talk_d10", "talk_d13", "talk_d18", "talk_d20", "talk_s20")
HELD_OUT = ("talk_d11", "talk_d14", "talk_d19", "talk_s13", "talk_s29")
BASELINE = "e97af571a163804a8486ee7a6448a7d274811fce"  # main before issue 21 (resolved with git rev-parse)
# row → RestoreConfig fields that differ from the default (None: the default's run, read raw)
STAGES: dict[str, dict | None] = {
    "raw detector": None,
    "registration alone": dict(register=True, smooth=0),
    "Kalman smoothing alone": dict(register=False),
    "registration + Kalman": dict(register=True),
    "default": {},
    "default, --detect-every 2": dict(detect_every=2),
    "default, --detect-every 4": dict(detect_every=4),
}
OLD_STAGES = {"before: default (register + quadratic)": dict(register=True), "before: --no-register": dict(register=False)}


def stage_faces(replay: Replay, frames: list[np.ndarray], settings: dict, strength: float | None = None):
    """Run one stage as a run with ``settings`` plans it; (faces per frame, raw faces per frame,
    seconds, faces emitted)."""
    from vidgpen.config import RestoreConfig
    from vidgpen.faces.analyze import make_analyzer
    from vidgpen.plan.run_plan import face_settings

    analyzer = make_analyzer(face_settings(RestoreConfig(**settings), "cpu", "gpen"), detector=replay)
    if strength is not None:
        analyzer.smoother = replace(analyzer.smoother, strength=strength)
    result = run_stage(frames, analyzer)
    seconds = sum(v for stage, v in analyzer.times.seconds.items() if stage != "detect")
    faces = sum(len(r.faces) for r in result)
    return landmarks_of(result), landmarks_of(result, raw=True), seconds, faces


class OldCode:
    """The face stage of git revision ``rev``, in a subprocess fed the same detections."""

    def __init__(self, rev: str):
        self.folder = tempfile.TemporaryDirectory(prefix="vidgpen-before-")
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "vidgpen"], check=True, capture_output=True).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
            tar.extractall(self.folder.name, filter="data")
        env = {**os.environ, "PYTHONPATH": self.folder.name}
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def run(self, frames: list[np.ndarray], replay: Replay, settings: dict) -> list[list[np.ndarray]]:
        detections = [[(d.box, d.score, d.landmarks) for d in replay.detect(f)] for f in frames]
        pickle.dump((frames, detections, settings), self.proc.stdin)
        self.proc.stdin.flush()
        return pickle.load(self.proc.stdout)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        self.folder.cleanup()


def worker() -> None:
    """The subprocess side of :class:`OldCode`: whatever ``vidgpen`` PYTHONPATH names, set as
    its ``make_analyzer`` set it from a default RestoreConfig."""
    from vidgpen.config import RestoreConfig
    from vidgpen.faces.analyze import FaceAnalyzer
    from vidgpen.faces.detect import Detection

    config = RestoreConfig()
    defaults = dict(lookahead=config.smooth, max_missed=config.max_missed, min_face=config.min_face)

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            frames, detections, settings = pickle.load(stdin)
        except EOFError:
            return
        replay = Replay("before", frames, [[Detection(*d) for d in ds] for ds in detections])
        result = run_stage(frames, FaceAnalyzer(replay, **defaults, **settings))
        pickle.dump(landmarks_of(result), stdout)
        stdout.flush()


def clip_references(name: str, frames: list[np.ndarray], cache: Path, start: int) -> dict[str, np.ndarray]:
    path = cache / f"{name}_{start}_{len(frames)}.npz"
    if path.is_file():
        with np.load(path) as data:
            return {k: data[k] for k in REFERENCES}
    refs = references(frames)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **refs)
    return refs


def bench_clip(name: str, args: argparse.Namespace, old: OldCode | None, totals: dict) -> dict[str, Scores]:
    """Score every row on one clip's degraded copies; add to ``totals[row][reference]`` lists.
    Returns the clip's scores against dlib, by row."""
    from vidgpen.faces.detect import make_detector

    frames, _ = read_clip(VIDEO / f"{name}.mp4", args.frames, args.start)
    refs = clip_references(name, frames, Path(args.cache), args.start)
    detector = make_detector(args.detector)
    clip_scores: dict[str, list[Scores]] = {}
    for kind in args.degradations:
        copy, scale = degraded(frames, kind)
        replay = Replay(detector.name, copy, [detector.detect(f) for f in copy])
        rows = {}
        if args.sweep:
            for strength in args.sweep:
                faces, _, seconds, count = stage_faces(replay, copy, {}, strength)
                rows[f"strength {strength:g}"] = (faces, seconds, count)
        else:
            for row, settings in STAGES.items():
                if settings is not None:
                    faces, raw, seconds, count = stage_faces(replay, copy, settings)
                    rows[row] = (faces, seconds, count)
                    if row == "default":
                        rows["raw detector"] = (raw, 0.0, 0)
            for row, settings in OLD_STAGES.items() if old else ():
                rows[row] = (old.run(copy, replay, settings), 0.0, 0)
        for row, (faces, seconds, count) in rows.items():
            entry = totals.setdefault(row, {"seconds": 0.0, "faces": 0, **{r: [] for r in REFERENCES}})
            entry["seconds"] += seconds
            entry["faces"] += count
            for ref_name, ref in refs.items():
                entry[ref_name].append(score(followed(faces, ref, scale), ref, scale))
            clip_scores.setdefault(row, []).append(entry["dlib"][-1])
    return {row: Scores.join(parts) for row, parts in clip_scores.items()}


def print_table(title: str, totals: dict) -> None:
    print(f"\n{title}\n")
    print("| landmarks | NME vs dlib % (p95) | NME vs retinaface % (p95) | jitter (error's) vs dlib | cost ms/face |")
    print("| --- | --- | --- | --- | --- |")
    for row, entry in totals.items():
        cells = []
        for ref_name in REFERENCES:
            s = Scores.join(entry[ref_name]).summary()
            cells.append(f"{s['nme']:.2f} ({s['p95']:.2f})")
        s = Scores.join(entry["dlib"]).summary()
        cost = f"{1e3 * entry['seconds'] / entry['faces']:.2f}" if entry["faces"] else "–"
        print(f"| {row} | {cells[0]} | {cells[1]} | {s['jitter']:.2f} ({s['error_jitter']:.2f}) | {cost} |")


def print_clips(per_clip: dict[str, dict[str, Scores]]) -> None:
    """Each clip's raw detector against the default, vs dlib: NME and jitter, and the
    reference's own jitter (the real motion's acceleration, which no smoother should remove)."""
    print("\n| clip | NME raw → default % | jitter raw → default |")
    print("| --- | --- | --- |")
    for name, rows in per_clip.items():
        if "raw detector" in rows and "default" in rows:
            raw, final = rows["raw detector"].summary(), rows["default"].summary()
            print(f"| {name} | {raw['nme']:.2f} → {final['nme']:.2f} | {raw['jitter']:.2f} → {final['jitter']:.2f} "
                  f"({raw['jitter'] / final['jitter']:.1f}×) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--clips", nargs="*", default=list(CHOSEN + HELD_OUT))
    parser.add_argument("--degradations", nargs="*", default=list(DEGRADATIONS))
    parser.add_argument("--detector", default="retinaface-onnx")
    parser.add_argument("--baseline", default=BASELINE[:7], help="git revision of the 'before' rows ('' to skip)")
    parser.add_argument("--sweep", type=float, nargs="*", help="only the default, at these smoother strengths")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "vidgpen-bench-landmarks"))
    args = parser.parse_args()
    if args.worker:
        return worker()
    old = OldCode(args.baseline) if args.baseline and not args.sweep else None
    started = time.perf_counter()
    groups = {"chosen": {}, "held out": {}}
    per_clip = {}
    try:
        for name in args.clips:
            per_clip[name] = bench_clip(name, args, old, groups["chosen" if name in CHOSEN else "held out"])
            print(f"{name} done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
    finally:
        if old:
            old.close()
    for group, totals in groups.items():
        if totals:
            print_table(f"{group} clips ({', '.join(c for c in args.clips if (c in CHOSEN) == (group == 'chosen'))}), "
                        f"{args.frames} frames from {args.start}, detector {args.detector}", totals)
    print_clips(per_clip)


if __name__ == "__main__":
    main()
