"""The uploader's side of storage admission: sign a storage ticket for each share a node is asked
to keep (protocol/tickets.py; docs/specs/payments.md, "Storage admission").

``Tickets`` holds how to get the account key that signs (a wallet, unlocked only when a node
first asks for a ticket, so uploads to open nodes never prompt for a passphrase) and how long a
ticket lives. ``admitted(net.tickets, node, si, call)`` runs one storing request (``call(ticket)``:
``begin`` or ``put_oneshot`` through the StorageTransport): without a ticket until some node of
this network has answered 402 (a node whose policy is ``ticket``), with a fresh one for every
request after that (a node takes each ticket once). Every uploader of the data path goes through
it: the one-shot and streaming uploads, repair and drain.

A devnet's uploader key (``devnet_uploader`` in its network file; payments.md, "Storage
admission"): a plain key file the devnet stakes for, so that `veil put` on a devnet that admits
by ticket works without a wallet. ``write_uploader_key`` / ``read_uploader_key`` keep it as
``VLUK\x01`` ‖ 32-byte seed, mode 0600.

Imports from: veil.crypto, veil.durable, veil.errors, veil.protocol, veil.client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from veil.crypto.sign import SigningKey
from veil.durable import write_atomic
from veil.errors import IntegrityError, PaymentRequiredError, UsageError, VeilError
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.tickets import make_ticket

T = TypeVar("T")
TICKET_LIFE = 3600  # seconds; nodes refuse more than protocol.tickets.MAX_TICKET_LIFE
UPLOADER_MAGIC = b"VLUK\x01"


def write_uploader_key(path: Path) -> SigningKey:
    """The uploader key at ``path``, made if there is none (a devnet's; never a user's wallet)."""
    if path.exists():
        return read_uploader_key(path)
    key = SigningKey.generate()
    write_atomic(path, UPLOADER_MAGIC + key.seed, 0o600, exclusive=True)
    return key


def read_uploader_key(path: Path) -> SigningKey:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read the devnet's uploader key {path}: {e.strerror}") from e
    if len(raw) != len(UPLOADER_MAGIC) + 32 or not raw.startswith(UPLOADER_MAGIC):
        raise IntegrityError(f"{path} is not a Veil uploader key file")
    return SigningKey(raw[len(UPLOADER_MAGIC):])


class Tickets:
    """Signs storage tickets with one account's key (fetched lazily by ``key_source``)."""

    def __init__(self, key_source: Callable[[], SigningKey], life: int = TICKET_LIFE, eager: bool = False,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._source, self.life, self.clock = key_source, life, clock
        self._key: SigningKey | None = None
        self._failed: VeilError | None = None
        self._lock = threading.Lock()
        self.wanted = eager  # a node asked for tickets: send them from the start from now on
        self.signed = 0

    @classmethod
    def of_key(cls, key: SigningKey) -> Tickets:
        return cls(lambda: key, eager=True)

    def key(self) -> SigningKey:
        with self._lock:
            if self._failed is not None:  # one prompt, one failure: not one per node
                raise self._failed
            if self._key is None:
                try:
                    self._key = self._source()  # may prompt, or raise a UsageError ("no wallet ...")
                except VeilError as e:
                    self._failed = e
                    raise
            return self._key

    def header(self, node: NodeInfo, si: bytes) -> str:
        """A fresh ticket asking ``node`` to keep shares of ``si``."""
        key = self.key()
        self.signed += 1
        return make_ticket(key, node.node_id, si, int(self.clock()) + self.life)


def admitted(t: Tickets | None, node: NodeInfo, si: bytes, call: Callable[[str | None], T]) -> T:
    """Run ``call`` with a ticket from ``t`` (a Network's ``tickets``) when nodes want one (learnt
    from a 402)."""
    if t is None:
        return call(None)
    if t.wanted:
        return call(t.header(node, si))
    try:
        return call(None)
    except PaymentRequiredError:
        # The storing requests' only 402 is storage admission: sign, and keep signing.
        header = t.header(node, si)
        t.wanted = True
        return call(header)


_ADMISSION_WORDS = ("storage ticket", "storage quota", "no wallet")


def refused_admission(problems: list[str], got: int, need: int) -> None:
    """PaymentRequiredError (exit 7) when an upload failed because nodes would not admit it:
    no ticket, no wallet to sign one, or the account's free storage quota is used up."""
    refusals = [p for p in problems if any(w in p for w in _ADMISSION_WORDS)]
    if refusals:
        raise PaymentRequiredError(
            f"could place shares on only {got} distinct nodes, {need} needed: the nodes admit storage only "
            f"with a storage ticket within the account's free storage quota ({refusals[-1]}); stake for "
            "more quota (`veil account`) or use a wallet that has it (--wallet)"
        )
