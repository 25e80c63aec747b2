"""load_gpen: every accepted wrapping loads with its config inferred; bad files fail in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import REPO
from gpen_checkpoints import make_gpen, make_gpen_checkpoint

from vidgpen.errors import WeightsError
from vidgpen.models.network.gpen import GPENConfig
from vidgpen.models.network.loader import infer_config, inspect_checkpoint, load_gpen, read_state_dict

TINY = GPENConfig(size=64, style_dim=64, n_mlp=2, channel_multiplier=2, narrow=0.125)


@pytest.mark.parametrize("wrap", [None, "g_ema", "state_dict", "module"])
@pytest.mark.parametrize("drop_kernels", [False, True])
def test_round_trip_in_each_wrapping(tmp_path, wrap, drop_kernels):
    path = make_gpen_checkpoint(tmp_path / "tiny.pth", wrap=wrap, drop_kernels=drop_kernels, seed=3)
    if wrap == "g_ema":  # also the pre-1.6 (non-zip) torch format some old exports use
        torch.save(torch.load(path, weights_only=True), path, _use_new_zipfile_serialization=False)
    model = load_gpen(path)
    assert model.config == TINY
    assert not model.training
    reference = make_gpen(seed=3)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


@pytest.mark.parametrize(
    "config",
    [
        # below 64×64 the multiplier changes no shape, so the default 2 is inferred
        GPENConfig(size=32, style_dim=32, n_mlp=3, channel_multiplier=2, narrow=0.0625),
        GPENConfig(size=128, style_dim=16, n_mlp=1, channel_multiplier=1, narrow=0.0625),
        GPENConfig(size=64, style_dim=64, n_mlp=2, channel_multiplier=2, narrow=0.125, in_size=16),
    ],
)
def test_other_configs_are_inferred(tmp_path, config):
    path = make_gpen_checkpoint(
        tmp_path / "m.pt",
        config.size,
        config.narrow,
        config.channel_multiplier,
        config.style_dim,
        config.n_mlp,
        in_size=config.in_size,
    )
    assert infer_config(read_state_dict(path)) == config
    assert inspect_checkpoint(path) == config
    assert load_gpen(path, dtype=torch.float64).generator.input.input.dtype == torch.float64


def _bad_files(tmp_path):
    """(file, expected message fragment) for each way a checkpoint can be wrong."""
    good = make_gpen_checkpoint(tmp_path / "good.pth")
    state = torch.load(good, weights_only=True)
    cases = []

    def save(name, obj, expect):
        path = tmp_path / name
        torch.save(obj, path)
        cases.append((path, expect))

    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    cases.append((text, "not a torch file"))
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    cases.append((empty, "empty file"))
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases.append((truncated, "truncated"))
    damaged = bytearray(good.read_bytes())
    damaged[len(damaged) // 2 : len(damaged) // 2 + 64] = bytes(64)
    (tmp_path / "damaged.pth").write_bytes(damaged)
    cases.append((tmp_path / "damaged.pth", "corrupt torch checkpoint (checksum mismatch"))
    legacy = tmp_path / "legacy.pth"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[: legacy.stat().st_size // 3])
    cases.append((legacy, "truncated"))
    classifier = {"fc.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)}
    save("classifier.pth", classifier, "not a GPEN checkpoint (missing final_linear.0.weight")
    save("list.pth", [torch.zeros(1)], "not a GPEN checkpoint (holds a list")
    save("mixed.pth", {**state, "epoch": 3}, "non-tensor entries")
    renamed = dict(state)
    renamed["generator.convs.1.conv.weights"] = renamed.pop("generator.convs.1.conv.weight")
    save("renamed.pth", renamed, "missing generator.convs.1.conv.weight; unexpected generator.convs.1.conv.weights")
    wide = {**state, "generator.conv1.conv.weight": torch.zeros(1, 32, 64, 3, 3)}
    save("shape.pth", wide, "unsupported shape [1, 32, 64, 3, 3] for generator.conv1.conv.weight")
    flat = {**state, "generator.input.input": torch.zeros(64)}
    save("flat.pth", flat, "unsupported shape [64] for generator.input.input")
    return cases


def test_bad_checkpoints_give_one_line_naming_the_file(tmp_path):
    for path, expect in _bad_files(tmp_path):
        with pytest.raises(WeightsError) as info:
            load_gpen(path)
        message = str(info.value)
        assert message.startswith(f"{path}: "), message
        assert expect in message, message
        assert "\n" not in message


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "code.pth"
    torch.save({"g_ema": GPENConfig(size=8)}, path)  # a dataclass: arbitrary pickle, not weights
    with pytest.raises(WeightsError, match="weights_only"):
        load_gpen(path)


def test_missing_source(tmp_path):
    with pytest.raises(WeightsError, match="no such file, and not a known model name"):
        load_gpen(tmp_path / "nowhere.pth")


def test_not_a_gpen_lists_only_a_few_keys(tmp_path):
    path = tmp_path / "big.pth"
    torch.save({f"layer{i}.weight": torch.zeros(1) for i in range(50)}, path)
    with pytest.raises(WeightsError) as info:
        load_gpen(path)
    assert "(+47 more)" in str(info.value) and "layer3.weight" not in str(info.value)


def test_cli_exit_code_2_without_traceback(tmp_path, capsys):
    pytest.importorskip("vidgpen.cli.inspect", reason="vidgpen.cli imports vidgpen.cli.inspect (issue 3)")
    from vidgpen.cli import main

    # A file's kind is read from its content first: another network's checkpoint is named as such.
    by_kind = {"classifier.pth": "a torch checkpoint of another network than GPEN (tensors fc.weight, fc.bias"}
    for path, expect in _bad_files(tmp_path):
        expect = by_kind.get(path.name, expect)
        assert main(["models", "verify", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: ") and expect in err
        assert err.count("\n") == 1 and "Traceback" not in err
    good = make_gpen_checkpoint(tmp_path / "ok.pth")
    assert main(["models", "verify", str(good)]) == 0
    assert "size=64" in capsys.readouterr().out


def test_python_m_vidgpen_reports_bad_checkpoint(tmp_path):
    pytest.importorskip("vidgpen.cli.inspect", reason="vidgpen.cli imports vidgpen.cli.inspect (issue 3)")
    bad = tmp_path / "bad.pth"
    bad.write_text("nope")
    proc = subprocess.run(
        [sys.executable, "-m", "vidgpen", "models", "verify", str(bad)], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {bad}: not a torch file nor an ONNX graph (restorer kinds: gpen-torch")
    assert proc.stderr.count("\n") == 1
