"""``vidgpen inspect IN``: decode → detect → track → smooth → align, without GPEN.

Shows what the restorer would work on (no weights needed): a summary of shots, tracks,
persons and face sizes, optionally a JSON of every frame's faces, an overlay video to check
tracking and smoothing by eye, a contact sheet of the persons to pick them by, and the
persons file that ``restore --persons`` reads so ids stay the ones printed here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from vidgpen.cli.args import add_config_arguments, config_from_args
from vidgpen.errors import OutputError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from vidgpen.config import RestoreConfig
    from vidgpen.faces.analyze import AnalyzedFrame, FaceAnalyzer
    from vidgpen.faces.inspect import FaceSummary
    from vidgpen.faces.persons import Identity
    from vidgpen.io.frames import VideoInfo
    from vidgpen.io.report import MediaReport
    from vidgpen.plan.run_plan import RunPlan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="input video")
    parser.add_argument("--json", metavar="OUT.json", help="write every frame's faces (boxes, landmarks, affines)")
    parser.add_argument("--overlay", metavar="OUT.mp4", help="write the video with boxes, track ids, raw and smoothed landmarks")
    parser.add_argument("--people", metavar="SHEET.png", help="write a contact sheet: each person's best crop with its id")
    parser.add_argument("--save-persons", metavar="OUT.json",
                        help="write the persons (ids and embeddings) for `restore --persons OUT.json --faces p1,...`")
    parser.add_argument("--model-size", type=int, default=512, metavar="S", help="aligned crop size for the affines (default: %(default)s)")
    add_config_arguments(parser)  # the restore settings, so tracks and ids are the ones restore sees
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --overlay / --json output")
    parser.add_argument("--suffix", default=".mp4", choices=(".mp4", ".mkv", ".mov", ".webm"),
                        help="output container to say what restore does with each stream for (default: %(default)s)")


@contextlib.contextmanager
def _open_json(path: str, overwrite: bool) -> Iterator[IO[str]]:
    """Write to the partial path and rename on success, so an error never leaves a
    truncated JSON under the real name."""
    from vidgpen.io.writer import partial_path

    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputError(f"{target}: exists (use --overwrite to replace it)")
    partial = partial_path(target)
    try:
        handle = partial.open("w", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({exc.strerror})") from None
    try:
        with handle:
            yield handle
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)


def _analyzed(reader, analyzer: FaceAnalyzer) -> Iterator[list[AnalyzedFrame]]:
    for frame in reader:
        yield analyzer.push(frame)
    yield analyzer.flush()


def _media_table(path: str, report: MediaReport) -> Table:
    """The input's streams and what restore does with each, before the long part of the run."""
    from rich.table import Table

    table = Table("", "source", f"restore → {report.suffix}", title=path)
    for row in report.rows:
        table.add_row(*row)
    return table


