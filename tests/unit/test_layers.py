"""The package's layers, read from the source (module-level imports; imports under
``TYPE_CHECKING`` and inside functions are deliberate late bindings and do not count).

- no import cycle between modules;
- the foundation (lottery/core: the state, the run settings, the tracing helpers) imports
  no graph, node, store, tool, engine or entry point;
- nodes import no graph (graphs/ wires nodes, not the reverse);
- tools, stores and model preparation (serve/) import no graph, node, engine or entry point;
- engines import no graph, node or entry point;
- the run's resources (lottery/resources.py) import no graph, node or entry point.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"lottery": ROOT / "lottery", "lottery.graphs": ROOT / "graphs",
           "lottery.nodes": ROOT / "nodes", "lottery.stores": ROOT / "stores"}
FOUNDATION = ("lottery.core",)
ENTRY_POINTS = ("lottery.api", "lottery.cli", "lottery.bench", "lottery.server", "lottery.render")


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


MODULES = modules()


def imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports when it is first imported."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")[: len(name.split(".")) - node.level + is_package]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                submodules = [f"{module}.{a.name}" for a in node.names
                              if f"{module}.{a.name}" in MODULES]
                out.update(submodules)
                if len(submodules) < len(node.names):
                    out.add(module)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(node.orelse)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_source_is_found() -> None:
    assert {"lottery.api", "lottery.graphs.algorithm1", "lottery.nodes.schedule",
            "lottery.stores.sql", "lottery.engines.server"} <= set(MODULES)
    assert "lottery.core.context" in GRAPH["lottery.nodes.schedule"]


def test_no_module_imports_itself_back() -> None:
    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in GRAPH[node]:
                if nxt == start:
                    return [*path, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for m in sorted(GRAPH) if (c := cycle_from(m))]
    assert not cycles, "import cycle: " + " -> ".join(cycles[0])


@pytest.mark.parametrize(("layer", "forbidden"), [
    (FOUNDATION, ("lottery.graphs", "lottery.nodes", "lottery.stores", "lottery.tools",
                  "lottery.engines", "lottery.resources", *ENTRY_POINTS)),
    (("lottery.resources",), ("lottery.graphs", "lottery.nodes", *ENTRY_POINTS)),
    (("lottery.tools",), ("lottery.graphs", "lottery.nodes", "lottery.engines", "lottery.serve",
                          *ENTRY_POINTS)),
    (("lottery.stores",), ("lottery.graphs", "lottery.nodes", "lottery.tools", "lottery.engines",
                           "lottery.serve", *ENTRY_POINTS)),
    (("lottery.serve",), ("lottery.graphs", "lottery.nodes", "lottery.engines", *ENTRY_POINTS)),
    (("lottery.engines",), ("lottery.graphs", "lottery.nodes", "lottery.stores", *ENTRY_POINTS)),
])
def test_a_lower_layer_imports_nothing_above_it(layer: tuple[str, ...],
                                                forbidden: tuple[str, ...]) -> None:
    bad = sorted(f"{m} -> {i}" for m in GRAPH if under(m, *layer)
                 for i in GRAPH[m] if under(i, *forbidden))
    assert not bad, bad


def test_nodes_import_no_graph() -> None:
    bad = sorted(f"{m} -> {i}" for m in GRAPH if under(m, "lottery.nodes")
                 for i in GRAPH[m] if under(i, "lottery.graphs"))
    assert not bad, bad


def test_context_holds_settings_only_and_resources_hold_the_objects() -> None:
    """Context is LangGraph's context_schema: plain values a form, an env variable or a run
    record can carry; every object a run uses is a field of Resources, and the keywords
    ``solve`` treats as objects are exactly those fields."""
    from dataclasses import fields

    from lottery.core.context import Context
    from lottery.resources import Resources

    plain = {"str", "int", "float", "bool", "str | None"}
    assert {f.name: f.type for f in fields(Context) if f.type not in plain} == {}
    assert {f.name for f in fields(Resources)} - {"settings"} == Resources.INJECTABLE
    assert not {f.name for f in fields(Context)} & Resources.INJECTABLE


def test_only_the_factory_names_a_knowledge_base_backend() -> None:
    """Nodes, resources and entry points open knowledge bases through
    ``lottery.stores.factory``; the interface module knows no backend."""
    backends = ("lottery.stores.embedded", "lottery.stores.weaviate")
    bad = sorted(f"{m} -> {i}" for m in GRAPH
                 if under(m, "lottery.nodes", "lottery.resources", "lottery.graphs",
                          "lottery.stores.knowledge", *ENTRY_POINTS)
                 for i in GRAPH[m] if i in backends)
    assert not bad, bad
