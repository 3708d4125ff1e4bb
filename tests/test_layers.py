"""The house's arrows, pinned: no package imports a higher layer, no module takes part in an import cycle.

Every import counts, at module level, in functions and under ``TYPE_CHECKING`` alike (DESIGN.md, "The house").
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# core <- clients, mock, survey, report <- strategies <- engine <- suite, overhead <- cli, api
LAYERS: dict[str, int] = {
    "core": 0,
    "data": 0,
    "clients": 1,
    "mock": 1,
    "survey": 1,
    "report": 1,
    "strategies": 2,
    "engine": 3,
    "suite": 4,
    "overhead": 4,
    "cli": 5,
    "api": 5,
    "pytest_plugin": 5,
    "__init__": 5,
    "__main__": 5,
}
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py", "api.py", "pytest_plugin.py"}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in ("bench", "strategies"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def group(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "strategies":
        return "strategies"
    if parts[0] != "bench":
        return None
    return "__init__" if len(parts) == 1 else parts[1]


@functools.cache  # parsed once for the module's tests; each only reads it
def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = {target for target in imported(path) if target in known and group(target) is not None}
        edges[name] = targets - {name}
    return edges


def test_bench_holds_only_packages_and_its_face() -> None:
    loose = sorted(p.name for p in (ROOT / "bench").glob("*.py") if p.name not in TOP_LEVEL_MODULES)
    assert loose == []


def test_no_package_imports_a_higher_layer() -> None:
    upward = [
        f"{source} -> {target}"
        for source, targets in graph().items()
        for target in targets
        if (a := group(source)) != (b := group(target))
        and a is not None
        and b is not None
        and LAYERS[b] >= LAYERS[a]
        and not (LAYERS[a] == LAYERS[b] == 5)  # the package's face may use the CLI's and the API's pieces
    ]
    assert upward == []


def test_core_imports_nothing_of_ours_outside_core() -> None:
    outside = [
        f"{source} -> {target}"
        for source, targets in graph().items()
        if group(source) == "core"
        for target in targets
        if group(target) != "core"
    ]
    assert outside == []


def test_no_module_is_part_of_an_import_cycle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        on_stack.append(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = on_stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    assert cycles == []
