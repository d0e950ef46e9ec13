"""Fast Ed25519 verification for hot paths: the same libsodium verifier as ``sign.verify``,
called without per-call Python object churn, and spread over threads for batches.

libsodium is reached through PyNaCl's cffi module, whose calls release the GIL, so a batch
split over threads verifies on every core. ``prefixed`` lets callers pass a domain-separation
prefix (a signature label) without concatenating it themselves.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from nacl._sodium import ffi, lib

from veil.crypto.sign import PUBLIC_KEY_SIZE, SIGNATURE_SIZE

_MAX_MESSAGE = 1 << 20
_local = threading.local()
_open = lib.crypto_sign_open

# Below this many signatures a thread hand-off costs more than it saves.
_PARALLEL_MIN = 64
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _buffers() -> tuple[object, object]:
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = (ffi.new("unsigned char[]", _MAX_MESSAGE + SIGNATURE_SIZE), ffi.new("unsigned long long *"))
        _local.bufs = bufs
    return bufs


def verify_fast(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE or len(message) > _MAX_MESSAGE:
        return False
    out, outlen = _buffers()
    sm = signature + message
    return bool(_open(out, outlen, sm, len(sm), public_key) == 0)


def _verify_chunk(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    return [verify_fast(pk, msg, sig) for pk, msg, sig in items]


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=cpu_count(), thread_name_prefix="ed25519")
        return _pool


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def verify_many(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """Verify (public key, message, signature) triples; one bool per item, in order."""
    n = len(items)
    workers = cpu_count()
    if n < _PARALLEL_MIN or workers == 1:
        return _verify_chunk(items)
    step = -(-n // workers)
    chunks = [items[i : i + step] for i in range(0, n, step)]
    out: list[bool] = []
    for part in _executor().map(_verify_chunk, chunks):
        out.extend(part)
    return out
