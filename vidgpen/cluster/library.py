"""A library's files as Ray units: a file longer than one segment is cut into ``--resume``
segments, a shorter one stays whole (one unit, its own plan), so one film among many clips
keeps every worker busy instead of finishing alone on one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vidgpen.cluster.plan import for_workers, persons_needed
from vidgpen.cluster.schedule import UnitResult
from vidgpen.cluster.worker import Unit
from vidgpen.config import RestoreConfig
from vidgpen.pipeline import RunReport
from vidgpen.pipeline.run import check_run
from vidgpen.pipeline.segments import (
    DEFAULT_SEGMENT_S,
    SegmentedRun,
    SegmentRecord,
    combined_report,
    plan_segmented,
)
from vidgpen.plan.run_plan import RunPlan, make_plan


@dataclass
class LibraryFile:
    """One file while its units run: planned (probed, checked) on the driver before Ray starts."""

    source: str
    target: str
    plan: RunPlan  # the whole file's; a split file's segments take it over their spans
    run: SegmentedRun | None  # None: restored whole
    units: list[Unit] = field(default_factory=list)
    results: list[UnitResult] = field(default_factory=list)

    @classmethod
    def planned(cls, config: RestoreConfig, source: str, target: str, segment_seconds: float | None) -> LibraryFile:
        """Probe and plan ``source``; split it when it is longer than one segment (``segment_seconds``,
        default 60). Bad input raises."""
        Path(target).parent.mkdir(parents=True, exist_ok=True)  # the mirrored tree: workers write into it
        if config.faces in ("all", "largest") and not persons_needed(config):  # else whole: ids are per segment
            run = plan_segmented(config, source, target, segment_seconds or DEFAULT_SEGMENT_S, overwrite=True)
            if len(run.segments) > 1:
                return cls(source, target, run.plan, run)
            run.discard_if_unused()
            return cls(source, target, run.plan, None)
        info = check_run(source, target, None, True, config)
        return cls(source, target, make_plan(config, info, Path(target).suffix), None)

    def make_units(self, gpus: bool) -> list[Unit]:
        """The work left, with the plan fitted to the workers."""
        shipped = for_workers(self.plan, gpus)
        if self.run is None:
            self.units = [Unit(self.target, self.source, self.target, self.plan.info.duration or 0.0, plan=shipped)]
        else:
            run = replace(self.run, plan=shipped)
            self.units = [Unit(self.target, self.source, str(run.part(s)), run.length(s), segment=s, run=run)
                          for s in run.todo()]
        return self.units

    @property
    def complete(self) -> bool:
        return len(self.results) == len(self.units)

    def finish(self) -> dict[str, Any]:
        """Join a split file's parts (on the driver); what its manifest record says of the run."""
        reports = [r.outcome.report for r in self.results]
        segments: list[dict] = []
        if self.run is not None:
            self.run.join()
            records = [SegmentRecord.of(r.unit.segment, r.outcome.report, attempts=r.attempts, node=r.outcome.node,
                                        worker=r.outcome.worker, failures=r.failures) for r in self.results]
            segments = combined_report(self.run, reports, records, 0.0).segments
        combined = RunReport.combine(reports, self.source, self.target, 1.0, {}, self.plan.summary())
        return {"frames": combined.frames, "faces": combined.faces, "stage_seconds": combined.stage_seconds,
                "seconds": round(sum(r.wall_seconds for r in reports), 3), "segments": segments,
                "attempts": max((r.attempts for r in self.results), default=0),
                "worker": ",".join(sorted({r.outcome.worker for r in self.results}))}
