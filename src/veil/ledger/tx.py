"""Transactions: canonical CBOR, signed by the sending account's Ed25519 key.

Wire: envelope ``["veil-tx", 1, body, sig]`` (envelope.py). Every body has ``chain``,
``type``, ``pub`` (the sender's 32-byte public key; the sender's address is its tagged
hash), ``nonce`` (the sender's next nonce) and ``fee``; the other keys depend on the type:

=====================  ========================================================
type                   fields
=====================  ========================================================
transfer               to (address), amount, memo (optional text <= 256), invoice (optional 16 bytes:
                       the payee's invoice id, docs/specs/invoices.md; carried, not interpreted)
channel_open           payee (address), deposit, expires (unix seconds)
channel_topup          channel (id), amount, expires (optional; may only grow)
channel_settle         channel, cheque (bytes, optional), close (bool)
channel_close_start    channel
channel_finalize       channel
channel_close          channel, cheque (optional), payee_key, consent: the payer closes at once,
                       with the payee's signed consent to that final cheque (close_consent.py)
lease_open             payee, auditor (optional address), root (32), blocks, bsize, size,
                       expires (the lease's end, unix seconds), amount (the escrow)
lease_claim            lease (id): the payee takes what has accrued
lease_challenge        lease: the payer or auditor asks the node to prove it keeps the share
lease_answer           lease, block (bytes), proof (list of 32-byte hashes): the node's proof
lease_fail             lease: a challenge went unanswered past its deadline
lease_move             lease, to (the new holder's address), amount (repair fee to the sender):
                       instead of lease_fail, the unearned escrow pays the share's new holder
stake                  amount, for (optional address; default the sender)
unstake                amount
withdraw               (none): released unbonding stake back to the balance
node_register          node (the node's public key), bond, proof (the node key's signature)
node_unbond            node (the node's address)
node_withdraw          node (the node's address)
validator_change       op ("add" | "remove"), key (public key), raft, api (HOST:PORT), approvals
name_commit            hash (32): H(name, owner, salt), the hidden half of a registration
name_register          name, salt, years: the reveal (names.md has every name rule)
name_renew             name, years
name_transfer          name, to (address)
name_set               name, key (record key: site | file | wallet | node | text:KEY), value
name_unset             name, key
name_sub               name (sub.parent), owner (optional address; absent: take the subname back)
name_bid               name (a short one), amount
name_claim             name: settle an auction that is over (anyone may send it)
=====================  ========================================================

``chain`` is the chain id: the hex of the genesis hash (genesis.py), so a transaction signed
for one chain can never apply on another, whatever the networks are called.

The transaction id is ``H("veil/tx-id/v1", wire bytes)``. Decoding checks structure only;
``verify_signature`` (or ``crypto.sigbatch.verify_many`` over ``signature_item()``) checks
the signature, and ``state.apply_tx`` the rules that depend on the ledger's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.crypto.sigbatch import verify_fast
from veil.crypto.sign import PUBLIC_KEY_SIZE, SigningKey
from veil.errors import LedgerError
from veil.ledger.address import ADDRESS_SIZE, address_of
from veil.ledger.cheque import MAX_CHEQUE_SIZE, Cheque, decode_cheque
from veil.ledger.envelope import (
    open_envelope,
    seal,
    sig_prefix,
    want_amount,
    want_bytes,
    want_fields,
    want_int,
)
from veil.ledger.lease import MAX_LEASE_BLOCK, MAX_LEASE_BLOCKS
from veil.ledger.names import MAX_SALT, RecordValue, check_name, check_record, check_record_key

MAGIC = "veil-tx"
VERSION = 1
MAX_TX_SIZE = MAX_CHEQUE_SIZE + 1024
MAX_ANSWER_SIZE = MAX_LEASE_BLOCK + 8192  # a lease_answer carries one share block and its proof
MAX_PROOF = 128
MAX_MEMO = 256
INVOICE_ID_SIZE = 16
MAX_EXPIRY = 2**40
_SIG_PREFIX = sig_prefix(labels.TX_SIG)
_H_TXID = TaggedHash(labels.TX_ID)

TRANSFER = "transfer"
CHANNEL_OPEN = "channel_open"
CHANNEL_TOPUP = "channel_topup"
CHANNEL_SETTLE = "channel_settle"
CHANNEL_CLOSE_START = "channel_close_start"
CHANNEL_FINALIZE = "channel_finalize"
CHANNEL_CLOSE = "channel_close"
LEASE_OPEN = "lease_open"
LEASE_CLAIM = "lease_claim"
LEASE_CHALLENGE = "lease_challenge"
LEASE_ANSWER = "lease_answer"
LEASE_FAIL = "lease_fail"
LEASE_MOVE = "lease_move"
STAKE = "stake"
UNSTAKE = "unstake"
WITHDRAW = "withdraw"
NODE_REGISTER = "node_register"
NODE_UNBOND = "node_unbond"
NODE_WITHDRAW = "node_withdraw"
VALIDATOR_CHANGE = "validator_change"
VALIDATOR_ADD = "add"
VALIDATOR_REMOVE = "remove"
NAME_COMMIT = "name_commit"
NAME_REGISTER = "name_register"
NAME_RENEW = "name_renew"
NAME_TRANSFER = "name_transfer"
NAME_SET = "name_set"
NAME_UNSET = "name_unset"
NAME_SUB = "name_sub"
NAME_BID = "name_bid"
NAME_CLAIM = "name_claim"
MAX_APPROVALS = 64
MAX_HOSTPORT = 255

_COMMON = frozenset({"chain", "type", "pub", "nonce", "fee"})
_SHAPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    TRANSFER: (_COMMON | {"to", "amount"}, frozenset({"memo", "invoice"})),
    CHANNEL_OPEN: (_COMMON | {"payee", "deposit", "expires"}, frozenset()),
    CHANNEL_TOPUP: (_COMMON | {"channel", "amount"}, frozenset({"expires"})),
    CHANNEL_SETTLE: (_COMMON | {"channel", "close"}, frozenset({"cheque"})),
    CHANNEL_CLOSE_START: (_COMMON | {"channel"}, frozenset()),
    CHANNEL_FINALIZE: (_COMMON | {"channel"}, frozenset()),
    CHANNEL_CLOSE: (_COMMON | {"channel", "payee_key", "consent"}, frozenset({"cheque"})),
    LEASE_OPEN: (_COMMON | {"payee", "root", "blocks", "bsize", "size", "expires", "amount"}, frozenset({"auditor"})),
    LEASE_CLAIM: (_COMMON | {"lease"}, frozenset()),
    LEASE_CHALLENGE: (_COMMON | {"lease"}, frozenset()),
    LEASE_ANSWER: (_COMMON | {"lease", "block", "proof"}, frozenset()),
    LEASE_FAIL: (_COMMON | {"lease"}, frozenset()),
    LEASE_MOVE: (_COMMON | {"lease", "to", "amount"}, frozenset()),
    STAKE: (_COMMON | {"amount"}, frozenset({"for"})),
    UNSTAKE: (_COMMON | {"amount"}, frozenset()),
    WITHDRAW: (_COMMON, frozenset()),
    NODE_REGISTER: (_COMMON | {"node", "bond", "proof"}, frozenset()),
    NODE_UNBOND: (_COMMON | {"node"}, frozenset()),
    NODE_WITHDRAW: (_COMMON | {"node"}, frozenset()),
    VALIDATOR_CHANGE: (_COMMON | {"op", "key", "raft", "api", "approvals"}, frozenset()),
    NAME_COMMIT: (_COMMON | {"hash"}, frozenset()),
    NAME_REGISTER: (_COMMON | {"name", "salt", "years"}, frozenset()),
    NAME_RENEW: (_COMMON | {"name", "years"}, frozenset()),
    NAME_TRANSFER: (_COMMON | {"name", "to"}, frozenset()),
    NAME_SET: (_COMMON | {"name", "key", "value"}, frozenset()),
    NAME_UNSET: (_COMMON | {"name", "key"}, frozenset()),
    NAME_SUB: (_COMMON | {"name"}, frozenset({"owner"})),
    NAME_BID: (_COMMON | {"name", "amount"}, frozenset()),
    NAME_CLAIM: (_COMMON | {"name"}, frozenset()),
}
NAME_KINDS = frozenset(k for k in _SHAPES if k.startswith("name_"))
TX_TYPES = frozenset(_SHAPES)


@dataclass(slots=True)
class Tx:
    raw: bytes
    body: bytes
    sig: bytes
    txid: bytes
    chain: str
    kind: str
    pub: bytes
    sender: bytes
    nonce: int
    fee: int
    to: bytes = b""  # transfer: recipient; channel_open: payee
    amount: int = 0  # transfer / topup amount; channel_open deposit
    memo: str | None = None
    invoice: bytes = b""  # transfer: the invoice it pays (empty: none)
    channel: bytes = b""
    expires: int = 0  # channel_open; channel_topup (0 = unchanged)
    cheque: Cheque | None = None
    close: bool = False
    parties: tuple[bytes, ...] = ()  # set by a validator: the channel's payer and payee, for history
    lease: bytes = b""  # lease_claim / lease_fail: the lease id
    auditor: bytes = b""  # lease_open (empty: the payer audits)
    root: bytes = b""
    nblocks: int = 0
    bsize: int = 0
    size: int = 0
    block: bytes = b""  # lease_answer: the challenged block and its Merkle path
    bproof: tuple[bytes, ...] = ()
    payee_key: bytes = b""  # channel_close: the payee's public key and its consent signature
    consent: bytes = b""
    node: bytes = b""  # node_register: the node's public key; validator_change: the validator's key
    proof: bytes = b""  # node_register: the node key's signature
    op: str = ""  # validator_change
    raft: str = ""
    api: str = ""
    approvals: tuple[tuple[bytes, bytes], ...] = ()
    name: str = ""  # name_*: the name (without .veil); name_commit uses ``root`` for its hash
    salt: bytes = b""
    years: int = 0
    rkey: str = ""  # name_set / name_unset: the record key
    rvalue: RecordValue = b""

    def signature_item(self) -> tuple[bytes, bytes, bytes]:
        return self.pub, _SIG_PREFIX + self.body, self.sig

    def verify_signature(self) -> None:
        if not verify_fast(*self.signature_item()):
            raise LedgerError("transaction signature does not verify", "bad_signature")

    def recipients(self) -> tuple[bytes, ...]:
        """Accounts other than the sender this transaction names (for history indexes)."""
        return ((self.to,) if self.to else ()) + self.parties


def tx_id(raw: bytes) -> bytes:
    return _H_TXID(raw)


def decode_tx(raw: bytes) -> Tx:
    """Parse and schema-check; LedgerError ``oversized``, ``malformed`` or ``bad_amount``."""
    what = "transaction"
    big = len(raw) > MAX_TX_SIZE  # only a lease_answer may be (it carries a share block)
    try:
        m, body, sig = open_envelope(raw, MAGIC, VERSION, MAX_ANSWER_SIZE, what)
    except LedgerError:
        if big:
            raise LedgerError(f"transaction of {len(raw)} bytes exceeds {MAX_TX_SIZE}", "oversized") from None
        raise
    kind = m.get("type")
    shape = _SHAPES.get(kind) if isinstance(kind, str) else None
    if shape is None:
        raise LedgerError(f"unknown transaction type {str(kind)[:32]!r}", "malformed")
    assert isinstance(kind, str)
    if big and kind != LEASE_ANSWER:
        raise LedgerError(f"transaction of {len(raw)} bytes exceeds {MAX_TX_SIZE}", "oversized")
    want_fields(m, what, *shape)
    chain = m["chain"]
    if not isinstance(chain, str) or not 0 < len(chain) <= 64:
        raise LedgerError("transaction: bad chain id", "malformed")
    pub = want_bytes(m, "pub", what, PUBLIC_KEY_SIZE)
    tx = Tx(
        raw=raw,
        body=body,
        sig=sig,
        txid=_H_TXID(raw),
        chain=chain,
        kind=kind,
        pub=pub,
        sender=address_of(pub),
        nonce=want_int(m, "nonce", what),
        fee=want_amount(m, "fee", what, allow_zero=True),
    )
    if kind == TRANSFER:
        tx.to = want_bytes(m, "to", what, ADDRESS_SIZE)
        tx.amount = want_amount(m, "amount", what)
        memo = m.get("memo")
        if memo is not None and (not isinstance(memo, str) or len(memo) > MAX_MEMO):
            raise LedgerError(f"transaction: memo must be text of at most {MAX_MEMO} characters", "malformed")
        tx.memo = memo
        if "invoice" in m:
            tx.invoice = want_bytes(m, "invoice", what, INVOICE_ID_SIZE)
    elif kind == CHANNEL_OPEN:
        tx.to = want_bytes(m, "payee", what, ADDRESS_SIZE)
        tx.amount = want_amount(m, "deposit", what, allow_zero=True)  # 0: a free-tier channel
        tx.expires = want_int(m, "expires", what, 1, MAX_EXPIRY)
    elif kind == LEASE_OPEN:
        tx.to = want_bytes(m, "payee", what, ADDRESS_SIZE)
        if "auditor" in m:
            tx.auditor = want_bytes(m, "auditor", what, ADDRESS_SIZE)
        tx.root = want_bytes(m, "root", what, 32)
        tx.nblocks = want_int(m, "blocks", what, 1, MAX_LEASE_BLOCKS)
        tx.bsize = want_int(m, "bsize", what, 1, MAX_LEASE_BLOCK)
        tx.size = want_int(m, "size", what, 1, 2**53)
        tx.expires = want_int(m, "expires", what, 1, MAX_EXPIRY)
        tx.amount = want_amount(m, "amount", what)
    elif kind in (LEASE_CLAIM, LEASE_CHALLENGE, LEASE_ANSWER, LEASE_FAIL, LEASE_MOVE):
        tx.lease = want_bytes(m, "lease", what, 32)
        if kind == LEASE_MOVE:
            tx.to = want_bytes(m, "to", what, ADDRESS_SIZE)
            tx.amount = want_amount(m, "amount", what, allow_zero=True)
        if kind == LEASE_ANSWER:
            tx.block = want_bytes(m, "block", what, max_size=MAX_LEASE_BLOCK)
            proof = m["proof"]
            if not isinstance(proof, list) or len(proof) > MAX_PROOF or not all(
                isinstance(h, bytes) and len(h) == 32 for h in proof
            ):
                raise LedgerError("transaction: proof must be a list of 32-byte hashes", "malformed")
            tx.bproof = tuple(proof)
    elif kind in _STAKE_KINDS:
        _decode_stake(tx, m)
    elif kind in NAME_KINDS:
        _decode_name(tx, m)
    else:
        tx.channel = want_bytes(m, "channel", what, 32)
        if kind == CHANNEL_TOPUP:
            tx.amount = want_amount(m, "amount", what)
            if "expires" in m:
                tx.expires = want_int(m, "expires", what, 1, MAX_EXPIRY)
        elif kind in (CHANNEL_SETTLE, CHANNEL_CLOSE):
            if kind == CHANNEL_SETTLE:
                close = m["close"]
                if not isinstance(close, bool):
                    raise LedgerError("transaction: close must be true or false", "malformed")
                tx.close = close
            else:
                tx.close = True
                tx.payee_key = want_bytes(m, "payee_key", what, PUBLIC_KEY_SIZE)
                tx.consent = want_bytes(m, "consent", what, 64)
            if "cheque" in m:
                tx.cheque = decode_cheque(want_bytes(m, "cheque", what, max_size=MAX_CHEQUE_SIZE))
    return tx


_STAKE_KINDS = frozenset({STAKE, UNSTAKE, WITHDRAW, NODE_REGISTER, NODE_UNBOND, NODE_WITHDRAW, VALIDATOR_CHANGE})


def _decode_stake(tx: Tx, m: dict[str, Any]) -> None:
    what = "transaction"
    kind = tx.kind
    if kind in (STAKE, UNSTAKE):
        tx.amount = want_amount(m, "amount", what)
        if "for" in m:
            tx.to = want_bytes(m, "for", what, ADDRESS_SIZE)
    elif kind == NODE_REGISTER:
        tx.node = want_bytes(m, "node", what, PUBLIC_KEY_SIZE)
        tx.amount = want_amount(m, "bond", what)
        tx.proof = want_bytes(m, "proof", what, 64)
    elif kind in (NODE_UNBOND, NODE_WITHDRAW):
        tx.to = want_bytes(m, "node", what, ADDRESS_SIZE)
    elif kind == VALIDATOR_CHANGE:
        op = m["op"]
        if op not in (VALIDATOR_ADD, VALIDATOR_REMOVE):
            raise LedgerError("transaction: op must be add or remove", "malformed")
        tx.op = op
        tx.node = want_bytes(m, "key", what, PUBLIC_KEY_SIZE)
        for k in ("raft", "api"):
            v = m[k]
            if not isinstance(v, str) or not 0 < len(v) <= MAX_HOSTPORT:
                raise LedgerError(f"transaction: {k} must be HOST:PORT", "malformed")
        tx.raft, tx.api = m["raft"], m["api"]
        apps = m["approvals"]
        if not isinstance(apps, list) or len(apps) > MAX_APPROVALS or not all(
            isinstance(a, list) and len(a) == 2 and isinstance(a[0], bytes) and len(a[0]) == PUBLIC_KEY_SIZE
            and isinstance(a[1], bytes) and len(a[1]) == 64 for a in apps
        ):
            raise LedgerError("transaction: approvals must be [[key, signature], ...]", "malformed")
        tx.approvals = tuple((a[0], a[1]) for a in apps)


def _decode_name(tx: Tx, m: dict[str, Any]) -> None:
    what = "transaction"
    kind = tx.kind
    if kind == NAME_COMMIT:
        tx.root = want_bytes(m, "hash", what, 32)
        return
    name = m["name"]
    if not isinstance(name, str):
        raise LedgerError("transaction: name must be text", "malformed")
    tx.name = check_name(name)
    if kind == NAME_REGISTER:
        tx.salt = want_bytes(m, "salt", what, max_size=MAX_SALT)
    if kind in (NAME_REGISTER, NAME_RENEW):
        tx.years = want_int(m, "years", what, 1, 1000)
    elif kind == NAME_TRANSFER:
        tx.to = want_bytes(m, "to", what, ADDRESS_SIZE)
    elif kind == NAME_SUB and "owner" in m:
        tx.to = want_bytes(m, "owner", what, ADDRESS_SIZE)
    elif kind in (NAME_SET, NAME_UNSET):
        tx.rkey = check_record_key(m["key"])
        if kind == NAME_SET:
            tx.rvalue = check_record(tx.rkey, m["value"])
    elif kind == NAME_BID:
        tx.amount = want_amount(m, "amount", what)


def build_tx(signer: SigningKey, chain: str, kind: str, nonce: int, fee: int, **fields: Any) -> bytes:
    """Sign a transaction (the wallet side); ``fields`` are the type's keys from the table above."""
    if kind not in _SHAPES:
        raise ValueError(f"unknown transaction type {kind!r}")
    body: dict[str, Any] = {"chain": chain, "type": kind, "pub": signer.public_key, "nonce": nonce, "fee": fee}
    body.update({k: v for k, v in fields.items() if v is not None})
    raw, _, _ = seal(MAGIC, VERSION, body, signer, labels.TX_SIG)
    return raw


