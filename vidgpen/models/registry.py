"""Known model weights: where they come from, where they are cached, and how to fetch them.

vidgpen cannot ship weights, so each entry names the upstream file. The cache is
``$VIDGPEN_HOME``, else ``$XDG_CACHE_HOME/vidgpen``, else ``~/.cache/vidgpen``; weights
live in its ``weights/`` folder under the entry's filename (facexlib's own filenames for
its models, because facexlib looks them up by filename in a ``model_rootpath``).

Downloads stream to a temporary file in the same folder, are checked against the
entry's size and sha256 where known, and only then renamed into place, so an
interrupted download never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from vidgpen.errors import WeightsError

CHUNK = 1 << 20
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class WeightsEntry:
    """One downloadable file; ``size``/``sha256`` are None where no trustworthy value is known."""

    name: str
    url: str
    filename: str
    size: int | None
    sha256: str | None
    description: str


_GPEN_HOST = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models"
_MODELSCOPE = (
    "https://modelscope.cn/api/v1/models/damo/cv_gpen_image-portrait-enhancement-hires/repo?Revision=master&FilePath="
)
_FACEXLIB = "https://github.com/xinntao/facexlib/releases/download"

# No size or sha256 is published by the hosts for these files, so none is pinned here:
# `vidgpen models verify` falls back to checking the GPEN layout of the file.
REGISTRY: dict[str, WeightsEntry] = {
    e.name: e
    for e in (
        WeightsEntry(
            name="gpen-bfr-256",
            url=f"{_GPEN_HOST}/GPEN-BFR-256.pth",
            filename="GPEN-BFR-256.pth",
            size=None,
            sha256=None,
            description="GPEN blind face restoration, 256×256 faces (GPEN authors)",
        ),
        WeightsEntry(
            name="gpen-bfr-512",
            url=f"{_GPEN_HOST}/GPEN-BFR-512.pth",
            filename="GPEN-BFR-512.pth",
            size=None,
            sha256=None,
            description="GPEN blind face restoration, 512×512 faces (GPEN authors)",
        ),
        WeightsEntry(
            name="gpen-bfr-1024",
            url=f"{_MODELSCOPE}pytorch_model.pt",
            filename="gpen-bfr-1024.pt",
            size=None,
            sha256=None,
            description="GPEN blind face restoration, 1024×1024 faces (ModelScope, damo)",
        ),
        WeightsEntry(
            name="gpen-bfr-2048",
            url=f"{_MODELSCOPE}pytorch_model-2048.pt",
            filename="gpen-bfr-2048.pt",
            size=None,
            sha256=None,
            description="GPEN blind face restoration, 2048×2048 faces (ModelScope, damo)",
        ),
        WeightsEntry(
            name="retinaface-resnet50",
            url=f"{_FACEXLIB}/v0.1.0/detection_Resnet50_Final.pth",
            filename="detection_Resnet50_Final.pth",
            size=None,
            sha256=None,
            description="facexlib RetinaFace ResNet-50 face detector",
        ),
        WeightsEntry(
            name="retinaface-mobilenet0.25",
            url=f"{_FACEXLIB}/v0.1.0/detection_mobilenet0.25_Final.pth",
            filename="detection_mobilenet0.25_Final.pth",
            size=None,
            sha256=None,
            description="facexlib RetinaFace MobileNet-0.25 face detector",
        ),
        WeightsEntry(
            name="parsenet",
            url=f"{_FACEXLIB}/v0.2.2/parsing_parsenet.pth",
            filename="parsing_parsenet.pth",
            size=None,
            sha256=None,
            description="facexlib ParseNet face parsing (paste-back masks)",
        ),
    )
}


def cache_dir() -> Path:
    """The vidgpen cache folder (not created)."""
    if home := os.environ.get("VIDGPEN_HOME"):
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "vidgpen"


def weights_dir() -> Path:
    """Folder holding every registry file under its entry's filename (facexlib's model_rootpath)."""
    return cache_dir() / "weights"


def entry(name: str) -> WeightsEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise WeightsError(f"{name}: unknown model name (known: {', '.join(REGISTRY)})") from None


def path_of(name: str) -> Path:
    """Where ``name`` is (or would be) cached."""
    return weights_dir() / entry(name).filename


def is_cached(name: str) -> bool:
    return path_of(name).is_file()


def _missing_message(e: WeightsEntry, path: Path, why: str) -> str:
    return f"{path}: {e.name} weights missing ({why}); download {e.url} and save it as {path}"


def resolve(name: str, download: bool = True) -> Path:
    """Path of the cached file for ``name``, downloading it first if allowed.

    Only the size is checked here (cheap, catches partial copies); ``verify`` hashes.
    """
    e = entry(name)
    path = path_of(name)
    if path.is_file():
        _refuse_cached(e, path, _mismatch(e, path.stat().st_size))
        return path
    if not download:
        raise WeightsError(_missing_message(e, path, "not in the cache"))
    return _fetch(e, path)


def _mismatch(e: WeightsEntry, size: int, digest: str | None = None) -> str | None:
    """What differs from the entry's published size/sha256, if anything."""
    if e.size is not None and size != e.size:
        return f"{size} bytes, {e.name} has {e.size}"
    if digest is not None and e.sha256 is not None and digest != e.sha256.lower():
        return f"sha256 {digest} does not match {e.name}'s {e.sha256}"
    return None


def _refuse_cached(e: WeightsEntry, path: Path, problem: str | None) -> None:
    if problem:
        raise WeightsError(f"{path}: {problem}; run `vidgpen models download {e.name} --force`")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def download(name: str, force: bool = False) -> Path:
    """Fetch ``name`` into the cache (kept as is when already there, unless ``force``)."""
    e = entry(name)
    path = path_of(name)
    if path.is_file() and not force:
        return path
    return _fetch(e, path)


def _fetch(e: WeightsEntry, path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"{path.parent}: cannot create the weights folder ({exc.strerror})") from None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{e.filename}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, size = _stream(e, out)
        if problem := _mismatch(e, size, digest):
            raise WeightsError(f"{path}: download from {e.url} refused ({problem}); nothing was saved")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _stream(e: WeightsEntry, out: BinaryIO) -> tuple[str, int]:
    """Copy the URL's body into ``out`` with a progress bar; returns (sha256, bytes)."""
    h = hashlib.sha256()
    size = 0
    request = urllib.request.Request(e.url, headers={"User-Agent": "vidgpen"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length else e.size
            columns = (TextColumn(e.name), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
            # stderr: stdout stays clean for `vidgpen models download NAME` in scripts
            with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task("download", total=total)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    progress.update(task, advance=len(chunk))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(_missing_message(e, path_of(e.name), f"download failed: {reason}")) from None
    return h.hexdigest(), size


def verify(name: str) -> str:
    """Check the cached file's size and sha256 (where known); returns its sha256."""
    e = entry(name)
    path = resolve(name, download=False)
    digest = sha256_of(path)
    _refuse_cached(e, path, _mismatch(e, path.stat().st_size, digest))
    return digest
