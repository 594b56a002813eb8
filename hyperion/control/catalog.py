"""The object catalog: every API object, replicated to every node (DESIGN §10). Sans-I/O.

The Kubernetes-compatible API on every node stores its objects here. This module owns
the replicated map ``(resource, namespace, name) -> object``, its per-node change log
(the resourceVersion sequence that list+watch read) and the anti-entropy protocol that
keeps the copies equal. Objects are opaque JSON dicts: the API layer owns their
metadata (resourceVersion included). It may not import I/O, clocks or global randomness.

Theory of operation
===================

*Last writer wins on hybrid logical clocks.* Every version of an object — a tombstone
(``obj=None``) included — carries the ``Timestamp`` of the write that made it
(``hlc.py``). A node holds, per key, the version with the largest timestamp it has
seen; a version that is older or equal is ignored (and counted). Timestamps are unique
(the node id breaks ties), so any two nodes that hold the same set of versions hold the
same catalog, whatever order they learned them in. Every remote timestamp is observed by
the local clock, so a local write made after seeing a version always beats it.

*Tombstones* stop an older write from resurrecting a deleted object. They are kept
``tombstone_ttl_s`` (by their own wall time) and then collected. A tombstone already
past that age is not stored again when a peer still sends it. The TTL must exceed the
longest time a node can be partitioned away or offline and still come back with its
catalog (Cassandra's ``gc_grace_seconds``): after that a stale write can come back, and
such a node should rejoin with an empty catalog.

*Expiring kinds.* Objects of a resource named in ``expire_s`` (Events: one hour, as
kube-apiserver's ``--event-ttl``) live that long after their last write. Every node
then replaces the version by the same tombstone, stamped ``expire_s`` after the
version's own wall time (same logical counter and node), so the copies stay equal
without a delete being sent, watchers see DELETED, and any write made after the expiry
wins over it. A version that arrives already expired is taken as its tombstone.

*The resourceVersion* is local: ``rv`` counts the changes this node applied (from
``rv_start``, which a restarted daemon sets from the wall clock so it never goes back).
Each visible change — ADDED, MODIFIED, or DELETED (carrying the last live object) —
is appended to a change log (``changes_since``; at least ``log_max`` kept) and
announced as ``Notify(CatalogChanged(rv))``, once per call that applied any. A
tombstone for a key this node never saw live changes nothing visible and is stored
silently.

*Digests.* Keys hash into ``buckets`` buckets. Each bucket keeps the XOR of a 64-bit
hash of ``(key, timestamp, tombstone?)`` over its entries, updated on every change, so
a digest costs O(buckets), and two nodes disagree on a bucket iff (up to a 2^-64
chance) they hold different versions in it. ``digest()`` is the XOR over everything.
``buckets`` must be the same on every node (a digest of another length is refused and
counted).

*Anti-entropy* (push-pull, Demers et al. 1987, with a bucketed summary as in Dynamo's
Merkle exchange reduced to one level). Every ``round_s`` a node picks one random peer:

1. ``A -> B  CatalogDigest(buckets)`` — A's bucket hashes (empty for an empty catalog).
   If they equal B's, B says nothing: one message per round when in sync.
2. ``B -> A  CatalogDelta(reply=True, items, buckets, summary)`` — B's versions in the
   buckets that differ: whole entries, up to ``max_delta_items`` and
   ``max_delta_bytes`` (one entry always fits), and ``(key, timestamp)`` for the rest
   of those buckets; ``buckets`` lists the buckets described completely (a reply
   describes at most ``max_summary`` keys in ``max_summary_bytes``; further buckets
   wait for a later round). The differing buckets are taken from a random starting
   point, so a backlog is worked through evenly.
3. ``A -> B  CatalogDelta(reply=False, items)`` — after applying what won, A sends the
   versions B lacks or holds older: keys of the described buckets absent from B's
   description, and keys B described with an older timestamp (bounded the same way).

Whatever does not fit follows in a later round (the buckets still differ), and is
counted in ``deferred_items`` / ``deferred_buckets``: nothing is dropped silently.
A lost message costs only that exchange; the next round repeats it with another peer.
A bucket ships whole, so an exchange costs about (differing keys) x (keys per bucket)
entries: keep ``buckets`` near the number of objects over a few (64 suits hundreds
to a few thousand objects; the digest costs 8 bytes per bucket per round).

A version is one immutable ``CatalogItem``, stored as received and sent on as is
(the simulator's nodes share one object per version); ``Entry`` is the local view
of it with this node's rv.

*Push.* A local write is also sent at once to ``push_fanout`` random peers as a
``CatalogDelta(reply=False)`` with that one entry; anti-entropy carries it the rest of
the way (the number of holders roughly triples per round, so ~log3(n) rounds).

Bad input from a peer never raises out of ``handle``: it is counted under
``rejected_*`` and skipped. The wire codec (``hyperion/net/codec.py``) validates keys,
sizes and JSON before a message gets here; this core re-checks only shapes.
"""