def transfer(key: SigningKey, chain: str, nonce: int, fee: int, to: bytes, amount: int, memo: str | None = None,
             invoice: bytes | None = None) -> bytes:  # fmt: skip
    return build_tx(key, chain, TRANSFER, nonce, fee, to=to, amount=amount, memo=memo, invoice=invoice)


def channel_open(key: SigningKey, chain: str, nonce: int, fee: int, payee: bytes, deposit: int, expires: int) -> bytes:
    return build_tx(key, chain, CHANNEL_OPEN, nonce, fee, payee=payee, deposit=deposit, expires=expires)


def channel_topup(
    key: SigningKey, chain: str, nonce: int, fee: int, channel: bytes, amount: int, expires: int | None = None
) -> bytes:
    return build_tx(key, chain, CHANNEL_TOPUP, nonce, fee, channel=channel, amount=amount, expires=expires)


def channel_settle(
    key: SigningKey, chain: str, nonce: int, fee: int, channel: bytes, cheque: Cheque | None, close: bool
) -> bytes:
    return build_tx(
        key, chain, CHANNEL_SETTLE, nonce, fee, channel=channel, cheque=cheque.raw if cheque else None, close=close
    )


def channel_close_start(key: SigningKey, chain: str, nonce: int, fee: int, channel: bytes) -> bytes:
    return build_tx(key, chain, CHANNEL_CLOSE_START, nonce, fee, channel=channel)


