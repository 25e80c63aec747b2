"""What the UI's buttons do: each calls the CLI's or the API's entry point and formats its answer.

Errors a user can fix (VidgpenError) are shown as the CLI prints them (``error: …``), on
the screen where they happened; nothing here re-implements a check.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidgpen.errors import VidgpenError
from vidgpen.ui.jobs import QUEUED, RUNNING, Job, JobQueue
from vidgpen.ui.settings import (
    EDITED,
    base_config,
    before_after_path,
    command_line,
    config_from_argv,
    config_toml,
    settings_argv,
)

if TYPE_CHECKING:
    from vidgpen.batch import FileResult

TRACK_COLUMNS = ("track", "frames", "first", "last", "detected", "size px (median)")
PERSON_COLUMNS = ("person", "tracks", "frames", "first seen", "last seen")
BATCH_COLUMNS = ("input", "status", "error", "attempts", "seconds", "output")
_ZOOM_SIDE = 384  # px: the zoomed face's side on screen


def argv_of(preset: str | None, values: dict[str, Any]) -> list[str]:
    return settings_argv(preset, {key: values[key] for key in EDITED})


def with_suffix(output: str, suffix: str) -> str:
    return str(Path(output).with_suffix(suffix)) if output else output


def _error(exc: VidgpenError) -> str:
    return f"**error:** {html.escape(str(exc))}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def face_zoom(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Both images cut to the square around what the restore changed (the faces), enlarged
    by whole pixels so the grain and the restored detail can be compared."""
    import cv2

    changed = np.argwhere(np.any(before != after, axis=2))
    if not len(changed):
        return None
    (y0, x0), (y1, x1) = changed.min(axis=0), changed.max(axis=0) + 1
    side = int(max(y1 - y0, x1 - x0) * 1.1)
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    top = int(np.clip(cy - side // 2, 0, max(0, before.shape[0] - side)))
    left = int(np.clip(cx - side // 2, 0, max(0, before.shape[1] - side)))
    scale = max(1, _ZOOM_SIDE // max(side, 1))
    return tuple(cv2.resize(image[top:top + side, left:left + side], None, fx=scale, fy=scale,  # type: ignore[return-value]
                            interpolation=cv2.INTER_NEAREST) for image in (before, after))


def _files_table(results: list[FileResult]) -> str:
    """A batch's files, one row each, errors in full (they name the file and the problem)."""
    head = "".join(f"<th>{column}</th>" for column in BATCH_COLUMNS)
    rows = []
    for r in results:
        cells = (r.input, r.status, r.error or "", str(r.attempts), f"{r.seconds:.1f}", r.output)
        rows.append(f"<tr data-input='{html.escape(r.input, quote=True)}' data-status='{r.status}'>"
                    + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
    return f"<table id='batch-table'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _device(argv: list[str]) -> str:
    """The device a job queues on: the settings' device, resolved ("auto" → cuda or cpu)."""
    from vidgpen.models.runtime.device import resolve_device

    return str(resolve_device(config_from_argv(argv).device))


class Screens:
    """The handlers of one app; ``outputs`` is the folder the UI may serve files from."""

    def __init__(self, queue: JobQueue, outputs: Path) -> None:
        self.queue, self.outputs = queue, outputs
        self._batch_ended: set[int] = set()  # batch jobs whose last state the Batch screen has shown

    def describe(self, input: str, output: str, segments: float, overwrite: bool, argv: list[str]) -> tuple[str, str, str]:
        """(error, command line, TOML) for the Settings screen."""
        try:
            config = config_from_argv(argv)
        except VidgpenError as exc:
            return _error(exc), "", ""
        preview = before_after_path(output) if output else None
        return "", command_line(input, output, argv, segments, overwrite, preview), config_toml(config)

    def preset_values(self, preset: str | None, keys: list[str]) -> list[Any]:
        config = base_config(preset)
        return [getattr(config, key) if getattr(config, key) is not None else "" for key in keys]

    def open(self, path: str, upload: str | None, suffix: str, argv: list[str]) -> tuple[Any, ...]:
        """Probe and inspect the video (streams, shots, tracks, persons) as ``vidgpen inspect`` does."""
        import gradio as gr

        from vidgpen.cli.inspect import inspect_video
        from vidgpen.faces.inspect import contact_sheet

        input = (upload or path or "").strip()
        if not input:
            return "", "Give a path or upload a video.", None, None, None, None, gr.update(), gr.update(), []
        try:
            began = time.perf_counter()
            plan, summary, analyzer = inspect_video(config_from_argv(argv), input, suffix)
        except VidgpenError as exc:
            return "", _error(exc), None, None, None, None, gr.update(), gr.update(), []
        counts = np.array(summary.per_frame or [0])
        tracks = [[tid, st.frames, st.first, st.last, f"{st.detected / st.frames:.0%}", f"{np.median(st.sizes):.0f}"]
                  for tid, st in sorted(summary.tracks.items())]
        persons = [[pid, ",".join(map(str, sorted(st.tracks))), st.frames, f"{st.first:.2f}s", f"{st.last:.2f}s"]
                   for pid, st in sorted(summary.persons.items(), key=lambda kv: int(kv[0][1:]))]
        portraits = analyzer.identity.portraits if analyzer.identity is not None else {}
        sheet = contact_sheet(portraits) if portraits else None
        status = (f"**{html.escape(input)}**: {len(summary.per_frame)} frames, {summary.shots} shot(s), "
                  f"{len(summary.tracks)} track(s), {len(summary.persons)} person(s), faces per frame mean "
                  f"{counts.mean():.2f} (max {counts.max()}); inspected in {time.perf_counter() - began:.1f} s. "
                  "Restore only some people: click them on the sheet, or Settings → faces, e.g. `p1,p3`.")
        last = max(len(summary.per_frame) - 1, 0)
        output = str(self.outputs / f"{Path(input).stem}.restored{suffix}")
        streams = plan.media.rows if plan.media is not None else []
        return (input, status, streams, tracks, persons, sheet, gr.update(maximum=last, value=min(last, last // 2)),
                output, sorted(portraits))

    def pick_person(self, faces: str, ids: list[str], sheet: np.ndarray | None, x: float, y: float) -> str:
        """Settings → faces after a click at (``x``, ``y``) on the people sheet: the person there
        is added to the chosen ones, or taken out if chosen; none left means all faces."""
        from vidgpen.faces.inspect import person_at

        picked = person_at(ids, sheet.shape[1], x, y) if sheet is not None else None
        if picked is None:
            return faces
        chosen = [word.strip() for word in (faces or "").split(",") if word.strip() in ids]
        chosen = [p for p in chosen if p != picked] if picked in chosen else [*chosen, picked]
        return ",".join(sorted(chosen, key=lambda pid: int(pid[1:]))) or "all"

    def frame(self, input: str, index: float, argv: list[str]) -> np.ndarray | None:
        from vidgpen.ui.preview import read_frame

        if not input:
            return None
        try:
            return read_frame(input, int(index), config_from_argv(argv))
        except (VidgpenError, ValueError):
            return None

    def preview(self, input: str, index: float, suffix: str, argv: list[str]) -> tuple[Any, Any, str]:
        """before | after of frame ``index``, its face zoomed, the time it took and the whole video's ETA."""
        from vidgpen.ui.preview import preview_frame

        if not input:
            return None, None, "Open a video first."
        try:
            config, asked = config_from_argv(argv), time.perf_counter()
            with self.queue.holding(_device(argv)):  # never GPEN beside a run on the same device
                waited = time.perf_counter() - asked
                shot = preview_frame(config, input, int(index), suffix)
        except VidgpenError as exc:
            return None, None, _error(exc)
        zoom = face_zoom(shot.before, shot.after)
        text = (f"frame {int(index)}: {shot.faces} face(s) restored in {shot.seconds:.1f} s "
                f"(with the {2:g} s before it, weights loading included); the whole video at this rate: about "
                f"{_duration(shot.eta_seconds)}")
        if waited >= 0.5:
            text += f"; waited {_duration(waited)} for the running job"
        return (shot.before, shot.after), zoom, text

    def start(self, input: str, output: str, segments: float, overwrite: bool, argv: list[str]) -> str:
        if not input or not output:
            return "Open a video and name the output first."
        try:
            device = _device(argv)
        except VidgpenError as exc:
            return _error(exc)
        job = self.queue.submit(Job(0, "restore", input, output, argv, device, float(segments or 60), overwrite,
                                    preview=before_after_path(output)))
        return self._status(job)

    def cancel(self) -> str:
        job = self.queue.latest("restore")
        if job is None:
            return ""
        self.queue.cancel(job.id)
        return self._status(job)

    def run_state(self, shown: tuple[int, str] | None) -> tuple[Any, ...]:
        """The Run screen from the queue: what a reload or a restarted UI shows again."""
        import gradio as gr

        job = self.queue.latest("restore")
        if job is None:  # leave the screen as it is: a refused start's message stays
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), shown
        stages = [[stage, f"{seconds:.2f}"] for stage, seconds in sorted(job.stage_seconds.items(), key=lambda kv: -kv[1])]
        key = [job.id, job.status]
        if shown == key:
            return self._status(job), stages, gr.skip(), gr.skip(), gr.skip(), shown
        result, both = (self._servable(job, path) for path in (job.output, job.preview))
        return self._status(job), stages, result, result, both, key

    def _servable(self, job: Job, path: str | None) -> str | None:
        """``path`` when ``job`` is done and the file lies in the folder the UI serves."""
        if job.status != "done" or not path or not Path(path).exists():
            return None
        return path if Path(path).resolve().is_relative_to(self.outputs) else None

    def _status(self, job: Job) -> str:
        total = job.total or 0
        parts = [f"job {job.id}", job.status, f"{job.frames}/{total or '?'} frames", f"{job.fps:.2f} fps",
                 f"{job.faces} faces"]
        if job.status == RUNNING:
            parts.append(f"ETA {_duration(job.eta_seconds)}")
        if job.status == QUEUED:
            ahead = [j for j in self.queue.jobs.values() if j.device == job.device and j.status in (QUEUED, RUNNING)]
            parts.append(f"{len(ahead) - 1} ahead on {job.device}")
        text = " · ".join(parts) + f" → {html.escape(job.output)}"
        error = f"<p class='error'>error: {html.escape(job.error)}</p>" if job.error else ""
        bar = f"<progress max='{total}' value='{job.frames}'></progress>" if total else "<progress></progress>"
        line = html.escape(command_line(job.input, job.output, job.argv, job.segment_seconds, job.overwrite,
                                        job.preview))
        return (f"<div id='run-job' data-job='{job.id}' data-status='{job.status}' data-frames='{job.frames}'>"
                f"{bar}<p>{text}</p>{error}<p>the same on the command line: <code>{line}</code></p></div>")

    def batch_plan(self, library: str, output: str, argv: list[str]) -> tuple[Any, str]:
        """``vidgpen batch --dry-run``: what would be done, skipped, and what failed before."""
        from vidgpen.batch import BatchOptions, run_batch

        try:
            summary = run_batch(library, output, config_from_argv(argv), BatchOptions(dry_run=True))
        except VidgpenError as exc:
            return None, _error(exc)
        table = _files_table(summary.results)
        return table, f"{len(summary.results)} video(s): {summary.skipped} already done, {summary.failed} failed before"

    def batch_start(self, library: str, output: str, segments: float, argv: list[str], retry: bool) -> str:
        from vidgpen.batch import MANIFEST_NAME, Manifest

        if not library or not output:
            return "Name the library and the output folder first."
        include: list[str] = []
        if retry:
            if not (Path(output) / MANIFEST_NAME).exists():
                return "Nothing to retry: no batch has run into that folder."
            include = [r.input for r in Manifest(Path(output)).records.values() if r.status == "failed"]
            if not include:
                return "Nothing to retry: no file failed."
        try:
            device = _device(argv)
        except VidgpenError as exc:
            return _error(exc)
        job = self.queue.submit(Job(0, "batch", library, output, argv, device, float(segments or 60),
                                    include=include))
        return f"batch job {job.id} queued ({len(include) or 'every'} file(s))"

    def batch_state(self, library: str, output: str) -> tuple[Any, str]:
        """The files' status from the manifest, and the batch job's line, while a batch job runs and
        once when it ends. Otherwise nothing changes: every tick blanked a plan (dry run) the
        moment it was shown (the browser test caught it on a loaded machine)."""
        import gradio as gr

        from vidgpen.batch import MANIFEST_NAME, Manifest

        job = self.queue.latest("batch")
        if job is None or job.id in self._batch_ended:
            return gr.skip(), gr.skip()
        if job.status not in (QUEUED, RUNNING):
            self._batch_ended.add(job.id)
        folder = Path(output) if output else Path(job.output)
        rows = ""
        if (folder / MANIFEST_NAME).exists():
            try:
                rows = _files_table(list(Manifest(folder).records.values()))
            except VidgpenError as exc:
                return None, _error(exc)
        done = sum(1 for status in job.files.values() if status == "done")
        line = f"batch job {job.id}: {job.status}, {done} done of {len(job.files)} finished so far"
        return rows, line + (f"; {html.escape(job.error)}" if job.error else "")
