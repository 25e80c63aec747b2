"""``vidgpen restore IN -o OUT``: flags → RestoreConfig → one run, with a progress bar and a stage table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from vidgpen.cli.args import add_config_arguments, check_report_path, config_from_args
from vidgpen.config import RestoreConfig
from vidgpen.io.frames import VideoInfo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="input video")
    parser.add_argument("-o", "--output", required=True, help="output video (container from the extension)")
    add_config_arguments(parser)
    parser.add_argument("--preview", default=None, help="also write a side-by-side before|after video here "
                        "(with --resume: joined from segments like the output)")
    parser.add_argument("--resume", nargs="?", type=float, const=60.0, default=None, metavar="SECONDS",
                        help="restore in segments of SECONDS (default 60) kept beside the output, so running "
                        "the same command again after an interruption continues where it stopped")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="ray: restore the --resume segments (default 60 s) in parallel on Ray workers")
    parser.add_argument("--ray-address", default=None,
                        help="the Ray cluster to use, e.g. HEAD:6379 (default: start Ray on this machine, loopback only)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="Ray workers (default: one per GPU, else one per node)")
    parser.add_argument("--retries", type=int, default=2,
                        help="with --engine ray: attempts after the first for a segment whose worker was lost or "
                        "failed (not for bad input)")
    parser.add_argument("--report", default=None, help="write per-stage times, settings and (segmented runs) each "
                        "segment's frames, seconds, attempts, node and worker as JSON here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace) -> int:
    from vidgpen.api import RayOptions, run_restore  # torch and PyAV: not for --help

    config = config_from_args(args)
    check_report_path(args.report)
    ray = RayOptions(args.ray_address, args.jobs, args.retries) if args.engine == "ray" else None
    console = Console(stderr=True, quiet=args.quiet)
    columns = [TextColumn("[bold]restoring"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]} fps"),
               TextColumn("{task.fields[faces]} faces"), TimeElapsedColumn(), TimeRemainingColumn()]
    progress = Progress(*columns, console=console, disable=args.quiet)
    task = progress.add_task("restore", total=None, fps="-", faces=0)

    def on_start(info: VideoInfo) -> None:
        # Only once every check has passed, so a bad input prints nothing but its error.
        progress.update(task, total=expected_frames(info.frame_count, float(info.fps), config))
        progress.start()

    def on_progress(frames: int, faces: int) -> None:
        elapsed = max(progress.tasks[0].elapsed or 0.0, 1e-6)
        progress.update(task, completed=frames, faces=faces, fps=f"{frames / elapsed:.2f}")

    try:
        report = run_restore(config, args.input, args.output, overwrite=args.overwrite, preview=args.preview,
                             resume_segments=args.resume, ray=ray, on_start=on_start, on_progress=on_progress)
    finally:
        progress.stop()
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    console.print(stage_table(report.stage_seconds, report.wall_seconds))
    console.print(f"{report.frames} frames, {report.faces} faces in {report.tracks} tracks, "
                  f"{report.fps:.2f} fps → {report.output}")
    if report.persons is not None:
        people = report.persons
        console.print(f"{people['count']} person(s), tracks linked at embedding distance ≤ {people['threshold']:.2f}; "
                      f"restored: {', '.join(people['restored']) or 'nobody'}")
    return 0


def expected_frames(count: int | None, fps: float, config: RestoreConfig) -> int | None:
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
