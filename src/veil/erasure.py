"""k-of-n erasure coding of ciphertext segments. Pure: no I/O.

Codec ``isal-rs-cauchy/v1``: Reed-Solomon over GF(2^8) with a Cauchy generator matrix,
as implemented by Intel ISA-L and called through pyeclib (OpenStack Swift's codec). Cauchy
matrices make every k of the n blocks decodable (ISA-L's Vandermonde variant is not MDS for
wide codes). Each block is a liberasurecode fragment: an 80-byte header (index, sizes,
backend id) then the coded bytes. Measured here: ≈ 2-3.7 GB/s encode at 3-of-10 against
≈ 0.3 GB/s for zfec (docs/specs/erasure.md).
"""

from __future__ import annotations

import threading
from functools import lru_cache

from pyeclib.ec_iface import ECDriver

from veil.errors import IntegrityError

CODEC = "isal-rs-cauchy/v1"
CODECS = (CODEC,)
MAX_N = 255


class Codec:
    """Encoder/decoder for one (k, n). Thread-safe (one driver per thread)."""

    def __init__(self, k: int, n: int, name: str = CODEC) -> None:
        if name not in CODECS:
            raise IntegrityError(f"unknown erasure codec {name!r}")
        if not (1 <= k <= n <= MAX_N) or n - k > 128:
            raise IntegrityError(f"erasure parameters {k}-of-{n} are out of range")
        self.k, self.n, self.name = k, n, name
        self._local = threading.local()

    def _driver(self) -> ECDriver:
        d = getattr(self._local, "d", None)
        if d is None:
            # m = 0 is not accepted by liberasurecode; k = n is coded as one parity block never stored.
            d = ECDriver(k=self.k, m=max(1, self.n - self.k), ec_type="isa_l_rs_cauchy")
            self._local.d = d
        return d

    def encode(self, data: bytes | memoryview) -> list[bytes]:
        """n blocks of equal length; block i is the i-th share's piece of this segment."""
        return list(self._driver().encode(bytes(data)))[: self.n]

    def decode(self, blocks: dict[int, bytes | memoryview]) -> bytes:
        """The original data from any k blocks (keys are block indices)."""
        if len(blocks) < self.k:
            raise IntegrityError(f"need {self.k} blocks to decode, have {len(blocks)}")
        chosen = sorted(blocks)[: self.k]
        frags = [bytes(blocks[i]) for i in chosen]
        for i, f in zip(chosen, frags, strict=True):
            if _fragment_index(f) != i:
                raise IntegrityError("erasure block carries the wrong index")
        try:
            return bytes(self._driver().decode(frags))
        except Exception as e:  # pyeclib raises its own hierarchy
            raise IntegrityError(f"erasure decoding failed: {e}") from e

    def block_size(self, data_len: int) -> int:
        return _block_size(self.k, self.n, data_len)


def _fragment_index(frag: bytes) -> int:
    # liberasurecode fragment header: little-endian uint32 index first.
    return int.from_bytes(frag[0:4], "little") if len(frag) >= 4 else -1


@lru_cache(maxsize=256)
def _block_size(k: int, n: int, data_len: int) -> int:
    return len(Codec(k, n).encode(b"\x00" * data_len)[0])