def channel_finalize(key: SigningKey, chain: str, nonce: int, fee: int, channel: bytes) -> bytes:
    return build_tx(key, chain, CHANNEL_FINALIZE, nonce, fee, channel=channel)


def channel_close(key: SigningKey, chain: str, nonce: int, fee: int, channel: bytes, cheque: Cheque | None,
                  payee_key: bytes, consent: bytes) -> bytes:  # fmt: skip
    return build_tx(key, chain, CHANNEL_CLOSE, nonce, fee, channel=channel, cheque=cheque.raw if cheque else None,
                    payee_key=payee_key, consent=consent)  # fmt: skip


def lease_open(
    key: SigningKey, chain: str, nonce: int, fee: int, payee: bytes, root: bytes, nblocks: int, bsize: int, size: int,
    expires: int, amount: int, auditor: bytes | None = None,
) -> bytes:  # fmt: skip
    return build_tx(key, chain, LEASE_OPEN, nonce, fee, payee=payee, root=root, blocks=nblocks, bsize=bsize, size=size,
                    expires=expires, amount=amount, auditor=auditor)  # fmt: skip


def lease_claim(key: SigningKey, chain: str, nonce: int, fee: int, lease: bytes) -> bytes:
    return build_tx(key, chain, LEASE_CLAIM, nonce, fee, lease=lease)


