"""The one seam between the data path and storage nodes: ``StorageTransport``.

Upload, download, locate, check, repair, drain and audits talk to storage nodes only through
this typed interface (one method per request of docs/specs/storage-protocol.md, v2). Whoever
implements it decides how bytes travel: ``veil.net.storage_transport.TlsTransport`` (direct
pinned TLS), ``veil.testing.grid.GridTransport`` (in memory, over ShareStore, with faults), and
``veil.net.circuit_transport.CircuitTransport`` (onion circuits, `--anon`). The client never builds a URL or touches a socket.

Every method takes a ``timeout``: a deadline in seconds for the WHOLE exchange (connect, send,
every read), not per read; past it the call raises ``DeadlineExceeded`` (an UnavailableError),
so a node that drips one byte at a time costs at most one deadline. Errors are VeilErrors:
NotFoundError (404), StorageFullError (507), RemoteError (other refusals, ``code`` kept),
UnavailableError (unreachable, deadline). Remote text in them is already sanitised
(``veil.format.remote_text``).

Imports from: veil.errors, veil.format, veil.protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from veil.errors import UnavailableError
from veil.format.mutable import Checkstring

from .mutable import VersionInfo
from .nodeinfo import NodeInfo
from .storage import Commit, UploadRequest

CONTROL_TIMEOUT = 10.0  # begin, commit, abort, list: small bodies
MIN_RATE = 1 << 20  # bytes/s a node must at least sustain before a bulk exchange times out


def bulk_timeout(nbytes: int, base: float = 5.0) -> float:
    """The deadline for an exchange that moves ``nbytes`` (a block range, a batch, a one-shot share)."""
    return base + nbytes / MIN_RATE


class DeadlineExceeded(UnavailableError):
    """A node did not finish answering within the deadline for the whole exchange."""


@dataclass(frozen=True)
class SlotListing:
    """A node's answer to ``list_slot``: which shares it holds of one slot, and the slot's manifest."""

    shares: tuple[int, ...]
    manifest: bytes | None


@dataclass(frozen=True)
class RangeAnswer:
    """A range read's outcome. 200: the reply (head + blocks) is ``data`` (or in the caller's
    ``into`` buffer, ``length`` bytes). 402: the node charges; ``data`` is its refusal body
    (protocol/payments.py), for the payer."""

    status: int
    data: bytes | memoryview
    length: int = 0


@dataclass(frozen=True)
class SlotWrite:
    """A node's answer to ``put_slot``: stored (200), or refused (409) holding ``current``
    (raw, unverified: the caller checks it with format.mutable.parse_record; None: nothing)."""

    stored: bool
    current: bytes | None = None


class StorageTransport(Protocol):
    """Requests to storage nodes, one method per request of the storage API (v2)."""

    def begin(self, node: NodeInfo, req: UploadRequest, timeout: float = CONTROL_TIMEOUT,
              ticket: str | None = None) -> str:  # fmt: skip
        """Open an upload session for one share; returns the session id. ``ticket``: a storage
        ticket (protocol/tickets.py) for a node that admits storage by ticket."""
        ...

    def write(self, node: NodeInfo, uid: str, start: int, body: bytes | memoryview, timeout: float) -> None:
        """Append ``count x (segment leaf || block)`` starting at block ``start``."""
        ...

    def commit(self, node: NodeInfo, uid: str, commit: Commit, timeout: float = CONTROL_TIMEOUT) -> bytes:
        """Make the share durable together with its manifest; returns the root the node kept."""
        ...

    def abort(self, node: NodeInfo, uid: str, timeout: float = CONTROL_TIMEOUT) -> None:
        """Drop an upload session (best effort: never raises)."""
        ...

    def put_oneshot(self, node: NodeInfo, si: bytes, shnum: int, body: bytes, timeout: float,
                    ticket: str | None = None) -> bytes:  # fmt: skip
        """Store a whole small share and its manifest in one request (protocol.storage one-shot
        body); returns the root the node kept. ``ticket`` as for ``begin``."""
        ...

    def list_slot(self, node: NodeInfo, si: bytes, mhash: bytes, timeout: float = CONTROL_TIMEOUT) -> SlotListing:
        """Which shares of slot (si, mhash) the node holds, and the slot's manifest."""
        ...

    def delete_slot(self, node: NodeInfo, si: bytes, mhash: bytes, key: bytes,
                    timeout: float = CONTROL_TIMEOUT) -> list[int]:  # fmt: skip
        """Remove every share of slot (si, mhash) with the file's deletion key; the share numbers
        removed ([] if the node held none). NotAllowedError if the key does not open the
        manifest's deletion commitment (or the manifest has none)."""
        ...

    def read_range(
        self, node: NodeInfo, si: bytes, mhash: bytes, shnum: int, start: int, count: int, *,
        timeout: float, into: memoryview | None = None, max_size: int = 0, manifest: bool = False,
        headers: dict[str, str] | None = None,
    ) -> RangeAnswer:
        """Blocks [start, start+count) of a share with their proofs (and the manifest if asked).

        The reply goes into ``into`` when given (it must fit), else is returned (at most
        ``max_size`` bytes). ``headers`` carry a payment cheque; a 402 is returned, not raised,
        so the payer can act on the node's terms."""
        ...

    def get_slot(self, node: NodeInfo, slot: bytes, seq: int | None = None,
                 timeout: float = CONTROL_TIMEOUT) -> bytes | None:
        """A mutable slot's current record (or version ``seq``), raw and unverified; None: not held."""
        ...

    def put_slot(self, node: NodeInfo, slot: bytes, record: bytes, expect: Checkstring | None,
                 timeout: float = CONTROL_TIMEOUT) -> SlotWrite:
        """Compare-and-swap a new record into a slot (``expect`` None: the slot must be empty)."""
        ...

    def slot_versions(self, node: NodeInfo, slot: bytes, timeout: float = CONTROL_TIMEOUT) -> list[VersionInfo]:
        """The versions of a slot the node keeps, newest first."""
        ...

    def close(self) -> None:
        """Drop pooled connections."""
        ...
