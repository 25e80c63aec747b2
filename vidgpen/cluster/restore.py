"""One long video across a Ray cluster: ``--resume`` segments restored in parallel, joined as locally."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vidgpen.cluster.plan import for_workers, persons_needed, worker_env
from vidgpen.cluster.schedule import UnitResult, WorkerPool
from vidgpen.cluster.session import check_shared_paths, import_ray, ray_session, worker_nodes
from vidgpen.cluster.worker import Progress, SegmentWorker, Unit
from vidgpen.config import RestoreConfig
from vidgpen.errors import ConfigError, VidgpenError
from vidgpen.io.frames import VideoInfo
from vidgpen.pipeline import RunReport
from vidgpen.pipeline.segments import SegmentedRun, SegmentRecord, combined_report, plan_segmented


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start Ray on this machine (loopback only)
    jobs: int | None = None  # workers; default one per GPU, else one per node with CPUs
    retries: int = 2  # per unit, for lost workers and processing errors (not bad input)

    def __post_init__(self) -> None:
        if self.jobs is not None and self.jobs < 1:
            raise ConfigError(f"jobs: {self.jobs} must be at least 1")
        if self.retries < 0:
            raise ConfigError(f"retries: {self.retries} must not be negative")


class SegmentFailed(Exception):
    """A segment failed on every attempt (a processing error, not the input's fault: exit 1)."""


def cluster_gpus(ray: Any) -> int:
    return int(ray.cluster_resources().get("GPU", 0))


def start_pool(ray: Any, config: RestoreConfig, options: RayOptions, units: int, files: dict[str, int],
               folders: list[str]) -> WorkerPool:
    """Check every worker node sees the paths, then start the workers."""
    gpus = cluster_gpus(ray)
    nodes = worker_nodes(ray, "GPU" if gpus else "CPU")
    if not nodes:
        raise VidgpenError(f"--engine ray: the cluster has no node with a {'GPU' if gpus else 'CPU'} to work on")
    check_shared_paths(ray, nodes, files, folders)
    count = min(options.jobs or gpus or len(nodes), max(units, 1))
    if gpus:  # more workers than GPUs share them evenly: one asking for a whole one that is not there waits forever
        num_gpus = num_cpus = 1 / math.ceil(count / gpus)
    else:  # one worker per node by default, with the CPUs of the smallest node
        num_gpus, num_cpus = 0, min(n["Resources"]["CPU"] for n in nodes) / math.ceil(count / len(nodes))
    actor = ray.remote(SegmentWorker).options(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0,
                                              runtime_env={"env_vars": worker_env()})
    return WorkerPool(ray, lambda: actor.remote(config), count, options.retries)


def restore_on_ray(config: RestoreConfig, input: str | Path, output: str | Path, segment_seconds: float,
                   options: RayOptions, *, overwrite: bool = False,
                   on_start: Callable[[VideoInfo], None] | None = None,
                   on_progress: Callable[[int, int], None] | None = None) -> RunReport:
    """Restore ``input`` into ``output`` as :func:`~vidgpen.pipeline.segments.run_resumable`
    does, with the segments spread over Ray workers; bad input fails before Ray starts."""
    import_ray()  # missing: fail before the parts folder exists
    if persons_needed(config):
        raise ConfigError("engine ray: persons (--faces pN, --faces-of, --skip-faces-of, --persons, --model auto) "
                          "are handed from segment to segment, so the segments cannot run side by side; "
                          "restore locally with --resume")
    run = plan_segmented(config, Path(input).resolve(), Path(output).resolve(), segment_seconds, overwrite=overwrite)
    started = time.perf_counter()
    records = [SegmentRecord.reused_part(s, frames) for s, frames in run.finished()]
    reused = sum(r.frames for r in records)
    live: dict[str, Progress] = {}  # per part: frames and faces so far

    def progress(unit: Unit, event: Progress) -> None:
        live[unit.output] = event
        if on_progress is not None:
            on_progress(reused + sum(p.frames for p in live.values()), sum(p.faces for p in live.values()))

    results = _restore_segments(config, options, run, progress, on_start)
    run.join()
    records += [SegmentRecord.of(r.unit.segment, r.outcome.report, attempts=r.attempts, node=r.outcome.node,
                                 worker=r.outcome.worker, failures=r.failures) for r in results]
    return combined_report(run, [r.outcome.report for r in results], records, time.perf_counter() - started)


def _restore_segments(config: RestoreConfig, options: RayOptions, run: SegmentedRun,
                      progress: Callable[[Unit, Progress], None],
                      on_start: Callable[[VideoInfo], None] | None) -> list[UnitResult]:
    """The segments left to do, on Ray; none left (a rerun after the last one): no Ray at all."""
    results: list[UnitResult] = []
    if not run.todo():
        if on_start is not None:
            on_start(run.info)
        return results
    with ray_session(options.address) as ray:
        shipped = replace(run, plan=for_workers(run.plan, cluster_gpus(ray) > 0))
        units = [Unit(str(run.output), run.input, str(run.part(s)), run.length(s), segment=s, run=shipped)
                 for s in run.todo()]
        try:
            pool = start_pool(ray, config, options, len(units), {run.input: Path(run.input).stat().st_size},
                              [str(run.folder)])
        except BaseException:
            run.discard_if_unused()  # refused before any work: leave nothing behind
            raise
        if on_start is not None:
            on_start(run.info)
        for result in pool.run(units, progress):
            _raise_failure(result)
            results.append(result)
            progress(result.unit, Progress(result.outcome.report.frames, result.outcome.report.faces))
    return results


def _raise_failure(result: UnitResult) -> None:
    """A segment that failed for good stops the run (finished parts stay for the next one)."""
    if result.ok:
        return
    error = result.outcome.error
    if result.outcome.permanent:
        raise error
    raise SegmentFailed(f"{result.unit.output}: failed {result.attempts} times; last: {error}")
