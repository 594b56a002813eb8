"""Tender → bid → award (DESIGN §6): the sans-I/O placement negotiation of one node.

Every node runs one ``Scheduler``. It plays two parts:

* **Tenderer** (the custodian of a workload, for each unplaced replica):
  ``tender(pod, request, now)`` samples up to ``d`` nodes that its view says could
  host the replica (power-of-d choices, as in Sparrow: the cost of a tender does not
  grow with the mesh) and sends them a ``Tender``. The bid window closes when every
  asked node has answered or after ``window_s``. The bids are scored by the placement
  policy (``rules`` or ``rl``, ``hyperion/policy``); ties break on a hash of
  (tender id, node id). The best bidder gets an ``Award``; a decline or a silence
  (timeout adaptive to that bidder's measured RTT) moves the award to the next best.
  Spreading counts the workload's replicas already placed (``placed``, from the
  caller) and those this tenderer placed or is awarding since the tender opened, so
  replicas tendered together do not all land where the first one did.
  No acceptable bid: the tender is retried with a fresh, larger sample, then given up
  with ``Unplaced`` carrying kube-scheduler's message ("0/8 nodes are available: 5
  insufficient cpu, 3 not in geographies [EU].") and whether more capacity could ever
  help (``resolvable``). A replica that no node in the view could ever host is given up
  at once, without asking anyone.
* **Bidder**: answers a ``Tender`` with a ``Bid`` carrying its own features (a policy
  ``Candidate``: price, spot, region, RTTs to user geographies, free resources, load,
  versions) or a declining ``Bid`` naming the failed filter. On ``Award`` it re-checks
  its free capacity and *reserves* atomically (one core, one thread: check and reserve
  are one step), so a node never overcommits however many awards race; it answers
  ``AwardReply`` and notifies ``Reserved``. A reservation is *pending* until the driver
  ``confirm``s it (the replica is bound to this node) and lapses after
  ``reserve_ttl_s`` otherwise; ``release`` frees it when the replica stops.

At-least-once, duplicate-tolerant: an award whose reply was lost is re-awarded to the
next bidder, and the late acceptance that may follow gets a ``Release``; a lost release
lapses with the reservation's TTL; the custodian retires any double placement that
remains. Messages carry ``src`` (the envelope's signer, checked by the driver).

Pure: no I/O, no clocks (``now`` is passed in), randomness from the injected RNG.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from hyperion.core import Effect, Notify, Send
from hyperion.policy.model import Candidate, Code, Decision, NoFit, Policy, Request
from hyperion.policy.plugins import check, explain


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    sample: int = 8  # d: nodes asked per tender (all eligible ones when fewer)
    window_s: float = 0.5  # longest a bid window stays open
    quorum: float = 0.75  # a window of 8+ asked closes once this share answered (1+ bid):
    quorum_min_asked: int = 8  # the farthest bidders do not set every tender's latency
    max_attempts: int = 3  # tenders per replica before Unplaced (sample doubles each time)
    award_timeout_min_s: float = 0.1
    award_timeout_rtts: float = 4.0  # award timeout = this many of the bidder's RTTs
    reserve_ttl_s: float = 10.0  # a reservation not confirmed by then lapses
    explain_limit: int = 1_000  # snapshots examined to word an impossible replica
    sample_tries: int = 8  # random draws per wanted bidder before giving up
    sibling_memory_s: float = 30.0  # placements remembered for spreading later siblings
    clock_skew_s: float = 1.0  # a tender is answered until its deadline plus this


# ------------------------------------------------------------------ messages


@dataclass(frozen=True, slots=True)
class Tender:
    tender_id: str
    src: str
    pod: str  # "namespace/name": what an award binds
    request: Request
    deadline: float = math.inf  # bid by then, on the mesh clock (``clock_offset``)


@dataclass(frozen=True, slots=True)
class Bid:
    """A bid (``candidate`` set) or a decline (``reason``; ``resolvable`` if freed
    capacity could change the answer)."""

    tender_id: str
    src: str
    candidate: Candidate | None
    reason: str = ""
    resolvable: bool = True


@dataclass(frozen=True, slots=True)
class Award:
    tender_id: str
    src: str
    pod: str
    request: Request


@dataclass(frozen=True, slots=True)
class AwardReply:
    tender_id: str
    src: str
    pod: str
    accepted: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Release:
    """The tenderer does not need a reservation it got late: free it if unconfirmed."""

    tender_id: str
    src: str
    pod: str


MESSAGE_TYPES = (Tender, Bid, Award, AwardReply, Release)


# -------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Placed:
    """Tenderer: ``node_id`` accepted the award for ``pod``."""

    pod: str
    tender_id: str
    node_id: str
    candidate: Candidate
    decision: Decision
    elapsed_s: float  # tender to acceptance
    bids: int


@dataclass(frozen=True, slots=True)
class Unplaced:
    """Tenderer: no node took ``pod``; ``message`` is the Unschedulable condition."""

    pod: str
    tender_id: str
    message: str
    resolvable: bool


@dataclass(frozen=True, slots=True)
class Reserved:
    """Bidder: this node reserved capacity for ``pod`` (awarded by ``origin``)."""

    pod: str
    tender_id: str
    origin: str
    request: Request


@dataclass(frozen=True, slots=True)
class Lapsed:
    """Bidder: a reservation was released or expired before it was confirmed."""

    pod: str


# --------------------------------------------------------------------- state


@dataclass(slots=True)
class _Hold:
    cpu: int
    mem: int
    gpus: int
    expires: float | None  # None once confirmed


@dataclass(slots=True)
class _Open:
    """A tender this node runs."""

    tender_id: str
    pod: str
    request: Request
    started: float
    attempt: int
    placed: tuple[tuple[str, str, str], ...]  # (node, zone, region) of sibling replicas
    asked: dict[str, float] = field(default_factory=dict)  # node -> when asked
    bids: dict[str, Candidate] = field(default_factory=dict)
    rtt: dict[str, float] = field(default_factory=dict)
    declines: dict[str, tuple[str, bool]] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # declined for good: not asked again
    deadline: float = 0.0
    awarding: str | None = None  # node holding the award, awaiting its reply
    decision: Decision | None = None
    n_bids: int = 0


class NodeView:
    """The peers a tenderer may ask: node id -> (address, advertised snapshot), with
    O(1) uniform sampling. Fed from the node directory (records) and membership; the
    simulator lets all its nodes share one (they would all hold the same directory)."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[str, Candidate]] = {}
        self.ids: list[str] = []
        self.snaps: list[Candidate] = []  # snaps[k] is known[ids[k]][1], for the sampler
        self._pos: dict[str, int] = {}

    def observe(self, node_id: str, addr: str, snapshot: Candidate) -> None:
        k = self._pos.get(node_id)
        if k is None:
            self._pos[node_id] = len(self.ids)
            self.ids.append(node_id)
            self.snaps.append(snapshot)
        else:
            self.snaps[k] = snapshot
        self.known[node_id] = (addr, snapshot)

    def forget(self, node_id: str) -> None:
        i = self._pos.pop(node_id, None)
        if i is None:
            return
        del self.known[node_id]
        last = self.ids.pop()
        last_snap = self.snaps.pop()
        if last != node_id:
            self.ids[i] = last
            self.snaps[i] = last_snap
            self._pos[last] = i

    def __len__(self) -> int:
        return len(self.ids)


