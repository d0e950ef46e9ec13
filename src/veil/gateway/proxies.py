"""Who the visitor is behind a reverse proxy: ``Forwarded`` / ``X-Forwarded-For`` from trusted proxies only.

A gateway behind nginx or caddy sees every request come from the proxy, so per-visitor budgets
(gateway/budget.py) and the access log would lump all visitors together; but the headers that
name the visitor are written by whoever sends them, so they are believed only when the
connection comes from a proxy the operator listed (``--trusted-proxy CIDR``, repeatable).

The rule (docs/specs/operations.md, "Client addresses"): with the peer trusted, take the
``Forwarded`` header's ``for=`` chain (RFC 7239), or if there is none the ``X-Forwarded-For``
chain, all occurrences in order; walk it from the right, past every address that is itself a
trusted proxy; the first other address is the visitor. An entry that is not an IP address
(``unknown``, an obfuscated ``_node`` or garbage) stops the walk: the visitor is then the
nearest trusted hop, so a forged or opaque entry can never pick someone else's budget. An
untrusted peer's headers are ignored entirely. No I/O; imports from veil.errors.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from veil.errors import UsageError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_HOPS = 32  # entries looked at per request; a longer chain is cut (from the left)


def parse_proxies(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    out = []
    for c in cidrs:
        try:
            out.append(ipaddress.ip_network(c.strip(), strict=False))
        except ValueError:
            raise UsageError(f"--trusted-proxy {c!r}: not an IP address or CIDR block (e.g. 127.0.0.1/32, 10.0.0.0/8)") from None
    return tuple(out)


def _ip(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _forwarded_node(value: str) -> str:
    """The address part of a ``for=`` node: strip quotes, brackets and the port."""
    v = value.strip().strip('"')
    if v.startswith("["):
        return v[1:].partition("]")[0]
    if v.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        return v.partition(":")[0]
    return v


def forwarded_chain(values: list[str]) -> list[str]:
    """The ``for=`` addresses of every ``Forwarded`` header, oldest hop first ("" where an element has none)."""
    chain = []
    for header in values:
        for element in header.split(","):
            node = ""
            for pair in element.split(";"):
                key, eq, val = pair.partition("=")
                if eq and key.strip().lower() == "for":
                    node = _forwarded_node(val)
            chain.append(node)
    return chain


def xff_chain(values: list[str]) -> list[str]:
    return [part.strip() for header in values for part in header.split(",")]


class TrustedProxies:
    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        self.networks = parse_proxies(cidrs)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, ip: IPAddress | None) -> bool:
        return ip is not None and any(ip.version == n.version and ip in n for n in self.networks)

    def client(self, peer: str, forwarded: list[str], x_forwarded_for: list[str]) -> str:
        """The visitor's address for a connection from ``peer`` carrying these header values."""
        peer_ip = _ip(peer)
        if not self.trusts(peer_ip):
            return peer
        chain = forwarded_chain(forwarded) if forwarded else xff_chain(x_forwarded_for)
        nearest = str(peer_ip)
        for entry in reversed(chain[-MAX_HOPS:]):
            ip = _ip(entry)
            if ip is None:
                return nearest
            if not self.trusts(ip):
                return str(ip)
            nearest = str(ip)
        return nearest
