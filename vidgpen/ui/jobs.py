"""The Run and Batch screens' jobs: a queue per device, kept on disk so a restarted UI goes on.

A run is ``vidgpen restore … --resume``: its finished segments stay beside the output, so
a job that was running when the UI stopped (closed, crashed, the machine rebooted) is
queued again when ``vidgpen ui`` starts and continues at its last finished segment. A
batch is ``vidgpen batch``, whose manifest does the same per file. One job runs at a time
on each device (two runs on one GPU only fight over its memory); the rest wait in order.
A Preview holds its device the same way (:meth:`JobQueue.holding`): it waits for the running
job, and the next queued job waits for it, so a preview and a run never run GPEN at once.
Cancel is the run's cancel event, the stop Ctrl-C makes in the CLI: the run stops at its
next frame and leaves no partial file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidgpen.errors import RunCancelled, VidgpenError, first_line

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
_PROGRESS_SAVE_S = 2.0  # the state file is rewritten at most this often for progress alone


@dataclass
class Job:
    """One queued run or batch; ``argv`` are the settings flags (see vidgpen.ui.settings)."""

    id: int
    kind: str  # "restore" | "batch"
    input: str  # a video, or a library folder
    output: str  # a video, or an output folder
    argv: list[str]
    device: str  # what it queues on: "cpu", "cuda:0", ...
    segment_seconds: float = 60.0
    overwrite: bool = False
    include: list[str] = field(default_factory=list)  # batch: only these files (retry of failed ones)
    preview: str | None = None  # restore: the before|after clip (`--preview`), joined from segments like the output
    status: str = QUEUED
    frames: int = 0
    total: int | None = None
    faces: int = 0
    fps: float = 0.0
    started: float | None = None  # epoch seconds of the current attempt
    finished: float | None = None
    error: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # batch: input → status as results come in

    @property
    def eta_seconds(self) -> float | None:
        if self.status != RUNNING or not self.total or self.fps <= 0:
            return None
        return max(0.0, (self.total - self.frames) / self.fps)


# Does the work; stops at the next frame once the event is set; calls the hook at each frame.
Runner = Callable[[Job, threading.Event, Callable[[], None]], None]


class JobQueue:
    """Jobs in ``state_dir/jobs.json``; one worker thread per device runs them in order."""

    def __init__(self, state_dir: Path, runner: Runner) -> None:
        self._path = state_dir / "jobs.json"
        self._runner = runner
        self._lock = threading.Condition()
        self._cancel: dict[int, threading.Event] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._busy: set[str] = set()  # devices running a job or a preview
        self._waiting: Counter[str] = Counter()  # previews waiting per device: they go before queued jobs
        self._saved = 0.0
        self.jobs: dict[int, Job] = {}
        if self._path.exists():
            for record in json.loads(self._path.read_text(encoding="utf-8"))["jobs"]:
                job = Job(**record)
                if job.status == RUNNING:  # the UI stopped under it: its segments are on disk
                    job.status = QUEUED
                self.jobs[job.id] = job
        for device in {job.device for job in self.jobs.values() if job.status == QUEUED}:
            self._ensure_worker(device)

    def submit(self, job: Job) -> Job:
        with self._lock:
            job.id = max(self.jobs, default=0) + 1
            self.jobs[job.id] = job
            self._save()
            self._ensure_worker(job.device)
            self._lock.notify_all()
        return job

    def cancel(self, job_id: int) -> None:
        """A queued job is dropped; a running one stops at its next frame (the CLI's Ctrl-C)."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.status not in (QUEUED, RUNNING):
                return
            if job.status == QUEUED:
                job.status = CANCELLED
                self._save()
            else:
                self._cancel[job_id].set()

    def latest(self, kind: str) -> Job | None:
        """The job a screen shows: the running one, else the newest."""
        with self._lock:
            mine = [job for job in self.jobs.values() if job.kind == kind]
            running = [job for job in mine if job.status == RUNNING]
            return (running or mine or [None])[-1]

    def _ensure_worker(self, device: str) -> None:
        worker = self._workers.get(device)
        if worker is None or not worker.is_alive():
            worker = threading.Thread(target=self._work, args=(device,), name=f"vidgpen-ui-{device}", daemon=True)
            self._workers[device] = worker
            worker.start()

    @contextmanager
    def holding(self, device: str) -> Iterator[None]:
        """``device`` for work outside the queue (a Preview): waits for the running job to end; the
        next queued job waits until this block ends."""
        with self._lock:
            self._waiting[device] += 1
            while device in self._busy:
                self._lock.wait()
            self._waiting[device] -= 1
            self._busy.add(device)
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(device)
                self._lock.notify_all()

    def _next(self, device: str) -> Job | None:
        with self._lock:
            while True:
                queued = [job for job in self.jobs.values() if job.device == device and job.status == QUEUED]
                if not queued:
                    return None
                if device not in self._busy and not self._waiting[device]:
                    break
                self._lock.wait()
            job = min(queued, key=lambda j: j.id)
            self._busy.add(device)
            job.status, job.started, job.error, job.frames, job.faces = RUNNING, time.time(), None, 0, 0
            self._cancel[job.id] = threading.Event()
            self._save()
            return job

    def _work(self, device: str) -> None:
        while (job := self._next(device)) is not None:
            self._run(job)

    def _run(self, job: Job) -> None:
        def on_frame() -> None:
            if time.monotonic() - self._saved > _PROGRESS_SAVE_S:
                with self._lock:
                    self._save()

        try:
            self._runner(job, self._cancel[job.id], on_frame)
            job.status = DONE
        except RunCancelled:  # the CLI's clean stop: partial output removed, finished segments kept
            job.status = CANCELLED
        except VidgpenError as exc:
            job.status, job.error = FAILED, str(exc)
        except Exception as exc:  # noqa: BLE001 - shown on the screen as the CLI prints it
            log.exception("job %d failed", job.id)
            job.status, job.error = FAILED, f"{type(exc).__name__}: {first_line(exc)}"
        with self._lock:
            job.finished = time.time()
            self._cancel.pop(job.id, None)
            self._busy.discard(job.device)
            self._lock.notify_all()
            self._save()

    def _save(self) -> None:
        """Atomically, so a crash mid-write never loses the queue."""
        payload = json.dumps({"version": 1, "jobs": [asdict(job) for job in self.jobs.values()]}, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=".jobs-", suffix=".json", dir=self._path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
        os.replace(tmp, self._path)
        self._saved = time.monotonic()
