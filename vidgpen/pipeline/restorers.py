"""The restorers a run uses, loaded from its model plan as its faces need them.

A fixed model is loaded at once (its file was found by the plan), so a broken checkpoint
fails before any output; ``--model auto`` candidates load when a face first needs them,
and each person (each track, in a run without persons) keeps the model it was given first,
so a face never switches look mid-shot, nor between shots of the same person.
"""

from __future__ import annotations

import logging

from vidgpen.errors import WeightsError
from vidgpen.faces.analyze import TrackedFace
from vidgpen.models.runtime.factory import load_restorer
from vidgpen.models.runtime.restorer import Restorer, TrackedRestorer
from vidgpen.plan.choice import Choice
from vidgpen.plan.run_plan import RunPlan

log = logging.getLogger(__name__)


class RestorerSet:
    """The run's restorers keyed by model name; ``restorer``: an object the caller plugged in."""

    def __init__(self, plan: RunPlan, restorer: Restorer | None = None) -> None:
        self._plan = plan
        self._loaded: dict[str, Restorer] = {}
        self._track: dict[int | str, Choice] = {}  # by person where the run links tracks into persons
        self._fixed: Choice | None = None
        if restorer is not None:
            self._fixed = self._add(type(restorer).__name__, restorer)
        elif plan.models.fixed is not None:
            self._fixed = self._add(plan.models.fixed, self._load(plan.models.fixed))

    def _add(self, name: str, restorer: Restorer) -> Choice:
        self._loaded[name] = restorer
        if self._plan.config.deflicker > 0 and not isinstance(restorer, TrackedRestorer):
            log.warning("deflicker: %s restores each frame on its own (it cannot fuse a track's frames); "
                        "its faces are not deflickered", name)
        return Choice(name, int(restorer.in_size), int(getattr(restorer, "out_size", restorer.in_size)))

    def _load(self, name: str) -> Restorer:
        plan, cfg = self._plan, self._plan.config
        return load_restorer(plan.models.specs[name], device=plan.device, dtype=plan.dtype,
                             batch_size=cfg.batch_size, compile=cfg.compile)

    def choose(self, face: TrackedFace) -> Choice:
        if self._fixed is not None:
            return self._fixed
        key = face.person if face.person is not None else face.track
        if key not in self._track:
            self._track[key] = self._plan.models.choose(face)
        return self._track[key]

    def get(self, name: str) -> Restorer:
        if name not in self._loaded:
            restorer = self._load(name)
            expected = next(c for c in self._plan.models.candidates if c.name == name)
            if (restorer.in_size, restorer.out_size) != (expected.in_size, expected.out_size):
                raise WeightsError(f"{name}: takes {restorer.in_size} px faces and returns {restorer.out_size} px, "
                                   f"not {expected.in_size} → {expected.out_size} as its entry says")
            self._add(name, restorer)
        return self._loaded[name]

    @property
    def names(self) -> dict[str, str]:
        """Each model this run used: its input → output side."""
        used = [self._fixed] if self._fixed is not None else list(self._track.values())
        return {c.name: f"{c.in_size}→{c.out_size}" for c in sorted(set(used), key=lambda c: c.name)}
