"""The shape of the package: no import cycles, stage packages never import the CLI, and
``import vidgpen.config`` loads neither PyAV nor OpenCV (so ``--help`` and config checks
stay fast)."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import REPO
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

PACKAGE = REPO / "vidgpen"
STAGE_PACKAGES = ("vidgpen.io", "vidgpen.faces", "vidgpen.models")


def _module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """Modules imported anywhere (functions too), except under ``if TYPE_CHECKING:``;
    ``from package import submodule`` depends on the submodule."""
    found: set[str] = set()
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
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
        imported = _runtime_imports(ast.parse(path.read_text(encoding="utf-8")), set(paths))
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


def test_stage_packages_never_import_the_cli():
    graph = _import_graph()
    offending = {name: sorted(d for d in deps if d.startswith("vidgpen.cli"))
                 for name, deps in graph.items() if name.startswith(STAGE_PACKAGES)}
    assert {k: v for k, v in offending.items() if v} == {}


def test_config_imports_no_media_or_vision_library():
    code = "import sys, vidgpen.config; print(sorted(m for m in ('av', 'cv2', 'torch') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
