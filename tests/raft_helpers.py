"""An in-memory network for Raft groups, with the safety checkers (Raft §5.2-§5.4).

One group, one virtual clock, one seeded RNG. Messages take a random delay (so they
reorder), and may be lost or duplicated; partitions are checked on delivery, so a cut
also catches messages already in flight. A crash drops the member's memory; a restart
builds a new ``RaftNode`` from what its ``MemoryStorage`` made durable. The application
at each member is a dict ``index -> data``; its snapshot is that dict as JSON.

The checkers run on every effect:

* election safety: at most one leader per term;
* leader completeness: a new leader's log holds every entry known to be committed;
* state machine safety: every member applies the same data at the same index, in
  increasing index order;
* linearizable reads: a read returns state that includes every write acknowledged
  before it was issued;

and ``check_log_matching`` compares every pair of logs (§5.3).
"""

from __future__ import annotations

import heapq
import json
import random
from dataclasses import dataclass, field

from hyperion.core import Effect, Notify, Send
from hyperion.workplane.raft import (
    Accepted,
    ChangeOp,
    Committed,
    DurableState,
    LeaderChanged,
    MemoryStorage,
    Persist,
    ProposeResult,
    RaftConfig,
    RaftNode,
    ReadAborted,
    ReadId,
    ReadReady,
    Role,
    SnapshotRestored,
)

GROUP = "g"


def encode_app(app: dict[int, bytes]) -> bytes:
    return json.dumps({str(k): v.hex() for k, v in sorted(app.items())}).encode()


def decode_app(data: bytes) -> dict[int, bytes]:
    return {int(k): bytes.fromhex(v) for k, v in json.loads(data or b"{}").items()}


@dataclass
class _PendingRead:
    node: str
    acked_index: int  # highest index acknowledged to a client when the read was issued
    result: int | None = None  # the read index served
    aborted: bool = False


