"""equiv's modules import one another without a cycle: the engine never reaches back up to the plugin."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "equiv"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Module -> the equiv modules it imports when it runs, at module level or inside a function."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and ast.unparse(block.test) == "TYPE_CHECKING" for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in typing_only:  # `if TYPE_CHECKING:` imports never run
                continue
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from equiv import oracle` is the submodule; `from equiv.case import Case`, the module.
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                          for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_the_import_graph_has_no_cycle() -> None:
    graph = imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_check_sees_an_import_inside_a_function() -> None:
    assert "equiv.report" in imports()["equiv.runner"]  # the heatmap writer, imported where it is used


def test_the_tools_and_the_launcher_are_beside_the_core() -> None:
    """Benchmark, sweep, the shard launcher and the merge run the suite or read its reports; nothing that
    runs a test imports them."""
    graph = imports()
    beside = {m for m in graph if m.startswith("equiv.tools")} | {
        "equiv.__main__", "equiv.cli", "equiv.readme", "equiv.scaffold", "equiv.distribute.launcher",
        "equiv.distribute.merge"}
    core = set(graph) - beside
    reached = {m for c in core for m in graph[c]} & beside
    assert not reached, f"the core imports {sorted(reached)}"


def test_one_definition_of_a_group() -> None:
    """Slicing, the xdist scheduler and the items' xdist_group marker all read `group_of`."""
    graph = imports()
    for user in ("equiv.distribute.slicing", "equiv.distribute.scheduler", "equiv.items"):
        assert "equiv.distribute.group" in graph[user], user
