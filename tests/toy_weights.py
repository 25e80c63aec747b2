"""The toy plug-in's weights files (:mod:`toy_plugin`): :data:`MAGIC`, then JSON. Kept apart from the
plug-in so tests can write them without importing it: importing a plug-in registers its kinds,
models and detector in that process for good, and the other tests must not see them."""

from __future__ import annotations

import json
from pathlib import Path

MAGIC = b"TOY-UPSCALER\n"


def write_weights(path: Path, in_size: int, factor: int, gain: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MAGIC + json.dumps({"in_size": in_size, "factor": factor, "gain": gain}).encode())
    return path


def params(path: Path) -> dict:
    return json.loads(path.read_bytes()[len(MAGIC):])
