"""The code's shape: no import circle between modules, none between the package's folders
(a folder imports nothing that imports it back), and no function over 60 lines."""

import ast
from pathlib import Path

from conftest import REPO_ROOT

CODE = REPO_ROOT / "code"
PACKAGE = CODE / "ecgsweep"
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(CODE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ecgsweep module ``path`` imports, at its top or inside a function, absolute."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "ecgsweep"}


def _graph(room) -> dict[str, set[str]]:
    """Who imports whom, each module named by ``room`` (its module, or its folder)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {room(t) for t in _imports(path) if t in modules}
        graph.setdefault(room(name), set()).update(targets - {room(name)})
    return graph


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def _folder(module: str) -> str:
    """ecgsweep.data.synth -> ecgsweep.data; a module of the package's top is its own."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else module


def test_no_module_imports_one_that_imports_it_back():
    assert _circle(_graph(lambda m: m)) is None


def test_no_folder_of_the_package_imports_one_that_imports_it_back():
    assert _circle(_graph(_folder)) is None


def test_no_function_is_over_60_lines():
    long = [f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name} "
            f"({node.end_lineno - node.lineno + 1} lines)"
            for path in CODE.rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
