"""FaceRestorer: uint8 faces in, uint8 faces out, independent of batching; device/dtype choice."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch
from conftest import FACES
from gpen_checkpoints import make_gpen, make_gpen_checkpoint

from vidgpen.errors import ConfigError
from vidgpen.models.runtime.device import cpu_bf16_native, cpuinfo_flags, has_native_bf16, resolve_device, resolve_dtype
from vidgpen.models.runtime.restorer import Restorer
from vidgpen.models.runtime.torch_restorer import FaceRestorer


def _faces(n: int, size: int = 64) -> np.ndarray:
    """A real aligned portrait plus random faces-sized noise, uint8 RGB N×S×S×3."""
    portrait = cv2.cvtColor(cv2.imread(str(FACES / "ffhq_00000.png")), cv2.COLOR_BGR2RGB)
    portrait = cv2.resize(portrait, (size, size), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(0).integers(0, 256, (n - 1, size, size, 3), dtype=np.uint8)
    return np.concatenate([portrait[None], noise])


@pytest.fixture(scope="module")
def model():
    return make_gpen(size=64, seed=1)


def test_shapes_dtype_range_and_rounding(model):
    restorer = FaceRestorer(model, device="cpu", dtype="float32", batch_size=3)
    assert isinstance(restorer, Restorer)
    assert (restorer.in_size, restorer.out_size, restorer.dtype) == (64, 64, torch.float32)
    faces = _faces(5)
    out = restorer.restore(faces)
    assert out.shape == (5, 64, 64, 3) and out.dtype == np.uint8
    assert out.min() == 0 and out.max() == 255 and len(np.unique(out)) > 200  # not saturated

    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        y = (model(x).clamp(-1, 1) + 1) * 127.5
    y = y.permute(0, 2, 3, 1).numpy()
    assert np.abs(out - y).max() <= 0.5 + 1e-3  # rounded, not truncated
    assert (out.astype(int) > np.floor(y)).any()


def test_precise_output_is_the_unrounded_faces(model):
    """For frames deeper than 8 bits: float32 in [0, 255] that rounds to the uint8 output."""
    restorer, faces = FaceRestorer(model, device="cpu", dtype="float32", batch_size=3), _faces(4)
    precise = restorer.restore(faces, precise=True)
    assert precise.dtype == np.float32 and precise.min() >= 0 and precise.max() <= 255
    assert np.array_equal(np.rint(precise).astype(np.uint8), restorer.restore(faces))
    assert (precise != np.rint(precise)).mean() > 0.9  # carries what 8 bits would round away


def test_batch_of_one_equals_batch_of_several(model):
    faces = _faces(5)
    together = FaceRestorer(model, device="cpu", dtype="float32", batch_size=4).restore(faces)
    alone = np.concatenate([FaceRestorer(model, device="cpu", dtype="float32", batch_size=1).restore(f[None]) for f in faces])
    assert np.abs(together.astype(int) - alone).max() <= 1  # ±1 only where float sums straddle .5
    assert (together == alone).mean() > 0.999


def test_tensor_input_and_bad_input(model):
    restorer = FaceRestorer(model, device="cpu", dtype="float32")
    faces = _faces(2)
    assert np.array_equal(restorer.restore(torch.from_numpy(faces)), restorer.restore(faces))
    assert restorer.restore(np.zeros((0, 64, 64, 3), np.uint8)).shape == (0, 64, 64, 3)
    for bad in (faces.astype(np.float32), faces[0], _faces(1, 32)):
        with pytest.raises(ValueError, match="uint8 N×64×64×3"):
            restorer.restore(bad)
    with pytest.raises(ValueError):
        FaceRestorer(model, batch_size=0)


def test_super_resolution_model_restores_to_its_output_size():
    restorer = FaceRestorer(make_gpen(size=64, in_size=32), device="cpu", dtype="float32")
    assert (restorer.in_size, restorer.out_size) == (32, 64)
    assert restorer.restore(_faces(2, 32)).shape == (2, 64, 64, 3)


def test_load_and_bfloat16(tmp_path, model):
    path = make_gpen_checkpoint(tmp_path / "tiny.pth", seed=1)
    faces = _faces(2)
    fp32 = FaceRestorer.load(path, device="cpu", dtype="float32", batch_size=2).restore(faces)
    assert np.array_equal(fp32, FaceRestorer(model, device="cpu", dtype="float32").restore(faces))
    bf16 = FaceRestorer.load(path, device="cpu", dtype="bf16")
    assert bf16.model.final_linear[0].weight.dtype == torch.bfloat16
    assert np.abs(bf16.restore(faces).astype(int) - fp32).mean() < 8


def test_device_and_dtype_choice():
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype(None, torch.device("cpu")) == (torch.bfloat16 if cpu_bf16_native() else torch.float32)
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_dtype("bf16", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype(torch.float64, torch.device("cpu")) == torch.float64
    with pytest.raises(ConfigError, match="dtype"):
        resolve_dtype("int8", torch.device("cpu"))
    with pytest.raises(ConfigError, match="device"):
        resolve_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_load_shares_weights_until_the_file_changes(tmp_path):
    path = make_gpen_checkpoint(tmp_path / "shared.pth", size=32)
    first = FaceRestorer.load(path, device="cpu", dtype="float32")
    assert FaceRestorer.load(path, device="cpu", dtype="float32", batch_size=2).model is first.model
    assert FaceRestorer.load(path, device="cpu", dtype="bf16").model is not first.model
    make_gpen_checkpoint(path, size=32, seed=5)
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))  # a rewrite within the clock tick
    assert FaceRestorer.load(path, device="cpu", dtype="float32").model is not first.model


def test_dtype_auto_picks_bf16_only_where_the_cpu_computes_it():
    zen5_avx2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma f16c\n\nprocessor\t: 1\n"
    sapphire_rapids = "flags\t: avx2 avx512f avx512bw avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8\n"
    genoa = "flags\t: avx2 avx512f avx512bw avx512_bf16\n"
    skylake_x = "flags\t: avx2 avx512f avx512bw avx512vl\n"  # AVX-512 but bf16 emulated
    assert cpuinfo_flags(zen5_avx2) == {"fpu", "sse2", "avx", "avx2", "fma", "f16c"}
    assert [has_native_bf16(cpuinfo_flags(t)) for t in (zen5_avx2, sapphire_rapids, genoa, skylake_x, "")] == [
        False, True, True, False, False]
    with open("/proc/cpuinfo") as f:  # this machine: torch's query and the kernel's flags agree
        assert cpu_bf16_native() == has_native_bf16(cpuinfo_flags(f.read()))
