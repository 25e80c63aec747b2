"""Fetch a model file from its sources, in order, verified before it is renamed into place.

Each source streams to a temporary file in the cache folder. The body must be as long as
the server announced (a dropped connection is a truncated file, not a model) and match
the spec's size and sha256 where they are published; only then is it renamed, so an
interrupted or corrupted download never leaves a file that looks complete. A source
that fails for any reason is skipped for the next one (a warning says so once one
succeeds); when all fail, one error names every URL and why.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from vidgpen.errors import WeightsError
from vidgpen.weights.spec import ModelSpec

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 30.0
_HEADERS = {"User-Agent": "vidgpen"}


class SourceFailed(Exception):
    """One source did not deliver the file; the message says why."""


def fetch(spec: ModelSpec, path: Path) -> Path:
    """Download ``spec`` to ``path`` from the first source that delivers the right bytes."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"{path.parent}: cannot create the weights folder ({exc.strerror})") from None
    failures = []
    for url in spec.sources:
        try:
            saved = _fetch_one(spec, url, path)
        except SourceFailed as exc:
            failures.append(f"{url} ({exc})")
            continue
        if failures:  # said once it worked out: a run that fails gets one error line, not one per source
            log.warning("%s: downloaded from %s after %s", spec.name, url, "; ".join(failures))
        return saved
    raise WeightsError(
        f"{path}: {spec.name} weights missing (download failed from every source: {'; '.join(failures)}); "
        f"save the file as {path}"
    )


def _fetch_one(spec: ModelSpec, url: str, path: Path) -> Path:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, size = _stream(spec.name, url, spec.file_bytes, out)
        if problem := mismatch(spec, size, digest):
            raise SourceFailed(f"{problem}; not saved")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _stream(label: str, url: str, expected: int | None, out: BinaryIO) -> tuple[str, int]:
    """Copy the URL's body into ``out`` with a progress bar; returns (sha256, bytes)."""
    h = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=_HEADERS), timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            announced = int(length) if length else None
            columns = (TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
            # stderr: stdout stays clean for `vidgpen models download NAME` in scripts
            with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task("download", total=announced or expected)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    progress.update(task, advance=len(chunk))
    except http.client.IncompleteRead as exc:
        raise SourceFailed(f"truncated: {size + len(exc.partial)} bytes received") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise SourceFailed(str(getattr(exc, "reason", None) or exc)) from None
    if announced is not None and size != announced:
        raise SourceFailed(f"truncated: {size} of {announced} bytes received")
    return h.hexdigest(), size


def mismatch(spec: ModelSpec, size: int, digest: str | None = None) -> str | None:
    """What differs from the spec's published size/sha256, if anything."""
    if spec.file_bytes is not None and size != spec.file_bytes:
        return f"{size} bytes, {spec.name} has {spec.file_bytes}"
    if digest is not None and spec.sha256 is not None and digest != spec.sha256.lower():
        return f"sha256 {digest} does not match {spec.name}'s {spec.sha256}"
    return None


def reachable(spec: ModelSpec, path: Path) -> str:
    """The first source that answers a HEAD request, checked before a run starts; else one error naming each."""
    failures = []
    for url in spec.sources:
        request = urllib.request.Request(url, headers=_HEADERS, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S):
                return url
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            failures.append(f"{url} ({getattr(exc, 'reason', None) or exc})")
    raise WeightsError(
        f"{path}: {spec.name} weights missing (not in the cache, and no source reachable: {'; '.join(failures)}); "
        f"save the file as {path}"
    )


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
