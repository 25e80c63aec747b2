"""Stop a command on SIGTERM and SIGHUP as on Ctrl-C (SIGINT).

``docker stop``, systemd, Kubernetes, Ray and batch schedulers send SIGTERM; closing a
terminal or an SSH session sends SIGHUP. Python only turns SIGINT into an exception, so
without this the process dies where it stands and leaves its ``.partial`` output. Here
each becomes :class:`Interrupted` (a KeyboardInterrupt) in the main thread, so every
path that cleans up after Ctrl-C (stages stop at the next frame, partial files are
removed, batch records the file as interrupted) runs for them too.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

# Shell convention: 128 + the signal's number.
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP. A library that catches the
    :class:`Interrupted` and raises a plain KeyboardInterrupt of its own loses the number
    (seen once in four SIGTERMs of a Ray driver: exit 130); the handler remembered it."""
    signum = getattr(exc, "signum", None) or (_received[-1] if _received else signal.SIGINT)
    return EXIT_CODES.get(signum, 130)


_received: list[int] = []  # signals turned into Interrupted, in order


def _raise(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` like Ctrl-C does
    (only Python's main thread can set handlers; elsewhere the block changes nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
