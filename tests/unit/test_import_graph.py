"""The shared package's import graph has no cycle (a cycle hides calls from the type checker)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "lib"


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in LIB.rglob("*.py"):
        parts = path.relative_to(LIB).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imported(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in modules:
                    yield submodule
                elif target in modules:
                    yield target


def import_graph() -> dict[str, set[str]]:
    """Every import (module level or in a function) between the package's own modules."""
    modules = _modules()
    return {name: set(_imported(name, path, modules)) - {name} for name, path in modules.items()}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others."""
    reach = {node: _reachable(graph, node) for node in graph}
    groups: list[list[str]] = []
    grouped: set[str] = set()
    for node in sorted(graph):
        if node in grouped or node not in reach[node]:
            continue
        group = sorted(other for other in reach[node] if node in reach[other])
        grouped.update(group)
        groups.append(group)
    return groups


def test_the_finder_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "database_backup.interface.provider" in graph  # the walk found the package
    assert cycles(graph) == []
