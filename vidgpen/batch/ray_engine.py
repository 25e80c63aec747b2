"""The Ray engine: a batch's files on a pool of worker actors, on one machine or a cluster."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from vidgpen.batch.jobs import BatchOptions, Job, run_job
from vidgpen.batch.manifest import FAILED, FileResult
from vidgpen.config import RestoreConfig
from vidgpen.errors import VidgpenError, first_line
from vidgpen.io.writer import partial_path

RAY_HINT = "install it with: pip install 'vidgpen[ray]'"
# How long the driver waits for killed Ray workers to exit before deleting their partial files.
_RAY_KILL_WAIT_S = 30.0


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise VidgpenError(f"--engine ray: Ray is not installed; {RAY_HINT}") from None
    return ray


class _RayWorker:
    """One Ray worker process holding one GPU (or CPU) for the whole batch.

    An actor rather than plain tasks: Ray ends a GPU task's worker process after each
    task by default, which would load the weights again for every file, and a reused
    task worker may be handed another GPU than the one its CUDA context is on.
    """

    def __init__(self, config: RestoreConfig, options: BatchOptions) -> None:
        self._config, self._options = config, options

    def run(self, job: Job) -> FileResult:
        return run_job(job, self._config, self._options)


def run_ray(jobs: list[Job], config: RestoreConfig, options: BatchOptions) -> Iterator[FileResult]:
    """Each file runs as a task on a pool of worker actors; results come back to the driver.

    Inputs and outputs must be at the same path on every machine (a shared filesystem).
    """
    if not jobs:
        return  # nothing to do: no need to start or join a cluster
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=options.ray_address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        slots = gpus or max(1, int(resources.get("CPU", 1)))
        count = min(options.jobs or slots, len(jobs))
        # More workers than GPUs (or CPUs) share them evenly; a worker asking for a whole
        # one that is not there would wait forever, and so would the files handed to it.
        share = 1 / math.ceil(count / slots)
        worker_class = ray.remote(_RayWorker).options(num_gpus=share if gpus else 0, num_cpus=share, max_restarts=0)
        workers = [worker_class.remote(config, options) for _ in range(count)]
        yield from _dispatch(ray, jobs, workers, lambda: worker_class.remote(config, options))
    finally:
        if started_here:
            ray.shutdown()


def _dispatch(ray: Any, jobs: list[Job], idle: list[Any], new_worker: Callable[[], Any]) -> Iterator[FileResult]:
    """Keep every worker busy with one file; a worker that dies fails its file and is replaced."""
    queue: deque[Job] = deque(jobs)
    running: dict[Any, tuple[Job, Any]] = {}  # object ref → (job, worker)
    try:
        while queue or running:
            while queue and idle:
                worker = idle.pop()
                job = queue.popleft()
                running[worker.run.remote(job)] = (job, worker)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)  # timeout: let Ctrl-C in
            for ref in ready:
                job, worker = running.pop(ref)
                try:
                    result = ray.get(ref)
                    idle.append(worker)
                except ray.exceptions.RayActorError as exc:
                    partial_path(job.target).unlink(missing_ok=True)
                    result = job.result(FAILED, error=f"{job.source}: the Ray worker died ({first_line(exc)})",
                                        error_type=type(exc).__name__, attempts=1)
                    idle.append(new_worker())
                except ray.exceptions.RayError as exc:
                    result = job.result(FAILED, error=f"{job.source}: Ray task failed ({first_line(exc)})",
                                        error_type=type(exc).__name__, attempts=1)
                    idle.append(worker)
                yield result
    finally:
        for worker in idle + [worker for _, worker in running.values()]:
            ray.kill(worker)
        if running:  # stopped early: once the workers are gone, drop what they were writing
            ray.wait(list(running), num_returns=len(running), timeout=_RAY_KILL_WAIT_S)
            for job, _ in running.values():
                partial_path(job.target).unlink(missing_ok=True)
