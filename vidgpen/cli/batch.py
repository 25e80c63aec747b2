"""``vidgpen batch IN_DIR -o OUT_DIR``: a library folder restored into a mirrored tree."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vidgpen.cli.args import add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="library folder to walk")
    parser.add_argument("-o", "--output", required=True, help="output folder (mirrors the input tree)")
    add_config_arguments(parser)
    parser.add_argument("--include", action="append", default=[], help="only files matching this glob (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], help="skip files matching this glob (repeatable)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="files restored at once locally (default 1); Ray workers with --engine ray (default: "
                        "one per GPU, else one per node)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument("--ray-address", default=None,
                        help="connect to this Ray cluster, e.g. HEAD:6379 (default: start Ray on this machine)")
    parser.add_argument("--retries", type=int, default=1, help="retries for processing errors (not for bad input)")
    parser.add_argument("--force", action="store_true", help="redo every file, even those already done")
    parser.add_argument("--dry-run", action="store_true", help="list what would be done and stop")
    parser.add_argument("--suffix", default=".mp4", help="output file extension (container)")
    parser.add_argument("--resume", nargs="?", type=float, const=60.0, default=None, metavar="SECONDS",
                        help="restore each file in segments of SECONDS (default 60), so an interrupted or killed "
                        "file continues from its last finished segment on retry or the next run; with --engine "
                        "ray, files longer than one segment are always split (default 60 s)")
    parser.add_argument("--report", default=None, help="write the summary and per-file results as JSON here")


def run(args: argparse.Namespace) -> int:
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
