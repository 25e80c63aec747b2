"""Known models as data: what each file is, where it comes from, how it is checked and run.

vidgpen cannot ship weights, so each :class:`ModelSpec` names the upstream file. The cache
is ``$VIDGPEN_HOME``, else ``$XDG_CACHE_HOME/vidgpen``, else ``~/.cache/vidgpen``; weights
live in its ``weights/`` folder under the entry's filename (facexlib's own filenames for
its models, because facexlib looks them up by filename in a ``model_rootpath``).

A spec's ``sources`` are mirrors of the same bytes, tried in order (see
:mod:`vidgpen.weights.download`). A ``sha256`` is pinned only where its publisher states
it: VisoMaster lists sha256 for its GPEN ONNX exports (``app/processors/models_data.py``,
checked by its ``integrity_checker.py``). The GPEN authors, ModelScope and FaceFusion
(CRC32 ``.hash`` files only) publish none, so those files are checked by layout instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from vidgpen.errors import WeightsError
from vidgpen.weights.download import fetch, mismatch, sha256_of
from vidgpen.weights.spec import FILE_KIND, ModelSpec

_GPEN_HOST = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models"
# ModelScope moved the GPEN repos from damo/ to iic/; the old API path is kept as the last resort.
_MS_IIC = "https://www.modelscope.cn/models/iic/cv_gpen_image-portrait-enhancement-hires/resolve/master"
_MS_IIC_API = "https://modelscope.cn/api/v1/models/iic/cv_gpen_image-portrait-enhancement-hires/repo?Revision=master&FilePath="
_MS_DAMO_API = "https://modelscope.cn/api/v1/models/damo/cv_gpen_image-portrait-enhancement-hires/repo?Revision=master&FilePath="
_VISOMASTER = "https://github.com/visomaster/visomaster-assets/releases/download"
_FACEFUSION = "https://github.com/facefusion/facefusion-assets/releases/download/models-3.0.0"
_FACEXLIB = "https://github.com/xinntao/facexlib/releases/download"

_GPEN_LICENCE = "GPEN authors (© Alibaba 2021): academic and non-commercial use only"
_EXPORT_LICENCE = "ONNX export of the GPEN authors' weights: GPEN's terms apply"

# sha256 exactly as VisoMaster's models_data.py lists them (commit 017af1a of visomaster/VisoMaster).
_VISOMASTER_SHA256 = {
    256: "aa5bd3ab238640a378c59e4a560f7a7150627944cf2129e6311ae4720e833271",
    512: "0960f836488735444d508b588e44fb5dfd19c68fde9163ad7878aa24d1d5115e",
    1024: "cec8892093d7b99828acde97bf231fb0964d3fb11b43f3b0951e36ef1e192a3e",
    2048: "d0229ff43f979c360bd19daa9cd0ce893722d59f41a41822b9223ebbe4f89b3e",
}
_MODELSCOPE_FILES = {1024: "pytorch_model.pt", 2048: "pytorch_model-2048.pt"}


def _gpen_torch(side: int) -> ModelSpec:
    if side in _MODELSCOPE_FILES:
        file = _MODELSCOPE_FILES[side]
        sources = (f"{_MS_IIC}/{file}", f"{_MS_IIC_API}{file}", f"{_MS_DAMO_API}{file}")
        filename, host = f"gpen-bfr-{side}.pt", "ModelScope iic/, formerly damo/"
    else:
        sources, filename, host = (f"{_GPEN_HOST}/GPEN-BFR-{side}.pth",), f"GPEN-BFR-{side}.pth", "GPEN authors"
    return ModelSpec(
        name=f"gpen-bfr-{side}", kind="gpen-torch", filename=filename, sources=sources, in_size=side, out_size=side,
        template="gpen", licence=_GPEN_LICENCE,
        description=f"GPEN blind face restoration, {side}×{side} faces ({host})",
    )


def _gpen_visomaster(side: int) -> ModelSpec:
    release = f"GPEN-BFR-{side}.onnx"
    return ModelSpec(
        name=f"gpen-bfr-{side}-onnx", kind="gpen-onnx", filename=f"visomaster-{release}",
        sources=(f"{_VISOMASTER}/v1.0.0/{release}", f"{_VISOMASTER}/v0.1.0/{release}"),
        in_size=side, out_size=side, template="ffhq", input_name="input", output_name="output",
        sha256=_VISOMASTER_SHA256[side], licence=_EXPORT_LICENCE,
        description=f"GPEN-BFR-{side} as ONNX, batch 1 (VisoMaster assets)",
    )


def _gpen_facefusion(side: int) -> ModelSpec:
    return ModelSpec(
        name=f"gpen-bfr-{side}-facefusion", kind="gpen-onnx", filename=f"facefusion-gpen_bfr_{side}.onnx",
        sources=(f"{_FACEFUSION}/gpen_bfr_{side}.onnx",), in_size=side, out_size=side, template="ffhq",
        input_name="input", licence=_EXPORT_LICENCE,
        description=f"GPEN-BFR-{side} as ONNX (FaceFusion models-3.0.0)",
    )


def _facexlib(name: str, release: str, filename: str, description: str) -> ModelSpec:
    return ModelSpec(name=name, kind=FILE_KIND, filename=filename, sources=(f"{_FACEXLIB}/{release}/{filename}",),
                     description=description, licence="facexlib (MIT)")


SIDES = (256, 512, 1024, 2048)
AUTO_MODELS = tuple(f"gpen-bfr-{side}" for side in SIDES)  # what --model auto chooses among

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        *(_gpen_torch(side) for side in SIDES),
        *(_gpen_visomaster(side) for side in SIDES),
        *(_gpen_facefusion(side) for side in SIDES[1:]),  # its 256 uses an ArcFace crop vidgpen has no template for
        _facexlib("retinaface-resnet50", "v0.1.0", "detection_Resnet50_Final.pth",
                  "facexlib RetinaFace ResNet-50 face detector"),
        _facexlib("retinaface-mobilenet0.25", "v0.1.0", "detection_mobilenet0.25_Final.pth",
                  "facexlib RetinaFace MobileNet-0.25 face detector"),
        _facexlib("parsenet", "v0.2.2", "parsing_parsenet.pth", "facexlib ParseNet face parsing (paste-back masks)"),
    )
}


def register_model(spec: ModelSpec) -> None:
    """Add (or replace) a known model: a plug-in's weights by name, for ``--model NAME`` and
    ``--auto-models`` (README, *How to add a restorer*)."""
    REGISTRY[spec.name] = spec


def cache_dir() -> Path:
    """The vidgpen cache folder (not created)."""
    if home := os.environ.get("VIDGPEN_HOME"):
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "vidgpen"


def weights_dir() -> Path:
    """Folder holding every registry file under its entry's filename (facexlib's model_rootpath)."""
    return cache_dir() / "weights"


def entry(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise WeightsError(f"{name}: unknown model name (known: {', '.join(REGISTRY)})") from None


def path_of(name: str) -> Path:
    """Where ``name`` is (or would be) cached."""
    return weights_dir() / entry(name).filename


def is_cached(name: str) -> bool:
    return path_of(name).is_file()


def resolve_source(source: str | os.PathLike[str], download: bool = True) -> Path:
    """An existing file wins (so ``--weights PATH`` always does); else a registry name."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if str(source) in REGISTRY:
        return resolve(str(source), download=download)
    if path.exists():
        raise WeightsError(f"{path}: not a file")
    if path.suffix.lower() == ".onnx":
        raise WeightsError(f"{path}: no such ONNX file")
    raise WeightsError(f"{source}: no such file, and not a known model name (known: {', '.join(REGISTRY)})")


