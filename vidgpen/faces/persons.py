"""Persons: face tracks of one video linked into people, with ids that survive cuts and segments.

A track ends at a cut, behind a hand, or at a segment's edge; its person does not. Each
track gets a person once, when its first frame leaves the face stage: the nearest known
person within :data:`~vidgpen.faces.identity.MATCH_DISTANCE` of the track's embedding that
is not already in a frame with it (two faces of one frame are never one person), else a
new one. Ids (``p1``, ``p2``, ...) count people in the order they are first seen.

A segmented run (``--resume``, and ``batch`` on Ray) hands the book from segment to
segment: the frames both segments decode (their context) carry each face's box and
person, so a track that crosses the edge keeps its person by its box, not by a second
guess from its face. ``vidgpen inspect --save-persons FILE`` writes the book (ids and
embeddings) and ``restore --persons FILE`` starts from it, so ids are the ones inspect
printed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidgpen.errors import ConfigError, InputError
from vidgpen.faces.detect import Detection
from vidgpen.faces.identity import (
    EMBED_PER_TRACK,
    MATCH_DISTANCE,
    MIN_FACE,
    Reference,
    detection_quality,
    distance,
    embed,
    face_crop,
)
from vidgpen.faces.track import iou

GALLERY = 8  # embeddings kept per person (one per track, the first ones): bounded however long the video
_EDGE_IOU = 0.5  # a box in a shared context frame is the same face when it overlaps this much
_VERSION = 1


@dataclass
class Person:
    id: str
    gallery: list[np.ndarray] = field(default_factory=list)  # a track's mean embedding each
    matched: set[str] = field(default_factory=set)  # "wanted" / "unwanted": a reference photo any track matched

    def distance(self, embedding: np.ndarray) -> float:
        return min(distance(embedding, g) for g in self.gallery) if self.gallery else float("inf")


def _time_key(time: float) -> int:
    """Frames are matched across segments by their time in milliseconds (pts may be absent)."""
    return round(time * 1000)


class PersonBook:
    """The persons of one video, and the boxes of faces in frames a next segment shares.

    ``edges``: time key → [(box, person id)] recorded from frames at or after
    ``record_from`` seconds (the next segment's first context frame).
    """

    def __init__(self, threshold: float = MATCH_DISTANCE, min_face: float = MIN_FACE) -> None:
        self.threshold = threshold
        self.min_face = min_face  # px: a track never seen this big is a person of its own
        self.persons: dict[str, Person] = {}
        self.edges: dict[int, list[tuple[np.ndarray, str]]] = {}
        self._inherited: dict[int, list[tuple[np.ndarray, str]]] = {}  # the previous segment's edges
        self.record_from: float | None = None

    def new_segment(self, record_from: float | None) -> None:
        """The edges recorded so far become what the next segment's tracks are linked by."""
        self._inherited, self.edges, self.record_from = self.edges, {}, record_from

    def by_box(self, sightings: list[tuple[float, np.ndarray]]) -> str | None:
        """The person whose box the previous segment saw where this track is, at a shared frame."""
        for when, box in sightings:
            for seen, person in self._inherited.get(_time_key(when), []):
                if iou(seen, box) >= _EDGE_IOU:
                    return person
        return None

    def nearest(self, embedding: np.ndarray, busy: set[str]) -> tuple[str | None, float]:
        """The closest person not in ``busy``, and its distance (None past the threshold)."""
        best, best_d = None, float("inf")
        for person in self.persons.values():
            if person.id not in busy and (d := person.distance(embedding)) < best_d:
                best, best_d = person.id, d
        return (best, best_d) if best_d <= self.threshold else (None, best_d)

    def assign(self, embedding: np.ndarray | None, busy: set[str]) -> Person:
        """The track's person: the nearest free one within the threshold, else a new one
        (always, for a track without an embedding)."""
        pid = None if embedding is None else self.nearest(embedding, busy)[0]
        if pid is None:
            pid = f"p{len(self.persons) + 1}"
            self.persons[pid] = Person(pid)
        person = self.persons[pid]
        if embedding is not None and len(person.gallery) < GALLERY:
            person.gallery.append(embedding)
        return person

    def record(self, time: float, box: np.ndarray, person: str) -> None:
        if self.record_from is not None and time >= self.record_from - 1e-6:
            self.edges.setdefault(_time_key(time), []).append((np.asarray(box, np.float64), person))

    def to_json(self) -> dict:
        return {
            "version": _VERSION,
            "threshold": self.threshold,
            "min_face": self.min_face,
            "persons": [{"id": p.id, "matched": sorted(p.matched), "embeddings": [np.round(g, 6).tolist() for g in p.gallery]}
                        for p in self.persons.values()],
            "edges": {str(k): [[np.round(b, 3).tolist(), pid] for b, pid in v] for k, v in self.edges.items()},
        }

    @classmethod
    def from_json(cls, data: dict, source: str) -> PersonBook:
        try:
            book = cls(float(data["threshold"]), float(data.get("min_face", MIN_FACE)))
            for item in data["persons"]:
                book.persons[item["id"]] = Person(item["id"], [np.asarray(e, np.float32) for e in item["embeddings"]],
                                                  set(item.get("matched", [])))
            book.edges = {int(k): [(np.asarray(b, np.float64), pid) for b, pid in v]
                          for k, v in data.get("edges", {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: not a vidgpen persons file ({exc})") from None
        return book

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> PersonBook:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{path}: cannot read the persons file ({exc.strerror})") from None
        except ValueError as exc:
            raise InputError(f"{path}: not a vidgpen persons file ({exc})") from None
        book = cls.from_json(data, str(path))
        book.edges = {}  # a file from inspect: its edges and photo matches are not this run's
        for person in book.persons.values():
            person.matched.clear()
        return book


@dataclass
class PersonFilter:
    """Which persons a run restores: by id (``--faces p1,p3``) and by photo (``--faces-of``,
    ``--skip-faces-of``); with neither, everyone."""

    ids: set[str] | None = None
    wanted: list[Reference] = field(default_factory=list)
    unwanted: list[Reference] = field(default_factory=list)
    threshold: float = MATCH_DISTANCE

    def __post_init__(self) -> None:
        if self.ids is not None and (self.wanted or self.unwanted):
            raise ConfigError("faces: person ids and --faces-of / --skip-faces-of select the same thing; give one")

    @property
    def by_photo(self) -> bool:
        return bool(self.wanted or self.unwanted)

    def _matches(self, refs: list[Reference], embedding: np.ndarray) -> bool:
        return any(distance(embedding, r.embedding) <= self.threshold for r in refs)

    def keeps(self, person: Person, embedding: np.ndarray | None) -> bool:
        """Whether this track of ``person`` is restored. By photo, a person matches once any of
        their tracks did, so every later track of theirs is treated alike (a track seen from the
        side may miss the photo that the person's frontal track matched)."""
        for kind, refs in (("wanted", self.wanted), ("unwanted", self.unwanted)):
            if embedding is not None and self._matches(refs, embedding):
                person.matched.add(kind)
        return self.keeps_person(person)

    def keeps_person(self, person: Person) -> bool:
        """Whether the person is restored, by id, or by what their tracks so far matched."""
        if self.ids is not None:
            return person.id in self.ids
        return (not self.wanted or "wanted" in person.matched) and "unwanted" not in person.matched


@dataclass
class Sighting:
    """One detection of a track in a frame still held by the face stage."""

    time: float
    image: np.ndarray
    detection: Detection


class Identity:
    """Gives each track its person (once) and says whether it is restored; keeps each person's
    best crop for ``inspect --people``. ``seconds`` and ``tracks``: the cost, for reports."""

    def __init__(self, book: PersonBook, selection: PersonFilter) -> None:
        self.book, self.selection = book, selection
        self.portraits: dict[str, tuple[float, np.ndarray]] = {}  # person → (quality, crop)
        self.seconds = 0.0
        self.tracks = 0

    def decide(self, sightings: list[Sighting], busy: set[str]) -> tuple[str, bool]:
        """(person id, restored) for a track seen in ``sightings``; ``busy``: persons of tracks
        that share a frame with it."""
        started = time.perf_counter()
        scored = sorted(((detection_quality(s.image, s.detection), i) for i, s in enumerate(sightings)), reverse=True)
        best = [sightings[i] for _, i in scored[:EMBED_PER_TRACK]]
        seen_big = max(s.detection.size for s in sightings) >= self.book.min_face
        mean = np.mean([embed(s.image, s.detection.box) for s in best], axis=0) if seen_big else None
        linked = self.book.by_box([(s.time, s.detection.box) for s in sightings])
        person = self.book.persons[linked] if linked in self.book.persons else self.book.assign(mean, busy)
        if scored[0][0] > self.portraits.get(person.id, (-1.0, None))[0]:
            self.portraits[person.id] = (scored[0][0], face_crop(best[0].image, best[0].detection.box))
        self.seconds += time.perf_counter() - started
        self.tracks += 1
        return person.id, self.selection.keeps(person, mean)

    def summary(self) -> dict[str, Any]:
        """For the run's report: how many persons, the threshold that linked them, who was restored."""
        restored = [pid for pid, p in self.book.persons.items() if self.selection.keeps_person(p)]
        return {"count": len(self.book.persons), "threshold": self.book.threshold, "restored": restored,
                "seconds_per_track": round(self.seconds / max(self.tracks, 1), 3)}

    def nobody_selected(self) -> bool:
        """Photos were given and no person matched them: the run restores no face."""
        sel = self.selection
        return bool(sel.wanted) and not any(sel.keeps_person(p) for p in self.book.persons.values())
