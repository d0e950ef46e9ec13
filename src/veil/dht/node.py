"""One DHT node, sans-I/O: answers requests, runs lookups and publishes records.

The driver (veil.testing.dhtnet in simulation, veil.node.dht_role over TLS) does all I/O:
- an incoming request goes to ``handle(msg, now, peer)``, which returns the response at once;
- ``take_outgoing()`` hands over the requests this node wants sent, each with a request id;
  the driver reports each one's fate with ``on_reply(request_id, response, now)`` or
  ``on_timeout(request_id, now)``; the reply's sender must have been authenticated by the
  transport (the TLS pin), because that is what lets it into the routing table;
- ``take_events()`` hands over finished operations (``OpDone``);
- ``tick(now)`` runs timers: republishing, record expiry and bucket refreshes.
Time is always passed in, randomness is injected, and nothing here blocks.
Imports from: veil.errors, veil.crypto, veil.dht.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from veil.crypto.idpuzzle import valid_id
from veil.crypto.sign import SigningKey, node_id
from veil.dht.batch import assign, chunks, group_by_region, region_bits
from veil.dht.config import DhtConfig
from veil.dht.ids import ID_BITS, Contact, random_id_in_bucket
from veil.dht.lookup import Lookup
from veil.dht.messages import (
    EXPECTED,
    MAX_RECORDS,
    AddProvider,
    AddProviders,
    FindNode,
    FindProviders,
    FindValue,
    Nodes,
    Ping,
    Pong,
    Providers,
    Refused,
    Request,
    Response,
    Stored,
    StoreNode,
    Value,
)
from veil.dht.opdata import OpDone, Send
from veil.dht.ratelimit import PeerRateLimiter
from veil.dht.records import (
    NodeRecord,
    ProviderRecord,
    decode_node_record,
    decode_provider_record,
    sign_node_record,
    sign_provider_record,
)
from veil.dht.regions import RegionCache
from veil.dht.routing import PingNeeded, RoutingTable
from veil.dht.store import RecordStore, RepublishSchedule
from veil.errors import IntegrityError

__all__ = ["DhtConfig", "DhtNode", "OpDone", "Send"]


class _Op:
    __slots__ = ("batch", "cands", "id", "kind", "lookup", "pending_stores", "providers", "record", "started", "store_msg",
                 "stored", "want")

    def __init__(self, op_id: int, kind: str, lookup: Lookup, started: float, want: int = 0) -> None:
        self.id = op_id
        self.kind = kind
        self.lookup = lookup
        self.started = started
        self.want = want
        self.providers: dict[bytes, ProviderRecord] = {}
        self.record: NodeRecord | None = None
        self.store_msg: Request | None = None
        self.batch: list[ProviderRecord] = []  # provide_batch: records stored at each one's k nearest
        self.cands: list[Contact] | None = None  # provide_batch: a fresh region's nodes (no lookup)
        self.pending_stores = -1  # -1 while the lookup runs
        self.stored = 0


# What an outstanding request is for.
_LOOKUP, _STORE, _PING_EVICT, _PING_VERIFY = range(4)


class DhtNode:
    def __init__(
        self,
        key: SigningKey,
        address: str,
        config: DhtConfig | None = None,
        now: float = 0.0,
        rng: random.Random | None = None,
        announce: bool = True,
    ) -> None:
        """``announce=False`` is for clients that do not serve: their requests carry no ``from``,
        so nobody tries to add them to a routing table."""
        self.key = key
        self.announce = announce
        self.config = cfg = config or DhtConfig()
        self.node_id = node_id(key.public_key)
        if announce and not valid_id(self.node_id, cfg.id_bits):
            raise ValueError(f"this node's id does not solve the network's {cfg.id_bits}-bit id puzzle")
        self.contact = Contact(self.node_id, address)
        self.routing = RoutingTable(self.node_id, cfg.k, cfg.k, cfg.max_failures, id_bits=cfg.id_bits)
        self.store = RecordStore(cfg.store_limits)
        self._limiter = PeerRateLimiter(cfg.request_rate, cfg.request_burst, cfg.max_peers_tracked)
        self._store_limiter = PeerRateLimiter(cfg.store_rate, cfg.store_burst, cfg.max_peers_tracked)
        self._rng = rng or random.Random()
        self._next_id = 1
        self._pending: dict[int, tuple[int, Contact, Request, int]] = {}  # rid -> purpose, to, msg, op
        self._ops: dict[int, _Op] = {}
        self._outbox: list[Send] = []
        self._events: list[OpDone] = []
        self._verifying: set[int] = set()
        self._provided: dict[bytes, tuple[int, ...]] = {}
        self._republish = RepublishSchedule(cfg.republish_interval)
        self.regions = RegionCache(cfg.region_ttl)
        self._node_record_due: float | None = None
        self._next_expire = now + cfg.expire_interval
        self.stats = {"requests": 0, "refused": 0, "verify_pings": 0, "evict_pings": 0, "bad_records": 0, "refused_ids": 0}

    @property
    def _from(self) -> Contact | None:
        return self.contact if self.announce else None

    # -- the driver's side -------------------------------------------------------------

    def take_outgoing(self) -> list[Send]:
        out, self._outbox = self._outbox, []
        return out

    def take_events(self) -> list[OpDone]:
        out, self._events = self._events, []
        return out

    @property
    def providing(self) -> int:
        """How many storage indexes this node announces and republishes."""
        return len(self._provided)

    @property
    def busy(self) -> bool:
        return bool(self._ops or self._pending)

    # -- serving requests ---------------------------------------------------------------

    def handle(self, msg: Request, now: float, peer: str) -> Response:
        """Answer one request from ``peer`` (the rate-limit key: an IP address or a proven id)."""
        self.stats["requests"] += 1
        if not self._limiter.allow(peer, now):
            self.stats["refused"] += 1
            return Refused("rate_limited")
        if isinstance(msg, AddProvider | AddProviders | StoreNode) and not self._store_limiter.allow(peer, now):
            self.stats["refused"] += 1
            return Refused("rate_limited")
        if msg.sender is not None:
            self._consider(msg.sender, now)
        k = self.config.k
        if isinstance(msg, Ping):
            return Pong()
        if isinstance(msg, FindNode):
            return Nodes(tuple(self.routing.closest(msg.target, k)))
        if isinstance(msg, FindProviders):
            recs = self.store.providers(msg.key, now, MAX_RECORDS)
            return Providers(tuple(r.raw for r in recs), tuple(self.routing.closest(msg.key, k)))
        if isinstance(msg, FindValue):
            nrec = self.store.node_record(msg.key, now)
            if nrec is None and msg.key == self.node_id:
                nrec = self._own_node_record(now)
            return Value(None if nrec is None else nrec.raw, tuple(self.routing.closest(msg.key, k)))
        if isinstance(msg, AddProvider):
            kept = self._keep_provider(msg.record, now)
            return Refused("invalid") if kept is None else Stored(kept)
        if isinstance(msg, AddProviders):  # one message, one rate-limit token: MAX_BATCH_RECORDS bounds the work
            return Stored(all([self._keep_provider(raw, now) for raw in msg.records]))
        try:
            nrec = decode_node_record(msg.record, now, self.config.id_bits)
        except IntegrityError:
            self.stats["bad_records"] += 1
            return Refused("invalid")
        return Stored(self.store.put_node_record(nrec, now))

    def _keep_provider(self, raw: bytes, now: float) -> bool | None:  # None: it does not verify
        try:
            prec = decode_provider_record(raw, now, self.config.id_bits)
        except IntegrityError:
            self.stats["bad_records"] += 1
            return None
        return self.store.add_provider(prec, now)

    def _consider(self, sender: Contact, now: float) -> None:
        """A stranger's claimed contact enters the table only after it answers a ping at that address."""
        key = sender.key
        if key == self.contact.key or key in self._verifying:
            return
        if not valid_id(sender.node_id, self.config.id_bits):
            self.stats["refused_ids"] += 1  # not worth a ping: it could never enter the table
            return
        if len(self._verifying) >= self.config.max_verify_inflight or not self.routing.wants(sender.node_id):
            return
        self._verifying.add(key)
        self.stats["verify_pings"] += 1
        self._send(_PING_VERIFY, sender, Ping(self._from), 0)

    # -- operations ----------------------------------------------------------------------

    def bootstrap(self, seeds: list[Contact], now: float) -> int:
        """Join through ``seeds`` (contacts whose ids the transport has learnt): look up our own id."""
        return self._start("join", self.node_id, now, extra_seeds=seeds)

    def find_node(self, target: bytes, now: float) -> int:
        return self._start("find_node", target, now)

    def find_value(self, nid: bytes, now: float) -> int:
        """Find the signed node record of node ``nid``."""
        return self._start("find_value", nid, now)

    def find_providers(self, key: bytes, now: float, want: int = MAX_RECORDS) -> int:
        """Find provider records for storage index ``key``; stops early once ``want`` are found."""
        op_id = self._start("find_providers", key, now, want=want, defer=True)
        op = self._ops[op_id]
        for rec in self.store.providers(key, now, MAX_RECORDS):
            op.providers[rec.provider_id] = rec
        self._advance(op, now)
        return op_id

    def provide(self, storage_index: bytes, shares: tuple[int, ...], now: float) -> int:
        """Announce that this node holds ``shares`` of ``storage_index``; republished until ``unprovide``."""
        self._provided[storage_index] = tuple(shares)
        self._republish.add(storage_index, now)
        return self._start_provide(storage_index, now)

    def provide_many(self, items: Sequence[tuple[bytes, tuple[int, ...]]], now: float) -> list[int]:
        """``provide`` for many storage indexes at once (veil.dht.batch): one lookup per keyspace
        region and one request per node, instead of one lookup and k requests per index."""
        for si, shares in items:
            self._provided[si] = tuple(shares)
            self._republish.add(si, now)
        return self._start_provide_batch([si for si, _ in items], now)

    def unprovide(self, storage_index: bytes) -> None:
        """Stop republishing; the records already out expire on their own."""
        self._provided.pop(storage_index, None)
        self._republish.remove(storage_index)

    def publish_node_record(self, now: float) -> int:
        """Store this node's signed record at the nodes closest to its id; republished on schedule."""
        rec = self._own_node_record(now)
        self._node_record_due = now + self.config.republish_interval
        return self._start("publish_node", self.node_id, now, store=StoreNode(rec.raw, self._from))

    def tick(self, now: float) -> None:
        """Run what is due: republishing, record expiry, refreshing buckets nobody looked into."""
        cfg = self.config
        if due := self._republish.due(now):
            self._start_provide_batch(due, now)
        if self._node_record_due is not None and now >= self._node_record_due:
            self.publish_node_record(now)
        if now >= self._next_expire:
            self.store.expire(now)
            self._next_expire = now + cfg.expire_interval
        for i in self.routing.stale_buckets(now, cfg.refresh_interval)[: cfg.refresh_per_tick]:
            target = random_id_in_bucket(self.node_id, i, self._rng.getrandbits)
            self.routing.touch_bucket_of(target, now)
            self._start("refresh", target, now)

    def refresh_all(self, now: float) -> list[int]:
        """Look up a random id in every bucket range farther than our nearest neighbour
        (what a node does right after joining, so the far buckets fill)."""
        near = self.routing.closest(self.node_id, 1)
        lowest = (near[0].key ^ self.contact.key).bit_length() if near else 0
        ops = []
        for i in range(lowest, ID_BITS):
            if self.routing.bucket(i) and len(self.routing.bucket(i)) >= self.config.k:
                continue
            target = random_id_in_bucket(self.node_id, i, self._rng.getrandbits)
            self.routing.touch_bucket_of(target, now)
            ops.append(self._start("refresh", target, now))
            if len(ops) >= 16:
                break
        return ops

    def _own_node_record(self, now: float) -> NodeRecord:
        return sign_node_record(self.key, self.contact.address, int(now) + self.config.record_ttl, self.config.operator)

    def _own_provider_record(self, si: bytes, now: float) -> ProviderRecord:
        rec = sign_provider_record(self.key, si, self.contact.address, self._provided[si], int(now) + self.config.record_ttl)
        self.store.add_provider(rec, now)
        return rec

    def _start_provide(self, si: bytes, now: float) -> int:
        return self._start("provide", si, now, store=AddProvider(self._own_provider_record(si, now).raw, self._from))

    def region_bits(self) -> int:
        """The leading key bits one lookup's region spans, for this node's view (veil.dht.batch)."""
        return region_bits(self.contact.key, self.routing.closest(self.node_id, self.config.k), self.config.k)

    def _start_provide_batch(self, keys: list[bytes], now: float) -> list[int]:
        bits = self.region_bits()
        ops = []
        for group in group_by_region(keys, bits):
            recs = [self._own_provider_record(si, now) for si in group]
            ops.append(self._start("provide_batch", group[0], now, batch=recs, cands=self.regions.get(group[0], bits, now)))
        return ops

    def _start(
        self,
        kind: str,
        target: bytes,
        now: float,
        *,
        extra_seeds: list[Contact] | None = None,
        want: int = 0,
        store: Request | None = None,
        batch: list[ProviderRecord] | None = None,
        cands: list[Contact] | None = None,
        defer: bool = False,
    ) -> int:
        cfg = self.config
        seeds = self.routing.closest(target, cfg.k)
        if extra_seeds:
            have = {c.key for c in seeds}
            seeds += [c for c in extra_seeds if c.key not in have]
        lk = Lookup(target, seeds, k=cfg.k, alpha=cfg.alpha, paths=cfg.paths, exclude=self.node_id, id_bits=cfg.id_bits)
        op_id = self._next_id
        self._next_id += 1
        op = _Op(op_id, kind, lk, now, want)
        op.store_msg = store
        op.batch, op.cands = batch or [], cands
        if cands is not None:
            lk.stop()
        self._ops[op_id] = op
        self.routing.touch_bucket_of(target, now)
        if not defer:
            self._advance(op, now)
        return op_id

    # -- replies -------------------------------------------------------------------------

    def on_reply(self, request_id: int, response: Response, now: float) -> None:
        """The authenticated node a request went to answered ``response``."""
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return
        purpose, to, msg, op_id = entry
        if isinstance(response, Refused) or not isinstance(response, EXPECTED[type(msg)]):
            if not isinstance(response, Refused):
                self.routing.failed(to.node_id)  # broke the protocol
            self._failed(purpose, to, op_id, now, alive=isinstance(response, Refused))
            return
        ping = self.routing.observe(to, now)
        if ping is not None:
            self._ping_evict(ping)
        if purpose == _PING_EVICT:
            self.routing.ping_result(to.node_id, True, now)
            return
        if purpose == _PING_VERIFY:
            self._verifying.discard(to.key)
            return
        op = self._ops.get(op_id)
        if op is None:
            return
        if purpose == _STORE:
            op.pending_stores -= 1
            if isinstance(response, Stored) and response.accepted:
                op.stored += 1
            self._advance(op, now)
            return
        lk = op.lookup
        if isinstance(response, Providers):
            self._take_providers(op, response.records, now)
        elif isinstance(response, Value) and response.record is not None and op.record is None:
            self._take_node_record(op, response.record, now)
        assert isinstance(response, Nodes | Providers | Value)
        lk.on_reply(to.node_id, response.nodes)
        if op.kind == "find_providers" and op.want and len(op.providers) >= op.want:
            lk.stop()
        self._advance(op, now)

    def on_timeout(self, request_id: int, now: float) -> None:
        """A request went unanswered (or the connection to its node failed)."""
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return
        purpose, to, _msg, op_id = entry
        if purpose == _PING_EVICT:
            self.routing.ping_result(to.node_id, False, now)
        elif purpose != _PING_VERIFY:
            self.routing.failed(to.node_id)
            self.regions.forget(to.node_id)
        self._failed(purpose, to, op_id, now, alive=False)

    def _failed(self, purpose: int, to: Contact, op_id: int, now: float, alive: bool) -> None:
        if purpose == _PING_VERIFY:
            self._verifying.discard(to.key)
            return
        if purpose == _PING_EVICT:
            if alive:
                self.routing.ping_result(to.node_id, True, now)
            return
        op = self._ops.get(op_id)
        if op is None:
            return
        if purpose == _STORE:
            op.pending_stores -= 1
        else:
            op.lookup.on_failure(to.node_id)
        self._advance(op, now)

    def _take_providers(self, op: _Op, records: tuple[bytes, ...], now: float) -> None:
        for raw in records[:MAX_RECORDS]:
            try:
                rec = decode_provider_record(raw, now, self.config.id_bits)
            except IntegrityError:
                self.stats["bad_records"] += 1
                continue
            if rec.key != op.lookup.target:
                self.stats["bad_records"] += 1
                continue
            old = op.providers.get(rec.provider_id)
            if old is None or old.expires < rec.expires:
                op.providers[rec.provider_id] = rec

    def _take_node_record(self, op: _Op, raw: bytes, now: float) -> None:
        try:
            rec = decode_node_record(raw, now, self.config.id_bits)
        except IntegrityError:
            self.stats["bad_records"] += 1
            return
        if rec.node_id != op.lookup.target:
            self.stats["bad_records"] += 1
            return
        op.record = rec
        op.lookup.stop()

    # -- internals -----------------------------------------------------------------------

    def _send(self, purpose: int, to: Contact, msg: Request, op_id: int) -> None:
        rid = self._next_id
        self._next_id += 1
        self._pending[rid] = (purpose, to, msg, op_id)
        self._outbox.append(Send(rid, to, msg))

    def _ping_evict(self, ping: PingNeeded) -> None:
        self.stats["evict_pings"] += 1
        self._send(_PING_EVICT, ping.contact, Ping(self._from), 0)

    def _advance(self, op: _Op, now: float) -> None:
        lk = op.lookup
        if op.pending_stores < 0:
            if not lk.finished:
                if op.kind in ("find_node", "join", "refresh", "provide_batch") or op.store_msg is not None:
                    msg_for: Request = FindNode(lk.target, self._from)
                elif op.kind == "find_value":
                    msg_for = FindValue(lk.target, self._from)
                else:
                    msg_for = FindProviders(lk.target, self._from)
                for c in lk.next_queries():
                    self._send(_LOOKUP, c, msg_for, op.id)
                if not lk.finished:
                    return
            if op.store_msg is not None or op.batch:
                # Store at every path's nearest nodes, so a path captured by liars cannot
                # keep the record away from the honest neighbourhood of the key.
                targets: dict[int, Contact] = {c.key: c for c in (op.cands or lk.closest())}
                for path in lk.path_results() if op.cands is None else ():
                    for c in path:
                        targets.setdefault(c.key, c)
                if op.batch and op.cands is None:
                    self.regions.put(lk.target, self.region_bits(), list(targets.values()), now)
                sends: list[tuple[Contact, Request]] = [(c, op.store_msg) for c in targets.values() if op.store_msg]
                for c, raws in assign(op.batch, targets.values(), self.config.k).values():
                    sends += [(c, AddProviders(part, self._from)) for part in chunks(raws)]
                op.pending_stores = len(sends)
                for c, m in sends:
                    self._send(_STORE, c, m, op.id)
                if op.pending_stores:
                    return
            op.pending_stores = 0
        if op.pending_stores > 0:
            return
        del self._ops[op.id]
        self._events.append(
            OpDone(
                op_id=op.id,
                kind=op.kind,
                target=lk.target,
                closest=tuple(lk.closest()),
                paths=tuple(tuple(p) for p in lk.path_results()),
                providers=tuple(op.providers.values()),
                record=op.record,
                hops=lk.hops,
                messages=lk.queried,
                failures=lk.failures,
                stored=op.stored,
                started=op.started,
                finished=now,
            )
        )
