"""The settings flags shared by ``restore``, ``batch`` and ``inspect``: flags → RestoreConfig.

Only flags the user actually gave become overrides (argparse.SUPPRESS), so a preset or
config file value is never silently replaced by a flag's default.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vidgpen.config import DEINTERLACE, ConfigLayers, RestoreConfig, build_config
from vidgpen.errors import OutputError
from vidgpen.io.names import DEINTERLACE_RATES

_S = argparse.SUPPRESS

# flag → (RestoreConfig field, type, help); shared by `restore` and `batch`.
RESTORE_FLAGS: dict[str, tuple[str, type, str]] = {
    "--model": ("model", str, "registry name (gpen-bfr-2048 default; see `vidgpen models list`) or auto"),
    "--auto-models": ("auto_models", str, "with --model auto: comma-separated models to choose among "
                      "(default gpen-bfr-256,gpen-bfr-512,gpen-bfr-1024,gpen-bfr-2048)"),
    "--weights": ("weights", str, "path to a GPEN checkpoint in the official layout, or a .onnx export (wins over --model)"),
    "--detector": ("detector", str, "retinaface-onnx (default) | retinaface | retinaface-mobilenet | dlib | a plug-in's (README)"),
    "--detect-every": ("detect_every", int, "run the detector every N frames, tracking between"),
    "--device": ("device", str, "auto | cpu | cuda | cuda:N"),
    "--dtype": ("dtype", str, "auto | float32 | float16 | bfloat16"),
    "--batch-size": ("batch_size", int, "faces per GPEN forward"),
    "--faces": ("faces", str, "all | largest | comma-separated track ids (1,3) or person ids (p1,p3), as "
                "`vidgpen inspect` prints them"),
    "--persons": ("persons", str, "persons file from `vidgpen inspect --save-persons`: start from its person ids"),
    "--min-face": ("min_face", int, "ignore faces smaller than this many pixels"),
    "--strength": ("strength", float, "0 = original .. 1 = fully restored"),
    "--smooth": ("smooth", int, "landmark smoothing lookahead in frames (0 = off)"),
    "--template": ("template", str, "alignment template of a --weights file: gpen | ffhq (registry models bring theirs)"),
    "--mask": ("mask", str, "feather | parsing"),
    "--deflicker": ("deflicker", float, "0..1: fuse each face with its track's previous frames inside GPEN (0 = per frame)"),
    "--deflicker-memory": ("deflicker_memory", str, "memory the deflicker state of all faces may hold, e.g. 2G "
                           "(default auto: a quarter of the device's free memory); past it new faces fuse less"),
    "--grain": ("grain", float, "0..1: put this share of the original's film grain back on restored faces"),
    "--decoder": ("decoder", str, "pyav | decord"),
    "--codec": ("codec", str, "libx264 | libx265 | libvpx-vp9 | libsvtav1 | ffv1 | prores_ks | dnxhd | h264_nvenc | hevc_nvenc"),
    "--crf": ("crf", int, "encoder quality (lower is better)"),
    "--encoder-preset": ("encoder_preset", str, "encoder speed preset, e.g. medium"),
    "--pix-fmt": ("pix_fmt", str, "auto (default: yuv420p, or yuv420p10le for a 10-bit source, for delivery codecs; "
                 "the source's for ffv1/prores/dnxhd) | yuv420p | yuv422p10le | ..."),
    "--encoder-backend": ("encoder_backend", str, "pyav (default: PyAV's bundled FFmpeg) | ffmpeg (an external "
                          "ffmpeg binary: VAAPI, VVC, your own build)"),
    "--ffmpeg": ("ffmpeg", str, "the ffmpeg binary for --encoder-backend ffmpeg (default $VIDGPEN_FFMPEG, then PATH)"),
    "--ffmpeg-args": ("ffmpeg_args", str, "extra ffmpeg output options as one string, after vidgpen's: "
                      "--ffmpeg-args=\"-tune film\""),
    "--start": ("start", float, "start time in seconds"),
    "--end": ("end", float, "end time in seconds"),
}


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default=None, help="preset name (see `vidgpen presets list`) or TOML path")
    parser.add_argument("--config", default=None, help="TOML config file (overrides the preset)")
    for flag, (dest, kind, text) in RESTORE_FLAGS.items():
        metavar = flag.lstrip("-").upper().replace("-", "_")
        parser.add_argument(flag, dest=f"cfg_{dest}", type=kind, default=_S, metavar=metavar, help=text)
    parser.add_argument("--deinterlace", dest="cfg_deinterlace", nargs="?", const="auto", default=_S,
                        choices=DEINTERLACE, help="deinterlace: auto (by the field structure measured with idet: "
                        "bwdif, inverse telecine or nothing; what the bare flag means), bwdif, yadif, ivtc (inverse "
                        "telecine to the film rate) or off")
    parser.add_argument("--deinterlace-rate", dest="cfg_deinterlace_rate", default=_S, choices=DEINTERLACE_RATES,
                        help="frame: one output frame per interlaced frame; field: one per field, at twice the "
                        "rate (50p/59.94p, the motion of the tape; about twice GPEN's time)")
    parser.add_argument("--compile", dest="cfg_compile", action=argparse.BooleanOptionalAction, default=_S,
                        help="torch.compile GPEN: CUDA graphs and fused kernels on GPUs, little gain on CPUs; "
                        "the first batch of each size compiles (20-60 s)")
    parser.add_argument("--register", dest="cfg_register", action=argparse.BooleanOptionalAction, default=_S,
                        help="refine each face's alignment by registering its crop to its track's recent crops "
                        "(default off: on real faces that talk and turn it costs accuracy; README, Faces across frames)")
    parser.add_argument("--faces-of", dest="cfg_faces_of", action="append", default=_S, metavar="PATH",
                        help="restore only this person: a photo, or a folder of photos with one person each "
                        "(repeatable)")
    parser.add_argument("--skip-faces-of", dest="cfg_skip_faces_of", action="append", default=_S, metavar="PATH",
                        help="leave this person alone: a photo, or a folder of photos (repeatable)")
    parser.add_argument("--color-match", dest="cfg_color_match", action=argparse.BooleanOptionalAction, default=_S,
                        help="match the restored face's colour to the original (--no-color-match to turn a "
                        "preset's off)")


def config_from_args(args: argparse.Namespace) -> RestoreConfig:
    overrides = {key[4:]: value for key, value in vars(args).items() if key.startswith("cfg_")}
    return build_config(ConfigLayers(preset=args.preset, config_file=args.config, overrides=overrides))


def check_report_path(report: str | None) -> None:
    """Fail before the work, not after it, when the report cannot be written."""
    if report is None:
        return
    folder = Path(report).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise OutputError(f"{report}: cannot write the report there (no such folder, or not writable)")
