"""Shared test paths. ``../shared`` (read-only data beside the repo) holds real faces and
GPEN fixtures; tests make their own media and checkpoints under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FACES = SHARED / "faces"
GPEN_FIXTURES = SHARED / "fixtures" / "gpen"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep every test's model cache away from the user's real one."""
    monkeypatch.setenv("VIDGPEN_HOME", str(tmp_path_factory.mktemp("vidgpen_home")))
