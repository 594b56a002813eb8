"""SWIM core driven directly with explicit ``now`` (no network, no clock)."""

from __future__ import annotations

import hashlib
import random

from hyperion.core import Notify, Send
from hyperion.mesh.membership import (
    ID_SPACE_MAX,
    PROFILES,
    Ack,
    Broadcast,
    Gossip,
    MemberEvent,
    Membership,
    Ping,
    PingReq,
    PushPull,
    Update,
)
from hyperion.mesh.table import ALIVE, DEAD, SUSPECT, make_key

CFG = PROFILES["lan"]


def nid(i: int) -> str:
    return f"{i:040x}"


def make(i: int, now: float = 0.0) -> Membership:
    return Membership(nid(i), f"n{i}", name=f"n{i}", rng=random.Random(i), now=now, config=CFG)


def deliver(cores: dict[str, Membership], effects: list, now: float, drop=lambda e: False) -> list:
    """Deliver Sends to their destination cores until quiet; returns notifications seen."""
    by_addr = {c.addr: c for c in cores.values()}
    notes = []
    queue = list(effects)
    while queue:
        e = queue.pop(0)
        if isinstance(e, Notify):
            notes.append(e.event)
            continue
        if drop(e) or e.addr not in by_addr:
            continue
        queue.extend(by_addr[e.addr].handle(e.msg, now))
    return notes


def formed(n: int) -> dict[str, Membership]:
    cores = {nid(i): make(i) for i in range(n)}
    for i in range(1, n):
        deliver(cores, cores[nid(i)].join(["n0"], 0.0), 0.0)
    return cores


def test_join_by_push_pull_makes_both_sides_alive() -> None:
    a, b = make(1), make(2)
    effects = a.join(["n2"], 0.0)
    assert [type(e.msg) for e in effects] == [PushPull]
    notes = deliver({a.node_id: a, b.node_id: b}, effects, 0.0)
    assert a.state_of(b.node_id) == "alive" and b.state_of(a.node_id) == "alive"
    assert {(n.node_id, n.state) for n in notes} == {(a.node_id, "alive"), (b.node_id, "alive")}


def test_join_spreads_to_everyone_through_the_seed() -> None:
    cores = formed(8)
    for c in cores.values():
        assert c.table.alive == 8, c.name


def test_probe_and_ack() -> None:
    cores = formed(2)
    a, b = cores[nid(0)], cores[nid(1)]
    t = a.next_deadline()
    assert t is not None
    effects = a.tick(t)
    pings = [e for e in effects if isinstance(e, Send) and isinstance(e.msg, Ping)]
    assert len(pings) == 1 and pings[0].dest == b.node_id
    reply = b.handle(pings[0].msg, t + 0.01)
    assert [type(e.msg) for e in reply] == [Ack]
    a.handle(reply[0].msg, t + 0.02)
    a.tick(t + 5 * CFG.probe_timeout_max_s)
    assert a.state_of(b.node_id) == "alive"
    assert a.stats.counters.get("suspicions_raised", 0) == 0


def _probe_until_target(
    cores: dict[str, Membership], a: Membership, target: str, t: float
) -> tuple[list, float]:
    """Run ``a``'s probe loop (others answering) until it pings ``target``."""
    for _ in range(50):
        t = a.next_deadline() or t
        effects = a.tick(t)
        if any(
            isinstance(e, Send) and isinstance(e.msg, Ping) and e.dest == target for e in effects
        ):
            return effects, t
        deliver(cores, effects, t)
    raise AssertionError("target never probed")


def test_silent_target_goes_indirect_then_suspect_then_dead() -> None:
    cores = formed(5)
    a = cores[nid(0)]
    victim = nid(3)
    _, t = _probe_until_target(cores, a, victim, 0.0)
    # No ack: the direct timeout sends PingReqs to k helpers (never the target).
    t1 = t + a.probe_timeout()
    reqs = [e for e in a.tick(t1) if isinstance(e, Send) and isinstance(e.msg, PingReq)]
    assert len(reqs) == CFG.indirect_checks
    assert all(e.dest != victim and e.msg.target == victim for e in reqs)
    # Nobody relays an ack: suspect, notify, and tell the suspect directly.
    t2 = t1 + a.indirect_timeout()
    effects = a.tick(t2)
    assert a.state_of(victim) == "suspect"
    assert MemberEvent(victim, "n3", "n3", "suspect", 0) in [
        e.event for e in effects if isinstance(e, Notify)
    ]
    notices = [e for e in effects if isinstance(e, Send) and e.dest == victim]
    assert [type(e.msg) for e in notices] == [Gossip]
    assert notices[0].msg.updates[0].state == SUSPECT
    # The suspicion matures where phi of refutation delays crosses the threshold.
    t3 = t2 + a.suspicion_timeout()
    effects = a.tick(t3)
    assert a.state_of(victim) == "dead"
    bcasts = [e for e in effects if isinstance(e, Send) and isinstance(e.msg, Broadcast)]
    assert {e.dest for e in bcasts} == {nid(1), nid(2), nid(4)}  # small mesh: everyone
    assert all(e.msg.updates[0].state == DEAD for e in bcasts)


