"""What one weights file is: its name, kind, sources, sides and how its faces are scaled.

The registry (:mod:`.registry`) lists known files as :class:`ModelSpec` values; the
downloader (:mod:`.download`) fetches one. Both import this module and neither imports
the other's caller, so the weights layer has no cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

FILE_KIND = "file"  # a file that is not a restorer (detectors, parsers); restorer kinds: models.runtime.kinds


@dataclass(frozen=True)
class Normalisation:
    """How uint8 faces map to the network's floats: ``low`` at 0, ``high`` at 255, and back."""

    low: float = -1.0
    high: float = 1.0
    bgr: bool = False  # channel order the network takes and returns


GPEN_IO = Normalisation()  # RGB in [-1, 1]: what GPEN was trained on


@dataclass(frozen=True)
class ModelSpec:
    """One downloadable file and, for restorers, how it runs.

    ``in_size``/``out_size``: the side of the faces it takes and returns (None: read from
    the file). ``template``: the alignment it was trained with. ``input_name`` and
    ``output_name``: the ONNX graph's tensors (None: its first). ``file_bytes`` and
    ``sha256`` are None where no publisher states them.
    """

    name: str
    kind: str
    filename: str
    sources: tuple[str, ...]
    description: str
    licence: str = ""
    in_size: int | None = None
    out_size: int | None = None
    template: str | None = None
    normalisation: Normalisation = GPEN_IO
    input_name: str | None = None
    output_name: str | None = None
    file_bytes: int | None = None
    sha256: str | None = None

    @property
    def is_restorer(self) -> bool:
        return self.kind != FILE_KIND
