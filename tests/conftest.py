"""Shared test paths. ``../shared`` (read-only data beside the repo) holds real faces and
GPEN fixtures; tests make their own media and checkpoints under tmp_path."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FACES = SHARED / "faces"
GPEN_FIXTURES = SHARED / "fixtures" / "gpen"
_INDUCTOR_CACHE = pytest.StashKey[str]()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep every test's model cache away from the user's real one."""
    monkeypatch.setenv("VIDGPEN_HOME", str(tmp_path_factory.mktemp("vidgpen_home")))


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@pytest.fixture(autouse=True)
def _signals_as_found(request):
    """Children inherit a process's ignored and blocked signals: in one shuffled run both
    Ctrl-C tests' `vidgpen` children ran to the end (exit 0) after some earlier test had left
    SIGINT ignored or blocked here. Put the dispositions back after every test, with a
    warning that names the test, so the order of the tests cannot change what they mean."""
    yield
    if threading.current_thread() is not threading.main_thread():
        return
    blocked = _STOP_SIGNALS & signal.pthread_sigmask(signal.SIG_BLOCK, [])
    handler = signal.getsignal(signal.SIGINT)
    if blocked or handler is not signal.default_int_handler:
        warnings.warn(f"{request.node.nodeid} left SIGINT as {handler!r}, blocked {sorted(blocked)}: put back",
                      stacklevel=1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    """A fresh Inductor cache for every test session, so the suite compiles as a new machine
    does: a cache that already holds the graphs hides a failing first compile. Costs the
    compiled tests their real compile time (about a minute on 2 cores)."""
    config.stash[_INDUCTOR_CACHE] = tempfile.mkdtemp(prefix="vidgpen-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = config.stash[_INDUCTOR_CACHE]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _INDUCTOR_CACHE in config.stash:
        shutil.rmtree(config.stash[_INDUCTOR_CACHE], ignore_errors=True)
