"""``vidgpen restore`` and ``vidgpen presets``: flags → RestoreConfig → Pipeline.

Only flags the user actually gave become overrides (argparse.SUPPRESS), so a preset or
config file value is never silently replaced by a flag's default.
"""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from vidgpen.config import (
    DEINTERLACE,
    ConfigLayers,
    RestoreConfig,
    build_config,
    list_presets,
    preset_description,
    preset_path,
)
from vidgpen.errors import OutputError
from vidgpen.io.frames import VideoInfo

_S = argparse.SUPPRESS

# flag → (RestoreConfig field, type, help); shared by `restore` and `batch`.
RESTORE_FLAGS: dict[str, tuple[str, type, str]] = {
    "--model": ("model", str, "registry name (gpen-bfr-2048 default, -1024, -512, -256) or auto"),
    "--weights": ("weights", str, "path to a GPEN checkpoint in the official layout, or a .onnx export (wins over --model)"),
    "--detector": ("detector", str, "retinaface-onnx (default) | retinaface | retinaface-mobilenet | dlib"),
    "--detect-every": ("detect_every", int, "run the detector every N frames, tracking between"),
    "--device": ("device", str, "auto | cpu | cuda | cuda:N"),
    "--dtype": ("dtype", str, "auto | float32 | float16 | bfloat16"),
    "--batch-size": ("batch_size", int, "faces per GPEN forward"),
    "--faces": ("faces", str, "all | largest | comma-separated track ids (see `vidgpen inspect`)"),
    "--min-face": ("min_face", int, "ignore faces smaller than this many pixels"),
    "--strength": ("strength", float, "0 = original .. 1 = fully restored"),
    "--smooth": ("smooth", int, "landmark smoothing lookahead in frames (0 = off)"),
    "--template": ("template", str, "alignment template: gpen | ffhq"),
    "--mask": ("mask", str, "feather | parsing"),
    "--deflicker": ("deflicker", float, "0..1: fuse each face with its track's previous frames inside GPEN (0 = per frame)"),
    "--grain": ("grain", float, "0..1: put this share of the original's film grain back on restored faces"),
    "--decoder": ("decoder", str, "pyav | decord"),
    "--codec": ("codec", str, "libx264 | libx265 | libvpx-vp9 | libsvtav1 | ffv1 | h264_nvenc | hevc_nvenc"),
    "--crf": ("crf", int, "encoder quality (lower is better)"),
    "--encoder-preset": ("encoder_preset", str, "encoder speed preset, e.g. medium"),
    "--pix-fmt": ("pix_fmt", str, "yuv420p | yuv420p10le | yuv444p"),
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
                        choices=DEINTERLACE, help="deinterlace: auto (frames flagged interlaced; what the bare "
                        "flag means), bwdif, yadif or off")
    parser.add_argument("--compile", dest="cfg_compile", action=argparse.BooleanOptionalAction, default=_S,
                        help="torch.compile GPEN: CUDA graphs and fused kernels on GPUs, little gain on CPUs; "
                        "the first batch of each size compiles (20-60 s)")
    parser.add_argument("--color-match", dest="cfg_color_match", action=argparse.BooleanOptionalAction, default=_S,
                        help="match the restored face's colour to the original (--no-color-match to turn a "
                        "preset's off)")


def config_from_args(args: argparse.Namespace) -> RestoreConfig:
    overrides = {key[4:]: value for key, value in vars(args).items() if key.startswith("cfg_")}
    return build_config(ConfigLayers(preset=args.preset, config_file=args.config, overrides=overrides))


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="input video")
    parser.add_argument("-o", "--output", required=True, help="output video (container from the extension)")
    add_config_arguments(parser)
    exclusive = parser.add_mutually_exclusive_group()
    exclusive.add_argument("--preview", default=None, help="also write a side-by-side before|after video here")
    exclusive.add_argument("--resume", nargs="?", type=float, const=60.0, default=None, metavar="SECONDS",
                           help="restore in segments of SECONDS (default 60) kept beside the output, so running "
                           "the same command again after an interruption continues where it stopped")
    parser.add_argument("--report", default=None, help="write per-stage times and settings as JSON here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run_restore(args: argparse.Namespace) -> int:
    from vidgpen.pipeline import Pipeline

    config = config_from_args(args)
    check_report_path(args.report)
    console = Console(stderr=True, quiet=args.quiet)
    columns = [TextColumn("[bold]restoring"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]} fps"),
               TextColumn("{task.fields[faces]} faces"), TimeElapsedColumn(), TimeRemainingColumn()]
    progress = Progress(*columns, console=console, disable=args.quiet)
    task = progress.add_task("restore", total=None, fps="-", faces=0)

    def on_start(info: VideoInfo) -> None:
        # Only once every check has passed, so a bad input prints nothing but its error.
        progress.update(task, total=_expected_frames(info.frame_count, float(info.fps), config))
        progress.start()

    def on_progress(frames: int, faces: int) -> None:
        elapsed = max(progress.tasks[0].elapsed or 0.0, 1e-6)
        progress.update(task, completed=frames, faces=faces, fps=f"{frames / elapsed:.2f}")

    try:
        if args.resume is None:
            report = Pipeline(config).run(args.input, args.output, overwrite=args.overwrite, preview=args.preview,
                                          on_start=on_start, on_progress=on_progress)
        else:
            from vidgpen.resume import run_resumable

            report = run_resumable(Pipeline(config), args.input, args.output, args.resume, overwrite=args.overwrite,
                                   on_start=on_start, on_progress=on_progress)
    finally:
        progress.stop()
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    console.print(stage_table(report.stage_seconds, report.wall_seconds))
    console.print(f"{report.frames} frames, {report.faces} faces in {report.tracks} tracks, "
                  f"{report.fps:.2f} fps → {report.output}")
    return 0


