"""Settings precedence (defaults < preset < config file < flags) and error messages."""

from __future__ import annotations

import pytest

from vidgpen.config import ConfigLayers, RestoreConfig, build_config, list_presets
from vidgpen.errors import ConfigError


def test_shipped_presets_load_and_differ_from_defaults():
    assert {"film", "home-video", "fast", "max"} <= set(list_presets())
    defaults = RestoreConfig()
    film = build_config(ConfigLayers(preset="film"))
    assert film.model == "gpen-bfr-2048" and film.strength == pytest.approx(0.8)
    assert film.smooth > defaults.smooth
    assert film.deflicker > defaults.deflicker > 0
    assert build_config(ConfigLayers(preset="home-video")).model == "auto"
    assert build_config(ConfigLayers(preset="home-video")).deinterlace == "auto"
    fast = build_config(ConfigLayers(preset="fast"))
    assert fast.model == "gpen-bfr-512" and fast.detect_every > 1
    assert build_config(ConfigLayers(preset="max")).mask == "parsing"


def test_precedence_defaults_preset_config_flags(tmp_path):
    config_file = tmp_path / "mine.toml"
    config_file.write_text('strength = 0.5\nsmooth = 3\nbatch_size = 4\n')
    merged = build_config(ConfigLayers(preset="film", config_file=str(config_file), overrides={"smooth": 2}))
    assert merged.model == "gpen-bfr-2048"  # from the preset
    assert merged.strength == 0.5  # config file beats preset
    assert merged.batch_size == 4  # config file beats default
    assert merged.smooth == 2  # flag beats config file
    assert merged.template == RestoreConfig().template  # untouched default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("strenght = 0.5\n", "unknown key 'strenght'"),
        ('strength = "high"\n', "strength: expected float"),
        ("strength = 1.5\n", "strength: 1.5 is not within 0..1"),
        ('detector = "yolo"\n', "detector: 'yolo' is not one of"),
        ("batch_size = 0\n", "batch_size: 0 must be at least 1"),
        ("strength = [\n", "not valid TOML"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        build_config(ConfigLayers(config_file=str(path)))
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_preset_and_bad_flag():
    with pytest.raises(ConfigError, match="unknown preset"):
        build_config(ConfigLayers(preset="nope"))
    with pytest.raises(ConfigError, match="options: faces"):
        build_config(ConfigLayers(overrides={"faces": "1,x"}))


def test_settings_hash_tracks_output_relevant_settings():
    base = RestoreConfig()
    assert base.settings_hash() == RestoreConfig(queue_size=99).settings_hash()
    assert base.settings_hash() != RestoreConfig(strength=0.5).settings_hash()
    assert base.settings_hash() == RestoreConfig(compile=True).settings_hash()  # same faces, compiled or not


def test_boolean_flags_override_presets_both_ways():
    import argparse

    from vidgpen.cli.args import config_from_args
    from vidgpen.cli.restore import add_arguments as add_restore_arguments

    parser = argparse.ArgumentParser()
    add_restore_arguments(parser)
    compiled = config_from_args(parser.parse_args(["in.mp4", "-o", "out.mp4", "--compile"]))
    assert compiled.compile and not RestoreConfig().compile
    film = config_from_args(parser.parse_args(["in.mp4", "-o", "out.mp4", "--preset", "film", "--no-color-match"]))
    assert build_config(ConfigLayers(preset="film")).color_match and not film.color_match
    registered = config_from_args(parser.parse_args(["in.mp4", "-o", "out.mp4", "--register"]))
    assert registered.register and not RestoreConfig().register
    assert registered.settings_hash() != RestoreConfig().settings_hash()  # other faces: --resume must not mix them
