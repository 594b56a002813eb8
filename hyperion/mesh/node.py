"""The machine plane of one node: membership, DHT, pub/sub and node records, composed.

``MeshNode`` is itself a sans-I/O core. It routes each inbound message to the protocol
core that owns its type and wires the cores together:

* Liveness comes from membership: a member that becomes alive is added to the DHT's
  k-buckets and becomes a pub/sub peer; a dead or departed one leaves both, and its
  node record leaves the directory.
* Node records. ``set_record`` signs this node's record (a DHT ``Record`` whose key is
  the node id, version increasing, expiry ``record_ttl_s`` ahead), puts it in the DHT
  and announces it on the ``NODES_TOPIC`` topic. It is republished with a new version
  every ``republish_s``. Every node keeps a *directory* of the records it knows:
  announcements on the topic arrive within a gossip round; a member whose record has
  not arrived ``fetch_delay_s`` after it became alive is looked up in the DHT
  (at most ``max_fetches`` lookups in flight). A record enters the directory only if
  the DHT's rules accept it (signed by the node it describes, not expired, not older
  than the one held).
* The object catalog (``hyperion/control/catalog.py``, protocol version 2) runs on the
  same peers, restricted to those that speak it: a member is a catalog peer while it is
  alive and its node record lists protocol ``CATALOG_PROTOCOL``, and this node takes
  part only while its own record does. So a node running protocol 1 (whose record says
  so) neither sends nor gets catalog traffic. Catalog messages reaching a node not
  taking part are dropped and counted (``catalog_dropped_not_speaking``).

* Revocations (DESIGN §9). A revocation record (``hyperion.identity.revocation``: signed
  by the CA, checked by the injected ``check_revocation``) travels as a catalog object
  under ``REVOCATIONS``, so it reaches every catalog peer by push and anti-entropy, and a
  node that was down or cut off gets it at its next digest exchange; it is also kept on
  disk with the catalog. Each record is verified when it arrives; an invalid one is
  counted and ignored. A verified one is notified (``Revoked``) once, and a revoked
  node is banned: membership holds it dead for good (``Membership.ban``), so it leaves
  the DHT, pub/sub and catalog peers, and every later message from it is dropped and
  counted (``revoked_dropped``). The enforced set only grows: a delete of a held,
  unexpired record (no node should write one) is undone by writing the record back.

Clocks: ``now`` is the driver's clock (monotonic on a real node). Record expiry is
compared across nodes, so the DHT and the records see ``now + wall_offset`` — the
driver passes the offset between its wall clock and ``now`` (0 in the simulator).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hyperion.control.catalog import (
    DELETED,
    Catalog,
    CatalogChanged,
    CatalogConfig,
    CatalogDelta,
    CatalogDigest,
    Change,
    Expired,
    Key,
)
from hyperion.control.hlc import Timestamp
from hyperion.core import Core, Effect, Notify, Send
from hyperion.mesh import dht as dht_mod
from hyperion.mesh.dht import Contact, Dht, DhtConfig, LookupDone, Record
from hyperion.mesh.membership import (
    Ack,
    Broadcast,
    Gossip,
    MemberEvent,
    Membership,
    Ping,
    PingReq,
    PushPull,
    SwimConfig,
)
from hyperion.mesh.pubsub import Delivery, PubSub, PubSubConfig, Rpc
from hyperion.mesh.records import NodeRecord

NODES_TOPIC = "hyperion/nodes"
_MEMBERSHIP_TYPES = (Ping, Ack, PingReq, Gossip, Broadcast, PushPull)
_DHT_TYPES = (dht_mod.FindNode, dht_mod.FindValue, dht_mod.Nodes, dht_mod.Store, dht_mod.StoreAck)
_CATALOG_TYPES = (CatalogDigest, CatalogDelta)
CATALOG_PROTOCOL = 2  # the first protocol version with the object catalog
REVOCATIONS = "hyperion.io/revocations"  # catalog resource of revocation records


@dataclass(frozen=True, slots=True)
class Revoked:
    """A verified revocation record (what ``check_revocation`` returns); notified once.

    ``node_id`` is the revoked node's id when the record revokes a node's whole SPIFFE
    ID, else "". ``expires_at`` is wall seconds (0: never). ``record`` is the record's
    byte form, for the layers above to enforce.
    """

    key: str
    subject: str
    node_id: str
    expires_at: float
    record: bytes


RevocationCheck = Callable[[bytes], "Revoked | None"]


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """Notified when the directory learns (``record`` set) or forgets a node's record."""

    node_id: str
    record: Record | None
    via: str  # "self" | "gossip" | "dht" | "member_gone"


