"""GPEN matches the released checkpoints' layout and the original code's output."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import GPEN_FIXTURES
from gpen_checkpoints import make_gpen

from vidgpen.models.network.gpen import GPEN, GPENConfig
from vidgpen.models.network.loader import infer_config, load_gpen

KEYS_FILES = ["gpen-bfr-256", "gpen-bfr-512", "gpen-bfr-1024", "gpen-bfr-2048", "gpen-sr-512to2048"]


def _config(raw: dict) -> GPENConfig:
    """The fixtures' config dicts: plain (size) or super-resolution (in_size, out_size)."""
    raw = dict(raw)
    if "out_size" in raw:
        raw["size"] = raw.pop("out_size")
    return GPENConfig(**raw)


@pytest.mark.parametrize("name", KEYS_FILES)
def test_state_dict_matches_released_keys_exactly(name):
    spec = json.loads((GPEN_FIXTURES / f"{name}.keys.json").read_text())
    with torch.device("meta"):
        model = GPEN.from_config(_config(spec["config"]))
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert shapes == spec["state_dict_shapes"]
    assert len(shapes) == spec["num_keys"]
    assert sum(p.numel() for p in model.parameters()) == spec["num_parameters"]


@pytest.mark.parametrize("name", KEYS_FILES)
def test_config_is_inferred_from_released_shapes(name):
    spec = json.loads((GPEN_FIXTURES / f"{name}.keys.json").read_text())
    state = {k: torch.empty(shape, device="meta") for k, shape in spec["state_dict_shapes"].items()}
    assert infer_config(state) == _config(spec["config"])


@pytest.mark.parametrize("fixture", ["parity-64.pt", "parity-sr-32to64.pt"])
def test_reproduces_original_code_output(fixture, tmp_path):
    ref = torch.load(GPEN_FIXTURES / fixture, weights_only=True)
    path = tmp_path / "model.pth"
    torch.save(ref["state_dict"], path)
    model = load_gpen(path)
    assert model.config == _config(ref["config"])
    with torch.no_grad():
        out = model(ref["input"])
    assert isinstance(out, torch.Tensor)
    assert out.shape == ref["output"].shape
    assert (out - ref["output"]).abs().max().item() <= 1e-5


def test_super_resolution_noise_follows_the_callers_generator():
    model = make_gpen(size=64, in_size=32)  # noise weights non-zero: the noise shows
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a = model(x, generator=torch.Generator().manual_seed(7))
        b = model(x, generator=torch.Generator().manual_seed(7))
        c = model(x, generator=torch.Generator().manual_seed(8))
    assert a.shape == (2, 3, 64, 64)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_plain_layout_is_deterministic_without_generator():
    model = make_gpen(size=32)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_from_config_round_trip_and_bad_sizes():
    cfg = GPENConfig(size=32, style_dim=32, n_mlp=1, channel_multiplier=1, narrow=0.0625, in_size=16)
    model = GPEN.from_config(cfg)
    assert model.config == cfg and (model.in_size, model.out_size) == (16, 32)
    for bad in ({"size": 48}, {"size": 32, "in_size": 64}, {"size": 2}):
        with pytest.raises(ValueError):
            GPEN(**bad)
    with pytest.raises(ValueError, match="expects N×3×16×16"):
        model(torch.zeros(1, 3, 32, 32))
