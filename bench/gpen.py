"""GPEN forward speed: reference vs fast path, fp32 vs bf16, per face, against the machine's GEMM rate.

    python bench/gpen.py                              # 256/512/1024/2048, table on stdout
    python bench/gpen.py --paths fast fast-bf16 --batches 1   # bf16 vs fp32, each against its own GEMM
    python bench/gpen.py --quality --sizes 256 512    # bf16's cost in output levels and PSNR vs fp32
    python bench/gpen.py --sizes 512 --repeats 5 --json gpen.json
    python bench/gpen.py --sizes 512 --paths fast fast-bf16 --batches 1 4 8
    python bench/gpen.py --sizes 256 512 --paths fast onnx --batches 1 4   # ONNX Runtime (CPU)
    python bench/gpen.py --sizes 256 512 --paths fast fast-compiled --batches 1   # torch.compile
    python bench/gpen.py --sizes 512 2048 --paths fast --batches 1 --allocator glibc   # without vidgpen's heap setting

Models are the released configs (read from ../shared/fixtures/gpen/gpen-bfr-*.keys.json)
with random weights: speed does not depend on the values. Each (size, path, batch) runs
in its own subprocess so its peak RSS is its own; it times ``--repeats`` forwards after
one warm-up and keeps the fastest (other processes share the CPU: the minimum is the
least disturbed), then times a 2048³ matmul in the path's own dtype (best of 5) in the
same process as the yardstick of what the CPU delivered meanwhile: bf16 rows are measured
against the bf16 GEMM, fp32 rows against the fp32 one.

FLOPs are those of the reference forward counted by ``torch.utils.flop_counter``
(convolutions and matmuls, 2 per multiply-add; elementwise ops not counted). The fast
path is credited with the same count, so GFLOP/s compare like with like.

``onnx`` exports the same random model once per size (in this process, before the
children; not timed) and times ONNX Runtime's CPU session on it in the child.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vidgpen.stats import peak_rss_mb

REPO = Path(__file__).resolve().parents[1]
KEYS = REPO.parent / "shared" / "fixtures" / "gpen"
PATHS = ("reference", "fast", "fast-bf16", "fast-compiled", "onnx")
# How the child's memory allocator treats GPEN's activations: "keep" is what `vidgpen`
# does (vidgpen.models.runtime.memory.keep_freed_memory); "glibc" the defaults; "thp" the
# defaults plus torch's transparent-huge-page allocations.
ALLOCATORS = ("keep", "glibc", "thp")
DEFAULT_BATCHES = {256: [1, 4, 16], 512: [1, 4, 8], 1024: [1, 2], 2048: [1]}


def config_of(size: int) -> dict:
    return json.loads((KEYS / f"gpen-bfr-{size}.keys.json").read_text())["config"]


def reference_gflop(size: int) -> float:
    """FLOPs of one face through the reference model, counted on the meta device (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    from vidgpen.models.network.gpen import GPEN

    with torch.device("meta"):
        model = GPEN(**config_of(size)).eval()
        x = torch.empty(1, 3, size, size)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / 1e9


def gemm_gflops(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32, budget_s: float = 2.0) -> float:
    """Best of ``repeats`` n³ matmuls, or as many as ``budget_s`` allows (at least one): where bf16 is
    emulated one 2048³ product takes ~40 s on a 2-core CPU. The warm-up is a 256³ product."""
    small = torch.randn(256, 256, dtype=dtype)
    small @ small
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    times = [_timed(lambda: a @ b)]
    while len(times) < repeats and sum(times) < budget_s:
        times.append(_timed(lambda: a @ b))
    return 2 * n**3 / min(times) / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def random_model(size: int):
    from vidgpen.models.network.gpen import GPEN

    torch.manual_seed(0)
    return GPEN(**config_of(size)).eval()


def measure(size: int, path: str, batch: int, repeats: int, allocator: str, onnx_file: str | None = None) -> dict:
    """In the child: build, warm up, time. Returns seconds per face (best run) and peak RSS."""
    from vidgpen.models.network.gpen_fast import FastGPEN
    from vidgpen.models.runtime.memory import keep_freed_memory

    if allocator == "keep":
        keep_freed_memory()

    x = torch.rand(batch, 3, size, size) * 2 - 1
    dtype = torch.bfloat16 if path.endswith("bf16") else torch.float32
    if path == "onnx":
        from vidgpen.models.runtime.onnx_restorer import OnnxRestorer

        session = OnnxRestorer(onnx_file, providers=["CPUExecutionProvider"]).session
        inputs = {session.get_inputs()[0].name: x.numpy()}
        step = lambda: session.run(None, inputs)  # noqa: E731
    else:
        model = random_model(size).to(dtype)
        forward = model if path == "reference" else FastGPEN(model)
        if path == "fast-compiled":
            forward = torch.compile(forward, dynamic=False)  # compiled by the warm-up run
        x = x.to(dtype)
        step = lambda: forward(x)  # noqa: E731
    with torch.inference_mode():
        first = _timed(step)
        times = [_timed(step) for _ in range(repeats)]
    return {
        "size": size,
        "path": path,
        "batch": batch,
        "first_s": first / batch,
        "s_per_face": min(times) / batch,
        "runs_s": times,
        "gemm_gflops": gemm_gflops(dtype=dtype),
        "gemm_dtype": str(dtype).removeprefix("torch."),
        "peak_rss_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
    }


def bf16_quality(size: int, count: int) -> dict:
    """bf16 against fp32 on the same (random, released-config) weights and real FFHQ faces: the uint8
    outputs' max and mean absolute difference and their PSNR. Hardware-independent: bf16 rounds the
    same on every CPU, only its speed differs."""
    import cv2
    import numpy as np

    from vidgpen.models.runtime.torch_restorer import FaceRestorer

    paths = sorted((REPO.parent / "shared" / "faces").glob("ffhq_*.png"))[:count]
    faces = np.stack([cv2.resize(cv2.imread(str(p))[:, :, ::-1], (size, size), interpolation=cv2.INTER_AREA)
                      for p in paths])
    fp32 = FaceRestorer(random_model(size), device="cpu", dtype="fp32").restore(faces).astype(np.float64)
    bf16 = FaceRestorer(random_model(size), device="cpu", dtype="bf16").restore(faces).astype(np.float64)
    diff = np.abs(bf16 - fp32)
    mse = float((diff**2).mean())
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    return {"faces": len(paths), "max": float(diff.max()), "mean": float(diff.mean()), "psnr": psnr}


def _quality_line(size: int, q: dict) -> str:
    return f"{size:>5} {q['faces']:>5} {q['max']:>8.0f} {q['mean']:>9.2f} {q['psnr']:>8.1f}"


def run_child(size: int, path: str, batch: int, repeats: int, allocator: str, onnx_file: Path | None = None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        str(size),
        path,
        str(batch),
        "--repeats",
        str(repeats),
        "--allocator",
        allocator,
        *(["--onnx", str(onnx_file)] if onnx_file else []),
    ]
    env = {**os.environ, "THP_MEM_ALLOC_ENABLE": "1"} if allocator == "thp" else None
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"size": size, "path": path, "batch": batch, "error": tail[0]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[256, 512, 1024, 2048],
        choices=[256, 512, 1024, 2048],
    )
    parser.add_argument("--paths", nargs="+", default=["reference", "fast"], choices=PATHS)
    parser.add_argument(
        "--batches",
        type=int,
        nargs="+",
        help="batch sizes to try (default: a few per size)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs after the warm-up (≥2048: at most 2)",
    )
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument("--quality", action="store_true",
                        help="instead of speed: bf16 against fp32 on the same weights and real faces")
    parser.add_argument("--faces", type=int, default=2, help="with --quality: FFHQ portraits per size")
    parser.add_argument(
        "--allocator",
        default="keep",
        choices=ALLOCATORS,
        help="keep: freed activations stay mapped, as `vidgpen` runs (default); glibc: the defaults; "
        "thp: the defaults plus THP_MEM_ALLOC_ENABLE=1",
    )
    parser.add_argument("--child", nargs=3, metavar=("SIZE", "PATH", "BATCH"), help=argparse.SUPPRESS)
    parser.add_argument("--onnx", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        size, path, batch = args.child
        print(json.dumps(measure(int(size), path, int(batch), args.repeats, args.allocator, args.onnx)))
        return 0
    if args.quality:
        print(f"{'size':>5} {'faces':>5} {'max diff':>8} {'mean diff':>9} {'PSNR dB':>8}  (bf16 vs fp32, levels of 255)")
        for size in args.sizes:
            print(_quality_line(size, bf16_quality(size, args.faces)), flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-gpen-") as exports:  # the ONNX exports, if any
        rows = _run_all(args, Path(exports))
    print()
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def _run_all(args: argparse.Namespace, exports: Path) -> list[dict]:
    rows = []
    for size in args.sizes:
        gflop = reference_gflop(size)
        repeats = min(args.repeats, 2) if size >= 2048 else args.repeats
        onnx_file = _export(size, exports) if "onnx" in args.paths else None
        for path in args.paths:
            for batch in args.batches or DEFAULT_BATCHES[size]:
                row = run_child(size, path, batch, repeats, args.allocator, onnx_file if path == "onnx" else None)
                row["allocator"] = args.allocator
                if "error" not in row:
                    row["gflop_per_face"] = gflop
                    row["gflops"] = gflop / row["s_per_face"]
                    row["ratio_to_gemm"] = row["gflops"] / row["gemm_gflops"]
                rows.append(row)
                print(_line(row), flush=True)
    return rows


def _export(size: int, folder: Path) -> Path:
    from vidgpen.models.network.onnx_export import export_gpen

    return export_gpen(random_model(size), folder / f"gpen-{size}.onnx")


_HEADER = (f"{'size':>5} {'path':<13} {'batch':>5} {'s/face':>8} {'GFLOP/s':>8} {'GEMM':>6} {'of':<8} {'ratio':>6}"
           f" {'RSS MB':>7}")


def _line(row: dict) -> str:
    if "error" in row:
        return f"{row['size']:>5} {row['path']:<13} {row['batch']:>5}  error: {row['error']}"
    return (
        f"{row['size']:>5} {row['path']:<13} {row['batch']:>5} {row['s_per_face']:>8.3f} {row['gflops']:>8.1f}"
        f" {row['gemm_gflops']:>6.0f} {row['gemm_dtype']:<8} {row['ratio_to_gemm']:>6.0%} {row['peak_rss_mb']:>7.0f}"
    )


def _table(rows: list[dict]) -> str:
    """Batch 1 and the best batch of each (size, path)."""
    lines = [_HEADER]
    keys = dict.fromkeys((r["size"], r["path"]) for r in rows)
    for size, path in keys:
        ok = [r for r in rows if (r["size"], r["path"]) == (size, path) and "error" not in r]
        shown = [r for r in ok if r["batch"] == 1]
        best = min(ok, key=lambda r: r["s_per_face"], default=None)
        if best is not None and best not in shown:
            shown.append(best)
        lines += [_line(r) for r in shown] or [f"{size:>5} {path:<13}  all runs failed"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