def check_report_path(report: str | None) -> None:
    """Fail before the work, not after it, when the report cannot be written."""
    if report is None:
        return
    folder = Path(report).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise OutputError(f"{report}: cannot write the report there (no such folder, or not writable)")


def _expected_frames(count: int | None, fps: float, config: RestoreConfig) -> int | None:
    if config.start is None and config.end is None:
        return count
    if count is None or fps <= 0:
        return None
    start = config.start or 0.0
    end = config.end if config.end is not None else count / fps
    return max(0, min(count, round((end - start) * fps)))


def stage_table(stage_seconds: dict[str, float], wall: float) -> Table:
    table = Table(title="time per stage (stages overlap; wall is the run's elapsed time)")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("share of wall", justify="right")
    for stage, seconds in sorted(stage_seconds.items(), key=lambda kv: -kv[1]):
        table.add_row(stage, f"{seconds:.2f}", f"{100 * seconds / wall:.0f}%" if wall else "-")
    table.add_row("wall", f"{wall:.2f}", "100%")
    return table


def add_presets_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="presets_command", required=True)
    sub.add_parser("list", help="list the presets")
    show = sub.add_parser("show", help="print a preset merged over the defaults, as TOML")
    show.add_argument("name")


def run_presets(args: argparse.Namespace) -> int:
    if args.presets_command == "list":
        for name in list_presets():
            print(f"{name:12s} {preset_description(name)}")
        return 0
    path = preset_path(args.name)
    config = build_config(ConfigLayers(preset=args.name))
    own = set(tomllib.loads(path.read_text(encoding="utf-8")))
    print(f"# preset {args.name} ({path}) merged over the built-in defaults; '# preset' marks its own values")
    for key, value in config.to_dict().items():
        line = f"# {key} = (unset)" if value is None else f"{key} = {_toml_value(value)}"
        print(f"{line:40s} # preset" if key in own else line)
    return 0


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else str(value)


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="library folder to walk")
    parser.add_argument("-o", "--output", required=True, help="output folder (mirrors the input tree)")
    add_config_arguments(parser)
    parser.add_argument("--include", action="append", default=[], help="only files matching this glob (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], help="skip files matching this glob (repeatable)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="files restored at once (default: 1 locally, one per GPU, else per CPU, on Ray)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument("--ray-address", default=None,
                        help="connect to this Ray cluster, e.g. HEAD:6379 (default: start Ray on this machine)")
    parser.add_argument("--retries", type=int, default=1, help="retries for processing errors (not for bad input)")
    parser.add_argument("--force", action="store_true", help="redo every file, even those already done")
    parser.add_argument("--dry-run", action="store_true", help="list what would be done and stop")
    parser.add_argument("--suffix", default=".mp4", help="output file extension (container)")
    parser.add_argument("--resume", nargs="?", type=float, const=60.0, default=None, metavar="SECONDS",
                        help="restore each file in segments of SECONDS (default 60), so an interrupted or killed "
                        "file continues from its last finished segment on retry or the next run")
    parser.add_argument("--report", default=None, help="write the summary and per-file results as JSON here")


def run_batch(args: argparse.Namespace) -> int:
    """Exit code 0 only when every video of the library is done (1 when any failed)."""
    from dataclasses import asdict

    from vidgpen.batch import BatchOptions, FileResult
    from vidgpen.batch import run_batch as run

    config = config_from_args(args)
    options = BatchOptions(include=args.include, exclude=args.exclude, jobs=args.jobs, engine=args.engine,
                           ray_address=args.ray_address, retries=args.retries, force=args.force,
                           dry_run=args.dry_run, output_suffix=args.suffix, resume_segments=args.resume)
    console = Console(stderr=True, quiet=args.quiet)

    def on_result(result: FileResult) -> None:
        detail = result.error if result.error else f"{result.frames} frames, {result.faces} faces"
        console.print(f"{result.status:7s} {result.input} ({result.seconds:.1f} s)  {detail}",
                      markup=False, highlight=False, soft_wrap=True)

    summary = run(args.input, args.output, config, options, on_result=on_result)
    if args.dry_run:
        for result in summary.results:
            console.print(f"{result.status:7s} {result.input} -> {result.output}", markup=False, highlight=False,
                          soft_wrap=True)
    table = Table(title=f"batch {args.input} → {args.output}")
    for column in ("done", "skipped", "failed", "faces", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(str(summary.done), str(summary.skipped), str(summary.failed), str(summary.faces),
                  f"{summary.seconds:.1f}")
    console.print(table)
    if args.report:
        payload = {k: v for k, v in asdict(summary).items() if k != "results"}
        payload["files"] = [asdict(r) for r in summary.results]
        Path(args.report).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if summary.ok or args.dry_run else 1
