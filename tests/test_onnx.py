"""ONNX export of GPEN and the ONNX Runtime restorer: same outputs as torch, CLI, end to end.

One tiny random-weight checkpoint in the official layout is exported once (through the
CLI) and run with the real ONNX Runtime against the real torch modules.
"""

from __future__ import annotations

import contextlib
import io

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import FACES
from face_clips import load_face, make_clip, smooth_path
from gpen_checkpoints import make_gpen_checkpoint
from media import decoded_frames, plane_bytes, write_video

from vidgpen.cli import main
from vidgpen.config import RestoreConfig
from vidgpen.errors import ConfigError, OutputError, WeightsError
from vidgpen.models.network.loader import load_gpen
from vidgpen.models.network.onnx_export import export_gpen, export_onnx
from vidgpen.models.runtime.factory import load_restorer
from vidgpen.models.runtime.onnx_restorer import OnnxRestorer, providers_for
from vidgpen.models.runtime.restorer import Restorer, faces_to_input
from vidgpen.models.runtime.torch_restorer import FaceRestorer
from vidgpen.plan.choice import plan_models
from vidgpen.weights import registry
from vidgpen.weights.spec import ModelSpec, Normalisation


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The checkpoint and its export by ``vidgpen models export-onnx`` (exit code, stdout)."""
    root = tmp_path_factory.mktemp("onnx")
    weights = make_gpen_checkpoint(root / "tiny.pth", size=64, seed=3)
    out = root / "tiny.onnx"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["models", "export-onnx", str(weights), "-o", str(out)])
    return {"root": root, "weights": weights, "onnx": out, "code": code, "stdout": stdout.getvalue()}


def _faces(n: int, size: int = 64) -> np.ndarray:
    """A real aligned portrait plus random face-sized noise, uint8 RGB N×S×S×3."""
    portrait = cv2.cvtColor(cv2.imread(str(FACES / "ffhq_00000.png")), cv2.COLOR_BGR2RGB)
    portrait = cv2.resize(portrait, (size, size), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(0).integers(0, 256, (n - 1, size, size, 3), dtype=np.uint8)
    return np.concatenate([portrait[None], noise])


def test_cli_export_writes_a_valid_graph_with_a_dynamic_batch(exported):
    assert exported["code"] == 0
    assert exported["stdout"].strip() == str(exported["onnx"])
    assert [p.name for p in exported["root"].iterdir() if p.name.endswith(".part")] == []  # temp file renamed
    model = onnx.load(str(exported["onnx"]))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 18
    (inp,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1:] == [3, 64, 64]  # symbolic batch
    assert {n.op_type for n in model.graph.node}.isdisjoint({"ScatterND", "RandomNormalLike", "RandomNormal"})


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_runtime_matches_the_reference_forward(exported, batch):
    reference = load_gpen(exported["weights"])
    session = ort.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
    x = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(batch)) * 2 - 1
    with torch.inference_mode():
        expected = reference(x).numpy()
    got = session.run(None, {"faces": x.numpy()})[0]
    assert got.shape == expected.shape == (batch, 3, 64, 64)
    assert np.abs(expected).max() > 0.5  # a real signal, not a collapsed output
    assert np.abs(got - expected).max() < 1e-3


def test_onnx_restorer_matches_face_restorer(exported):
    faces = _faces(5)
    onnx_restorer = OnnxRestorer(exported["onnx"], providers=["CPUExecutionProvider"], batch_size=2)
    assert isinstance(onnx_restorer, Restorer)
    assert (onnx_restorer.in_size, onnx_restorer.out_size) == (64, 64)
    assert onnx_restorer.providers == ["CPUExecutionProvider"]
    assert onnx_restorer.batch_size == 1  # on CPU alone, one face per run (see OnnxRestorer)
    got = onnx_restorer.restore(faces)
    expected = FaceRestorer.load(exported["weights"], device="cpu", dtype="float32").restore(faces)
    assert got.shape == (5, 64, 64, 3) and got.dtype == np.uint8
    assert len(np.unique(got)) > 200  # not saturated
    assert np.abs(got.astype(int) - expected).max() <= 1
    with pytest.raises(ValueError, match="uint8"):
        onnx_restorer.restore(faces.astype(np.float32))


def test_load_restorer_dispatches_on_the_suffix(exported):
    assert isinstance(load_restorer(exported["onnx"], device="cpu"), OnnxRestorer)
    assert isinstance(load_restorer(exported["weights"], device="cpu"), FaceRestorer)
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="float32"):
        load_restorer(exported["onnx"], device="cpu", dtype="float16")


def test_fixed_batch_export_pads_the_last_chunk(exported, tmp_path):
    out = export_gpen(load_gpen(exported["weights"]), tmp_path / "b2.onnx", batch=2)
    fixed = OnnxRestorer(out, providers=["CPUExecutionProvider"], batch_size=8)
    assert fixed.batch_size == 2
    faces = _faces(3)
    dynamic = OnnxRestorer(exported["onnx"], providers=["CPUExecutionProvider"])
    assert np.abs(fixed.restore(faces).astype(int) - dynamic.restore(faces)).max() <= 1


def test_bad_sources_and_outputs_are_one_line_errors(exported, tmp_path, capsys):
    code = main(["models", "export-onnx", str(tmp_path / "missing.pth"), "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "missing.pth" in err[0]
    sr = make_gpen_checkpoint(tmp_path / "sr.pth", size=64, in_size=32)
    with pytest.raises(WeightsError, match=r"sr\.pth: super-resolution"):
        export_onnx(sr, tmp_path / "sr.onnx")
    with pytest.raises(OutputError, match=r"out\.bin: the output must end in \.onnx"):
        export_onnx(exported["weights"], tmp_path / "out.bin")
    with pytest.raises(ConfigError, match="opset 13"):
        export_onnx(exported["weights"], tmp_path / "o.onnx", opset=13)
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a protobuf at all")
    with pytest.raises(WeightsError, match=r"bogus\.onnx: not a loadable ONNX model"):
        OnnxRestorer(bogus)
    vector = onnx.helper.make_tensor_value_info("v", onnx.TensorProto.FLOAT, [4])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["v"], ["w"])],
        "identity",
        [vector],
        [onnx.helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [4])],
    )
    onnx.save(
        onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]),
        other := tmp_path / "other.onnx",
    )
    with pytest.raises(WeightsError, match=r"other\.onnx: not a GPEN export"):
        OnnxRestorer(other)
    with pytest.raises(WeightsError, match=r"gone\.onnx: no such ONNX file"):
        load_restorer(tmp_path / "gone.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bogus.onnx",
        "other.onnx",
        "sr.pth",
    ]  # nothing (half-)written


def test_restore_with_onnx_weights_matches_torch(exported, tmp_path):
    face = load_face(FACES / "ffhq_00003.png", 150)
    clip = make_clip([(face, smooth_path(160, 120, dx=30, dy=10, period=40))], 6, (320, 240), codec=None)
    video = write_video(tmp_path / "clip.mp4", clip.frames, fps=25)
    frames = {}
    for name in ("onnx", "weights"):
        out = tmp_path / f"{name}.mkv"
        code = main(
            [
                "restore",
                str(video),
                "-o",
                str(out),
                "--weights",
                str(exported[name]),
                "--device",
                "cpu",
                "--dtype",
                "float32",  # what the ONNX export computes in (auto is bf16 on CPUs with AVX512-BF16)
                "--codec",
                "ffv1",
                "--deflicker",
                "0",  # one ONNX graph runs frame by frame; compare torch doing the same
                "-q",
            ]
        )
        assert code == 0
        frames[name] = np.stack([_samples(f) for f in decoded_frames(out)]).astype(int)
    source = np.stack([_samples(f) for f in decoded_frames(video)]).astype(int)
    assert frames["onnx"].shape == source.shape
    assert (np.abs(frames["onnx"] - source).max(axis=1) > 20).all()  # the face is restored in every frame
    assert np.abs(frames["onnx"] - frames["weights"]).max() <= 1  # same stored samples as torch, to rounding


def _samples(frame) -> np.ndarray:
    """A frame's stored Y, U and V samples: what the encoder kept, before any RGB conversion."""
    return np.frombuffer(b"".join(plane_bytes(frame)), np.uint8)


