"""What a run did: written by ``--report`` and returned by the API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vidgpen.stats import peak_rss_mb


@dataclass
class RunReport:
    input: str
    output: str
    frames: int
    faces: int
    tracks: int
    wall_seconds: float
    fps: float
    stage_seconds: dict[str, float]
    skipped_packets: int
    peak_rss_mb: float  # of the whole process, so of everything it ran before too
    models: dict[str, str]
    settings: dict[str, Any]
    plan: dict[str, Any]  # what the run worked out (RunPlan.summary)
    persons: dict[str, Any] | None = None  # where the run linked tracks into persons: count, threshold, restored
    deflicker_state_mb: float = 0.0  # the most the tracks' fusion states held at once (--deflicker-memory)
    segments: list[dict[str, Any]] = field(default_factory=list)  # segmented runs: one SegmentRecord each

    @classmethod
    def of(cls, input: str, output: str, *, frames: int, faces: int, tracks: int, wall: float,
           stage_seconds: dict[str, float], skipped_packets: int, models: dict[str, str],
           settings: dict[str, Any], plan: dict[str, Any], deflicker_state_mb: float = 0.0) -> RunReport:
        """The one place a report is made: rounds the wall time, derives fps, reads the peak RSS."""
        return cls(input=input, output=output, frames=frames, faces=faces, tracks=tracks,
                   wall_seconds=round(wall, 3), fps=round(frames / wall, 3) if wall > 0 else 0.0,
                   stage_seconds=stage_seconds, skipped_packets=skipped_packets,
                   peak_rss_mb=round(peak_rss_mb(), 1), models=models, settings=settings, plan=plan,
                   deflicker_state_mb=round(deflicker_state_mb, 1))

    @classmethod
    def combine(cls, reports: list[RunReport], input: str, output: str, wall: float,
                settings: dict[str, Any], plan: dict[str, Any]) -> RunReport:
        """One report for a segmented run: the segments it restored (finished ones cost nothing)."""
        stages: dict[str, float] = {}
        for report in reports:
            for stage, seconds in report.stage_seconds.items():
                stages[stage] = round(stages.get(stage, 0.0) + seconds, 3)
        return cls.of(
            input, output,
            frames=sum(r.frames for r in reports),
            faces=sum(r.faces for r in reports),
            tracks=max((r.tracks for r in reports), default=0),  # ids restart per segment: the most in one
            wall=wall,
            stage_seconds=stages,
            skipped_packets=sum(r.skipped_packets for r in reports),
            models={k: v for r in reports for k, v in r.models.items()},
            settings=settings,
            plan=plan,
            deflicker_state_mb=max((r.deflicker_state_mb for r in reports), default=0.0),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
