"""``torch.compile`` for the GPEN forward (``--compile``): fused kernels, and CUDA graphs on GPUs.

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

import torch
from torch import Tensor
from torch._dynamo.exc import TorchDynamoException
from torch._inductor.exc import InductorError

from vidgpen.errors import first_line

log = logging.getLogger(__name__)


class CompiledForward:
    """``forward`` (N×3×S×S → N×3×S'×S') compiled once per padded batch size, eager on failure."""

    def __init__(self, forward: Callable[[Tensor], Tensor], device: torch.device, max_batch: int) -> None:
        self._eager = forward
        self._cuda = device.type == "cuda"
        self._compiled = torch.compile(forward, mode="reduce-overhead" if self._cuda else None, dynamic=False)
        self._max_batch = max_batch
        self.failure: str | None = None  # why compilation was given up, once it was

    def __call__(self, x: Tensor) -> Tensor:
        if self.failure is None:
            count = len(x)
            padded = padded_batch(count, self._max_batch)
            batch = torch.cat([x, x.new_zeros((padded - count, *x.shape[1:]))]) if padded > count else x
            try:
                if self._cuda:
                    torch.compiler.cudagraph_mark_step_begin()  # the previous chunk's output has been read
                return self._compiled(batch)[:count]
            except (TorchDynamoException, InductorError) as exc:
                self.failure = first_line(exc)
                log.warning("torch.compile failed, GPEN runs uncompiled: %s", self.failure)
        return self._eager(x)


def padded_batch(count: int, max_batch: int) -> int:
    """The smallest power of two ≥ ``count``, but never above ``max_batch`` (nor below ``count``)."""
    return max(count, min(1 << (count - 1).bit_length(), max_batch))
