"""The package's import graph: no cycle, and no module importing another module's ``_private`` names.

The graph is built from the source (every ``import`` / ``from … import`` statement, those inside functions and
``TYPE_CHECKING`` blocks included), not from what happens to be imported at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dativo_ingest"

#: (importing module, name) pairs known to break the rule, each with the reason it is still there
KNOWN_PRIVATE_IMPORTS: dict[tuple[str, str], str] = {}


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """module name → (file, is a package)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts.pop()
        out[".".join(parts)] = (path, package)
    return out


def _imports(name: str, path: Path, package: bool, modules: dict) -> Iterator[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` of every import of the package in one module."""
    here = name if package else name.rpartition(".")[0]

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "dativo_ingest" and (target := owner(alias.name)):
                    yield target, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            if base.split(".")[0] != "dativo_ingest":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    yield submodule, None, node.lineno
                elif target := owner(base):
                    yield target, alias.name, node.lineno


def _graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str, int]]]:
    modules = _modules(PACKAGE)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    private: list[tuple[str, str, str, int]] = []
    for name, (path, package) in modules.items():
        for target, imported, line in _imports(name, path, package, modules):
            if target != name:
                graph[name].add(target)
            if imported and imported.startswith("_") and not imported.startswith("__"):
                private.append((name, target, imported, line))
    return graph, private


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its modules in order), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_graph_is_read_from_the_source():
    graph, _ = _graph()
    assert "dativo_ingest.engines.base" in graph["dativo_ingest.engines"]  # a package's re-export
    # a function-level import counts: the registry imports the engines only when asked for one
    assert "dativo_ingest.engines.airbyte.engine" in graph["dativo_ingest.engines.base"]
    assert "dativo_ingest.engines.common.records" in graph["dativo_ingest.engines.airbyte.records"]


def test_the_package_has_no_import_cycle():
    graph, _ = _graph()
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_another_modules_private_names():
    _, private = _graph()
    found = {(m, n): (t, line) for m, t, n, line in private}
    unexpected = {k: v for k, v in found.items() if k not in KNOWN_PRIVATE_IMPORTS}
    assert not unexpected, "private names imported: " + "; ".join(
        f"{m}:{line} imports {t}.{n}" for (m, n), (t, line) in sorted(unexpected.items()))


@pytest.mark.parametrize("known", sorted(KNOWN_PRIVATE_IMPORTS))
def test_a_known_exception_still_exists(known):
    """An exception that is gone must leave the list, so the list never hides a new one."""
    _, private = _graph()
    assert known in {(m, n) for m, _, n, _ in private}, f"{known} no longer imports a private name: remove it"
