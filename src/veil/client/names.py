"""Names for a client: resolve ``alice.veil`` with a proof checked here (names.md), and the
owner's transactions (register by commit-reveal, renew, transfer, records, subnames, auctions).

``NameClient.resolve`` does not trust the validator that answers: it checks the answer against a
majority of the validators this client pins (``names_proof.verify_answer``) and refuses a block
older than the newest final height it has seen before (kept per chain in
``$VEIL_HOME/names-floor.json``). Every other command that takes a cap or an address takes a name
through ``wallet_of`` / ``cap_of``.

Imports from: veil.durable, veil.errors, veil.crypto, veil.format, veil.ledger, veil.client.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from veil.crypto.sign import SigningKey
from veil.durable import write_json_atomic
from veil.errors import IntegrityError, LedgerError, NotFoundError, UnavailableError, UsageError
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.block import BlockHeader, decode_header
from veil.ledger.names import (
    AUCTION_MAX_LEN,
    SUFFIX,
    Auction,
    NameRec,
    commit_hash,
    parse_name,
    record_key,
    yearly_fee,
)
from veil.ledger.names_proof import Resolution, verify_answer

from .ledger_client import LedgerClient, parse_endpoints
from .network import default_network_path, load_network, veil_home

RETRY_SECONDS = 20.0  # how long a lookup waits for the newest final block's tree (just after a restart)


def is_name(text: str) -> bool:
    """Whether ``text`` (maybe followed by ``/path``) starts with a ``.veil`` name rather than a cap."""
    head = text.strip().split("/", 1)[0].lower()
    return head.endswith(SUFFIX) and not head.startswith("veil:") and len(head) > len(SUFFIX)


def default_ledger(network_path: Path | None = None, genesis: bytes | None = None) -> LedgerClient:
    """The validators from $VEIL_VALIDATOR, else the network file (genesis pinned from $VEIL_GENESIS
    or the network file)."""
    env_pin = os.environ.get("VEIL_GENESIS")
    if genesis is None and env_pin:
        try:
            genesis = bytes.fromhex(env_pin.strip())
        except ValueError as e:
            raise UsageError("VEIL_GENESIS must be 64 hex characters") from e
    spec = os.environ.get("VEIL_VALIDATOR")
    if spec:
        return LedgerClient(parse_endpoints(spec), genesis)
    p = network_path or default_network_path()
    if not p.exists():
        raise UsageError("names need the ledger: pass --validator NODEID@HOST:PORT, set VEIL_VALIDATOR, "
                         "or run `veil devnet up`")  # fmt: skip
    net = load_network(p)
    eps = [(n.host, n.port, n.node_id) for n in net.nodes if "validator" in n.roles]
    if not eps:
        raise UsageError(f"the network file {p} lists no validator, so names cannot be resolved")
    pin = net.extra.get("genesis")
    return LedgerClient(eps, genesis or (bytes.fromhex(pin) if isinstance(pin, str) and len(pin) == 64 else None))


class NameClient:
    def __init__(self, ledger: LedgerClient, floor_path: Path | None = None) -> None:
        self.ledger = ledger
        self.trusted = frozenset(pin for _, _, pin in ledger.endpoints)
        self.floor_path = floor_path
        self._floor: int | None = None
        self._certified: dict[bytes, BlockHeader] = {}  # headers whose certificate was checked already

    # -- resolving -------------------------------------------------------------------------

    @property
    def floor(self) -> int:
        """The newest final height this client has seen on this chain (older answers are stale)."""
        if self._floor is None:
            self._floor = int(self._floors().get(self.ledger.chain, 0))
        return self._floor

    def _floors(self) -> dict[str, Any]:
        if self.floor_path is None:
            return {}
        try:
            v = json.loads(self.floor_path.read_text())
            return v if isinstance(v, dict) else {}
        except (OSError, ValueError):
            return {}

    def _raise_floor(self, height: int) -> None:
        if height <= self.floor:
            return
        self._floor = height
        if self.floor_path is not None:
            got = self._floors()
            got[self.ledger.chain] = height
            write_json_atomic(self.floor_path, got)

    def answer(self, name: str) -> Any:
        """The raw (unchecked) answer for ``name``, waiting out a validator's brief 503."""
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                return self.ledger.request("GET", f"/v1/ledger/name/{name}")
            except UnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def resolve(self, text: str) -> Resolution:
        """``text`` (``alice``, ``alice.veil``, ``blog.alice.veil``) checked against a certified block."""
        name = parse_name(text)
        res = verify_answer(self.answer(name), name, self.ledger.chain, self.trusted, self.floor, self._certified)
        self._raise_floor(res.height)
        return res

    def active(self, text: str) -> Resolution:
        res = self.resolve(text)
        if res.status != "active":
            raise NotFoundError(f"{res.name}.veil is {res.status}")
        return res

    def wallet_of(self, text: str) -> bytes:
        """The address a name's ``wallet`` record points at (checked); NotFoundError without one."""
        res = self.active(text)
        v = res.get("wallet")
        if not isinstance(v, bytes):
            raise NotFoundError(f"{res.name}.veil has no wallet record (`veil name set {res.name} wallet ADDR`)")
        return v

    def cap_of(self, text: str) -> tuple[str, list[str], str]:
        """``NAME[/path]`` -> (cap, path parts, kind): the site folder cap and the path in it, or,
        with no path and no site, the file record's cap."""
        head, sep, rest = text.strip().partition("/")
        res = self.active(head)
        parts = [p for p in rest.split("/") if p] if sep else []
        site, file = res.get("site"), res.get("file")
        if isinstance(site, str) and (parts or not isinstance(file, str)):
            return site, parts, "site"
        if isinstance(file, str) and not parts:
            return file, [], "file"
        what = "site record" if parts else "site or file record"
        raise NotFoundError(f"{res.name}.veil has no {what}")

    # -- reading (unproven conveniences for the owner) -------------------------------------

    def names_of(self, owner: bytes) -> list[tuple[str, NameRec]]:
        v = self.ledger.request("GET", f"/v1/ledger/names/{owner.hex()}")
        rows = v.get("names") if isinstance(v, dict) else None
        if not isinstance(rows, list):
            raise IntegrityError("validator sent a malformed name list")
        return [(str(n), NameRec.decode(r)) for n, r in rows]

    def auction(self, text: str) -> Auction | None:
        name = parse_name(text)
        try:
            v = self.ledger.request("GET", f"/v1/ledger/auction/{name}")
        except NotFoundError:
            return None
        a = v.get("auction") if isinstance(v, dict) else None
        if not (isinstance(a, list) and len(a) == 4):
            raise IntegrityError("validator sent a malformed auction")
        return Auction.from_wire(a)

    # -- transactions ----------------------------------------------------------------------

    def _send(self, signer: SigningKey, kind: str, **fields: Any) -> int:
        """Submit a name transaction; returns the block height it landed in."""
        params = self.ledger.genesis().params
        txid, _ = self.ledger.submit_with_nonce(
            signer, lambda n: txm.build_tx(signer, params.chain_id, kind, n, params.min_fee, **fields))
        return int(self.ledger.wait_committed(txid)["height"])

    def _block_time(self, height: int) -> int:
        blk = self.ledger.block(height)
        if blk is None:
            raise LedgerError(f"block {height} is not known yet", "unknown_tx")
        return decode_header(blk[0]).time

    def register(self, key: SigningKey, text: str, years: int = 1,
                 on_wait: Callable[[float], None] | None = None) -> int:  # fmt: skip
        """Commit, wait the minimum delay (ledger time), reveal. Returns the new expiry."""
        name = registrable(text)
        owner = address_of(key.public_key)
        params = self.ledger.genesis().params
        salt = secrets.token_bytes(32)
        at = self._block_time(self._send(key, txm.NAME_COMMIT, hash=commit_hash(name, owner, salt)))
        ready = at + params.name_commit_min
        while True:
            now = int(self.ledger.info().get("now", 0))
            if now >= ready:
                break
            if on_wait is not None:
                on_wait(ready - now)
            time.sleep(min(2.0, max(0.2, ready - now)))
        for _ in range(5):
            try:
                self._send(key, txm.NAME_REGISTER, name=name, salt=salt, years=years)
                break
            except LedgerError as e:
                if e.code != "commit_too_new":  # another validator's clock is a little behind
                    raise
                time.sleep(1.0)
        rec = dict(self.names_of(owner)).get(name)
        return rec.expires if rec is not None else 0

    def renew(self, key: SigningKey, text: str, years: int = 1) -> int:
        return self._send(key, txm.NAME_RENEW, name=parse_name(text), years=years)

    def transfer(self, key: SigningKey, text: str, to: bytes) -> int:
        return self._send(key, txm.NAME_TRANSFER, name=parse_name(text), to=to)

    def set_record(self, key: SigningKey, text: str, kind: str, value: str | bytes, tkey: str | None = None) -> int:
        return self._send(key, txm.NAME_SET, name=parse_name(text), key=record_key(kind, tkey), value=value)

    def unset_record(self, key: SigningKey, text: str, kind: str, tkey: str | None = None) -> int:
        return self._send(key, txm.NAME_UNSET, name=parse_name(text), key=record_key(kind, tkey))

    def delegate(self, key: SigningKey, parent: str, label: str, owner: bytes | None) -> int:
        return self._send(key, txm.NAME_SUB, name=parse_name(f"{label}.{parse_name(parent)}"), owner=owner)

    def bid(self, key: SigningKey, text: str, amount: int) -> int:
        return self._send(key, txm.NAME_BID, name=parse_name(text), amount=amount)

    def claim(self, key: SigningKey, text: str) -> int:
        return self._send(key, txm.NAME_CLAIM, name=parse_name(text))

    def price(self, text: str, years: int = 1) -> int:
        return yearly_fee(self.ledger.genesis().params, len(parse_name(text))) * years


def registrable(text: str) -> str:
    """``text`` as a name one registers by commit-reveal (not a subname, not a short name)."""
    name = parse_name(text)
    if "." in name:
        raise UsageError("a subname is delegated by its parent's owner: `veil name sub PARENT LABEL --owner ADDR`")
    if len(name) <= AUCTION_MAX_LEN:
        raise UsageError(f"names of {AUCTION_MAX_LEN} characters or fewer are auctioned: `veil name bid {name} AMOUNT`")
    return name


def default_floor_path() -> Path:
    return veil_home() / "names-floor.json"


def open_names(network_path: Path | None = None) -> NameClient:
    """A NameClient over the default validators, with the seen-height floor in $VEIL_HOME."""
    return NameClient(default_ledger(network_path), default_floor_path())
