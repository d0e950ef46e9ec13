"""What a DHT node hands its driver: ``Send`` (a request to send) and ``OpDone`` (a finished
operation). Re-exported by veil.dht.node.
Imports from: veil.dht.
"""

from __future__ import annotations

from dataclasses import dataclass

from veil.dht.ids import Contact
from veil.dht.messages import Request
from veil.dht.records import NodeRecord, ProviderRecord


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to ``to`` (pinning its node id) and report back under ``request_id``."""

    request_id: int
    to: Contact
    message: Request


@dataclass(frozen=True, slots=True)
class OpDone:
    """A lookup-based operation finished.

    ``kind`` is join, find_node, find_value, find_providers, provide, provide_batch, publish_node
    or refresh.
    ``messages`` counts the lookup's requests (timeouts included); ``stored`` how many nodes
    accepted the record for provide / publish_node.
    """

    op_id: int
    kind: str
    target: bytes
    closest: tuple[Contact, ...]
    paths: tuple[tuple[Contact, ...], ...]
    providers: tuple[ProviderRecord, ...]
    record: NodeRecord | None
    hops: int
    messages: int
    failures: int
    stored: int = 0
    started: float = 0.0
    finished: float = 0.0
