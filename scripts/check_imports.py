"""No import cycle between the modules of a package (part of `make lint`).

Builds the import graph of ``keeper/`` from the source (``ast``, nothing is imported): every
``import`` and ``from ... import`` that runs, at module level and inside functions (lazy
imports) alike. Imports under ``if TYPE_CHECKING:`` never run and are left out (a type hint
naming a higher module's class is not an import of it). An edge goes to the module named, or to the submodule when a
``from package import name`` names one; importing ``a.b.c`` is not counted as importing the
package ``a.b`` (a package's ``__init__`` may re-export its own modules). Each cycle is listed
as a path, ``keeper.a -> keeper.b -> keeper.a``, with the lines that import.

    .venv/bin/python scripts/check_imports.py            # keeper/ of this checkout
    .venv/bin/python scripts/check_imports.py path/to/pkg

Exit status 0 when the graph has no cycle, 1 otherwise.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Edge:
    target: str
    line: int


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module in `package` (``__init__.py`` names the package)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a ``from ... import`` reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``: the test of a block that never runs."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under `node` except the bodies of ``if TYPE_CHECKING:`` (their ``else`` runs)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield child
        yield from _runtime_nodes(child)


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[Edge]:
    """The modules of `known` that `module` imports when it runs, anywhere in its file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield Edge(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, is_package)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in known:
                    yield Edge(submodule, node.lineno)
                elif source in known:
                    yield Edge(source, node.lineno)


def import_graph(package: Path) -> dict[str, dict[str, int]]:
    """Module -> {imported module: first line importing it}, self-imports left out."""
    modules = module_names(package)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        for edge in imports_of(name, path, set(modules)):
            if edge.target != name:
                edges.setdefault(edge.target, edge.line)
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's components of more than one module (each one holds a cycle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def shortest_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target == start:
                    return [*paths[node], start]
                if target in members and target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always holds one


def describe(graph: dict[str, dict[str, int]], package: Path) -> list[str]:
    """One paragraph per cycle: the path, then each import with its file and line."""
    modules = module_names(package)
    out = []
    for component in strongly_connected(graph):
        cycle = shortest_cycle(graph, component)
        lines = [f"import cycle: {' -> '.join(cycle)}"]
        if len(component) > len(cycle) - 1:
            lines.append(f"  (one of the cycles between {', '.join(component)})")
        for source, target in zip(cycle[:-1], cycle[1:], strict=True):
            where = modules[source].relative_to(package.parent)
            lines.append(f"  {where}:{graph[source][target]} imports {target}")
        out.append("\n".join(lines))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    package = Path(argv[0]) if argv else ROOT / "keeper"
    graph = import_graph(package)
    cycles = describe(graph, package)
    for text in cycles:
        print(text)
    if cycles:
        print(f"{len(cycles)} import cycle(s) in {package.name}/: a lower module imports a higher one")
        return 1
    print(f"no import cycle between the {len(graph)} modules of {package.name}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
