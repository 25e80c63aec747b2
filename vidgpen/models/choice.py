"""Which restorer a face gets: one fixed model, or with ``model="auto"`` one per track by size."""

from __future__ import annotations

from vidgpen.config import RestoreConfig
from vidgpen.errors import ConfigError
from vidgpen.faces.align import affine_scale
from vidgpen.faces.analyze import TrackedFace
from vidgpen.models.restorer import Restorer

AUTO_SIZES = (256, 512, 1024, 2048)


class RestorerSet:
    """The restorers a run uses, keyed by crop size, loaded on first use.

    With a fixed model there is one; with ``model="auto"`` each track gets the smallest
    GPEN at least ``auto_factor`` times its on-screen size, chosen once per track so a
    face never switches model (and look) mid-shot.
    """

    def __init__(self, config: RestoreConfig, restorer: Restorer | None = None) -> None:
        self._config = config
        self._loaded: dict[int, Restorer] = {}
        self._names: dict[int, str] = {}
        self._track_size: dict[int, int] = {}
        self._fixed: int | None = None
        name = type(restorer).__name__
        if restorer is None and (config.weights or config.model != "auto"):
            name = str(config.weights or config.model)
            restorer = self._load(name)
        if restorer is not None:
            self._fixed = int(restorer.size)
            self._loaded[self._fixed] = restorer
            self._names[self._fixed] = name

    def _load(self, source: str) -> Restorer:
        from vidgpen.models.restorer import load_restorer

        cfg = self._config
        if source.lower().endswith(".onnx") and cfg.deflicker > 0:
            raise ConfigError(f"deflicker: {source} is an ONNX export, one graph from face to face; fusing a "
                              "track's frames needs GPEN's encoder and generator apart: give the checkpoint, "
                              "or --deflicker 0")
        return load_restorer(source, device=cfg.device, dtype=cfg.dtype, batch_size=cfg.batch_size,
                             compile=cfg.compile)

    def size_for(self, face: TrackedFace) -> int:
        if self._fixed is not None:
            return self._fixed
        if face.track not in self._track_size:
            extent = 1.0 / affine_scale(face.affine(1, self._config.template))
            wanted = self._config.auto_factor * extent
            self._track_size[face.track] = next((s for s in AUTO_SIZES if s >= wanted), AUTO_SIZES[-1])
        return self._track_size[face.track]

    def get(self, size: int) -> Restorer:
        if size not in self._loaded:
            name = f"gpen-bfr-{size}"
            self._loaded[size] = self._load(name)
            self._names[size] = name
        return self._loaded[size]

    @property
    def names(self) -> dict[str, str]:
        return {str(size): name for size, name in sorted(self._names.items())}
