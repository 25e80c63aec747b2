"""One seam for every restorer: a model's kind (:mod:`.kinds`) builds it.

A registry name brings its spec (and kind); a ``--weights`` file gets the kind that
recognises its bytes, so a CodeFormer ``.pth`` is named for what it is, not run as a
broken GPEN. Runtimes are imported only when their kind is built, so onnxruntime loads
only for ONNX models.
"""

from __future__ import annotations

import os
from pathlib import Path

from vidgpen.errors import ConfigError, WeightsError
from vidgpen.models.runtime.kinds import KINDS as _KINDS
from vidgpen.models.runtime.kinds import RestorerKind, RunOptions
from vidgpen.models.runtime.restorer import Restorer
from vidgpen.weights import registry
from vidgpen.weights.spec import ModelSpec


def restorer_kind(spec: ModelSpec) -> RestorerKind:
    """The registered kind of ``spec``; a spec of another kind (a detector's file) is refused."""
    if spec.kind not in _KINDS:
        raise ConfigError(f"{spec.name}: a {spec.kind} file, not a face restorer (restorer kinds: {', '.join(_KINDS)})")
    return _KINDS[spec.kind]


def spec_of(source: str | os.PathLike[str]) -> ModelSpec:
    """The registry's spec for a name; for a file, one of the kind that recognises its content."""
    path = Path(source).expanduser()
    if str(source) in registry.REGISTRY and not path.is_file():  # an existing file always wins
        return registry.entry(str(source))
    kind = _kind_of_file(path) if path.is_file() else _kind_by_name(path)
    return ModelSpec(name=str(source), kind=kind, filename=path.name, sources=(), description="a local file")


def _kind_of_file(path: Path) -> str:
    found = next((kind.name for kind in _KINDS.values() if kind.recognises(path)), None)
    if found is None:
        raise WeightsError(f"{path}: {_what_it_is(path)} (restorer kinds: {', '.join(_KINDS)}; "
                           "README: How to add a restorer)")
    return found


def _kind_by_name(path: Path) -> str:
    """A path that is not (yet) a file: named by its suffix, so the error says what was looked for."""
    return "gpen-onnx" if path.suffix.lower() == ".onnx" else "gpen-torch"


def _what_it_is(path: Path) -> str:
    from vidgpen.models.network.loader import torch_file_keys

    if path.stat().st_size == 0:
        return "empty file"
    keys = torch_file_keys(path)
    if keys is None:
        return "not a torch file nor an ONNX graph"
    return f"a torch checkpoint of another network than GPEN (tensors {', '.join(keys[:3]) or 'none'}…)"


def load_restorer(source: str | os.PathLike[str] | ModelSpec, device: str | None = None, dtype: str | None = None,
                  batch_size: int = 8, compile: bool = False) -> Restorer:
    """The restorer for ``--weights``/``--model``: the builder of the model's kind on its file."""
    spec = source if isinstance(source, ModelSpec) else spec_of(source)
    kind = restorer_kind(spec)
    if compile and not kind.compiles:  # before any download: the settings cannot work
        raise ConfigError(f"compile: {spec.name} is a {spec.kind} model; torch.compile applies to "
                          f"{', '.join(k.name for k in _KINDS.values() if k.compiles)} models")
    return kind.build(spec, registry.resolve_source(spec.name), RunOptions(device, dtype, batch_size, compile))


def sides(spec: ModelSpec, path: Path | None) -> tuple[int, int]:
    """(input, output) face side of a model before it is loaded: read from its file when its kind
    can (cheap: shapes only), else what the spec declares."""
    kind = restorer_kind(spec)
    if path is not None and kind.sides is not None:
        return kind.sides(spec, path)
    if spec.in_size is None:
        raise WeightsError(f"{spec.name}: its face side is only known once loaded")
    return spec.in_size, spec.out_size or spec.in_size


def describe_layout(spec: ModelSpec, path: Path) -> str:
    """What the file holds, checked against its kind; raises :class:`WeightsError` when it is not
    what the kind needs."""
    kind = _KINDS.get(spec.kind)
    if kind is None or kind.describe is None:
        return f"a {spec.kind} file"
    return kind.describe(spec, path)
