"""What a node accepts into a storage slot, checked before a byte of it becomes visible (no I/O).

A slot is (storage index, manifest hash). A share enters a slot only with that slot's manifest,
and only if the manifest is for this storage index and names the share's own roots and sizes:
``manifest.si == si``, ``shnum < manifest.n``, ``manifest.roots[shnum] == root``,
``manifest.segroot == segroot``, and ``nseg``/``bsize``/``lbsize`` equal the manifest's. So a
slot's shares all belong to its manifest, and a squatter's bogus manifest lands in a slot of its
own instead of blocking the genuine one (issue 19, finding 3).

Node policy on share geometry (issue 18, defect 4), checked when an upload is announced:
blocks of at least ``MIN_BLOCK`` bytes (the last, or only, block may be shorter) and at most
``MAX_SHARE_SEGMENTS`` blocks per share.

Imports from: veil.errors, veil.format, veil.protocol.
"""

from __future__ import annotations

from veil.errors import IntegrityError, UsageError
from veil.format.manifest import Manifest, manifest_hash, parse_manifest
from veil.protocol.storage import LEAF

MIN_BLOCK = 1024
MAX_SHARE_SEGMENTS = 1 << 18  # 256 GiB files at the client's 1 MiB segments; a commit's trees stay < 40 MiB
MAX_BLOCK = 1 << 26


def check_geometry(nseg: int, bsize: int, lbsize: int) -> None:
    """Refuse shares of tiny blocks or too many of them (UsageError -> 400)."""
    if not 1 <= nseg <= MAX_SHARE_SEGMENTS:
        raise UsageError(f"a share has 1..{MAX_SHARE_SEGMENTS} blocks on this node, not {nseg}")
    if not (1 <= lbsize <= MAX_BLOCK and 1 <= bsize <= MAX_BLOCK):
        raise UsageError(f"block sizes must be 1..{MAX_BLOCK} bytes")
    if nseg > 1 and bsize < MIN_BLOCK:
        raise UsageError(f"blocks must be at least {MIN_BLOCK} bytes (only the last may be shorter)")
    if nseg > 1 and lbsize > bsize:
        raise UsageError("the last block cannot be larger than the others")
    if nseg == 1 and bsize != lbsize:
        raise UsageError("a one-block share has bsize == lbsize")


def blocks_body_len(nseg: int, bsize: int, lbsize: int, start: int, count: int) -> int:
    """Bytes of ``count`` x (segment leaf || block) from block ``start``."""
    end = start + count
    n_full = max(0, min(end, nseg - 1) - start)
    last = 1 if end == nseg and count > 0 else 0
    return n_full * (LEAF + bsize) + last * (LEAF + lbsize)


def blocks_in_body(nseg: int, bsize: int, lbsize: int, start: int, nbytes: int) -> int:
    """How many whole blocks from ``start`` a body of ``nbytes`` holds; IntegrityError unless it
    holds whole blocks only and none past the end of the share."""
    left = nseg - start
    if left <= 0 or nbytes <= 0:
        raise IntegrityError("upload body is empty or the share is already complete")
    full, rest = divmod(nbytes, LEAF + bsize)
    if rest == 0 and full <= left - 1:
        return full
    if blocks_body_len(nseg, bsize, lbsize, start, left) == nbytes:
        return left
    raise IntegrityError("upload body does not hold whole blocks of this share, or holds more than it still expects")


def check_slot(si: bytes, shnum: int, nseg: int, bsize: int, lbsize: int, root: bytes, segroot: bytes,
               manifest: bytes) -> tuple[Manifest, bytes]:
    """The parsed manifest and its hash (the slot), if the share fits it; else IntegrityError."""
    man = parse_manifest(manifest)
    if man.si != si:
        raise IntegrityError("manifest belongs to another storage index")
    if shnum >= man.n:
        raise IntegrityError(f"share number {shnum} is outside the manifest's n={man.n}")
    if man.roots[shnum] != root:
        raise IntegrityError("share root is not the manifest's root for this share number")
    if man.segroot != segroot:
        raise IntegrityError("segment root is not the manifest's")
    if (man.nseg, man.bsize, man.lbsize) != (nseg, bsize, lbsize):
        raise IntegrityError("share sizes (nseg, bsize, lbsize) disagree with the manifest")
    return man, manifest_hash(manifest)
