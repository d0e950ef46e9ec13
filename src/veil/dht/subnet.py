"""The network a node's address belongs to: the fallback *family* of ids that cost one address.

A key pair is free and a puzzle-valid id costs CPU time, but a routable address block costs
money and paperwork, so the block an address sits in is what groups ids an attacker can make
cheaply: an IPv4 ``/24`` (the smallest block routed on the Internet), an IPv6 ``/32`` (what a
provider is allocated: ``/48`` and ``/56`` are handed to every customer, often for free).
Loopback, private, link-local and other non-global addresses name no family: they say nothing
about who runs a node (a devnet runs every node on 127.0.0.1), and a contact only counts after
it answered at its address, which a stranger on the Internet cannot do from a private one. A
host name is its own family (names are not resolved here; see docs/specs/dht.md, limits).
Imports nothing from Veil.
"""

from __future__ import annotations

import functools
import ipaddress

IPV4_PREFIX = 24
IPV6_PREFIX = 32


def host_of(address: str) -> str:
    """The host part of ``host:port`` or ``[v6]:port``."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def subnet_of(host: str) -> str | None:
    """``"net:203.0.113.0/24"``-style family of a host, or None when the address names none."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"host:{host.lower()}" if host else None
    if not ip.is_global:
        return None
    prefix = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return "net:" + str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@functools.lru_cache(maxsize=1 << 16)
def subnet_of_address(address: str) -> str | None:
    """``subnet_of`` the host of a ``host:port`` address (cached: routing checks it often)."""
    return subnet_of(host_of(address))
