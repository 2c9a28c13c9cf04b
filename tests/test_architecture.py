"""The package's layering: imports only point down, there is no import cycle, and imports inside
functions are kept for the command line's fast start-up and for heavy optional dependencies.

The layers, bottom first, are listed in :data:`LAYERS`; a module may import from its own layer's
package and from any layer below. Adding a package means placing it here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "specfit"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("specfit.version", "specfit.errors", "specfit.events", "specfit.util"),
    ("specfit.metrics", "specfit.figures"),
    ("specfit.operators",),
    ("specfit.signals",),
    ("specfit.encodings",),
    ("specfit.models",),
    ("specfit.fresh",),
    ("specfit.tangent",),
    ("specfit.training",),
    ("specfit.tasks",),
    ("specfit.kinds",),
    ("specfit.config",),
    ("specfit.runs",),
    ("specfit.report",),
    ("specfit.fitting",),
    ("specfit.bench",),
    ("specfit.api",),
    ("specfit",),
    ("specfit.cli", "specfit.__main__"),
)

# Where a function may import a specfit module: the command line defers the library (and PyTorch)
# until a command runs, so that ``specfit --help`` answers at once; the package's ``__getattr__``
# resolves the public names lazily for the same reason.
DEFERRED_IMPORTS_ALLOWED = ("specfit.cli", "specfit")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    best, depth = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    assert best is not None, f"{module} is in no layer: place it in LAYERS"
    return best


def _imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """``(imported specfit module, line, inside a function)`` for every import in ``path``."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    in_function = {id(node) for function in functions for node in ast.walk(function)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
            targets = [name if name in MODULES else base for name in names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            if target in MODULES and target != module:
                found.append((target, node.lineno, id(node) in in_function))
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_imports_point_down() -> None:
    upward = [f"{module}:{line} imports {target}" for module, imports in GRAPH.items()
              for target, line, _ in imports if _layer(target) > _layer(module)]
    assert upward == []


def test_no_import_cycle() -> None:
    edges = defaultdict(set)
    for module, imports in GRAPH.items():
        edges[module].update(target for target, _, _ in imports)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(target):], target]))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])


def test_imports_inside_functions_only_where_deferred_on_purpose() -> None:
    deferred = [f"{module}:{line} imports {target}" for module, imports in GRAPH.items()
                for target, line, inside in imports
                if inside and _layer(module) not in {_layer(m) for m in DEFERRED_IMPORTS_ALLOWED}]
    assert deferred == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The graph reader finds absolute, relative and in-function imports (so the checks above
    could fail)."""
    module = tmp_path / "probe.py"
    module.write_text("import specfit.cli.main\nfrom specfit.runs import folder\n"
                      "def f():\n    from specfit.fitting.pipeline import plan_fit\n")
    found = _imports("specfit.signals.probe", module)
    assert ("specfit.cli.main", 1, False) in found
    assert ("specfit.runs.folder", 2, False) in found
    assert ("specfit.fitting.pipeline", 4, True) in found