def inspect_video(cfg: RestoreConfig, input: str, suffix: str,
                  on_start: Callable[[RunPlan, VideoInfo], None] | None = None,
                  on_item: Callable[[AnalyzedFrame], None] | None = None) -> tuple[RunPlan, FaceSummary, FaceAnalyzer]:
    """restore's plan (without weights), then decode → detect → track → smooth → persons over
    ``input``, counting shots, tracks, persons and faces. ``on_start`` gets the plan and the
    frames' VideoInfo (per field at field rate); ``on_item`` each analysed frame before it is
    counted. This command and the UI's Open screen share it; ``analyzer.identity`` holds the persons."""
    from vidgpen.faces.analyze import make_analyzer  # scipy: only when inspecting, not for --help
    from vidgpen.faces.inspect import FaceSummary
    from vidgpen.io.reader import open_video, probe
    from vidgpen.pipeline.people import make_identity
    from vidgpen.plan.run_plan import make_plan

    plan = make_plan(cfg, probe(input), suffix, find_weights=False)  # restore's plan, without weights
    analyzer = make_analyzer(plan.faces, identity=make_identity(cfg, always=True))  # frame-counted settings scaled
    summary = FaceSummary()
    with open_video(input, decoder=cfg.decoder, deinterlace=cfg.deinterlace_filter, info=plan.info, start=cfg.start,
                    end=cfg.end, rate=cfg.deinterlace_rate, fields=plan.fields) as reader:
        if on_start is not None:
            on_start(plan, reader.info)  # the frames restore works on: per field at field rate, film frames after ivtc
        for items in _analyzed(reader, analyzer):
            for item in items:
                if on_item is not None:
                    on_item(item)
                summary.add(item)
    return plan, summary, analyzer


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from vidgpen.faces.inspect import draw_overlay, frame_json, video_json
    from vidgpen.io.writer import VideoWriter

    cfg = config_from_args(args)
    for path in (args.people, args.save_persons):
        if path:
            _check_writable(path, args.overwrite)
    size = args.model_size
    written: dict[str, Any] = {"frames": 0}
    with contextlib.ExitStack() as stack:

        def start(plan: RunPlan, info: VideoInfo) -> None:
            Console().print(_media_table(args.input, plan.media))
            written["template"] = plan.template
            # The overlay first: when it cannot be written, no JSON was started.
            if args.overlay:
                written["overlay"] = stack.enter_context(VideoWriter(args.overlay, info, overwrite=args.overwrite))
            if args.json:
                written["json"] = js = stack.enter_context(_open_json(args.json, args.overwrite))
                header = {"video": video_json(info), "model_size": size, "template": plan.template,
                          "plan": plan.summary()}
                js.write(json.dumps(header)[:-1] + ', "frames": [\n')

        def item_out(item: AnalyzedFrame) -> None:
            if "json" in written:
                line = json.dumps(frame_json(item, size, written["template"]))
                written["json"].write(("" if not written["frames"] else ",\n") + line)
                written["frames"] += 1
            if "overlay" in written:
                draw_overlay(item)
                written["overlay"].write(item.frame)

        _, summary, analyzer = inspect_video(cfg, args.input, args.suffix, start, item_out)
        if "json" in written:
            written["json"].write("\n]}\n")
    _write_persons(args, analyzer.identity)
    _print_summary(args, analyzer, summary)
    return 0


def _check_writable(path: str, overwrite: bool) -> None:
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputError(f"{target}: exists (use --overwrite to replace it)")
    if not target.resolve().parent.is_dir():
        raise OutputError(f"{target}: no such folder")


def _write_persons(args: argparse.Namespace, identity: Identity) -> None:
    import cv2

    from vidgpen.faces.inspect import contact_sheet

    if args.save_persons:
        identity.book.save(args.save_persons)
    if args.people and not cv2.imwrite(args.people, contact_sheet(identity.portraits)[:, :, ::-1]):
        raise OutputError(f"{args.people}: cannot write the contact sheet (OpenCV writes .png, .jpg, ...)")


def _print_summary(args: argparse.Namespace, analyzer: FaceAnalyzer, summary: FaceSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = analyzer.times.snapshot()
    counts = np.array(summary.per_frame or [0])
    console.print(f"[bold]{args.input}[/]")
    console.print(f"{len(summary.per_frame)} frames, {summary.shots} shot(s), {len(summary.tracks)} track(s)")
    console.print(f"faces per frame: mean {counts.mean():.2f}, max {counts.max()}; frames with faces: {int((counts > 0).sum())}")
    console.print(f"detector {analyzer.detector.name}: " + ", ".join(f"{stage} {s:.2f}s" for stage, s in t.items()))
    if summary.tracks:
        table = Table("track", "frames", "first", "last", "detected", "size px (median)")
        for tid, st in sorted(summary.tracks.items()):
            table.add_row(str(tid), str(st.frames), str(st.first), str(st.last), f"{st.detected / st.frames:.0%}", f"{np.median(st.sizes):.0f}")
        console.print(table)
    _print_persons(console, analyzer, summary)
    if args.json:
        console.print(f"wrote {args.json}")
    for path in (args.overlay, args.people, args.save_persons):
        if path:
            console.print(f"wrote {path}")


def _print_persons(console: Console, analyzer: FaceAnalyzer, summary: FaceSummary) -> None:
    from rich.table import Table

    identity = analyzer.identity
    if identity is None or not summary.persons:
        return
    per_track = identity.seconds / max(identity.tracks, 1)
    console.print(f"{len(summary.persons)} person(s): tracks linked at embedding distance ≤ {identity.book.threshold:.2f} "
                  f"(dlib ResNet; {per_track:.2f} s per track)")
    table = Table("person", "tracks", "frames", "first seen", "last seen")
    for pid, st in sorted(summary.persons.items(), key=lambda kv: int(kv[0][1:])):
        table.add_row(pid, ",".join(map(str, sorted(st.tracks))), str(st.frames), f"{st.first:.2f}s", f"{st.last:.2f}s")
    console.print(table)
