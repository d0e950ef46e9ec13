"""Reading files for browsers: manifests and verified sealed-segment ranges, by verify cap only.

Locating a file asks every node, so the result is cached briefly per verify cap; a range read
then goes straight to the holders. The gateway erasure-decodes and checks every segment
against the manifest's segment tree (client.download.Fetcher) but cannot decrypt.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from veil.client.download import Fetcher
from veil.client.locate import Located, locate
from veil.client.network import Network
from veil.client.payer import stop_reason
from veil.errors import PaymentRequiredError, UsageError, VeilError
from veil.format.caps import VerifyCap
from veil.gateway.pay import NO_WALLET, GatewayWallet

LOCATE_TTL = 30.0
CACHE_SIZE = 256
MAX_RANGE_SEGMENTS = 1 << 20  # a whole file may be asked in one streamed response


class FileReader:
    def __init__(self, network: Callable[[], Network], clock: Callable[[], float] = time.monotonic,
                 wallet: GatewayWallet | None = None) -> None:
        self._network = network
        self.wallet = wallet
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[VerifyCap, tuple[float, Located]] = OrderedDict()

    def located(self, vcap: VerifyCap) -> Located:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(vcap)
            if hit is not None and now - hit[0] < LOCATE_TTL:
                self._cache.move_to_end(vcap)
                return hit[1]
        loc = locate(self._network(), vcap.storage_index, vcap.manifest_hash)
        with self._lock:
            self._cache[vcap] = (now, loc)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return loc

    def forget(self, vcap: VerifyCap) -> None:
        with self._lock:
            self._cache.pop(vcap, None)

    def segment_range(self, vcap: VerifyCap, start: int, count: int | None,
                      visitor: str = "") -> tuple[int, int, int, Iterator[bytes]]:  # fmt: skip
        """(first, last, byte length, iterator of sealed segments) for segments [start, start+count);
        ``visitor`` (the client's address) is whose budget pays."""
        loc = self.located(vcap)
        man = loc.manifest
        if start < 0 or start >= man.nseg:
            raise UsageError(f"segment {start} is outside the file ({man.nseg} segments)")
        last = man.nseg - 1 if count is None else min(man.nseg - 1, start + count - 1)
        if count is not None and count < 1:
            raise UsageError("count must be at least 1")
        length = sum(man.ciphertext_len(i) for i in range(start, last + 1))
        net = self._network()
        payer = self.wallet.payer_for(net, visitor, vcap.storage_index) if self.wallet is not None else None
        fetcher = Fetcher(net, vcap.storage_index, loc, [], payer)
        segments = fetcher.segments(start, last)
        # The first segment is fetched before answering, so "too few shares" is a clean 503
        # (402 when the nodes charge and we cannot pay) rather than a response cut off after
        # its headers.
        try:
            _, first = next(segments)
        except VeilError as e:
            reason = stop_reason(payer, e)
            if reason is not e:
                raise reason from e
            if fetcher.refused_payment:
                raise PaymentRequiredError(NO_WALLET if payer is None else f"the nodes holding this file "
                                           f"charge for downloads and refused this gateway's payment: {e}") from e
            raise

        def body() -> Iterator[bytes]:
            try:
                yield first
                for _, ct in segments:
                    yield ct
            finally:
                close = getattr(segments, "close", None)  # a generator: stop its fetch threads now
                if close is not None:
                    close()

        return start, last, length, body()
