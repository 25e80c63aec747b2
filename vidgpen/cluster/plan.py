"""The run plan as the workers get it: made once on the driver (:func:`~vidgpen.plan.run_plan.make_plan`),
then fitted to the cluster's hardware rather than the driver's.

A worker that resolved ``auto`` itself would pick float16 on a GPU node and bfloat16 or
float32 by its own CPU, so a mixed cluster would restore one film in several precisions;
and the driver's own ``auto`` would say CPU on a head without a GPU.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from vidgpen.config import RestoreConfig
from vidgpen.models.runtime.device import resolve_dtype
from vidgpen.plan.run_plan import RunPlan


def for_workers(plan: RunPlan, gpus: bool) -> RunPlan:
    """``plan`` with device ``auto`` resolved for the workers (CUDA when they hold GPUs, each
    sees its own as ``cuda``), the dtype resolved for that device on this machine, and a
    ``--weights`` file by its absolute path (a worker's current folder is not the driver's)."""
    if plan.config.device == "auto":
        device = "cuda" if gpus else "cpu"
        dtype = str(resolve_dtype(plan.config.dtype, torch.device(device))).removeprefix("torch.")
        plan = replace(plan, device=device, dtype=dtype, faces=replace(plan.faces, device=device))
    models = plan.models
    if models.fixed is not None and Path(models.fixed).expanduser().is_file():
        absolute = str(Path(models.fixed).expanduser().resolve())
        spec = replace(models.specs[models.fixed], name=absolute)
        plan = replace(plan, models=replace(models, specs={absolute: spec}, fixed=absolute))
    return plan


def persons_needed(config: RestoreConfig) -> bool:
    """Whether the run links tracks into persons (selection by person or photo, a persons
    file, ``--model auto``): the persons stage is handed from segment to segment
    (:func:`~vidgpen.pipeline.segments.run_resumable`), so such a video's segments cannot run
    side by side; it runs locally with ``--resume``, or whole on one Ray worker in a batch."""
    return bool(config.person_ids() or config.faces_of or config.skip_faces_of or config.persons
                or (config.model == "auto" and not config.weights))


def worker_env() -> dict[str, str]:
    """The workers' environment additions: the driver's torch thread count.

    Ray starts a 1-CPU worker with ``OMP_NUM_THREADS=1``, which torch, MKL and OpenBLAS all
    read; GPEN's sums come out differently with 1 and 2 threads (up to 7e-7 at 64 and 256
    px, measured), and --deflicker's running state carries such differences from frame to
    frame. With the driver's count the output equals a local run on a machine of the
    driver's kind bit for bit (tests/test_cluster.py).
    """
    return {"OMP_NUM_THREADS": str(torch.get_num_threads())}
