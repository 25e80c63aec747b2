"""One file of a batch: the job a worker gets, the options, and the retry loop around a run."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidgpen.batch.manifest import DONE, FAILED, INTERRUPTED, FileResult, file_sha256
from vidgpen.config import RestoreConfig
from vidgpen.errors import ConfigError, RunCancelled, VidgpenError, first_line
from vidgpen.io.writer import CONTAINERS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One file to restore, as sent to a worker (picklable for Ray)."""

    source: str
    target: str
    rel_input: str
    rel_output: str
    size: int
    mtime: float
    settings: str

    def result(self, status: str, **values: Any) -> FileResult:
        return FileResult(self.rel_input, self.rel_output, self.size, self.mtime, self.settings, status, **values)


def run_job(job: Job, config: RestoreConfig, options: BatchOptions, cancel: threading.Event | None = None) -> FileResult:
    """Restore one file; bad input fails at once, other errors are retried.

    ``cancel`` stops the run at the next frame: the pipeline then drops its partial output
    (with ``options.resume_segments``, the finished segments stay for the retry or next run).
    """
    from vidgpen.api import run_restore  # torch and PyAV: only in the process that restores

    started = time.perf_counter()
    result = job.result(FAILED, worker=f"{socket.gethostname()}:{os.getpid()}")
    while result.attempts <= options.retries:
        result.attempts += 1
        try:
            Path(job.target).parent.mkdir(parents=True, exist_ok=True)
            report = run_restore(config, job.source, job.target, overwrite=True,
                                 resume_segments=options.resume_segments, cancel=cancel)
            result.sha256 = file_sha256(Path(job.source))
        except RunCancelled:  # the batch was stopped: not the file's fault, redone by the next run
            result.status, result.error = INTERRUPTED, f"{job.source}: interrupted before it finished"
            break
        except VidgpenError as exc:
            result.error, result.error_type = str(exc), type(exc).__name__
            break
        except Exception as exc:  # noqa: BLE001 - a processing failure: retry, then record it
            result.error_type = type(exc).__name__
            result.error = f"{job.source}: {result.error_type}: {first_line(exc)}"
            log.warning("%s: attempt %d failed: %s", job.source, result.attempts, result.error)
            continue
        result.status, result.frames, result.faces = DONE, report.frames, report.faces
        result.stage_seconds = report.stage_seconds
        result.error = result.error_type = None
        break
    result.seconds = round(time.perf_counter() - started, 3)
    return result


@dataclass
class BatchOptions:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    jobs: int | None = None  # files at once locally (default 1); Ray workers (default one per GPU, else per node)
    engine: str = "local"  # local | ray
    ray_address: str | None = None  # None: start a local Ray instance
    retries: int = 1
    force: bool = False
    dry_run: bool = False
    output_suffix: str = ".mp4"
    resume_segments: float | None = None  # seconds: restore each file in segments that a rerun reuses

    def validate(self) -> None:
        if self.engine not in ("local", "ray"):
            raise ConfigError(f"options: engine: {self.engine!r} is not local or ray")
        if self.jobs is not None and self.jobs < 1:
            raise ConfigError(f"options: jobs: {self.jobs} must be at least 1")
        if self.retries < 0:
            raise ConfigError(f"options: retries: {self.retries} must not be negative")
        if self.output_suffix.lower() not in CONTAINERS:
            raise ConfigError(f"options: suffix: {self.output_suffix!r} is not one of {', '.join(CONTAINERS)}")
        if self.resume_segments is not None and self.resume_segments <= 0:
            raise ConfigError(f"options: resume: {self.resume_segments} seconds must be positive")
