"""The Kademlia routing table: 256 k-buckets by XOR-distance prefix, least-recently-seen first.

Rules (docs/specs/dht.md, "Routing table"):
- Only contacts heard from first-hand (a reply over a pinned connection, or a sender that
  answered a verification ping) are passed to ``observe``; ids merely mentioned by third parties
  never enter the table.
- A full bucket is never overwritten: the newcomer waits in the bucket's replacement cache and
  the table asks its owner to ping the least-recently-seen entry (a ``PingNeeded`` output).
  Only when that ping fails is the old entry evicted and the freshest replacement promoted,
  so long-lived nodes, which are the likeliest to stay, keep their slots.
- A contact that fails ``max_failures`` requests in a row is evicted (sooner if a replacement
  is waiting).
- An id that does not solve the network's id puzzle (veil.crypto.idpuzzle) never enters, and
  one network (an IPv4 /24, an IPv6 /32: veil.dht.subnet) holds at most ``per_subnet_bucket``
  entries of a bucket and ``per_subnet_table`` of the table, so ground ids from one address
  block cannot fill a neighbourhood (S/Kademlia's and Ethereum discv5's rule).
- Every evicted id is remembered (the last ``MAX_EVICTED``) until ``take_evicted`` hands them
  on: a node that stops answering is news for the repairer (docs/specs/repair.md, triggers).
Imports from: veil.crypto, veil.dht.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from veil.crypto.idpuzzle import valid_id
from veil.dht.ids import ID_BITS, Contact, to_int
from veil.dht.subnet import subnet_of_address

DEFAULT_K = 20
MAX_EVICTED = 1024
PER_SUBNET_BUCKET = 2
PER_SUBNET_TABLE = 10


@dataclass(frozen=True, slots=True)
class PingNeeded:
    """Ping ``contact`` and report the outcome with ``RoutingTable.ping_result``."""

    contact: Contact


class _Bucket:
    __slots__ = ("entries", "pinging", "replacements", "touched")

    def __init__(self, now: float) -> None:
        # Insertion order is recency order: the first entry is the least recently seen.
        self.entries: dict[int, Contact] = {}
        self.replacements: dict[int, Contact] = {}
        self.pinging: int | None = None
        self.touched = now


class RoutingTable:
    """k-buckets around ``own_id``; never more than ``k`` contacts per bucket."""

    def __init__(self, own_id: bytes, k: int = DEFAULT_K, replacements: int = DEFAULT_K, max_failures: int = 2,
                 id_bits: int = 0, per_subnet_bucket: int = PER_SUBNET_BUCKET,
                 per_subnet_table: int = PER_SUBNET_TABLE) -> None:  # fmt: skip
        if k < 1 or replacements < 0 or max_failures < 1 or id_bits < 0 or per_subnet_bucket < 1 or per_subnet_table < 1:
            raise ValueError("bad routing table parameters")
        self.id_bits = id_bits
        self.per_subnet_bucket = per_subnet_bucket
        self.per_subnet_table = per_subnet_table
        self._subnets: dict[str, int] = {}  # network -> entries in the table
        self.refused = {"puzzle": 0, "subnet": 0}
        self.own_id = bytes(own_id)
        self.own = to_int(self.own_id)
        self.k = k
        self.replacement_size = replacements
        self.max_failures = max_failures
        self._buckets: list[_Bucket | None] = [None] * ID_BITS
        self._nonempty: list[int] = []  # sorted indexes of buckets that exist
        self._failures: dict[int, int] = {}
        self._size = 0
        self._evicted: list[bytes] = []

    # -- queries --------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._size

    def __contains__(self, node_id: bytes) -> bool:
        key = to_int(node_id)
        b = self._buckets[(self.own ^ key).bit_length() - 1] if key != self.own else None
        return b is not None and key in b.entries

    def get(self, node_id: bytes) -> Contact | None:
        key = to_int(node_id)
        if key == self.own:
            return None
        b = self._buckets[(self.own ^ key).bit_length() - 1]
        return None if b is None else b.entries.get(key)

    def contacts(self) -> Iterator[Contact]:
        for i in self._nonempty:
            b = self._buckets[i]
            assert b is not None
            yield from b.entries.values()

    def bucket(self, index: int) -> list[Contact]:
        """The contacts of one bucket, least recently seen first."""
        b = self._buckets[index]
        return [] if b is None else list(b.entries.values())

    def replacements(self, index: int) -> list[Contact]:
        b = self._buckets[index]
        return [] if b is None else list(b.replacements.values())

    def wants(self, node_id: bytes) -> bool:
        """Whether a not-yet-verified node would be kept (in the bucket or its replacement cache)."""
        key = to_int(node_id)
        if key == self.own or not valid_id(node_id, self.id_bits):
            return False
        b = self._buckets[(self.own ^ key).bit_length() - 1]
        if b is None:
            return True
        if key in b.entries or key in b.replacements:
            return False
        return len(b.entries) < self.k or len(b.replacements) < self.replacement_size

    def admissible(self, contact: Contact) -> bool:
        """Whether a contact not in the table may enter it: a valid id, and room in its network."""
        if not valid_id(contact.node_id, self.id_bits):
            self.refused["puzzle"] += 1
            return False
        if not self._subnet_room(contact, self._buckets[(self.own ^ contact.key).bit_length() - 1]):
            self.refused["subnet"] += 1
            return False
        return True

    def _subnet_room(self, contact: Contact, b: _Bucket | None) -> bool:
        net = subnet_of_address(contact.address)
        if net is None:
            return True
        if self._subnets.get(net, 0) >= self.per_subnet_table:
            return False
        same = 0 if b is None else sum(1 for c in b.entries.values() if subnet_of_address(c.address) == net)
        return same < self.per_subnet_bucket

    def closest(self, target: bytes, count: int) -> list[Contact]:
        """The ``count`` known contacts nearest to ``target`` by XOR distance, nearest first.

        Buckets are visited in distance order instead of sorting the whole table: with
        d = own ^ target and i its top bit, bucket i holds everything nearer than 2^i, the
        buckets below i everything in [2^i, 2^(i+1)), and each bucket j > i lies wholly in
        [2^j, 2^(j+1)).
        """
        t = to_int(target)
        i = (self.own ^ t).bit_length() - 1
        out: list[Contact] = []

        def by_distance(c: Contact) -> int:
            return c.key ^ t

        buckets = self._buckets
        if i >= 0 and (b := buckets[i]) is not None:
            out.extend(sorted(b.entries.values(), key=by_distance))
        if len(out) < count:
            lower: list[Contact] = []
            for j in self._nonempty:
                if j >= i:
                    break
                bj = buckets[j]
                assert bj is not None
                lower.extend(bj.entries.values())
            lower.sort(key=by_distance)
            out.extend(lower)
        if len(out) < count:
            for j in self._nonempty:
                if j <= i:
                    continue
                bj = buckets[j]
                assert bj is not None
                out.extend(sorted(bj.entries.values(), key=by_distance))
                if len(out) >= count:
                    break
        return out[:count]

    def stale_buckets(self, now: float, interval: float) -> list[int]:
        """Indexes of non-empty buckets not touched for ``interval`` (to refresh by a lookup)."""
        out = []
        for i in self._nonempty:
            b = self._buckets[i]
            assert b is not None
            if b.entries and now - b.touched >= interval:
                out.append(i)
        return out

    def touch_bucket_of(self, target: bytes, now: float) -> None:
        """A lookup went through this bucket's range, so it does not need a refresh."""
        t = to_int(target)
        if t != self.own and (b := self._buckets[(self.own ^ t).bit_length() - 1]) is not None:
            b.touched = now

    # -- updates --------------------------------------------------------------------------

    def observe(self, contact: Contact, now: float) -> PingNeeded | None:
        """``contact`` was heard from first-hand. Returns a ping to send when its bucket is full."""
        key = contact.key
        if key == self.own:
            return None
        i = (self.own ^ key).bit_length() - 1
        b = self._buckets[i]
        known = b is not None and key in b.entries
        if not known and not self.admissible(contact):
            return None
        if b is None:
            b = self._buckets[i] = _Bucket(now)
            self._insert_nonempty(i)
        b.touched = now
        entries = b.entries
        if key in entries:
            old = entries.pop(key)
            entries[key] = contact  # most recently seen goes last; the address may have changed
            if old.address != contact.address:
                self._count(old, -1)
                self._count(contact, 1)
            self._failures.pop(key, None)
            if b.pinging == key:
                b.pinging = None
            return None
        if len(entries) < self.k:
            entries[key] = contact
            self._size += 1
            self._count(contact, 1)
            b.replacements.pop(key, None)
            return None
        reps = b.replacements
        reps.pop(key, None)
        reps[key] = contact
        if len(reps) > self.replacement_size:
            del reps[next(iter(reps))]
        if b.pinging is None:
            oldest = next(iter(entries.values()))
            b.pinging = oldest.key
            return PingNeeded(oldest)
        return None

    def ping_result(self, node_id: bytes, alive: bool, now: float) -> None:
        """The outcome of a ``PingNeeded``: an answering node keeps its slot, a silent one is evicted."""
        key = to_int(node_id)
        if key == self.own:
            return
        b = self._buckets[(self.own ^ key).bit_length() - 1]
        if b is None:
            return
        if b.pinging == key:
            b.pinging = None
        if key not in b.entries:
            return
        if alive:
            c = b.entries.pop(key)
            b.entries[key] = c
            self._failures.pop(key, None)
        else:
            self._evict(b, key)

    def failed(self, node_id: bytes) -> None:
        """A request to this node went unanswered."""
        key = to_int(node_id)
        if key == self.own:
            return
        b = self._buckets[(self.own ^ key).bit_length() - 1]
        if b is None:
            return
        if key in b.replacements:
            del b.replacements[key]
            return
        if key not in b.entries:
            return
        n = self._failures.get(key, 0) + 1
        if n >= self.max_failures or b.replacements:
            self._evict(b, key)
        else:
            self._failures[key] = n

    def remove(self, node_id: bytes) -> None:
        key = to_int(node_id)
        if key == self.own:
            return
        b = self._buckets[(self.own ^ key).bit_length() - 1]
        if b is not None:
            b.replacements.pop(key, None)
            if key in b.entries:
                self._evict(b, key)

    def take_evicted(self) -> list[bytes]:
        """Ids evicted since the last call (oldest first; at most MAX_EVICTED are kept)."""
        out, self._evicted = self._evicted, []
        return out

    def _evict(self, b: _Bucket, key: int) -> None:
        if len(self._evicted) >= MAX_EVICTED:
            del self._evicted[0]
        gone = b.entries.pop(key)
        self._evicted.append(gone.node_id)
        self._count(gone, -1)
        self._size -= 1
        self._failures.pop(key, None)
        if b.pinging == key:
            b.pinging = None
        for rkey in reversed(b.replacements):  # the freshest replacement that has room
            rep = b.replacements[rkey]
            if self._subnet_room(rep, b):
                del b.replacements[rkey]
                b.entries[rkey] = rep
                self._size += 1
                self._count(rep, 1)
                break

    def _count(self, contact: Contact, delta: int) -> None:
        net = subnet_of_address(contact.address)
        if net is not None:
            left = self._subnets.get(net, 0) + delta
            if left > 0:
                self._subnets[net] = left
            else:
                self._subnets.pop(net, None)

    def _insert_nonempty(self, i: int) -> None:
        bisect.insort(self._nonempty, i)
