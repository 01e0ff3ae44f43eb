"""The import structure of services/: no cycle, and the composition root only at the top.

Every `import` under services/ is read with `ast` — also those inside functions, which is where a
cycle hides (an import inside a function runs later, so Python never complains). Imports under
`if TYPE_CHECKING:` are left out: they only name types for mypy and never run.

Two rules (docs/architecture.md, "The composition root"):
- the graph has no cycle;
- `services/runtime.py` builds the runtime and imports the services; no module it imports
  (directly or through others) imports it back. Steps, the ops CLI's entry point and the tests
  open the runtime and hand it (or a factory) down.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "services.runtime"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str) -> Iterator[str]:
    """Every module imported at run time (top level or in a function), TYPE_CHECKING left out."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (name for child in node.orelse for name in _imports(child, package))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from services.sync import engine` imports the module services.sync.engine
            yield from (f"{base}.{alias.name}" for alias in node.names)
        else:
            yield from _imports(node, package)


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the project modules it imports (services/ only)."""
    files = {_module_name(p, root): p for p in (root / "services").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = set(_imports(ast.parse(path.read_text(), str(path)), package))
        graph[name] = {m for m in imported if m in files and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def test_services_have_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_nothing_below_the_composition_root_imports_it() -> None:
    graph = import_graph()
    below = reachable(graph, RUNTIME)
    offenders = sorted(m for m in below if RUNTIME in graph[m])
    assert not offenders, f"imported by services/runtime.py, yet importing it back: {offenders}"


def test_the_graph_reader_sees_function_level_and_skips_type_only_imports(tmp_path: Path) -> None:
    """The checker itself: a cycle hidden in a function is found, a TYPE_CHECKING one is not."""
    pkg = tmp_path / "services"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from services.b import g\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from services import b\n"
    )
    graph = import_graph(tmp_path)
    assert graph["services.a"] == {"services.b"}
    assert graph["services.b"] == {"services", "services.c"}  # the package's __init__ runs too
    assert find_cycle(graph) is None
    (pkg / "c.py").write_text("import services.a\n")
    assert find_cycle(import_graph(tmp_path)) == ["services.a", "services.b", "services.c", "services.a"]