@dataclass(frozen=True, slots=True)
class MeshNodeConfig:
    record_ttl_s: float = 600.0
    republish_s: float = 300.0
    fetch_delay_s: float = 1.0
    fetch_retry_s: float = 5.0
    max_fetch_tries: int = 5
    max_fetches: int = 8


class MeshNode:
    """One node's machine plane (see the module docstring)."""

    def __init__(
        self,
        node_id: str,
        addr: str,
        *,
        name: str,
        public_key: bytes,
        sign: Callable[[bytes], bytes],
        verify_record: dht_mod.RecordVerifier,
        verify_message: Callable[..., bool],
        may_write: dht_mod.WritePolicy,
        encode_record: Callable[[Record], bytes],
        decode_record: Callable[[bytes], Record],
        rng: random.Random,
        now: float,
        wall_offset: float = 0.0,
        swim: SwimConfig | None = None,
        dht: DhtConfig | None = None,
        pubsub: PubSubConfig | None = None,
        config: MeshNodeConfig | None = None,
        catalog: CatalogConfig | None = None,
        rv_start: int = 0,
        control: Core | None = None,
        check_revocation: RevocationCheck | None = None,
    ) -> None:
        """``rv_start``: the catalog's first resourceVersion (see ``Catalog``).
        ``control``: the core of the layer above (the scheduler), which gets every
        message of a type the machine plane does not own, its timers, and its effects
        passed up unchanged. ``check_revocation``: decodes and verifies a revocation
        record (None if malformed or not signed by the CA); without it revocation
        records are replicated but not enforced."""
        self.control = control
        self.node_id = node_id
        self.addr = addr
        self.public_key = public_key
        self.wall_offset = wall_offset
        self.config = config or MeshNodeConfig()
        self._sign = sign
        self._encode_record = encode_record
        self._decode_record = decode_record
        self.membership = Membership(node_id, addr, rng=rng, now=now, name=name, config=swim)
        self.dht = Dht(
            node_id,
            addr,
            rng=rng,
            verify=verify_record,
            may_write=may_write,
            config=dht,
            now=now + wall_offset,
        )
        self.pubsub = PubSub(
            node_id,
            addr,
            public_key=public_key,
            sign=sign,
            verify=verify_message,
            rng=rng,
            now=now,
            config=pubsub,
        )
        self.pubsub.subscribe(NODES_TOPIC, now)  # no peers yet: nothing to send
        self.directory: dict[str, Record] = {}
        self.counters: dict[str, int] = {}
        self._value: bytes | None = None
        self._version = 0
        self._republish_at: float | None = None
        self._fetch_due: dict[str, tuple[float, int]] = {}  # node id -> (due, tries)
        self._fetching: dict[int, str] = {}  # lookup id -> node id
        self._alive: dict[str, str] = {}  # live members: id -> addr
        self._joined_at = now
        self.catalog = Catalog(
            node_id,
            addr,
            rng=rng,
            now=now,
            wall_offset=wall_offset,
            rv_start=rv_start,
            config=catalog,
        )
        self._catalog_on = False  # our own record lists CATALOG_PROTOCOL
        self._speaks: dict[str, bool] = {}  # node id -> its record lists CATALOG_PROTOCOL
        self._catalog_peers: dict[str, str] = {}  # given to the catalog: id -> addr
        self._catalog_dropped = 0
        self._check_revocation = check_revocation
        self.revoked: dict[str, Revoked] = {}  # record key -> record, verified
        self.banned: set[str] = set()  # node ids revoked
        self._revocations_rv = 0  # catalog rv up to which records were looked at

    # --------------------------------------------------------------- local API

    def join(self, seeds: Sequence[str], now: float) -> list[Effect]:
        self._joined_at = now
        return self._process(self.membership.join(seeds, now), now)

    def leave(self, now: float) -> list[Effect]:
        return self.membership.leave(now)

    def set_record(self, value: bytes, now: float) -> list[Effect]:
        """Publish (or change) this node's record: sign, put in the DHT, announce."""
        self._value = value
        return self._publish_record(now)

    def _publish_record(self, now: float) -> list[Effect]:
        assert self._value is not None
        wall = now + self.wall_offset
        # Versions are milliseconds of wall time, so a restarted node supersedes itself.
        self._version = max(self._version + 1, int(wall * 1000))
        rec = Record(
            self.node_id,
            self._value,
            self.node_id,
            self.public_key,
            self._version,
            wall + self.config.record_ttl_s,
        ).signed(self._sign)
        self._republish_at = now + self.config.republish_s
        out: list[Effect] = []
        self._learn(rec, now, "self", out)
        _, fx = self.dht.put(rec, wall)
        out.extend(fx)
        _, fx = self.pubsub.publish(NODES_TOPIC, self._encode_record(rec), now)
        out.extend(fx)
        return self._process(out, now)

    def revoke(self, record: bytes, now: float) -> tuple[Revoked | None, list[Effect]]:
        """Enforce a revocation record and spread it (as a catalog object).

        Returns the verified record (None, with no effects, if it does not verify).
        """
        rv = None if self._check_revocation is None else self._check_revocation(record)
        if rv is None:
            self._inc("revocation_refused")
            return None, []
        out: list[Effect] = []
        key = (REVOCATIONS, "", rv.key)
        obj = {"record": rv.record.decode("ascii")}
        held = self.catalog.get(key)
        if held is None or held.obj != obj:
            _, fx = self.catalog.write(key, obj, now)
            out.extend(fx)
        self._apply_revocation(rv, now, out)
        return rv, self._process(out, now)

    def scan_revocations(self, now: float) -> list[Effect]:
        """Enforce the records in the catalog (after it was restored from disk)."""
        out: list[Effect] = []
        self._scan_revocations(now, out)
        return self._process(out, now)

    def catalog_peers(self) -> list[str]:
        """Live members this node exchanges catalog objects with (node ids)."""
        return list(self._catalog_peers)

    def members(self) -> list[dict[str, object]]:
        return self.membership.members()

    def catalog_write(
        self,
        key: Key,
        obj: dict[str, object] | None,
        now: float,
        *,
        after: Timestamp | None = None,
    ) -> tuple[Change | None, list[Effect]]:
        """Write (or, with ``obj=None``, delete) a catalog object; see ``Catalog.write``."""
        change, fx = self.catalog.write(key, obj, now, after=after)
        return change, self._process(fx, now)

    # ---------------------------------------------------------- core interface

    def handle(self, msg: object, now: float) -> list[Effect]:
        if self.banned and getattr(msg, "src", None) in self.banned:
            self._inc("revoked_dropped")
            return []
        if isinstance(msg, _MEMBERSHIP_TYPES):
            fx = self.membership.handle(msg, now)
        elif isinstance(msg, Rpc):
            fx = self.pubsub.handle(msg, now)
        elif isinstance(msg, _DHT_TYPES):
            fx = self.dht.handle(msg, now + self.wall_offset)
        elif isinstance(msg, _CATALOG_TYPES):
            if not self._catalog_on:
                self._catalog_dropped += 1
                return []
            fx = self.catalog.handle(msg, now)
        elif self.control is not None:
            return self.control.handle(msg, now)
        else:
            self._inc("drop_unknown_message")
            return []
        return self._process(fx, now)

    def next_deadline(self) -> float | None:
        ds = [
            self.membership.next_deadline(),
            self.pubsub.next_deadline(),
            self.catalog.next_deadline(),
            self._republish_at,
            None if self.control is None else self.control.next_deadline(),
        ]
        if len(self._fetching) < self.config.max_fetches:  # else a finished fetch starts more
            ds.append(min((due for due, _ in self._fetch_due.values()), default=None))
        d = self.dht.next_deadline()
        if d is not None:
            ds.append(d - self.wall_offset)
        present = [x for x in ds if x is not None]
        return min(present) if present else None

    def tick(self, now: float) -> list[Effect]:
        out: list[Effect] = []
        for core, offset in (
            (self.membership, 0.0),
            (self.pubsub, 0.0),
            (self.catalog, 0.0),  # the catalog applies wall_offset itself
            (self.dht, self.wall_offset),  # the DHT runs on the wall clock
        ):
            d = core.next_deadline()
            if d is not None and d - offset <= now:
                out.extend(core.tick(now + offset))
        if self._republish_at is not None and self._republish_at <= now:
            out.extend(self._publish_record(now))
        if self._fetch_due:
            self._start_fetches(now, out)
        if self.control is not None:
            d = self.control.next_deadline()
            if d is not None and d <= now:
                out.extend(self.control.tick(now))
        return self._process(out, now)

    # ---------------------------------------------------------------- plumbing

    def _process(self, effects: list[Effect], now: float) -> list[Effect]:
        """Pass effects up, reacting to the events that wire the cores together."""
        out: list[Effect] = []
        queue = list(effects)
        i = 0
        while i < len(queue):
            eff = queue[i]
            i += 1
            if type(eff) is Send:
                out.append(eff)
                continue
            ev = eff.event  # type: ignore[union-attr]
            if isinstance(ev, MemberEvent):
                queue.extend(self._on_member(ev, now))
            elif isinstance(ev, Delivery):
                if ev.message.topic == NODES_TOPIC:
                    if ev.from_peer != self.node_id:
                        self._on_announcement(ev.message.data, now, queue)
                    continue  # internal topic: not passed up
            elif isinstance(ev, CatalogChanged):
                self._scan_revocations(now, queue)
            elif isinstance(ev, LookupDone):
                nid = self._fetching.pop(ev.lookup_id, None)
                if nid is not None:
                    self._on_fetched(nid, ev, now, queue)
                    continue
            out.append(eff)
        return out

    def _on_member(self, ev: MemberEvent, now: float) -> list[Effect]:
        if ev.node_id == self.node_id:
            return []
        if ev.state in ("alive", "suspect"):
            new = ev.node_id not in self._alive
            self._alive[ev.node_id] = ev.addr
            contact = Contact(ev.node_id, ev.addr)
            self.dht.add_contact(contact)
            if ev.node_id not in self.directory and ev.node_id not in self._fetch_due:
                # A member that joins announces its record on the topic; give that a
                # moment. Members we meet while joining ourselves never will: fetch now.
                joining = now - self._joined_at < self.config.fetch_delay_s
                delay = 0.0 if joining else self.config.fetch_delay_s
                self._fetch_due[ev.node_id] = (now + delay, 0)
            out = self.pubsub.add_peer(ev.node_id, ev.addr)
            if new:
                out.extend(self.dht.handoff(contact, now + self.wall_offset))
            self._catalog_sync(ev.node_id)
            return out
        self._alive.pop(ev.node_id, None)
        self.dht.remove_contact(ev.node_id)
        self.pubsub.remove_peer(ev.node_id)
        self._fetch_due.pop(ev.node_id, None)
        self._speaks.pop(ev.node_id, None)
        self._catalog_sync(ev.node_id)
        if self.directory.pop(ev.node_id, None) is not None:
            return [Notify(RecordEvent(ev.node_id, None, "member_gone"))]
        return []

    def _scan_revocations(self, now: float, out: list[Effect]) -> None:
        """Look at the revocation records the catalog changed since the last look."""
        cat = self.catalog
        if self._check_revocation is None or cat.rv == self._revocations_rv:
            return
        try:
            changes: list[Change] | None = cat.changes_since(self._revocations_rv)
        except Expired:  # the first look, or the log moved on: read them all
            changes = None
        self._revocations_rv = cat.rv
        if changes is None:
            for e in cat.list(REVOCATIONS):
                self._learn_revocation(e.obj, now, out)
            return
        for ch in changes:
            if ch.key[0] != REVOCATIONS:
                continue
            if ch.type != DELETED:
                self._learn_revocation(ch.obj, now, out)
                continue
            held = self.revoked.get(ch.key[2])
            wall = now + self.wall_offset
            if held is not None and not (held.expires_at and wall >= held.expires_at):
                self._inc("revocation_restored")  # the set only grows: write it back
                _, fx = cat.write(ch.key, {"record": held.record.decode("ascii")}, now)
                out.extend(fx)

    def _learn_revocation(self, obj: object, now: float, out: list[Effect]) -> None:
        raw = obj.get("record") if isinstance(obj, dict) else None
        rv = None
        if isinstance(raw, str) and raw.isascii() and self._check_revocation is not None:
            rv = self._check_revocation(raw.encode("ascii"))
        if rv is None:
            self._inc("revocation_invalid")
            return
        self._apply_revocation(rv, now, out)

    def _apply_revocation(self, rv: Revoked, now: float, out: list[Effect]) -> None:
        if rv.expires_at and now + self.wall_offset >= rv.expires_at:
            self._inc("revocation_expired")
            return
        if self.revoked.get(rv.key) == rv:
            return
        self.revoked[rv.key] = rv
        self._inc("revocations")
        out.append(Notify(rv))
        if rv.node_id and rv.node_id != self.node_id and rv.node_id not in self.banned:
            self.banned.add(rv.node_id)
            out.extend(self.membership.ban(rv.node_id, now))

    def _on_announcement(self, data: bytes, now: float, out: list[Effect]) -> None:
        try:
            rec = self._decode_record(data)
        except ValueError:
            self._inc("announcement_malformed")
            return
        self._learn(rec, now, "gossip", out)

    def _learn(self, rec: Record, now: float, via: str, out: list[Effect]) -> bool:
        if rec.key in self.banned:
            self._inc("record_of_revoked")
            return False
        held = self.directory.get(rec.key)
        if held is not None and held.version >= rec.version:
            self._inc("record_not_newer")
            return False
        if via != "self":
            ok, _ = self.dht.accept(rec, now + self.wall_offset, store=False)
            if not ok:
                self._inc(f"record_refused_{via}")
                return False
            if rec.key not in self._alive:
                self._inc("record_of_non_member")  # kept: membership may lag the record
        self.directory[rec.key] = rec
        self._fetch_due.pop(rec.key, None)
        self._note_protocols(rec)
        out.append(Notify(RecordEvent(rec.key, rec, via)))
        return True

    def _note_protocols(self, rec: Record) -> None:
        """Whether ``rec``'s node speaks the catalog protocol; update the catalog's peers."""
        speaks = CATALOG_PROTOCOL in _protocols_of(rec.value)
        if rec.key != self.node_id:
            self._speaks[rec.key] = speaks
            self._catalog_sync(rec.key)
        elif speaks != self._catalog_on:
            self._catalog_on = speaks
            for nid in list(self._alive):
                self._catalog_sync(nid)

    def _catalog_sync(self, nid: str) -> None:
        addr = self._alive.get(nid)
        want = addr is not None and self._catalog_on and self._speaks.get(nid, False)
        held = self._catalog_peers.get(nid)
        if want and addr is not None and held != addr:
            self._catalog_peers[nid] = addr
            self.catalog.peer_up(nid, addr)
        elif not want and held is not None:
            del self._catalog_peers[nid]
            self.catalog.peer_down(nid)

    def _start_fetches(self, now: float, out: list[Effect]) -> None:
        c = self.config
        for nid, (due, tries) in sorted(self._fetch_due.items(), key=lambda x: x[1][0]):
            if len(self._fetching) >= c.max_fetches or due > now:
                break
            if nid in self.directory or nid not in self._alive or tries >= c.max_fetch_tries:
                if tries >= c.max_fetch_tries:
                    self._inc("record_fetch_gave_up")
                del self._fetch_due[nid]
                continue
            self._fetch_due[nid] = (now + c.fetch_retry_s, tries + 1)
            lid, fx = self.dht.lookup(nid, now + self.wall_offset, want_value=True)
            self._fetching[lid] = nid
            self._inc("record_fetches")
            out.extend(fx)

    def _on_fetched(self, nid: str, ev: LookupDone, now: float, out: list[Effect]) -> None:
        if ev.record is not None and ev.record.key == nid:
            self._learn(ev.record, now, "dht", out)
        else:
            self._inc("record_fetch_missed")
        if self._fetch_due:
            self._start_fetches(now, out)

    def stats(self) -> dict[str, int]:
        out = {f"swim_{k}": v for k, v in self.membership.stats.counters.items()}
        out.update({f"dht_{k}": v for k, v in self.dht.counters.items()})
        out.update({f"pubsub_{k}": v for k, v in self.pubsub.counters.items()})
        out.update({f"records_{k}": v for k, v in self.counters.items()})
        out["records_known"] = len(self.directory)
        out.update({f"catalog_{k}": v for k, v in self.catalog.stats().items()})
        out["catalog_dropped_not_speaking"] = self._catalog_dropped
        return out

    def _inc(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1


def _protocols_of(value: bytes) -> tuple[int, ...]:
    """The protocol versions a node-record value lists (none if it is not one)."""
    try:
        return NodeRecord.from_bytes(value).protocol_versions
    except ValueError:  # not a node record (tests may publish any bytes)
        return ()