class Scheduler:
    """One node's tenderer and bidder (see the module docstring)."""

    # A simulated mesh holds 10,000 of these and touches one per message: slots keep
    # each small and its attributes one load away.
    __slots__ = (
        "node_id",
        "policy",
        "config",
        "_rng",
        "_self",
        "_snap",
        "_holds",
        "_pending",
        "_used",
        "view",
        "_known",
        "_ids",
        "_open",
        "_by_pod",
        "_siblings",
        "_offset",
        "_seq",
        "_local",
        "counters",
    )

    def __init__(
        self,
        node_id: str,
        *,
        policy: Policy,
        rng: random.Random,
        config: SchedulerConfig | None = None,
        view: NodeView | None = None,
        clock_offset: float = 0.0,
    ) -> None:
        """``clock_offset``: ``now + clock_offset`` is the mesh clock (wall time on a
        real node, where ``now`` is monotonic; 0 in the simulator), on which tender
        deadlines are compared across nodes."""
        self.node_id = node_id
        self.policy = policy
        self.config = config or SchedulerConfig()
        self._rng = rng
        self._self: Candidate | None = None  # own snapshot, free = capacity
        self._snap: Candidate | None = None  # snapshot(), until a reservation changes
        self._holds: dict[str, _Hold] = {}
        self._pending: dict[str, float] = {}  # pod -> expiry, of the unconfirmed holds
        self._used = [0, 0, 0]  # cpu, memory, gpus held
        self.view = view if view is not None else NodeView()
        self._known = self.view.known  # node -> (addr, snapshot)
        self._ids = self.view.ids  # for O(1) sampling
        self._open: dict[str, _Open] = {}  # tender id -> state
        self._by_pod: dict[str, str] = {}  # pod -> its open tender id
        # workload id -> pod -> (when, node, zone, region) of the replicas placed here
        self._siblings: dict[str, dict[str, tuple[float, str, str, str]]] = {}
        self._offset = clock_offset
        self._seq = 0
        self._local: list[object] = []  # messages to ourselves, delivered in-call
        self.counters: dict[str, int] = {}

    # ----------------------------------------------------------- node facts

    def set_self(self, snapshot: Candidate) -> None:
        """This node's features and capacity (its ``*_free`` fields are ignored)."""
        self._self = snapshot
        self._snap = None

    def observe(self, node_id: str, addr: str, snapshot: Candidate) -> None:
        """What a peer advertises (from its node record); used only to pick bidders."""
        if node_id != self.node_id:
            self.view.observe(node_id, addr, snapshot)

    def forget(self, node_id: str) -> None:
        """A peer left or died: it is no longer asked."""
        self.view.forget(node_id)

    # ----------------------------------------------------------- capacity

    def free(self) -> tuple[int, int, int]:
        """Unreserved (cpu millis, memory bytes, gpus)."""
        s = self._self
        if s is None:
            return (0, 0, 0)
        cpu, mem, gpus = self._used
        return (s.cpu_millis - cpu, s.memory_bytes - mem, s.gpus - gpus)

    def holds(self) -> dict[str, tuple[int, int, int, bool]]:
        """pod -> (cpu, memory, gpus, confirmed)."""
        return {p: (h.cpu, h.mem, h.gpus, h.expires is None) for p, h in self._holds.items()}

    def snapshot(self) -> Candidate | None:
        """This node as it would bid now (cached until a reservation changes)."""
        snap = self._snap
        if snap is not None:
            return snap
        s = self._self
        if s is None:
            return None
        cpu, mem, gpus = self.free()
        loads = [
            1 - f / t for f, t in ((cpu, s.cpu_millis), (mem, s.memory_bytes), (gpus, s.gpus)) if t
        ]
        load = min(1.0, max(0.0, max(loads, default=0.0)))
        if (cpu, mem, gpus, load) == (s.cpu_millis_free, s.memory_bytes_free, s.gpus_free, s.load):
            snap = s  # nothing held, and the given snapshot says so already: no copy
        else:
            snap = s.with_free(cpu, mem, gpus, load)
        self._snap = snap
        return snap

    def hold(self, pod: str, request: Request) -> bool:
        """Reserve for ``pod`` and confirm at once (a replica found running here after a
        restart, or bound here by the custodian): True if it fits or is already held."""
        if pod in self._holds:
            self._holds[pod].expires = None
            self._pending.pop(pod, None)
            return True
        if not self._fits(request):
            return False
        self._reserve(pod, request, None)
        return True

    def confirm(self, pod: str) -> bool:
        """The replica is bound to this node: its reservation no longer lapses."""
        h = self._holds.get(pod)
        if h is None:
            return False
        h.expires = None
        self._pending.pop(pod, None)
        return True

    def release(self, pod: str) -> bool:
        """The replica stopped (or was never bound): free its reservation."""
        h = self._holds.pop(pod, None)
        if h is None:
            return False
        self._pending.pop(pod, None)
        self._used[0] -= h.cpu
        self._used[1] -= h.mem
        self._used[2] -= h.gpus
        self._snap = None
        return True

    def _fits(self, req: Request) -> bool:
        cpu, mem, gpus = self.free()
        return req.cpu_millis <= cpu and req.memory_bytes <= mem and req.gpus <= gpus

    def _reserve(self, pod: str, req: Request, expires: float | None) -> None:
        self._holds[pod] = _Hold(req.cpu_millis, req.memory_bytes, req.gpus, expires)
        if expires is not None:
            self._pending[pod] = expires
        self._used[0] += req.cpu_millis
        self._used[1] += req.memory_bytes
        self._used[2] += req.gpus
        self._snap = None

    # ----------------------------------------------------------- tendering

    def tender(
        self,
        pod: str,
        request: Request,
        now: float,
        *,
        placed: Iterable[tuple[str, str, str]] = (),
    ) -> tuple[str, list[Effect]]:
        """Start placing one replica; ``placed`` lists (node, zone, region) of the
        workload's other replicas, for spreading. Replaces an open tender for ``pod``."""
        self.cancel(pod)
        self._seq += 1
        tid = f"{self.node_id[:12]}-{self._seq}"
        t = _Open(tid, pod, request, now, 0, tuple(placed))
        self._open[tid] = t
        self._by_pod[pod] = tid
        self._inc("tenders")
        out: list[Effect] = []
        self._ask(t, now, out)
        return tid, self._drain(now, out)

    def cancel(self, pod: str) -> bool:
        """Stop placing ``pod`` (deleted, or placed by someone else)."""
        tid = self._by_pod.pop(pod, None)
        if tid is None:
            return False
        self._open.pop(tid, None)
        return True

    def tendering(self, pod: str) -> bool:
        return pod in self._by_pod

    def _candidates(self) -> dict[str, tuple[str, Candidate]]:
        view = dict(self._known)
        snap = self.snapshot()
        if snap is not None:
            view[self.node_id] = ("", snap)
        return view

    def _ask(self, t: _Open, now: float, out: list[Effect]) -> None:
        """Sample bidders for attempt ``t.attempt`` and send them the tender."""
        c = self.config
        want = c.sample << t.attempt
        chosen = self._sample(t, want)
        if not chosen:
            self._give_up_unasked(t, now, out)
            return
        t.asked = {}
        t.bids = {}
        t.declines = {}
        t.deadline = now + c.window_s
        msg = Tender(t.tender_id, self.node_id, t.pod, t.request, t.deadline + self._offset)
        for nid in chosen:
            t.asked[nid] = now
            out.append(self._send(nid, msg))

    def _sample(self, t: _Open, want: int) -> list[str]:
        """Up to ``want`` nodes whose snapshot passes the hard constraints, preferring
        ones advertising room; all of them when the view is small."""
        req = t.request
        view_n = len(self._ids) + (self._self is not None)
        if view_n <= want * 2:
            pool = [n for n in self._candidates() if n not in t.refused]
            self._rng.shuffle(pool)
            graded = [(g, n) for n in pool if (g := self._grade(req, n))]
            graded.sort(key=lambda gn: -gn[0])  # stable: advertised room first
            return [n for _, n in graded[:want]]
        fits: dict[str, None] = {}
        maybe: dict[str, None] = {}
        for nid in [self.node_id] if self._self is not None else []:
            if nid not in t.refused and (g := self._grade(req, nid)):
                (fits if g == 2 else maybe)[nid] = None
        ids = self._ids
        n = len(ids)
        tries = want * self.config.sample_tries if n else 0
        snaps = self.view.snaps
        refused = t.refused
        me = self.node_id
        bits = n.bit_length()
        getrandbits = self._rng.getrandbits
        while len(fits) < want and tries > 0:
            tries -= 1
            k = getrandbits(bits)  # a uniform index below n by rejection, as randrange(n)
            while k >= n:  # draws it (the same bits), without its argument checks
                k = getrandbits(bits)
            nid = ids[k]
            if nid in fits or nid in maybe or nid in refused:
                continue
            # _grade, inline: this loop is most of a tender's cost
            snap = snaps[k] if nid != me else self.snapshot()
            assert snap is not None
            code = check(req, snap).code
            if code is _OK:
                fits[nid] = None
            elif code is Code.UNSCHEDULABLE:
                maybe[nid] = None
        picked = list(fits)
        picked.extend(list(maybe)[: want - len(picked)])
        return picked

    def _grade(self, req: Request, nid: str) -> int:
        """2: the snapshot fits; 1: it could once capacity frees (advertised free
        capacity may be stale, so it is still worth asking); 0: never."""
        snap = self._known[nid][1] if nid != self.node_id else self.snapshot()
        assert snap is not None
        code = check(req, snap).code
        return 2 if code is _OK else 1 if code is Code.UNSCHEDULABLE else 0

    def _give_up_unasked(self, t: _Open, now: float, out: list[Effect]) -> None:
        """No node in the view can host the replica: say why, without asking anyone."""
        view = list(self._candidates().values())
        if len(view) > self.config.explain_limit:
            view = self._rng.sample(view, self.config.explain_limit)
        if t.attempt == 0 or not t.declines:
            # Counted by each node's first failing filter, as kube-scheduler words it.
            nofit = explain(t.request, [s for _, s in view])
            if not view:
                nofit = NoFit("0/0 nodes are available: no nodes known.", True)
            self._finish_unplaced(t, nofit.message, nofit.resolvable, out)
        else:
            self._finish_from_declines(t, out)

    def _finish_unplaced(self, t: _Open, message: str, resolvable: bool, out: list[Effect]) -> None:
        self._close(t)
        self._inc("unplaced")
        out.append(Notify(Unplaced(t.pod, t.tender_id, message, resolvable)))

    def _finish_from_declines(self, t: _Open, out: list[Effect]) -> None:
        counts: dict[str, int] = {}
        resolvable = False
        for reason, res in t.declines.values():
            counts[reason] = counts.get(reason, 0) + 1
            resolvable = resolvable or res
        silent = len(t.asked) - len(t.declines) - len(t.bids)
        if silent > 0:
            counts["did not answer"] = silent
            resolvable = True
        parts = ", ".join(
            f"{n} {r}" for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        msg = f"0/{len(t.asked)} nodes are available" + (f": {parts}." if parts else ".")
        self._finish_unplaced(t, msg, resolvable, out)

    def _close(self, t: _Open) -> None:
        self._open.pop(t.tender_id, None)
        if self._by_pod.get(t.pod) == t.tender_id:
            del self._by_pod[t.pod]

    def _on_bid(self, m: Bid, now: float, out: list[Effect]) -> None:
        t = self._open.get(m.tender_id)
        if t is None or m.src not in t.asked or t.awarding is not None:
            self._inc("bids_late")
            return
        if m.candidate is not None:
            if m.candidate.node_id != m.src:
                self._inc("bids_forged")
                return
            t.bids[m.src] = m.candidate
            t.rtt[m.src] = now - t.asked[m.src]
            t.n_bids += 1
        else:
            t.declines[m.src] = (m.reason, m.resolvable)
            if not m.resolvable:
                t.refused.add(m.src)
        answered = len(t.bids) + len(t.declines)
        asked = len(t.asked)
        c = self.config
        if answered >= asked or (
            t.bids and asked >= c.quorum_min_asked and answered >= c.quorum * asked
        ):
            self._award_next(t, now, out)

    def _award_next(self, t: _Open, now: float, out: list[Effect]) -> None:
        """Award to the best remaining bid, or retry / give up when none is left."""
        t.awarding = None
        if not t.bids:
            if t.attempt + 1 < self.config.max_attempts:
                t.attempt += 1
                self._inc("retenders")
                self._ask(t, now, out)
                return
            self._finish_from_declines(t, out)
            return
        placed = self._placed_for(t)
        cands = [_spread(placed, c) for c in t.bids.values()] if placed else list(t.bids.values())
        outcome = self.policy.choose(t.request, cands, t.tender_id)
        if isinstance(outcome, NoFit):
            t.bids.clear()
            self._award_next(t, now, out)
            return
        winner = cands[outcome.index]
        t.awarding = winner.node_id
        rtt = t.rtt.get(winner.node_id, 0.0)
        c = self.config
        t.deadline = now + max(c.award_timeout_min_s, c.award_timeout_rtts * rtt)
        t.decision = outcome
        out.append(self._send(winner.node_id, Award(t.tender_id, self.node_id, t.pod, t.request)))

    def _placed_for(self, t: _Open) -> tuple[tuple[str, str, str], ...]:
        """Where ``t``'s siblings are: what the caller said at the tender, plus the
        replicas this node placed since (not yet in the caller's view) and those it is
        awarding now."""
        wid = t.request.workload_id
        recent = self._siblings.get(wid)
        extra = [
            (n, z, r)
            for pod, (at, n, z, r) in (recent or {}).items()
            if pod != t.pod and at >= t.started
        ]
        if len(self._by_pod) > 1:
            for o in self._open.values():
                if o is t or o.awarding is None or o.request.workload_id != wid:
                    continue
                c = o.bids.get(o.awarding)
                if c is not None:
                    extra.append((c.node_id, c.zone, c.cloud_region))
        return t.placed + tuple(extra) if extra else t.placed

    def _remember(self, t: _Open, c: Candidate, now: float) -> None:
        wid = t.request.workload_id
        recent = self._siblings.setdefault(wid, {})
        recent[t.pod] = (now, c.node_id, c.zone, c.cloud_region)
        horizon = now - self.config.sibling_memory_s
        for pod in [p for p, v in recent.items() if v[0] < horizon]:
            del recent[pod]
        if len(self._siblings) > 1:  # bounded: workloads with nothing recent are dropped
            for w in [
                w
                for w, r in self._siblings.items()
                if w != wid and all(v[0] < horizon for v in r.values())
            ]:
                del self._siblings[w]

    def _on_reply(self, m: AwardReply, now: float, out: list[Effect]) -> None:
        t = self._open.get(m.tender_id)
        if t is None or t.awarding != m.src:
            if m.accepted:  # a reply we stopped waiting for: free what it holds
                self._inc("awards_released_late")
                out.append(self._send(m.src, Release(m.tender_id, self.node_id, m.pod)))
            return
        cand = t.bids.pop(m.src)
        if m.accepted:
            self._close(t)
            self._inc("placed")
            self._remember(t, cand, now)
            decision = t.decision or Decision(m.src, 0, 0.0, self.policy.name)
            out.append(
                Notify(Placed(t.pod, t.tender_id, m.src, cand, decision, now - t.started, t.n_bids))
            )
            return
        self._inc("awards_declined")
        t.declines[m.src] = (m.reason or "declined the award", True)
        self._award_next(t, now, out)

    # ------------------------------------------------------------- bidding

    def _on_tender(self, m: Tender, now: float, out: list[Effect]) -> None:
        if now + self._offset > m.deadline + self.config.clock_skew_s:
            self._inc("tenders_expired")  # its window has closed: a bid would be wasted
            return
        snap = self.snapshot()
        if snap is None:
            out.append(self._send(m.src, Bid(m.tender_id, self.node_id, None, "not bidding")))
            return
        if m.pod in self._holds:  # already ours: bid as if its share were free
            h = self._holds[m.pod]
            snap = dataclasses.replace(
                snap,
                cpu_millis_free=snap.cpu_millis_free + h.cpu,
                memory_bytes_free=snap.memory_bytes_free + h.mem,
                gpus_free=snap.gpus_free + h.gpus,
            )
        st = check(m.request, snap)
        if st.code is _OK:
            self._inc("bids")
            out.append(self._send(m.src, Bid(m.tender_id, self.node_id, snap)))
        else:
            self._inc("bids_declined")
            resolvable = st.code is Code.UNSCHEDULABLE
            out.append(
                self._send(m.src, Bid(m.tender_id, self.node_id, None, st.reason, resolvable))
            )

    def _on_award(self, m: Award, now: float, out: list[Effect]) -> None:
        if m.pod in self._holds:
            self._inc("awards_duplicate")
            out.append(self._send(m.src, AwardReply(m.tender_id, self.node_id, m.pod, True)))
            return
        snap = self.snapshot()
        st = None if snap is None else check(m.request, snap)
        if st is None or st.code is not _OK:
            self._inc("awards_refused")
            reason = "not bidding" if st is None else st.reason
            out.append(
                self._send(m.src, AwardReply(m.tender_id, self.node_id, m.pod, False, reason))
            )
            return
        self._reserve(m.pod, m.request, now + self.config.reserve_ttl_s)
        self._inc("reserved")
        out.append(Notify(Reserved(m.pod, m.tender_id, m.src, m.request)))
        out.append(self._send(m.src, AwardReply(m.tender_id, self.node_id, m.pod, True)))

    def _on_release(self, m: Release, out: list[Effect]) -> None:
        h = self._holds.get(m.pod)
        if h is not None and h.expires is not None:
            self.release(m.pod)
            self._inc("released")
            out.append(Notify(Lapsed(m.pod)))

    # ---------------------------------------------------------- core API

    def handle(self, msg: object, now: float) -> list[Effect]:
        out: list[Effect] = []
        self._dispatch(msg, now, out)
        return self._drain(now, out) if self._local else out

    def _dispatch(self, msg: object, now: float, out: list[Effect]) -> None:
        if isinstance(msg, Bid):
            self._on_bid(msg, now, out)
        elif isinstance(msg, Tender):
            self._on_tender(msg, now, out)
        elif isinstance(msg, Award):
            self._on_award(msg, now, out)
        elif isinstance(msg, AwardReply):
            self._on_reply(msg, now, out)
        elif isinstance(msg, Release):
            self._on_release(msg, out)
        else:
            self._inc("drop_unknown_message")

    def _send(self, dest: str, msg: object) -> Effect:
        if dest == self.node_id:
            self._local.append(msg)
            return _NOTHING
        entry = self._known.get(dest)
        return Send(dest, "" if entry is None else entry[0], msg)

    def _drain(self, now: float, out: list[Effect]) -> list[Effect]:
        """Deliver messages addressed to ourselves, then drop the placeholders."""
        if not self._local:  # nothing sent to ourselves, so no placeholder in ``out``
            return out
        while self._local:
            msg = self._local.pop(0)
            self._dispatch(msg, now, out)
        return [e for e in out if e is not _NOTHING]

    def next_deadline(self) -> float | None:
        # Called after every event the node handles: one pass, no list built.
        if not self._open and not self._pending:
            return None
        d: float | None = None
        for t in self._open.values():
            if d is None or t.deadline < d:
                d = t.deadline
        for e in self._pending.values():
            if d is None or e < d:
                d = e
        return d

    def tick(self, now: float) -> list[Effect]:
        if not self._open and not self._pending:  # the idle tick of a confirmed hold
            return []
        out: list[Effect] = []
        for t in [t for t in self._open.values() if t.deadline <= now]:
            if t.tender_id not in self._open:
                continue
            if t.awarding is not None:
                self._inc("awards_timed_out")
                t.bids.pop(t.awarding, None)
                t.declines[t.awarding] = ("did not answer the award", True)
            else:
                self._inc("windows_timed_out")
            self._award_next(t, now, out)
        for pod in [p for p, e in self._pending.items() if e <= now]:
            self.release(pod)
            self._inc("reservations_lapsed")
            out.append(Notify(Lapsed(pod)))
        return self._drain(now, out)

    def stats(self) -> dict[str, int]:
        out = dict(self.counters)
        out["open_tenders"] = len(self._open)
        out["holds"] = len(self._holds)
        return out

    def _inc(self, name: str) -> None:
        counters = self.counters
        counters[name] = counters.get(name, 0) + 1


_NOTHING = Notify(None)
_OK = Code.SUCCESS


def _spread(placed: tuple[tuple[str, str, str], ...], c: Candidate) -> Candidate:
    """``c`` with the workload's replicas counted on its node, zone and region."""
    on_node = sum(1 for n, _, _ in placed if n == c.node_id)
    in_zone = sum(1 for _, z, _ in placed if z and z == c.zone)
    in_region = sum(1 for _, _, r in placed if r == c.cloud_region)
    return dataclasses.replace(
        c, replicas_on_node=on_node, replicas_in_zone=in_zone, replicas_in_region=in_region
    )
