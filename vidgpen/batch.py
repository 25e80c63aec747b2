"""Restore a whole media library: walk it, resume from a manifest, isolate failures, scale on Ray.

The manifest (``vidgpen-manifest.json`` in the output folder, rewritten atomically after
every file) records what was done with which settings, so a rerun only redoes inputs
that changed, whose settings changed, or that failed for a reason a retry can fix. Only
the driver writes it; local threads and Ray workers run the same
:class:`~vidgpen.pipeline.Pipeline` and hand back :class:`FileResult` objects.

Stopping (Ctrl-C, an error) never leaves a half-written output: local jobs abandon their
``.partial`` file at the next frame, and the driver deletes those of killed Ray workers.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import math
import os
import socket
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidgpen.config import RestoreConfig
from vidgpen.errors import ConfigError, InputError, VidgpenError, first_line
from vidgpen.io.writer import CONTAINERS, partial_path

log = logging.getLogger(__name__)

MANIFEST_NAME = "vidgpen-manifest.json"
VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".mts", ".m2ts", ".ts",
                    ".dv", ".wmv", ".flv", ".3gp", ".vob", ".ogv", ".mxf"}
# Never probed: still images open as one-frame "videos" in FFmpeg, and the rest is noise.
NOT_VIDEO_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".txt", ".json",
                        ".xml", ".pdf", ".doc", ".docx", ".mp3", ".wav", ".flac", ".aac", ".m4a", ".ogg", ".opus",
                        ".srt", ".ass", ".vtt", ".nfo", ".db", ".ini", ".zip", ".py", ".toml", ".md", ".csv"}
DONE, FAILED, SKIPPED, PENDING, INTERRUPTED = "done", "failed", "skipped", "pending", "interrupted"
# A failure of this type is the input's own fault (corrupt, not a video): an unchanged
# input is not tried again on a rerun; anything else (OOM, a lost worker) is.
PERMANENT_ERRORS = (InputError.__name__,)
RAY_HINT = "install it with: pip install 'vidgpen[ray]'"
# How long the driver waits for killed Ray workers to exit before deleting their partial files.
_RAY_KILL_WAIT_S = 30.0


@dataclass
class FileResult:
    """One input's manifest record."""

    input: str  # relative to the library root
    output: str  # relative to the output root
    size: int
    mtime: float
    settings: str  # settings_identity() of the run that produced this record
    status: str  # done | failed | interrupted (in the manifest); skipped | pending only in a run's summary
    sha256: str = ""  # content hash of the input, once it was restored
    error: str | None = None  # one line naming the file and the problem
    error_type: str | None = None  # exception class, e.g. InputError
    seconds: float = 0.0
    frames: int = 0
    faces: int = 0
    attempts: int = 0
    worker: str = ""  # host:pid that ran it
    stage_seconds: dict[str, float] = field(default_factory=dict)


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


