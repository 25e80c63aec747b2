"""GPEN and the registry of its weights.

The exports load on first use, so the CLI can build its parser (and answer ``--help``)
without importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "GPEN": "vidgpen.models.gpen",
    "GPENConfig": "vidgpen.models.gpen",
    "infer_config": "vidgpen.models.loader",
    "load_gpen": "vidgpen.models.loader",
    "FaceRestorer": "vidgpen.models.torch_restorer",
    "Restorer": "vidgpen.models.restorer",
    "load_restorer": "vidgpen.models.factory",
}
__all__ = ["GPEN", "FaceRestorer", "GPENConfig", "Restorer", "infer_config", "load_gpen", "load_restorer"]

if TYPE_CHECKING:
    from vidgpen.models.factory import load_restorer
    from vidgpen.models.gpen import GPEN, GPENConfig
    from vidgpen.models.loader import infer_config, load_gpen
    from vidgpen.models.restorer import Restorer
    from vidgpen.models.torch_restorer import FaceRestorer


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vidgpen.models' has no attribute {name!r}")
