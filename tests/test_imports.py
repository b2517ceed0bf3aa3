"""The shape of the package: its imports form no cycle (function-local imports included, since
that is where a cycle hides), and the engine and the commands ask the objective contract
instead of probing attributes."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jaxgen"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """The jaxgen modules a module's import statements name, wherever they stand."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package upward
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                full = f"{base}.{alias.name}"
                names.add(full if _is_module(full) else base)
    return {name for name in names if name.split(".")[0] == "jaxgen" and _is_module(name)}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        graph[module] = _imported(ast.parse(path.read_text()), module,
                                  path.name == "__init__.py") - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_function_local_and_package_imports():
    graph = import_graph()
    assert "jaxgen.train.run" in graph["jaxgen.pipeline"]  # a module-level import
    assert "jaxgen.demo" in graph["jaxgen.cli"]  # function-local, inside `_demo`
    assert "jaxgen.losses._vae" in graph["jaxgen.losses"]  # the package's own re-exports
    assert "jaxgen.schedules" in graph["jaxgen.losses._diffusion"]


def test_no_import_cycle_inside_jaxgen():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", ["train/loop.py", "cli.py", "commands.py", "pipeline.py"])
def test_the_engine_and_the_commands_do_not_probe_capabilities(name):
    tree = ast.parse((PACKAGE / name).read_text())
    probes = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
              and isinstance(node.func, ast.Name) and node.func.id == "hasattr"]
    assert not probes, f"{name} probes with hasattr on lines {probes}; ask the contract"
