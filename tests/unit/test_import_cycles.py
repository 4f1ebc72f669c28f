"""No import cycles between the packages of posestream (a package = posestream.<name>).

Every ``import posestream.x...`` / ``from posestream.x... import`` in every module counts, also the
ones inside functions (a lazy import is still a dependency: ``evaluation`` loading a model through
``training`` made the two depend on each other). The graph is read from the source with ``ast``,
so nothing is imported to build it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import posestream

ROOT = Path(posestream.__file__).parent


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "posestream" else None


def package_graph() -> dict[str, set[str]]:
    """package -> packages it imports (top-level modules such as app.py count as packages)."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        source_pkg = rel.parts[0]
        deps = graph.setdefault(source_pkg, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [
                    f"{node.module}.{a.name}" for a in node.names if node.module == "posestream"
                ]
            else:
                continue
            for name in names:
                target = _package_of(name)
                if target is not None and target != source_pkg and target != "__init__":
                    deps.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_walker_sees_a_cycle_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    graph = package_graph()
    assert "keypoints" in graph["runtime"] and "datasets" in graph["training"]  # it reads real imports


def test_no_cycles_between_packages():
    graph = package_graph()
    found = cycles(graph)
    assert not found, f"import cycles between packages: {[sorted(c) for c in found]}"


def test_the_pairs_that_used_to_cycle_depend_one_way():
    graph = package_graph()
    assert "training" not in graph["evaluation"]  # evaluation <-> training (issue 12)
    assert "runtime" not in graph["models"]  # models <-> runtime (issue 9)
