"""Shared test paths. ``../shared`` (read-only data beside the repo) holds real faces and
GPEN fixtures; tests make their own media and checkpoints under tmp_path."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
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


def pytest_configure(config: pytest.Config) -> None:
    """A fresh Inductor cache for every test session, so the suite compiles as a new machine
    does: a cache that already holds the graphs hides a failing first compile. Costs the
    compiled tests their real compile time (about a minute on 2 cores)."""
    config.stash[_INDUCTOR_CACHE] = tempfile.mkdtemp(prefix="vidgpen-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = config.stash[_INDUCTOR_CACHE]
    _ctrl_c_as_in_a_terminal()


def _ctrl_c_as_in_a_terminal() -> None:
    """A non-interactive shell starts its background jobs (`pytest … &`) with SIGINT ignored,
    Python then leaves it ignored, and every `vidgpen` child the tests start inherits that: the
    Ctrl-C tests' children ran to the end (exit 0). The tests mean a Ctrl-C in a terminal, so
    the session takes SIGINT as Python does there (and unblocks it, which children inherit too)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _INDUCTOR_CACHE in config.stash:
        shutil.rmtree(config.stash[_INDUCTOR_CACHE], ignore_errors=True)
