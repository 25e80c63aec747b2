"""FastGPEN computes the reference GPEN's function (float32 rounding apart) from the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import GPEN_FIXTURES
from gpen_checkpoints import make_gpen

from vidgpen.models.network.gpen import GPEN
from vidgpen.models.network.gpen_fast import FastGPEN
from vidgpen.models.network.loader import load_gpen
from vidgpen.models.runtime.torch_restorer import FaceRestorer

TOL = 1e-3


def _both(model: GPEN, x: torch.Tensor, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    def gen() -> torch.Generator | None:
        return None if seed is None else torch.Generator().manual_seed(seed)

    with torch.inference_mode():
        return model(x, generator=gen()), FastGPEN.from_reference(model)(x, generator=gen())


@pytest.mark.parametrize("fixture", ["parity-64.pt", "parity-sr-32to64.pt"])
def test_equals_original_code_on_parity_fixtures(fixture, tmp_path):
    ref = torch.load(GPEN_FIXTURES / fixture, weights_only=True)
    path = tmp_path / "model.pth"
    torch.save(ref["state_dict"], path)
    model = load_gpen(path)  # strict loading: the fast path needs no other weights
    expected, fast = _both(model, ref["input"])
    assert fast.shape == ref["output"].shape
    assert (fast - expected).abs().max().item() <= TOL
    assert (fast - ref["output"]).abs().max().item() <= TOL


@pytest.mark.parametrize(
    ("size", "in_size", "narrow", "batch"),
    [
        (512, None, 0.0625, 1),  # the size of the parity requirement, narrowed
        (
            256,
            None,
            0.0625,
            2,
        ),  # levels ≥128 take the per-face kernels, below the batched conv
        (128, None, 0.125, 1),  # one face: per-face kernels everywhere
        (128, 32, 0.125, 3),  # super-resolution: seeded noise at 64 and 128
    ],
)
def test_equals_reference_on_random_inputs(size, in_size, narrow, batch):
    model = make_gpen(size=size, in_size=in_size, narrow=narrow, seed=size)
    side = in_size or size
    x = torch.rand(batch, 3, side, side, generator=torch.Generator().manual_seed(1)) * 2 - 1
    expected, fast = _both(model, x, seed=5)
    assert fast.shape == (batch, 3, size, size)
    assert expected.abs().max() > 0.5  # a live network, not a constant
    assert (fast - expected).abs().max().item() <= TOL


def test_faces_do_not_influence_each_other():
    model = make_gpen(size=128, narrow=0.125)
    fast = FastGPEN(model)
    x = torch.rand(4, 3, 128, 128, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.inference_mode():
        together = fast(x)
        alone = torch.cat([fast(x[i : i + 1]) for i in range(4)])
        swapped = fast(x.flip(0)).flip(0)
    assert (together - alone).abs().max().item() <= 1e-4
    assert (together - swapped).abs().max().item() <= 1e-4


def test_a_face_comes_out_the_same_alone_or_in_a_batch_in_bfloat16():
    # A preview restores its frame's face in a batch of its own make-up, a whole run in
    # another. The per-face and batched forms differ by bf16 rounding (~1e-2, up to 4 levels
    # of the face); what is left is the float32 ToRGB's GEMM rounding (2.4e-7, measured).
    model = make_gpen(size=64, narrow=0.125, seed=4).to(torch.bfloat16)
    fast = FastGPEN(model)
    x = (torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 2 - 1).to(torch.bfloat16)
    with torch.inference_mode():
        together = fast(x)
        alone = torch.cat([fast(x[i : i + 1]) for i in range(5)])
    assert together.abs().max() > 0.5  # a live network
    assert (together - alone).abs().max().item() <= 1e-6


def test_same_input_check_and_attributes():
    model = make_gpen(size=64, in_size=32)
    fast = FastGPEN(model)
    assert (fast.out_size, fast.in_size, fast.config) == (64, 32, model.config)
    assert not fast.state_dict().keys() - {f"model.{k}" for k in model.state_dict()}  # no second weight set
    with pytest.raises(ValueError, match="expects N×3×32×32"):
        fast(torch.zeros(1, 3, 64, 64))


def test_restorer_runs_the_fast_path_by_default():
    model = make_gpen(size=64, seed=3)
    faces = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    fast = FaceRestorer(model, device="cpu", dtype="float32")
    reference = FaceRestorer(model, device="cpu", dtype="float32", fast=False)
    assert isinstance(fast.forward, FastGPEN) and fast.forward.model is model
    assert reference.forward is model
    diff = np.abs(fast.restore(faces).astype(int) - reference.restore(faces))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999  # ±1 only where rounding straddles .5
