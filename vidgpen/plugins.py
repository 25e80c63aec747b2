"""Plug-ins: modules that register restorer kinds, models and detectors without editing vidgpen.

A plug-in is any importable module whose import makes its registrations
(``register_restorer_kind``, ``register_model``, ``register_detector``; README, *How to add
a restorer* and *How to add a detector*). vidgpen imports the modules named in
``$VIDGPEN_PLUGINS`` (comma-separated) and every installed ``vidgpen.plugins`` entry point
before a command or an API run reads its settings, in this process and in batch and Ray
workers alike (they inherit the environment).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from functools import cache

from vidgpen.errors import ConfigError, first_line

ENV = "VIDGPEN_PLUGINS"
ENTRY_POINTS = "vidgpen.plugins"


@cache
def load_plugins() -> tuple[str, ...]:
    """Import every plug-in once; returns their module names. A plug-in that fails to import is
    one clear error naming it."""
    names = [name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip()]
    names += [entry.value for entry in importlib.metadata.entry_points(group=ENTRY_POINTS)]
    for name in names:
        try:
            importlib.import_module(name.split(":")[0])
        except Exception as exc:  # any failure inside a user's module means the same here
            raise ConfigError(f"plug-in {name} ({ENV} or a {ENTRY_POINTS} entry point): cannot import it "
                              f"({type(exc).__name__}: {first_line(str(exc))})") from None
    return tuple(names)
