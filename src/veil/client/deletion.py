"""Deleting a file's shares from the nodes, as its uploader (docs/specs/caps.md, "Deletion keys").

The uploader's deletion secret lives in ``$VEIL_HOME/delete.key`` (made on the first upload,
mode 0600); each file's deletion key is derived from it and the file's storage index
(format/deletion.py), so `veil rm CAP` needs nothing kept per file. Every candidate node and
every provider-record holder is asked, in parallel, to drop the slot; a node checks the key
against the commitment in the slot's manifest and refuses (403) anyone else.
"""

from __future__ import annotations

import os
import queue
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from veil.durable import write_atomic
from veil.errors import NotAllowedError, NotFoundError, UnavailableError, UsageError, VeilError
from veil.format.caps import VerifyCap
from veil.format.deletion import KEY_SIZE, deletion_key
from veil.protocol.nodeinfo import NodeInfo

from .network import Network, veil_home
from .workers import POOL


def secret_path() -> Path:
    return Path(os.environ.get("VEIL_DELETE_KEY") or veil_home() / "delete.key")


def deletion_secret(create: bool = False) -> bytes | None:
    """This user's deletion secret; made (random, 0600) when missing and ``create``; else None."""
    path = secret_path()
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_atomic(path, secrets.token_bytes(KEY_SIZE).hex().encode() + b"\n", mode=0o600, exclusive=True)
        except FileExistsError:
            pass  # another upload made it first: use that one
        text = path.read_text().strip()
    except OSError as e:
        raise UsageError(f"cannot read the deletion secret {path}: {e.strerror or e}") from e
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != KEY_SIZE:
        raise UsageError(f"{path} is not a deletion secret (64 hex digits)")
    return raw


def key_for(vc: VerifyCap) -> bytes:
    """The deletion key of the file behind ``vc``, from this user's deletion secret."""
    secret = deletion_secret()
    if secret is None:
        raise NotAllowedError(f"no deletion secret at {secret_path()}: only files uploaded from this "
                              "$VEIL_HOME (or with --key) can be deleted")  # fmt: skip
    return deletion_key(secret, vc.storage_index)


@dataclass
class Deleted:
    removed: dict[str, list[int]] = field(default_factory=dict)  # node label -> share numbers removed
    refused: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    @property
    def shares(self) -> int:
        return sum(len(v) for v in self.removed.values())


def delete_file(net: Network, vc: VerifyCap, key: bytes) -> Deleted:
    """Ask every node that may hold shares of ``vc`` to drop them; NotAllowedError if the nodes
    holding it refuse the key, NotFoundError if no node held any."""
    si, mhash = vc.storage_index, vc.manifest_hash
    nodes: dict[bytes, NodeInfo] = {n.node_id: n for n in net.storage_nodes_for(si)}
    try:
        for n, _ in net.providers_of(si):
            nodes.setdefault(n.node_id, n)
    except VeilError:
        pass  # the candidates are asked anyway
    replies: queue.SimpleQueue[tuple[NodeInfo, list[int] | VeilError]] = queue.SimpleQueue()

    def ask(n: NodeInfo) -> None:
        try:
            replies.put((n, net.transport.delete_slot(n, si, mhash, key)))
        except VeilError as e:
            replies.put((n, e))

    for n in nodes.values():
        POOL.submit(ask, n)
    out = Deleted()
    for _ in nodes:
        n, gone = replies.get()  # every ask answers within its transport deadline
        if isinstance(gone, NotAllowedError):
            out.refused.append(str(gone))
            continue
        if isinstance(gone, VeilError):
            out.unreachable.append(f"{n.label}: {gone}")
            continue
        if gone:
            out.removed[n.label] = gone
    if out.refused and not out.removed:
        raise NotAllowedError(f"{len(out.refused)} nodes refused the delete: {out.refused[0]}")
    if not out.removed and not out.refused:
        if out.unreachable and len(out.unreachable) == len(nodes):
            raise UnavailableError(f"none of the {len(nodes)} nodes could be reached: {out.unreachable[0]}")
        raise NotFoundError(f"no node holds this file (asked {len(nodes)} nodes)")
    return out
