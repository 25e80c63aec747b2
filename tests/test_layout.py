"""The shape of the package: no import cycles (``TYPE_CHECKING`` imports counted), every
package imports only the layers below it, no module over 400 lines nor function over 60,
and ``import vidgpen.config`` loads neither PyAV nor OpenCV (so ``--help`` and config
checks stay fast)."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import REPO
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

PACKAGE = REPO / "vidgpen"
# Each top-level package or module of vidgpen and what it may import (besides itself). The
# stages (io, faces, models) know nothing of planning, the pipeline, the API or the CLI;
# weights are below both faces and models, so neither stage depends on the other.
_BASE = {"errors", "stats"}
ALLOWED = {
    "errors": set(), "stats": set(), "interrupt": {"errors"}, "plugins": {"errors"},
    "weights": _BASE, "io": _BASE,
    "faces": _BASE | {"io", "weights"},
    "models": _BASE | {"weights"},
    "config": _BASE | {"faces", "io"},  # their option names only (faces.names, io.names)
    "plan": _BASE | {"config", "io", "faces", "models", "weights"},
    "pipeline": _BASE | {"config", "io", "faces", "models", "weights", "plan", "stats"},
    "cluster": _BASE | {"config", "io", "models", "plan", "pipeline"},
    "api": _BASE | {"config", "io", "models", "plan", "pipeline", "plugins", "cluster"},
    "batch": _BASE | {"config", "io", "api", "plan", "cluster"},
    "cli": _BASE | {"config", "io", "faces", "models", "weights", "plan", "pipeline", "api", "batch", "interrupt", "plugins",
                    "ui"},  # only cli/ui.py, to start it (lazily: Gradio is not for the other commands)
    # The web UI is a front end beside the CLI: it parses its settings with the CLI's parser and
    # runs through the API, the batch driver and inspect's analysis.
    "ui": _BASE | {"config", "io", "faces", "models", "weights", "plan", "pipeline", "api", "batch", "cli"},
    "__main__": {"cli"}, "": {"api", "config", "pipeline"},  # "": vidgpen/__init__.py
}


def _module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """Modules imported anywhere (functions and ``if TYPE_CHECKING:`` too: a type-only import
    is still a dependency of the code's meaning); ``from package import submodule`` depends on
    the submodule."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vidgpen"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("vidgpen"))
    return found


def _import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        imported = _imports(ast.parse(path.read_text(encoding="utf-8")), set(paths))
        graph[name] = {m for m in imported if m in paths and m != name}
    return graph


def test_no_import_cycles():
    graph = _import_graph()
    names = sorted(graph)
    index = {name: i for i, name in enumerate(names)}
    rows = [index[a] for a, deps in graph.items() for _ in deps]
    cols = [index[b] for deps in graph.values() for b in deps]
    matrix = csr_matrix(([1] * len(rows), (rows, cols)), shape=(len(names), len(names)))
    count, labels = connected_components(matrix, directed=True, connection="strong")
    cycles = [[n for n in names if labels[index[n]] == c] for c in range(count)]
    assert [c for c in cycles if len(c) > 1] == []


def _layer(module: str) -> str:
    """``vidgpen.faces.track`` → ``faces``; ``vidgpen`` itself → ``""``."""
    return module.split(".")[1] if "." in module else ""


def test_every_package_imports_only_the_layers_below_it():
    graph = _import_graph()
    assert {_layer(m) for m in graph} <= set(ALLOWED), "a new top-level package needs its row in ALLOWED"
    offending = {name: sorted(d for d in deps if _layer(d) != _layer(name) and _layer(d) not in ALLOWED[_layer(name)])
                 for name, deps in graph.items()}
    assert {k: v for k, v in offending.items() if v} == {}


def test_no_module_over_400_lines_nor_function_over_60():
    long_modules, long_functions = [], []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 400:
            long_modules.append(_module_name(path))
        long_functions += [f"{_module_name(path)}.{node.name}" for node in ast.walk(ast.parse(text))
                           if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                           and node.end_lineno - node.lineno >= 60]
    assert (long_modules, long_functions) == ([], [])


def test_config_imports_no_media_or_vision_library():
    code = "import sys, vidgpen.config; print(sorted(m for m in ('av', 'cv2', 'torch') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
