"""Which models a run may use, worked out before anything is loaded.

A fixed model (``--model NAME`` or ``--weights FILE``) is one spec, its file found or
downloaded here so a missing model fails before any output exists; with ``model="auto"``
every candidate is either in the cache or has a source that answers, and its sides are read
(cheaply: shapes only) so each track can be given one by size. Nothing here loads a network:
the plan is plain data that a Ray driver can ship to its workers, and
:class:`~vidgpen.pipeline.restorers.RestorerSet` loads what the faces need.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidgpen.config import RestoreConfig
from vidgpen.errors import ConfigError
from vidgpen.faces.align import affine_scale
from vidgpen.faces.analyze import TrackedFace
from vidgpen.models.runtime.factory import sides, spec_of
from vidgpen.models.runtime.restorer import Restorer
from vidgpen.weights import registry
from vidgpen.weights.download import reachable
from vidgpen.weights.spec import ModelSpec


@dataclass(frozen=True)
class Choice:
    """One model a face can get: its name, and the sides of the crop it takes and returns."""

    name: str
    in_size: int
    out_size: int


@dataclass(frozen=True)
class ModelPlan:
    """The models of one run: ``fixed`` (a spec, or None for a restorer object the caller
    passed) or the ``candidates`` of ``--model auto`` sorted by output side; ``template``: the
    alignment they were trained with."""

    specs: dict[str, ModelSpec]
    fixed: str | None
    candidates: tuple[Choice, ...]
    template: str
    auto_factor: float

    def choose(self, face: TrackedFace) -> Choice:
        """The auto candidate for a face: the smallest output side of at least ``auto_factor``
        times its size on screen (the largest when none is)."""
        extent = 1.0 / affine_scale(face.affine(1, self.template))
        wanted = self.auto_factor * extent
        return next((c for c in self.candidates if c.out_size >= wanted), self.candidates[-1])


def plan_models(config: RestoreConfig, restorer: Restorer | None = None, find_weights: bool = True) -> ModelPlan:
    """The model plan of ``config``; ``restorer``: an object the caller plugged in (it wins).
    ``find_weights`` False: the specs and their template only, no file looked for (inspect)."""
    if restorer is not None:
        return ModelPlan({}, None, (), config.template, config.auto_factor)
    if config.weights or config.model != "auto":
        name = str(config.weights or config.model)
        spec = spec_of(name)
        if find_weights:
            registry.resolve_source(name)  # found or downloaded now: before any output
        return ModelPlan({name: spec}, name, (), _template([spec], config.template), config.auto_factor)
    names = [n.strip() for n in config.auto_models.split(",") if n.strip()] or registry.AUTO_MODELS
    specs = {name: registry.entry(name) for name in names}
    checked = (_checked(spec) for spec in specs.values()) if find_weights else ()
    candidates = sorted(checked, key=lambda c: (c.out_size, c.in_size))
    return ModelPlan(specs, None, tuple(candidates), _template(specs.values(), config.template), config.auto_factor)


def _checked(spec: ModelSpec) -> Choice:
    """An auto candidate's sides, with its file cached or downloadable: nothing is loaded yet."""
    path = registry.path_of(spec.name)
    if not path.is_file():
        reachable(spec, path)
    return Choice(spec.name, *sides(spec, path if path.is_file() else None))


def _template(specs, default: str) -> str:
    """The alignment the models were trained with; a ``--weights`` file takes the config's."""
    templates = {spec.template or default for spec in specs}
    if len(templates) > 1:
        raise ConfigError(f"model auto: the candidates were trained on different templates ({', '.join(templates)})")
    return templates.pop()
