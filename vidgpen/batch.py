"""Restore a whole media library: walk it, resume from a manifest, isolate failures, scale on Ray.

The manifest (``vidgpen-manifest.json`` in the output folder, rewritten atomically after
every file) records what was done with which settings, so a rerun only redoes inputs
that changed, whose settings changed, or that failed. Only the driver writes it; Ray
workers just run the same :class:`~vidgpen.pipeline.Pipeline` and return results.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidgpen.config import RestoreConfig
from vidgpen.errors import ConfigError, VidgpenError

log = logging.getLogger(__name__)

MANIFEST_NAME = "vidgpen-manifest.json"
VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".mts", ".m2ts", ".ts",
                    ".dv", ".wmv", ".flv", ".3gp", ".vob", ".ogv", ".mxf"}
# Never probed: still images open as one-frame "videos" in FFmpeg, and the rest is noise.
NOT_VIDEO_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".txt", ".json",
                        ".xml", ".pdf", ".doc", ".docx", ".mp3", ".wav", ".flac", ".aac", ".m4a", ".ogg", ".opus",
                        ".srt", ".ass", ".vtt", ".nfo", ".db", ".ini", ".zip", ".py", ".toml", ".md", ".csv"}
DONE, FAILED, SKIPPED = "done", "failed", "skipped"


@dataclass
class FileResult:
    """One input's manifest record."""

    input: str  # relative to the library root
    output: str  # relative to the output root
    size: int
    mtime: float
    sha256: str
    settings: str  # hash of the settings that change the output
    status: str  # done | failed | skipped
    error: str | None = None
    seconds: float = 0.0
    frames: int = 0
    faces: int = 0
    attempts: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
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

    def is_current(self, rel: str, size: int, mtime: float, settings: str) -> bool:
        record = self.records.get(rel)
        return (record is not None and record.status == DONE and record.size == size
                and record.mtime == mtime and record.settings == settings)

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
    """Video files under ``root`` (by extension, or by probing unknown extensions), sorted."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if skip_dir is not None and skip_dir in path.parents:
            continue
        rel = path.relative_to(root).as_posix()
        if include and not any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path.name, g) for g in include):
            continue
        if exclude and any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path.name, g) for g in exclude):
            continue
        suffix = path.suffix.lower()
        if suffix in VIDEO_EXTENSIONS or (suffix not in NOT_VIDEO_EXTENSIONS and _has_video_stream(path)):
            found.append(path)
    return found


def _has_video_stream(path: Path) -> bool:
    import av

    try:
        with av.open(str(path)) as container:
            return any(s.type == "video" for s in container.streams) and container.format.name not in (
                "image2", "png_pipe", "jpeg_pipe")
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return False


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
    sha256: str
    settings: str


def run_job(job: Job, config: RestoreConfig, retries: int) -> FileResult:
    """Restore one file; bad input fails at once, other errors are retried."""
    from vidgpen.pipeline import Pipeline

    started = time.perf_counter()
    attempts, error = 0, None
    result = FileResult(job.rel_input, job.rel_output, job.size, job.mtime, job.sha256, job.settings, FAILED)
    while attempts <= retries:
        attempts += 1
        try:
            Path(job.target).parent.mkdir(parents=True, exist_ok=True)
            report = Pipeline(config).run(job.source, job.target, overwrite=True)
        except VidgpenError as exc:
            error = str(exc)
            break
        except Exception as exc:  # noqa: BLE001 - a processing failure: retry, then record it
            error = f"{type(exc).__name__}: {exc}"
            log.warning("%s: attempt %d failed: %s", job.source, attempts, error)
            continue
        result.status, result.frames, result.faces = DONE, report.frames, report.faces
        result.stage_seconds = report.stage_seconds
        error = None
        break
    result.error, result.attempts = error, attempts
    result.seconds = round(time.perf_counter() - started, 3)
    return result


@dataclass
class BatchOptions:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    jobs: int = 1
    engine: str = "local"  # local | ray
    ray_address: str | None = None
    retries: int = 1
    force: bool = False
    dry_run: bool = False
    output_suffix: str = ".mp4"


def plan(in_dir: Path, out_dir: Path, config: RestoreConfig, options: BatchOptions,
         manifest: Manifest) -> tuple[list[Job], list[FileResult]]:
    """Split the library into jobs to run and inputs already done with these settings."""
    settings = settings_identity(config)
    jobs, current = [], []
    for path in find_videos(in_dir, options.include, options.exclude, skip_dir=out_dir):
        rel = path.relative_to(in_dir).as_posix()
        rel_out = Path(rel).with_suffix(options.output_suffix).as_posix()
        stat = path.stat()
        if not options.force and manifest.is_current(rel, stat.st_size, stat.st_mtime, settings) \
                and (out_dir / rel_out).exists():
            current.append(manifest.records[rel])
            continue
        sha = "" if options.dry_run else file_sha256(path)
        jobs.append(Job(str(path), str(out_dir / rel_out), rel, rel_out, stat.st_size, stat.st_mtime, sha, settings))
    return jobs, current


def run_batch(in_dir: str | Path, out_dir: str | Path, config: RestoreConfig, options: BatchOptions,
              on_result: Callable[[FileResult], None] | None = None) -> BatchSummary:
    """Restore every video under ``in_dir`` into the mirrored tree under ``out_dir``."""
    in_dir, out_dir = Path(in_dir).resolve(), Path(out_dir).resolve()
    if not in_dir.is_dir():
        raise VidgpenError(f"{in_dir}: not a folder")
    if in_dir == out_dir:
        raise VidgpenError(f"{out_dir}: the output folder must differ from the input folder")
    if options.engine not in ("local", "ray"):
        raise ConfigError(f"options: engine: {options.engine!r} is not local or ray")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out_dir)
    jobs, current = plan(in_dir, out_dir, config, options, manifest)
    summary = BatchSummary()
    for record in current:
        _count(summary, FileResult(**{**asdict(record), "status": SKIPPED}))
    if options.dry_run:
        summary.results.extend(
            FileResult(j.rel_input, j.rel_output, j.size, j.mtime, "", j.settings, "pending") for j in jobs)
        return summary
    started = time.perf_counter()
    results = _run_ray(jobs, config, options) if options.engine == "ray" else _run_local(jobs, config, options)
    for result in results:
        manifest.put(result)
        _count(summary, result)
        if on_result is not None:
            on_result(result)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _count(summary: BatchSummary, result: FileResult) -> None:
    summary.results.append(result)
    summary.faces += result.faces if result.status == DONE else 0
    if result.status == DONE:
        summary.done += 1
    elif result.status == SKIPPED:
        summary.skipped += 1
    else:
        summary.failed += 1


def _run_local(jobs: list[Job], config: RestoreConfig, options: BatchOptions) -> Iterator[FileResult]:
    if options.jobs <= 1:
        for job in jobs:
            yield run_job(job, config, options.retries)
        return
    from concurrent.futures import ThreadPoolExecutor

    # Threads, not processes: torch, PyAV and OpenCV release the GIL, and the weights
    # are loaded once and shared (see vidgpen.models.restorer's cache).
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        futures = [pool.submit(run_job, job, config, options.retries) for job in jobs]
        try:
            for future in futures:
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _run_ray(jobs: list[Job], config: RestoreConfig, options: BatchOptions) -> Iterator[FileResult]:
    try:
        import ray
    except ImportError:
        raise VidgpenError("--engine ray: Ray is not installed; install it with: pip install 'vidgpen[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=options.ray_address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1, max_retries=0)(run_job)
        pending = {task.remote(job, config, options.retries): job for job in jobs}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    job = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - a worker died: record, go on
                        yield FileResult(job.rel_input, job.rel_output, job.size, job.mtime, job.sha256,
                                         job.settings, FAILED, error=f"ray task failed: {exc}", attempts=1)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started_here:
            ray.shutdown()
