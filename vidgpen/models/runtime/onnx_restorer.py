"""Run a GPEN ONNX graph with ONNX Runtime: vidgpen's own exports and third parties'.

The ``gpen-onnx`` kind of :mod:`vidgpen.models.runtime.factory`. Same
:class:`~vidgpen.models.runtime.restorer.Restorer` contract and the same uint8 conversions as
:class:`~vidgpen.models.runtime.torch_restorer.FaceRestorer` (shared helpers), so the two differ
only by float rounding inside the network. The graph runs in float32 on every provider.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from vidgpen.errors import ConfigError, WeightsError, first_line
from vidgpen.models.runtime.restorer import faces_to_input, output_to_faces, restore_in_chunks, shared_per_file
from vidgpen.weights.spec import GPEN_IO, Normalisation

Provider = str | tuple[str, dict[str, str]]
_CUDA, _CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def providers_for(device: str | torch.device | None = None) -> list[Provider]:
    """ONNX Runtime providers for a vidgpen ``device`` setting (auto: CUDA when ORT has it)."""
    available = ort.get_available_providers()
    name = "auto" if device is None else str(device)
    if name == "auto":
        return [_CUDA, _CPU] if _CUDA in available else [_CPU]
    if name == "cpu":
        return [_CPU]
    if name.startswith("cuda") and _CUDA in available:
        index = name.partition(":")[2] or "0"
        return [(_CUDA, {"device_id": index}), _CPU]
    raise ConfigError(f"device: {name!r} is not available to ONNX Runtime (its providers: {', '.join(available)})")


@dataclass(frozen=True)
class GraphIO:
    """Which tensors of a graph are the faces in and out, their sides, and a fixed batch if any."""

    input: str
    output: str
    in_size: int
    out_size: int
    fixed_batch: int | None


class OnnxRestorer:
    """A GPEN graph in an ONNX Runtime session, run in chunks of ``batch_size`` faces.

    Any GPEN export runs: vidgpen's own (``faces`` → ``restored``, dynamic batch) or a
    third party's, named by ``input_name``/``output_name`` (default: the graph's first),
    with its own ``normalisation`` and a fixed or dynamic batch. ``in_size`` is needed only
    when the graph leaves the side dynamic.

    ``providers`` as ONNX Runtime takes them (names or ``(name, options)``); default:
    CUDA when available, else CPU. On the CPU provider alone faces run one at a time
    whatever ``batch_size``: there ORT gains nothing from batching (bench/gpen.py, 512:
    0.86 s/face at batch 1, 0.89 at 4) while its memory arena grows with the batch (peak
    RSS 1.7 → 5 GB). A graph with a fixed batch gets its last, short chunk padded.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: Sequence[Provider] | None = None,
        batch_size: int = 8,
        *,
        input_name: str | None = None,
        output_name: str | None = None,
        normalisation: Normalisation = GPEN_IO,
        in_size: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise WeightsError(f"{self.path}: no such ONNX file")
        chosen = providers_for() if providers is None else list(providers)
        self.session = _shared_session(self.path.resolve(), _hashable(chosen))
        self.io = graph_io(self.session, self.path, input_name, output_name, in_size)
        self.normalisation = normalisation
        cpu_only = self.session.get_providers() == [_CPU]
        self.batch_size = self.io.fixed_batch or (1 if cpu_only else batch_size)

    @classmethod
    def load(
        cls,
        source: str | os.PathLike[str],
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 8,
        **graph: Any,
    ) -> OnnxRestorer:
        """From the pipeline's settings: ``device`` picks the providers; the graph is float32."""
        if dtype not in (None, "auto", "float32", "fp32", torch.float32):
            raise ConfigError(f"dtype: {dtype!r} is not supported for {source} (ONNX exports run in float32)")
        return cls(source, providers_for(device), batch_size, **graph)

    @property
    def in_size(self) -> int:
        """Input face side."""
        return self.io.in_size

    @property
    def out_size(self) -> int:
        """Output face side."""
        return self.io.out_size

    @property
    def providers(self) -> list[str]:
        """The providers the session really uses (CUDA may have fallen back to CPU)."""
        return self.session.get_providers()

    def restore(self, faces: np.ndarray | torch.Tensor, precise: bool = False) -> np.ndarray:
        """uint8 RGB N×in×in×3 → uint8 RGB N×out×out×3 (``precise``: float32, unrounded)."""
        return restore_in_chunks(faces, self.in_size, self.out_size, self.batch_size,
                                 lambda chunk, start, exact: self._run(chunk, exact), precise)

    def _run(self, chunk: torch.Tensor, precise: bool = False) -> torch.Tensor:
        x = faces_to_input(chunk.cpu(), self.normalisation).contiguous().numpy()
        count, fixed = len(x), self.io.fixed_batch
        if fixed is not None and count < fixed:
            x = np.concatenate([x, np.zeros((fixed - count, *x.shape[1:]), x.dtype)])
        y = self.session.run([self.io.output], {self.io.input: x})[0][:count]
        return output_to_faces(torch.from_numpy(y), self.normalisation, precise)


def graph_io(
    session: ort.InferenceSession, path: Path, input_name: str | None, output_name: str | None, in_size: int | None
) -> GraphIO:
    """The face tensors of a GPEN graph: one float N×3×S×S input (S fixed, or given) and an N×3×S'×S' output."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    inp = _named(inputs, input_name, path, "input")
    out = _named(outputs, output_name, path, "output")
    shape, out_shape = list(inp.shape), list(out.shape)
    side = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else in_size
    if (
        len(inputs) != 1
        or inp.type != "tensor(float)"
        or len(shape) != 4
        or shape[1] != 3
        or side is None
        or shape[2] != shape[3]
        or len(out_shape) != 4
    ):
        raise WeightsError(
            f"{path}: not a GPEN export (input {inp.name} {inp.type} {shape}; "
            "expected one float N×3×S×S input, see `vidgpen models export-onnx`)"
        )
    out_side = out_shape[2] if isinstance(out_shape[2], int) else side
    return GraphIO(inp.name, out.name, side, out_side, shape[0] if isinstance(shape[0], int) else None)


def _named(tensors: Sequence[Any], name: str | None, path: Path, what: str) -> Any:
    if name is None:
        return tensors[0]
    for tensor in tensors:
        if tensor.name == name:
            return tensor
    raise WeightsError(f"{path}: no {what} named {name!r} (the graph has {', '.join(t.name for t in tensors)})")


def _hashable(providers: Sequence[Provider]) -> tuple:
    return tuple(p if isinstance(p, str) else (p[0], tuple(sorted(p[1].items()))) for p in providers)


@shared_per_file
def _shared_session(path: Path, providers: tuple) -> ort.InferenceSession:
    """One session per unchanged file and providers: ``run`` is thread-safe, and building one
    (graph optimisation of a few hundred MB of weights) takes seconds."""
    chosen = [p if isinstance(p, str) else (p[0], dict(p[1])) for p in providers]
    try:
        return ort.InferenceSession(str(path), providers=chosen)
    except Exception as exc:  # ORT's pybind errors (InvalidProtobuf, Fail, ...) share no useful base
        raise WeightsError(f"{path}: not a loadable ONNX model ({first_line(exc)})") from None