def _missing_message(spec: ModelSpec, path: Path, why: str) -> str:
    return f"{path}: {spec.name} weights missing ({why}); download {spec.sources[0]} and save it as {path}"


def resolve(name: str, download: bool = True) -> Path:
    """Path of the cached file for ``name``, downloading it first if allowed.

    Only the size is checked here (cheap, catches partial copies); ``verify`` hashes.
    """
    spec = entry(name)
    path = path_of(name)
    if path.is_file():
        refuse_cached(spec, path, mismatch(spec, path.stat().st_size))
        return path
    if not download:
        raise WeightsError(_missing_message(spec, path, "not in the cache"))
    return fetch(spec, path)


def refuse_cached(spec: ModelSpec, path: Path, problem: str | None) -> None:
    if problem:
        raise WeightsError(f"{path}: {problem}; run `vidgpen models download {spec.name} --force`")


def download(name: str, force: bool = False) -> Path:
    """Fetch ``name`` into the cache (kept as is when already there, unless ``force``)."""
    path = path_of(name)
    if path.is_file() and not force:
        return path
    return fetch(entry(name), path)


def verify(name: str) -> str:
    """Check the cached file's size and sha256 (where known); returns its sha256."""
    spec = entry(name)
    path = resolve(name, download=False)
    digest = sha256_of(path)
    refuse_cached(spec, path, mismatch(spec, path.stat().st_size, digest))
    return digest
