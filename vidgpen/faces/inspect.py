"""``vidgpen inspect``: decode → detect → track → smooth → align, without GPEN.

Shows what the restorer would work on (no weights needed): a summary of shots, tracks and
face sizes, optionally a JSON of every frame's faces and an overlay video to check
tracking and smoothing by eye. The JSON is written frame by frame, so memory stays
bounded however long the video.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import cv2
import numpy as np

from vidgpen.commands import add_config_arguments, config_from_args
from vidgpen.errors import OutputError
from vidgpen.io.writer import CONTAINERS

if TYPE_CHECKING:
    from rich.table import Table

    from vidgpen.faces.analyze import AnalyzedFrame, FaceAnalyzer
    from vidgpen.io.report import MediaReport
from vidgpen.io.frames import VideoInfo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="input video")
    parser.add_argument("--json", metavar="OUT.json", help="write every frame's faces (boxes, landmarks, affines)")
    parser.add_argument("--overlay", metavar="OUT.mp4", help="write the video with boxes, track ids, raw and smoothed landmarks")
    parser.add_argument("--model-size", type=int, default=512, metavar="S", help="aligned crop size for the affines (default: %(default)s)")
    add_config_arguments(parser)  # the restore settings, so tracks and ids are the ones restore sees
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --overlay / --json output")
    parser.add_argument("--suffix", default=".mp4", choices=tuple(CONTAINERS),
                        help="output container to say what restore does with each stream for (default: %(default)s)")


@dataclass
class _TrackStats:
    frames: int = 0
    detected: int = 0
    first: int = 0
    last: int = 0
    sizes: list[float] = field(default_factory=list)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def video_json(info: VideoInfo) -> dict[str, Any]:
    out = _jsonable(asdict(info))
    out["display_width"], out["display_height"] = info.display_size
    return out


def _round(a: np.ndarray, digits: int = 3) -> list:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def frame_json(item: AnalyzedFrame, size: int, template: str) -> dict[str, Any]:
    f = item.frame
    return {
        "index": f.index,
        "pts": f.pts,
        "time": round(f.time, 6),
        "shot": item.shot,
        "faces": [
            {
                "track": face.track,
                "box": _round(face.box, 2),
                "score": round(float(face.score), 4),
                "detected": face.detected,
                "landmarks_raw": None if face.landmarks_raw is None else _round(face.landmarks_raw),
                "landmarks": _round(face.landmarks),
                "affine": _round(face.affine(size, template), 6),
            }
            for face in item.faces
        ],
    }


def _draw(item: AnalyzedFrame) -> None:
    image = item.frame.image
    thick = max(1, round(max(image.shape[:2]) / 500))
    for face in item.faces:
        x0, y0, x1, y1 = (round(float(v)) for v in face.box)
        colour = (0, 220, 0) if face.detected else (255, 160, 0)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thick)
        cv2.putText(image, str(face.track), (x0, max(y0 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, colour, thick)
        if face.landmarks_raw is not None:
            for x, y in face.landmarks_raw:
                cv2.circle(image, (round(float(x)), round(float(y))), 2 * thick, (255, 40, 40), -1)
        for x, y in face.landmarks:
            cv2.drawMarker(image, (round(float(x)), round(float(y))), (40, 255, 255), cv2.MARKER_CROSS, 6 * thick, thick)
    item.frame.changed = [(0, 0, image.shape[1], image.shape[0])]
    item.frame.deep = None  # the drawing is on the 8-bit image: encode that one


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


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from vidgpen.faces.analyze import make_analyzer  # scipy: only when inspecting, not for --help
    from vidgpen.io.report import media_report
    from vidgpen.io.reader import open_video
    from vidgpen.io.writer import VideoWriter

    cfg = config_from_args(args)
    console = Console()
    analyzer = make_analyzer(cfg)
    detector = analyzer.detector
    size, template = args.model_size, cfg.template
    tracks: dict[int, _TrackStats] = {}
    per_frame: list[int] = []
    shots = 0
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(open_video(args.input, decoder=cfg.decoder, deinterlace=cfg.deinterlace_filter, start=cfg.start, end=cfg.end))
        info = reader.info
        console.print(_media_table(args.input, media_report(info, args.suffix, cfg.codec, cfg.pix_fmt, cfg.deinterlace)))
        # The overlay first: when it cannot be written, no JSON was started.
        writer = stack.enter_context(VideoWriter(args.overlay, info, overwrite=args.overwrite)) if args.overlay else None
        js = stack.enter_context(_open_json(args.json, args.overwrite)) if args.json else None
        if js:
            header = {"video": video_json(info), "model_size": size, "template": template}
            js.write(json.dumps(header)[:-1] + ', "frames": [\n')
        written = 0
        for items in _analyzed(reader, analyzer):
            for item in items:
                shots = max(shots, item.shot + 1)
                per_frame.append(len(item.faces))
                for face in item.faces:
                    st = tracks.setdefault(face.track, _TrackStats(first=item.frame.index))
                    st.frames += 1
                    st.detected += face.detected
                    st.last = item.frame.index
                    st.sizes.append(float(max(face.box[2] - face.box[0], face.box[3] - face.box[1])))
                if js:
                    js.write(("" if written == 0 else ",\n") + json.dumps(frame_json(item, size, template)))
                    written += 1
                if writer:
                    _draw(item)
                    writer.write(item.frame)
        if js:
            js.write("\n]}\n")

    t = analyzer.timings
    counts = np.array(per_frame or [0])
    console.print(f"[bold]{args.input}[/]")
    console.print(f"{len(per_frame)} frames, {shots} shot(s), {len(tracks)} track(s)")
    console.print(f"faces per frame: mean {counts.mean():.2f}, max {counts.max()}; frames with faces: {int((counts > 0).sum())}")
    console.print(f"detector {detector.name}: detect {t.detect:.2f}s, track {t.track:.2f}s, smooth {t.smooth:.2f}s")
    if tracks:
        table = Table("track", "frames", "first", "last", "detected", "size px (median)")
        for tid, st in sorted(tracks.items()):
            table.add_row(str(tid), str(st.frames), str(st.first), str(st.last), f"{st.detected / st.frames:.0%}", f"{np.median(st.sizes):.0f}")
        console.print(table)
    if args.json:
        console.print(f"wrote {args.json}")
    if args.overlay:
        console.print(f"wrote {args.overlay}")
    return 0
