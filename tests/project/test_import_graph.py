"""The packages of app/ form a graph without cycles, and app/contract imports nothing of app/."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def _package_imports() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for file in APP.rglob("*.py"):
        parts = file.relative_to(APP).parts
        if len(parts) < 2:
            continue
        package = parts[0]
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                bits = name.split(".")
                if bits[0] == "app" and len(bits) > 1 and bits[1] != package:
                    edges.setdefault(package, set()).add(bits[1])
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_package_import_cycle() -> None:
    cycle = _cycle(_package_imports())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_contract_depends_on_nothing_else() -> None:
    assert _package_imports().get("contract", set()) == set()


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None
