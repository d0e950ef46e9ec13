"""Put one known share on one node: the per-share half of the upload protocol.

Repair (blocks re-encoded from verified segments) and drain (blocks read back from a node's
own disk) both know the share's root and segment root in advance, from the manifest or the
share header. The writer computes the block-tree root of what it streamed and refuses to
commit if it differs from the expected root; the node checks both roots again at commit,
where the manifest travels with the commit (storage protocol v2). Until the commit a share
sits in the node's ``incoming/`` and is never served, so a share that would not match the
manifest is never visible anywhere.

Imports from: veil.errors, veil.format, veil.protocol, veil.client.
"""

from __future__ import annotations

from veil.errors import IntegrityError, RemoteError
from veil.format.merkle import Levels
from veil.format.share import BLOCK_TREE
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.storage import Commit, UploadRequest
from veil.protocol.transport import bulk_timeout

from .network import Network
from .tickets import admitted

BATCH_BYTES = 2 << 20


class ConflictingShare(RemoteError):
    """The node already keeps a different share under this number; it kept its own."""


class ShareMismatch(IntegrityError):
    """The blocks written do not hash to the expected share root; nothing was committed."""


class ShareWriter:
    """Streams share ``req.shnum`` block by block to ``node``, then commits it with the manifest."""

    def __init__(self, net: Network, node: NodeInfo, req: UploadRequest) -> None:
        self.net, self.node, self.req = net, node, req
        self.transport = net.transport
        self.uid = admitted(net.tickets, node, req.si, lambda t: self.transport.begin(node, req, ticket=t))
        self.leaves: list[bytes] = []
        self.parts: list[bytes] = []
        self.pending = 0
        self.start = 0
        self.closed = False

    def add(self, seg_leaf: bytes, block: bytes | memoryview) -> None:
        """Add the next block (and its segment's leaf hash)."""
        self.leaves.append(BLOCK_TREE.leaf(block))
        self.parts += (seg_leaf, bytes(block))
        self.pending += len(block) + len(seg_leaf)
        if self.pending >= BATCH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self.parts:
            return
        body = b"".join(self.parts)
        self.transport.write(self.node, self.uid, self.start, body, timeout=bulk_timeout(len(body)))
        self.start += len(self.parts) // 2
        self.parts, self.pending = [], 0

    def commit(self, root: bytes, segroot: bytes, manifest: bytes) -> None:
        """Send the rest and commit under ``root`` with ``manifest``; IntegrityError (and nothing
        stored) if the blocks do not hash to it, ConflictingShare if the node keeps a different share."""
        if len(self.leaves) != self.req.nseg:
            self.abort()
            raise ShareMismatch(f"share {self.req.shnum}: {len(self.leaves)} of {self.req.nseg} blocks written")
        if Levels.build(BLOCK_TREE, self.leaves).root() != root:
            self.abort()
            raise ShareMismatch(f"share {self.req.shnum} does not hash to its expected root; not committed")
        self._flush()
        self.closed = True
        try:
            # the node builds the trees and fsyncs the whole share before it answers
            got = self.transport.commit(self.node, self.uid, Commit(root, segroot, manifest),
                                        timeout=bulk_timeout(self.req.share_len))  # fmt: skip
        except RemoteError as e:
            if "(conflict)" in str(e):
                raise ConflictingShare(str(e)) from e
            raise
        if got != root:
            raise ConflictingShare(f"{self.node.label} kept a different share {self.req.shnum}")

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.transport.abort(self.node, self.uid)