@dataclass
class Cluster:
    ids: list[str]
    seed: int
    loss: float = 0.0
    dup: float = 0.0
    delay_s: tuple[float, float] = (0.001, 0.02)
    bounce_p: float = 0.0  # after each event, crash and restart a random member
    cfg: RaftConfig = field(default_factory=RaftConfig)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.now = 0.0
        self.storage: dict[str, MemoryStorage] = {}
        self.nodes: dict[str, RaftNode | None] = {}
        self.apps: dict[str, dict[int, bytes]] = {}
        self.app_last: dict[str, int] = {}
        self.side: dict[str, int] = {}
        self.queue: list[tuple[float, int, str, object]] = []
        self.seq = 0
        self.committed: dict[int, tuple[int, bytes]] = {}  # index -> (term, data), any member
        self.leaders: dict[int, str] = {}  # term -> leader
        self.proposed: dict[tuple[int, int], tuple[str, bytes]] = {}  # (index, term) -> ...
        self.acked: dict[int, bytes] = {}  # acknowledged to the client by its leader
        self.reads: dict[tuple[str, int], _PendingRead] = {}
        self.events = 0
        for i in self.ids:
            self.add(i, DurableState.bootstrap(self.ids))

    # ------------------------------------------------------------ membership

    def add(self, i: str, state: DurableState | None = None) -> None:
        """A member process (a fresh one joins with an empty configuration)."""
        state = state or DurableState.bootstrap(())
        self.storage[i] = MemoryStorage(state)
        self.side[i] = 0
        self._start(i)

    def _start(self, i: str) -> None:
        st = self.storage[i].state()
        rng = random.Random(f"{self.seed}/{i}/{self.now}")
        self.nodes[i] = RaftNode(GROUP, i, st, rng, self.now, self.cfg)
        self.apps[i] = decode_app(st.snapshot.data)
        self.app_last[i] = st.snapshot.index

    def crash(self, i: str) -> None:
        self.nodes[i] = None
        for r in self.reads.values():
            if r.node == i and r.result is None:
                r.aborted = True  # its client sees the connection drop

    def bounce(self, i: str) -> None:
        self.crash(i)
        self.restart(i)

    def restart(self, i: str) -> None:
        if self.nodes[i] is None:
            self._start(i)

    def live(self) -> list[str]:
        return [i for i, n in self.nodes.items() if n is not None]

    def node(self, i: str) -> RaftNode:
        n = self.nodes[i]
        assert n is not None
        return n

    # ------------------------------------------------------------ partitions

    def isolate(self, i: str) -> None:
        self.side[i] = 1 + max(self.side.values())

    def cut(self, minority: list[str]) -> None:
        tag = 1 + max(self.side.values())
        for i in minority:
            self.side[i] = tag

    def heal(self) -> None:
        for i in self.side:
            self.side[i] = 0

    # ------------------------------------------------------------ client side

    def leader(self) -> str | None:
        """The live leader with the highest term, if any."""
        best: tuple[int, str] | None = None
        for i in self.live():
            n = self.node(i)
            if n.role is Role.LEADER and (best is None or n.term > best[0]):
                best = (n.term, i)
        return best[1] if best else None

    def propose(self, i: str, data: bytes) -> ProposeResult:
        result, effects = self.node(i).propose(data, self.now)
        if isinstance(result, Accepted):
            self.proposed[(result.index, result.term)] = (i, data)
        self._exec(i, effects)
        return result

    def change(self, i: str, op: ChangeOp, member: str) -> ProposeResult:
        result, effects = self.node(i).change_membership(op, member, self.now)
        self._exec(i, effects)
        return result

    def read(self, i: str) -> int | None:
        result, effects = self.node(i).read_index(self.now)
        if not isinstance(result, ReadId):
            return None
        self.reads[(i, result.read)] = _PendingRead(i, max(self.acked, default=0))
        self._exec(i, effects)
        return result.read

    def compact(self, i: str) -> None:
        n = self.node(i)
        if n.applied > n.snapshot.index:
            self._exec(i, n.compact(n.applied, encode_app(self.apps[i]), self.now))

    # ------------------------------------------------------------ the loop

    def run(self, duration_s: float) -> None:
        until = self.now + duration_s
        while True:
            t_msg = self.queue[0][0] if self.queue else float("inf")
            due = [(n.next_deadline(), i) for i, n in self.nodes.items() if n is not None]
            t_tick, who = min(due) if due else (float("inf"), "")
            t = min(t_msg, t_tick)
            if t > until:
                break
            self.now = max(self.now, t)
            self.events += 1
            if t_msg <= t_tick:
                _, _, dst, msg = heapq.heappop(self.queue)
                n = self.nodes.get(dst)
                src = getattr(msg, "src", "")
                if n is None or self.side[dst] != self.side.get(src, -1):
                    continue
                self._exec(dst, n.handle(msg, self.now))
            else:
                self._exec(who, self.node(who).tick(self.now))
            if self.bounce_p and self.rng.random() < self.bounce_p:
                self.bounce(self.rng.choice(self.live()))
        self.now = until

    def _exec(self, i: str, effects: list[Effect]) -> None:
        for eff in effects:
            if isinstance(eff, Send):
                self._send(i, eff)
            else:
                assert isinstance(eff, Notify)
                self._observe(i, eff.event)

    def _send(self, i: str, eff: Send) -> None:
        if self.side[i] != self.side.get(eff.dest, -1) or self.rng.random() < self.loss:
            return
        copies = 2 if self.rng.random() < self.dup else 1
        for _ in range(copies):
            self.seq += 1
            t = self.now + self.rng.uniform(*self.delay_s)
            heapq.heappush(self.queue, (t, self.seq, eff.dest, eff.msg))

    # ------------------------------------------------------------ checkers

    def _observe(self, i: str, ev: object) -> None:
        if isinstance(ev, Persist):
            self.storage[i].apply(ev)
        elif isinstance(ev, Committed):
            assert ev.index > self.app_last[i], f"{i} applied {ev.index} out of order"
            first = self.committed.setdefault(ev.index, (ev.term, ev.data))
            assert first == (ev.term, ev.data), f"{i} applied a different entry {ev.index}"
            self.apps[i][ev.index] = ev.data
            self.app_last[i] = ev.index
            proposer = self.proposed.get((ev.index, ev.term))
            if proposer is not None and proposer[0] == i:
                self.acked[ev.index] = ev.data
        elif isinstance(ev, SnapshotRestored):
            app = decode_app(ev.snapshot.data)
            for idx, data in app.items():
                assert self.committed.get(idx, (0, data))[1] == data, "snapshot disagrees"
            self.apps[i] = app
            self.app_last[i] = ev.snapshot.index
        elif isinstance(ev, LeaderChanged) and ev.leader == i:
            assert self.leaders.setdefault(ev.term, i) == i, f"two leaders in term {ev.term}"
            n = self.nodes[i]
            assert n is not None
            for idx, (term, data) in self.committed.items():  # leader completeness
                if idx > n.snapshot.index:
                    assert n.term_at(idx) == term, f"new leader {i} lacks committed {idx}"
                    assert n.entry(idx).data == data
        elif isinstance(ev, ReadReady):
            r = self.reads[(i, ev.read)]
            assert ev.index >= r.acked_index, "read index misses an acknowledged write"
            assert self.app_last[i] >= ev.index or self.node(i).applied >= ev.index
            assert all(k in self.apps[i] for k in self.acked if k <= r.acked_index), "stale"
            r.result = ev.index
        elif isinstance(ev, ReadAborted):
            self.reads[(i, ev.read)].aborted = True

    def check_log_matching(self) -> None:
        """§5.3: two logs with an entry of the same index and term agree up to it."""
        live = [self.node(i) for i in self.live()]
        for a_idx, a in enumerate(live):
            for b in live[a_idx + 1 :]:
                lo = max(a.snapshot.index, b.snapshot.index) + 1
                hi = min(a.last_index, b.last_index)
                agree = False
                for k in range(hi, lo - 1, -1):
                    if not agree and a.term_at(k) == b.term_at(k):
                        agree = True
                    if agree:
                        assert a.entry(k) == b.entry(k), f"logs of {a.me}, {b.me} differ at {k}"

    def settle(self, duration_s: float = 8.0) -> str:
        """Heal everything, restart the crashed, run without faults; return the leader."""
        self.heal()
        for i in list(self.nodes):
            self.restart(i)
        self.loss = self.dup = self.bounce_p = 0.0
        self.run(duration_s)
        leader = self.leader()
        assert leader is not None, "no leader after healing"
        self.check_log_matching()
        return leader

    def check_all_applied(self, members: list[str]) -> None:
        """Every acknowledged proposal is applied by every given member."""
        for i in members:
            app = self.apps[i]
            for idx, data in self.acked.items():
                assert app.get(idx) == data, f"{i} lacks acknowledged entry {idx}"
