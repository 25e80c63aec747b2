"""How a video's fields are laid out, measured rather than trusted, and the filters that make it progressive.

Container and codec flags on DV, VHS captures and DVD rips are often missing or wrong, so
the field structure is measured with FFmpeg's ``idet`` on a sample of frames (up to
:data:`WINDOW` frames at three places in the video): per frame, whether its two fields
are from one moment (progressive), from two with the top or the bottom one first (TFF /
BFF), and whether a field repeats the previous frame's (3:2 pulldown: two frames in
five). On the test clips (tests/test_fields.py) a woven 50i clip gives 100% TFF or BFF
with or without the flag, a 3:2-pulldown clip 40% repeated fields, a progressive one no
interlaced frame; a low-motion progressive clip is mostly "undetermined" (no combing to
see), which is read as progressive.

The plan (:func:`plan_deinterlace`) turns the structure and the user's mode into an FFmpeg
filter chain: ``bwdif`` (one frame per frame, or with ``rate="field"`` one per field at
the field's own time, ``send_field``), or inverse telecine (``fieldmatch`` rebuilds the
film frames from matching fields, ``bwdif`` deinterlaces what it leaves combed, and
``decimate`` drops the duplicate in every five, back to the film rate).
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av

from vidgpen.io.frames import VideoInfo
from vidgpen.io.probe import open_input

WINDOW = 100  # frames measured at each place
_PLACES = (0.1, 0.5, 0.85)  # where in a long video, as shares of its duration
# Shares of the sampled frames: a 3:2 cadence repeats a field in 2 of 5 frames (40%);
# telecined is called from 12% (a cadence broken by edits, fades and still scenes still
# clears it), interlaced when combed frames are at least 20% and three times the progressive
# ones (white pixel noise on progressive frames reads as combing on some: 4 BFF to 2
# progressive on tests/media.py's moving_frames; woven clips give no progressive frame).
TELECINE_SHARE = 0.12
INTERLACED_SHARE = 0.2
COMBED_OVER_PROGRESSIVE = 3
FIELD_RATE, FRAME_RATE = "field", "frame"
_IVTC_CYCLE = 5  # decimate: one frame dropped in every five (3:2 pulldown)


@dataclass(frozen=True)
class FieldStructure:
    """idet's per-frame verdicts over the sampled frames, and what they add up to."""

    frames: int = 0
    tff: int = 0
    bff: int = 0
    progressive: int = 0
    repeated: int = 0  # frames one of whose fields repeats the previous frame's

    @property
    def kind(self) -> str:
        """progressive | tff | bff | telecined | undetermined (too little motion to tell)."""
        if not self.frames:
            return "undetermined"
        combed = self.tff + self.bff
        if self.repeated >= TELECINE_SHARE * self.frames:
            return "telecined"
        if combed >= INTERLACED_SHARE * self.frames and combed >= COMBED_OVER_PROGRESSIVE * self.progressive:
            return "tff" if self.tff >= self.bff else "bff"
        if self.progressive >= INTERLACED_SHARE * self.frames or combed == 0:
            return "progressive"
        return "undetermined"

    @property
    def order(self) -> str | None:
        """tff/bff by the majority of combed frames, None when none was combed."""
        if self.tff == self.bff == 0:
            return None
        return "tff" if self.tff >= self.bff else "bff"

    def describe(self) -> str:
        shares = f"of {self.frames} frames: {self.tff} TFF, {self.bff} BFF, {self.progressive} progressive, " \
                 f"{self.repeated} with a repeated field"
        names = {"telecined": "telecined (3:2 pulldown)", "tff": "interlaced, top field first",
                 "bff": "interlaced, bottom field first", "progressive": "progressive",
                 "undetermined": "undetermined (no motion to tell by)"}
        return f"{names[self.kind]} ({shares})"


def measure_fields(path: str | os.PathLike, info: VideoInfo) -> FieldStructure:
    """idet's verdicts on up to three windows of :data:`WINDOW` frames (one from the start
    for a short video). Cached per file (path, size, modification time)."""
    stat = Path(path).stat()
    return _measured(str(path), stat.st_size, stat.st_mtime_ns, info)


@functools.lru_cache(maxsize=32)
def _measured(path: str, size: int, mtime_ns: int, info: VideoInfo) -> FieldStructure:
    total = Counter()
    with open_input(path) as container:
        stream = container.streams.video[0]
        long = info.duration and info.duration * float(info.fps) > len(_PLACES) * WINDOW * 2
        for place in _PLACES if long else (0.0,):
            if place:
                container.seek(int((info.start_time + place * info.duration) / stream.time_base),
                               stream=stream, backward=True)
            total += _idet_window(container, stream, info)
    return FieldStructure(frames=sum(total[k] for k in ("tff", "bff", "progressive", "undetermined")),
                          tff=total["tff"], bff=total["bff"], progressive=total["progressive"],
                          repeated=total["top"] + total["bottom"])


