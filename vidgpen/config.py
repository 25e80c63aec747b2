"""Restore settings: one dataclass, filled from built-in defaults < preset < config file < flags.

Presets are TOML files in the repository's ``presets/`` folder (or any path); a config
file has the same keys. Keeping every knob in one flat dataclass means the CLI, the
Python API, presets and the batch manifest's settings hash all agree on names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from vidgpen.errors import ConfigError
from vidgpen.faces.names import MASKS, TEMPLATES, detector_names
from vidgpen.io.names import DECODERS, DEINTERLACE_RATES, DEINTERLACERS, ENCODER_BACKENDS


def _presets_dir() -> Path:
    """``presets/`` beside the package in a checkout (editable install), else the copy a
    wheel installs under ``<prefix>/share/vidgpen/presets``."""
    checkout = Path(__file__).resolve().parent.parent / "presets"
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "vidgpen" / "presets"


PRESETS_DIR = _presets_dir()

# The stages own their option names; config only checks values against them.
DEINTERLACE = ("off", *DEINTERLACERS)
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")
_SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """A memory size as users write it, in bytes: "512M", "2G", "1.5GB", "300MiB", "1000000"."""
    stripped = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = stripped[-1:] if stripped[-1:] in _SIZE_UNITS else ""
    number = float(stripped.removesuffix(unit)) if unit else float(stripped)
    if number < 0:
        raise ValueError(f"{text!r} is negative")
    return int(number * _SIZE_UNITS[unit])


@dataclass
class RestoreConfig:
    """Every setting of a restore run. Field comments are the user-facing help."""

    model: str = "gpen-bfr-2048"  # registry name, or "auto": per track, the GPEN with the smallest output >= auto_factor x face size
    weights: str | None = None  # path to a GPEN checkpoint (official layout) or a .onnx export; wins over model
    auto_models: str = ""  # with model="auto": comma-separated registry names to choose among (default: gpen-bfr-256,512,1024,2048)
    auto_factor: float = 2.0  # with model="auto": model output side >= this x the face's size on screen
    detector: str = "retinaface-onnx"  # retinaface-onnx | retinaface | retinaface-mobilenet | dlib | a plug-in's (README, How to add a detector)
    detect_every: int = 1  # run the detector every N frames; tracking fills the frames between
    detect_max_side: int = 1280  # detect on a copy downscaled so its longer side is at most this
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto (fp16 on CUDA, bf16 on CPUs with AMX/AVX512-BF16, else fp32) | float32 | float16 | bfloat16
    batch_size: int = 8  # faces per GPEN forward, gathered across frames
    compile: bool = False  # torch.compile GPEN: CUDA graphs + fused kernels on GPUs; first batch compiles (slow)
    faces: str = "all"  # all | largest | comma-separated track ids (1,3) or person ids (p1,p3; README, Persons)
    faces_of: list[str] = field(default_factory=list)  # restore only these people: photos, or folders of photos (one person each)
    skip_faces_of: list[str] = field(default_factory=list)  # leave these people alone: photos, or folders of photos
    persons: str | None = None  # persons file written by `vidgpen inspect --save-persons`: its person ids and embeddings
    min_face: int = 20  # ignore faces smaller than this (px, on screen)
    strength: float = 1.0  # 0 = original, 1 = fully restored
    smooth: int = 12  # landmark smoothing lookahead in frames (0 = raw per-frame landmarks; 12: bench/landmarks.py, README)
    register: bool = False  # refine each face's alignment by registering its crop to its track's recent crops: steadier on a rigid face, less accurate on a talking one (README, Faces across frames)
    max_missed: int = 10  # frames a track survives without a detection
    template: str = "gpen"  # alignment template for --weights files: gpen | ffhq (registry models bring their own)
    mask: str = "feather"  # feather | parsing (facexlib ParseNet, needs vidgpen[facexlib])
    color_match: bool = False  # match the restored face's Lab mean/std to the original
    deflicker: float = 0.75  # 0..1: fuse each face with its track's earlier frames inside GPEN; 0 = per frame (0.75: README, Deflicker)
    deflicker_memory: str = "auto"  # the fusion states' budget, e.g. 2G; auto: a quarter of the device's free memory
    grain: float = 0.0  # 0..1: put this share of the original's film grain back on restored faces
    decoder: str = "pyav"  # pyav | decord
    deinterlace: str = "off"  # off | auto (by the field structure idet measures) | bwdif | yadif | ivtc (inverse telecine)
    deinterlace_rate: str = "frame"  # frame (one frame per frame) | field (one per field: 50p/59.94p from 50i/60i, ~2x GPEN time)
    codec: str = "libx264"
    crf: int = 18
    encoder_preset: str = "medium"
    pix_fmt: str = "auto"  # auto: yuv420p (10-bit when the source is) for delivery codecs, the source's for ffv1/prores/dnxhd
    encoder_backend: str = "pyav"  # pyav (PyAV's bundled FFmpeg, in-process) | ffmpeg (an external ffmpeg binary)
    ffmpeg: str | None = None  # the binary for encoder_backend = "ffmpeg" (default: $VIDGPEN_FFMPEG, then PATH)
    ffmpeg_args: str = ""  # extra ffmpeg output options for encoder_backend = "ffmpeg", e.g. "-tune film"
    start: float | None = None  # seconds
    end: float | None = None  # seconds
    queue_size: int = 16  # frames held between two stages

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str = "settings") -> None:
        """Raise ConfigError naming the key and where it came from."""

        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"{source}: {key}: {why}")

        def choice(key: str, options: tuple[str, ...]) -> None:
            if getattr(self, key) not in options:
                raise bad(key, f"{getattr(self, key)!r} is not one of {', '.join(options)}")

        choice("detector", detector_names())
        choice("template", tuple(TEMPLATES))
        choice("mask", MASKS)
        choice("deinterlace", DEINTERLACE)
        choice("deinterlace_rate", DEINTERLACE_RATES)
        choice("dtype", DTYPES)
        choice("decoder", DECODERS)
        choice("encoder_backend", ENCODER_BACKENDS)
        try:
            shlex.split(self.ffmpeg_args)
        except ValueError as exc:
            raise bad("ffmpeg_args", f"{self.ffmpeg_args!r} cannot be split into options ({exc})") from None
        if not (self.device in DEVICES or self.device.startswith("cuda:")):
            raise bad("device", f"{self.device!r} is not one of {', '.join(DEVICES)} or cuda:N")
        for key in ("strength", "grain", "deflicker"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise bad(key, f"{getattr(self, key)} is not within 0..1")
        for key in ("detect_every", "batch_size", "queue_size", "detect_max_side"):
            if getattr(self, key) < 1:
                raise bad(key, f"{getattr(self, key)} must be at least 1")
        for key in ("smooth", "max_missed", "min_face", "crf"):
            if getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} must not be negative")
        if self.deflicker_memory != "auto":
            try:
                parse_size(self.deflicker_memory)
            except ValueError:
                raise bad("deflicker_memory", f"{self.deflicker_memory!r} is not auto or a size like 512M or 2G") from None
        if self.auto_factor <= 0:
            raise bad("auto_factor", "must be positive")
        if self.faces not in ("all", "largest"):
            try:
                self.face_ids()
            except ValueError:
                raise bad("faces", f"{self.faces!r} is not all, largest, comma-separated track ids (1,3) or "
                          "person ids (p1,p3)") from None
        if (self.faces_of or self.skip_faces_of) and self.faces != "all":
            raise bad("faces", f"{self.faces!r} and faces_of / skip_faces_of both select faces; give one of them")
        for key in ("start", "end"):
            if getattr(self, key) is not None and getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} must not be negative")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise bad("end", f"{self.end} is not after start {self.start}")

    @property
    def deinterlace_filter(self) -> str | None:
        """What the reader takes: None for "off", else the filter mode."""
        return None if self.deinterlace == "off" else self.deinterlace

    @property
    def encoding(self) -> dict[str, Any]:
        """The encoder arguments of either writer (vidgpen.io.backends.open_writer)."""
        return {"codec": self.codec, "crf": self.crf, "preset": self.encoder_preset, "pix_fmt": self.pix_fmt,
                "backend": self.encoder_backend, "ffmpeg": self.ffmpeg,
                "ffmpeg_args": tuple(shlex.split(self.ffmpeg_args))}

    def face_ids(self) -> list[int | str]:
        """Track ids (ints) or person ids ("p1"), never both; ValueError when neither."""
        parts = [part.strip() for part in self.faces.split(",") if part.strip()]
        if parts and all(p[:1] == "p" and p[1:].isdigit() for p in parts):
            return parts
        return [int(part) for part in parts]

    def person_ids(self) -> list[str]:
        """The person ids ``faces`` names (empty when it names tracks, all or largest)."""
        return [] if self.faces in ("all", "largest") else [i for i in self.face_ids() if isinstance(i, str)]

    def face_selection(self) -> str | list[int]:
        """What the face analyzer takes: "all", "largest" or a list of track ids ("all" when
        ``faces`` names persons: those the persons stage selects)."""
        if self.faces in ("all", "largest"):
            return self.faces
        if self.person_ids():
            return "all"
        return [int(i) for i in self.face_ids()]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def settings_hash(self) -> str:
        """Hash of what changes the output (not queue sizes), for the batch manifest."""
        relevant = {k: v for k, v in self.to_dict().items() if k not in ("queue_size", "device", "compile")}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


_FIELD_TYPES = get_type_hints(RestoreConfig)
_META_KEYS = ("description",)


def _default(f: dataclasses.Field) -> Any:
    """A field's default, also for the list fields (``default_factory``)."""
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _coerce(key: str, value: Any, source: str) -> Any:
    """Check a TOML/CLI value against the field's type, allowing ints for floats."""
    expected = _FIELD_TYPES[key]
    allowed = get_args(expected) if get_origin(expected) is Union else (expected,)
    if value is None and type(None) in allowed:
        return None
    if get_origin(expected) is list:  # a list of paths; one string is a list of one
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list) and all(isinstance(v, str) for v in items):
            return list(items)
        raise ConfigError(f"{source}: {key}: expected a path or a list of paths, got {value!r}")
    for kind in allowed:
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is not type(None) and isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
    names = " or ".join(k.__name__ for k in allowed if k is not type(None))
    raise ConfigError(f"{source}: {key}: expected {names}, got {value!r}")


