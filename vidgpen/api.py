"""One way into a restore run, plain or segmented: used by the CLI, batch and ``restore_video``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidgpen.config import ConfigLayers, RestoreConfig, build_config
from vidgpen.errors import ConfigError
from vidgpen.io.frames import VideoInfo
from vidgpen.models.runtime.restorer import Restorer
from vidgpen.pipeline import Pipeline, RunReport
from vidgpen.pipeline.people import check_photos, make_identity
from vidgpen.pipeline.segments import run_resumable
from vidgpen.plugins import load_plugins

log = logging.getLogger(__name__)
__all__ = ["check_photos", "restore_video", "run_restore"]


def run_restore(
    config: RestoreConfig,
    input: str | Path,
    output: str | Path,
    *,
    restorer: Restorer | None = None,
    overwrite: bool = False,
    preview: str | Path | None = None,
    resume_segments: float | None = None,
    on_start: Callable[[VideoInfo], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunReport:
    """Restore ``input`` into ``output``; with ``resume_segments`` (seconds) in segments that a
    rerun after an interruption reuses (see :mod:`vidgpen.pipeline.segments`). ``cancel``: an
    event that stops the run at the next frame (:class:`~vidgpen.errors.RunCancelled`), its
    partial output removed and its finished segments kept. With ``faces_of`` photos that
    nobody in the video matches, the video is restored unchanged and one warning says so."""
    load_plugins()  # batch and Ray workers come in here: they register what the driver's plug-ins did
    if resume_segments is not None and preview is not None:
        raise ConfigError("preview: not available with resumable (segmented) runs")
    identity = make_identity(config)  # one for the whole video, however many segments
    if resume_segments is None:
        report = Pipeline(config, restorer=restorer).run(input, output, overwrite=overwrite, preview=preview,
                                                         on_start=on_start, on_progress=on_progress, cancel=cancel,
                                                         identity=identity)
    else:
        report = run_resumable(config, input, output, resume_segments, restorer=restorer, overwrite=overwrite,
                               on_start=on_start, on_progress=on_progress, cancel=cancel, identity=identity)
    if identity is not None:
        report.persons = identity.summary()
        if identity.nobody_selected():
            log.warning("%s: nobody in it matches the --faces-of photos; its faces are left as they were", input)
    return report


def restore_video(input: str | Path, output: str | Path, *, preset: str | None = None,
                  config_file: str | None = None, restorer: Restorer | None = None,
                  overwrite: bool = False, preview: str | Path | None = None,
                  resume_segments: float | None = None, **options: Any) -> RunReport:
    """Restore every face in ``input`` and write ``output`` (the Python API of ``vidgpen restore``).

    ``options`` are RestoreConfig fields (``model``, ``weights``, ``strength``, ...) and
    take precedence over the preset and the config file, as flags do on the command line.
    """
    load_plugins()  # before the settings are checked: a plug-in may add a detector or a model
    config = build_config(ConfigLayers(preset=preset, config_file=config_file, overrides=options))
    return run_restore(config, input, output, restorer=restorer, overwrite=overwrite, preview=preview,
                       resume_segments=resume_segments)