def test_relay_forwards_the_ack_to_the_origin() -> None:
    cores = formed(3)
    helper = cores[nid(1)]
    req = PingReq(nid(0), "n0", 77, nid(2), "n2")
    [ping] = helper.handle(req, 1.0)
    assert ping.dest == nid(2) and isinstance(ping.msg, Ping)
    [ack] = cores[nid(2)].handle(ping.msg, 1.01)
    [relayed] = helper.handle(ack.msg, 1.02)
    assert relayed.dest == nid(0) and relayed.msg == Ack(nid(1), 77)


def test_suspected_node_refutes_with_higher_incarnation() -> None:
    cores = formed(4)
    b = cores[nid(1)]
    effects = b.handle(Gossip(nid(0), (Update(nid(1), "n1", 0, SUSPECT),)), 1.0)
    assert b.incarnation == 1
    direct = [e for e in effects if e.dest == nid(0)]
    assert any(
        isinstance(e.msg, Gossip) and e.msg.updates[0] == Update(nid(1), "n1", 1, ALIVE, "n1")
        for e in direct
    )
    assert any(isinstance(e.msg, Broadcast) for e in effects)
    # The refutation overrides the suspicion everywhere it lands.
    a = cores[nid(0)]
    a.handle(Gossip(nid(2), (Update(nid(1), "n1", 0, SUSPECT),)), 1.0)
    assert a.state_of(nid(1)) == "suspect"
    a.handle(direct[0].msg, 1.1)
    assert a.state_of(nid(1)) == "alive"


def test_declared_dead_node_refutes_with_a_full_sync() -> None:
    cores = formed(3)
    b = cores[nid(1)]
    effects = b.handle(Gossip(nid(0), (Update(nid(1), "n1", 0, DEAD),)), 1.0)
    assert b.incarnation == 1
    assert any(isinstance(e.msg, PushPull) and e.dest == nid(0) for e in effects)


def test_precedence_is_key_order() -> None:
    # SWIM §4.2: alive(i) beats suspect/dead(j) iff i > j; suspect(i) beats alive(j) iff
    # i >= j; dead(i) beats alive/suspect(j) iff i >= j.
    cases = [
        ((1, ALIVE), (0, SUSPECT), True),
        ((0, ALIVE), (0, SUSPECT), False),
        ((0, SUSPECT), (0, ALIVE), True),
        ((0, DEAD), (0, SUSPECT), True),
        ((0, ALIVE), (0, DEAD), False),
        ((1, ALIVE), (0, DEAD), True),
        ((0, SUSPECT), (1, ALIVE), False),
    ]
    for new, old, wins in cases:
        a = make_key(*new) > make_key(*old)
        assert a == wins, (new, old)
        c = make(0)
        c.handle(Gossip(nid(9), (Update(nid(5), "n5", old[0], ALIVE),)), 0.0)
        if old[1] != ALIVE:
            c.handle(Gossip(nid(9), (Update(nid(5), "n5", old[0], old[1]),)), 0.0)
        c.handle(Gossip(nid(9), (Update(nid(5), "n5", new[0], new[1]),)), 0.0)
        expect = new if wins else old
        assert c.table.get(c.directory.find(nid(5))) == make_key(*expect), (new, old)


def test_unknown_member_suspect_or_dead_is_ignored() -> None:
    c = make(0)
    c.handle(Gossip(nid(9), (Update(nid(5), "n5", 3, DEAD),)), 0.0)
    assert c.state_of(nid(5)) is None


def test_bad_peer_input_is_counted_not_raised() -> None:
    c = make(0)
    assert c.handle(Gossip(nid(9), (Update(nid(5), "n5", 0, 7),)), 0.0) == []
    assert c.stats.counters["drop_bad_update"] == 1
    bad = PushPull(nid(9), "n9", False, False, (nid(5),), (), (), (1,))
    assert c.handle(bad, 0.0) == []
    assert c.stats.counters["drop_bad_push_pull"] == 1
    assert c.handle(Broadcast(nid(9), 5, 2, ()), 0.0) == []
    assert c.stats.counters["drop_bad_broadcast"] == 1
    assert c.handle("not a message", 0.0) == []
    misdirected = c.handle(Ping(nid(9), "n9", 1, nid(8)), 0.0)
    assert misdirected == [] and c.stats.counters["drop_misdirected_ping"] == 1


