"""Restore a whole media library: plan from the manifest, run on an engine, record each result.

Only the driver writes the manifest; local threads and Ray workers run the same
:func:`~vidgpen.batch.jobs.run_job` and hand back :class:`FileResult` objects.
Stopping (Ctrl-C, an error) never leaves a half-written output: local jobs abandon their
``.partial`` file at the next frame, and the driver deletes those of killed Ray workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidgpen.batch.discover import find_videos, output_names
from vidgpen.batch.jobs import BatchOptions, Job
from vidgpen.batch.local import run_local
from vidgpen.batch.manifest import DONE, FAILED, PENDING, SKIPPED, FileResult, Manifest, settings_identity
from vidgpen.batch.ray_engine import run_ray
from vidgpen.cluster.session import import_ray
from vidgpen.config import RestoreConfig
from vidgpen.errors import InputError, VidgpenError
from vidgpen.io.writer import partial_path


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0  # already done with these settings: not redone
    failed: int = 0  # includes unchanged inputs that failed before with a permanent error
    faces: int = 0
    seconds: float = 0.0
    results: list[FileResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0


def plan(in_dir: Path, out_dir: Path, config: RestoreConfig, options: BatchOptions,
         manifest: Manifest) -> tuple[list[Job], list[FileResult]]:
    """Split the library into jobs to run and records whose outcome a rerun would repeat."""
    settings = settings_identity(config)
    videos = find_videos(in_dir, options.include, options.exclude, skip_dir=out_dir)
    outputs = output_names([path.relative_to(in_dir).as_posix() for path in videos], options.output_suffix)
    jobs, current = [], []
    for path in videos:
        rel = path.relative_to(in_dir).as_posix()
        rel_out, stat = outputs[rel], path.stat()
        record = None if options.force else manifest.current(rel, stat.st_size, stat.st_mtime, settings)
        if record is not None and (record.status == FAILED or (out_dir / rel_out).exists()):
            current.append(record)
            continue
        jobs.append(Job(str(path), str(out_dir / rel_out), rel, rel_out, stat.st_size, stat.st_mtime, settings))
    return jobs, current


def run_batch(in_dir: str | Path, out_dir: str | Path, config: RestoreConfig, options: BatchOptions,
              on_result: Callable[[FileResult], None] | None = None) -> BatchSummary:
    """Restore every video under ``in_dir`` into the mirrored tree under ``out_dir``.

    ``on_result`` sees every failed or finished file as it comes in (not the skipped ones).
    """
    in_dir, out_dir = Path(in_dir).resolve(), Path(out_dir).resolve()
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: not a folder")
    if in_dir == out_dir:
        raise VidgpenError(f"{out_dir}: the output folder must differ from the input folder")
    options.validate()
    if config.faces_of or config.skip_faces_of:  # one error before any file, not every file failed
        from vidgpen.api import check_photos  # dlib and ONNX Runtime: only when photos are given

        check_photos(config)
    if options.engine == "ray":
        import_ray()  # fail before any work when Ray is missing
    manifest = Manifest(out_dir)
    jobs, current = plan(in_dir, out_dir, config, options, manifest)
    summary = BatchSummary()
    for record in current:
        _count(summary, record if record.status == FAILED else FileResult(**{**asdict(record), "status": SKIPPED}))
        if record.status == FAILED and on_result is not None:
            on_result(record)
    if options.dry_run:
        summary.results.extend(job.result(PENDING) for job in jobs)
        return summary
    out_dir.mkdir(parents=True, exist_ok=True)
    for job in jobs:  # left by a run that was killed outright (SIGKILL, power loss)
        partial_path(job.target).unlink(missing_ok=True)
    started = time.perf_counter()
    engine = run_ray if options.engine == "ray" else run_local
    stopped: list[FileResult] = []  # files cut short when the batch stops (Ctrl-C, SIGTERM, an error)
    try:
        with closing(engine(jobs, config, options, stopped)) as results:
            for result in results:
                manifest.put(result)
                _count(summary, result)
                if on_result is not None:
                    on_result(result)
    finally:
        for result in stopped:
            manifest.put(result)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _count(summary: BatchSummary, result: FileResult) -> None:
    summary.results.append(result)
    if result.status == DONE:
        summary.done += 1
        summary.faces += result.faces
    elif result.status == SKIPPED:
        summary.skipped += 1
    else:
        summary.failed += 1
