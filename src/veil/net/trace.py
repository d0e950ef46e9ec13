"""An opt-in log of the peer addresses a process saw, for the anonymity tests (circuits.md).

Off unless ``VEIL_TRACE_DIR`` names a directory. Then every accepted connection of a node's
server, every circuit a relay carries (predecessor and successor) and every connection a
client opens appends one JSON line to ``<dir>/<label>-<pid>.jsonl``:
``{"who": label, "kind": "accept"|"relay"|"client"|"direct", "peer": "ip:port", "next": "host:port"}``
(``client``: the first hop of a circuit, from the client's side; ``direct``: a pinned
connection straight to a node, ``peer`` being the local address).
It records only addresses, never what was asked; it exists so a test can show who saw whom.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

_lock = threading.Lock()
_label = "client"


def set_label(label: str) -> None:
    global _label
    _label = label


def enabled() -> bool:
    return bool(os.environ.get("VEIL_TRACE_DIR"))


def _addr(a: Any) -> str:
    if isinstance(a, tuple) and len(a) >= 2:
        return f"{a[0]}:{a[1]}"
    return str(a)


def record(kind: str, peer: Any, nxt: str = "") -> None:
    d = os.environ.get("VEIL_TRACE_DIR")
    if not d:
        return
    line = json.dumps({"who": _label, "kind": kind, "peer": _addr(peer), "next": nxt}) + "\n"
    with _lock:
        try:
            with open(os.path.join(d, f"{_label}-{os.getpid()}.jsonl"), "a") as f:
                f.write(line)
        except OSError:
            pass
