"""The tender → bid → award core with explicit time and an in-memory network:
placements, impossible and full meshes, lost bids, awards and replies, dead contacts,
a tenderer dying mid-tender, spreading, and the no-overcommit guarantee."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.control.scheduler import (
    Award,
    AwardReply,
    Bid,
    Lapsed,
    NodeView,
    Placed,
    Release,
    Reserved,
    Scheduler,
    SchedulerConfig,
    Tender,
    Unplaced,
)
from hyperion.core import Effect, Notify, Send
from hyperion.policy import Candidate, Request, RulesPolicy

GIB = 1 << 30


def node(i: int, **kw: object) -> Candidate:
    base: dict[str, object] = dict(
        node_id=f"n{i}",
        cloud="aws",
        region="us-east-1",
        zone=f"us-east-1{'abc'[i % 3]}",
        geography="US",
        price_per_hour=1.0 + i,
        cpu_millis=4000,
        cpu_millis_free=4000,
        memory_bytes=16 * GIB,
        memory_bytes_free=16 * GIB,
        rtt_ms={"US": 20.0, "EU": 90.0},
    )
    base.update(kw)
    return Candidate(**base)  # type: ignore[arg-type]


class Net:
    """Schedulers on a network with a fixed one-way delay and a drop rule."""

    def __init__(self, cands: list[Candidate], delay: float = 0.01, **cfg: object) -> None:
        config = SchedulerConfig(**cfg)  # type: ignore[arg-type]
        self.s: dict[str, Scheduler] = {}
        for i, c in enumerate(cands):
            sch = Scheduler(c.node_id, policy=RulesPolicy(), rng=random.Random(i), config=config)
            sch.set_self(c)
            self.s[c.node_id] = sch
        for sch in self.s.values():
            for c in cands:
                sch.observe(c.node_id, c.node_id, c)
        self.delay = delay
        self.now = 0.0
        self.q: list[tuple[float, int, str, str, object]] = []
        self.seq = 0
        self.down: set[str] = set()
        self.drop: Callable[[str, str, object], bool] = lambda src, dest, msg: False
        self.events: list[tuple[str, object]] = []
        self.sent: list[object] = []

    def apply(self, src: str, effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, Send):
                self.sent.append(e.msg)
                if self.drop(src, e.dest, e.msg):
                    continue
                self.seq += 1
                heapq.heappush(self.q, (self.now + self.delay, self.seq, src, e.dest, e.msg))
            elif isinstance(e, Notify):
                self.events.append((src, e.event))
                self.check()

    def check(self) -> None:
        for sch in self.s.values():
            cpu, mem, gpus = sch.free()
            assert cpu >= 0 and mem >= 0 and gpus >= 0, f"{sch.node_id} overcommitted"

    def tender(self, at: str, pod: str, req: Request, **kw: object) -> str:
        tid, fx = self.s[at].tender(pod, req, self.now, **kw)  # type: ignore[arg-type]
        self.apply(at, fx)
        return tid

    def run(self, until: float) -> None:
        while True:
            live = [s for n, s in self.s.items() if n not in self.down]
            deadlines = [(d, s.node_id) for s in live if (d := s.next_deadline()) is not None]
            t_msg = self.q[0][0] if self.q else float("inf")
            t_tick = min(deadlines)[0] if deadlines else float("inf")
            t = min(t_msg, t_tick)
            if t > until:
                break
            self.now = t
            if t_msg <= t_tick:
                _, _, src, dest, msg = heapq.heappop(self.q)
                if dest not in self.down:
                    self.apply(dest, self.s[dest].handle(msg, t))
            else:
                nid = min(deadlines)[1]
                self.apply(nid, self.s[nid].tick(t))
        self.now = until

    def of(self, kind: type) -> list[tuple[str, object]]:
        return [(n, e) for n, e in self.events if isinstance(e, kind)]


def req(**kw: object) -> Request:
    base: dict[str, object] = dict(workload_id="w", cpu_millis=1000, memory_bytes=GIB)
    base.update(kw)
    return Request(**base)  # type: ignore[arg-type]


def test_places_on_the_cheapest_node_for_a_cost_goal() -> None:
    net = Net([node(i) for i in range(5)])
    net.tender("n3", "default/p", req(goal="cost"))
    net.run(2.0)
    placed = net.of(Placed)
    assert len(placed) == 1
    src, ev = placed[0]
    assert src == "n3" and isinstance(ev, Placed)
    assert ev.node_id == "n0" and ev.bids == 5
    assert ev.elapsed_s == pytest.approx(0.04)  # tender, bid, award, reply: 4 one-way trips
    reserved = net.of(Reserved)
    assert [n for n, _ in reserved] == ["n0"]
    assert net.s["n0"].free()[0] == 3000


def test_the_window_closes_when_everyone_answered_not_later() -> None:
    net = Net([node(i) for i in range(3)], window_s=5.0)
    net.tender("n0", "default/p", req())
    net.run(0.5)
    assert len(net.of(Placed)) == 1


def test_latency_goal_picks_the_node_near_the_users() -> None:
    cands = [node(0), node(1, geography="EU", region="eu-west-1", rtt_ms={"EU": 10, "US": 90})]
    net = Net(cands)
    net.tender("n0", "default/p", req(goal="latency", users=(("EU", 1.0),)))
    net.run(2.0)
    [(_, ev)] = net.of(Placed)
    assert isinstance(ev, Placed) and ev.node_id == "n1"


def test_an_impossible_constraint_is_given_up_at_once_naming_it() -> None:
    net = Net([node(i) for i in range(4)])
    net.tender("n0", "default/p", req(geographies=("EU",)))
    assert net.sent == []  # nobody asked
    [(_, ev)] = net.of(Unplaced)
    assert isinstance(ev, Unplaced)
    assert ev.message == "0/4 nodes are available: 4 not in geographies [EU]."
    assert not ev.resolvable


def test_a_request_larger_than_any_node_is_unresolvable() -> None:
    net = Net([node(i) for i in range(3)])
    net.tender("n0", "default/p", req(cpu_millis=64_000))
    [(_, ev)] = net.of(Unplaced)
    assert isinstance(ev, Unplaced)
    assert ev.message == "0/3 nodes are available: 3 insufficient cpu." and not ev.resolvable


def test_a_full_mesh_retries_then_reports_resolvable_insufficient_capacity() -> None:
    net = Net([node(i) for i in range(3)], max_attempts=2)
    for sch in net.s.values():
        assert sch.hold("default/other", req(cpu_millis=3500))
    net.tender("n0", "default/p", req())
    net.run(3.0)
    [(_, ev)] = net.of(Unplaced)
    assert isinstance(ev, Unplaced)
    assert ev.message == "0/3 nodes are available: 3 insufficient cpu." and ev.resolvable
    assert net.s["n0"].counters["retenders"] == 1


def test_racing_awards_never_overcommit() -> None:
    """Ten tenders from different nodes race for room for four: four placed there,
    the rest elsewhere, and no node ever holds more than its capacity."""
    cands = [node(0, price_per_hour=0.1)] + [
        node(i, cpu_millis=2000, cpu_millis_free=2000) for i in range(1, 4)
    ]
    net = Net(cands)
    for k in range(10):
        net.tender(f"n{k % 4}", f"default/p{k}", req(goal="cost"))
    net.run(5.0)
    placed = [e for _, e in net.of(Placed)]
    on = [e.node_id for e in placed if isinstance(e, Placed)]
    assert on.count("n0") == 4
    assert len(placed) + len(net.of(Unplaced)) == 10
    assert len(placed) == 10  # 4 + 3 x 2 fit exactly
    net.check()


def test_a_lost_bid_costs_one_window_and_the_others_win() -> None:
    net = Net([node(i) for i in range(4)], window_s=0.3)
    net.drop = lambda src, dest, msg: isinstance(msg, Bid) and src == "n0"
    net.tender("n2", "default/p", req(goal="cost"))
    net.run(2.0)
    [(_, ev)] = net.of(Placed)
    assert isinstance(ev, Placed) and ev.node_id == "n1"
    assert ev.elapsed_s == pytest.approx(0.3 + 0.02)
    assert net.s["n2"].counters["windows_timed_out"] == 1


def test_a_lost_award_moves_to_the_next_best_bid_after_a_short_timeout() -> None:
    net = Net([node(i) for i in range(4)], award_timeout_rtts=4.0)
    net.drop = lambda src, dest, msg: isinstance(msg, Award) and dest == "n0"
    net.tender("n2", "default/p", req(goal="cost"))
    net.run(2.0)
    [(_, ev)] = net.of(Placed)
    assert isinstance(ev, Placed) and ev.node_id == "n1"
    assert ev.elapsed_s < 0.3  # the timeout is a few RTTs (20 ms), not seconds
    assert net.s["n0"].holds() == {}


def test_a_lost_award_reply_lapses_the_orphan_reservation() -> None:
    net = Net([node(i) for i in range(4)], reserve_ttl_s=2.0)
    net.drop = lambda src, dest, msg: isinstance(msg, AwardReply) and src == "n0"
    net.tender("n2", "default/p", req(goal="cost"))
    net.run(1.0)
    [(_, ev)] = net.of(Placed)
    assert isinstance(ev, Placed) and ev.node_id == "n1"
    assert "default/p" in net.s["n0"].holds()  # reserved, never confirmed
    net.run(3.0)
    assert net.s["n0"].holds() == {}
    assert ("n0", Lapsed("default/p")) in net.events


def test_a_late_acceptance_is_released() -> None:
    net = Net([node(i) for i in range(3)])
    sch = net.s["n2"]
    tid, fx = sch.tender("default/p", req(goal="cost"), 0.0)
    assert sorted(e.dest for e in fx if isinstance(e, Send)) == ["n0", "n1"]
    sch.handle(Bid(tid, "n0", net.s["n0"].snapshot()), 0.01)
    fx = sch.handle(Bid(tid, "n1", net.s["n1"].snapshot()), 0.01)
    assert [(e.dest, type(e.msg)) for e in fx if isinstance(e, Send)] == [("n0", Award)]
    fx = sch.tick(10.0)  # n0 is silent past the award timeout: n1 gets the award
    assert [(e.dest, type(e.msg)) for e in fx if isinstance(e, Send)] == [("n1", Award)]
    fx = sch.handle(AwardReply(tid, "n0", "default/p", True), 10.1)  # n0's late yes
    assert [(e.dest, type(e.msg)) for e in fx if isinstance(e, Send)] == [("n0", Release)]
    held = net.s["n0"]
    held.handle(Award(tid, "n2", "default/p", req()), 10.0)
    assert held.handle(Release(tid, "n2", "default/p"), 10.2) == [Notify(Lapsed("default/p"))]
    assert held.holds() == {}


def test_a_dead_contact_costs_one_window_not_seconds() -> None:
    net = Net([node(i) for i in range(5)], window_s=0.25)
    net.down.add("n0")  # crashed, not yet detected: still in everyone's view
    net.tender("n2", "default/p", req(goal="cost"))
    net.run(2.0)
    [(_, ev)] = net.of(Placed)
    assert isinstance(ev, Placed) and ev.node_id == "n1"
    assert ev.elapsed_s == pytest.approx(0.25 + 0.02)


def test_the_tenderer_dying_after_the_award_leaves_nothing_held_for_long() -> None:
    net = Net([node(i) for i in range(3)], reserve_ttl_s=2.0)
    net.tender("n2", "default/p", req(goal="cost"))
    net.run(0.025)  # the award is on its way to n0
    net.down.add("n2")
    net.run(1.0)
    assert "default/p" in net.s["n0"].holds()
    net.run(3.0)
    assert net.s["n0"].holds() == {}  # lapsed: the new custodian will tender again


def test_confirmed_reservations_do_not_lapse_and_release_frees_them() -> None:
    net = Net([node(i) for i in range(2)], reserve_ttl_s=1.0)
    net.tender("n1", "default/p", req(goal="cost"))
    net.run(0.5)
    assert net.s["n0"].confirm("default/p")
    net.run(5.0)
    assert net.s["n0"].holds() == {"default/p": (1000, GIB, 0, True)}
    assert net.s["n0"].release("default/p")
    assert net.s["n0"].free() == (4000, 16 * GIB, 0)


def test_a_duplicate_award_is_accepted_once() -> None:
    net = Net([node(0)])
    sch = net.s["n0"]
    a = Award("t1", "x", "default/p", req())
    fx1 = sch.handle(a, 0.0)
    fx2 = sch.handle(Award("t2", "x", "default/p", req()), 0.1)
    assert [e.msg.accepted for e in fx1 + fx2 if isinstance(e, Send)] == [True, True]  # type: ignore[attr-defined]
    assert sch.free()[0] == 3000


def test_replicas_spread_across_zones() -> None:
    net = Net([node(i, price_per_hour=1.0) for i in range(3)])
    placed: list[tuple[str, str, str]] = []
    for r in range(3):
        net.events.clear()
        net.tender("n0", f"default/p{r}", req(replica=r, replicas=3), placed=list(placed))
        net.run(net.now + 1.0)
        [(_, ev)] = net.of(Placed)
        assert isinstance(ev, Placed)
        placed.append((ev.node_id, ev.candidate.zone, ev.candidate.cloud_region))
    assert len({z for _, z, _ in placed}) == 3


def test_replicas_tendered_together_spread_too() -> None:
    # three replicas tendered at once, none bound yet: each tender's scoring sees the
    # siblings this tenderer is awarding or has just placed (without that, all three
    # tie on every score and land where their tie-break hashes say: here two share one)
    net = Net([node(i, price_per_hour=1.0) for i in range(3)])
    for r in range(3):
        net.tender("n0", f"default/p{r}", req(replica=r, replicas=3))
        net.run(net.now + 0.005)
    net.run(net.now + 1.0)
    placed = [ev for _, ev in net.of(Placed) if isinstance(ev, Placed)]
    assert len(placed) == 3
    assert len({ev.node_id for ev in placed}) == 3
    # another workload is not spread against these
    net.events.clear()
    net.tender("n0", "default/q0", req(workload_id="other"))
    net.run(net.now + 1.0)
    [(_, ev)] = net.of(Placed)
    assert isinstance(ev, Placed) and ev.candidate.replicas_on_node == 0


def test_a_tender_for_a_pod_already_held_bids_with_its_share() -> None:
    sch = Scheduler("n0", policy=RulesPolicy(), rng=random.Random(0))
    sch.set_self(node(0))
    assert sch.hold("default/p", req(cpu_millis=4000))
    fx = sch.handle(Tender("t", "x", "default/p", req(cpu_millis=4000)), 0.0)
    [e] = fx
    assert isinstance(e, Send) and isinstance(e.msg, Bid) and e.msg.candidate is not None


def test_a_tender_past_its_deadline_gets_no_bid() -> None:
    # the tenderer's window has closed: a bid would only cost both sides work (an
    # overloaded bidder working through a backlog of tenders skips the stale ones)
    sch = Scheduler("n0", policy=RulesPolicy(), rng=random.Random(0), clock_offset=1000.0)
    sch.set_self(node(0))
    late = Tender("t", "x", "default/p", req(), deadline=1000.5)  # on the mesh clock
    assert sch.handle(late, 1.4) != []  # within the 1 s allowance for clock skew
    assert sch.handle(late, 1.6) == [] and sch.counters["tenders_expired"] == 1
    net = Net([node(i) for i in range(3)])
    tid = net.tender("n1", "default/q", req())
    sent = [m for m in net.sent if isinstance(m, Tender) and m.tender_id == tid]
    assert sent and all(m.deadline == net.now + 0.5 for m in sent)  # the bid window


def test_forged_bids_are_dropped() -> None:
    net = Net([node(i) for i in range(2)])
    sch = net.s["n1"]
    _, fx = sch.tender("default/p", req(), 0.0)
    tid = next(e.msg.tender_id for e in fx if isinstance(e, Send))  # type: ignore[attr-defined]
    sch.handle(Bid(tid, "n0", node(7)), 0.01)  # signed by n0, claims to be n7
    assert sch.counters["bids_forged"] == 1


def test_a_shared_view_samples_a_bounded_number_of_bidders() -> None:
    view = NodeView()
    cands = [node(i) for i in range(200)]
    for c in cands:
        view.observe(c.node_id, c.node_id, c)
    sch = Scheduler(
        "n0",
        policy=RulesPolicy(),
        rng=random.Random(1),
        view=view,
        config=SchedulerConfig(sample=6),
    )
    sch.set_self(cands[0])
    _, fx = sch.tender("default/p", req(), 0.0)
    asked = {e.dest for e in fx if isinstance(e, Send)}
    assert 5 <= len(asked) <= 6  # itself answers in-call, without a send
    view.forget("n5")
    assert len(view) == 199 and "n5" not in view.known
    view.observe("n7", "n7", cands[9])  # a newer snapshot replaces the old one
    view.forget(view.ids[-1])
    assert len(view.snaps) == len(view.ids) == 198
    assert all(view.snaps[k] is view.known[n][1] for k, n in enumerate(view.ids))


@settings(max_examples=40)
@given(
    seed=st.integers(0, 10_000),
    n_nodes=st.integers(1, 6),
    n_pods=st.integers(1, 12),
    loss=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_no_overcommit_and_no_violation_under_loss(
    seed: int, n_nodes: int, n_pods: int, loss: float
) -> None:
    rng = random.Random(seed)
    cands = [
        node(i, geography=rng.choice(["US", "EU"]), cpu_millis=2000, cpu_millis_free=2000)
        for i in range(n_nodes)
    ]
    net = Net(cands, window_s=0.1, reserve_ttl_s=1.0)
    net.drop = lambda src, dest, msg: rng.random() < loss
    reqs = {}
    for k in range(n_pods):
        r = req(cpu_millis=rng.choice([500, 1000, 1500]), geographies=(rng.choice(["US", "EU"]),))
        reqs[f"default/p{k}"] = r
        net.tender(f"n{rng.randrange(n_nodes)}", f"default/p{k}", r)
    net.run(10.0)
    by = {c.node_id: c for c in cands}
    for _, ev in net.of(Placed):
        assert isinstance(ev, Placed)
        assert by[ev.node_id].geography in reqs[ev.pod].geographies
    done = {e.pod for _, e in net.of(Placed)} | {e.pod for _, e in net.of(Unplaced)}  # type: ignore[attr-defined]
    assert done == set(reqs)  # every tender ends, placed or with a reason
    net.check()


def test_a_large_window_closes_at_the_quorum_not_on_the_slowest_bidder() -> None:
    net = Net([node(i) for i in range(12)], sample=12, window_s=2.0)
    net.down.update({"n10", "n11"})  # 2 of 12 silent: 10 answers >= 0.75 x 12
    net.tender("n0", "default/p", req(goal="cost"))
    net.run(3.0)
    [(_, ev)] = net.of(Placed)
    assert isinstance(ev, Placed) and ev.elapsed_s == pytest.approx(0.02)  # not 2 s