def read_toml(path: Path) -> dict[str, Any]:
    """Read a preset/config file, checking every key against RestoreConfig."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    known = {f.name for f in fields(RestoreConfig)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in _META_KEYS:
            continue
        if key not in known:
            raise ConfigError(f"{path}: unknown key {key!r}")
        values[key] = _coerce(key, value, str(path))
    return values


def preset_path(name_or_path: str) -> Path:
    """A preset by name (``film``) from presets/, or any TOML path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise ConfigError(f"{candidate}: no such preset file")
        return candidate
    path = PRESETS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ConfigError(f"{name_or_path}: unknown preset (known: {', '.join(list_presets()) or 'none'})")
    return path


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def preset_description(name: str) -> str:
    data = tomllib.loads(preset_path(name).read_text(encoding="utf-8"))
    return str(data.get("description", ""))


@dataclass
class ConfigLayers:
    """The sources a run's settings are merged from, lowest precedence first."""

    preset: str | None = None
    config_file: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def build_config(layers: ConfigLayers) -> RestoreConfig:
    """Merge defaults < preset < config file < overrides (flags / API keywords).

    Each layer is checked as it is applied, so an error names the file (or "options")
    that brought the bad key or value.
    """
    steps: list[tuple[str, dict[str, Any]]] = []
    if layers.preset:
        path = preset_path(layers.preset)
        steps.append((str(path), read_toml(path)))
    if layers.config_file:
        steps.append((layers.config_file, read_toml(Path(layers.config_file))))
    known = {f.name for f in fields(RestoreConfig)}
    overrides: dict[str, Any] = {}
    for key, value in layers.overrides.items():
        if key not in known:
            raise ConfigError(f"options: unknown option {key!r}")
        overrides[key] = _coerce(key, value, "options")
    steps.append(("options", overrides))

    merged: dict[str, Any] = {}
    for source, values in steps:
        merged.update(values)
        config = RestoreConfig.__new__(RestoreConfig)
        for f in fields(RestoreConfig):
            setattr(config, f.name, merged[f.name] if f.name in merged else _default(f))
        config.validate(source)
    return config
