"""One way into a restore run, plain or segmented: used by the CLI, batch and ``restore_video``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidgpen.cluster.restore import RayOptions, restore_on_ray
from vidgpen.config import ConfigLayers, RestoreConfig, build_config
from vidgpen.errors import ConfigError
from vidgpen.io.frames import VideoInfo
from vidgpen.models.runtime.restorer import Restorer
from vidgpen.pipeline import Pipeline, RunReport
from vidgpen.pipeline.people import check_photos, make_identity
from vidgpen.pipeline.segments import DEFAULT_SEGMENT_S, run_resumable
from vidgpen.plugins import load_plugins

log = logging.getLogger(__name__)
__all__ = ["RayOptions", "check_photos", "restore_video", "run_restore"]


def run_restore(
    config: RestoreConfig,
    input: str | Path,
    output: str | Path,
    *,
    restorer: Restorer | None = None,
    overwrite: bool = False,
    preview: str | Path | None = None,
    resume_segments: float | None = None,
    ray: RayOptions | None = None,
    on_start: Callable[[VideoInfo], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunReport:
    """Restore ``input`` into ``output``; with ``resume_segments`` (seconds) in segments that a
    rerun after an interruption reuses (see :mod:`vidgpen.pipeline.segments`). ``cancel``: an
    event that stops the run at the next frame (:class:`~vidgpen.errors.RunCancelled`), its
    partial output removed and its finished segments kept. With ``faces_of`` photos that
    nobody in the video matches, the video is restored unchanged and one warning says so. With
    ``ray``, the segments (default 60 s) run in parallel on a Ray cluster (:mod:`vidgpen.cluster`)."""
    load_plugins()  # batch and Ray workers come in here: they register what the driver's plug-ins did
    if ray is not None:
        if preview is not None or restorer is not None:
            raise ConfigError(f"engine ray: {'preview' if preview is not None else 'a restorer object'} is not "
                              "available on Ray workers (they load the model named by the settings)")
        return restore_on_ray(config, input, output, resume_segments or DEFAULT_SEGMENT_S, ray,
                              overwrite=overwrite, on_start=on_start, on_progress=on_progress)
    identity = make_identity(config)  # one for the whole video, however many segments
    if resume_segments is None:
        report = Pipeline(config, restorer=restorer).run(input, output, overwrite=overwrite, preview=preview,
                                                         on_start=on_start, on_progress=on_progress, cancel=cancel,
                                                         identity=identity)
    else:
        report = run_resumable(config, input, output, resume_segments, restorer=restorer, overwrite=overwrite,
                               preview=preview, on_start=on_start, on_progress=on_progress, cancel=cancel, identity=identity)
    if identity is not None:
        report.persons = identity.summary()
        if identity.nobody_selected():
            log.warning("%s: nobody in it matches the --faces-of photos; its faces are left as they were", input)
    return report


def restore_video(input: str | Path, output: str | Path, *, preset: str | None = None,
                  config_file: str | None = None, restorer: Restorer | None = None,
                  overwrite: bool = False, preview: str | Path | None = None,
                  resume_segments: float | None = None, engine: str = "local", ray_address: str | None = None,
                  jobs: int | None = None, **options: Any) -> RunReport:
    """Restore every face in ``input`` and write ``output`` (the Python API of ``vidgpen restore``).

    ``options`` are RestoreConfig fields (``model``, ``weights``, ``strength``, ...) and
    take precedence over the preset and the config file, as flags do on the command line.
    ``engine="ray"`` restores ``resume_segments`` (default 60 s) segments on Ray workers:
    on the cluster at ``ray_address``, else on Ray started on this machine; ``jobs`` workers.
    """
    load_plugins()  # before the settings are checked: a plug-in may add a detector or a model
    config = build_config(ConfigLayers(preset=preset, config_file=config_file, overrides=options))
    if engine not in ("local", "ray"):
        raise ConfigError(f"engine: {engine!r} is not local or ray")
    ray = RayOptions(address=ray_address, jobs=jobs) if engine == "ray" else None
    return run_restore(config, input, output, restorer=restorer, overwrite=overwrite, preview=preview,
                       resume_segments=resume_segments, ray=ray)
