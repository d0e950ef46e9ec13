"""Which uploader a charging node must see rewarded for a file: the ``payout`` of the
manifest of the slot being read, (storage index, manifest hash) (docs/specs/payments.md, step 5).

Only an answer read from a manifest is cached. "No manifest here yet" (a download that
arrives while the upload is still placing the manifest) is never cached: caching it as
"no payout" would make the node refuse honest cheques and accept ones that skip the
uploader's reward until the cache cleared (issue 19 item 9).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from veil.format.manifest import parse_manifest

MAX_CACHED = 4096


@dataclass(frozen=True)
class Payout:
    known: bool  # False: this node holds no manifest for the file (yet)
    address: bytes | None = None  # the manifest's payout address; None: the file names none


UNKNOWN = Payout(False)


class PayoutIndex:
    def __init__(self, manifest_of: Callable[[bytes, bytes], bytes | None], limit: int = MAX_CACHED) -> None:
        self._manifest_of = manifest_of
        self._limit = limit
        self._cache: dict[tuple[bytes, bytes], Payout] = {}
        self._lock = threading.Lock()

    def lookup(self, si: bytes, mhash: bytes) -> Payout:
        with self._lock:
            hit = self._cache.get((si, mhash))
        if hit is not None:
            return hit
        raw = self._manifest_of(si, mhash)
        if raw is None:
            return UNKNOWN
        p = Payout(True, parse_manifest(raw).payout)
        with self._lock:
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[(si, mhash)] = p
        return p
