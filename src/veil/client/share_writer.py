"""Put one known share on one node: the per-share half of the upload protocol.

Repair (blocks re-encoded from verified segments) and drain (blocks read back from a node's
own disk) both know the share's root and segment root in advance, from the manifest or the
share header. The writer computes the block-tree root of what it streamed and refuses to
commit if it differs from the expected root; the node checks both roots again at commit.
Until the commit a share sits in the node's ``incoming/`` and is never served, so a share
that would not match the manifest is never visible anywhere.

Imports from: veil.errors, veil.format, veil.protocol, veil.client.
"""

from __future__ import annotations

from veil.errors import IntegrityError, RemoteError, UnavailableError, VeilError
from veil.format.merkle import Levels
from veil.format.share import BLOCK_TREE
from veil.protocol.storage import UploadRequest

from .network import Network, NodeInfo

BATCH_BYTES = 2 << 20


class ConflictingShare(RemoteError):
    """The node already keeps a different share under this number; it kept its own."""


class ShareMismatch(IntegrityError):
    """The blocks written do not hash to the expected share root; nothing was committed."""


class ShareWriter:
    """Streams share ``req.shnum`` block by block to ``node``, then commits it."""

    def __init__(self, net: Network, node: NodeInfo, req: UploadRequest) -> None:
        self.net, self.node, self.req = net, node, req
        self.client = net.client(node)
        reply = self.client.call("POST", "/v1/uploads", req.to_value())
        uid = reply.get("id") if isinstance(reply, dict) else None
        if not isinstance(uid, str) or not uid.isalnum() or len(uid) > 64:
            raise UnavailableError(f"{node.label}: bad reply to upload request")
        self.uid = uid
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
        self.client.request("PUT", f"/v1/uploads/{self.uid}?start={self.start}", b"".join(self.parts))
        self.start += len(self.parts) // 2
        self.parts, self.pending = [], 0

    def commit(self, root: bytes, segroot: bytes, manifest: bytes | None = None) -> None:
        """Send the rest and commit under ``root``; IntegrityError (and nothing stored) if the
        blocks do not hash to it, ConflictingShare if the node keeps a different share.
        ``manifest``: the v2 commit (the share enters the slot of that manifest)."""
        if len(self.leaves) != self.req.nseg:
            self.abort()
            raise ShareMismatch(f"share {self.req.shnum}: {len(self.leaves)} of {self.req.nseg} blocks written")
        if Levels.build(BLOCK_TREE, self.leaves).root() != root:
            self.abort()
            raise ShareMismatch(f"share {self.req.shnum} does not hash to its expected root; not committed")
        self._flush()
        self.closed = True
        try:
            body = {"root": root, "segroot": segroot} | ({"manifest": manifest} if manifest is not None else {})
            got = self.client.call("POST", f"/v1/uploads/{self.uid}/commit", body)
        except RemoteError as e:
            if "(conflict)" in str(e):
                raise ConflictingShare(str(e)) from e
            raise
        if not isinstance(got, dict) or got.get("root") != root:
            raise ConflictingShare(f"{self.node.label} kept a different share {self.req.shnum}")

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.client.request("DELETE", f"/v1/uploads/{self.uid}", check=False)
        except VeilError:
            pass


def put_manifest(net: Network, node: NodeInfo, si: bytes, manifest: bytes) -> None:
    """Store the manifest on ``node`` (idempotent; a node keeping a different one refuses)."""
    net.client(node).request("PUT", f"/v1/manifests/{si.hex()}", manifest)
