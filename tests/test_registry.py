"""The weights registry: cache location, lookup by name, verification, offline failures."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from gpen_checkpoints import make_gpen_checkpoint

from vidgpen.errors import ConfigError, WeightsError
from vidgpen.models.network.loader import load_gpen
from vidgpen.models.runtime.factory import load_restorer
from vidgpen.weights import registry

UNREACHABLE = "http://127.0.0.1:9/GPEN-BFR-512.pth"  # discard port: refused at once, no DNS


def _retarget(monkeypatch, name: str, **changes) -> registry.ModelSpec:
    """Point a registry entry elsewhere (a local file or a dead port) for one test."""
    entry = dataclasses.replace(registry.REGISTRY[name], **changes)
    monkeypatch.setitem(registry.REGISTRY, name, entry)
    return entry


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(argv, capsys):
    pytest.importorskip("vidgpen.cli.inspect", reason="vidgpen.cli imports vidgpen.cli.inspect (issue 3)")
    from vidgpen.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDGPEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert registry.weights_dir() == tmp_path / "home" / "weights"
    monkeypatch.delenv("VIDGPEN_HOME")
    assert registry.cache_dir() == tmp_path / "xdg" / "vidgpen"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert registry.cache_dir() == tmp_path / "user" / ".cache" / "vidgpen"


def test_entries_cover_gpen_and_facexlib_files():
    for size in (256, 512, 1024, 2048):
        e = registry.entry(f"gpen-bfr-{size}")
        assert all(url.startswith("https://") for url in e.sources) and str(size) in e.filename
        assert (e.kind, e.in_size, e.out_size, e.template) == ("gpen-torch", size, size, "gpen")
    assert registry.entry("retinaface-resnet50").filename == "detection_Resnet50_Final.pth"
    assert registry.entry("retinaface-mobilenet0.25").filename == "detection_mobilenet0.25_Final.pth"
    assert registry.entry("parsenet").filename == "parsing_parsenet.pth"
    assert len({e.filename for e in registry.REGISTRY.values()}) == len(registry.REGISTRY)
    with pytest.raises(WeightsError, match="unknown model name"):
        registry.entry("gpen-bfr-4096")


def test_checkpoint_placed_in_cache_is_found_by_name():
    path = registry.path_of("gpen-bfr-256")
    make_gpen_checkpoint(path, size=32, wrap="g_ema")
    assert path.parent.parent == registry.cache_dir() and registry.is_cached("gpen-bfr-256")
    assert registry.resolve("gpen-bfr-256", download=False) == path
    assert load_gpen("gpen-bfr-256").out_size == 32  # by name, no download attempted


def test_cli_path_prints_the_cache_location(capsys):
    code, out, _ = _cli(["models", "path", "gpen-bfr-256"], capsys)
    assert code == 0 and out.strip() == str(registry.path_of("gpen-bfr-256"))


def test_wrong_sha256_is_refused(monkeypatch):
    path = make_gpen_checkpoint(registry.path_of("gpen-bfr-512"), size=32)
    _retarget(monkeypatch, "gpen-bfr-512", sha256="0" * 64)
    with pytest.raises(WeightsError, match=f"{path}: sha256 .* does not match"):
        registry.verify("gpen-bfr-512")
    _retarget(monkeypatch, "gpen-bfr-512", sha256=_sha256(path))
    assert registry.verify("gpen-bfr-512") == _sha256(path)


def test_wrong_size_is_refused(monkeypatch):
    path = make_gpen_checkpoint(registry.path_of("gpen-bfr-512"), size=32)
    _retarget(monkeypatch, "gpen-bfr-512", file_bytes=path.stat().st_size + 1)
    with pytest.raises(WeightsError, match="models download gpen-bfr-512 --force"):
        load_gpen("gpen-bfr-512")


def test_download_verifies_then_renames(monkeypatch, tmp_path):
    source = make_gpen_checkpoint(tmp_path / "upstream" / "GPEN-BFR-512.pth", size=32)
    target = registry.path_of("gpen-bfr-512")

    _retarget(monkeypatch, "gpen-bfr-512", sources=(source.as_uri(),), sha256="f" * 64)
    with pytest.raises(WeightsError, match=r"file:.*GPEN-BFR-512.pth \(sha256 [0-9a-f]{64} does not match .*not saved\)"):
        registry.download("gpen-bfr-512")
    assert list(target.parent.iterdir()) == []  # neither the file nor a partial download

    _retarget(monkeypatch, "gpen-bfr-512", sources=(source.as_uri(),), sha256=_sha256(source),
              file_bytes=source.stat().st_size)
    assert registry.download("gpen-bfr-512") == target
    assert target.read_bytes() == source.read_bytes()
    assert list(target.parent.iterdir()) == [target]
    assert load_gpen("gpen-bfr-512").out_size == 32


def test_offline_download_failure_is_one_clear_line(monkeypatch):
    _retarget(monkeypatch, "gpen-bfr-512", sources=(UNREACHABLE,))
    target = registry.path_of("gpen-bfr-512")
    with pytest.raises(WeightsError) as info:
        load_gpen("gpen-bfr-512")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{target}: gpen-bfr-512 weights missing (download failed")
    assert f"{UNREACHABLE} (" in message and message.endswith(f"save the file as {target}")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_missing_without_download_names_file_and_url():
    with pytest.raises(WeightsError) as info:
        registry.resolve("parsenet", download=False)
    e = registry.entry("parsenet")
    assert str(info.value) == (
        f"{registry.path_of('parsenet')}: parsenet weights missing (not in the cache); "
        f"download {e.sources[0]} and save it as {registry.path_of('parsenet')}"
    )


def test_cli_list_download_verify(monkeypatch, capsys):
    _retarget(monkeypatch, "gpen-bfr-1024", sources=(UNREACHABLE,))
    code, _, err = _cli(["models", "download", "gpen-bfr-1024"], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and UNREACHABLE in err

    make_gpen_checkpoint(registry.path_of("gpen-bfr-1024"), size=64)
    code, out, _ = _cli(["models", "verify", "gpen-bfr-1024"], capsys)
    assert code == 0 and "no published sha256" in out and "GPEN checkpoint" in out and "size=64" in out

    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = _cli(["models", "list"], capsys)
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ")}
    assert code == 0 and set(registry.REGISTRY) <= set(rows)
    assert " yes, " in rows["gpen-bfr-1024"] and " no " in rows["gpen-bfr-512"]
    assert "gpen-torch" in rows["gpen-bfr-1024"] and "1024→1024" in rows["gpen-bfr-1024"]

    code, _, err = _cli(["models", "verify", "gpen-bfr-2048"], capsys)
    assert code == 2 and "gpen-bfr-2048 weights missing" in err


def test_entries_are_data_with_ordered_sources_and_pinned_hashes():
    for size in (1024, 2048):  # ModelScope's new iic/ path first, the old damo/ one last
        sources = registry.entry(f"gpen-bfr-{size}").sources
        assert "/iic/" in sources[0] and "/damo/" in sources[-1]
    for size in (256, 512, 1024, 2048):
        onnx = registry.entry(f"gpen-bfr-{size}-onnx")
        assert (onnx.kind, onnx.in_size, onnx.out_size, onnx.template) == ("gpen-onnx", size, size, "ffhq")
        assert len(onnx.sha256) == 64 and int(onnx.sha256, 16) and len(onnx.sources) == 2
    assert all(e.sha256 is None for e in registry.REGISTRY.values() if "visomaster" not in e.sources[0])
    with pytest.raises(ConfigError, match="a codeformer file, not a face restorer"):  # no kind registered
        load_restorer(dataclasses.replace(registry.entry("gpen-bfr-256"), kind="codeformer"))
