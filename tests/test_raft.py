"""The workload plane's Raft core (hyperion/workplane/raft.py) and its host, driven by a
deterministic in-memory network (tests/raft_helpers.py) and by the simulator. Every run
checks election safety, leader completeness, state machine safety, log matching and
read linearizability (the checkers in raft_helpers run on every effect)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.core import Notify, Send
from hyperion.sim.engine import Simulator
from hyperion.workplane.raft import (
    Accepted,
    AppendResponse,
    ChangeOp,
    Committed,
    DurableState,
    Entry,
    EntryKind,
    Heartbeat,
    MemoryStorage,
    NotLeader,
    Persist,
    RaftConfig,
    RaftNode,
    Refused,
    Role,
    Snapshot,
    VoteRequest,
    VoteResponse,
)
from hyperion.workplane.raft_host import RaftHost
from tests.raft_helpers import Cluster

IDS3 = ["n1", "n2", "n3"]
IDS5 = ["n1", "n2", "n3", "n4", "n5"]


def elect(c: Cluster, within_s: float = 6.0) -> str:
    step = 0.25
    waited = 0.0
    while waited < within_s:
        c.run(step)
        waited += step
        leader = c.leader()
        if leader is not None and c.node(leader).commit >= c.node(leader).last_index:
            return leader
    raise AssertionError("no leader elected")


def write(c: Cluster, leader: str, n: int, tag: str) -> list[Accepted]:
    out = []
    for k in range(n):
        r = c.propose(leader, f"{tag}-{k}".encode())
        assert isinstance(r, Accepted), r
        out.append(r)
    return out


# ------------------------------------------------------------------ single node, by hand

CFG = RaftConfig()


def test_vote_is_persisted_before_the_reply_and_survives_a_restart() -> None:
    n1 = RaftNode("g", "n1", DurableState.bootstrap(IDS3), random.Random(0), 0.0, CFG)
    effects = n1.handle(VoteRequest("g", "n2", 2, 1, 1), 0.1)
    kinds = [type(e.event if isinstance(e, Notify) else e).__name__ for e in effects]
    assert kinds == ["Persist", "Persist", "Send"]  # the new term, the vote, then the reply
    assert isinstance(effects[-1], Send) and effects[-1].msg == VoteResponse("g", "n1", 2, True)
    disk = MemoryStorage(DurableState.bootstrap(IDS3))
    for e in effects[:2]:
        assert isinstance(e, Notify) and isinstance(e.event, Persist)
        disk.apply(e.event)
    again = RaftNode("g", "n1", disk.state(), random.Random(1), 0.2, CFG)
    (reply,) = again.handle(VoteRequest("g", "n3", 2, 5, 1), 0.2)
    assert isinstance(reply, Send) and reply.msg == VoteResponse("g", "n1", 2, False)


def test_a_member_re_added_with_wiped_state_cannot_vote_twice_in_a_term() -> None:
    """n2 voted n1 in at term 5, was removed (its group state dissolved) and is added
    back, empty, still in term 5. A delayed vote request of term 5 from n3 must not get
    a second vote out of it, neither before the leader reaches it (it knows no
    configuration) nor after (it holds the term's leader as its vote, durably)."""
    stale = VoteRequest("g", "n3", 5, 9, 4)
    fresh = RaftNode("g", "n2", DurableState.bootstrap(()), random.Random(0), 0.0, CFG)
    (reply,) = [e for e in fresh.handle(stale, 0.1) if isinstance(e, Send)]
    assert reply.msg == VoteResponse("g", "n2", 5, False)
    fresh = RaftNode("g", "n2", DurableState.bootstrap(()), random.Random(0), 0.0, CFG)
    effects = fresh.handle(Heartbeat("g", "n1", 5, 0, 0), 0.1)
    disk = MemoryStorage(DurableState.bootstrap(()))
    for e in effects:
        if isinstance(e, Notify) and isinstance(e.event, Persist):
            disk.apply(e.event)
    assert (disk.state().term, disk.state().vote) == (5, "n1")
    # Even a member that knows its configuration and restarted (no leader in memory)
    # refuses: it holds n1 as its vote for term 5.
    joined = RaftNode(
        "g",
        "n2",
        DurableState(
            5, "n1", Snapshot(0, 0, ()), (Entry(1, 1, EntryKind.CONFIG, voters=("n1", "n2", "n3")),)
        ),
        random.Random(0),
        0.2,
        CFG,
    )
    (reply,) = [e for e in joined.handle(stale, 0.3) if isinstance(e, Send)]
    assert reply.msg == VoteResponse("g", "n2", 5, False)


def test_leader_counts_replicas_only_for_entries_of_its_term() -> None:
    """§5.4.2 (Figure 8): an entry of an older term is not committed by counting
    replicas, only with an entry of the current term after it."""
    old = (Entry(1, 1, data=b"a"), Entry(2, 2, data=b"b"))
    st = DurableState(3, "", Snapshot(0, 0, tuple(IDS5)), old)
    n = RaftNode("g", "n1", st, random.Random(0), 0.0, CFG)
    n.tick(n.next_deadline())
    for v in ("n2", "n3"):
        n.handle(VoteResponse("g", v, 4, True, pre_vote=True), 3.0)
    for v in ("n2", "n3"):
        n.handle(VoteResponse("g", v, 4, True), 3.0)
    assert n.role is Role.LEADER and n.term == 4 and n.last_index == 3  # the no-op
    for v in ("n2", "n3"):
        n.handle(AppendResponse("g", v, 4, True, 2), 3.1)
    assert n.commit == 0  # a majority holds entry 2, but it is from term 2
    effects = n.handle(AppendResponse("g", "n2", 4, True, 3), 3.2)
    assert n.commit == 0
    effects = n.handle(AppendResponse("g", "n3", 4, True, 3), 3.2)
    assert n.commit == 3
    done = [e.event for e in effects if isinstance(e, Notify) and isinstance(e.event, Committed)]
    assert [(c.index, c.data) for c in done] == [(1, b"a"), (2, b"b")]


# ------------------------------------------------------------------ elections


def test_three_nodes_elect_one_leader_and_replicate() -> None:
    c = Cluster(IDS3, seed=1)
    leader = elect(c)
    write(c, leader, 20, "a")
    c.run(1.0)
    c.check_log_matching()
    assert len(c.acked) == 20
    c.check_all_applied(IDS3)
    for i in IDS3:
        if i != leader:
            assert isinstance(c.propose(i, b"x"), NotLeader)
            assert c.node(i).leader == leader  # the hint


def test_single_voter_group_commits_alone() -> None:
    c = Cluster(["solo"], seed=2)
    leader = elect(c)
    write(c, leader, 3, "s")
    assert len(c.acked) == 3  # committed within the call: no round trip needed
    rid = c.read(leader)
    assert rid is not None and c.reads[(leader, rid)].result == 5


def test_leader_crash_reelects_and_old_leader_catches_up() -> None:
    c = Cluster(IDS5, seed=3, loss=0.02)
    old = elect(c)
    write(c, old, 10, "before")
    c.run(1.0)
    term = c.node(old).term
    c.crash(old)
    new = elect(c)
    assert new != old and c.node(new).term > term
    write(c, new, 10, "after")
    c.run(1.0)
    c.restart(old)
    c.settle()
    assert len(c.acked) == 20
    c.check_all_applied(IDS5)


def test_minority_partition_refuses_writes_and_its_leader_steps_down() -> None:
    c = Cluster(IDS5, seed=4)
    old = elect(c)
    write(c, old, 5, "ok")
    c.run(0.5)
    buddy = next(i for i in IDS5 if i != old)
    c.cut([old, buddy])
    stranded = write(c, old, 5, "lost")  # accepted by the stranded leader...
    c.run(2.0 * c.cfg.election_timeout_s + 0.1)
    assert c.node(old).role is not Role.LEADER  # check-quorum
    assert isinstance(c.propose(old, b"refused"), NotLeader)
    new = c.leader()
    assert new is not None and new not in (old, buddy)
    write(c, new, 5, "majority")
    c.run(1.0)
    c.settle()
    for a in stranded:  # ...but never committed, and truncated after the heal
        assert (a.index, a.term) not in {(i, t) for i, (t, _) in c.committed.items()}
    assert len(c.acked) == 10
    c.check_all_applied(IDS5)


def test_prevote_keeps_a_rejoining_node_from_deposing_the_leader() -> None:
    c = Cluster(IDS3, seed=5)
    leader = elect(c)
    term = c.node(leader).term
    loner = next(i for i in IDS3 if i != leader)
    c.isolate(loner)
    c.run(10 * c.cfg.election_timeout_s)  # many election timeouts alone
    assert c.node(loner).stats.pre_votes >= 3
    assert c.node(loner).term == term  # pre-votes never raise the term
    c.heal()
    write(c, leader, 3, "x")
    c.run(3.0)
    assert c.leader() == leader and c.node(leader).term == term
    assert set(c.leaders) == {term}
    c.check_all_applied(IDS3)


def test_removed_member_that_does_not_know_cannot_disrupt() -> None:
    """Thesis §4.2.3: a member removed while cut off campaigns, but voters in a lease
    ignore it."""
    c = Cluster(IDS5, seed=6)
    leader = elect(c)
    gone = next(i for i in IDS5 if i != leader)
    c.isolate(gone)
    assert isinstance(c.change(leader, ChangeOp.REMOVE, gone), Accepted)
    c.run(1.0)
    assert gone not in c.node(leader).voters
    term = c.node(leader).term
    c.heal()
    c.run(10 * c.cfg.election_timeout_s)
    assert c.leader() == leader and c.node(leader).term == term
    assert sum(c.node(i).stats.ignored_in_lease for i in IDS5) > 0


# ------------------------------------------------------------------ membership


def test_membership_add_learner_promote_and_remove() -> None:
    c = Cluster(IDS3, seed=7)
    leader = elect(c)
    write(c, leader, 10, "a")
    c.run(0.5)
    c.add("n4")
    assert isinstance(c.change(leader, ChangeOp.PROMOTE, "n4"), Refused)  # not a learner
    assert isinstance(c.change(leader, ChangeOp.ADD_LEARNER, "n4"), Accepted)
    assert isinstance(c.change(leader, ChangeOp.REMOVE, "n2"), Refused)  # one at a time
    c.run(1.0)
    assert c.node("n4").learners == {"n4"} and c.node("n4").role is Role.FOLLOWER
    assert isinstance(c.change(leader, ChangeOp.PROMOTE, "n4"), Accepted)
    c.run(1.0)
    assert c.node(leader).voters == {"n1", "n2", "n3", "n4"}
    victim = next(i for i in IDS3 if i != leader)
    assert isinstance(c.change(leader, ChangeOp.REMOVE, victim), Accepted)
    c.run(1.0)
    members = sorted({"n1", "n2", "n3", "n4"} - {victim})
    assert c.node(leader).voters == set(members)
    write(c, leader, 5, "b")
    c.run(1.0)
    c.check_all_applied(members)


def test_removing_the_leader_steps_it_down_after_commit() -> None:
    c = Cluster(IDS5, seed=8)
    leader = elect(c)
    write(c, leader, 5, "a")
    term = c.node(leader).term
    r = c.change(leader, ChangeOp.REMOVE, leader)
    assert isinstance(r, Accepted)
    c.run(0.5)
    old = c.node(leader)
    assert old.commit >= r.index and old.role is Role.FOLLOWER
    assert leader not in old.voters
    rest = [i for i in IDS5 if i != leader]
    new = elect(c)
    assert new in rest and c.node(new).term > term
    write(c, new, 5, "b")
    c.run(5.0)
    assert c.node(leader).term == term  # it never campaigns again
    c.check_all_applied(rest)
    c.check_log_matching()


# ------------------------------------------------------------------ snapshots


def test_snapshot_installs_on_a_lagging_follower() -> None:
    c = Cluster(IDS3, seed=9, loss=0.05)
    leader = elect(c)
    laggard = next(i for i in IDS3 if i != leader)
    c.crash(laggard)
    for k in range(4):
        write(c, leader, 50, f"batch{k}")
        c.run(1.0)
    for i in c.live():
        c.compact(i)
    snap = c.node(leader).snapshot
    assert snap.index > 150 and c.node(leader).entries() == ()
    write(c, leader, 5, "tail")
    c.restart(laggard)
    c.settle()
    lag = c.node(laggard)
    assert lag.stats.snapshots_installed >= 1 and lag.snapshot.index >= snap.index
    assert c.node(c.leader() or "").stats.snapshots_sent >= 1
    assert len(c.acked) == 205
    c.check_all_applied(IDS3)
    # a restart from the installed snapshot keeps the state
    c.crash(laggard)
    c.restart(laggard)
    c.run(2.0)
    c.check_all_applied(IDS3)


def test_restart_from_storage_keeps_term_vote_and_log() -> None:
    c = Cluster(IDS3, seed=10)
    leader = elect(c)
    write(c, leader, 7, "d")
    c.run(1.0)
    before = {i: (c.node(i).term, c.node(i).vote, c.node(i).entries()) for i in IDS3}
    for i in IDS3:
        c.crash(i)
        c.restart(i)
        n = c.node(i)
        assert (n.term, n.vote, n.entries()) == before[i]
        assert n.role is Role.FOLLOWER and n.commit == n.snapshot.index
    c.settle()
    c.check_all_applied(IDS3)


# ------------------------------------------------------------------ reads


def test_read_index_on_a_deposed_leader_never_returns() -> None:
    c = Cluster(IDS5, seed=11)
    old = elect(c)
    write(c, old, 3, "v1")
    c.run(0.5)
    c.isolate(old)
    stale = c.read(old)  # it still believes it leads
    assert stale is not None
    elapsed = 0.0
    while (new := c.leader()) in (None, old) and elapsed < 6.0:
        c.run(0.1)
        elapsed += 0.1
    assert new is not None and new != old
    write(c, new, 1, "v2")
    c.run(0.5)
    late = c.read(old) if c.node(old).role is Role.LEADER else None
    fresh = c.read(new)
    c.run(3.0)
    for rid in (stale, late):
        if rid is not None:
            r = c.reads[(old, rid)]
            assert r.result is None and r.aborted
    assert fresh is not None
    r = c.reads[(new, fresh)]
    assert r.result is not None and r.result >= max(c.acked)
    assert isinstance(c.node(old).read_index(c.now)[0], NotLeader)


def test_read_waits_for_the_new_leaders_first_commit() -> None:
    c = Cluster(IDS3, seed=12)
    c.run(5.0)
    leader = c.leader()
    assert leader is not None
    c.crash(leader)
    elapsed = 0.0
    while (new := c.leader()) in (None, leader) and elapsed < 6.0:
        c.run(0.01)
        elapsed += 0.01
    assert new is not None
    n = c.node(new)
    rid = c.read(new)
    assert rid is not None
    if n.commit < n.last_index:  # the no-op is not committed yet: the read waits
        assert c.reads[(new, rid)].result is None
    c.run(1.0)
    assert c.reads[(new, rid)].result == c.node(new).last_index


# ------------------------------------------------------------------ multiplexing


def test_host_multiplexes_100_groups_on_5_nodes_and_dissolves() -> None:
    sim = Simulator(seed=13)
    nodes = [f"h{k}" for k in range(5)]
    cfg = RaftConfig()
    hosts = [RaftHost(n, random.Random(k), cfg) for k, n in enumerate(nodes)]
    idx = {n: sim.add_node(n, h) for n, h in zip(nodes, hosts, strict=True)}
    pick = random.Random(13)
    members = {f"w{g}": sorted(pick.sample(nodes, 3)) for g in range(100)}
    for g, ms in members.items():
        for m in ms:
            sim.inject(idx[m], hosts[idx[m]].create(g, DurableState.bootstrap(ms), 0.0))
    committed: dict[str, set[bytes]] = {}

    def on_notify(i: int, ev: object, t: float) -> None:
        if isinstance(ev, Committed):
            committed.setdefault(f"{ev.group}@{i}", set()).add(ev.data)

    sim.on_notify = on_notify
    sim.run(5.0)

    def leaders() -> dict[str, int]:
        out: dict[str, int] = {}
        for g, ms in members.items():
            ls = [idx[m] for m in ms if hosts[idx[m]].node(g).role is Role.LEADER]
            assert len(ls) == 1, (g, ls)
            out[g] = ls[0]
        return out

    def propose_all(data: bytes) -> None:
        for g, i in leaders().items():
            r, eff = hosts[i].propose(g, data, sim.now)
            assert isinstance(r, Accepted)
            sim.inject(i, eff)

    propose_all(b"one")
    sim.run(6.0)
    for g, ms in members.items():
        for m in ms:
            assert b"one" in committed[f"{g}@{idx[m]}"]
    for h in hosts:
        assert len(h._heap) <= 3 * len(h) + 3  # one armed deadline per group, plus stale
    dissolved = [f"w{g}" for g in range(0, 100, 3)]
    for g in dissolved:
        for m in members.pop(g):
            sim.inject(idx[m], hosts[idx[m]].dissolve(g))
    assert sum(len(h) for h in hosts) == 3 * len(members)
    propose_all(b"two")
    sim.run(8.0)
    for g, ms in members.items():
        for m in ms:
            assert b"two" in committed[f"{g}@{idx[m]}"]
    # an in-flight message for a dissolved group is dropped and counted
    stray = hosts[0]
    before = stray.stats.dropped_unknown_group
    assert stray.handle(Heartbeat(dissolved[0], "h1", 1, 0, 0), sim.now) == []
    assert stray.stats.dropped_unknown_group == before + 1
    assert all(d not in h for h in hosts for d in dissolved)
    assert all(h.next_deadline() is not None for h in hosts)


# ------------------------------------------------------------------ random schedules

OPS = ("crash", "bounce", "restart", "isolate", "cut", "heal", "write", "compact", "read", "member")


@settings(max_examples=400)
@given(
    seed=st.integers(0, 2**32 - 1),
    five=st.booleans(),
    tight=st.booleans(),
    loss=st.sampled_from([0.0, 0.05, 0.2]),
    dup=st.sampled_from([0.0, 0.05]),
    ops=st.lists(
        st.tuples(st.sampled_from(OPS), st.integers(0, 4), st.floats(0.05, 3.0)),
        min_size=5,
        max_size=40,
    ),
)
def test_random_fault_schedules_keep_raft_safe(
    seed: int, five: bool, tight: bool, loss: float, dup: float, ops: list[tuple[str, int, float]]
) -> None:
    ids = IDS5 if five else IDS3
    c = Cluster(ids, seed=seed, loss=loss, dup=dup)
    if tight:  # elections about as slow as the network: split votes, many terms
        c.cfg = RaftConfig(heartbeat_s=0.02, election_timeout_s=0.06, max_inflight_msgs=4)
        c.delay_s = (0.001, 0.03)
        c.bounce_p = 0.002  # restarts mid-election: only durable votes and logs survive
        for i in ids:
            c.bounce(i)
    spare = "n9"
    c.run(2.0)
    for op, who, wait_s in ops:
        target = ids[who % len(ids)]
        leader = c.leader()
        if op == "crash" and len(c.live()) > 1:
            c.crash(target)
        elif op == "restart":
            c.restart(target)
        elif op == "bounce":  # crash and restart at once: only the durable state survives
            c.bounce(target)
        elif op == "isolate":
            c.isolate(target)
        elif op == "cut":
            c.cut(ids[: who % len(ids) + 1])
        elif op == "heal":
            c.heal()
        elif op == "write" and leader is not None:
            for k in range(1 + who):
                c.propose(leader, f"{seed}-{c.events}-{k}".encode())
        elif op == "compact" and c.nodes[target] is not None:
            c.compact(target)
        elif op == "read" and leader is not None:
            c.read(leader)
        elif op == "member" and leader is not None:
            n = c.node(leader)
            if spare not in c.nodes:
                c.add(spare)
            if spare in n.learners:
                c.change(leader, ChangeOp.PROMOTE, spare)
            elif spare in n.voters:
                c.change(leader, ChangeOp.REMOVE, spare)
            else:
                c.change(leader, ChangeOp.ADD_LEARNER, spare)
        c.run(wait_s)
    c.check_log_matching()
    leader = c.settle(10.0)
    n = c.node(leader)
    assert n.commit == n.last_index
    members = sorted((n.voters | n.learners) & set(c.live()))
    c.check_all_applied(members)
    for r in c.reads.values():
        if r.node == leader:
            assert r.result is not None or r.aborted, "a read on the leader is stuck"
