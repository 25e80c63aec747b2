"""Per-track temporal fusion of GPEN's encoder outputs (``--deflicker``): restored faces that do not flicker.

GPEN restores each frame on its own, so detail it hallucinates from grain, compression and
noise changes from frame to frame although the face does not. vidgpen aligns each track's
faces into one stable frame of reference, so between GPEN's encoder and its generator
(:meth:`FastGPEN.encode` / :meth:`FastGPEN.decode`) each tensor it passes on, the style code
and every multi-scale feature map, is filtered over the track's frames by a scalar Kalman
filter per feature-map position (a random walk observed with noise):

* the prior variance is the last estimate's plus ``q``; ``q`` sets the steady gain where
  nothing but noise changes, ``MIN_GAIN ** strength`` (0.18 at the default 0.75);
* the innovation (the new frame minus the estimate), averaged over channels per position,
  is compared with what noise alone gives there (that position's noise level times the
  prior variance + 1). Where it is ``GATE_LOW``× that or less, the Kalman gain is kept:
  grain is smoothed hard. From there to ``GATE_HIGH``× the gain ramps to 1, so a hand over
  the mouth, a blink or a lighting change is followed at once, locally, in that frame;
* each position's noise level starts at the second frame's median and follows its own
  innovations (rate ``NOISE_RATE``, each capped at ``GATE_LOW``× the level, so a real change
  barely raises it), never above ``NOISE_SPREAD``× the median level.

Why these values (random-weight GPEN-64 on bench/flicker.py's clip, restored crops): with
the gate at 4/16 and a global noise level, 14% of positions opened on pure grain (feature
noise is not uniform: edges carry more) and flicker fell 1.57 → 0.70 levels at strength 1
against 0.37 with no gate at all; per-position noise levels, the gate at 8/32 and rate 0.3
gave 0.45, while the covered mouth and the cut are still followed in their first frame.

A track's state starts with its first frame (whose output is then exactly the per-frame
result), restarts at a shot change or after a frame without the track, and is dropped once
a frame passes without it: one state per live track. The gain never falls below
``MIN_GAIN``, so a frame's weight decays geometrically and the 2 s of context a ``--resume``
segment fuses before its start (``prime`` faces: encoded and fused, not decoded) leave its
first frames as a continuous run has them.

All tracks' states share one :class:`StateBudget` (``--deflicker-memory``). A track that
starts when its full state would not fit keeps a coarser one: the style code and the
coarsest maps are fused, the finest maps (most of the bytes: each level holds 4× the
pixels of the one below at half the channels) follow the frame; when not even the code fits, or
an allocation fails, the track is restored frame by frame. Tracks already running keep
their state, so the newest faces are the ones that give way, and one warning says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

MIN_GAIN = 0.1  # the noise-only gain at strength 1: a frame's weight halves every ~7 frames
GATE_LOW = 8.0  # innovation / expected noise up to which a position is treated as noise
GATE_HIGH = 32.0  # ... and from which it is followed at once (gain 1)
NOISE_RATE = 0.3  # how fast each position's noise level follows its innovations
NOISE_SPREAD = 4.0  # no position's noise level exceeds this × the median's
_MEDIAN_SAMPLES = 4096  # positions the frame's median innovation is taken over (a strided grid)
_FLOAT16_SAFE = 2.0**14  # a quarter of float16's largest value: room for the estimate to move
_NOISE_SEED = 0x5EED_0000  # super-resolution noise is seeded with this + the track id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceKey:
    """Where a face sits in time: its track, its shot and its frame (the run's frame counter)."""

    track: int
    shot: int
    frame: int
    prime: bool = False  # a context frame before a segment: fused into its track's state, not decoded


def track_noise(keys: Sequence[FaceKey], device: torch.device) -> list[torch.Generator]:
    """One generator per face, seeded from its track: a super-resolution face gets the same noise every frame."""
    return [torch.Generator(device=device).manual_seed(_NOISE_SEED + key.track) for key in keys]


def _stored_dtype(first: Tensor) -> torch.dtype:
    """The estimate's dtype between frames: float16 halves the state (what a track holds is
    nearly all estimate) and its 11-bit precision is far under what grain moves it by; tensors
    with values beyond float16's safe range stay as they are."""
    if first.dtype != torch.float32:
        return first.dtype
    low, high = torch.aminmax(first)  # no temporary of the tensor's size, unlike abs()
    return torch.float16 if max(-float(low), float(high)) < _FLOAT16_SAFE else first.dtype


def _state_bytes(first: Tensor) -> int:
    """What a :class:`_Filter` started from ``first`` holds: the estimate, and per position its variance and noise level."""
    positions = first.numel() // first.shape[0]
    return first.numel() * _stored_dtype(first).itemsize + 2 * positions * torch.float32.itemsize


class _Filter:
    """The Kalman state of one tensor of one track: estimate, per-position variance (in units of the noise), noise level."""

    def __init__(self, first: Tensor) -> None:
        self.mean = first.to(_stored_dtype(first), copy=True)
        self.var = torch.ones_like(_energy(first))  # the estimate is the first measurement: variance = noise
        self.noise: Tensor | None = None

    def update(self, x: Tensor, q: float) -> None:
        """Fuse the measurement ``x`` into the estimate and overwrite ``x`` with it."""
        prior = self.var + q
        # Where the stored (float16) estimate cannot tell the measurement from itself, the measurement is
        # the estimate: identical frames give identical faces, as with a float32 state.
        # Arithmetic runs in x's dtype: mixed float16/float32 operands take a scalar path 5× slower.
        mean = self.mean if self.mean.dtype == x.dtype else self.mean.to(x.dtype)
        settled = None if mean is self.mean else torch.empty_like(self.mean).copy_(x) == self.mean
        innovation = x.sub_(mean)  # in place: x is rebuilt as the estimate below
        scaled = _energy(innovation) / (prior + 1.0)  # what noise alone makes 1 × the noise level
        if self.noise is None:
            self.noise = _median(scaled).expand_as(scaled).clone()
        surprise = scaled / (self.noise + 1e-12)
        kalman = prior / (prior + 1.0)
        gain = kalman + (1.0 - kalman) * ((surprise - GATE_LOW) / (GATE_HIGH - GATE_LOW)).clamp_(0.0, 1.0)
        weight = gain.to(x.dtype) if settled is None else torch.where(settled, 1.0, gain.to(x.dtype))
        self.mean.copy_(innovation.mul_(weight).add_(mean))
        self.var = (1.0 - gain).square_().mul_(prior).add_(gain.square())
        self.noise.lerp_(torch.minimum(scaled, GATE_LOW * self.noise), NOISE_RATE)
        self.noise = torch.minimum(self.noise, NOISE_SPREAD * _median(self.noise))


def _energy(x: Tensor) -> Tensor:
    """Mean square over channels: (1, H, W) for a C×H×W map, (1,) for a style code (one pass)."""
    return torch.linalg.vector_norm(x, dim=0, keepdim=True, dtype=torch.float32).square_().div_(x.shape[0])


def _median(energy: Tensor) -> Tensor:
    """The median over positions, taken on a strided grid of at most ``_MEDIAN_SAMPLES`` of them."""
    flat = energy.flatten()
    step = max(1, flat.numel() // _MEDIAN_SAMPLES)
    return flat[::step].median()


class StateBudget:
    """Bytes all tracks' fusion states may hold together (``--deflicker-memory``), shared by a run's models."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit  # None: unbounded
        self.used = 0
        self.peak = 0
        self.degraded = 0  # tracks started with less than their full state

    def take(self, size: int) -> bool:
        """Reserve ``size`` bytes if they fit."""
        if self.limit is not None and self.used + size > self.limit:
            return False
        self.used += size
        self.peak = max(self.peak, self.used)
        return True

    def give(self, size: int) -> None:
        self.used -= size

    def note_degraded(self, fused: int, levels: int) -> None:
        """Count a track started with ``fused`` of its ``levels`` tensors fused; the first one warns."""
        if self.degraded == 0:
            limit = "device memory ran out" if self.limit is None else f"{self.limit / 2**20:.0f} MB (--deflicker-memory)"
            log.warning("deflicker: the tracks' fusion states reached their budget, %s; faces that appear now fuse "
                        "fewer levels (the finest follow each frame), or none (frame by frame) when not even the "
                        "coarsest fit (this one: %d of %d)", limit, fused, levels)
        self.degraded += 1


@dataclass
class _Track:
    shot: int
    frame: int
    filters: list[_Filter | None]  # None: that tensor follows the frame (over the memory budget)
    nbytes: int = 0  # reserved in the budget


class TemporalFusion:
    """The fusion state of every live track of one model; :meth:`fuse` takes faces in frame order."""

    def __init__(self, strength: float, frames_per_source_frame: float = 1.0, budget: StateBudget | None = None) -> None:
        """``frames_per_source_frame``: 2 at field rate (50p from 50i), 4/5 after inverse telecine.
        The steady gain is per source frame: an estimate keeps the same share after the same
        time, (1 - gain) per source frame, however many frames that time holds."""
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"deflicker strength must be within (0, 1], got {strength}")
        self.strength = strength
        gain = 1.0 - (1.0 - MIN_GAIN**strength) ** (1.0 / frames_per_source_frame)
        self._q = gain * gain / (1.0 - gain)  # the random walk's variance whose steady Kalman gain is `gain`
        self._tracks: dict[int, _Track] = {}
        self.budget = budget or StateBudget()
        self.peak_tracks = 0
        self.seconds = 0.0

    def __len__(self) -> int:
        return len(self._tracks)

    @property
    def state_bytes(self) -> int:
        """Memory the live tracks' states hold (about half of one face's float32 encoder outputs per track)."""
        return sum(track.nbytes for track in self._tracks.values())

    def fuse(self, key: FaceKey, code: Tensor, features: Sequence[Tensor]) -> None:
        """Replace one face's style code (D) and encoder maps (C×H×W each) in place by its track's estimate."""
        started = time.perf_counter()
        for ended in [t for t, track in self._tracks.items() if track.frame < key.frame - 1]:
            self._drop(ended)  # a live track has a face in every frame
        tensors = (code, *features)
        track = self._tracks.get(key.track)
        if track is None or track.shot != key.shot or track.frame != key.frame - 1:
            if track is not None:
                self._drop(key.track)
            self._tracks[key.track] = self._start(key, tensors)
        else:
            for state, tensor in zip(track.filters, tensors, strict=True):
                if state is not None:
                    state.update(tensor, self._q)
            track.frame = key.frame
        self.peak_tracks = max(self.peak_tracks, len(self._tracks))
        self.seconds += time.perf_counter() - started

    def _start(self, key: FaceKey, tensors: Sequence[Tensor]) -> _Track:
        """A new track's state: the code, then the maps from the coarsest, as many as the budget takes."""
        track = _Track(key.shot, key.frame, [None] * len(tensors))
        order = [0, *range(len(tensors) - 1, 0, -1)]  # features run fine to coarse
        for index in order:
            size = _state_bytes(tensors[index])
            if not self.budget.take(size):
                break
            try:
                track.filters[index] = _Filter(tensors[index])
            except (MemoryError, torch.OutOfMemoryError):  # the budget was more than the device had
                self.budget.give(size)
                break
            track.nbytes += size
        fused = sum(f is not None for f in track.filters)
        if fused < len(tensors):
            self.budget.note_degraded(fused, len(tensors))
        return track

    def _drop(self, track: int) -> None:
        self.budget.give(self._tracks.pop(track).nbytes)
