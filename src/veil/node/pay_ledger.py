"""A charging node's view of the ledger: one lazy client, the chain's parameters and the
node's channel book (docs/specs/payments.md).

Everything the gate, the settler, the lease book and the earnings report ask the ledger goes
through here, so there is one connection, one ``Params`` and one book. ``refresh`` learns a
channel paying this node and reports its payer's allowance to ``on_channel`` (the free
credit's bookkeeping).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from veil.client.ledger_client import LedgerClient
from veil.crypto.sign import SigningKey
from veil.ledger.channelbook import ChannelBook, ChequeStore
from veil.ledger.params import Params
from veil.ledger.state import Channel

OnChannel = Callable[[bytes, bytes, int], None]  # (payer, channel id, allowance left)


class GateLedger:
    def __init__(
        self,
        endpoint: str,
        address: bytes,
        store: ChequeStore,
        expiry_margin: int,
        on_channel: OnChannel,
        connect: Callable[[str], LedgerClient] = LedgerClient.from_endpoint,
    ) -> None:
        self.endpoint = endpoint
        self.address = address
        self.store = store
        self.expiry_margin = expiry_margin
        self._on_channel = on_channel
        self._connect = connect
        self._client: LedgerClient | None = None
        self._params: Params | None = None
        self._book: ChannelBook | None = None
        self._lock = threading.Lock()

    def client(self) -> LedgerClient:
        with self._lock:
            if self._client is None:
                self._client = self._connect(self.endpoint)
            return self._client

    def setup(self) -> tuple[ChannelBook, Params]:
        """The channel book and the chain's parameters (read from the genesis once)."""
        if self._book is not None and self._params is not None:
            return self._book, self._params
        params = self.client().genesis().params
        with self._lock:
            if self._book is None:
                self._params = params
                self._book = ChannelBook(params, self.address, self.store, expiry_margin=self.expiry_margin)
            assert self._params is not None
            return self._book, self._params

    @property
    def ready_book(self) -> ChannelBook | None:
        """The book if it was set up (no ledger round trip)."""
        return self._book

    def channel(self, cid: bytes) -> Channel | None:
        """A channel paying this node: from the book, else from the ledger."""
        book, _ = self.setup()
        ch = book.channel(cid)
        return ch if ch is not None else self.refresh(cid)

    def refresh(self, cid: bytes) -> Channel | None:
        """Learn a channel (and its payer's allowance) from the ledger; None if it does not pay us."""
        book, _ = self.setup()
        client = self.client()
        ch = client.channel(cid)
        if ch is None or ch.payee != self.address:
            return None
        book.track(cid, ch)
        self._on_channel(ch.payer, cid, int(client.account(ch.payer)["allowance_left"]))
        return book.channel(cid)

    def submit_own(self, key: SigningKey, build: Callable[[int], bytes]) -> tuple[bytes, int]:
        """Submit one of the node's own transactions with the nonce-retry helper."""
        return self.client().submit_with_nonce(key, build)
