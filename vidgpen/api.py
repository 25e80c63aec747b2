"""One way into a restore run, plain or segmented: used by the CLI, batch and ``restore_video``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidgpen.config import ConfigLayers, RestoreConfig, build_config
from vidgpen.errors import ConfigError
from vidgpen.io.frames import VideoInfo
from vidgpen.models.runtime.restorer import Restorer
from vidgpen.pipeline import Pipeline, RunReport
from vidgpen.pipeline.segments import run_resumable
from vidgpen.plugins import load_plugins


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
    partial output removed and its finished segments kept."""
    load_plugins()  # batch and Ray workers come in here: they register what the driver's plug-ins did
    pipeline = Pipeline(config, restorer=restorer)
    if resume_segments is None:
        return pipeline.run(input, output, overwrite=overwrite, preview=preview, on_start=on_start,
                            on_progress=on_progress, cancel=cancel)
    if preview is not None:
        raise ConfigError("preview: not available with resumable (segmented) runs")
    return run_resumable(config, input, output, resume_segments, restorer=restorer, overwrite=overwrite,
                         on_start=on_start, on_progress=on_progress, cancel=cancel)


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