def lease_challenge(key: SigningKey, chain: str, nonce: int, fee: int, lease: bytes) -> bytes:
    return build_tx(key, chain, LEASE_CHALLENGE, nonce, fee, lease=lease)


def lease_answer(key: SigningKey, chain: str, nonce: int, fee: int, lease: bytes, block: bytes,
                 proof: list[bytes]) -> bytes:  # fmt: skip
    return build_tx(key, chain, LEASE_ANSWER, nonce, fee, lease=lease, block=block, proof=list(proof))


def lease_fail(key: SigningKey, chain: str, nonce: int, fee: int, lease: bytes) -> bytes:
    return build_tx(key, chain, LEASE_FAIL, nonce, fee, lease=lease)


def stake(key: SigningKey, chain: str, nonce: int, fee: int, amount: int, beneficiary: bytes | None = None) -> bytes:
    return build_tx(key, chain, STAKE, nonce, fee, amount=amount, **({"for": beneficiary} if beneficiary else {}))


def unstake(key: SigningKey, chain: str, nonce: int, fee: int, amount: int) -> bytes:
    return build_tx(key, chain, UNSTAKE, nonce, fee, amount=amount)


def withdraw(key: SigningKey, chain: str, nonce: int, fee: int) -> bytes:
    return build_tx(key, chain, WITHDRAW, nonce, fee)


