"""The Ray engine: a batch as units on a pool of worker actors, on one machine or a cluster.

It schedules segments, not files (:mod:`vidgpen.cluster.library`): a file longer than one
segment (``--resume`` seconds, default 60) is cut into segments, a shorter one stays
whole, and the longest units go first. A split file is ``done`` once its parts are joined
on the driver, and ``failed`` with its segment's error when a segment fails after
retries; its finished parts stay for the next run either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from vidgpen.batch.jobs import BatchOptions, Job
from vidgpen.batch.manifest import DONE, FAILED, INTERRUPTED, FileResult, file_sha256
from vidgpen.cluster.library import LibraryFile
from vidgpen.cluster.restore import RayOptions, cluster_gpus, start_pool
from vidgpen.cluster.session import ray_session
from vidgpen.config import RestoreConfig
from vidgpen.errors import VidgpenError


def run_ray(jobs: list[Job], config: RestoreConfig, options: BatchOptions,
            stopped: list[FileResult]) -> Iterator[FileResult]:
    """Results as files end; files a stop cut short go to ``stopped`` (as ``interrupted``).

    Inputs and outputs must be at the same path on every machine (a shared filesystem);
    every node is checked for that before any work.
    """
    files: dict[str, tuple[Job, LibraryFile]] = {}
    for job in jobs:
        try:
            files[job.target] = job, LibraryFile.planned(config, job.source, job.target, options.resume_segments)
        except VidgpenError as exc:  # unreadable: failed at once, as the local engine does
            yield job.result(FAILED, error=str(exc), error_type=type(exc).__name__, attempts=1)
    if not files:
        return  # nothing to do: no need to start or join a cluster
    try:
        with ray_session(options.ray_address) as ray:
            units = [unit for _, file in files.values() for unit in file.make_units(cluster_gpus(ray) > 0)]
            yield from _done(files, [target for target, (_, file) in files.items() if not file.units])
            folders = sorted({str(file.run.folder if file.run else Path(job.target).parent)
                              for job, file in files.values()})
            pool = start_pool(ray, config, RayOptions(options.ray_address, options.jobs, options.retries),
                              len(units), {job.source: job.size for job, _ in files.values()}, folders)
            for result in pool.run(units, lambda unit, progress: None):
                if result.unit.group not in files:
                    continue  # a unit of a file that already failed: its part stays for the next run
                job, file = files[result.unit.group]
                file.results.append(result)
                if not result.ok:
                    pool.discard(job.target)
                    del files[job.target]
                    error = result.outcome.error
                    yield job.result(FAILED, error=str(error), error_type=type(error).__name__,
                                     attempts=result.attempts, worker=result.outcome.worker)
                elif file.complete:
                    yield from _done(files, [job.target])
    finally:
        stopped += [job.result(INTERRUPTED, error=f"{job.source}: interrupted before it finished")
                    for job, _ in files.values()]


def _done(files: dict[str, tuple[Job, LibraryFile]], targets: list[str]) -> Iterator[FileResult]:
    """Join and record these files (a split file whose parts an earlier run all finished too)."""
    for target in targets:
        job, file = files.pop(target)
        yield job.result(DONE, sha256=file_sha256(Path(job.source)), **file.finish())