class Manifest:
    """The per-library record of work, keyed by input path; written only by the driver."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / MANIFEST_NAME
        self.records: dict[str, FileResult] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.records = {r["input"]: FileResult(**r) for r in data["files"]}
            except (ValueError, KeyError, TypeError) as exc:
                raise VidgpenError(f"{self.path}: unreadable manifest ({exc}); move it away to start over") from None

    def current(self, rel: str, size: int, mtime: float, settings: str) -> FileResult | None:
        """The record of an unchanged input whose outcome a rerun would repeat, if any."""
        record = self.records.get(rel)
        if record is None or (record.size, record.mtime, record.settings) != (size, mtime, settings):
            return None
        if record.status == DONE or (record.status == FAILED and record.error_type in PERMANENT_ERRORS):
            return record
        return None

    def put(self, result: FileResult) -> None:
        self.records[result.input] = result
        self.save()

    def save(self) -> None:
        payload = {"version": 1, "files": [asdict(r) for r in sorted(self.records.values(), key=lambda r: r.input)]}
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def find_videos(root: Path, include: list[str] | None = None, exclude: list[str] | None = None,
                skip_dir: Path | None = None) -> list[Path]:
    """Video files under ``root`` (by extension, or by probing unknown extensions), sorted.

    Hidden files and folders are left out: ``._clip.mp4`` AppleDouble files and the like
    carry a video extension but hold no video.
    """
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and here / d != skip_dir)
        for name in sorted(files):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if name.startswith(".") or not _selected(rel, name, include, exclude):
                continue
            suffix = path.suffix.lower()
            if suffix in VIDEO_EXTENSIONS or (suffix not in NOT_VIDEO_EXTENSIONS and _has_video_stream(path)):
                found.append(path)
    return found


def _selected(rel: str, name: str, include: list[str] | None, exclude: list[str] | None) -> bool:
    def matches(globs: list[str]) -> bool:
        return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in globs)

    return (not include or matches(include)) and not (exclude and matches(exclude))


def _has_video_stream(path: Path) -> bool:
    from vidgpen.io.probe import open_input

    try:
        open_input(path).close()
    except (InputError, OSError, UnicodeDecodeError):
        return False
    return True


def output_names(rels: list[str], suffix: str) -> dict[str, str]:
    """Mirrored output path per input; ``a.mov`` and ``a.mp4`` side by side keep their
    extension in the name (``a.mov.mp4``, ``a.mp4.mp4``) instead of overwriting each other."""
    plain = {rel: Path(rel).with_suffix(suffix).as_posix() for rel in rels}
    taken = Counter(plain.values())
    return {rel: out if taken[out] == 1 else f"{rel}{suffix}" for rel, out in plain.items()}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def settings_identity(config: RestoreConfig) -> str:
    """Settings hash plus the identity of explicit weights (a new file means new output)."""
    identity = config.settings_hash()
    if config.weights:
        weights = Path(config.weights)
        stat = weights.stat() if weights.exists() else None
        extra = f"{weights.resolve()}:{stat.st_size if stat else 0}:{stat.st_mtime if stat else 0}"
        identity = hashlib.sha256(f"{identity}:{extra}".encode()).hexdigest()[:16]
    return identity


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


class _Cancelled(BaseException):
    """Raised inside a running local job when the batch stops; not an error of the file.

    A BaseException so that run_job's retry loop lets it through.
    """


def run_job(job: Job, config: RestoreConfig, options: BatchOptions, cancel: threading.Event | None = None) -> FileResult:
    """Restore one file; bad input fails at once, other errors are retried.

    ``cancel`` stops the run at the next frame: the pipeline then drops its partial output
    (with ``options.resume_segments``, the finished segments stay for the retry or next run).
    """
    from vidgpen.pipeline import Pipeline
    from vidgpen.resume import run_resumable

    def check_cancel(frames: int, faces: int) -> None:
        if cancel is not None and cancel.is_set():
            raise _Cancelled

    started = time.perf_counter()
    result = job.result(FAILED, worker=f"{socket.gethostname()}:{os.getpid()}")
    while result.attempts <= options.retries:
        result.attempts += 1
        try:
            Path(job.target).parent.mkdir(parents=True, exist_ok=True)
            if options.resume_segments is None:
                report = Pipeline(config).run(job.source, job.target, overwrite=True, on_progress=check_cancel)
            else:
                report = run_resumable(Pipeline(config), job.source, job.target, options.resume_segments,
                                       overwrite=True, on_progress=check_cancel)
            result.sha256 = file_sha256(Path(job.source))
        except _Cancelled:  # the batch was stopped: not the file's fault, redone by the next run
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
    jobs: int | None = None  # files at once; default 1 locally, one per GPU (else per CPU) on Ray
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
    if options.engine == "ray":
        _import_ray()  # fail before any work when Ray is missing
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
    engine = _run_ray if options.engine == "ray" else _run_local
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


def _run_local(jobs: list[Job], config: RestoreConfig, options: BatchOptions,
               stopped: list[FileResult]) -> Iterator[FileResult]:
    """Jobs on a thread pool, results as they finish; those a stop cut short go to ``stopped``.

    Threads, not processes: torch, PyAV and OpenCV release the GIL, and the weights are
    loaded once and shared (see vidgpen.models.restorer's cache). The main thread only
    waits, so Ctrl-C reaches it at once; running jobs then stop at their next frame.
    """
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=options.jobs or 1, thread_name_prefix="vidgpen-batch")
    running = {pool.submit(run_job, job, config, options, cancel) for job in jobs}
    try:
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
    finally:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        stopped += [f.result() for f in running if f.done() and not f.cancelled() and f.exception() is None
                    and f.result().status == INTERRUPTED]


def _import_ray() -> Any:
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


def _run_ray(jobs: list[Job], config: RestoreConfig, options: BatchOptions,
             stopped: list[FileResult]) -> Iterator[FileResult]:
    """Each file runs as a task on a pool of worker actors; results come back to the driver.

    Inputs and outputs must be at the same path on every machine (a shared filesystem).
    """
    if not jobs:
        return  # nothing to do: no need to start or join a cluster
    ray = _import_ray()
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
        yield from _dispatch(ray, jobs, workers, lambda: worker_class.remote(config, options), stopped)
    finally:
        if started_here:
            ray.shutdown()


def _dispatch(ray: Any, jobs: list[Job], idle: list[Any], new_worker: Callable[[], Any],
              stopped: list[FileResult]) -> Iterator[FileResult]:
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
                stopped.append(job.result(INTERRUPTED, error=f"{job.source}: interrupted before it finished"))


