"""The site half of `veil bench names`: time to first byte of a site page through `veil proxy`,
directly and over onion circuits, against this run's own ceiling (the same page read with the
client library straight from the nodes, no proxy, no HTTP).

A fresh devnet in a temporary directory (storage nodes, relays, one validator with a 2 s
commit-reveal wait); a name registered, a small site published, and two proxies started in this
process (``gateway/site_proxy.py``), one direct and one with every node request over circuits.
Each sample is one request on a new connection, timed until the response head arrives (the
proxy answers after it has the page, so this is the whole fetch). The checked site record is
reused for 10 s by the proxy, so samples after the first measure the folder and file reads.
"""

from __future__ import annotations

import http.client
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from veil.client.download import download
from veil.client.folders import walk
from veil.client.names import NameClient
from veil.client.network import Network, load_network
from veil.client.sites import SiteReader, publish
from veil.crypto.sign import SigningKey
from veil.devnet.ledger import DEVNET_CHAIN, devnet_ledger_client, faucet
from veil.devnet.manager import Devnet
from veil.format.caps import parse_read_cap
from veil.format.folder_caps import parse_folder_cap
from veil.gateway.site_proxy import start_proxy
from veil.ledger.address import address_of
from veil.ledger.amount import UNIT
from veil.ledger.names import SITE
from veil.ledger.params import Params

NAME = "benchsite"


def _ttfb(port: int, path: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        t0 = time.perf_counter()
        conn.request("GET", f"http://{NAME}.veil{path}", headers={"Host": f"{NAME}.veil"})
        r = conn.getresponse()
        dt = time.perf_counter() - t0
        body = r.read()
        if r.status != 200 or b"bench" not in body:
            raise RuntimeError(f"the proxy answered {r.status}")
        return dt
    finally:
        conn.close()


def _library(net: Network, cap: str) -> float:
    t0 = time.perf_counter()
    _, e = walk(net, parse_folder_cap(cap), ["index.html"])
    assert e is not None
    download(net, parse_read_cap(e.cap), io.BytesIO())
    return time.perf_counter() - t0


def _fixed(net: Network) -> Callable[[], Network]:
    return lambda: net


def run_site_ttfb(rounds: int = 10, nodes: int = 5, relays: int = 3, hops: int = 3) -> dict[str, Any]:
    old_home = os.environ.get("VEIL_HOME")
    with tempfile.TemporaryDirectory(prefix="veil-bench-sites-") as tmp:
        os.environ["VEIL_HOME"] = tmp  # the site alias and the names floor of this run
        d = Devnet(Path(tmp) / "devnet")
        servers = []
        try:
            d.up(nodes, ["storage"], [], params=Params(chain_id=DEVNET_CHAIN, name_commit_min=2, name_commit_max=600),
                 relays=relays)  # fmt: skip
            path = d.static_network_path
            key = SigningKey.generate()
            faucet(d, address_of(key.public_key), 100 * UNIT)
            nc = NameClient(devnet_ledger_client(d))
            nc.register(key, NAME)
            site = Path(tmp) / "site"
            site.mkdir()
            (site / "index.html").write_bytes(b"<!doctype html><title>bench</title>" + b"<p>bench</p>" * 400)
            direct = load_network(path)
            pub = publish(direct, site, NAME, lambda _w: None, k=3, n=nodes, happy=nodes)
            rcap = pub.wcap.read_cap().to_string()
            nc.set_record(key, NAME, SITE, rcap)
            anon = load_network(path)
            anon.use_circuits(hops)
            res: dict[str, Any] = {"nodes": nodes, "relays": relays, "hops": hops, "rounds": rounds,
                                   "load_before": os.getloadavg()[0]}  # fmt: skip
            res["library_s"] = statistics.median(_library(direct, rcap) for _ in range(rounds))
            for label, net in (("direct", direct), ("circuits", anon)):
                srv = start_proxy("127.0.0.1", 0, SiteReader(NameClient(devnet_ledger_client(d)), _fixed(net)))
                servers.append(srv)
                port = srv.server_address[1]
                res[f"{label}_first_s"] = _ttfb(port, "/")  # the name resolved and checked, then the page
                res[f"{label}_s"] = statistics.median(_ttfb(port, "/") for _ in range(rounds))
            res["load_after"] = os.getloadavg()[0]
            direct.close()
            anon.close()
            return res
        finally:
            for srv in servers:
                srv.shutdown()
                srv.server_close()
            d.down()
            if old_home is None:
                os.environ.pop("VEIL_HOME", None)
            else:
                os.environ["VEIL_HOME"] = old_home
