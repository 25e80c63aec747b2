"""The local engine: a batch's files on a thread pool."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from vidgpen.batch.jobs import BatchOptions, Job, run_job
from vidgpen.batch.manifest import INTERRUPTED, FileResult
from vidgpen.config import RestoreConfig


def run_local(jobs: list[Job], config: RestoreConfig, options: BatchOptions,
              stopped: list[FileResult]) -> Iterator[FileResult]:
    """Jobs on a thread pool, results as they finish; those a stop cut short go to ``stopped``.

    Threads, not processes: torch, PyAV and OpenCV release the GIL, and the weights are
    loaded once and shared (see vidgpen.models.runtime.restorer's cache). The main thread only
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
