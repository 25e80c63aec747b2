"""Keep a pool of worker actors busy with units; retry units a lost worker or node took with it.

A unit whose worker dies (the process, or its whole node) is handed to another worker,
after its partial file is removed; one that fails on bad input is not retried; any other
failure is retried up to ``retries`` times. A stop (Ctrl-C, SIGTERM, an error, the caller
closing the iterator) kills every worker, waits for them to go, and removes what they were
writing; finished units' files stay, so a rerun continues from them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vidgpen.cluster.worker import Outcome, Progress, Unit
from vidgpen.errors import first_line
from vidgpen.io.writer import partial_path

_KILL_WAIT_S = 30.0  # for killed workers to exit before their partial files are removed
_POLL_S = 0.5  # the driver's wait between events: Ctrl-C gets in at least this often


@dataclass
class UnitResult:
    """A unit's last outcome, its attempts and one line per failed attempt."""

    unit: Unit
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    outcome: Outcome | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is not None and self.outcome.error is None


class WorkersFailed(Exception):
    """The workers cannot be started (a processing failure: exit 1)."""


class WorkerPool:
    """``count`` workers made by ``spawn``; a worker gets units only once it is up."""

    def __init__(self, ray: Any, spawn: Callable[[], Any], count: int, retries: int) -> None:
        self._ray, self._spawn, self._retries = ray, spawn, retries
        self._queue: deque[UnitResult] = deque()
        self._starting: dict[Any, Any] = {}  # ref of where() → actor
        self._idle: list[Any] = []
        self._running: dict[Any, tuple[UnitResult, Any]] = {}  # generator → (unit, actor)
        self._where: dict[Any, tuple[str, str]] = {}  # actor → (node, worker)
        self._count, self._start_failures = count, 0
        for _ in range(count):
            self._start_worker()

    def run(self, units: list[Unit], on_progress: Callable[[Unit, Progress], None]) -> Iterator[UnitResult]:
        """Results as units end (done, or failed for good); the longest units go first."""
        self._queue.extend(UnitResult(u) for u in sorted(units, key=lambda u: -u.seconds))
        try:
            while self._queue or self._running:
                self._dispatch()
                ready, _ = self._ray.wait([*self._running, *self._starting], num_returns=1, timeout=_POLL_S)
                for ref in ready:
                    if ref in self._starting:
                        self._started(ref)
                    else:
                        yield from self._advance(ref, on_progress)
        finally:
            self._stop()

    def discard(self, group: str) -> None:
        """Drop the queued units of ``group`` (one of its units failed for good)."""
        self._queue = deque(r for r in self._queue if r.unit.group != group)

    def _start_worker(self) -> None:
        actor = self._spawn()
        self._starting[actor.where.remote()] = actor

    def _started(self, ref: Any) -> None:
        actor = self._starting.pop(ref)
        try:
            self._where[actor] = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:  # died while starting: its node went away, or it cannot start
            self._start_failures += 1
            if self._start_failures > self._count * (self._retries + 1):  # e.g. vidgpen missing on a node
                raise WorkersFailed(f"Ray workers keep failing to start: {first_line(exc)}") from None
            self._start_worker()
            return
        self._idle.append(actor)

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            result, actor = self._queue.popleft(), self._idle.pop()
            result.attempts += 1
            self._running[actor.restore.remote(result.unit)] = (result, actor)

    def _advance(self, generator: Any, on_progress: Callable[[Unit, Progress], None]) -> Iterator[UnitResult]:
        result, actor = self._running[generator]
        try:
            event = self._ray.get(next(generator))
        except self._ray.exceptions.RayError as exc:  # the worker or its node is gone
            del self._running[generator]
            yield from self._lost(result, actor, exc)
            return
        if isinstance(event, Progress):
            on_progress(result.unit, event)
            return
        del self._running[generator]
        self._idle.append(actor)
        result.outcome = event
        if event.error is not None and not event.permanent and result.attempts <= self._retries:
            result.failures.append(f"{event.node}: {event.worker}: {first_line(event.error)}")
            self._queue.appendleft(result)
        else:
            yield result

    def _lost(self, result: UnitResult, actor: Any, exc: Exception) -> Iterator[UnitResult]:
        """A dead worker's unit: its partial file removed, retried on another worker."""
        partial_path(result.unit.output).unlink(missing_ok=True)
        node, worker = self._where.pop(actor, ("?", "?"))
        line = f"{node}: {worker}: the Ray worker was lost ({type(exc).__name__}: {first_line(exc)})"
        result.failures.append(line)
        self._start_worker()
        if result.attempts <= self._retries:
            self._queue.appendleft(result)
            return
        result.outcome = Outcome(node, worker, error=RuntimeError(f"{result.unit.output}: {line}"))
        yield result

    def _stop(self) -> None:
        for actor in [*self._idle, *self._starting.values(), *(a for _, a in self._running.values())]:
            self._ray.kill(actor)
        if self._running:  # stopped early: once the workers are gone, drop what they were writing
            self._ray.wait(list(self._running), num_returns=len(self._running), timeout=_KILL_WAIT_S)
            for result, _ in self._running.values():
                partial_path(result.unit.output).unlink(missing_ok=True)
