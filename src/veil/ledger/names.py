"""Names (``alice.veil``): what a name may be spelt as, its records, its fee, and its ledger
records (docs/specs/names.md). Pure; the rules that change them live in ``rules_names.py``.

A name on the ledger is written without ``.veil``: ``alice`` (a top-level name) or
``blog.alice`` (a subname the owner of ``alice`` delegated). Each label is lowercase a-z, 0-9
and inner hyphens, 3..63 characters: no Unicode, so no homoglyph lookalikes.
"""

from __future__ import annotations

from typing import NamedTuple

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.errors import LedgerError
from veil.format import cbor
from veil.ledger.address import ADDRESS_SIZE
from veil.ledger.params import Params

SUFFIX = ".veil"
MIN_LABEL = 3
MAX_LABEL = 63
AUCTION_MAX_LEN = 4  # names this short are sold by auction only
BID_STEP_BP = 500  # a new bid is at least 5 % above the highest
MAX_SALT = 64
MAX_RECORDS = 32
MAX_TEXT_KEY = 64
MAX_TEXT_VALUE = 1024
MAX_CAP = 512
MAX_RECORD_BYTES = 8192  # a whole name record, CBOR-encoded
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_H_COMMIT = TaggedHash(labels.NAME_COMMIT)
_H_KEY = TaggedHash(labels.NAME_KEY)
_H_RECORD = TaggedHash(labels.NAME_RECORD)

SITE, FILE, WALLET, NODE, TEXT = "site", "file", "wallet", "node", "text"
RECORD_KINDS = (SITE, FILE, WALLET, NODE, TEXT)
_CAP_PREFIX = {SITE: "veil:fr1:", FILE: "veil:r1:"}

RecordValue = str | bytes


def check_label(label: str, what: str = "name") -> str:
    """One label, or LedgerError ``bad_name`` saying what is wrong with it."""
    if not isinstance(label, str) or not MIN_LABEL <= len(label) <= MAX_LABEL:
        raise LedgerError(f"{what} {str(label)[:70]!r}: a label is {MIN_LABEL} to {MAX_LABEL} characters", "bad_name")
    if not all(c in _ALNUM or c == "-" for c in label):
        raise LedgerError(f"{what} {label!r}: only lowercase a-z, 0-9 and '-' (no capitals, no Unicode)", "bad_name")
    if label[0] == "-" or label[-1] == "-":
        raise LedgerError(f"{what} {label!r}: a hyphen may not start or end a label", "bad_name")
    return label


def check_name(name: str) -> str:
    """A ledger name: ``label`` or ``sub.label`` (one level of subnames)."""
    if not isinstance(name, str) or len(name) > 2 * MAX_LABEL + 1:
        raise LedgerError("name is too long", "bad_name")
    parts = name.split(".")
    if len(parts) > 2:
        raise LedgerError(f"name {name[:70]!r}: only one level of subnames (sub.name)", "bad_name")
    for p in parts:
        check_label(p)
    return name


def parse_name(text: str) -> str:
    """What a user types (``alice``, ``alice.veil``, ``blog.alice.veil``, any case) -> the ledger name."""
    t = text.strip().lower()
    if t.endswith(SUFFIX):
        t = t[: -len(SUFFIX)]
    return check_name(t)


def parent_of(name: str) -> str | None:
    return name.split(".", 1)[1] if "." in name else None


def name_key(name: str) -> bytes:
    """The name's path in the names tree."""
    return _H_KEY(name.encode())


def commit_hash(name: str, owner: bytes, salt: bytes) -> bytes:
    """What ``name_commit`` publishes: it hides the name until the reveal and binds the owner,
    so a reveal seen in the mempool cannot be replayed for someone else."""
    n = name.encode()
    return _H_COMMIT(len(n).to_bytes(1, "big"), n, owner, salt)


def record_hash_of(raw: bytes) -> bytes:
    """The hash the names tree commits to for an encoded record."""
    return _H_RECORD(raw)


def yearly_fee(params: Params, length: int) -> int:
    """The fee for one year: ``name_fee`` for 7 characters or more, doubling for each one fewer."""
    return params.name_fee << max(0, 7 - length)


