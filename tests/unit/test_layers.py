"""Layers run one way: a module imports only from layers to its left (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "veil"

# Each layer may import itself and any layer with a smaller number.
LAYERS = {
    "errors": 0, "durable": 0,
    "crypto": 1,
    "erasure": 2,
    "format": 3,
    "ledger": 4, "dht": 4, "protocol": 4,
    "storage": 5, "net": 5,
    "client": 6, "testing": 6,
    "node": 7,
    "devnet": 8, "gateway": 8, "s3": 8, "sim": 8,
    "cli": 9, "bench": 9,
}
# Only these packages may import the third-party crypto libraries or open sockets.
RESTRICTED = {"cryptography": {"crypto"}, "nacl": {"crypto"}, "argon2": {"crypto"}, "socket": {"net", "devnet", "node", "gateway", "bench", "testing", "cli"}}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "veil" or len(parts) < 2:
        return None
    return parts[1]


def test_imports_follow_layers() -> None:
    problems = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        own = rel.parts[1] if len(rel.parts) > 1 else None
        if own in (None, "__init__", "__main__", "py"):
            continue
        own = own.removesuffix(".py")
        if own not in LAYERS:
            problems.append(f"{rel}: package {own!r} has no layer in this test")
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                target = layer_of(name)
                if target is not None and target in LAYERS and LAYERS[target] > LAYERS[own]:
                    problems.append(f"{rel}: {own} (layer {LAYERS[own]}) imports {name} (layer {LAYERS[target]})")
                top = name.split(".")[0]
                if top in RESTRICTED and own not in RESTRICTED[top]:
                    problems.append(f"{rel}: only {sorted(RESTRICTED[top])} may import {top}")
    assert not problems, "\n".join(problems)


# No module over this many lines (STYLE.md: one job per module); exceptions are named here.
MAX_LINES = 500
LONG_MODULES: dict[str, int] = {}  # module -> its allowed line count; none today


def _modules() -> dict[str, Path]:
    mods = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module -> the veil modules it imports anywhere in its text (top level, inside functions
    and under TYPE_CHECKING alike: a lazy import does not make a loop go away)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in mods)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    full = ".".join(base + ([node.module] if node.module else []))
                else:
                    full = node.module or ""
                if full in mods:
                    edges.add(full)
                edges.update(f"{full}.{a.name}" for a in node.names if f"{full}.{a.name}" in mods)
        edges.discard(mod)
        graph[mod] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on_stack.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_cycle_finder_finds_a_loop() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    loops = cycles(import_graph())
    assert not loops, "import loops:\n" + "\n".join(" <-> ".join(c) for c in loops)


def test_no_module_over_the_line_limit() -> None:
    long = []
    for mod, path in _modules().items():
        n = len(path.read_text().splitlines())
        if n > LONG_MODULES.get(mod, MAX_LINES):
            long.append(f"{mod}: {n} lines (limit {LONG_MODULES.get(mod, MAX_LINES)})")
    assert not long, "\n".join(long)


def test_no_module_below_the_cli_imports_by_name() -> None:
    """A module loaded from a string (importlib.import_module) escapes the layer check above,
    so only the CLI, the top layer, may do it."""
    problems = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent)
        if rel.parts[1] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
            if name in ("import_module", "__import__"):
                problems.append(f"{rel}:{getattr(node, 'lineno', 0)}: loads a module by name")
    assert not problems, "\n".join(problems)
