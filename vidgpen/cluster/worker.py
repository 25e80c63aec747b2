"""The Ray actor that restores units (a segment of a video, or a whole short file).

An actor rather than plain tasks: it loads the weights once and keeps them for every unit
it gets (the restorer cache is per process), and Ray ends a GPU task's process after each
task by default. ``restore`` is a generator, so the driver hears each worker's frame count
while the unit runs, and the last item is the unit's :class:`Outcome`.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vidgpen.config import RestoreConfig
from vidgpen.errors import VidgpenError, first_line
from vidgpen.pipeline import Pipeline, RunReport
from vidgpen.pipeline.segments import Segment, SegmentedRun, restore_segment
from vidgpen.plan.run_plan import RunPlan

PROGRESS_EVERY_S = 0.5  # how often a worker reports its frame count


@dataclass(frozen=True)
class Unit:
    """One piece of work: ``segment`` of ``run`` (its plan over the segment's span), or the
    whole ``input`` into ``output`` with ``plan``. Both plans come from the driver."""

    group: str  # the output file it belongs to
    input: str
    output: str  # the file this unit writes: a part, or the whole output
    seconds: float  # of video: the longest units are handed out first
    plan: RunPlan | None = None
    segment: Segment | None = None
    run: SegmentedRun | None = None


@dataclass(frozen=True)
class Progress:
    frames: int
    faces: int


@dataclass(frozen=True)
class Outcome:
    """How a unit ended on a worker: its report, or its error (``permanent``: bad input, not retried)."""

    node: str  # Ray node id
    worker: str  # host:pid
    report: RunReport | None = None
    error: BaseException | None = None
    permanent: bool = False


class SegmentWorker:
    """One Ray worker process holding one GPU (or its share of CPUs) for the whole run."""

    def __init__(self, config: RestoreConfig) -> None:
        import ray

        self._pipeline = Pipeline(config)  # no restorer object: each plan's models, loaded once per process
        self._node = ray.get_runtime_context().get_node_id()
        self._worker = f"{socket.gethostname()}:{os.getpid()}"

    def where(self) -> tuple[str, str]:
        """(node id, host:pid): answered once the actor is up, so the driver hands it work."""
        return self._node, self._worker

    def restore(self, unit: Unit) -> Iterator[Progress | Outcome]:
        latest = Progress(0, 0)
        ended: list[Outcome] = []

        def progress(frames: int, faces: int) -> None:
            nonlocal latest
            latest = Progress(frames, faces)

        thread = threading.Thread(target=lambda: ended.append(self._outcome(unit, progress)), daemon=True)
        thread.start()
        sent = latest
        while thread.is_alive():
            thread.join(PROGRESS_EVERY_S)
            if latest != sent:
                sent = latest
                yield sent
        yield ended[0]

    def _outcome(self, unit: Unit, progress: Callable[[int, int], None]) -> Outcome:
        try:
            if unit.run is not None and unit.segment is not None:
                report = restore_segment(self._pipeline, unit.run, unit.segment, on_progress=progress)
            else:
                Path(unit.output).parent.mkdir(parents=True, exist_ok=True)
                report = self._pipeline.run(unit.input, unit.output, overwrite=True, plan=unit.plan,
                                            on_progress=progress)
        except VidgpenError as exc:
            return Outcome(self._node, self._worker, error=exc, permanent=True)
        except Exception as exc:  # noqa: BLE001 - a processing failure: the driver retries it
            where = f" (segment {unit.segment.index})" if unit.segment is not None else ""
            error = RuntimeError(f"{unit.input}{where}: {type(exc).__name__}: {first_line(exc)}")  # picklable
            return Outcome(self._node, self._worker, error=error)
        return Outcome(self._node, self._worker, report=report)
