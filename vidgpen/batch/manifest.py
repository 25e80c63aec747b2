"""The per-library record of work (``vidgpen-manifest.json``), written only by the driver.

It records what was done with which settings, so a rerun only redoes inputs that
changed, whose settings changed, or that failed for a reason a retry can fix. It is
rewritten atomically after every file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidgpen.config import RestoreConfig
from vidgpen.errors import InputError, VidgpenError

MANIFEST_NAME = "vidgpen-manifest.json"
DONE, FAILED, SKIPPED, PENDING, INTERRUPTED = "done", "failed", "skipped", "pending", "interrupted"
# A failure of this type is the input's own fault (corrupt, not a video): an unchanged
# input is not tried again on a rerun; anything else (OOM, a lost worker) is.
PERMANENT_ERRORS = (InputError.__name__,)


@dataclass
class FileResult:
    """One input's manifest record."""

    input: str  # relative to the library root
    output: str  # relative to the output root
    size: int
    mtime: float
    settings: str  # settings_identity() of the run that produced this record
    status: str  # done | failed | interrupted (in the manifest); skipped | pending only in a run's summary
    sha256: str = ""  # content hash of the input, once it was restored
    error: str | None = None  # one line naming the file and the problem
    error_type: str | None = None  # exception class, e.g. InputError
    seconds: float = 0.0
    frames: int = 0
    faces: int = 0
    attempts: int = 0
    worker: str = ""  # host:pid that ran it
    stage_seconds: dict[str, float] = field(default_factory=dict)
    segments: list[dict] = field(default_factory=list)  # Ray engine, a split file: one SegmentRecord each


class Manifest:
    """The per-library record of work, keyed by input path; written only by the driver."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / MANIFEST_NAME
        self.records: dict[str, FileResult] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.records = {r["input"]: FileResult(**r) for r in data["files"]}
            except (ValueError, KeyError, TypeError) as exc:
                raise VidgpenError(f"{self.path}: unreadable manifest ({exc}); move it away to start over") from None

    def current(self, rel: str, size: int, mtime: float, settings: str) -> FileResult | None:
        """The record of an unchanged input whose outcome a rerun would repeat, if any."""
        record = self.records.get(rel)
        if record is None or (record.size, record.mtime, record.settings) != (size, mtime, settings):
            return None
        if record.status == DONE or (record.status == FAILED and record.error_type in PERMANENT_ERRORS):
            return record
        return None

    def put(self, result: FileResult) -> None:
        self.records[result.input] = result
        self.save()

    def save(self) -> None:
        payload = {"version": 1, "files": [asdict(r) for r in sorted(self.records.values(), key=lambda r: r.input)]}
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def settings_identity(config: RestoreConfig) -> str:
    """Settings hash plus the identity of explicit weights (a new file means new output)."""
    identity = config.settings_hash()
    if config.weights:
        weights = Path(config.weights)
        stat = weights.stat() if weights.exists() else None
        extra = f"{weights.resolve()}:{stat.st_size if stat else 0}:{stat.st_mtime if stat else 0}"
        identity = hashlib.sha256(f"{identity}:{extra}".encode()).hexdigest()[:16]
    return identity
