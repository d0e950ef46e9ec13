"""What every role of a node can see: its data dir, identity, address and configuration.

``services`` is where a role offers an object to the node's other roles once it has started
(``"dht"``: the DhtDriver, ``"store"``: the ShareStore); a consumer looks it up when it needs
it, since roles start in the order they were named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from veil.crypto.sign import SigningKey
from veil.net.server import Router


@dataclass
class NodeContext:
    data_dir: Path
    key: SigningKey
    host: str
    port: int
    config: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)

    @property
    def node_id(self) -> bytes:
        from veil.crypto.sign import node_id

        return node_id(self.key.public_key)


class Role(Protocol):
    name: str

    def attach(self, ctx: NodeContext, router: Router) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def status(self) -> dict[str, Any]: ...
