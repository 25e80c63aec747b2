"""Threads joined by bounded channels, with stop and error propagation and stage timing.

PyAV, OpenCV and torch release the GIL in their heavy calls, so stages in threads
overlap; bounded channels keep memory bounded by their size, never by the video's
length. The first stage to fail stops every other one, and its error is raised in the
thread that consumes the last channel.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from vidgpen.stats import StageTimes

END = object()  # put after a stage's last item


class Stopped(Exception):
    """Raised inside a stage when another stage failed or the run was interrupted."""


class Channel:
    """A bounded queue whose put/get give up when the run is stopping."""

    def __init__(self, size: int, stop: threading.Event) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._stop = stop

    def put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise Stopped

    def get(self) -> Any:
        while not self._stop.is_set():
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
        raise Stopped

    def __iter__(self) -> Iterator[Any]:
        while (item := self.get()) is not END:
            yield item


class StageRunner:
    """Owns the channels and stage threads of one run; leaving it stops and joins them.

    ``results(channel)`` is iterated by the calling thread: it ends when the last stage
    is done and raises the first stage error, whichever thread it came from.
    """

    def __init__(self, queue_size: int, times: StageTimes | None = None) -> None:
        self.queue_size = queue_size
        self.times = times or StageTimes()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def channel(self) -> Channel:
        return Channel(self.queue_size, self._stop)

    def start(self, name: str, body: Callable[[], None]) -> None:
        thread = threading.Thread(target=self._guarded, args=(body,), name=f"vidgpen-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def results(self, channel: Channel) -> Iterator[Any]:
        try:
            yield from channel
        except Stopped:
            raise self._errors[0] from None
        if self._errors:
            raise self._errors[0]

    def _guarded(self, body: Callable[[], None]) -> None:
        try:
            body()
        except Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consuming thread
            self._errors.append(exc)
            self._stop.set()

    def __enter__(self) -> StageRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
