"""Kademlia DHT: the sans-I/O core (Maymounkov & Mazières, IPTPS 2002).

Theory of operation:

* Distance is XOR over 160-bit node ids (§2.1). Contacts live in k-buckets by the
  position of the highest differing bit (§2.2), k = 20. A full bucket keeps its old
  contacts (they have proven uptime) and parks newcomers in a small replacement cache.
  Liveness comes from membership: ``remove_contact`` is called when a member dies and a
  replacement moves up.
* Lookups are iterative (§2.3): keep the k closest contacts seen, have up to α = 3
  requests in flight to the closest unqueried ones, stop when the k closest have all
  answered or failed (FIND_NODE) or a valid record arrives (FIND_VALUE). A request that
  does not answer within an adaptive timeout — Jacobson's srtt + 4·rttvar over observed
  round trips, clamped — counts as failed and the next contact is asked, so a dead
  contact costs a fraction of a second, not seconds.
* Records (§2.5) are signed by their author and carry a version and an absolute expiry
  on the mesh clock. A store is accepted only if the policy says the author may write
  the key (it is given this node's view of the ids nearest a key, for records that only
  the nodes closest to their key may write), the signature verifies, it has not expired
  and its version is not older than what we hold. Rejections are counted by reason.
* ``put`` looks up the k closest nodes to a key and stores the record at each (§2.3).
  Maintenance (§2.3, §2.5), when the core is given a start time: every ``refresh_s``
  a lookup for a random id in each bucket not used since; every ``replicate_s`` every
  held record is put again, so it reaches nodes that joined closer to its key; expired
  records are dropped every ``expire_check_s``. Owners republish their own records
  (with a fresh expiry and a new version) — that is the caller's job, not the core's.

``now`` is seconds on a clock the mesh shares (wall clock in the real driver, virtual
time in the simulator): record expiry is compared across nodes.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hyperion.core import Effect, Notify, Send

ID_BITS = 160
K = 20  # bucket size and replication factor (§2.2)
ALPHA = 3  # lookup parallelism (§2.3)
REPLACEMENTS_MAX = 8  # replacement-cache entries per bucket
MAX_RECORDS = 100_000  # records a node stores for others; beyond this, stores are refused
MAX_RECORD_BYTES = 64 << 10

# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Contact:
    node_id: str
    addr: str


@dataclass(frozen=True, slots=True)
class Record:
    """A signed value under ``key`` (40 hex chars, like a node id)."""

    key: str
    value: bytes
    author: str  # node id of the signer
    author_key: bytes  # its Ed25519 public key (the id is its hash)
    version: int
    expires_at: float  # on the mesh clock
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        head = f"hyperion-record-v1\x00{self.key}\x00{self.author}\x00{self.version}\x00"
        return head.encode() + repr(self.expires_at).encode() + b"\x00" + self.value

    def signed(self, sign: Callable[[bytes], bytes]) -> Record:
        """This record with its signature made by ``sign`` (the author's key)."""
        return dataclasses.replace(self, signature=sign(self.signing_bytes()))


@dataclass(frozen=True, slots=True)
class FindNode:
    src: str
    src_addr: str
    rid: int
    target: str


@dataclass(frozen=True, slots=True)
class FindValue:
    src: str
    src_addr: str
    rid: int
    key: str


@dataclass(frozen=True, slots=True)
class Nodes:
    """Answer to FindNode/FindValue: closest contacts known, and the record if held."""

    src: str
    rid: int
    contacts: tuple[Contact, ...]
    record: Record | None = None


@dataclass(frozen=True, slots=True)
class Store:
    src: str
    src_addr: str
    rid: int
    record: Record


@dataclass(frozen=True, slots=True)
class StoreAck:
    src: str
    rid: int
    accepted: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LookupDone:
    """Notified when a lookup ends. ``hops``: longest chain of referrals that was used."""

    lookup_id: int
    target: str
    closest: tuple[Contact, ...]
    record: Record | None
    hops: int
    started_at: float
    finished_at: float
    queried: int
    timeouts: int


# ----------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class DhtConfig:
    k: int = K
    alpha: int = ALPHA
    rtt_initial_s: float = 0.2  # before any sample: a typical inter-region round trip
    timeout_min_s: float = 0.05
    timeout_max_s: float = 1.0
    refresh_s: float = 3600.0
    replicate_s: float = 3600.0
    expire_check_s: float = 60.0


RecordVerifier = Callable[[Record], bool]  # signature check, injected (crypto is not I/O)
NearestIds = Callable[[str, int], list[str]]  # the n known ids closest to a key, own included
# May record.author write record.key? None if so, else the reason (counted as
# ``record_rejected_<reason>``). Given this node's view of the ids nearest a key, for
# records only the nodes closest to their key may write (a workload's custodian).
WritePolicy = Callable[[Record, NearestIds], str | None]


def xor(a: str, b: str) -> int:
    return int(a, 16) ^ int(b, 16)


def bucket_index(own: int, other: int) -> int:
    return (own ^ other).bit_length() - 1


# ------------------------------------------------------------------------------- core


@dataclass(slots=True)
class _Lookup:
    lid: int
    target: str
    target_int: int
    want_value: bool
    started: float
    shortlist: dict[str, tuple[int, Contact, int]]  # id -> (distance, contact, depth)
    state: dict[str, int] = field(default_factory=dict)  # 1 in flight, 2 answered, 3 failed
    record: Record | None = None
    best_depth: int = 0
    queried: int = 0
    timeouts: int = 0


class Dht:
    """One node's Kademlia state machine."""

    def __init__(
        self,
        node_id: str,
        addr: str,
        *,
        rng: random.Random,
        verify: RecordVerifier,
        may_write: WritePolicy,
        config: DhtConfig | None = None,
        now: float | None = None,
    ) -> None:
        """``now`` starts periodic maintenance (refresh, replication, expiry); without it
        the core only runs lookups (as in the lookup-only simulation)."""
        self.node_id = node_id
        self.id_int = int(node_id, 16)
        self.addr = addr
        self.rng = rng
        self.config = config or DhtConfig()
        self._verify = verify
        self._may_write = may_write
        self.buckets: list[OrderedDict[str, Contact]] = [OrderedDict() for _ in range(ID_BITS)]
        self._replacements: list[OrderedDict[str, Contact]] = [
            OrderedDict() for _ in range(ID_BITS)
        ]
        self.records: dict[str, Record] = {}
        self.counters: dict[str, int] = {}
        self._rid = 0
        self._lid = 0
        # rid -> (lookup, peer, sent); kept past its timeout while the lookup runs, so a
        # slow answer still counts (the lookup has moved on to other contacts meanwhile).
        self._pending: dict[int, tuple[int, str, float]] = {}
        self._timed_out: set[int] = set()
        self._lookups: dict[int, _Lookup] = {}
        self._timers: list[tuple[float, int]] = []  # (deadline, rid)
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._puts: dict[int, Record] = {}  # lookup id -> record to store at the end
        self._touched = [0.0 if now is None else now] * ID_BITS
        self._maint: dict[str, float] = {}
        if now is not None:
            c = self.config
            jitter = 1.0 + 0.1 * rng.random()  # nodes started together spread out
            self._maint = {
                "refresh": now + c.refresh_s * jitter,
                "replicate": now + c.replicate_s * jitter,
                "expire": now + c.expire_check_s,
            }

    # ------------------------------------------------------------- routing table

    def add_contact(self, contact: Contact) -> None:
        if contact.node_id == self.node_id or not contact.addr:
            return
        i = bucket_index(self.id_int, int(contact.node_id, 16))
        bucket = self.buckets[i]
        if contact.node_id in bucket:
            bucket[contact.node_id] = contact
            bucket.move_to_end(contact.node_id)
            return
        if len(bucket) < self.config.k:
            bucket[contact.node_id] = contact
            return
        spare = self._replacements[i]  # §2.2: old contacts stay; newcomers wait
        spare[contact.node_id] = contact
        spare.move_to_end(contact.node_id)
        while len(spare) > REPLACEMENTS_MAX:
            spare.popitem(last=False)

    def remove_contact(self, node_id: str) -> None:
        """Membership says ``node_id`` is dead: drop it, promote a replacement."""
        if node_id == self.node_id:
            return
        i = bucket_index(self.id_int, int(node_id, 16))
        self._replacements[i].pop(node_id, None)
        if self.buckets[i].pop(node_id, None) is not None and self._replacements[i]:
            nid, c = self._replacements[i].popitem(last=True)
            self.buckets[i][nid] = c

    def contacts(self) -> Iterable[Contact]:
        for b in self.buckets:
            yield from b.values()

    def closest(self, target: str, n: int) -> list[Contact]:
        """The ``n`` known contacts closest to ``target`` by XOR."""
        t = int(target, 16)
        start = bucket_index(self.id_int, t) if t != self.id_int else 0
        # Buckets at and below the target's index hold the closest candidates; scan
        # outward until enough are collected, then rank exactly.
        picked: list[Contact] = []
        order = [start, *range(start - 1, -1, -1), *range(start + 1, ID_BITS)]
        for i in order:
            picked.extend(self.buckets[i].values())
            if len(picked) >= 2 * n and i < start:
                break
        picked.sort(key=lambda c: int(c.node_id, 16) ^ t)
        return picked[:n]

    def nearest_ids(self, key: str, n: int) -> list[str]:
        """The ids of the ``n`` nodes closest to ``key`` among the contacts and this node."""
        ids = [c.node_id for c in self.closest(key, n)] + [self.node_id]
        t = int(key, 16)
        ids.sort(key=lambda nid: int(nid, 16) ^ t)
        return ids[:n]

    # ----------------------------------------------------------------- lookups

    def lookup(
        self, target: str, now: float, *, want_value: bool = False
    ) -> tuple[int, list[Effect]]:
        """Start an iterative lookup; its result arrives as ``Notify(LookupDone)``."""
        self._lid += 1
        t = int(target, 16)
        short = {
            c.node_id: (int(c.node_id, 16) ^ t, c, 1) for c in self.closest(target, self.config.k)
        }
        lk = _Lookup(self._lid, target, t, want_value, now, short)
        if want_value and target in self.records and self._fresh(self.records[target], now):
            lk.record = self.records[target]
        self._lookups[lk.lid] = lk
        if t != self.id_int:
            self._touched[bucket_index(self.id_int, t)] = now
        out: list[Effect] = []
        self._advance(lk, now, out)
        return lk.lid, out

    def put(self, rec: Record, now: float) -> tuple[int, list[Effect]]:
        """Store ``rec`` at the k nodes closest to its key (and here, if we are among them).

        The lookup's ``LookupDone`` is notified as usual; the stores go out when it ends.
        """
        lid, out = self.lookup(rec.key, now)
        if lid in self._lookups:
            self._puts[lid] = rec
        else:  # no contacts at all: nothing to ask, keep it here
            self.accept(rec, now)
        return lid, out

    def _timeout_s(self) -> float:
        c = self.config
        srtt = self._srtt if self._srtt is not None else c.rtt_initial_s
        rttvar = self._rttvar if self._srtt is not None else c.rtt_initial_s / 2
        return min(max(srtt + 4 * rttvar, c.timeout_min_s), c.timeout_max_s)

    def _sample_rtt(self, rtt: float) -> None:
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:  # RFC 6298
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt

    def _advance(self, lk: _Lookup, now: float, out: list[Effect]) -> None:
        if lk.record is not None:
            self._finish(lk, now, out)
            return
        ranked = sorted(lk.shortlist.values(), key=lambda e: e[0])
        in_flight = sum(1 for s in lk.state.values() if s == 1)
        answered = 0
        for _, contact, _depth in ranked:
            st = lk.state.get(contact.node_id, 0)
            if st == 0 and in_flight < self.config.alpha:
                self._request(lk, contact, now, out)
                in_flight += 1
            elif st == 2:
                answered += 1
            if answered + in_flight >= self.config.k:  # failed ones do not count
                break
        # Done when every one of the k closest live candidates has answered or failed.
        top = [c for _, c, _ in ranked if lk.state.get(c.node_id, 0) != 3][: self.config.k]
        if in_flight == 0 and all(lk.state.get(c.node_id, 0) == 2 for c in top):
            self._finish(lk, now, out)

    def _request(self, lk: _Lookup, contact: Contact, now: float, out: list[Effect]) -> None:
        self._rid += 1
        rid = self._rid
        lk.state[contact.node_id] = 1
        lk.queried += 1
        self._pending[rid] = (lk.lid, contact.node_id, now)
        heapq.heappush(self._timers, (now + self._timeout_s(), rid))
        if lk.want_value:
            msg: object = FindValue(self.node_id, self.addr, rid, lk.target)
        else:
            msg = FindNode(self.node_id, self.addr, rid, lk.target)
        out.append(Send(contact.node_id, contact.addr, msg))

    def _finish(self, lk: _Lookup, now: float, out: list[Effect]) -> None:
        self._lookups.pop(lk.lid, None)
        put = self._puts.pop(lk.lid, None)
        for rid in [r for r, p in self._pending.items() if p[0] == lk.lid]:
            del self._pending[rid]
            self._timed_out.discard(rid)
        ranked = sorted(
            (e for e in lk.shortlist.values() if lk.state.get(e[1].node_id) == 2),
            key=lambda e: e[0],
        )
        closest = tuple(c for _, c, _ in ranked[: self.config.k])
        hops = lk.best_depth or max((d for _, _, d in ranked[:1]), default=0)
        if put is not None:
            k = self.config.k
            far = ranked[k - 1][0] if len(ranked) >= k else None
            if far is None or (int(put.key, 16) ^ self.id_int) < far:
                self.accept(put, now)  # we are among the k closest ourselves
            out.extend(self.store(put, closest))
        out.append(
            Notify(
                LookupDone(
                    lk.lid,
                    lk.target,
                    closest,
                    lk.record,
                    hops,
                    lk.started,
                    now,
                    lk.queried,
                    lk.timeouts,
                )
            )
        )

    # ------------------------------------------------------------- core interface

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers and (timers[0][1] not in self._pending or timers[0][1] in self._timed_out):
            heapq.heappop(timers)
        first = timers[0][0] if timers else None
        if self._maint:
            m = min(self._maint.values())
            first = m if first is None else min(first, m)
        return first

    def tick(self, now: float) -> list[Effect]:
        out: list[Effect] = []
        if self._maint and min(self._maint.values()) <= now:
            self._maintain(now, out)
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, rid = heapq.heappop(timers)
            pend = self._pending.get(rid)
            if pend is None or rid in self._timed_out:
                continue
            lid, peer, _ = pend
            lk = self._lookups.get(lid)
            if lk is None:
                self._pending.pop(rid, None)
                continue
            self._timed_out.add(rid)
            lk.state[peer] = 3
            lk.timeouts += 1
            self._inc("request_timeouts")
            self._advance(lk, now, out)
        return out

    def handle(self, msg: object, now: float) -> list[Effect]:
        out: list[Effect] = []
        if isinstance(msg, FindNode):
            self.add_contact(Contact(msg.src, msg.src_addr))
            near = tuple(self.closest(msg.target, self.config.k))
            out.append(Send(msg.src, msg.src_addr, Nodes(self.node_id, msg.rid, near)))
        elif isinstance(msg, FindValue):
            self.add_contact(Contact(msg.src, msg.src_addr))
            rec = self.records.get(msg.key)
            if rec is not None and not self._fresh(rec, now):
                del self.records[msg.key]
                rec = None
            near = () if rec is not None else tuple(self.closest(msg.key, self.config.k))
            out.append(Send(msg.src, msg.src_addr, Nodes(self.node_id, msg.rid, near, rec)))
        elif isinstance(msg, Nodes):
            self._on_nodes(msg, now, out)
        elif isinstance(msg, Store):
            self.add_contact(Contact(msg.src, msg.src_addr))
            ok, reason = self.accept(msg.record, now)
            out.append(Send(msg.src, msg.src_addr, StoreAck(self.node_id, msg.rid, ok, reason)))
        elif isinstance(msg, StoreAck):
            self._inc("store_acked" if msg.accepted else f"store_refused_{msg.reason}")
        else:
            self._inc("drop_unknown_message")
        return out

    def _maintain(self, now: float, out: list[Effect]) -> None:
        c, m = self.config, self._maint
        if m["expire"] <= now:
            m["expire"] = now + c.expire_check_s
            n = self.expire(now)
            if n:
                self._inc_by("records_expired", n)
        if m["refresh"] <= now:
            m["refresh"] = now + c.refresh_s
            for i, bucket in enumerate(self.buckets):
                if bucket and now - self._touched[i] >= c.refresh_s:
                    # A random id in bucket i: its distance lies in [2^i, 2^(i+1)).
                    target = self.id_int ^ (1 << i) ^ self.rng.getrandbits(i)
                    _, fx = self.lookup(f"{target:040x}", now)
                    out.extend(fx)
                    self._inc("bucket_refreshes")
        if m["replicate"] <= now:
            m["replicate"] = now + c.replicate_s
            for rec in list(self.records.values()):
                _, fx = self.put(rec, now)
                out.extend(fx)
                self._inc("records_replicated")

    def _on_nodes(self, msg: Nodes, now: float, out: list[Effect]) -> None:
        pend = self._pending.get(msg.rid)
        if pend is None or pend[1] != msg.src:
            self._inc("late_or_unsolicited_replies")
            return
        del self._pending[msg.rid]
        lid, peer, sent = pend
        if msg.rid in self._timed_out:
            self._timed_out.discard(msg.rid)
            self._inc("late_replies_used")
        self._sample_rtt(now - sent)
        lk = self._lookups.get(lid)
        if lk is None:
            return
        lk.state[peer] = 2
        depth = lk.shortlist[peer][2] if peer in lk.shortlist else 1
        if msg.record is not None and lk.want_value and msg.record.key == lk.target:
            ok, _ = self.accept(msg.record, now, store=False)
            if ok:
                lk.record = msg.record
                lk.best_depth = depth
        for c in msg.contacts[: self.config.k]:
            if c.node_id == self.node_id or c.node_id in lk.shortlist:
                continue
            try:
                d = int(c.node_id, 16) ^ lk.target_int
            except ValueError:
                self._inc("drop_bad_contact")
                continue
            lk.shortlist[c.node_id] = (d, c, depth + 1)
        self._advance(lk, now, out)

    # ----------------------------------------------------------------- records

    def _fresh(self, rec: Record, now: float) -> bool:
        return rec.expires_at > now

    def accept(self, rec: Record, now: float, *, store: bool = True) -> tuple[bool, str]:
        """Validate a record (and keep it if ``store``); returns (accepted, reason)."""
        reason = ""
        held = self.records.get(rec.key)
        if len(rec.value) > MAX_RECORD_BYTES:
            reason = "too_large"
        elif not self._fresh(rec, now):
            reason = "expired"
        elif (refused := self._may_write(rec, self.nearest_ids)) is not None:
            reason = refused
        elif not self._verify(rec):
            reason = "bad_signature"
        elif held is not None and rec.version < held.version:
            reason = "stale_version"
        elif store and held is None and len(self.records) >= MAX_RECORDS:
            reason = "full"
        if reason:
            self._inc(f"record_rejected_{reason}")
            return False, reason
        if store:
            self.records[rec.key] = rec
        return True, ""

    def store(self, rec: Record, targets: Iterable[Contact]) -> list[Effect]:
        """Send ``rec`` to ``targets`` (usually a lookup's k closest)."""
        out: list[Effect] = []
        for c in targets:
            self._rid += 1
            out.append(Send(c.node_id, c.addr, Store(self.node_id, self.addr, self._rid, rec)))
        return out

    def handoff(self, contact: Contact, now: float) -> list[Effect]:
        """A new contact appeared: store at it the held records it is now among the k
        closest to (§2.5: existing nodes hand values to a joining node)."""
        out: list[Effect] = []
        c_int = int(contact.node_id, 16)
        for rec in list(self.records.values()):
            if not self._fresh(rec, now):
                continue
            near = self.closest(rec.key, self.config.k)
            key = int(rec.key, 16)
            if len(near) < self.config.k or (c_int ^ key) <= (int(near[-1].node_id, 16) ^ key):
                out.extend(self.store(rec, (contact,)))
                self._inc("records_handed_off")
        return out

    def expire(self, now: float) -> int:
        """Drop expired records; returns how many."""
        dead = [k for k, r in self.records.items() if not self._fresh(r, now)]
        for k in dead:
            del self.records[k]
        return len(dead)

    def _inc(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _inc_by(self, name: str, n: int) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
