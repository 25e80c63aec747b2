"""Which restorer a face gets: one fixed model, or with ``model="auto"`` one per track by size.

Every model a run may use is found before the run starts (:meth:`RestorerSet.__init__`
runs inside ``Pipeline.run`` before ``on_start``): a fixed model is loaded, downloading
it first if need be; with ``auto`` each candidate is either in the cache or has a source
that answers, and the candidates are loaded (and downloaded) only when a face first needs
them. Offline, a missing model is one :class:`~vidgpen.errors.WeightsError` before any
output exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidgpen.config import RestoreConfig
from vidgpen.errors import ConfigError, WeightsError
from vidgpen.faces.align import affine_scale
from vidgpen.faces.analyze import TrackedFace
from vidgpen.models import registry
from vidgpen.models.download import reachable
from vidgpen.models.factory import load_restorer, sides, spec_of
from vidgpen.models.registry import ModelSpec
from vidgpen.models.restorer import Restorer


@dataclass(frozen=True)
class Choice:
    """One model a face can get: its name, and the sides of the crop it takes and returns."""

    name: str
    size: int
    out_size: int


class RestorerSet:
    """The restorers a run uses, keyed by model name.

    With a fixed model there is one; with ``model="auto"`` each track gets the candidate
    (:data:`~vidgpen.models.registry.AUTO_MODELS`) with the smallest *output* side of at
    least ``auto_factor`` times its on-screen size, chosen once per track so a face never
    switches model (and look) mid-shot. The crop is cut at that model's input side and
    pasted back from its output side, so a super-resolution checkpoint (512 → 2048) is
    chosen for the detail it delivers and fed the crop it takes.
    """

    def __init__(self, config: RestoreConfig, restorer: Restorer | None = None) -> None:
        self._config = config
        self._loaded: dict[str, Restorer] = {}
        self._track: dict[int, Choice] = {}
        self._specs: dict[str, ModelSpec] = {}
        self._fixed: Choice | None = None
        self._candidates: list[Choice] = []
        if restorer is not None:
            self._fixed = self._add(type(restorer).__name__, restorer)
        elif config.weights or config.model != "auto":
            name = str(config.weights or config.model)
            self._specs[name] = spec_of(name)
            self._fixed = self._add(name, self._load(name))
        else:
            checked = (self._checked(name) for name in registry.AUTO_MODELS)
            self._candidates = sorted(checked, key=lambda c: (c.out_size, c.size))
        self.template = self._template()

    def _add(self, name: str, restorer: Restorer) -> Choice:
        self._loaded[name] = restorer
        return Choice(name, int(restorer.size), int(getattr(restorer, "out_size", restorer.size)))

    def _checked(self, name: str) -> Choice:
        """An auto candidate's sides, with its file cached or downloadable: nothing is loaded yet."""
        spec = self._specs[name] = registry.entry(name)
        path = registry.path_of(name)
        if not path.is_file():
            reachable(spec, path)
        return Choice(name, *sides(spec, path if path.is_file() else None))

    def _template(self) -> str:
        """The alignment the models were trained with; a ``--weights`` file takes the config's."""
        names = [c.name for c in (self._candidates or [self._fixed])]
        templates = {(self._specs[n].template if n in self._specs else None) or self._config.template for n in names}
        if len(templates) > 1:
            raise ConfigError(f"model auto: the candidates were trained on different templates ({', '.join(templates)})")
        return templates.pop()

    def _load(self, name: str) -> Restorer:
        cfg = self._config
        if self._specs[name].kind == "gpen-onnx" and cfg.deflicker > 0:
            raise ConfigError(f"deflicker: {name} is an ONNX export, one graph from face to face; fusing a "
                              "track's frames needs GPEN's encoder and generator apart: give the checkpoint, "
                              "or --deflicker 0")
        return load_restorer(self._specs[name], device=cfg.device, dtype=cfg.dtype, batch_size=cfg.batch_size,
                             compile=cfg.compile)

    def choose(self, face: TrackedFace) -> Choice:
        if self._fixed is not None:
            return self._fixed
        if face.track not in self._track:
            extent = 1.0 / affine_scale(face.affine(1, self.template))
            wanted = self._config.auto_factor * extent
            self._track[face.track] = next((c for c in self._candidates if c.out_size >= wanted), self._candidates[-1])
        return self._track[face.track]

    def get(self, name: str) -> Restorer:
        if name not in self._loaded:
            restorer = self._load(name)
            expected = next(c for c in self._candidates if c.name == name)
            if (restorer.size, restorer.out_size) != (expected.size, expected.out_size):
                raise WeightsError(f"{name}: takes {restorer.size} px faces and returns {restorer.out_size} px, "
                                   f"not {expected.size} → {expected.out_size} as its entry says")
            self._loaded[name] = restorer
        return self._loaded[name]

    @property
    def names(self) -> dict[str, str]:
        """Each model this run used: its input → output side."""
        used = [self._fixed] if self._fixed is not None else list(self._track.values())
        return {c.name: f"{c.size}→{c.out_size}" for c in sorted(set(used), key=lambda c: c.name)}
