"""``vidgpen models list|path|download|verify|export-onnx``: manage the weights cache, export to ONNX."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from vidgpen.models import registry


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
        from vidgpen.models.onnx_export import DEFAULT_OPSET, export_onnx  # torch: only when exporting

        print(export_onnx(args.name, args.output, opset=args.opset or DEFAULT_OPSET))
    else:
        _verify(args.name)
    return 0


def _table() -> Table:
    table = Table("name", "size", "cached", title=f"weights in {registry.weights_dir()}")
    table.add_column("url", overflow="fold")
    for name, e in registry.REGISTRY.items():
        path = registry.path_of(name)
        cached = path.is_file()
        size = path.stat().st_size if cached else e.size
        table.add_row(name, _human(size), "yes" if cached else "no", e.url)
    return table


def _verify(name: str) -> None:
    """A registry name is hashed and, for GPEN entries, layout-checked; a path is layout-checked.

    The layout check matters because no sha256 is published for the GPEN files.
    """
    from vidgpen.models import loader
    if name in registry.REGISTRY:
        path = registry.resolve(name, download=False)
        digest = registry.verify(name)
        known = registry.entry(name).sha256
        print(f"{path}: sha256 {digest} " + ("matches" if known else "(no published sha256 to compare)"))
        if not name.startswith("gpen-"):
            return
    else:
        path = loader.resolve_source(name)  # not a registry name: must be an existing file
    config = loader.inspect_checkpoint(path)
    print(f"{path}: GPEN checkpoint, {config}")


def _human(size: int | None) -> str:
    return "?" if size is None else f"{size / 2**20:.1f} MB"
