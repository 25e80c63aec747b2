"""``vidgpen presets list|show``: the shipped presets, and one merged over the defaults."""

from __future__ import annotations

import argparse
import json
import tomllib

from vidgpen.config import ConfigLayers, build_config, list_presets, preset_description, preset_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="presets_command", required=True)
    sub.add_parser("list", help="list the presets")
    show = sub.add_parser("show", help="print a preset merged over the defaults, as TOML")
    show.add_argument("name")


def run(args: argparse.Namespace) -> int:
    if args.presets_command == "list":
        for name in list_presets():
            print(f"{name:12s} {preset_description(name)}")
        return 0
    path = preset_path(args.name)
    config = build_config(ConfigLayers(preset=args.name))
    own = set(tomllib.loads(path.read_text(encoding="utf-8")))
    print(f"# preset {args.name} ({path}) merged over the built-in defaults; '# preset' marks its own values")
    for key, value in config.to_dict().items():
        line = f"# {key} = (unset)" if value is None else f"{key} = {toml_value(value)}"
        print(f"{line:40s} # preset" if key in own else line)
    return 0


def toml_value(value: object) -> str:
    """One TOML value: booleans lower-case, strings quoted (JSON's quoting is TOML's basic string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (str, list)) else str(value)