def min_next_bid(params: Params, length: int, highest: int) -> int:
    """The least a bid may be: the year's fee for a first bid, then 5 % above the highest (rounded up)."""
    if highest == 0:
        return yearly_fee(params, length)
    return highest + max(1, -(-highest * BID_STEP_BP // 10_000))


def record_key(kind: str, key: str | None = None) -> str:
    """A record's key in a name record: the kind, or ``text:KEY`` for text records."""
    if kind not in RECORD_KINDS:
        raise LedgerError(f"unknown record kind {str(kind)[:20]!r} (site, file, wallet, node, text)", "bad_record")
    if kind == TEXT:
        if not key or len(key) > MAX_TEXT_KEY or not key.isascii() or not key.isprintable() or ":" in key:
            raise LedgerError(f"a text record needs a key of 1..{MAX_TEXT_KEY} printable ASCII characters", "bad_record")
        return f"text:{key}"
    if key:
        raise LedgerError(f"a {kind} record has no key", "bad_record")
    return kind


def check_record_key(rk: str) -> str:
    if not isinstance(rk, str):
        raise LedgerError("record key must be text", "bad_record")
    kind, _, key = rk.partition(":")
    record_key(kind, key or None)
    return rk


def check_record(rk: str, value: object) -> RecordValue:
    """A record value fit for its key: a cap string for site/file, 32 bytes for wallet/node, text."""
    kind = check_record_key(rk).partition(":")[0]
    if kind in (WALLET, NODE):
        if not isinstance(value, bytes) or len(value) != ADDRESS_SIZE:
            raise LedgerError(f"a {kind} record holds 32 bytes (an address or a node id)", "bad_record")
        return value
    if not isinstance(value, str) or (not value.isascii() and kind != TEXT):
        raise LedgerError(f"a {kind} record holds text", "bad_record")
    if kind == TEXT:
        if len(value.encode()) > MAX_TEXT_VALUE:
            raise LedgerError(f"a text record holds at most {MAX_TEXT_VALUE} bytes", "bad_record")
        return value
    if not value.startswith(_CAP_PREFIX[kind]) or len(value) > MAX_CAP or not value.isprintable():
        raise LedgerError(f"a {kind} record holds a {_CAP_PREFIX[kind]}… cap", "bad_record")
    return value


class NameRec(NamedTuple):
    """A registered name (or subname). ``since`` is when this registration began (a new owner
    after a release starts a new one); a subname stores its parent's ``since`` and dies with it."""

    owner: bytes
    expires: int  # top-level: unix seconds; a subname: 0 (it lives as long as its parent's registration)
    since: int
    parent_since: int = 0
    records: tuple[tuple[str, RecordValue], ...] = ()  # sorted by key

    def to_wire(self) -> list[object]:
        return [self.owner, self.expires, self.since, self.parent_since, [[k, v] for k, v in self.records]]

    def encode(self) -> bytes:
        return cbor.encode(self.to_wire())

    @property
    def record_hash(self) -> bytes:
        return record_hash_of(self.encode())

    def get(self, rk: str) -> RecordValue | None:
        return next((v for k, v in self.records if k == rk), None)

    def with_record(self, rk: str, value: RecordValue | None) -> NameRec:
        rest = [(k, v) for k, v in self.records if k != rk]
        if value is not None:
            rest.append((rk, value))
        return self._replace(records=tuple(sorted(rest)))

    @classmethod
    def from_wire(cls, v: object) -> NameRec:
        """Strict: what a resolver accepts from an untrusted answer (after its proof checked)."""
        if not (isinstance(v, list) and len(v) == 5 and isinstance(v[0], bytes) and len(v[0]) == ADDRESS_SIZE
                and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**63 for x in v[1:4])
                and isinstance(v[4], list) and len(v[4]) <= MAX_RECORDS):  # fmt: skip
            raise LedgerError("malformed name record", "malformed")
        recs: list[tuple[str, RecordValue]] = []
        for item in v[4]:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise LedgerError("malformed name record", "malformed")
            recs.append((check_record_key(item[0]), check_record(item[0], item[1])))
        if [k for k, _ in recs] != sorted({k for k, _ in recs}):
            raise LedgerError("name record: records must be sorted without duplicates", "malformed")
        return cls(v[0], v[1], v[2], v[3], tuple(recs))

    @classmethod
    def decode(cls, raw: bytes) -> NameRec:
        try:
            return cls.from_wire(cbor.decode(raw, MAX_RECORD_BYTES))
        except LedgerError:
            raise
        except Exception as e:
            raise LedgerError(f"malformed name record: {e}", "malformed") from e


class Commit(NamedTuple):
    """A pending ``name_commit``: who made it and when (the reveal must come from the same account)."""

    sender: bytes
    time: int

    def to_wire(self) -> list[object]:
        return list(self)

    @classmethod
    def from_wire(cls, v: list[object]) -> Commit:
        return cls(*v)  # type: ignore[arg-type]


class Auction(NamedTuple):
    """A short name's auction: the highest bid is held here (escrow) until the auction is settled."""

    bidder: bytes
    bid: int
    end: int  # bids are taken while block time < end
    started: int

    def to_wire(self) -> list[object]:
        return list(self)

    @classmethod
    def from_wire(cls, v: list[object]) -> Auction:
        return cls(*v)  # type: ignore[arg-type]


def live(rec: NameRec | None, parent: NameRec | None, now: int) -> bool:
    """Whether ``rec`` is in force at ``now``: a top-level name before its expiry; a subname
    while its parent's registration (the one that delegated it) is."""
    if rec is None:
        return False
    if rec.expires:
        return now < rec.expires
    return parent is not None and parent.since == rec.parent_since and now < parent.expires
