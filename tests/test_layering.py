"""The layers of DESIGN.md, held by the imports themselves:

    policy (the language) <- compiler -> artifact <- runtime,   and cli composes them all.

No exemption inside a layer: every module of a package is checked, imports inside functions
included. Besides the direction, no two modules import each other, directly or round a longer
cycle, and no two packages either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

OURS = ("policy", "compiler", "artifact", "runtime", "cli")
ALLOWED: dict[str, frozenset[str]] = {
    "policy": frozenset(),
    "artifact": frozenset(),
    "compiler": frozenset({"policy", "artifact"}),
    "runtime": frozenset({"artifact"}),
    "cli": frozenset({"policy", "compiler", "artifact", "runtime"}),
}


def modules() -> Iterator[tuple[str, Path]]:
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def imports_of(name: str, path: Path) -> set[str]:
    """The modules of ours that `name` imports, relative imports resolved."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in OURS}


KNOWN = dict(modules())
GRAPH = {
    name: {m for m in imports_of(name, path) if m in KNOWN and m != name} for name, path in KNOWN.items()
}


@pytest.mark.parametrize("package", OURS)
def test_each_layer_imports_only_the_layers_below_it(package: str) -> None:
    offenders = []
    for name, path in KNOWN.items():
        if name.split(".")[0] != package:
            continue
        bad = {m.split(".")[0] for m in imports_of(name, path)} - ALLOWED[package] - {package}
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}")
    assert offenders == []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_module_import_cycle() -> None:
    """A package's `__init__` importing its own modules is how a package exports; only cycles
    between modules count."""
    edges = {
        name: {m for m in deps if not (name == m.rsplit(".", 1)[0] or m == name.rsplit(".", 1)[0])}
        for name, deps in GRAPH.items()
    }
    assert _cycle(edges) is None


def test_no_package_import_cycle() -> None:
    """Between the folders of the tree: `runtime.budget` -> `runtime.ledger` -> `runtime.budget`
    is a cycle even when no single module pair is."""

    def package_of(module: str) -> str:
        return module if KNOWN[module].name == "__init__.py" else module.rsplit(".", 1)[0]

    packages: dict[str, set[str]] = {}
    for name, deps in GRAPH.items():
        own = package_of(name)
        targets = {package_of(m) for m in deps} - {own}
        targets = {t for t in targets if not (own.startswith(t + ".") or t.startswith(own + "."))}
        packages.setdefault(own, set()).update(targets)
    assert _cycle(packages) is None
