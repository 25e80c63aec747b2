"""The streaming face stage shared by the restore pipeline and ``vidgpen inspect``.

Frames go in one at a time; each comes back, in order, once the ``lookahead`` frames after
it have been seen, with its faces: tracked, their landmarks smoothed over time by a
fixed-lag Kalman smoother (optionally refined first by registering their crops), ready to
align. Everything downstream (alignment, paste-back, ``inspect --json`` and ``--overlay``)
takes ``TrackedFace.landmarks``, the one final estimate. Only the lookahead window of frames, each
track's recent detections and one reference crop per live track are held, so memory does
not grow with the video.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from vidgpen.errors import ConfigError
from vidgpen.faces.align import affine_scale, face_affine, umeyama
from vidgpen.faces.detect import Detection, Detector, make_detector
from vidgpen.faces.follow import FlowFollower
from vidgpen.faces.persons import Identity, Sighting
from vidgpen.faces.register import CropRegistrar
from vidgpen.faces.settings import FaceStageSettings
from vidgpen.faces.shots import ShotDetector
from vidgpen.faces.smooth import STRENGTH, LandmarkSmoother
from vidgpen.faces.track import Track, Tracker
from vidgpen.io.frames import Frame
from vidgpen.stats import StageTimes


@dataclass
class TrackedFace:
    track: int
    box: np.ndarray  # (4,) x0, y0, x1, y1 in frame pixels
    score: float
    detected: bool  # False: carried from neighbouring frames (missed, or between detection runs)
    landmarks_raw: np.ndarray | None  # (5, 2) the detector's, when detected in this frame
    landmarks: np.ndarray  # (5, 2) smoothed over time: what alignment uses
    person: str | None = None  # "p1", ...: set when the run links tracks into persons (faces.persons)

    def affine(self, size: int, template: str = "gpen") -> np.ndarray:
        """2×3 map from frame pixels to the S×S aligned crop."""
        return face_affine(self.landmarks, size, template)


@dataclass
class AnalyzedFrame:
    frame: Frame
    shot: int
    faces: list[TrackedFace]


@dataclass
class _Pending:
    seq: int
    frame: Frame
    shot: int
    tracks: list[Track] = field(default_factory=list)  # tracks that may be present here


class FaceAnalyzer:
    """Detect → track → register → smooth, streaming with a bounded lookahead.

    ``max_missed`` counts detection runs a track may miss before it ends;
    ``select`` keeps "all" faces, the "largest" per frame, or the given track ids;
    ``min_face`` drops detections whose box is smaller (longer side, in pixels);
    ``min_hits``: a track is reported only once detected that many times (within the
    lookahead, so from its first frame on) — a one-frame false detection never is; except
    at the end of the video, for a track still alive whose frames were all in the lookahead
    when the video ended (it had no chance to be confirmed: a 1-frame clip, say);
    ``register``: refine each detection's landmarks by registering its crop to its track's
    recent ones, and follow tracks so between detection runs (:mod:`vidgpen.faces.register`);
    smoothing then takes the registered landmarks. Off by default: on real talking faces it
    pulls the mouth and a turning head towards the track's mean (bench/landmarks.py);
    ``identity``: give each track a person when its first frame leaves, and drop the tracks
    of persons not selected (:mod:`vidgpen.faces.persons`).
    """

    def __init__(
        self,
        detector: Detector,
        *,
        detect_every: int = 1,
        lookahead: int = 6,
        max_missed: int = 5,
        template: str = "gpen",
        min_face: float = 16.0,
        select: str | Sequence[int] = "all",
        min_hits: int = 2,
        shot_threshold: float = 0.45,
        register: bool = False,
        times: StageTimes | None = None,
        identity: Identity | None = None,
    ):
        if detect_every < 1 or lookahead < 0 or max_missed < 0:
            raise ConfigError(f"face analysis: detect_every must be ≥ 1, lookahead and max_missed ≥ 0 (got {detect_every}, {lookahead}, {max_missed})")
        if isinstance(select, str) and select not in ("all", "largest"):
            raise ConfigError(f"face selection {select!r}: use 'all', 'largest' or a list of track ids")
        self.detector = detector
        self.detect_every = detect_every
        # Frames between detection runs are interpolated, so the next run must be in view.
        self.lookahead = max(lookahead, detect_every - 1)
        # lookahead 0 (and detecting every frame) means no smoothing: raw landmarks.
        # The past window is longer than the lookahead: it is where each track's noise is measured.
        past = max(3 * self.lookahead, 4 * detect_every) if self.lookahead else 0
        self.smoother = LandmarkSmoother(lookahead=self.lookahead, past=past)
        if detector.name in STRENGTH:
            self.smoother = replace(self.smoother, strength=STRENGTH[detector.name])
        if register:
            # Registered points are steadier than a detector's and follow a rigid face: smoothed
            # less, with the prior of a steadier point (what a short track, whose few samples say
            # little, leans on). tests/test_deflicker_clips.py's blink-and-cut clip (8-frame shots):
            # fused / per-frame flicker 0.525 with the raw points' settings (strength 4), 0.40 with
            # this prior, 0.43 with it at strength 8.
            self.smoother = replace(self.smoother, strength=4.0, prior_r=1e-4, prior_q=4e-4)
        # How far from its nearest detection a face is still carried.
        self.reach = max(self.lookahead, 2 * detect_every) if self.lookahead else 0
        self.max_missed_frames = (max_missed + 1) * detect_every - 1
        self.template = template
        self.min_face = min_face
        self.select = select
        self.min_hits = min_hits if self.lookahead else 1  # nothing to confirm with when not looking ahead
        self.tracker = Tracker(max_missed=max_missed)
        self.shots = ShotDetector(shot_threshold)
        self.registrar = CropRegistrar() if register else None
        # Without registration, optical flow follows the faces between detection runs.
        self.flow = FlowFollower() if detect_every > 1 and not register else None
        self.identity = identity
        self.times = times or StageTimes()  # detect, track, register, smooth: the run's own table when given
        self.frames = self.detections = 0
        self._pending: deque[_Pending] = deque()
        self._tracks: dict[int, Track] = {}  # live, and ended ones still needed by pending frames
        self._seq = 0
        self._next_detect = 0
        self._flushed_from: int | None = None  # first frame emitted by flush()

    def push(self, frame: Frame) -> list[AnalyzedFrame]:
        seq = self._seq
        self._seq += 1
        t0 = time.perf_counter()
        cut = self.shots.update(frame.image)
        if cut:
            self.tracker.end_all(seq)
            self._next_detect = seq
        t1 = time.perf_counter()
        detecting = seq >= self._next_detect
        if detecting:
            self._next_detect = seq + self.detect_every
            detections = [d for d in self.detector.detect(frame.image) if d.size >= self.min_face]
            t2 = time.perf_counter()
            self.detections += len(detections)
            for track in self.tracker.update(seq, detections):
                self._tracks[track.id] = track
        else:
            t2 = time.perf_counter()
        self._pending.append(_Pending(seq, frame, self.shots.shot))
        t3 = time.perf_counter()
        self.times.add("detect", t2 - t1)
        self.times.add("track", (t1 - t0) + (t3 - t2))  # shot detection + assignment
        self.frames += 1
        self._follow(frame.image, seq, detecting)
        out = []
        while len(self._pending) > self.lookahead:
            out.append(self._emit())
        return out

    def _follow(self, image: np.ndarray, seq: int, detecting: bool) -> None:
        """Refine this run's detections by registering their crops (before smoothing, which then
        also steadies what registration follows of a codec's own motion errors); between runs,
        follow each track by registration, or else by optical flow, so the smoother has a sample
        in every frame."""
        if self.registrar is None and self.flow is None:
            return
        started = time.perf_counter()
        if detecting:
            detected = {t.id: t.history[-1][1] for t in self.tracker.live.values() if t.last_seen == seq}
            if self.registrar is not None:
                self.registrar.refine(image, self.shots.shot, seq, detected)
            else:
                self.flow.start(image, self.shots.shot, seq, {tid: d.landmarks for tid, d in detected.items()})
        else:
            follower = self.registrar if self.registrar is not None else self.flow
            for track_id, points in follower.follow(image, self.shots.shot, seq).items():
                if track_id in self.tracker.live:
                    self.tracker.live[track_id].between.append((seq, points))
        self.times.add("register" if self.registrar is not None else "follow", time.perf_counter() - started)

    def flush(self) -> list[AnalyzedFrame]:
        if self._pending:
            self._flushed_from = self._pending[0].seq
        out = []
        while self._pending:
            out.append(self._emit())
        return out

    def _emit(self) -> AnalyzedFrame:
        t0, identity_before = time.perf_counter(), self.identity.seconds if self.identity else 0.0
        item = self._pending.popleft()
        held = {p.seq: p.frame for p in (item, *self._pending)}  # frames a track's person can be decided on
        faces = [f for track in list(self._tracks.values()) if (f := self._face(track, item.seq, held)) is not None]
        if self.identity is not None:
            for face in faces:
                self.identity.book.record(item.frame.time, face.box, face.person)
            faces = [f for f in faces if self._tracks[f.track].keep]
        faces = self._selected(faces)
        self._forget(item.seq + 1)
        identity = (self.identity.seconds if self.identity else 0.0) - identity_before
        if self.identity is not None:
            self.times.add("identity", identity)
        self.times.add("smooth", time.perf_counter() - t0 - identity)
        return AnalyzedFrame(item.frame, item.shot, faces)

    def _face(self, track: Track, seq: int, held: dict[int, Frame]) -> TrackedFace | None:
        if (track.hits < self.min_hits and not self._cut_short(track)) or seq < track.born or (track.ended_at is not None and seq >= track.ended_at):
            return None
        if seq > track.last_seen + self.max_missed_frames:
            return None
        times = np.array([f for f, _ in track.history])
        near = np.abs(times - seq)
        if near.min() > self.reach:
            return None
        nearest = track.history[int(near.argmin())][1]
        samples = sorted([(f, d.points) for f, d in track.history] + list(track.between), key=lambda fp: fp[0])
        landmarks = self.smoother.smooth(np.array([f for f, _ in samples]), np.stack([p for _, p in samples]), seq)
        landmarks = landmarks.astype(np.float32)
        detected = bool(near.min() == 0)
        if detected:
            box = nearest.box.astype(np.float64)
        else:
            box = _carry_box(nearest, landmarks)
        face = TrackedFace(
            track=track.id,
            box=box,
            score=nearest.score,
            detected=detected,
            landmarks_raw=nearest.landmarks.copy() if detected else None,
            landmarks=landmarks,
        )
        if self.identity is not None:
            if track.person is None:
                self._decide(track, face, seq, held)
            face.person = track.person
        return face

    def _decide(self, track: Track, face: TrackedFace, seq: int, held: dict[int, Frame]) -> None:
        """The track's person, from its detections in frames still held (a track's person is
        decided when its first frame leaves, so these are its first ones); the face being
        emitted stands in when none of its detections is held any more."""
        sightings = [Sighting(held[s].time, held[s].image, d) for s, d in track.history if s in held]
        if not sightings:
            sightings.append(Sighting(held[seq].time, held[seq].image, Detection(face.box, face.score, face.landmarks)))
        seen = {s for s, _ in track.history}
        busy = {t.person for t in self._tracks.values() if t.person and t is not track and seen & {s for s, _ in t.history}}
        track.person, track.keep = self.identity.decide(sightings, busy)

    def _cut_short(self, track: Track) -> bool:
        """Unconfirmed only because the video ended: alive, born in the final lookahead."""
        return self._flushed_from is not None and track.born >= self._flushed_from and track.id in self.tracker.live

    def _selected(self, faces: list[TrackedFace]) -> list[TrackedFace]:
        if self.select == "all":
            return faces
        if self.select == "largest":
            return [max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))] if faces else []
        wanted = set(self.select)
        return [f for f in faces if f.track in wanted]

    def _forget(self, next_seq: int) -> None:
        """Drop what no frame from ``next_seq`` on can use: old detections, finished tracks."""
        keep_from = next_seq - self.smoother.past_frames
        for tid, track in list(self._tracks.items()):
            while len(track.history) > 2 and track.history[0][0] < keep_from:
                track.history.popleft()
            while track.between and track.between[0][0] < keep_from:
                track.between.popleft()
            ended = track.ended_at is not None and next_seq >= track.ended_at
            gone = tid not in self.tracker.live and next_seq > track.last_seen + self.max_missed_frames
            if ended or gone:
                del self._tracks[tid]


def make_analyzer(settings: FaceStageSettings, times: StageTimes | None = None,
                  identity: Identity | None = None, detector: Detector | None = None) -> FaceAnalyzer:
    """The face stage as the run plan sets it: restore and inspect both build it here from the
    same plan, so the track and person ids inspect shows are the ones ``restore --faces`` selects.
    ``detector`` replaces the one the settings name (benchmarks replay saved detections)."""
    if detector is None:
        detector = make_detector(settings.detector, max_side=settings.detect_max_side, device=settings.device)
    return FaceAnalyzer(
        detector,
        detect_every=settings.detect_every,
        lookahead=settings.lookahead,
        max_missed=settings.max_missed,
        template=settings.template,
        min_face=settings.min_face,
        select=settings.select,
        register=settings.register,
        times=times,
        identity=identity,
    )


def _carry_box(nearest: Detection, landmarks: np.ndarray) -> np.ndarray:
    """The nearest detection's box moved and scaled with the landmarks."""
    m = umeyama(nearest.landmarks, landmarks)
    scale = affine_scale(m)
    centre = ((nearest.box[:2] + nearest.box[2:]) / 2) @ m[:, :2].T + m[:, 2]
    half = (nearest.box[2:] - nearest.box[:2]) / 2 * scale
    return np.concatenate([centre - half, centre + half])
