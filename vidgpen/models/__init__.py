"""GPEN and the registry of its weights.

The exports load on first use, so the CLI can build its parser (and answer ``--help``)
without importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "GPEN": "vidgpen.models.network.gpen",
    "GPENConfig": "vidgpen.models.network.gpen",
    "infer_config": "vidgpen.models.network.loader",
    "load_gpen": "vidgpen.models.network.loader",
    "FaceRestorer": "vidgpen.models.runtime.torch_restorer",
    "Restorer": "vidgpen.models.runtime.restorer",
    "load_restorer": "vidgpen.models.runtime.factory",
}
__all__ = ["GPEN", "FaceRestorer", "GPENConfig", "Restorer", "infer_config", "load_gpen", "load_restorer"]

if TYPE_CHECKING:
    from vidgpen.models.network.gpen import GPEN, GPENConfig
    from vidgpen.models.network.loader import infer_config, load_gpen
    from vidgpen.models.runtime.factory import load_restorer
    from vidgpen.models.runtime.restorer import Restorer
    from vidgpen.models.runtime.torch_restorer import FaceRestorer


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vidgpen.models' has no attribute {name!r}")