def _third_party_style(exported_path, path):
    """vidgpen's export rewrapped as other projects ship GPEN: input ``input`` and output ``output``,
    BGR in [0, 1] on both sides, and a fixed batch of 1."""
    model = onnx.load(str(exported_path))
    graph, helper = model.graph, onnx.helper
    bgr = onnx.numpy_helper.from_array(np.array([2, 1, 0], np.int64), "bgr")
    two, one, half = (onnx.numpy_helper.from_array(np.array(v, np.float32), n)
                      for v, n in ((2.0, "two"), (1.0, "one"), (0.5, "half")))
    graph.initializer.extend([bgr, two, one, half])
    pre = [helper.make_node("Gather", ["input", "bgr"], ["rgb01"], axis=1),
           helper.make_node("Mul", ["rgb01", "two"], ["rgb02"]),
           helper.make_node("Sub", ["rgb02", "one"], ["faces"])]
    post = [helper.make_node("Add", ["restored", "one"], ["out02"]),
            helper.make_node("Mul", ["out02", "half"], ["out01"]),
            helper.make_node("Gather", ["out01", "bgr"], ["output"], axis=1)]
    nodes = [*pre, *graph.node, *post]
    del graph.node[:]
    graph.node.extend(nodes)
    for value, name in ((graph.input[0], "input"), (graph.output[0], "output")):
        value.name = name
        value.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def third_party(exported):
    """A third-party-style graph registered as a gpen-onnx spec with its names and normalisation."""
    path = _third_party_style(exported["onnx"], exported["root"] / "third-party.onnx")
    spec = ModelSpec(name="tiny-third-party", kind="gpen-onnx", filename=path.name, sources=("http://127.0.0.1:9/x",),
                     description="test", in_size=64, out_size=64, template="ffhq", input_name="input",
                     output_name="output", normalisation=Normalisation(0.0, 1.0, bgr=True))
    return spec, path