from __future__ import annotations

import builtins
import hashlib
import heapq
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import compress
from operator import ne
from types import MappingProxyType
from typing import Any

from hyperion.control.hlc import MAX_SKEW_MS, Hlc, Timestamp
from hyperion.core import Effect, Notify, Send

Key = tuple[str, str, str]  # (resource "<group>/<plural>", namespace or "", name)
Stamp = tuple[Key, Timestamp]

MAX_OBJECT_BYTES = 1 << 20  # compact JSON; etcd's default request limit is 1.5 MiB
MAX_KEY_PART_CHARS = 253  # a Kubernetes name is a DNS subdomain: at most 253 characters
ITEM_OVERHEAD_BYTES = 64  # key, timestamp and framing of one entry, for the byte budget
STAMP_OVERHEAD_BYTES = 40  # timestamp and framing of one stamp (plus its key's length)

EVENT_TTL_S = 3600.0  # kube-apiserver's --event-ttl default
PUBSUB_TTL_S = 600.0  # the sidecar's pub/sub messages and acks (workplane/pubsub.py)
DEFAULT_EXPIRE_S: Mapping[str, float] = MappingProxyType(
    {
        "/events": EVENT_TTL_S,
        "pubsub.workplane.hyperion.io/messages": PUBSUB_TTL_S,
        "pubsub.workplane.hyperion.io/acks": PUBSUB_TTL_S,
    }
)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

_COUNTERS = (
    "writes",
    "rounds",
    "digests_sent",
    "digests_received",
    "in_sync",
    "deltas_sent",
    "deltas_received",
    "pushes",
    "items_sent",
    "items_received",
    "item_bytes_sent",
    "item_bytes_received",
    "applied",
    "ignored_older",
    "ignored_expired_tombstone",
    "deferred_items",
    "deferred_buckets",
    "tombstones_collected",
    "expired",
    "rejected",
)


# ------------------------------------------------------------------------ errors


class CatalogError(Exception):
    """Base of the catalog's local errors (a peer's bad input is counted, never raised)."""


class Expired(CatalogError):
    """``changes_since(rv)``: ``rv`` is older than the retained change log (HTTP 410)."""


# --------------------------------------------------------------- local data types


@dataclass(frozen=True, slots=True)
class Entry:
    """One key's current version on this node."""

    key: Key
    ts: Timestamp
    obj: dict[str, Any] | None  # None = tombstone. Shared, never mutate it.
    rv: int  # local resourceVersion at which this node applied it
    nbytes: int = 0  # length of obj's compact JSON (0 for a tombstone)


@dataclass(frozen=True, slots=True)
class Change:
    rv: int
    type: str  # "ADDED" | "MODIFIED" | "DELETED"
    key: Key
    obj: dict[str, Any]  # for DELETED: the last live object


@dataclass(frozen=True, slots=True)
class CatalogChanged:
    """Notified whenever a call applied changes (local or remote); ``rv`` is the new rv."""

    rv: int


# ---------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One version on the wire (no rv: that is local to each node).

    It checks its own shape when made (the codec has checked the contents) and carries
    the two hashes the catalog needs, computed once per version however often it is
    sent or received.
    """

    key: Key
    ts: Timestamp
    obj: dict[str, Any] | None  # None = tombstone
    nbytes: int = field(default=0, compare=False)  # len of obj's compact JSON
    key_hash: int = field(init=False, compare=False, repr=False)  # picks the bucket
    version_hash: int = field(init=False, compare=False, repr=False)  # see entry_hash

    def __post_init__(self) -> None:
        if not (
            _stamp_ok(self.key, self.ts)
            and (self.obj is None or type(self.obj) is dict)
            and type(self.nbytes) is int
        ):
            raise TypeError("CatalogItem needs a (str, str, str) key, a Timestamp, a dict or None")
        kb = _key_bytes(self.key)
        object.__setattr__(self, "key_hash", _key_hash(kb))
        object.__setattr__(self, "version_hash", _entry_hash(kb, self.ts, self.obj is None))


@dataclass(frozen=True, slots=True)
class CatalogDigest:
    """Anti-entropy step 1: the sender's bucket hashes (``()`` for an empty catalog)."""

    src: str
    src_addr: str
    buckets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CatalogDelta:
    """Anti-entropy steps 2 (``reply=True``) and 3, and the push of a fresh write."""

    src: str
    src_addr: str
    reply: bool
    items: tuple[CatalogItem, ...]
    buckets: tuple[int, ...] = ()  # reply: the buckets described completely
    summary: tuple[Stamp, ...] = ()  # reply: versions of those buckets not in items


