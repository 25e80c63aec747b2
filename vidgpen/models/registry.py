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
_MODELSCOPE = "https://modelscope.cn/api/v1/models/damo/cv_gpen_image-portrait-enhancement-hires/repo?Revision=master&FilePath="
_FACEXLIB = "https://github.com/xinntao/facexlib/releases/download"

REGISTRY: dict[str, WeightsEntry] = {
    e.name: e
    for e in (
        WeightsEntry("gpen-bfr-256", f"{_GPEN_HOST}/GPEN-BFR-256.pth", "GPEN-BFR-256.pth", None, None,
                     "GPEN blind face restoration, 256×256 faces (GPEN authors)"),
        WeightsEntry("gpen-bfr-512", f"{_GPEN_HOST}/GPEN-BFR-512.pth", "GPEN-BFR-512.pth", None, None,
                     "GPEN blind face restoration, 512×512 faces (GPEN authors)"),
        WeightsEntry("gpen-bfr-1024", f"{_MODELSCOPE}pytorch_model.pt", "gpen-bfr-1024.pt", None, None,
                     "GPEN blind face restoration, 1024×1024 faces (ModelScope damo hires)"),
        WeightsEntry("gpen-bfr-2048", f"{_MODELSCOPE}pytorch_model-2048.pt", "gpen-bfr-2048.pt", None, None,
                     "GPEN blind face restoration, 2048×2048 faces (ModelScope damo hires)"),
        WeightsEntry("retinaface-resnet50", f"{_FACEXLIB}/v0.1.0/detection_Resnet50_Final.pth",
                     "detection_Resnet50_Final.pth", None, None, "facexlib RetinaFace ResNet-50 face detector"),
        WeightsEntry("retinaface-mobilenet0.25", f"{_FACEXLIB}/v0.1.0/detection_mobilenet0.25_Final.pth",
                     "detection_mobilenet0.25_Final.pth", None, None, "facexlib RetinaFace MobileNet-0.25 face detector"),
        WeightsEntry("parsenet", f"{_FACEXLIB}/v0.2.2/parsing_parsenet.pth", "parsing_parsenet.pth", None, None,
                     "facexlib ParseNet face parsing (blend masks)"),
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
        _check_size(e, path, path.stat().st_size)
        return path
    if not download:
        raise WeightsError(_missing_message(e, path, "not in the cache"))
    return _fetch(e, path)


def _check_size(e: WeightsEntry, path: Path, size: int) -> None:
    if e.size is not None and size != e.size:
        raise WeightsError(
            f"{path}: {size} bytes, {e.name} should be {e.size}; "
            f"run `vidgpen models download {e.name} --force`"
        )


def _check_sha256(e: WeightsEntry, path: Path, digest: str) -> None:
    if e.sha256 is not None and digest != e.sha256.lower():
        raise WeightsError(f"{path}: sha256 {digest} does not match {e.name}'s {e.sha256}; the file is corrupt or not {e.name}")


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
        _check_size(e, tmp, size)
        _check_sha256(e, tmp, digest)
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
            total = response.length or e.size
            columns = (TextColumn(e.name), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
            with Progress(*columns, transient=True) as progress:
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
    _check_sha256(e, path, digest)
    return digest
