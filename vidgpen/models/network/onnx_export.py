"""Export GPEN to ONNX with a dynamic batch axis, for ONNX Runtime, TensorRT and friends.

The graph is :class:`~vidgpen.models.network.gpen_fast.FastGPEN`'s batched formulation: one
shared-weight conv per layer with the style as an input scale and the demodulation as an
output scale. The reference forward cannot have a dynamic batch in ONNX (its grouped conv
has ``group = batch``, a static attribute), and FastGPEN as it runs in torch does not trace
to a useful graph either: it picks per-face kernels by batch size (fixing the batch) and
writes each StyledConv's halves into a preallocated buffer (ScatterND copies in ONNX).
:class:`ExportGraph` swaps in the plain form of that one layer; the rest is FastGPEN's.

Input ``faces`` float32 N×3×S×S in [-1, 1]; output ``restored`` N×3×S×S (unclamped),
as the torch module. The super-resolution layout draws random noise, which a graph cannot
reproduce faithfully, so it is refused. Needs the ``onnx`` extra and ``onnxscript``
(torch's exporter).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from vidgpen.errors import ConfigError, OutputError, WeightsError
from vidgpen.models.network.gpen import GPEN
from vidgpen.models.network.gpen_fast import _GAIN, FastGPEN, _conv, _kernel
from vidgpen.models.network.layers import LEAKY_SLOPE
from vidgpen.models.network.loader import load_gpen, resolve_source

DEFAULT_OPSET = 18
MIN_OPSET = 18  # torch's exporter has no lower implementations
INPUT, OUTPUT = "faces", "restored"


class ExportGraph(FastGPEN):
    """FastGPEN's function in the one form that traces to a batch-agnostic ONNX graph."""

    def _styled_conv(
        self, index: int, x: Tensor, w: Tensor, gain: float, feature: Tensor | None, generator: object
    ) -> Tensor:
        assert feature is not None, "export_gpen refuses the super-resolution layout"
        layer = self._styled[index]
        conv = layer.conv
        style = conv.modulation(w) * conv.scale
        demod = torch.rsqrt(style.square() @ getattr(self, f"_wsq{index}").t() + 1e-8)
        y = _conv(conv, x * (style * gain)[:, :, None, None], _kernel(conv, None), None) * demod[:, :, None, None]
        both = torch.cat([y, feature * (layer.noise.weight * _GAIN)], dim=1)
        return F.leaky_relu(both + layer.activate.bias.view(1, -1, 1, 1), LEAKY_SLOPE)


def export_onnx(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    batch: int | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export a GPEN checkpoint (path or registry name) to ``output`` (a ``.onnx`` file).

    ``batch`` None gives a dynamic batch axis; an int fixes it. Returns the output path.
    """
    _checked_output(output, batch, opset)  # before the seconds a large model takes to load
    path = resolve_source(source)
    model = load_gpen(path)
    if model.n_noise_levels:
        raise WeightsError(
            f"{path}: super-resolution layout (GPEN-{model.out_size} from {model.in_size}) draws random noise;"
            " ONNX export supports only in_size == size"
        )
    return export_gpen(model, output, batch=batch, opset=opset)


def export_gpen(
    model: GPEN, output: str | os.PathLike[str], *, batch: int | None = None, opset: int = DEFAULT_OPSET
) -> Path:
    """Export a loaded GPEN (moved to CPU float32 in place) to a temp file, check it, rename it into place."""
    if model.n_noise_levels:
        raise ValueError(f"GPEN-{model.out_size} from {model.in_size} draws random noise and cannot be exported")
    output = _checked_output(output, batch, opset)
    import onnx  # the optional extra; imported late so the rest of vidgpen works without it

    graph = ExportGraph(model.float().cpu().eval()).eval()
    example = torch.zeros(batch or 2, 3, model.in_size, model.in_size)  # 2: keep the batch symbolic
    dynamic = None if batch else ({0: torch.export.Dim("batch", min=1, max=4096)},)
    part = output.with_name(f".{output.name}.{os.getpid()}.part")  # same folder: the rename is atomic
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                graph,
                (example,),
                dynamo=True,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_shapes=dynamic,
                opset_version=opset,
                verbose=False,
            )
            program.save(part, external_data=False)
        onnx.checker.check_model(str(part), full_check=True)
        os.replace(part, output)
    finally:
        part.unlink(missing_ok=True)
    return output


def _checked_output(output: str | os.PathLike[str], batch: int | None, opset: int) -> Path:
    output = Path(output).expanduser()
    if output.suffix.lower() != ".onnx":
        raise OutputError(f"{output}: the output must end in .onnx (that is how --weights recognises an export)")
    if not output.parent.is_dir():
        raise OutputError(f"{output}: folder {output.parent} does not exist")
    if not os.access(output.parent, os.W_OK):
        raise OutputError(f"{output}: folder {output.parent} is not writable")
    if opset < MIN_OPSET:
        raise ConfigError(f"opset {opset}: torch's ONNX exporter writes opset {MIN_OPSET} or later")
    if batch is not None and batch < 1:
        raise ConfigError(f"batch {batch}: must be ≥ 1 (or None for a dynamic batch)")
    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"{output}: ONNX export needs {' and '.join(missing)} (pip install onnx onnxscript)")
    return output


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch's exporter logs a warning per missing torchvision op and some deprecations; none concern GPEN."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)