def node_register(key: SigningKey, chain: str, nonce: int, fee: int, node_pub: bytes, bond: int, proof: bytes) -> bytes:
    return build_tx(key, chain, NODE_REGISTER, nonce, fee, node=node_pub, bond=bond, proof=proof)


def node_unbond(key: SigningKey, chain: str, nonce: int, fee: int, node: bytes) -> bytes:
    return build_tx(key, chain, NODE_UNBOND, nonce, fee, node=node)


def node_withdraw(key: SigningKey, chain: str, nonce: int, fee: int, node: bytes) -> bytes:
    return build_tx(key, chain, NODE_WITHDRAW, nonce, fee, node=node)


def validator_change(key: SigningKey, chain: str, nonce: int, fee: int, op: str, validator: bytes, raft: str, api: str,
                     approvals: list[tuple[bytes, bytes]]) -> bytes:  # fmt: skip
    fields = {"op": op, "key": validator, "raft": raft, "api": api, "approvals": [[p, s] for p, s in approvals]}
    return build_tx(key, chain, VALIDATOR_CHANGE, nonce, fee, **fields)


def lease_move(key: SigningKey, chain: str, nonce: int, fee: int, lease: bytes, to: bytes, amount: int) -> bytes:
    return build_tx(key, chain, LEASE_MOVE, nonce, fee, lease=lease, to=to, amount=amount)
