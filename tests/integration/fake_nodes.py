"""Hostile storage nodes for integration tests: real pinned TLS 1.3 servers (a node's own
certificate and key type) that misbehave on purpose. ``drip``: answers every request with a
200 whose body arrives one byte every 2 s. ``ansi``: answers every request with an error
whose text carries terminal escape sequences."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

from veil.crypto.idpuzzle import DEVNET_ID_BITS, grind_key
from veil.crypto.sign import SigningKey, node_id
from veil.format import cbor
from veil.net.tls import server_context
from veil.protocol.placement import permuted

EVIL = "\x1b[31mEVIL\x1b[0m\x1b]0;owned\x07\x1b[2J text"


class FakeNode:
    def __init__(self, tmp: Path, mode: str, key: SigningKey | None = None) -> None:
        self.key = key or grind_key(DEVNET_ID_BITS)[0]  # a valid id: a client drops one that is not
        self.node_id = node_id(self.key.public_key)
        self.mode = mode
        self.ctx = server_context(self.key, tmp / f"fake-{self.node_id.hex()[:8]}")
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.requests = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def json(self) -> dict[str, object]:
        return {"host": "127.0.0.1", "port": self.port, "node_id": self.node_id.hex(), "roles": ["storage"]}

    def close(self) -> None:
        self.stop.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
            f = conn.makefile("rb")
            while not self.stop.is_set():
                length = 0
                line = f.readline(65536)
                if not line:
                    return
                while (h := f.readline(65536)) not in (b"\r\n", b"\n", b""):
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":")[1])
                f.read(length)
                self.requests += 1
                if self.mode == "ansi":
                    body = cbor.encode({"error": "bad\x1b[5m", "message": EVIL})
                    conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Type: application/cbor\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                for _ in range(100000):  # one byte every 2 s: never trips a per-read timeout
                    if self.stop.wait(2):
                        return
                    conn.sendall(b"x")
        except (OSError, ssl.SSLError, ValueError):
            return


def key_ranked_first(si: bytes, others: list[bytes], tries: int = 10_000) -> SigningKey:
    """A node key whose id solves the devnet's id puzzle and comes first in the rendezvous order
    of ``si`` among ``others``."""
    for _ in range(tries):
        k = grind_key(DEVNET_ID_BITS)[0]
        ids = [node_id(k.public_key), *others]
        if permuted(si, ids)[0] == 0:
            return k
    raise AssertionError("no key ranked first")
