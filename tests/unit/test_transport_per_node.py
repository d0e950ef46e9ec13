"""The TLS storage transport keeps at most ``per_node`` requests in flight to one node (the
rest wait in the client), while other nodes are not held up."""

from __future__ import annotations

import threading

from veil.net.storage_transport import TlsTransport
from veil.protocol.nodeinfo import NodeInfo


def test_per_node_bound_waits_and_other_nodes_pass() -> None:
    tr = TlsTransport(per_node=2)
    a, b = NodeInfo("127.0.0.1", 1, bytes(32)), NodeInfo("127.0.0.1", 2, bytes([1]) * 32)
    release = threading.Event()
    inside: list[str] = []
    lock = threading.Lock()
    entered = threading.Semaphore(0)

    def hold(node: NodeInfo, tag: str) -> None:
        with tr._slot(node):
            with lock:
                inside.append(tag)
            entered.release()
            release.wait(30)

    threads = [threading.Thread(target=hold, args=(a, f"a{i}")) for i in range(3)]
    threads.append(threading.Thread(target=hold, args=(b, "b0")))
    for t in threads:
        t.start()
    for _ in range(3):  # a0, a1 and b0 get in; a2 waits for a slot of node a
        assert entered.acquire(timeout=30)
    assert not entered.acquire(timeout=0.2)
    with lock:
        assert sorted(inside) in (["a0", "a1", "b0"], ["a0", "a2", "b0"], ["a1", "a2", "b0"])
    release.set()
    assert entered.acquire(timeout=30)  # the third request to a went in once a slot was free
    for t in threads:
        t.join(30)
    assert sorted(inside) == ["a0", "a1", "a2", "b0"]
    tr.close()