# ----------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class CatalogConfig:
    # One exchange per node per 200 ms: a write reaches 10,000 nodes in ~10 rounds
    # (~3 s with cross-region RTTs); an in-sync round costs one ~600-byte digest.
    round_s: float = 0.2
    push_fanout: int = 3  # peers a fresh local write is pushed to at once
    tombstone_ttl_s: float = 3600.0  # must exceed the longest partition (module docstring)
    log_max: int = 100_000  # change-log entries kept at least, for watches
    buckets: int = 64  # digest granularity; the same on every node
    max_delta_items: int = 256  # entries in one delta
    max_delta_bytes: int = 1 << 20  # object bytes in one delta (one entry always fits)
    max_summary: int = 16_384  # keys described by one reply
    max_summary_bytes: int = 1 << 20  # their stamps' size: a reply stays under 4 MiB
    max_skew_ms: int = MAX_SKEW_MS  # remote clocks further ahead are counted
    # resource -> seconds an object lives after its last write (module docstring)
    expire_s: Mapping[str, float] = field(default_factory=lambda: DEFAULT_EXPIRE_S)

    def __post_init__(self) -> None:
        if self.round_s <= 0 or self.tombstone_ttl_s <= 0:
            raise ValueError("round_s and tombstone_ttl_s must be positive")
        if any(not ttl > 0 for ttl in self.expire_s.values()):
            raise ValueError("expire_s must be positive")
        object.__setattr__(self, "expire_s", MappingProxyType(dict(self.expire_s)))
        if self.buckets < 1 or self.max_delta_items < 1 or self.max_summary < 1:
            raise ValueError("buckets, max_delta_items and max_summary must be at least 1")
        if self.push_fanout < 0 or self.log_max < 0 or self.max_delta_bytes < 0:
            raise ValueError("push_fanout, log_max and max_delta_bytes must not be negative")


# ------------------------------------------------------------ objects, keys, hashes


def key_error(key: object) -> str | None:
    """Why ``key`` is not a valid catalog key, or None."""
    if type(key) is not tuple or len(key) != 3 or not all(type(p) is str for p in key):
        return "a key is (resource, namespace, name), three strings"
    resource, namespace, name = key
    if "/" not in resource or not name:
        return 'a key needs a resource "<group>/<plural>" and a name'
    if any(len(p) > MAX_KEY_PART_CHARS or "\x00" in p or not p.isascii() for p in key):
        return f"key parts are ASCII, at most {MAX_KEY_PART_CHARS} characters, without NUL"
    return None


def encode_object(obj: dict[str, Any]) -> bytes:
    """An object as compact ASCII JSON (the form it travels and is measured in)."""
    if type(obj) is not dict:
        raise ValueError("an object must be a JSON object (dict)")
    try:
        raw = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"object is not JSON-serializable: {e}") from None
    if len(raw) > MAX_OBJECT_BYTES:
        raise ValueError(f"object larger than {MAX_OBJECT_BYTES} bytes as JSON")
    return raw


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def decode_object(raw: bytes) -> dict[str, Any]:
    """The inverse of ``encode_object``; ValueError for anything but a JSON object."""
    if len(raw) > MAX_OBJECT_BYTES:
        raise ValueError(f"object larger than {MAX_OBJECT_BYTES} bytes")
    try:
        obj = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"object is not valid JSON: {e}") from None
    if type(obj) is not dict:
        raise ValueError("an object must be a JSON object")
    return obj


def _key_bytes(key: Key) -> bytes:
    return "\x00".join(key).encode()  # parts never contain NUL (key_error)


def _key_hash(kb: bytes) -> int:
    h = hashlib.blake2b(kb, digest_size=8, person=b"hyp-cat-bucket").digest()
    return int.from_bytes(h, "big")


def _entry_hash(kb: bytes, ts: Timestamp, tombstone: bool) -> int:
    tail = f"\x01{ts.wall_ms}\x00{ts.logical}\x00{ts.node}\x00{int(tombstone)}".encode()
    return int.from_bytes(hashlib.blake2b(kb + tail, digest_size=8).digest(), "big")


def entry_hash(key: Key, ts: Timestamp, tombstone: bool) -> int:
    """The 64-bit hash an entry contributes to its bucket and to ``digest()``."""
    return _entry_hash(_key_bytes(key), ts, tombstone)


# ------------------------------------------------------------------------- peers


