"""A share as a node keeps it on disk: one file, written whole under a temporary name and
renamed into place only when complete, so no reader ever sees half a share.

    [0, 4096)            header: b"VLSH" 0x01 uint32_be(len) CBOR{si, shnum, nseg, bsize, lbsize,
                         root, segroot} zero padding
    [4096, +share_len)   blocks, block i at 4096 + i*bsize (the last one lbsize long)
    then                 block-tree levels (format/merkle.Levels), then segment-tree levels
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from veil.crypto import labels
from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.caps import SI_SIZE
from veil.format.fields import get_bytes, get_int, require_map
from veil.format.merkle import Levels, TreeHasher

MAGIC = b"VLSH"
VERSION = 1
HEADER_SIZE = 4096

BLOCK_TREE = TreeHasher(labels.BLOCK_LEAF, labels.BLOCK_NODE)
SEGMENT_TREE = TreeHasher(labels.SEGMENT_LEAF, labels.SEGMENT_NODE)


@dataclass(frozen=True)
class ShareHeader:
    si: bytes
    shnum: int
    nseg: int
    bsize: int
    lbsize: int
    root: bytes
    segroot: bytes

    @property
    def blocks_len(self) -> int:
        return self.bsize * (self.nseg - 1) + self.lbsize

    def block_offset(self, i: int) -> int:
        return HEADER_SIZE + i * self.bsize

    def block_len(self, i: int) -> int:
        return self.bsize if i < self.nseg - 1 else self.lbsize

    @property
    def tree_offset(self) -> int:
        return HEADER_SIZE + self.blocks_len

    @property
    def tree_len(self) -> int:
        return Levels.stored_size(self.nseg)

    @property
    def file_len(self) -> int:
        return self.tree_offset + 2 * self.tree_len

    def to_bytes(self) -> bytes:
        body = cbor.encode(
            {"si": self.si, "shnum": self.shnum, "nseg": self.nseg, "bsize": self.bsize,
             "lbsize": self.lbsize, "root": self.root, "segroot": self.segroot}
        )
        raw = MAGIC + bytes([VERSION]) + struct.pack(">I", len(body)) + body
        return raw + b"\x00" * (HEADER_SIZE - len(raw))


def parse_header(raw: bytes) -> ShareHeader:
    if len(raw) < 9 or raw[:4] != MAGIC:
        raise IntegrityError("not a Veil share file (bad magic)")
    if raw[4] != VERSION:
        raise IntegrityError(f"unsupported share version {raw[4]}")
    (n,) = struct.unpack(">I", raw[5:9])
    if n > HEADER_SIZE - 9:
        raise IntegrityError("share header too large")
    w = "share header"
    m = require_map(cbor.decode(raw[9 : 9 + n], HEADER_SIZE), w, {"si", "shnum", "nseg", "bsize", "lbsize", "root", "segroot"})
    return ShareHeader(
        si=get_bytes(m, "si", w, SI_SIZE), shnum=get_int(m, "shnum", w, 0, 254), nseg=get_int(m, "nseg", w, 1, 2**40),
        bsize=get_int(m, "bsize", w, 1, 1 << 26), lbsize=get_int(m, "lbsize", w, 1, 1 << 26),
        root=get_bytes(m, "root", w, 32), segroot=get_bytes(m, "segroot", w, 32),
    )
