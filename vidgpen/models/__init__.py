"""GPEN and the registry of its weights."""

from vidgpen.models.gpen import GPEN, GPENConfig
from vidgpen.models.loader import infer_config, load_gpen
from vidgpen.models.restorer import FaceRestorer, Restorer, load_restorer

__all__ = ["GPEN", "FaceRestorer", "GPENConfig", "Restorer", "infer_config", "load_gpen", "load_restorer"]