class PeerSet:
    """Live catalog peers: id -> address with O(1) add, remove and random pick.

    A node owns its own (fed by ``peer_up``/``peer_down``). The simulator may hand one
    shared, static ``PeerSet`` of every node to all cores (a full peer list without
    n^2 memory); ``pick`` skips the caller itself.
    """

    __slots__ = ("ids", "addrs", "_index")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.addrs: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._index

    def add(self, node_id: str, addr: str) -> None:
        i = self._index.get(node_id)
        if i is None:
            self._index[node_id] = len(self.ids)
            self.ids.append(node_id)
            self.addrs.append(addr)
        else:
            self.addrs[i] = addr

    def remove(self, node_id: str) -> None:
        i = self._index.pop(node_id, None)
        if i is None:
            return
        last = len(self.ids) - 1
        if i != last:  # move the last peer into the hole
            self.ids[i] = self.ids[last]
            self.addrs[i] = self.addrs[last]
            self._index[self.ids[i]] = i
        self.ids.pop()
        self.addrs.pop()

    def others(self, node_id: str) -> int:
        return len(self.ids) - (node_id in self._index)

    def pick(self, rng: random.Random, k: int, exclude: str) -> builtins.list[tuple[str, str]]:
        """Up to ``k`` distinct random peers other than ``exclude``."""
        own = self._index.get(exclude)
        n = len(self.ids)
        want = min(k, n - (own is not None))
        if want <= 0:
            return []
        draw = rng.sample(range(n), min(n, want + (own is not None)))
        return [(self.ids[i], self.addrs[i]) for i in draw if i != own][:want]


# -------------------------------------------------------------------------- core


