"""Reading slots: where shares live, which slots a storage index has, block ranges with proofs.

Parsed share trees are cached (bounded by bytes, not entries: one share of 2^18 blocks has
16 MiB of trees) so a range read costs one header-free ``pread`` of the blocks.

Imports from: veil.errors, veil.format, veil.protocol.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from veil.errors import IntegrityError, NotFoundError, UsageError
from veil.format.merkle import Levels
from veil.format.share import BLOCK_TREE, HEADER_SIZE, SEGMENT_TREE, ShareHeader, parse_header
from veil.protocol.storage import MAX_RANGE_BYTES, encode_range_head

CACHE_BYTES = 64 << 20


class SlotReader:
    def __init__(self, slots_dir: Path) -> None:
        self.slots_dir = slots_dir
        slots_dir.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[Path, tuple[ShareHeader, Levels, Levels]] = OrderedDict()
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()

    # -- paths --------------------------------------------------------------------------
    def si_dir(self, si: bytes) -> Path:
        h = si.hex()
        return self.slots_dir / h[:2] / h

    def slot_dir(self, si: bytes, mhash: bytes) -> Path:
        return self.si_dir(si) / mhash.hex()

    def share_path(self, si: bytes, mhash: bytes, shnum: int) -> Path:
        return self.slot_dir(si, mhash) / str(shnum)

    # -- listing ------------------------------------------------------------------------
    def slots(self, si: bytes) -> list[bytes]:
        """Manifest hashes of this storage index's slots (a slot exists once its manifest does)."""
        d = self.si_dir(si)
        out = []
        try:
            entries = list(d.iterdir())
        except FileNotFoundError:
            return []
        for p in entries:
            if len(p.name) == 64 and (p / "manifest").exists():
                try:
                    out.append(bytes.fromhex(p.name))
                except ValueError:
                    continue
        return sorted(out)

    def storage_indexes(self) -> list[bytes]:
        """Every storage index with a slot here (for a node's repairer and drain)."""
        out = []
        for p in self.slots_dir.glob("*/*"):
            try:
                out.append(bytes.fromhex(p.name))
            except ValueError:
                continue
        return sorted(out)

    def manifest(self, si: bytes, mhash: bytes) -> bytes | None:
        try:
            return (self.slot_dir(si, mhash) / "manifest").read_bytes()
        except FileNotFoundError:
            return None

    def list_shares(self, si: bytes, mhash: bytes) -> tuple[list[int], bytes | None]:
        """The share numbers held in slot (si, mhash) and its manifest ([] and None if no slot)."""
        manifest = self.manifest(si, mhash)
        if manifest is None:
            return [], None
        try:
            shnums = sorted(int(p.name) for p in self.slot_dir(si, mhash).iterdir() if p.name.isdigit())
        except FileNotFoundError:
            return [], None
        return shnums, manifest

    def holds(self, si: bytes, shnum: int) -> bool:
        """Whether any slot of ``si`` holds share ``shnum``."""
        return any(self.share_path(si, m, shnum).exists() for m in self.slots(si))

    # -- shares -------------------------------------------------------------------------
    def open_share(self, path: Path) -> tuple[ShareHeader, Levels, Levels]:
        with self._cache_lock:
            hit = self._cache.get(path)
            if hit is not None:
                self._cache.move_to_end(path)
                return hit
        try:
            with open(path, "rb") as f:
                hdr = parse_header(f.read(HEADER_SIZE))
                f.seek(hdr.tree_offset)
                trees = f.read(2 * hdr.tree_len)
        except (FileNotFoundError, NotADirectoryError) as e:
            raise NotFoundError("no such share") from e
        if len(trees) != 2 * hdr.tree_len:
            raise IntegrityError("share file is truncated")
        entry = (
            hdr,
            Levels.from_bytes(BLOCK_TREE, trees[: hdr.tree_len], hdr.nseg),
            Levels.from_bytes(SEGMENT_TREE, trees[hdr.tree_len :], hdr.nseg),
        )
        with self._cache_lock:
            if path not in self._cache:
                self._cache[path] = entry
                self._cache_bytes += len(trees)
            while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
                _, (h, _, _) = self._cache.popitem(last=False)
                self._cache_bytes -= 2 * h.tree_len
        return entry

    def forget(self, path: Path) -> None:
        with self._cache_lock:
            hit = self._cache.pop(path, None)
            if hit is not None:
                self._cache_bytes -= 2 * hit[0].tree_len

    def read_range(self, si: bytes, mhash: bytes, shnum: int, start: int, count: int,
                   with_manifest: bool = False) -> tuple[bytes, int, int, Path]:
        """(head, offset, length, path) of the reply for blocks [start, start+count) of the
        share in slot (si, mhash); the head carries the manifest when asked."""
        path = self.share_path(si, mhash, shnum)
        hdr, btree, stree = self.open_share(path)
        if not (0 <= start < hdr.nseg and count >= 1):
            raise UsageError("block range outside the share")
        count = min(count, hdr.nseg - start)
        end = start + count
        length = hdr.block_offset(end - 1) + hdr.block_len(end - 1) - hdr.block_offset(start)
        if length > MAX_RANGE_BYTES:
            raise UsageError(f"block range of {length} bytes exceeds the {MAX_RANGE_BYTES}-byte limit")
        manifest = self.manifest(si, mhash) if with_manifest else None
        if with_manifest and manifest is None:
            raise NotFoundError("no such share")
        head = encode_range_head(start, count, btree.range_proof(start, end), stree.range_proof(start, end), manifest)
        return head, hdr.block_offset(start), length, path

    def read_range_bytes(self, si: bytes, mhash: bytes, shnum: int, start: int, count: int,
                         with_manifest: bool = False) -> bytes:
        """The whole range reply as bytes (in-process grids and tests)."""
        head, off, length, path = self.read_range(si, mhash, shnum, start, count, with_manifest)
        with open(path, "rb") as f:
            f.seek(off)
            return head + f.read(length)
