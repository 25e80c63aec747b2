"""One seam for every restorer: a model's kind picks the runtime that builds it.

A registry name brings its :class:`~vidgpen.weights.registry.ModelSpec`; a file gets one
from its suffix (``.onnx``: ``gpen-onnx``, anything else: ``gpen-torch``), because an
exported graph and a checkpoint need different runtimes. Adding a kind is one builder
here plus its runtime module (see the README, *How to add a restorer*). Runtimes are
imported only when their kind is built, so onnxruntime loads only for ONNX models.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vidgpen.errors import ConfigError, WeightsError
from vidgpen.models.runtime.restorer import Restorer
from vidgpen.weights import registry
from vidgpen.weights.spec import ModelSpec


@dataclass(frozen=True)
class RunOptions:
    """Where and how a restorer runs (the pipeline's device, dtype, batch and compile settings)."""

    device: str | None = None
    dtype: str | None = None
    batch_size: int = 8
    compile: bool = False


def spec_of(source: str | os.PathLike[str]) -> ModelSpec:
    """The registry's spec for a name; for a file, one read from its suffix (sides from the file itself)."""
    path = Path(source).expanduser()
    if str(source) in registry.REGISTRY and not path.is_file():  # an existing file always wins
        return registry.entry(str(source))
    kind = "gpen-onnx" if path.suffix.lower() == ".onnx" else "gpen-torch"
    return ModelSpec(name=str(source), kind=kind, filename=path.name, sources=(), description="a local file")


def load_restorer(
    source: str | os.PathLike[str] | ModelSpec,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int = 8,
    compile: bool = False,
) -> Restorer:
    """The restorer for ``--weights``/``--model``: the builder of the model's kind on its file."""
    spec = source if isinstance(source, ModelSpec) else spec_of(source)
    if spec.kind not in BUILDERS:
        raise ConfigError(f"{spec.name}: a {spec.kind} file, not a face restorer")
    if compile and spec.kind != "gpen-torch":  # before any download: the settings cannot work
        raise ConfigError(f"compile: {spec.name} is a {spec.kind} model; torch.compile applies to GPEN checkpoints")
    return BUILDERS[spec.kind](spec, registry.resolve_source(spec.name), RunOptions(device, dtype, batch_size, compile))


def _gpen_torch(spec: ModelSpec, path: Path, options: RunOptions) -> Restorer:
    from vidgpen.models.runtime.torch_restorer import FaceRestorer

    return FaceRestorer.load(path, device=options.device, dtype=options.dtype, batch_size=options.batch_size,
                             compile=options.compile)


def _gpen_onnx(spec: ModelSpec, path: Path, options: RunOptions) -> Restorer:
    from vidgpen.models.runtime.onnx_restorer import OnnxRestorer  # onnxruntime only when asked for

    return OnnxRestorer.load(path, device=options.device, dtype=options.dtype, batch_size=options.batch_size,
                             input_name=spec.input_name, output_name=spec.output_name,
                             normalisation=spec.normalisation, size=spec.size)


def sides(spec: ModelSpec, path: Path | None) -> tuple[int, int]:
    """(input, output) face side of a model before it is loaded: read from a torch file when there is
    one (cheap: shapes only), else what the spec declares."""
    if path is not None and spec.kind == "gpen-torch":
        from vidgpen.models.network.loader import checkpoint_sides

        return checkpoint_sides(path)
    if spec.size is None:
        raise WeightsError(f"{spec.name}: its face side is only known once loaded")
    return spec.size, spec.out_size or spec.size


BUILDERS: dict[str, Callable[[ModelSpec, Path, RunOptions], Restorer]] = {
    "gpen-torch": _gpen_torch,
    "gpen-onnx": _gpen_onnx,
}


def describe_layout(spec: ModelSpec, path: Path) -> str:
    """What the file holds, checked against its kind: every key and shape of a checkpoint, the face
    tensors of a graph. Raises :class:`WeightsError` when it is not what the kind needs."""
    if spec.kind == "gpen-torch":
        from vidgpen.models.network.loader import inspect_checkpoint

        return f"GPEN checkpoint, {inspect_checkpoint(path)}"
    if spec.kind == "gpen-onnx":
        from vidgpen.models.runtime.onnx_restorer import OnnxRestorer

        io = OnnxRestorer(path, ["CPUExecutionProvider"], input_name=spec.input_name, output_name=spec.output_name,
                          size=spec.size).io
        batch = f"batch {io.fixed_batch}" if io.fixed_batch else "dynamic batch"
        return f"GPEN ONNX graph, {io.input} → {io.output}, {io.size} → {io.out_size} px, {batch}"
    return f"a {spec.kind} file"
