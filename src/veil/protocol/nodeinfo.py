"""Who a storage node is and where it listens: the one description every layer shares.

Lives in ``protocol`` (below ``net`` and ``client``) so transports, the in-memory grid and the
client all name nodes the same way without an import arrow running back up.
Imports nothing from Veil.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeInfo:
    host: str
    port: int
    node_id: bytes
    name: str = ""
    roles: tuple[str, ...] = ("storage",)
    # Who runs it, as a network file the client trusts says (protocol/family.py); "" = unknown.
    operator: str = ""

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        return self.name or f"{self.addr} ({self.node_id.hex()[:8]})"
