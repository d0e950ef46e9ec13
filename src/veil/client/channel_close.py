"""A payer's cooperative channel close: ask the payee node for its consent (its latest cheque
and its signature over closing at exactly that cheque, ledger/close_consent.py), check it, and
build the ``channel_close`` transaction that ends the channel at once and refunds the rest of
the deposit. The node is found by asking the nodes the network knows for their terms (the
payee address is a node's account address) or given directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from veil.crypto.sign import SigningKey, node_id
from veil.errors import IntegrityError, LedgerError, VeilError
from veil.format.fields import get_bytes, require_map
from veil.format.textparse import parse_hostport
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.cheque import Cheque, decode_cheque
from veil.ledger.close_consent import consent_ok
from veil.ledger.state import Channel
from veil.protocol import payments as pay

from .ledger_client import LedgerClient
from .network import Network, NodeInfo


@dataclass(frozen=True)
class Consent:
    payee_key: bytes
    sig: bytes
    cheque: Cheque | None


def parse_consent(value: object, chain: str, cid: bytes, ch: Channel) -> Consent:
    """Check a node's reply: from the channel's payee, signed over this close, cheque by our payer."""
    w = "close consent"
    m = require_map(value, w, {"payee_key", "consent", "cheque"})
    key = get_bytes(m, "payee_key", w, 32)
    sig = get_bytes(m, "consent", w, 64)
    cheque = decode_cheque(get_bytes(m, "cheque", w, max_size=8192)) if "cheque" in m else None
    if address_of(key) != ch.payee:
        raise IntegrityError("the close consent is not from the channel's payee")
    if cheque is not None:
        cheque.verify(ch.payer_pub)
        if cheque.channel != cid:
            raise IntegrityError("the close consent carries a cheque for another channel")
    seq = cheque.seq if cheque is not None else ch.seq
    if not consent_ok(key, sig, chain, cid, seq, cheque.raw if cheque is not None else None):
        raise IntegrityError("the payee's close consent does not verify")
    return Consent(key, sig, cheque)


def payee_nodes(net: Network, ledger: LedgerClient, payee: bytes) -> list[NodeInfo]:
    """Where the payee node is: a registered node's key gives its node id, found in the network
    file or through the DHT; otherwise the nodes the network lists whose terms name ``payee``."""
    reg = ledger.node(payee)
    if reg is not None:
        nid = node_id(reg.pub)
        listed = [n for n in net.nodes if n.node_id == nid]
        if listed:
            return listed
        if net.bootstrap:
            rec = net._driver().find_node_record(nid, timeout=15)
            if rec is not None:
                host, port = parse_hostport(rec.address, "node address")
                return [NodeInfo(host, port, nid)]
    out = []
    for node in net.nodes:
        try:
            t = pay.Terms.from_wire(net.client(node, timeout=10).call("GET", "/v1/pay/terms"))
        except VeilError:
            continue
        if t.payee == payee:
            out.append(node)
    return out


def ask_consent(net: Network, nodes: list[NodeInfo], chain: str, cid: bytes, ch: Channel) -> Consent:
    """The first valid consent from ``nodes``; LedgerError ``no_consent`` if none gives one."""
    why = "no node of the network is this channel's payee"
    for node in nodes:
        try:
            return parse_consent(net.client(node, timeout=10).call("POST", "/v1/pay/close", {"channel": cid}), chain, cid, ch)
        except VeilError as e:
            why = f"{node.label}: {e}"
    raise LedgerError(f"the payee did not consent to a cooperative close ({why})", "no_consent")


def close_tx(key: SigningKey, chain: str, fee: int, cid: bytes, c: Consent, nonce: int) -> bytes:
    return txm.channel_close(key, chain, nonce, fee, cid, c.cheque, c.payee_key, c.sig)
