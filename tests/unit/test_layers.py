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
    "devnet": 8, "gateway": 8, "sim": 8,
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
