"""Typed objects that carry video metadata and frames between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in upright-frame pixels, end exclusive


@dataclass(frozen=True)
class StreamInfo:
    """A non-video stream (audio, subtitle) of the input, as the writer needs to copy it."""

    index: int
    kind: str  # "audio" | "subtitle" | ...
    codec: str
    time_base: Fraction | None
    sample_rate: int | None = None
    channels: int | None = None
    language: str | None = None


@dataclass(frozen=True)
class VideoInfo:
    """What is known about the input before decoding: enough to encode a faithful output."""

    path: str
    container: str
    width: int  # stored (coded) width, before rotation
    height: int
    fps: Fraction  # average frame rate
    time_base: Fraction
    duration: float | None  # seconds
    frame_count: int | None  # estimate when the container does not say
    rotation: int  # degrees clockwise to display upright: 0, 90, 180, 270
    codec: str
    pix_fmt: str
    bit_depth: int
    color_range: str | None = None
    color_space: str | None = None
    color_primaries: str | None = None
    color_trc: str | None = None
    interlaced: bool = False
    field_order: str = "progressive"  # progressive | tff | bff | tb | bt | interlaced (order unknown)
    streams: tuple[StreamInfo, ...] = ()
    start_time: float = 0.0  # seconds: the video stream's first timestamp; Frame.time, start and end count from it

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) of upright frames, i.e. after applying the rotation."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height


@dataclass
class Frame:
    """One decoded video frame flowing through the pipeline.

    ``image`` is upright uint8 RGB (H×W×3) and is what face stages read and edit.
    ``deep`` is the same picture as uint16 RGB (0..65535) when the source has more than
    8 bits per sample: faces are pasted into it, so they reach the output at its depth.
    ``source`` keeps the decoder's own frame so the writer can pass untouched pixels
    through without a colour conversion: only the regions listed in ``changed`` are
    taken from ``image`` (an empty list means the frame is encoded exactly as decoded).
    """

    index: int
    pts: int | None
    time: float
    image: np.ndarray
    source: Any = None  # av.VideoFrame when decoded by PyAV, else None
    changed: list[Box] = field(default_factory=list)
    deep: np.ndarray | None = None
