"""The Settings screen's values as the CLI sees them: flags, a RestoreConfig, a command line, a TOML file.

The UI never builds a RestoreConfig itself: its values become the ``vidgpen restore``
flags they stand for, and those are parsed by the CLI's own parser
(:func:`vidgpen.cli.args.add_config_arguments`). So the command line the UI shows is
exactly what it runs, and a bad value fails with the CLI's message.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

from vidgpen.cli.args import RESTORE_FLAGS, add_config_arguments, config_from_args
from vidgpen.cli.presets import toml_value
from vidgpen.config import ConfigLayers, RestoreConfig, build_config

# What the Settings screen edits, in its order (RestoreConfig field names).
EDITED = ("model", "weights", "strength", "deflicker", "grain", "color_match", "faces", "deinterlace",
          "codec", "crf", "encoder_preset", "batch_size", "device")
_FLAG_OF = {dest: flag for flag, (dest, _, _) in RESTORE_FLAGS.items()}
_SWITCHES = {"color_match": "color-match", "register": "register", "compile": "compile"}


def base_config(preset: str | None) -> RestoreConfig:
    """The defaults merged with ``preset``: what each field shows before the user edits it."""
    return build_config(ConfigLayers(preset=preset or None))


def _flag(key: str, value: Any) -> list[str]:
    if key in _SWITCHES:
        return [f"--{'' if value else 'no-'}{_SWITCHES[key]}"]
    flag = "--deinterlace" if key == "deinterlace" else _FLAG_OF[key]
    text = f"{value:g}" if isinstance(value, float) else str(value)
    # --deinterlace's value is optional, and a value that starts with "-" would read as a flag.
    return [f"{flag}={text}"] if key == "deinterlace" or text.startswith("-") else [flag, text]


def settings_argv(preset: str | None, values: dict[str, Any]) -> list[str]:
    """The flags that turn ``preset`` into ``values``: only those that change something.

    Empty text (no weights file) means "not set", as leaving the flag out does.
    """
    base = base_config(preset)
    argv = ["--preset", preset] if preset else []
    for key, value in values.items():
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
        if isinstance(value, float) and isinstance(getattr(base, key), int) and value.is_integer():
            value = int(value)  # a number box gives floats
        if value != getattr(base, key):
            argv += _flag(key, value)
    return argv


def config_from_argv(argv: list[str]) -> RestoreConfig:
    """Parse settings flags with the CLI's parser; ConfigError carries the CLI's message."""
    parser = argparse.ArgumentParser(prog="vidgpen restore", exit_on_error=False, add_help=False)
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def before_after_path(output: str) -> str:
    """Where a Run writes its before|after clip (``--preview``): beside the output."""
    path = Path(output)
    return str(path.with_name(f"{path.stem}.before-after{path.suffix}"))


def command_line(input: str, output: str, argv: list[str], resume: float | None = None,
                 overwrite: bool = False, preview: str | None = None) -> str:
    """The ``vidgpen restore`` line that does what the UI's Run does, to paste into a shell."""
    words = ["vidgpen", "restore", input or "IN", "-o", output or "OUT", *argv]
    if resume is not None:
        words += ["--resume", f"{resume:g}"]
    if preview:
        words += ["--preview", preview]
    if overwrite:
        words.append("--overwrite")
    return shlex.join(words)


def config_toml(config: RestoreConfig) -> str:
    """A config file (``--config FILE``) holding every value that differs from the defaults."""
    defaults = RestoreConfig()
    lines = ["# vidgpen restore --config FILE (keys as in `vidgpen presets show NAME`)"]
    for item in fields(RestoreConfig):
        value = getattr(config, item.name)
        if value is not None and value != getattr(defaults, item.name):
            lines.append(f"{item.name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"
