"""``vidgpen models list|path|download|verify|export-onnx``: manage the weights cache, export to ONNX."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from vidgpen.errors import ConfigError
from vidgpen.weights import registry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", required=True, parser_class=type(parser))
    sub.add_parser("list", help="known models, whether they are cached, and their source URLs")
    path = sub.add_parser("path", help="print where a model's file is (or must be put) in the cache")
    path.add_argument("name", choices=list(registry.REGISTRY), metavar="NAME")
    download = sub.add_parser("download", help="download a model into the cache")
    download.add_argument("name", choices=list(registry.REGISTRY), metavar="NAME")
    download.add_argument("--force", action="store_true", help="download again even if the file is cached")
    verify = sub.add_parser("verify", help="check a cached model (size, sha256, GPEN layout) or any checkpoint file")
    verify.add_argument("name", metavar="NAME|PATH")
    export = sub.add_parser(
        "export-onnx", help="export a GPEN to ONNX (dynamic batch) for `restore --weights FILE.onnx`"
    )
    export.add_argument("name", metavar="NAME|PATH")
    export.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    export.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the lowest torch's exporter writes)")


def run(args: argparse.Namespace) -> int:
    if args.models_command == "list":
        Console().print(_table())
    elif args.models_command == "path":
        print(registry.path_of(args.name))
    elif args.models_command == "download":
        print(registry.download(args.name, force=args.force))
    elif args.models_command == "export-onnx":
        from vidgpen.models.network.onnx_export import DEFAULT_OPSET, export_onnx  # torch: only when exporting
        from vidgpen.models.runtime.factory import restorer_kind, spec_of

        spec = spec_of(args.name)
        if not restorer_kind(spec).exports_onnx:
            raise ConfigError(f"{args.name}: a {spec.kind} model; export-onnx takes GPEN checkpoints")
        print(export_onnx(args.name, args.output, opset=args.opset or DEFAULT_OPSET))
    else:
        _verify(args.name)
    return 0


def _table() -> Table:
    table = Table("name", "kind", "sides", "template", "cached", title=f"weights in {registry.weights_dir()}")
    table.add_column("sources (tried in order)", overflow="fold")
    for name, spec in registry.REGISTRY.items():
        path = registry.path_of(name)
        cached = f"yes, {_human(path.stat().st_size)}" if path.is_file() else "no"
        sides = f"{spec.in_size}→{spec.out_size}" if spec.in_size else "-"
        pinned = "sha256 pinned" if spec.sha256 else "no sha256 published"
        table.add_row(name, spec.kind, sides, spec.template or "-", cached, "\n".join((*spec.sources, pinned)))
    return table


def _verify(name: str) -> None:
    """A registry name is hashed (matched where a sha256 is pinned); every restorer's layout is checked
    (what vouches for a file no publisher states a hash for); a path is layout-checked."""
    from vidgpen.models.runtime.factory import describe_layout, spec_of

    spec = spec_of(name)
    path = registry.resolve_source(name, download=False)
    if spec.sources:
        digest = registry.verify(name)
        print(f"{path}: sha256 {digest} " + ("matches" if spec.sha256 else "(no published sha256 to compare)"))
    if spec.is_restorer:
        print(f"{path}: {describe_layout(spec, path)}")


def _human(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