def _idet_window(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                 info: VideoInfo) -> Counter:
    """idet's multi-frame verdict and repeated-field call for each of the next WINDOW frames
    (a frame the graph cannot take, say after a change of size, ends the window)."""
    graph, counts = _chain(info, (("idet", ""),)), Counter()

    def tally() -> None:  # drained as it goes: at most a frame or two held
        for out in drain(graph):
            counts[out.metadata.get("lavfi.idet.multiple.current_frame", "undetermined")] += 1
            counts[out.metadata.get("lavfi.idet.repeated.current_frame", "neither")] += 1

    try:
        for decoded, frame in enumerate(_frames(container, stream)):
            frame.pts = decoded  # idet needs increasing pts only
            graph.push(frame)
            tally()
            if decoded + 1 >= WINDOW:
                break
        graph.push(None)
    except (av.FFmpegError, ValueError):
        pass
    tally()
    return counts


def _frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
    """Decoded frames; damaged packets skipped, a broken tail ends the window."""
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.FFmpegError:
                continue
    except av.FFmpegError:
        return


@dataclass(frozen=True)
class DeinterlacePlan:
    """The filter chain the reader runs, and how many output frames each input frame becomes."""

    filters: tuple[tuple[str, str], ...] = ()  # (FFmpeg filter, its options), in order
    rate: Fraction = Fraction(1)  # output frames per input frame: 2 at field rate, 4/5 for ivtc
    why: str = "off"  # what is done and why, for inspect and the log

    def output_info(self, info: VideoInfo) -> VideoInfo:
        """``info`` as the frames come out: the rate, time base and count after the filters.
        bwdif stamps in half the input's time base (a field's time is exact there);
        decimate in one output frame."""
        if not self.filters:
            return info
        fps = info.fps * self.rate
        if self.rate == 1:
            time_base = info.time_base
        elif self.rate == 2:
            time_base = info.time_base / 2
        else:
            time_base = 1 / fps
        count = round(info.frame_count * self.rate) if info.frame_count else None
        return replace(info, fps=fps, time_base=time_base, frame_count=count, interlaced=False,
                       field_order="progressive")


def plan_deinterlace(info: VideoInfo, mode: str | None, rate: str = FRAME_RATE,
                     structure: FieldStructure | None = None) -> DeinterlacePlan:
    """What ``--deinterlace MODE --deinterlace-rate RATE`` does to this video. ``structure``:
    the measured one (measured here when the mode needs it and none is given)."""
    if mode is None or mode == "off":
        return DeinterlacePlan()
    structure = structure or measure_fields(info.path, info)
    kind, order = structure.kind, structure.order or _flagged_order(info)
    if mode == "ivtc" or (mode == "auto" and kind == "telecined"):
        return _ivtc(order, f"inverse telecine ({order or 'flagged'} order)")
    if mode == "auto":
        if kind in ("tff", "bff"):
            return _bwdif("bwdif", kind, "all", rate, f"bwdif on every frame, {kind} as measured")
        if kind == "undetermined" and info.interlaced:
            return _bwdif("bwdif", "auto", "interlaced", rate, "bwdif on the frames flagged interlaced "
                          "(too little motion to measure)")
        return DeinterlacePlan(why=f"none ({kind} as measured)")
    return _bwdif(mode, order or "auto", "all", rate, f"{mode} on every frame, {order or 'flagged'} order")


def _bwdif(name: str, parity: str, deint: str, rate: str, why: str) -> DeinterlacePlan:
    field = rate == FIELD_RATE
    mode = "send_field" if field else "send_frame"
    why += ", one frame per field (2x the frames)" if field else ", one frame per frame"
    return DeinterlacePlan(((name, f"mode={mode}:parity={parity}:deint={deint}"),),
                           Fraction(2 if field else 1), why)


def _ivtc(order: str | None, why: str) -> DeinterlacePlan:
    """fieldmatch, bwdif on the frames it still marks combed, decimate: the film rate."""
    parity = order or "auto"
    return DeinterlacePlan(
        (("fieldmatch", f"order={parity}:combmatch=full"),
         ("bwdif", f"mode=send_frame:parity={parity}:deint=interlaced"),
         ("decimate", f"cycle={_IVTC_CYCLE}")),
        Fraction(_IVTC_CYCLE - 1, _IVTC_CYCLE), why + ", output at the film rate (4/5 of the frames)")


def _flagged_order(info: VideoInfo) -> str | None:
    return info.field_order if info.field_order in ("tff", "bff") else None


def _chain(info: VideoInfo, filters: tuple[tuple[str, str], ...]) -> av.filter.Graph:
    """A configured graph: buffer → filters → buffersink, for ``info``'s frames."""
    graph = av.filter.Graph()
    # The buffer is given the frame rate: fieldmatch and decimate work from it.
    source = graph.add("buffer", video_size=f"{info.width}x{info.height}",
                       pix_fmt=str(int(av.VideoFormat(info.pix_fmt))), time_base=str(info.time_base),
                       frame_rate=str(info.fps), pixel_aspect="1/1")
    chain = [source, *(graph.add(name, options) for name, options in filters), graph.add("buffersink")]
    for upstream, downstream in zip(chain, chain[1:]):
        upstream.link_to(downstream)
    graph.configure()
    return graph


def filter_graph(info: VideoInfo, plan: DeinterlacePlan) -> av.filter.Graph | None:
    """The plan's configured graph for ``info``'s frames; None when nothing is filtered."""
    return _chain(info, plan.filters) if plan.filters else None


def drain(graph: av.filter.Graph) -> Iterator[av.VideoFrame]:
    """Every frame the graph has ready."""
    while True:
        try:
            yield graph.pull()
        except (BlockingIOError, EOFError):
            return
