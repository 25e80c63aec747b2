"""Restore a whole media library: ``discover`` finds the videos, ``manifest`` records the
work, ``jobs`` runs one file with retries, ``local`` and ``ray_engine`` run many, ``driver``
ties them together."""

from vidgpen.batch.discover import find_videos, output_names
from vidgpen.batch.driver import BatchSummary, plan, run_batch
from vidgpen.batch.jobs import BatchOptions, Job, run_job
from vidgpen.batch.manifest import MANIFEST_NAME, FileResult, Manifest, file_sha256, settings_identity

__all__ = ["MANIFEST_NAME", "BatchOptions", "BatchSummary", "FileResult", "Job", "Manifest", "file_sha256",
           "find_videos", "output_names", "plan", "run_batch", "run_job", "settings_identity"]
