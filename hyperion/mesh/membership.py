"""SWIM membership with phi-accrual suspicion: the sans-I/O core.

Theory of operation (Das, Gupta, Motivala: SWIM, DSN 2002; Lifeguard, 2017; memberlist):

* Probing (SWIM §3.1, §4.3). Every ``probe_interval_s`` a node pings the next member of a
  randomized round-robin walk over its view. The walk is an affine permutation
  ``slot = (a*i + b) mod n`` with ``gcd(a, n) = 1``, so every member is visited once per
  round with O(1) memory. If no ack arrives within the direct timeout, the node asks
  ``indirect_checks`` random members to ping the target for it (PingReq); if none of
  them relays an ack before the indirect deadline, the target becomes *suspect*.
* Adaptive timeouts (phi accrual). The direct timeout is where phi of the observed ack
  round-trip times crosses ``phi_threshold`` (clamped to the profile's bounds); the
  indirect one is twice that, for two round trips. A suspicion turns into *dead* when
  phi of the refutation delays this node has seen crosses the same threshold.
* Suspicion and incarnations (SWIM §4.2). State is ``incarnation*4 + rank`` and the
  larger key wins (see ``table``). A node that hears itself suspected or declared dead
  at its current incarnation refutes with a higher one. The suspecting node also tells
  the suspect directly, so a live node refutes in one round trip instead of waiting for
  the rumor to reach it.
* Dissemination (SWIM §4.1). Every change is queued as a rumor and piggybacked on
  pings, acks and ping-reqs, fewest-transmitted first, at most
  ``retransmit_mult * ceil(log10(n + 1))`` times (memberlist's queue). News everyone
  must act on at once — a death, a refutation, a join — is also *broadcast* by the node
  that originates it over the id space (El-Ansary et al., "Efficient Broadcast in
  Structured P2P Networks", IPTPS 2003): the holder of an id range splits it into
  ``broadcast_fanout`` sub-ranges and hands each to ``broadcast_redundancy`` random live
  members inside it, who recurse. That reaches everyone in O(log_k n) hops with about
  ``redundancy`` messages per node; a message lost on the way is repaired by the
  piggyback stream. Full-state push-pull (on join and periodically, interval scaled
  with the mesh size as memberlist does) repairs whatever both missed.

The core never raises on bad peer input: malformed or misdirected messages are dropped
and counted in ``stats``. It owns no I/O, clock or global randomness.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import math
import operator
import random
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from hyperion.core import Effect, Notify, Send
from hyperion.mesh.phi import PhiAccrual, z_for_phi
from hyperion.mesh.table import (
    ALIVE,
    DEAD,
    STATE_NAMES,
    SUSPECT,
    Directory,
    MemberTable,
    make_key,
)

# ---------------------------------------------------------------------------- messages

_T = TypeVar("_T")


def _slot_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass an ``__init__`` that stores through its slots.

    ``dataclass(frozen=True)`` sets each field with ``object.__setattr__(self, name, v)``,
    which looks the attribute up by name every time. The messages below are built millions
    of times per simulated minute at 10,000 nodes; storing through the slot descriptors
    directly makes that about 40 % cheaper. Parameters, defaults, ``__post_init__``,
    equality, hashing and immutability stay those ``dataclass`` generated.
    """
    params: list[str] = []
    body: list[str] = []
    ns: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init:
            continue
        assert f.default_factory is dataclasses.MISSING, "no default factories here"
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            ns[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        ns[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        body.append(f"    _set_{f.name}(self, {f.name})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body), ns)
    ns["__init__"].__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = ns["__init__"]  # type: ignore[method-assign]
    return cls


@_slot_init
@dataclass(frozen=True, slots=True)
class Update:
    """A rumor: ``node_id`` is in ``state`` at ``incarnation``.

    ``key`` is derived, never sent: the table key the rumor carries (``make_key``), or -1
    when the state or incarnation is malformed. Receivers test most rumors (old news)
    against their table with it in one comparison.
    """

    node_id: str
    addr: str
    incarnation: int
    state: int
    name: str = ""
    key: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        inc, state = self.incarnation, self.state
        ok = type(inc) is int and inc >= 0 and type(state) is int and state in STATE_NAMES
        object.__setattr__(self, "key", make_key(inc, state) if ok else -1)


@_slot_init
@dataclass(frozen=True, slots=True)
class Ping:
    src: str
    src_addr: str
    seq: int
    target: str
    updates: tuple[Update, ...] = ()


@_slot_init
@dataclass(frozen=True, slots=True)
class Ack:
    src: str
    seq: int
    updates: tuple[Update, ...] = ()


@_slot_init
@dataclass(frozen=True, slots=True)
class PingReq:
    """Ask the receiver to ping ``target`` and relay the ack back to ``src``."""

    src: str
    src_addr: str
    seq: int
    target: str
    target_addr: str
    updates: tuple[Update, ...] = ()


@_slot_init
@dataclass(frozen=True, slots=True)
class Gossip:
    src: str
    updates: tuple[Update, ...]


@_slot_init
@dataclass(frozen=True, slots=True)
class Broadcast:
    """Urgent rumors for every member whose id is in [lo, hi]; the receiver recurses."""

    src: str
    lo: int
    hi: int
    updates: tuple[Update, ...]
    rank: int = 0  # which of the range's delegates this is (see broadcast_leaf_copies)


@dataclass(frozen=True, slots=True)
class PushPull:
    """Full-state exchange: parallel tuples of ids, addresses, names and state keys."""

    src: str
    src_addr: str
    reply: bool
    join: bool
    ids: tuple[str, ...]
    addrs: tuple[str, ...]
    names: tuple[str, ...]
    keys: tuple[int, ...]


Message = Ping | Ack | PingReq | Gossip | Broadcast | PushPull

ID_SPACE_MAX = (1 << 160) - 1  # node ids are 160-bit


@_slot_init
@dataclass(frozen=True, slots=True)
class MemberEvent:
    """Notified whenever this node's view of a member changes state."""

    node_id: str
    name: str
    addr: str
    state: str
    incarnation: int


# ------------------------------------------------------------------------ configuration


@dataclass(frozen=True, slots=True)
class SwimConfig:
    """All tunables in one place. Defaults are the LAN profile."""

    probe_interval_s: float = 1.0
    rtt_prior_mean_s: float = 0.1  # phi prior for ack round-trip times
    rtt_prior_std_s: float = 0.05
    probe_timeout_min_s: float = 0.1
    probe_timeout_max_s: float = 0.5  # memberlist LAN ProbeTimeout
    indirect_checks: int = 3  # SWIM's k, memberlist IndirectChecks
    broadcast_fanout: int = 16  # sub-ranges per hop: 10,000 nodes are 3-4 hops deep
    broadcast_redundancy: int = 2  # members handed each sub-range; survives a lost message
    # Delegates of a leaf range that hand it out member by member. One: the rank-0
    # delegate got its range from every holder above, and piggyback repairs a lost leaf.
    broadcast_leaf_copies: int = 1
    retransmit_mult: int = 2  # piggyback repairs; the broadcast carries urgent news
    max_piggyback: int = 16  # ~50 B per update: 800 B, inside a 1,400 B datagram
    push_pull_interval_s: float | None = 30.0
    # Serf's reconnect: tell a random dead member it is considered dead. A live one (a
    # healed partition) refutes and answers with a full push-pull, merging both sides.
    reconnect_interval_s: float | None = 10.0
    join_retry_s: float = 1.0  # resend the join while we know no one else
    phi_threshold: float = 8.0
    # Expected delay before a live suspect's refutation arrives: it is told directly.
    suspicion_prior_mean_s: float = 0.4
    suspicion_prior_std_s: float = 0.15
    suspicion_min_s: float = 0.8
    suspicion_max_s: float = 10.0
    broadcast_queue_max: int = 4096  # rumors queued; overflow drops the most-sent
    relay_max: int = 1024  # indirect probes this node runs for others at once


PROFILES: dict[str, SwimConfig] = {
    "lan": SwimConfig(),
    # memberlist DefaultWANConfig: 5 s probes, 3 s timeout, 0.5 s gossip to 4 nodes.
    "wan": SwimConfig(
        probe_interval_s=3.0,
        rtt_prior_mean_s=0.2,
        rtt_prior_std_s=0.1,
        probe_timeout_min_s=0.3,
        probe_timeout_max_s=3.0,
        retransmit_mult=4,
        push_pull_interval_s=60.0,
        reconnect_interval_s=30.0,
        suspicion_prior_mean_s=2.0,
        suspicion_prior_std_s=1.0,
        suspicion_min_s=4.0,
        suspicion_max_s=60.0,
    ),
    # One machine or one rack: fast probes, fast decisions.
    "local": SwimConfig(
        probe_interval_s=0.25,
        rtt_prior_mean_s=0.01,
        rtt_prior_std_s=0.01,
        probe_timeout_min_s=0.05,
        probe_timeout_max_s=0.2,
        retransmit_mult=3,
        push_pull_interval_s=15.0,
        reconnect_interval_s=2.0,
        suspicion_prior_mean_s=0.15,
        suspicion_prior_std_s=0.08,
        suspicion_min_s=0.3,
        suspicion_max_s=5.0,
    ),
}

PUSH_PULL_SCALE_THRESHOLD = 32  # memberlist pushPullScaleThreshold


def push_pull_scale(interval_s: float, n: int) -> float:
    """memberlist's pushPullScale: slow full-state syncs down as the mesh grows."""
    if n <= PUSH_PULL_SCALE_THRESHOLD:
        return interval_s
    mult = math.ceil(math.log2(n) - math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1
    return interval_s * mult


# --------------------------------------------------------------------------------- core

_PROBE = 0  # timer kinds in the internal heap
_RELAY = 1
_SUSPICION = 2
_RENOTIFY = 3
_DELEGATE_SCAN_MAX = 64  # members examined per sub-range when picking delegates
_FORWARDED_MAX = 4096  # (rumor, range) pairs remembered as forwarded: minutes of news


@dataclass(slots=True)
class _Probe:
    slot: int
    sent_at: float
    indirect: bool = False


@dataclass(slots=True)
class _Relay:
    origin: str
    origin_addr: str
    origin_seq: int


@dataclass(slots=True)
class _Stats:
    counters: dict[str, int] = field(default_factory=dict)

    def inc(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


class _RumorQueue:
    """Rumors waiting to be piggybacked, fewest-sent first (memberlist's TransmitLimitedQueue).

    A deque in round-robin order, roughly fewest-sent first: new rumors enter at the
    front, ``take`` pops from the front and re-appends what it sent at the back with its
    count plus one (O(1) work per rumor; not strictly sorted once a take leaves some
    behind, which is why no shortcut below relies on the order of counts). A newer rumor
    about a member replaces the older one (marked dead in place, skipped when reached).
    When full, the rumor at the back is dropped and counted: usually the most-sent one.

    Outside a burst of news the whole queue fits in one message (``max_piggyback``
    rumors), and then every ``take`` sends the same rumors in the same order. That
    case costs O(1): the tuple built last time (``_whole``) is handed out again, and a new
    rumor is prepended to it. Send counts are stored relative to one offset (``_lag``)
    that such a take advances for every entry at once.
    """

    __slots__ = ("_q", "_where", "_max", "_stats", "_whole", "_most", "_lag")

    def __init__(self, max_len: int, stats: _Stats) -> None:
        self._q: deque[list[Any]] = deque()  # entries: [slot, update, sends - _lag, live]
        self._where: dict[int, list[Any]] = {}
        self._max = max_len
        self._stats = stats
        # Every rumor in queue order while the queue holds no dead entries; else None.
        self._whole: tuple[Update, ...] | None = ()
        self._most = 0  # the highest stored count in ``_whole`` (meaningless when empty)
        self._lag = 0

    def __len__(self) -> int:
        return len(self._where)

    def put(self, slot: int, update: Update) -> None:
        where = self._where
        old = where.pop(slot, None)  # inlined discard(slot)
        if old is not None:
            old[3] = False
            self._whole = None
        if len(where) >= self._max:
            self._whole = None
            q = self._q
            while q:
                victim = q.pop()
                if victim[3]:
                    del where[victim[0]]
                    self._stats.inc("drop_rumor_overflow")
                    break
        sends = -self._lag  # zero sends so far
        entry = [slot, update, sends, True]
        self._q.appendleft(entry)
        where[slot] = entry
        whole = self._whole
        if whole is not None:
            if not whole or sends > self._most:
                self._most = sends
            self._whole = (update, *whole)

    def discard(self, slot: int) -> None:
        entry = self._where.pop(slot, None)
        if entry is not None:
            entry[3] = False
            self._whole = None  # the queue now holds a dead entry

    def take(self, limit: int, cap: int) -> tuple[Update, ...]:
        lag = self._lag
        whole = self._whole
        if whole is not None and len(whole) <= limit and self._most + lag + 1 < cap:
            self._lag = lag + 1  # every entry is sent once more; none reaches the cap
            return whole
        q = self._q
        where = self._where
        out: list[Update] = []
        if limit > 0:
            popleft = q.popleft
            requeue = q.append
            last = cap - lag - 1  # a stored count this high makes this send the last
            left = limit
            # Scan at most the entries present now: what is sent goes to the back, and
            # the bound keeps a rumor from going out twice in one message.
            for _ in range(len(q)):
                entry = popleft()
                if not entry[3]:
                    continue
                out.append(entry[1])
                sends = entry[2]
                if sends >= last:
                    entry[3] = False
                    del where[entry[0]]
                else:
                    entry[2] = sends + 1
                    requeue(entry)
                left -= 1
                if not left:
                    break
        if len(q) == len(where) and len(q) <= limit:
            self._whole = tuple([entry[1] for entry in q])
            self._most = max([entry[2] for entry in q], default=0)
        else:
            self._whole = None
        return tuple(out)


class Membership:
    """One node's SWIM state machine. See the module docstring for the protocol."""

    # Slotted: a simulated mesh holds 10,000 of these and touches one per event.
    __slots__ = (
        "node_id",
        "addr",
        "name",
        "config",
        "rng",
        "directory",
        "table",
        "incarnation",
        "emit_events",
        "stats",
        "self_slot",
        "_z",
        "_rtt",
        "_refute_delay",
        "_seq",
        "_probes",
        "_relays",
        "_suspect_since",
        "_suspect_deadline",
        "_rumors",
        "_forwarded",
        "_timers",
        "_timer_seq",
        "_next_probe",
        "_next_push_pull",
        "_join_seeds",
        "_next_join",
        "_next_reconnect",
        "_rr_n",
        "_rr_i",
        "_rr_a",
        "_rr_b",
        "_retransmit_n",
        "_retransmit_cap",
        "_deadline",
        "_deadline_dirty",
        "_next_periodic",
    )

    def __init__(
        self,
        node_id: str,
        addr: str,
        *,
        rng: random.Random,
        now: float,
        name: str = "",
        config: SwimConfig | None = None,
        directory: Directory | None = None,
        incarnation: int = 0,
        key_dtype: npt.DTypeLike = np.uint32,
        emit_events: bool = True,
    ) -> None:
        self.node_id = node_id
        self.addr = addr
        self.name = name
        self.config = config or SwimConfig()
        self.rng = rng
        self.directory = directory if directory is not None else Directory()
        self.table = MemberTable(key_dtype, capacity=max(64, len(self.directory) + 1))
        self.incarnation = incarnation
        self.emit_events = emit_events
        self.stats = _Stats()
        self._z = z_for_phi(self.config.phi_threshold)
        self._rtt = PhiAccrual(self.config.rtt_prior_mean_s, self.config.rtt_prior_std_s)
        self._refute_delay = PhiAccrual(
            self.config.suspicion_prior_mean_s, self.config.suspicion_prior_std_s
        )
        self.self_slot = self.directory.slot(node_id, addr, name)
        self.table.ensure(len(self.directory))
        self.table.set(self.self_slot, make_key(incarnation, ALIVE))

        self._seq = 0
        self._probes: dict[int, _Probe] = {}
        self._relays: dict[int, _Relay] = {}
        self._suspect_since: dict[int, float] = {}
        self._suspect_deadline: dict[int, float] = {}
        self._rumors = _RumorQueue(self.config.broadcast_queue_max, self.stats)
        self._forwarded: OrderedDict[tuple[str, int, int, int, int], None] = OrderedDict()
        self._timers: list[tuple[float, int, int, int]] = []  # (when, seq, kind, arg)
        self._timer_seq = 0
        # Random phases so that nodes started together do not probe in lockstep.
        self._next_probe = now + rng.random() * self.config.probe_interval_s
        pp = self.config.push_pull_interval_s
        self._next_push_pull = None if pp is None else now + rng.random() * pp
        self._join_seeds: list[str] = []
        self._next_join: float | None = None
        rc = self.config.reconnect_interval_s
        self._next_reconnect = None if rc is None else now + rc * (0.5 + rng.random())
        self._rr_n = 0
        self._rr_i = 0
        self._rr_a = 1
        self._rr_b = 0
        self._retransmit_n = -1
        self._retransmit_cap = 0
        self._deadline = self._next_probe  # next_deadline's answer, while not dirty
        self._deadline_dirty = True
        self._periodic_changed()

    # ------------------------------------------------------------------ public API

    def join(self, addrs: Sequence[str], now: float) -> list[Effect]:
        """Join through any known members: a full-state push-pull with each.

        Retried every ``join_retry_s`` until a seed's reply arrives (knowing someone is
        not enough: they may have joined through us while our own join was lost).
        """
        self._join_seeds = [a for a in addrs if a]
        self._next_join = now + self.config.join_retry_s if self._join_seeds else None
        self._periodic_changed()
        return [Send("", a, self._push_pull(reply=False, join=True)) for a in self._join_seeds]

    def leave(self, now: float) -> list[Effect]:
        """Announce a graceful departure: dead(self) at our incarnation, pushed to peers."""
        self.table.set(self.self_slot, make_key(self.incarnation, DEAD))
        u = Update(self.node_id, self.addr, self.incarnation, DEAD, self.name)
        out: list[Effect] = []
        self._broadcast(0, ID_SPACE_MAX, (u,), out)
        return out

    def ban(self, node_id: str, now: float, name: str = "") -> list[Effect]:
        """Declare ``node_id`` dead for good (its identity was revoked).

        The member gets the largest key there is, dead at the largest incarnation the
        table holds: no rumor, refutation or push-pull can override it, so it is never
        re-admitted, and the rumor that spreads it does the same on every node that
        hears it. Reconnect probes skip it. Banning self or a banned member does nothing.
        """
        if node_id == self.node_id:
            return []
        d = self.directory
        slot = d.slot(node_id, "", name)
        self.table.ensure(len(d))
        key = make_key(self.table.dtype_max_incarnation, DEAD)
        out: list[Effect] = []
        if self.table.get(slot) < key:
            self.stats.inc("banned")
            self._apply(slot, key, now, out)
        return out

    def adopt_directory(self, now: float) -> None:
        """Treat every directory entry as alive at incarnation 0, as after a completed join.

        Used only by the simulator to start a large run from a formed mesh.
        """
        n = len(self.directory)
        self.table.ensure(n)
        view = self.table.view()[:n]
        view[view == 0] = make_key(0, ALIVE)
        self.table.recount()
        pp = self.config.push_pull_interval_s
        if pp is not None:
            self._next_push_pull = now + self.rng.random() * push_pull_scale(pp, n)
            self._periodic_changed()

    def members(self) -> list[dict[str, object]]:
        """This node's view, for the CLI and tests."""
        out: list[dict[str, object]] = []
        d = self.directory
        for slot in np.flatnonzero(self.table.view()[: len(d)]).tolist():
            key = self.table.get(slot)
            entry: dict[str, object] = {
                "node_id": d.ids[slot],
                "name": d.names[slot],
                "addr": d.addrs[slot],
                "state": STATE_NAMES[key & 3],
                "incarnation": key >> 2,
            }
            since = self._suspect_since.get(slot)
            if since is not None:
                entry["suspect_since"] = since
            out.append(entry)
        return out

    def state_of(self, node_id: str) -> str | None:
        slot = self.directory.find(node_id)
        if slot is None:
            return None
        key = self.table.get(slot)
        return STATE_NAMES.get(key & 3)

    def suspicion_level(self, node_id: str, now: float) -> float:
        """Phi of a standing suspicion (0 when the member is not suspect)."""
        slot = self.directory.find(node_id)
        since = None if slot is None else self._suspect_since.get(slot)
        return 0.0 if since is None else self._refute_delay.phi(now - since)

    def probe_timeout(self) -> float:
        c = self.config
        return min(max(self._rtt.timeout(self._z), c.probe_timeout_min_s), c.probe_timeout_max_s)

    def indirect_timeout(self) -> float:
        """Wait for a relayed ack: two round trips, so mean 2*mu and deviation sqrt(2)*sigma."""
        c = self.config
        mean, std = self._rtt.mean_std()
        t = 2 * mean + self._z * math.sqrt(2) * std
        return min(max(t, c.probe_timeout_min_s), 2 * c.probe_timeout_max_s)

    def suspicion_timeout(self) -> float:
        c = self.config
        t = self._refute_delay.timeout(self._z)
        return min(max(t, c.suspicion_min_s), c.suspicion_max_s)

    # ------------------------------------------------------------- core interface

    def next_deadline(self) -> float | None:
        # The driver asks after every message, and most messages (old news, a ping to
        # answer) touch no timer: the answer is kept until something it depends on
        # changes (``_deadline_dirty``: timers, probes, relays, suspicions, periodics).
        if not self._deadline_dirty:
            return self._deadline
        d = self._next_periodic
        timers = self._timers
        while timers:  # drop timers whose work is already done (acked, refuted)
            when, _, kind, arg = timers[0]
            if kind == _PROBE:
                live = arg in self._probes
            elif kind == _RELAY:
                live = arg in self._relays
            elif kind == _RENOTIFY:
                live = arg in self._suspect_deadline
            else:
                live = self._suspect_deadline.get(arg) == when
            if live:
                if when < d:
                    d = when
                break
            heapq.heappop(timers)
        self._deadline = d
        self._deadline_dirty = False
        return d

    def _periodic_changed(self) -> None:
        """Recompute the earliest periodic deadline; call after changing any of them."""
        d = self._next_probe
        for t in (self._next_push_pull, self._next_reconnect, self._next_join):
            if t is not None and t < d:
                d = t
        self._next_periodic = d
        self._deadline_dirty = True

    def tick(self, now: float) -> list[Effect]:
        self._deadline_dirty = True
        out: list[Effect] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, kind, arg = heapq.heappop(timers)
            if kind == _PROBE:
                self._probe_deadline(arg, now, out)
            elif kind == _RELAY:
                self._relays.pop(arg, None)
            elif kind == _RENOTIFY:
                if self.table.get(arg) & 3 == SUSPECT and arg in self._suspect_deadline:
                    self._notify_suspect(arg, out)
            else:
                self._suspicion_deadline(arg, now, out)
        if self._next_periodic <= now:  # else none of the periodic work is due
            if self._next_probe <= now:
                self._next_probe = max(self._next_probe + self.config.probe_interval_s, now)
                self._start_probe(now, out)
            if self._next_push_pull is not None and self._next_push_pull <= now:
                n = self.table.alive + self.table.suspect
                interval = push_pull_scale(self.config.push_pull_interval_s or 0.0, n)
                self._next_push_pull = now + interval
                peers = self._random_members(1, exclude=-1)
                if peers:
                    s = peers[0]
                    d = self.directory
                    out.append(Send(d.ids[s], d.addrs[s], self._push_pull(reply=False, join=False)))
            if self._next_join is not None and self._next_join <= now:
                if not self._join_seeds:
                    self._next_join = None
                else:
                    self.stats.inc("join_retries")
                    out.extend(self.join(self._join_seeds, now))
            if self._next_reconnect is not None and self._next_reconnect <= now:
                rc = self.config.reconnect_interval_s or 0.0
                self._next_reconnect = now + rc * (0.5 + self.rng.random())
                dead = self._random_dead()
                if (
                    dead is not None
                    and self.table.get(dead) >> 2 == self.table.dtype_max_incarnation
                ):
                    dead = None  # banned (``ban``): never probed again
                if dead is not None:
                    d = self.directory
                    self.stats.inc("reconnect_attempts")
                    mine = Update(self.node_id, self.addr, self.incarnation, ALIVE, self.name)
                    key = self.table.get(dead)
                    theirs = Update(d.ids[dead], d.addrs[dead], key >> 2, DEAD, d.names[dead])
                    gossip = Gossip(self.node_id, (mine, theirs))
                    out.append(Send(d.ids[dead], d.addrs[dead], gossip))
            self._periodic_changed()
        return out

    def handle(self, msg: object, now: float) -> list[Effect]:
        out: list[Effect] = []
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            self.stats.inc("drop_unknown_message")
        else:
            handler(self, msg, now, out)
        return out

    def _on_ping(self, msg: Ping, now: float, out: list[Effect]) -> None:
        if msg.updates:
            self._on_updates(msg.updates, msg.src, now, out)
        if msg.target != self.node_id:
            self.stats.inc("drop_misdirected_ping")
            return
        ack = Ack(self.node_id, msg.seq, self._take_updates(self.config.max_piggyback))
        out.append(Send(msg.src, msg.src_addr, ack))

    def _on_gossip(self, msg: Gossip, now: float, out: list[Effect]) -> None:
        self._on_updates(msg.updates, msg.src, now, out)

    # ------------------------------------------------------------------- probing

    def _next_target(self) -> int | None:
        n = len(self.directory)
        keys = self.table.keys
        me = self.self_slot
        for _ in range(n + 1):
            if self._rr_i >= self._rr_n or self._rr_n != n:
                self._new_round(n)
            i = self._rr_i
            self._rr_i = i + 1
            slot = (self._rr_a * i + self._rr_b) % n
            if slot != me and (keys[slot] & 3) in (ALIVE, SUSPECT):
                return slot
        return None

    def _new_round(self, n: int) -> None:
        a = 1
        if n > 2:
            while True:
                a = self.rng.randrange(1, n)
                if math.gcd(a, n) == 1:
                    break
        self._rr_n, self._rr_i, self._rr_a = n, 0, a
        self._rr_b = self.rng.randrange(n) if n else 0

    def _start_probe(self, now: float, out: list[Effect]) -> None:
        slot = self._next_target()
        if slot is None:
            return
        seq = self._seq = self._seq + 1
        self._probes[seq] = _Probe(slot, now)
        self._push_timer(now + self.probe_timeout(), _PROBE, seq)
        target = self.directory.ids[slot]
        ping = Ping(
            self.node_id, self.addr, seq, target, self._take_updates(self.config.max_piggyback)
        )
        out.append(Send(target, self.directory.addrs[slot], ping))
        counters = self.stats.counters  # inlined stats.inc: once per probe
        counters["probes"] = counters.get("probes", 0) + 1

    def _probe_deadline(self, seq: int, now: float, out: list[Effect]) -> None:
        probe = self._probes.get(seq)
        if probe is None:
            return
        d = self.directory
        target = probe.slot
        if not probe.indirect:
            probe.indirect = True
            self._push_timer(now + self.indirect_timeout(), _PROBE, seq)
            helpers = self._random_members(self.config.indirect_checks, exclude=target)
            for h in helpers:
                req = PingReq(
                    self.node_id,
                    self.addr,
                    seq,
                    d.ids[target],
                    d.addrs[target],
                    self._take_updates(self.config.max_piggyback),
                )
                out.append(Send(d.ids[h], d.addrs[h], req))
            self.stats.inc("indirect_probes")
            return
        del self._probes[seq]
        key = self.table.get(target)
        if key & 3 != ALIVE:
            return
        self.stats.inc("suspicions_raised")
        inc = key >> 2
        self._apply(target, make_key(inc, SUSPECT), now, out, own_suspicion=True)
        # Tell the suspect directly so a live one refutes within one round trip; say it
        # again halfway through in case the notice or the refutation was lost.
        self._notify_suspect(target, out)
        half = (self._suspect_deadline[target] - now) / 2
        self._push_timer(now + half, _RENOTIFY, target)

    def _notify_suspect(self, slot: int, out: list[Effect]) -> None:
        d = self.directory
        key = self.table.get(slot)
        u = Update(d.ids[slot], d.addrs[slot], key >> 2, SUSPECT, d.names[slot])
        out.append(Send(d.ids[slot], d.addrs[slot], Gossip(self.node_id, (u,))))

    def _on_ack(self, msg: Ack, now: float, out: list[Effect]) -> None:
        self._deadline_dirty = True  # a probe or relay timer may be done
        if msg.updates:
            self._on_updates(msg.updates, msg.src, now, out)
        relay = self._relays.pop(msg.seq, None)
        if relay is not None:
            out.append(Send(relay.origin, relay.origin_addr, Ack(self.node_id, relay.origin_seq)))
            return
        probe = self._probes.pop(msg.seq, None)
        if probe is None:
            self.stats.inc("late_acks")
            return
        if msg.src == self.directory.ids[probe.slot]:  # direct ack, even a late one
            self._rtt.add(now - probe.sent_at)

    def _on_ping_req(self, msg: PingReq, now: float, out: list[Effect]) -> None:
        if msg.updates:
            self._on_updates(msg.updates, msg.src, now, out)
        if len(self._relays) >= self.config.relay_max:
            self.stats.inc("drop_relay_full")
            return
        seq = self._next_seq()
        self._relays[seq] = _Relay(msg.src, msg.src_addr, msg.seq)
        self._push_timer(now + self.indirect_timeout(), _RELAY, seq)
        ping = Ping(self.node_id, self.addr, seq, msg.target)
        out.append(Send(msg.target, msg.target_addr, ping))

    # -------------------------------------------------------------- suspicion

    def _suspicion_deadline(self, slot: int, now: float, out: list[Effect]) -> None:
        deadline = self._suspect_deadline.get(slot)
        if deadline is None or now + 1e-9 < deadline:
            return  # refuted, or re-suspected with a later deadline
        key = self.table.get(slot)
        if key & 3 != SUSPECT:
            return
        self.stats.inc("declared_dead")
        d = self.directory
        dead = Update(d.ids[slot], d.addrs[slot], key >> 2, DEAD, d.names[slot])
        self._apply(slot, make_key(key >> 2, DEAD), now, out, rumor=dead)
        self._broadcast(0, ID_SPACE_MAX, (dead,), out)

    # ---------------------------------------------------------- dissemination

    def _on_updates(
        self, updates: tuple[Update, ...], src: str, now: float, out: list[Effect]
    ) -> list[Update]:
        """Apply rumors; returns the ones that were news to this node."""
        # Most rumors are old news by the time they arrive: for those the loop costs one
        # dict lookup and one key comparison (the checks below would all pass them by).
        d = self.directory
        table = self.table
        keys = table.keys  # grows in place: only its length can change below
        n_keys = len(keys)
        find = d._slots.get
        me = self.self_slot
        max_inc = table.dtype_max_incarnation
        states = STATE_NAMES
        fresh: list[Update] = []
        for u in updates:
            slot = find(u.node_id)
            if slot is not None and slot != me and slot < n_keys and 0 < u.key <= keys[slot]:
                continue  # old news: well-formed, about another member, not newer
            node_id, state, inc = u.node_id, u.state, u.incarnation
            if slot == me:
                self._about_self(u, src, now, out)
                continue
            if state not in states or inc < 0:
                self.stats.inc("drop_bad_update")
                continue
            if inc > max_inc:
                self.stats.inc("drop_incarnation_overflow")
                continue
            if slot is None:
                if state != ALIVE:
                    continue  # memberlist ignores suspect/dead about unknown members
                slot = d.slot(node_id, u.addr, u.name)
            key = (inc << 2) | state
            if slot < n_keys and key <= keys[slot]:
                continue
            if state == ALIVE and u.addr:
                d.slot(node_id, u.addr, u.name)
            self._apply(slot, key, now, out, rumor=u)
            n_keys = len(keys)
            fresh.append(u)
        return fresh

    def _about_self(self, u: Update, src: str, now: float, out: list[Effect]) -> None:
        if u.state == ALIVE and u.incarnation <= self.incarnation:
            return
        if u.state != ALIVE and u.incarnation < self.incarnation:
            return
        if u.incarnation >= self.table.dtype_max_incarnation:
            self.stats.inc("drop_incarnation_overflow")
            return
        # Suspected, declared dead, or an older life of ours is still remembered: refute.
        self.incarnation = u.incarnation + 1
        self.table.set(self.self_slot, make_key(self.incarnation, ALIVE))
        self.stats.inc("refutations")
        mine = Update(self.node_id, self.addr, self.incarnation, ALIVE, self.name)
        self._rumors.put(self.self_slot, mine)
        slot = self.directory.find(src)
        if slot is not None and src != self.node_id:
            addr = self.directory.addrs[slot]
            if u.state == DEAD:
                # Someone holds us dead: a partition may have healed. Sync whole views.
                out.append(Send(src, addr, self._push_pull(reply=False, join=False)))
            else:
                out.append(Send(src, addr, Gossip(self.node_id, (mine,))))
        self._broadcast(0, ID_SPACE_MAX, (mine,), out, skip=src)

    def _apply(
        self,
        slot: int,
        key: int,
        now: float,
        out: list[Effect],
        rumor: Update | None = None,
        own_suspicion: bool = False,
    ) -> None:
        """The single place a member's state changes. ``key`` must be newer than the old.

        A suspicion this node raised itself matures when phi of refutation delays crosses
        the threshold. One heard second-hand waits ``suspicion_max_s``: normally the
        originator's dead rumor (or the suspect's refutation) arrives long before.
        """
        table = self.table
        keys = table.keys
        old = keys[slot] if slot < len(keys) else 0
        table.set(slot, key)
        rank = key & 3
        if self._suspect_since:  # usually empty; the two dicts hold the same slots
            since = self._suspect_since.pop(slot, None)
            if self._suspect_deadline.pop(slot, None) is not None:
                self._deadline_dirty = True  # its suspicion timer is done
            if since is not None and rank == ALIVE:
                self._refute_delay.add(now - since)
        if rank == SUSPECT:
            wait = self.suspicion_timeout() if own_suspicion else self.config.suspicion_max_s
            self._suspect_since[slot] = now
            self._suspect_deadline[slot] = now + wait
            self._push_timer(now + wait, _SUSPICION, slot)
        d = self.directory
        if rank != SUSPECT or own_suspicion:
            # A suspicion matters to the suspect (told directly) and is settled by the
            # suspecter; passing on second-hand ones would crowd out the news.
            if rumor is None:
                rumor = Update(d.ids[slot], d.addrs[slot], key >> 2, rank, d.names[slot])
            self._rumors.put(slot, rumor)
        else:
            self._rumors.discard(slot)
        if self.emit_events and (old & 3) != rank:
            ev = MemberEvent(d.ids[slot], d.names[slot], d.addrs[slot], STATE_NAMES[rank], key >> 2)
            out.append(Notify(ev))

    def _take_updates(self, limit: int) -> tuple[Update, ...]:
        """Rumors to piggyback, each sent at most ``retransmit_mult * ceil(log10(n + 1))``
        times in all (memberlist's retransmit limit; memoized, n rarely changes)."""
        if not self._rumors:
            return ()
        n = self.table.alive + self.table.suspect
        if n != self._retransmit_n:
            self._retransmit_n = n
            self._retransmit_cap = self.config.retransmit_mult * max(
                1, math.ceil(math.log10(n + 1))
            )
        return self._rumors.take(limit, self._retransmit_cap)

    def _on_broadcast(self, msg: Broadcast, now: float, out: list[Effect]) -> None:
        if not 0 <= msg.lo <= msg.hi <= ID_SPACE_MAX:
            self.stats.inc("drop_bad_broadcast")
            return
        self._on_updates(msg.updates, msg.src, now, out)
        if msg.lo == msg.hi:
            return  # a leaf hand-out: nothing below us to forward to
        # Forward what we have not forwarded *for this range* and still believe, even if
        # piggyback told us first: the range depends on us, not on how we heard. (Having
        # forwarded a wider range is not enough: we delegated that range onwards.)
        d = self.directory
        forwarded = self._forwarded
        todo: list[Update] = []
        for u in msg.updates:
            rid = (u.node_id, u.incarnation, u.state, msg.lo, msg.hi)
            if rid in forwarded or u.node_id == self.node_id:
                continue
            slot = d.find(u.node_id)
            if slot is None or self.table.get(slot) != make_key(u.incarnation, u.state):
                continue  # stale, or about a member we ignore
            forwarded[rid] = None
            if len(forwarded) > _FORWARDED_MAX:
                forwarded.popitem(last=False)
            todo.append(u)
        if todo:
            self._broadcast(msg.lo, msg.hi, tuple(todo), out, skip=msg.src, rank=msg.rank)
        else:
            self.stats.inc("broadcast_duplicates")

    def _broadcast(
        self,
        lo: int,
        hi: int,
        updates: tuple[Update, ...],
        out: list[Effect],
        skip: str = "",
        rank: int = 0,
    ) -> None:
        """Deliver ``updates`` to every live member with an id in [lo, hi] (except self).

        A range of at most ``2 * broadcast_fanout`` members is handed out member by
        member. A larger one is split into equal id sub-ranges — ``broadcast_fanout`` of
        them, fewer if that would leave fewer than ``broadcast_fanout`` members in
        each — and each sub-range is handed to ``broadcast_redundancy`` delegates.
        Delegates are picked deterministically from (rumor, sub-range), so every holder
        of a range picks the same ones and the cost stays ~``redundancy`` messages per
        member instead of compounding per hop. Leaves are handed out by the first
        ``broadcast_leaf_copies`` delegates; a leaf lost on the way is repaired by
        piggyback.
        """
        d = self.directory
        values, slots = d.sorted_index()
        keys = self.table.keys
        me = self.self_slot
        skip_slot = d.find(skip) if skip else None
        a0 = bisect.bisect_left(values, lo)
        b0 = bisect.bisect_right(values, hi, lo=a0)
        k = self.config.broadcast_fanout
        count = b0 - a0
        if count <= 2 * k:
            if rank >= self.config.broadcast_leaf_copies:
                return
            ids, addrs, src, emit = d.ids, d.addrs, self.node_id, out.append
            for pos in range(a0, b0):
                s = slots[pos]
                if s != me and s != skip_slot and (keys[s] & 3) == ALIVE:
                    v = values[pos]
                    emit(Send(ids[s], addrs[s], Broadcast(src, v, v, updates)))
            return
        head = updates[0]
        salt = int(head.node_id[:15], 16) ^ (head.incarnation << 2 | head.state)
        want = self.config.broadcast_redundancy
        parts = max(2, min(k, count // k))
        width = max(1, (hi - lo + 1) // parts)
        a = a0
        for part in range(parts):
            sub_lo = lo + part * width
            sub_hi = hi if part == parts - 1 else sub_lo + width - 1
            b = bisect.bisect_right(values, sub_hi, lo=a, hi=b0)
            span = b - a
            if span > 0:
                mix = (salt ^ sub_lo ^ (sub_hi << 1)) & 0xFFFFFFFFFFFFFFFF
                start = (mix * 0x9E3779B97F4A7C15 >> 32) % span
                chosen: list[int] = []
                for step in range(min(span, _DELEGATE_SCAN_MAX)):
                    s = slots[a + (start + step) % span]
                    if s != me and s != skip_slot and (keys[s] & 3) == ALIVE:
                        chosen.append(s)
                        if len(chosen) >= want:
                            break
                for r, s in enumerate(chosen):
                    msg = Broadcast(self.node_id, sub_lo, sub_hi, updates, r)
                    out.append(Send(d.ids[s], d.addrs[s], msg))
            a = b

    # --------------------------------------------------------------- push-pull

    def _push_pull(self, *, reply: bool, join: bool) -> PushPull:
        d = self.directory
        n = len(d)
        keys = self.table.view()[:n]
        slots = np.flatnonzero(keys)
        if len(slots) == n:  # we know every member the directory does: no gaps to skip
            return PushPull(
                self.node_id,
                self.addr,
                reply,
                join,
                d.id_tuple(),
                tuple(d.addrs),
                tuple(d.names),
                tuple(keys.tolist()),
            )
        sl = slots.tolist()
        pick = operator.itemgetter(*sl) if len(sl) > 1 else (lambda seq: (seq[sl[0]],))
        return PushPull(
            self.node_id,
            self.addr,
            reply,
            join,
            pick(d.ids),
            pick(d.addrs),
            pick(d.names),
            tuple(keys[slots].tolist()),
        )

    def _on_push_pull(self, msg: PushPull, now: float, out: list[Effect]) -> None:
        n = len(msg.ids)
        if not (len(msg.addrs) == len(msg.names) == len(msg.keys) == n):
            self.stats.inc("drop_bad_push_pull")
            return
        d = self.directory
        max_key = make_key(self.table.dtype_max_incarnation, DEAD)
        incoming = np.fromiter(msg.keys, dtype=np.uint64, count=n)
        if n and (int(incoming.max()) > max_key or bool(np.any((incoming & 3) == 0))):
            self.stats.inc("drop_bad_push_pull")
            return
        if msg.ids == d.id_tuple():  # the sender lists our whole directory in slot order
            slots = np.arange(n, dtype=np.int64)
        else:
            found = d.find_many(msg.ids)
            if None in found:
                found = [d.slot(i) if s is None else s for i, s in zip(msg.ids, found, strict=True)]
            slots = np.array(found, dtype=np.int64)
        self.table.ensure(len(d))
        local = self.table.view()[slots].astype(np.uint64)
        newer = incoming > local
        newer &= ~((local == 0) & ((incoming & 3) != ALIVE))
        for i in np.flatnonzero(newer).tolist():
            slot = int(slots[i])
            key = int(incoming[i])
            node_id = msg.ids[i]
            if slot == self.self_slot:
                self._about_self(
                    Update(node_id, msg.addrs[i], key >> 2, key & 3), msg.src, now, out
                )
                continue
            if key & 3 == ALIVE:
                d.slot(node_id, msg.addrs[i], msg.names[i])
            if msg.join and not msg.reply and node_id == msg.src:
                # A member joins through us: tell everyone.
                joiner = Update(node_id, msg.addrs[i], key >> 2, ALIVE, msg.names[i])
                self._apply(slot, key, now, out, rumor=joiner)
                self._broadcast(0, ID_SPACE_MAX, (joiner,), out, skip=msg.src)
                continue
            self._apply(slot, key, now, out)
            if local[i] != 0:
                self._rumors.discard(slot)  # a repaired detail: no need to gossip it
        # A member new to us may be new to others who joined through us meanwhile: the
        # rumors queued above carry it on. And once a seed answers, we announce ourselves
        # to everyone it told us about.
        if msg.reply and msg.join and self._join_seeds:
            self._next_join = None  # a seed answered: we are in
            self._join_seeds = []
            self._periodic_changed()
            mine = Update(self.node_id, self.addr, self.incarnation, ALIVE, self.name)
            self._broadcast(0, ID_SPACE_MAX, (mine,), out, skip=msg.src)
        if not msg.reply:
            out.append(Send(msg.src, msg.src_addr, self._push_pull(reply=True, join=msg.join)))

    # ----------------------------------------------------------------- helpers

    def _random_members(self, k: int, exclude: int) -> list[int]:
        """Up to ``k`` distinct random alive members, never self or ``exclude``."""
        n = len(self.directory)
        keys = self.table.keys
        others = (
            self.table.alive
            - 1
            - (1 if exclude >= 0 and self.table.get(exclude) & 3 == ALIVE else 0)
        )
        want = min(k, max(others, 0))
        out: list[int] = []
        if want <= 0:
            return out
        rng = self.rng
        tries = 0
        while len(out) < want and tries < 4 * want + 8:
            tries += 1
            s = rng.randrange(n)
            if s != self.self_slot and s != exclude and (keys[s] & 3) == ALIVE and s not in out:
                out.append(s)
        if len(out) < want:
            cand = np.flatnonzero((self.table.view()[:n] & 3) == ALIVE).tolist()
            cand = [s for s in cand if s != self.self_slot and s != exclude and s not in out]
            out.extend(rng.sample(cand, min(want - len(out), len(cand))))
        return out

    def _random_dead(self) -> int | None:
        if self.table.dead == 0 or (
            self.table.dead == 1 and self.table.get(self.self_slot) & 3 == DEAD
        ):
            return None
        n = len(self.directory)
        keys = self.table.keys
        for _ in range(8):
            s = self.rng.randrange(n)
            if s != self.self_slot and keys[s] & 3 == DEAD:
                return s
        cand = [s for s in self.table.dead_slots if s != self.self_slot]
        return self.rng.choice(cand) if cand else None

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _push_timer(self, when: float, kind: int, arg: int) -> None:
        self._deadline_dirty = True
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, kind, arg))


_Handler = Callable[[Membership, Any, float, list[Effect]], None]
_HANDLERS: dict[type, _Handler] = {
    Ping: Membership._on_ping,
    Ack: Membership._on_ack,
    PingReq: Membership._on_ping_req,
    Gossip: Membership._on_gossip,
    Broadcast: Membership._on_broadcast,
    PushPull: Membership._on_push_pull,
}