def test_old_news_shortcut_still_counts_malformed_rumors() -> None:
    """A rumor about a known member that is not newer is skipped early, but only a
    well-formed one: malformed rumors are still counted, whatever their key looks like."""
    c = formed(3)[nid(0)]
    assert Update(nid(1), "n1", 0, ALIVE).key == make_key(0, ALIVE)
    assert Update(nid(1), "n1", -1, DEAD).key == Update(nid(1), "n1", 0, 0).key == -1
    old_news = (Update(nid(1), "n1", 0, ALIVE), Update(nid(2), "n2", 0, ALIVE))
    assert c.handle(Gossip(nid(9), old_news), 0.0) == []
    assert "drop_bad_update" not in c.stats.counters
    c.handle(Gossip(nid(9), (Update(nid(1), "n1", 0, 0), Update(nid(1), "n1", -1, DEAD))), 0.0)
    assert c.stats.counters["drop_bad_update"] == 2
    assert c.state_of(nid(1)) == "alive"


def test_broadcast_reaches_every_member_once_per_redundancy() -> None:
    n = 200
    ids = [hashlib.sha256(b"%d" % i).hexdigest()[:40] for i in range(n)]  # like real ids
    built = {
        i: Membership(i, i, rng=random.Random(k), now=0.0, config=CFG) for k, i in enumerate(ids)
    }
    for c in built.values():
        for other in ids:
            c.handle(Gossip(other, (Update(other, other, 0, ALIVE),)), 0.0)
    origin = built[ids[0]]
    rumor = Update(ids[-1], ids[-1], 0, DEAD)
    out: list = []
    origin._apply(origin.directory.find(ids[-1]), make_key(0, DEAD), 0.0, out, rumor=rumor)
    origin._broadcast(0, ID_SPACE_MAX, (rumor,), out)
    received: dict[str, int] = {}
    queue = [e for e in out if isinstance(e, Send)]
    while queue:
        e = queue.pop()
        received[e.dest] = received.get(e.dest, 0) + 1
        if e.dest == ids[-1]:
            continue
        queue.extend(
            x
            for x in built[e.dest].handle(e.msg, 0.0)
            if isinstance(x, Send) and isinstance(x.msg, Broadcast)
        )
    # Every live member but the origin (which may get copies back); never the dead one.
    assert set(received) - {ids[0]} == set(ids[1:-1])
    for c in list(built.values())[1:-1]:
        assert c.state_of(ids[-1]) == "dead"
    assert sum(received.values()) <= 3 * n  # ~redundancy messages per member


def test_time_only_comes_from_arguments() -> None:
    a, b = make(1, now=100.0), make(1, now=100.0)
    assert a.next_deadline() == b.next_deadline()
    assert a.tick(a.next_deadline() or 0) == b.tick(b.next_deadline() or 0)


def test_rumor_queue_matches_fewest_sent_first_model() -> None:
    """The queue's O(1) whole-queue path sends exactly what the plain model would."""
    from hyperion.mesh.membership import _RumorQueue, _Stats

    rng = random.Random(5)
    for _ in range(200):
        stats = _Stats()
        max_len = rng.choice([4, 64])
        q = _RumorQueue(max_len, stats)
        model: list[list] = []  # [slot, update, sends], fewest-sent first
        dropped = 0
        for _ in range(rng.randrange(1, 80)):
            op = rng.random()
            slot = rng.randrange(12)
            if op < 0.25:
                u = Update(nid(slot), "", rng.randrange(9), ALIVE)
                model = [e for e in model if e[0] != slot]
                if len(model) >= max_len:
                    model.pop()
                    dropped += 1
                model.insert(0, [slot, u, 0])
                q.put(slot, u)
            elif op < 0.3:
                model = [e for e in model if e[0] != slot]
                q.discard(slot)
            else:
                limit, cap = rng.choice([2, 16]), rng.choice([3, 6, 10])
                taken, model = model[:limit], model[limit:]
                for e in taken:
                    e[2] += 1
                model += [e for e in taken if e[2] < cap]
                assert q.take(limit, cap) == tuple(e[1] for e in taken)
            assert len(q) == len(model)
        assert stats.counters.get("drop_rumor_overflow", 0) == dropped
