"""The import graph of the product packages (functions/, sidecar/), read from the source.

    python -m hack.imports              # one line per module: what it imports (first party)
    python -m hack.imports --packages   # the same, folded to packages
    python -m hack.imports --external   # third-party imports per module

tests/unit/test_layers.py holds the graph to the layering rules.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("functions", "sidecar")


@dataclass(frozen=True)
class Module:
    name: str
    imports: frozenset[str]
    """First-party modules it imports (functions.*, sidecar.*), module-level or not."""
    external: frozenset[str]
    """Top-level names of the other packages it imports (redis, kubernetes, ...)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, known: set[str]) -> str:
    """`from a.b import c`: the module a.b.c when it exists, else a.b."""
    return name if name in known else name.rpartition(".")[0] or name


def read(packages: Sequence[str] = PACKAGES) -> dict[str, Module]:
    files = sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))
    known = {module_name(p) for p in files}
    out = {}
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.update(_resolve(f"{node.module}.{a.name}", known) for a in node.names)
        first = {n for n in names if n.split(".")[0] in packages}
        external = {n.split(".")[0] for n in names - first} - set(sys.stdlib_module_names)
        name = module_name(path)
        out[name] = Module(name, frozenset(first - {name}), frozenset(external - {"__future__"}))
    return out


def closure(graph: dict[str, Module], start: str) -> set[str]:
    """Every first-party module `start` imports, directly or not (parents' __init__ included)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in graph:
            continue
        seen.add(name)
        todo.extend(graph[name].imports)
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return seen


def packages_of(names: Iterable[str], depth: int = 2) -> set[str]:
    return {".".join(n.split(".")[:depth]) for n in names}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.imports", description=__doc__)
    parser.add_argument("--packages", action="store_true", help="fold modules to packages")
    parser.add_argument("--external", action="store_true", help="third-party imports instead")
    args = parser.parse_args(argv)
    graph = read()
    if args.packages:
        folded: dict[str, set[str]] = {}
        for mod in graph.values():
            (pkg,) = packages_of([mod.name])
            deps = mod.external if args.external else packages_of(mod.imports) - {pkg}
            folded.setdefault(pkg, set()).update(deps)
        rows = folded
    else:
        rows = {m.name: set(m.external if args.external else m.imports) for m in graph.values()}
    width = max(map(len, rows))
    for name in sorted(rows):
        print(f"{name:<{width}} -> {', '.join(sorted(rows[name])) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
