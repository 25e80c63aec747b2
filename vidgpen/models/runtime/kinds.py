"""Restorer kinds as registrations: what a file of each kind looks like, what builds its
restorer and what that restorer can do.

A kind's capabilities are data, not name checks: ``compiles`` (takes ``--compile``) and
``exports_onnx`` (``vidgpen models export-onnx`` takes it); fusing a track's frames for
``--deflicker`` is the restorer's own :class:`~.restorer.TrackedRestorer` protocol. The two
built-in kinds, GPEN checkpoints and ONNX exports, are registered below; a plug-in module
adds its own with :func:`register_restorer_kind` (README, *How to add a restorer*), and
nothing else in vidgpen changes. Builders import their runtime only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vidgpen.models.runtime.restorer import Restorer
from vidgpen.weights.spec import ModelSpec


@dataclass(frozen=True)
class RunOptions:
    """Where and how a restorer runs (the plan's device and dtype, the batch and compile settings)."""

    device: str | None = None
    dtype: str | None = None
    batch_size: int = 8
    compile: bool = False


@dataclass(frozen=True)
class RestorerKind:
    """One kind of restorer file. ``recognises(path)``: whether the file's bytes are of this kind
    (cheap: a header, or tensor names read memory-mapped); ``build(spec, path, options)``: the
    restorer; ``sides(spec, path)``: its (in, out) face sides before loading (None: the spec's);
    ``describe(spec, path)``: one line on the file, checked (``vidgpen models verify``)."""

    name: str
    recognises: Callable[[Path], bool]
    build: Callable[[ModelSpec, Path, RunOptions], Restorer]
    sides: Callable[[ModelSpec, Path], tuple[int, int]] | None = None
    describe: Callable[[ModelSpec, Path], str] | None = None
    compiles: bool = False
    exports_onnx: bool = False


KINDS: dict[str, RestorerKind] = {}  # in registration order: a file gets the first kind that recognises it


def register_restorer_kind(kind: RestorerKind) -> None:
    """Add (or replace) a restorer kind."""
    KINDS[kind.name] = kind


def _is_gpen_checkpoint(path: Path) -> bool:
    """A torch file whose tensor names are GPEN's, or one too damaged to list them (the loader then
    says what is wrong with it)."""
    from vidgpen.models.network.loader import looks_like_gpen

    return looks_like_gpen(path)


def _build_gpen_torch(spec: ModelSpec, path: Path, options: RunOptions) -> Restorer:
    from vidgpen.models.runtime.torch_restorer import FaceRestorer

    return FaceRestorer.load(path, device=options.device, dtype=options.dtype, batch_size=options.batch_size,
                             compile=options.compile)


def _gpen_torch_sides(spec: ModelSpec, path: Path) -> tuple[int, int]:
    from vidgpen.models.network.loader import checkpoint_sides

    return checkpoint_sides(path)


def _describe_gpen_torch(spec: ModelSpec, path: Path) -> str:
    from vidgpen.models.network.loader import inspect_checkpoint

    return f"GPEN checkpoint, {inspect_checkpoint(path)}"


_ONNX_HEAD = 0x08  # a serialised ModelProto opens with field 1 (ir_version) as a varint


def _is_onnx_graph(path: Path) -> bool:
    with open(path, "rb") as file:
        head = file.read(2)
    return len(head) == 2 and head[0] == _ONNX_HEAD and 1 <= head[1] <= 64


def _build_gpen_onnx(spec: ModelSpec, path: Path, options: RunOptions) -> Restorer:
    from vidgpen.models.runtime.onnx_restorer import OnnxRestorer  # onnxruntime only when asked for

    return OnnxRestorer.load(path, device=options.device, dtype=options.dtype, batch_size=options.batch_size,
                             input_name=spec.input_name, output_name=spec.output_name,
                             normalisation=spec.normalisation, in_size=spec.in_size)


def _describe_gpen_onnx(spec: ModelSpec, path: Path) -> str:
    from vidgpen.models.runtime.onnx_restorer import OnnxRestorer

    io = OnnxRestorer(path, ["CPUExecutionProvider"], input_name=spec.input_name, output_name=spec.output_name,
                      in_size=spec.in_size).io
    batch = f"batch {io.fixed_batch}" if io.fixed_batch else "dynamic batch"
    return f"GPEN ONNX graph, {io.input} → {io.output}, {io.in_size} → {io.out_size} px, {batch}"


register_restorer_kind(RestorerKind("gpen-torch", _is_gpen_checkpoint, _build_gpen_torch, _gpen_torch_sides,
                                    _describe_gpen_torch, compiles=True, exports_onnx=True))
register_restorer_kind(RestorerKind("gpen-onnx", _is_onnx_graph, _build_gpen_onnx, describe=_describe_gpen_onnx))
