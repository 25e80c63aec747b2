"""Video I/O throughput and memory: decode-only and decode+encode fps at 720p and
1080p, and peak RSS of a full transcode of a 10 s vs a 60 s clip (streaming means they
should be about equal).

    python bench/io.py            # makes its clips in a temp folder, prints a table
    python bench/io.py --seconds 2 --rss-height 240   # quicker, rougher

Each measurement runs in its own subprocess so its peak RSS is its own.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the clip maker shared with the tests


def synthetic_frames(width: int, height: int, count: int, seed: int = 0):
    """Textured frames panning across a noise field: cheap to make, not trivial to code."""
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, (height, width + count * 2, 3), dtype=np.uint8)
    field = (field // 4 + np.linspace(0, 191, width + count * 2, dtype=np.uint8)[None, :, None])
    for i in range(count):
        yield np.ascontiguousarray(field[:, i * 2 : i * 2 + width])


def make_clip(path: Path, width: int, height: int, seconds: float, fps: int = 25) -> Path:
    from media import write_video

    frames = synthetic_frames(width, height, round(seconds * fps))
    return write_video(path, frames, fps=fps, audio="aac", options={"preset": "ultrafast", "crf": "23"})


def measure(mode: str, path: str, out: str) -> dict:
    """Run in the child process: read (and encode) the whole clip once."""
    from vidgpen.io.reader import open_video
    from vidgpen.io.writer import VideoWriter
    from vidgpen.stats import peak_rss_mb

    started = time.perf_counter()
    frames = 0
    with open_video(path) as reader:
        if mode == "decode":
            for _ in reader:
                frames += 1
        else:
            with VideoWriter(out, reader.info, overwrite=True) as writer:
                for frame in reader:
                    writer.write(frame)
                    frames += 1
    seconds = time.perf_counter() - started
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds, "peak_rss_mb": peak_rss_mb()}


def run_child(mode: str, path: Path, out: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), str(out)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4, help="length of the 720p/1080p clips")
    parser.add_argument("--rss-height", type=int, default=360, help="frame height of the 10 s / 60 s clips")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="vidgpen-bench-io-") as tmp:
        folder = Path(tmp)
        for label, (w, h) in {"720p": (1280, 720), "1080p": (1920, 1080)}.items():
            clip = make_clip(folder / f"{label}.mp4", w, h, args.seconds)
            for mode in ("decode", "transcode"):
                r = run_child(mode, clip, folder / f"{label}-out.mp4")
                rows.append((f"{label} {args.seconds:g}s", mode, r))
        h = args.rss_height
        w = (h * 16 // 9) // 2 * 2
        for seconds in (10, 60):
            clip = make_clip(folder / f"rss{seconds}.mp4", w, h, seconds)
            r = run_child("transcode", clip, folder / f"rss{seconds}-out.mp4")
            rows.append((f"{h}p {seconds}s", "transcode", r))

    print(f"{'clip':<14}{'mode':<11}{'frames':>7}{'fps':>8}{'peak RSS MB':>13}")
    for clip, mode, r in rows:
        print(f"{clip:<14}{mode:<11}{r['frames']:>7}{r['fps']:>8.1f}{r['peak_rss_mb']:>13.0f}")
    print("decode: PyAV threaded decode + RGB conversion; transcode: also libx264 crf 18 "
          "'medium' of the decoded frames with AAC copied (vidgpen defaults)")


if __name__ == "__main__":
    main()
