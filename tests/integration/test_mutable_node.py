"""A real `veil node run --role mutable` process over TLS on 127.0.0.1, spoken to with raw
requests: versions stored and kept, a forged signature and a lower sequence number refused, a
lost compare-and-swap answered 409 with the current record, everything still there after kill -9."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.crypto.sign import SigningKey
from veil.devnet.specs import free_port
from veil.format import cbor
from veil.format.mutable import SlotRecord, parse_record, sign_record, slot_id
from veil.net.client import PeerClient
from veil.protocol.mutable import (
    parse_conflict,
    parse_stored,
    parse_versions,
    put_path,
    slot_path,
    versions_path,
)

pytestmark = pytest.mark.integration
KEY = SigningKey(bytes([11]) * 32)
SLOT = slot_id(KEY.public_key)


class MutableNode:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> PeerClient:
        self.data.mkdir(parents=True, exist_ok=True)
        (self.data / "node.json").unlink(missing_ok=True)
        log = open(self.data / "node.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(self.data),
             "--listen", f"127.0.0.1:{self.port}", "--role", "mutable", *extra],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        while not (self.data / "node.json").exists():
            assert self.proc.poll() is None, (self.data / "node.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "node did not start"
            time.sleep(0.05)
        node_id = bytes.fromhex(json.loads((self.data / "node.json").read_text())["node_id"])
        return PeerClient("127.0.0.1", self.port, node_id)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[MutableNode]:
    n = MutableNode(tmp_path / "node")
    try:
        yield n
    finally:
        n.stop(signal.SIGKILL)


def put(c: PeerClient, rec: SlotRecord | bytes, expect: SlotRecord | bool | None = False) -> tuple[int, bytes]:
    raw = rec.raw if isinstance(rec, SlotRecord) else rec
    path = put_path(SLOT, expect.checkstring if isinstance(expect, SlotRecord) else None, cas=expect is not False)
    r = c.request("PUT", path, raw, {"Content-Type": "application/octet-stream"}, check=False)
    return r.status, r.body


def test_slots_on_a_real_node(node: MutableNode) -> None:
    c = node.start()
    v1 = sign_record(KEY, 1, b"version one")
    v2 = sign_record(KEY, 2, b"version two", (v1.checkstring,))
    status, body = put(c, v1, None)
    assert status == 200 and parse_stored(cbor.decode(body, 1024)).hash == v1.hash
    assert put(c, v1, None)[0] == 200  # a retried PUT of the same record is fine
    assert put(c, v2, v1)[0] == 200
    assert c.request("GET", slot_path(SLOT)).body == v2.raw
    assert c.request("GET", slot_path(SLOT, 1)).body == v1.raw
    assert [v.seq for v in parse_versions(c.call("GET", versions_path(SLOT)))] == [2, 1]

    # A forged signature (one flipped byte) is refused and nothing changes.
    v3 = sign_record(KEY, 3, b"version three", (v2.checkstring,))
    forged = bytearray(v3.raw)
    forged[-70] ^= 1
    status, body = put(c, bytes(forged))
    assert status == 400 and b"signature" in body
    # Another key's record for this slot id is refused too.
    assert put(c, sign_record(SigningKey(bytes(32)), 9, b"x"))[0] == 400

    # A lower (or equal) sequence number: 409 with the current record, which verifies.
    status, body = put(c, sign_record(KEY, 1, b"old sibling"))
    assert status == 409
    current = parse_conflict(body)
    assert current is not None and parse_record(current, SLOT) == v2

    # A compare-and-swap based on v1 when v2 is current: 409 with v2; based on v2: stored.
    status, body = put(c, v3, v1)
    assert status == 409 and parse_conflict(body) == v2.raw
    assert put(c, v3, v2)[0] == 200
    # A version not built on the current one is refused even without compare-and-swap.
    status, body = put(c, sign_record(KEY, 4, b"built on v1", (v1.checkstring,)))
    assert status == 409 and b"not built on" in body

    # Bad requests get a status, not a crash.
    assert c.request("GET", "/v1/mutable/zz", check=False).status == 400
    assert c.request("GET", slot_path(bytes(32)), check=False).status == 404
    assert c.request("GET", slot_path(SLOT, 99), check=False).status == 404
    assert c.request("PUT", f"/v1/mutable/{SLOT.hex()}?expect=junk", v3.raw, check=False).status == 400
    # Too large is refused from the header, before any of the body is read.
    assert c.request("PUT", put_path(SLOT, None, cas=False), b"", {"Content-Length": "400000"},
                     check=False).status == 413
    c.close()

    # kill -9 right after a write: every stored version is still there after a restart.
    node.stop(signal.SIGKILL)
    c = node.start()
    assert c.request("GET", slot_path(SLOT)).body == v3.raw
    assert [v.seq for v in parse_versions(c.call("GET", versions_path(SLOT)))] == [3, 2, 1]
    status, body = put(c, sign_record(KEY, 3, b"sibling after restart", (v2.checkstring,)), v2)
    assert status == 409 and parse_conflict(body) == v3.raw
    status_info = c.call("GET", "/v1/node")
    assert status_info["roles"]["mutable"]["slots"] == 1
    c.close()


def test_the_versions_kept_are_a_node_setting(node: MutableNode) -> None:
    """`veil node run --folder-versions 2`: the current version and one before it are kept."""
    c = node.start("--folder-versions", "2")
    prev: SlotRecord | None = None
    for seq in (1, 2, 3):
        rec = sign_record(KEY, seq, f"version {seq}".encode(), (prev.checkstring,) if prev else ())
        assert put(c, rec, prev if prev else None)[0] == 200
        prev = rec
    assert [v.seq for v in parse_versions(c.call("GET", versions_path(SLOT)))] == [3, 2]
    assert c.request("GET", slot_path(SLOT, 1), check=False).status == 404
    assert c.call("GET", "/v1/node")["roles"]["mutable"]["keep"] == 2
    c.close()