class Catalog:
    """One node's replica of the object catalog (see the module docstring)."""

    def __init__(
        self,
        node_id: str,
        addr: str,
        *,
        rng: random.Random,
        now: float,
        wall_offset: float = 0.0,
        rv_start: int = 0,
        config: CatalogConfig | None = None,
        peers: PeerSet | None = None,
    ) -> None:
        """``wall_offset``: wall clock minus ``now`` (HLC and tombstone ages use wall time).

        ``peers``: a shared static peer list (simulator only); by default the node keeps
        its own, fed by ``peer_up``/``peer_down``.
        """
        self.node_id = node_id
        self.addr = addr
        self.rng = rng
        self.wall_offset = wall_offset
        self.config = c = config or CatalogConfig()
        self.hlc = Hlc(node_id, max_skew_ms=c.max_skew_ms)
        self.peers = peers if peers is not None else PeerSet()
        self.counters: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        # key -> (version, local rv at which it was applied). The version objects are
        # what goes on the wire, shared and never copied (objects are immutable).
        self._held: dict[Key, tuple[CatalogItem, int]] = {}
        self._bucket_keys: builtins.list[dict[Key, None]] = [{} for _ in range(c.buckets)]
        self._bucket_hash: builtins.list[int] = [0] * c.buckets
        self._bucket_stamp_bytes: builtins.list[int] = [0] * c.buckets  # for reply limits
        self._vector: tuple[int, ...] | None = None  # cached tuple(_bucket_hash)
        self._root = 0
        self._by_resource: dict[str, dict[Key, None]] = {}  # live keys per resource
        self._tombstones = 0
        self._gc: builtins.list[tuple[int, Key]] = []  # heap of (tombstone wall_ms, key)
        # heap of (expiry wall_ms, key, stamp) of live versions of expiring resources
        self._exp: builtins.list[tuple[int, Key, Timestamp]] = []
        self._expire_ms = {r: int(ttl * 1000) for r, ttl in c.expire_s.items()}
        self._rv = rv_start
        self._log: builtins.list[Change] = []  # consecutive rvs, oldest first
        self._next_round = now + rng.random() * c.round_s

    # ------------------------------------------------------------- local API

    @property
    def rv(self) -> int:
        return self._rv

    def get(self, key: Key) -> Entry | None:
        """The live entry for ``key`` (None if absent or deleted)."""
        h = self._held.get(key)
        if h is None or h[0].obj is None:
            return None
        it, rv = h
        return Entry(key, it.ts, it.obj, rv, it.nbytes)

    def entry(self, key: Key) -> Entry | None:
        """The entry for ``key``, tombstones included."""
        h = self._held.get(key)
        if h is None:
            return None
        it, rv = h
        return Entry(key, it.ts, it.obj, rv, it.nbytes)

    def write(
        self,
        key: Key,
        obj: dict[str, Any] | None,
        now: float,
        *,
        after: Timestamp | None = None,
    ) -> tuple[Change | None, builtins.list[Effect]]:
        """Write (``obj``) or delete (``None``) locally; the change and what to send.

        The object is deep-copied (through its JSON form). Raises ValueError for an
        invalid key or an object that is not JSON or is too large. Deleting a key that
        is absent or already deleted is a no-op: ``(None, [])``.

        ``after``: a *derived* write (a controller's read-modify-write: status, binding).
        It applies only if the key still holds the version stamped ``after`` (else
        ``(None, [])``), and is stamped just after it rather than now, so that any write
        or delete made elsewhere once that version existed wins over it: a controller's
        status write never undoes a user's delete or scale it had not seen yet.
        """
        err = key_error(key)
        if err is not None:
            raise ValueError(err)
        h = self._held.get(key)
        cur = None if h is None else h[0]
        stored: dict[str, Any] | None = None
        nbytes = 0
        if obj is None:
            if cur is None or cur.obj is None:
                return None, []
        else:
            raw = encode_object(obj)
            stored, nbytes = json.loads(raw), len(raw)
        if after is not None:
            if cur is None or cur.ts != after:
                self._inc("derived_writes_stale")
                return None, []
            ts = Timestamp(after.wall_ms, after.logical + 1, self.node_id)
            self.hlc.observe(ts, now + self.wall_offset)
        else:
            ts = self.hlc.now(now + self.wall_offset)
            if cur is not None and ts.wall_ms == cur.ts.wall_ms and ts.logical < cur.ts.logical + 2:
                # Leave room below: a derived write of ``cur`` (stamped logical + 1, any
                # node) must lose to this one, which was made knowing ``cur``.
                ts = Timestamp(ts.wall_ms, cur.ts.logical + 2, self.node_id)
                self.hlc.observe(ts, now + self.wall_offset)
        assert cur is None or ts > cur.ts, "the HLC observed every stored timestamp"
        item = CatalogItem(key, ts, stored, nbytes)
        change = self._store(item, cur)
        self._inc("writes")
        out: builtins.list[Effect] = [Notify(CatalogChanged(self._rv))]
        targets = self.peers.pick(self.rng, self.config.push_fanout, self.node_id)
        if targets:
            msg = CatalogDelta(self.node_id, self.addr, False, (item,))
            for peer, addr in targets:
                self._inc("pushes")
                self._count_sent(msg)
                out.append(Send(peer, addr, msg))
        return change, out

    def changes_since(self, rv: int) -> builtins.list[Change]:
        """Changes with rv greater than ``rv``, oldest first; Expired if not all retained."""
        if rv >= self._rv:
            return []
        first = self._log[0].rv if self._log else self._rv + 1
        if rv + 1 < first:
            raise Expired(f"resourceVersion {rv} is older than the oldest retained ({first - 1})")
        return self._log[rv + 1 - first :]

    def digest(self) -> bytes:
        """An order-independent hash of every (key, timestamp, tombstone?) held."""
        return self._root.to_bytes(8, "big")

    def peer_up(self, node_id: str, addr: str) -> None:
        if node_id != self.node_id and addr:
            self.peers.add(node_id, addr)

    def peer_down(self, node_id: str) -> None:
        self.peers.remove(node_id)

    def stats(self) -> dict[str, int]:
        out = dict(self.counters)
        out["entries"] = len(self._held) - self._tombstones
        out["tombstones"] = self._tombstones
        out["rv"] = self._rv
        out["log"] = len(self._log)
        out["peers"] = self.peers.others(self.node_id)
        out["hlc_skewed"] = self.hlc.skewed
        out["hlc_max_ahead_ms"] = self.hlc.max_ahead_ms
        return out

    # -------------------------------------------------------- core interface

    def next_deadline(self) -> float | None:
        peers = self.peers
        d = self._next_round if len(peers.ids) > (self.node_id in peers) else None
        if self._gc:
            g = self._gc[0][0] / 1000.0 + self.config.tombstone_ttl_s - self.wall_offset
            d = g if d is None else min(d, g)
        if self._exp:
            e = self._exp[0][0] / 1000.0 - self.wall_offset
            d = e if d is None else min(d, e)
        return d

    def tick(self, now: float) -> builtins.list[Effect]:
        out: builtins.list[Effect] = []
        if self._exp and self._expire(now + self.wall_offset):
            out.append(Notify(CatalogChanged(self._rv)))
        if self._gc:
            self._collect(now + self.wall_offset)
        if now >= self._next_round:
            self._next_round = now + self.config.round_s
            for peer, addr in self.peers.pick(self.rng, 1, self.node_id):
                self.counters["rounds"] += 1
                self.counters["digests_sent"] += 1
                vec = self._bucket_vector() if self._held else ()
                out.append(Send(peer, addr, CatalogDigest(self.node_id, self.addr, vec)))
        return out

    def handle(self, msg: object, now: float) -> builtins.list[Effect]:
        if type(msg) is CatalogDigest:
            return self._on_digest(msg)
        if type(msg) is CatalogDelta:
            return self._on_delta(msg, now)
        self._reject("unknown_message")
        return []

    # --------------------------------------------------------------- handlers

    def _on_digest(self, msg: CatalogDigest) -> builtins.list[Effect]:
        self.counters["digests_received"] += 1
        theirs = msg.buckets
        nb = self.config.buckets
        if type(theirs) is not tuple:
            self._reject("shape")
            return []
        if not theirs:
            if not self._held:
                self.counters["in_sync"] += 1
                return []
            theirs = (0,) * nb
        elif len(theirs) != nb:
            self._reject("bucket_count")
            return []
        mine = self._bucket_vector()
        if theirs == mine:
            self.counters["in_sync"] += 1
            return []
        if not msg.src_addr:
            self._reject("no_addr")
            return []
        differ = builtins.list(compress(range(nb), map(ne, mine, theirs)))
        items, summary, covered = self._describe(differ)
        reply = CatalogDelta(
            self.node_id, self.addr, True, tuple(items), tuple(covered), tuple(summary)
        )
        self._count_sent(reply)
        return [Send(msg.src, msg.src_addr, reply)]

    def _on_delta(self, msg: CatalogDelta, now: float) -> builtins.list[Effect]:
        counters = self.counters
        counters["deltas_received"] += 1
        if not (
            type(msg.items) is tuple and type(msg.buckets) is tuple and type(msg.summary) is tuple
        ):
            self._reject("shape")
            return []
        wall = now + self.wall_offset
        rv0 = self._rv
        theirs: dict[Key, Timestamp] = {}
        received = nbytes = 0
        reply = msg.reply
        for it in msg.items:
            if type(it) is not CatalogItem:  # a CatalogItem checked its own shape
                self._reject("item")
                continue
            received += 1
            nbytes += it.nbytes
            if reply:
                theirs[it.key] = it.ts
            counters[self._accept(it, wall, "")] += 1
        counters["items_received"] += received
        counters["item_bytes_received"] += nbytes
        out: builtins.list[Effect] = []
        if self._rv != rv0:
            out.append(Notify(CatalogChanged(self._rv)))
        if not reply:
            return out
        for stamp in msg.summary:
            if type(stamp) is not tuple or len(stamp) != 2 or not _stamp_ok(*stamp):
                self._reject("summary")
                continue
            self.hlc.observe(stamp[1], wall)
            theirs[stamp[0]] = stamp[1]
        covered = []
        for b in msg.buckets:
            if type(b) is not int or not 0 <= b < self.config.buckets:
                self._reject("bucket")
                continue
            covered.append(b)
        items = self._newer_than(theirs, covered)
        if items and msg.src_addr:
            back = CatalogDelta(self.node_id, self.addr, False, tuple(items))
            self._count_sent(back)
            out.append(Send(msg.src, msg.src_addr, back))
        elif items:
            self._reject("no_addr")
        return out

    def _describe(
        self, differ: builtins.list[int]
    ) -> tuple[builtins.list[CatalogItem], builtins.list[Stamp], builtins.list[int]]:
        """Step 2: this node's versions in the differing buckets, within the limits.

        A reply describes at most ``max_summary`` keys in ``max_summary_bytes`` of
        stamps, whole buckets at a time; the remaining buckets wait for a later round.
        """
        c = self.config
        items: builtins.list[CatalogItem] = []
        summary: builtins.list[Stamp] = []
        covered: builtins.list[int] = []
        budget = c.max_delta_bytes
        described = described_bytes = 0
        held = self._held
        start = self.rng.randrange(len(differ))
        for n, b in enumerate(differ[start:] + differ[:start]):
            keys = self._bucket_keys[b]
            cost = self._bucket_stamp_bytes[b]
            if described + len(keys) > c.max_summary or (
                described_bytes + cost > c.max_summary_bytes
            ):
                if described:  # this bucket and the rest wait for a later round
                    self._add("deferred_buckets", len(differ) - n)
                    break
                # One bucket larger than a whole reply: describe a random part of it.
                # It is not listed as covered, so the peer pushes only what it knows
                # to be newer; pulls (both ways) bring the rest over the rounds.
                self._add("deferred_buckets", len(differ))
                part = builtins.list(keys)
                k0 = self.rng.randrange(len(part))
                for key in part[k0:] + part[:k0]:
                    described += 1
                    described_bytes += _stamp_bytes(key)
                    if described > c.max_summary or described_bytes > c.max_summary_bytes:
                        break
                    budget = self._put(key, items, summary, budget)
                break
            covered.append(b)
            described += len(keys)
            described_bytes += cost
            if len(items) + len(keys) <= c.max_delta_items:  # the usual case, inlined
                for key in keys:
                    it = held[key][0]
                    size = it.nbytes + ITEM_OVERHEAD_BYTES
                    if items and size > budget:
                        budget = self._put(key, items, summary, budget)
                        continue
                    items.append(it)
                    budget -= size
            else:
                for key in keys:
                    budget = self._put(key, items, summary, budget)
        return items, summary, covered

    def _put(
        self,
        key: Key,
        items: builtins.list[CatalogItem],
        summary: builtins.list[Stamp],
        budget: int,
    ) -> int:
        it = self._held[key][0]
        size = it.nbytes + ITEM_OVERHEAD_BYTES
        if len(items) < self.config.max_delta_items and (not items or size <= budget):
            items.append(it)
            return budget - size
        summary.append((key, it.ts))
        self.counters["deferred_items"] += 1
        return budget

    def _newer_than(
        self, theirs: dict[Key, Timestamp], covered: builtins.list[int]
    ) -> builtins.list[CatalogItem]:
        """Step 3: versions the peer lacks (in fully described buckets) or holds older."""
        c = self.config
        held = self._held
        candidates: builtins.list[CatalogItem] = []
        for key, ts in theirs.items():
            h = held.get(key)
            if h is not None and h[0].ts is not ts and h[0].ts > ts:  # shared stamps: same
                candidates.append(h[0])
        for b in covered:
            for key in self._bucket_keys[b]:
                if key not in theirs:
                    candidates.append(held[key][0])
        out: builtins.list[CatalogItem] = []
        budget = c.max_delta_bytes
        for it in candidates:
            size = it.nbytes + ITEM_OVERHEAD_BYTES
            if len(out) >= c.max_delta_items or (out and size > budget):
                self.counters["deferred_items"] += 1
                continue
            out.append(it)
            budget -= size
        return out

    # ------------------------------------------------------------------ state

    def _store(self, it: CatalogItem, cur: CatalogItem | None) -> Change | None:
        """Make ``it`` the version of its key; the visible change it makes, if any."""
        key = it.key
        b = it.key_hash % self.config.buckets
        h = it.version_hash
        if cur is None:
            self._bucket_keys[b][key] = None
            self._bucket_stamp_bytes[b] += _stamp_bytes(key)
        else:
            h ^= cur.version_hash
        self._bucket_hash[b] ^= h
        self._root ^= h
        self._vector = None
        was_live = cur is not None and cur.obj is not None
        change: Change | None = None
        if it.obj is not None:
            ttl_ms = self._expire_ms.get(key[0])
            if ttl_ms is not None:
                heapq.heappush(self._exp, (it.ts.wall_ms + ttl_ms, key, it.ts))
            self._rv += 1
            change = Change(self._rv, MODIFIED if was_live else ADDED, key, it.obj)
            if not was_live:
                self._by_resource.setdefault(key[0], {})[key] = None
                if cur is not None:
                    self._tombstones -= 1
        else:
            heapq.heappush(self._gc, (it.ts.wall_ms, key))
            if cur is not None and cur.obj is not None:
                self._rv += 1
                change = Change(self._rv, DELETED, key, cur.obj)
                self._by_resource[key[0]].pop(key, None)
            if not (cur is not None and cur.obj is None):
                self._tombstones += 1
        if change is not None:
            log = self._log
            log.append(change)
            if len(log) > 2 * self.config.log_max:  # trim in batches: amortized O(1)
                del log[: len(log) - self.config.log_max]
        self._held[key] = (it, self._rv)
        if self._journal is not None:
            self._journal.append(it)
        return change

    def _expired(self, it: CatalogItem, wall_s: float) -> bool:
        return it.ts.wall_ms <= int((wall_s - self.config.tombstone_ttl_s) * 1000)

    def _accept(self, it: CatalogItem, wall_s: float, prefix: str) -> str:
        """Apply a version learned elsewhere (a peer, the disk) by the rules of the
        module docstring; the counter naming what happened (``prefix`` + ``applied``,
        ``ignored_older`` or ``ignored_expired_tombstone``). A version of an expiring
        kind past its expiry is taken as its tombstone (``prefix`` + ``expired``)."""
        if it.obj is not None and it.key[0] in self._expire_ms:
            gone = self._tombstone_of(it)
            if gone.ts.wall_ms <= wall_s * 1000:
                self._inc(prefix + "expired")
                it = gone
        h = self._held.get(it.key)
        if h is not None and (it is h[0] or it.ts <= h[0].ts):
            return prefix + "ignored_older"  # the HLC saw h's stamp: no observe needed
        self.hlc.observe(it.ts, wall_s)
        cur = None if h is None else h[0]
        if it.obj is None and (cur is None or cur.obj is None) and self._expired(it, wall_s):
            return prefix + "ignored_expired_tombstone"
        self._store(it, cur)
        return prefix + "applied"

    def _tombstone_of(self, it: CatalogItem) -> CatalogItem:
        """The tombstone every node puts in place of ``it`` when it expires."""
        ts = it.ts
        return CatalogItem(
            it.key, Timestamp(ts.wall_ms + self._expire_ms[it.key[0]], ts.logical, ts.node), None
        )

    def _expire(self, wall_s: float) -> bool:
        """Replace the versions past their expiry by their tombstones; True if any."""
        now_ms = wall_s * 1000
        heap = self._exp
        rv0 = self._rv
        while heap and heap[0][0] <= now_ms:
            _, key, ts = heapq.heappop(heap)
            h = self._held.get(key)
            if h is None or h[0].ts != ts or h[0].obj is None:
                continue  # superseded since
            gone = self._tombstone_of(h[0])
            self.hlc.observe(gone.ts, wall_s)
            self._store(gone, h[0])
            self.counters["expired"] += 1
        return self._rv != rv0

    def _collect(self, wall_s: float) -> None:
        """Forget tombstones older than ``tombstone_ttl_s``."""
        limit_ms = int((wall_s - self.config.tombstone_ttl_s) * 1000)
        heap = self._gc
        while heap and heap[0][0] <= limit_ms:
            wall_ms, key = heapq.heappop(heap)
            h = self._held.get(key)
            if h is None or h[0].obj is not None or h[0].ts.wall_ms != wall_ms:
                continue  # superseded since
            b = h[0].key_hash % self.config.buckets
            x = h[0].version_hash
            self._bucket_hash[b] ^= x
            self._root ^= x
            self._vector = None
            del self._bucket_keys[b][key]
            self._bucket_stamp_bytes[b] -= _stamp_bytes(key)
            del self._held[key]
            self._tombstones -= 1
            self.counters["tombstones_collected"] += 1

    def _bucket_vector(self) -> tuple[int, ...]:
        v = self._vector
        if v is None:
            v = self._vector = tuple(self._bucket_hash)
        return v

    # --------------------------------------------------------------- plumbing

    def _count_sent(self, msg: CatalogDelta) -> None:
        c = self.counters
        c["deltas_sent"] += 1
        c["items_sent"] += len(msg.items)
        c["item_bytes_sent"] += sum(it.nbytes for it in msg.items)

    def _reject(self, reason: str) -> None:
        self.counters["rejected"] += 1
        self._inc(f"rejected_{reason}")

    def _inc(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _add(self, name: str, n: int) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def list(self, resource: str, namespace: str | None = None) -> builtins.list[Entry]:
        """Live entries of ``resource`` (in ``namespace`` if given), sorted by key."""
        keys = self._by_resource.get(resource, {})
        out = []
        for k in sorted(k for k in keys if namespace is None or k[1] == namespace):
            it, rv = self._held[k]
            out.append(Entry(k, it.ts, it.obj, rv, it.nbytes))
        return out

    # ----------------------------------------------- persistence: export, journal, restore
    # A node keeps a copy of its catalog on disk (``hyperion/control/persist.py`` does the
    # I/O) so that a whole-mesh restart keeps the objects. The core only hands versions
    # out (``items``, ``applied``) and takes saved ones back at start (``restore``).

    _journal: builtins.list[CatalogItem] | None = None  # set by track_applied()

    def items(self) -> builtins.list[CatalogItem]:
        """Every version held, tombstones included: what a snapshot saves."""
        return [h[0] for h in self._held.values()]

    def track_applied(self) -> None:
        """From now on, remember each version applied (see ``applied``)."""
        if self._journal is None:
            self._journal = []

    def applied(self) -> builtins.list[CatalogItem]:
        """The versions applied since the last call, oldest first: local writes and
        versions won from peers, tombstones included (a silent one too). Empty unless
        ``track_applied`` was called."""
        j = self._journal
        if not j:
            return []
        self._journal = []
        return j

    def restore(self, items: Iterable[CatalogItem], now: float) -> int:
        """Load saved versions at start, before any peer traffic; how many were stored.

        Each item passes the rules of a version received from a peer (``_accept``): an
        expired version (``expire_s``) is taken as its tombstone,
        an older or equal version is ignored, a tombstone already past
        ``tombstone_ttl_s`` is not stored, and the HLC observes every timestamp, so a
        later local write beats what was restored. Nothing is sent or notified and
        nothing enters the ``applied`` journal. Each stored live version gets an rv as
        if received; then the change log is emptied, so the node looks freshly started
        at the new ``rv``: a list shows the restored objects and a watch from an rv
        before it gets Expired (a watch cannot span a restart anyway: ``rv_start``
        comes from the wall clock).
        """
        wall = now + self.wall_offset
        journal, self._journal = self._journal, None
        stored = 0
        try:
            for it in items:
                if type(it) is not CatalogItem:
                    self._inc("restore_rejected")
                    continue
                outcome = self._accept(it, wall, "restore_")
                self._inc(outcome)
                stored += outcome == "restore_applied"
        finally:
            self._journal = journal
            self._log.clear()
        self._add("restored", stored)
        return stored


def _stamp_bytes(key: Key) -> int:
    return len(key[0]) + len(key[1]) + len(key[2]) + STAMP_OVERHEAD_BYTES


def _stamp_ok(key: object, ts: object) -> bool:
    return (
        type(key) is tuple
        and len(key) == 3
        and type(key[0]) is str
        and type(key[1]) is str
        and type(key[2]) is str
        and type(ts) is Timestamp
    )
