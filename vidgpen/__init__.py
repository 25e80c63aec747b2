"""vidgpen: restore faces in videos with GPEN, streaming, with tracked and smoothed faces.

The heavy modules (torch, PyAV) load on first use of the API, so ``vidgpen --help`` and
``import vidgpen.config`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Pipeline", "RestoreConfig", "RunReport", "restore_video", "__version__"]

if TYPE_CHECKING:
    from vidgpen.api import restore_video
    from vidgpen.config import RestoreConfig
    from vidgpen.pipeline import Pipeline, RunReport


def __getattr__(name: str) -> Any:
    if name == "RestoreConfig":
        from vidgpen.config import RestoreConfig

        return RestoreConfig
    if name == "restore_video":
        from vidgpen.api import restore_video

        return restore_video
    if name in ("Pipeline", "RunReport"):
        from vidgpen import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'vidgpen' has no attribute {name!r}")
