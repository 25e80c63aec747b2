"""Time to the first preview in `vidgpen ui`: what the Preview button costs on this machine.

    python bench/ui.py                                # samples/astronaut.mp4, GPEN-512, frame 50
    python bench/ui.py --frame 80 --deflicker 0

GPEN-512 has random weights in the official layout and config (size 512, style_dim 512,
n_mlp 8, channel_multiplier 2, narrow 1), saved as the released file is: speed does not
depend on the weights. The preview is the UI's own call (vidgpen.ui.preview.preview_frame),
run twice in one process: the first includes loading the weights and the detector, the
second is what each later click costs. With --deflicker > 0 the 2 s before the frame are
restored too (they prime the fusion, as in a whole run), so the first preview restores
about 2 s × fps faces; with --deflicker 0 it restores one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from gpen_checkpoints import make_gpen_checkpoint  # noqa: E402

from vidgpen.ui.preview import preview_frame  # noqa: E402
from vidgpen.ui.settings import config_from_argv  # noqa: E402

OFFICIAL_512 = dict(size=512, style_dim=512, n_mlp=8, channel_multiplier=2, narrow=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(REPO / "samples" / "astronaut.mp4"))
    parser.add_argument("--frame", type=int, default=50)
    parser.add_argument("--deflicker", type=float, default=None, help="default: the CLI's")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        weights = make_gpen_checkpoint(Path(folder) / "GPEN-BFR-512.pth", **OFFICIAL_512)
        print(f"random GPEN-512 checkpoint written in {time.perf_counter() - started:.1f} s")
        argv = ["--weights", str(weights)]
        if args.deflicker is not None:
            argv += ["--deflicker", f"{args.deflicker:g}"]
        config = config_from_argv(argv)
        for label in ("first preview (weights and detector loaded)", "second preview (what each click costs)"):
            shot = preview_frame(config, args.video, args.frame)
            eta = f"{shot.eta_seconds:.0f} s" if shot.eta_seconds is not None else "-"
            print(f"{label}: {shot.seconds:.2f} s, {shot.faces} face(s) in the frame; whole video ETA {eta}")
        print(f"settings: {' '.join(argv[2:]) or 'defaults'}, dtype {config.dtype}, device {config.device}")


if __name__ == "__main__":
    main()
