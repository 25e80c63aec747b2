"""``torch.compile`` for the GPEN forward (``--compile``): fused kernels, and CUDA graphs on GPUs.

With ``--deflicker`` (the default) the encoder and the generator are compiled as two graphs,
the fusion running eagerly between them; a super-resolution checkpoint's generator, which
draws noise from per-track generators, stays eager.

On CUDA, Inductor fuses FastGPEN's elementwise tails (demodulation, bias, noise
injection, leaky ReLU and the feature concat) into Triton kernels, and
``mode="reduce-overhead"`` replays each forward as one CUDA graph instead of hundreds of
kernel launches: the techniques of the fastest published GPEN. On the CPU the gain is
small (bench/gpen.py --paths fast fast-compiled: about 15% at 256, none at 512, where
oneDNN's convolutions dominate either way) and the first batch of each shape pays 20–60 s
of compilation, so it is opt-in everywhere.

Shapes are kept static: a chunk is padded with blank faces up to a power of two (at most
the batch size), so a run compiles at most log2(batch)+1 graphs instead of one per count.
A compiler that fails (no C++ compiler, no Triton) costs one warning; GPEN then runs
eagerly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch._dynamo.exc import TorchDynamoException
from torch._inductor.exc import InductorError
from torch.utils._pytree import tree_map_only

from vidgpen.errors import first_line

log = logging.getLogger(__name__)


class CompiledForward:
    """``forward`` compiled once per padded batch size, eager on failure.

    Every tensor among its arguments (nested in lists or tuples too) has the faces along its
    first dimension: the whole forward (N×3×S×S → N×3×S'×S'), or FaceRestorer's encode and
    decode halves for ``--deflicker``. ``keep_outputs``: the outputs outlive the next call
    (the encoder's, fused then decoded), so on CUDA they are copied out of the graph's memory.
    """

    def __init__(self, forward: Callable[..., Any], device: torch.device, max_batch: int,
                 keep_outputs: bool = False) -> None:
        self._eager = forward
        self._cuda = device.type == "cuda"
        self._compiled = torch.compile(forward, mode="reduce-overhead" if self._cuda else None, dynamic=False)
        self._max_batch = max_batch
        self._copy = keep_outputs and self._cuda
        self.failure: str | None = None  # why compilation was given up, once it was

    def __call__(self, *args: Any) -> Any:
        if self.failure is None:
            count = len(args[0])
            padded = padded_batch(count, self._max_batch)
            inputs = tree_map_only(Tensor, lambda t: _padded(t, padded), args)  # new lists: decode empties its own
            try:
                if self._cuda:
                    torch.compiler.cudagraph_mark_step_begin()  # the previous call's outputs have been read
                out = self._compiled(*inputs)
                return tree_map_only(Tensor, lambda t: t[:count].clone() if self._copy else t[:count], out)
            except (TorchDynamoException, InductorError) as exc:
                self.failure = first_line(exc)
                log.warning("torch.compile failed, GPEN runs uncompiled: %s", self.failure)
        return self._eager(*args)


def _padded(tensor: Tensor, count: int) -> Tensor:
    """``tensor`` with blank faces appended up to ``count``."""
    missing = count - len(tensor)
    return torch.cat([tensor, tensor.new_zeros((missing, *tensor.shape[1:]))]) if missing > 0 else tensor


def padded_batch(count: int, max_batch: int) -> int:
    """The smallest power of two ≥ ``count``, but never above ``max_batch`` (nor below ``count``)."""
    return max(count, min(1 << (count - 1).bit_length(), max_batch))