def test_third_party_onnx_restores_as_the_torch_path(exported, third_party, monkeypatch, capsys):
    spec, path = third_party
    dims = [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 64]  # a fixed batch of one
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    registry.path_of(spec.name).parent.mkdir(parents=True, exist_ok=True)
    registry.path_of(spec.name).write_bytes(path.read_bytes())
    restorer = load_restorer(spec.name, device="cpu", batch_size=4)
    assert isinstance(restorer, OnnxRestorer) and (restorer.io.input, restorer.io.output) == ("input", "output")
    assert restorer.batch_size == 1 and (restorer.in_size, restorer.out_size) == (64, 64)

    faces = _faces(3)
    x = faces_to_input(torch.from_numpy(faces), spec.normalisation).numpy()
    got = np.concatenate([restorer.session.run(["output"], {"input": x[i : i + 1]})[0] for i in range(3)])
    with torch.inference_mode():
        reference = load_gpen(exported["weights"])(torch.from_numpy(faces).permute(0, 3, 1, 2) / 127.5 - 1)
    expected = ((reference + 1) / 2).flip(1).numpy()
    assert np.abs(got - expected).max() < 1e-3 and np.abs(expected - 0.5).max() > 0.25
    torch_faces = FaceRestorer.load(exported["weights"], device="cpu", dtype="float32").restore(faces)
    assert np.abs(restorer.restore(faces).astype(int) - torch_faces).max() <= 1

    # the run aligns faces as the model was trained: its entry's template; a bare file, the config's
    assert plan_models(RestoreConfig(model=spec.name, device="cpu", deflicker=0)).template == "ffhq"
    assert plan_models(RestoreConfig(weights=str(path), device="cpu", template="gpen", deflicker=0)).template == "gpen"
    assert main(["models", "verify", spec.name]) == 0
    assert "GPEN ONNX graph, input → output, 64 → 64 px, batch 1" in capsys.readouterr().out
