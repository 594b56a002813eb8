"""Gossip pub/sub core: unit tests with explicit ``now`` and small simulated meshes."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from hyperion.core import Notify, Send
from hyperion.identity.keys import NodeKey
from hyperion.mesh.crypto import verify_message
from hyperion.mesh.pubsub import Delivery, IHave, Message, PubSub, PubSubConfig, Rpc
from hyperion.sim import rtt as rtt_mod
from hyperion.sim.dht_run import sim_key
from hyperion.sim.engine import Simulator

TOPIC = "t"


def make_core(key: NodeKey, i: int, config: PubSubConfig | None = None, seed: int = 1) -> PubSub:
    return PubSub(
        key.node_id,
        f"sim://{i}",
        public_key=key.public_bytes,
        sign=key.sign,
        verify=verify_message,
        rng=random.Random(seed * 1000 + i),
        now=0.0,
        config=config,
    )


class Mesh:
    """A small simulated mesh: n nodes, every pair connected, deliveries recorded."""

    def __init__(
        self,
        n: int,
        *,
        seed: int = 1,
        loss: float = 0.0,
        subscribe: int | None = None,
        configs: dict[int, PubSubConfig] | None = None,
        trace: bool = False,
    ) -> None:
        matrix = rtt_mod.load()
        self.sim = Simulator(seed, matrix, loss=loss, trace=trace)
        keys = [sim_key(seed, i) for i in range(n)]
        configs = configs or {}
        self.cores = [make_core(k, i, configs.get(i), seed) for i, k in enumerate(keys)]
        for i, c in enumerate(self.cores):
            self.sim.add_node(c.addr, c, region=i % len(matrix.regions))
        for i, a in enumerate(self.cores):
            for b in self.cores[i + 1 :]:
                a.add_peer(b.node_id, b.addr)
                b.add_peer(a.node_id, a.addr)
        self.deliveries: list[Counter[tuple[str, int]]] = [Counter() for _ in range(n)]
        self.sim.on_notify = self._on_notify
        for i in range(subscribe if subscribe is not None else n):
            self.sim.inject(i, self.cores[i].subscribe(TOPIC, 0.0))

    def _on_notify(self, i: int, ev: object, now: float) -> None:
        if isinstance(ev, Delivery):
            self.deliveries[i][ev.message.mid] += 1

    def publish(self, i: int, data: bytes = b"hello", topic: str = TOPIC) -> Message:
        msg, fx = self.cores[i].publish(topic, data, self.sim.now)
        self.sim.inject(i, fx)
        return msg

    def run(self, dt: float) -> None:
        self.sim.run(self.sim.now + dt)

    def delivered(self, mid: tuple[str, int]) -> list[int]:
        return [self.deliveries[i][mid] for i in range(len(self.cores))]


def test_mesh_forms_within_bounds_and_every_subscriber_gets_each_message_once() -> None:
    m = Mesh(40)
    m.run(3.0)
    cfg = m.cores[0].config
    for c in m.cores:
        assert cfg.d_low <= len(c.mesh[TOPIC]) <= cfg.d_high
    mids = []
    for k in range(10):
        mids.append(m.publish(k % 40, f"msg {k}".encode()).mid)
        m.run(0.1)
    m.run(3.0)
    for mid in mids:
        assert m.delivered(mid) == [1] * 40
    assert sum(c.counters.get("choked", 0) for c in m.cores) > 0
    assert sum(c.counters.get("rejected_bad_signature", 0) for c in m.cores) == 0


def test_lost_messages_are_repaired_by_ihave_iwant() -> None:
    m = Mesh(30, loss=0.3)
    m.run(4.0)
    mids = [m.publish(k).mid for k in range(5)]
    m.run(6.0)
    for mid in mids:
        assert m.delivered(mid) == [1] * 30
    assert sum(c.counters.get("iwant_served", 0) for c in m.cores) > 0


def test_forged_message_is_rejected_counted_and_not_forwarded() -> None:
    m = Mesh(10)
    m.run(3.0)
    evil = sim_key(99, 0)
    a = m.cores[0]
    forged = Message(evil.node_id, evil.public_bytes, 1, TOPIC, b"x", b"\x00" * 64)
    peer = sorted(a.mesh[TOPIC])[0]
    fx = a.handle(Rpc(peer, "", publish=(forged,)), m.sim.now)
    assert fx == []
    assert a.counters["rejected_bad_signature"] == 1
    # Someone else's valid signature on altered data fails as well.
    good, _ = m.cores[1].publish(TOPIC, b"original", m.sim.now)
    altered = Message(good.origin, good.origin_key, good.seqno, TOPIC, b"altered", good.signature)
    assert a.handle(Rpc(peer, "", publish=(altered,)), m.sim.now) == []
    assert a.counters["rejected_bad_signature"] == 2


def test_fanout_publisher_outside_the_topic_reaches_subscribers_and_expires() -> None:
    m = Mesh(12, subscribe=11)  # node 11 never subscribes
    m.run(3.0)
    pub = m.cores[11]
    mid = m.publish(11).mid
    m.run(2.0)
    assert m.delivered(mid) == [1] * 11 + [0]
    assert len(pub.fanout[TOPIC]) == pub.config.d
    m.run(pub.config.fanout_ttl_s + 2.0)
    assert TOPIC not in pub.fanout


def test_publish_without_topic_peers_is_held_then_released() -> None:
    k0, k1 = sim_key(5, 0), sim_key(5, 1)
    a, b = make_core(k0, 0), make_core(k1, 1)
    msg, fx = a.publish(TOPIC, b"early", 0.0)
    assert fx == [] and len(a.pending) == 1
    assert a.counters["publish_held_no_peers"] == 1
    b.subscribe(TOPIC, 0.0)
    assert a.add_peer(b.node_id, b.addr) == []  # a has no subscriptions to announce
    hello = b.add_peer(a.node_id, a.addr)
    assert isinstance(hello[0], Send) and hello[0].msg.subscribe == (TOPIC,)  # type: ignore[attr-defined]
    out = a.handle(hello[0].msg, 0.1)
    sent = [e for e in out if isinstance(e, Send)]
    assert sent and sent[0].msg.publish == (msg,)  # type: ignore[attr-defined]
    assert a.counters["publish_released"] == 1 and not a.pending
    got = b.handle(sent[0].msg, 0.2)
    assert any(isinstance(e, Notify) and e.event.message == msg for e in got)  # type: ignore[attr-defined]


def test_held_publish_expires_and_is_counted() -> None:
    a = make_core(sim_key(6, 0), 0)
    a.publish(TOPIC, b"nobody", 0.0)
    t = 0.0
    while t < a.config.pending_ttl_s + 2:
        t = a.next_deadline() or t + 1
        a.tick(t)
    assert not a.pending and a.counters["publish_dropped_no_peers"] == 1


def test_pending_queue_is_bounded_and_counts_what_it_drops() -> None:
    a = make_core(sim_key(6, 0), 0, PubSubConfig(max_pending=3))
    for k in range(5):
        a.publish(TOPIC, bytes([k]), 0.0)
    assert len(a.pending) == 3 and a.counters["publish_dropped_pending_full"] == 2


def test_graft_for_unsubscribed_topic_or_in_backoff_is_pruned() -> None:
    a, b = make_core(sim_key(7, 0), 0), make_core(sim_key(7, 1), 1)
    a.add_peer(b.node_id, b.addr)
    fx = a.handle(Rpc(b.node_id, b.addr, graft=(TOPIC,)), 0.0)
    assert fx[0].msg.prune == (TOPIC,)  # type: ignore[union-attr]
    a.subscribe(TOPIC, 0.0)
    a.handle(Rpc(b.node_id, b.addr, subscribe=(TOPIC,)), 0.0)
    a.handle(Rpc(b.node_id, b.addr, prune=(TOPIC,)), 0.0)  # b left a's mesh: backoff
    fx = a.handle(Rpc(b.node_id, b.addr, graft=(TOPIC,)), 1.0)
    assert fx[0].msg.prune == (TOPIC,)  # type: ignore[union-attr]
    assert a.counters["graft_refused_backoff"] == 1
    a.handle(Rpc(b.node_id, b.addr, graft=(TOPIC,)), 1.0 + a.config.prune_backoff_s)
    assert b.node_id in a.mesh[TOPIC]


def test_unsubscribe_prunes_the_mesh_and_dead_peers_are_forgotten() -> None:
    m = Mesh(10)
    m.run(3.0)
    a = m.cores[0]
    members = set(a.mesh[TOPIC])
    m.sim.inject(0, a.unsubscribe(TOPIC, m.sim.now))
    m.run(1.0)
    for c in m.cores[1:]:
        assert a.node_id not in c.mesh.get(TOPIC, set())
    victim = sorted(members)[0]
    a.remove_peer(victim)
    assert victim not in a.peers and all(victim not in s for s in a.topic_peers.values())


def test_idontwant_for_large_messages_stops_forwarding_to_that_peer() -> None:
    a, b, c = (make_core(sim_key(8, i), i) for i in range(3))
    for x in (a, b, c):
        x.subscribe(TOPIC, 0.0)
        for y in (a, b, c):
            if x is not y:
                x.add_peer(y.node_id, y.addr)
                x.handle(Rpc(y.node_id, y.addr, subscribe=(TOPIC,)), 0.0)
                x.handle(Rpc(y.node_id, y.addr, graft=(TOPIC,)), 0.0)
    big, _ = c.publish(TOPIC, bytes(2000), 0.0)
    out = a.handle(Rpc(c.node_id, c.addr, publish=(big,)), 0.1)
    # a tells b it has the message (IDONTWANT) and forwards it to b.
    kinds = [(e.dest, e.msg) for e in out if isinstance(e, Send)]
    assert any(d == b.node_id and m.idontwant == (big.mid,) for d, m in kinds)  # type: ignore[attr-defined]
    b.handle(Rpc(a.node_id, a.addr, idontwant=(big.mid,)), 0.1)
    out = b.handle(Rpc(c.node_id, c.addr, publish=(big,)), 0.15)
    assert not any(
        isinstance(e, Send) and e.dest == a.node_id and e.msg.publish  # type: ignore[attr-defined]
        for e in out
    )
    assert b.counters["forward_skipped_idontwant"] == 1


def test_older_peers_without_choke_or_idontwant_interoperate() -> None:
    old = PubSubConfig.for_version(1)
    m = Mesh(30, configs={i: old for i in range(0, 30, 2)})
    m.run(3.0)
    mids = [m.publish(k, bytes(1500)).mid for k in range(8)]
    m.run(4.0)
    for mid in mids:
        assert m.delivered(mid) == [1] * 30
    assert all(m.cores[i].counters.get("choked", 0) == 0 for i in range(0, 30, 2))


def test_seen_cache_is_bounded_and_counts_evictions() -> None:
    a = make_core(sim_key(9, 0), 0, PubSubConfig(max_seen=5, max_cached_messages=3))
    a.subscribe(TOPIC, 0.0)
    for k in range(8):
        a.publish(TOPIC, bytes([k]), 0.0)
    assert len(a.seen) == 5 and a.counters["seen_evicted_limit"] == 3
    assert len(a.mcache) == 3 and a.counters["mcache_refused_limit"] == 5


def test_peer_limit_refuses_and_counts() -> None:
    a = make_core(sim_key(10, 0), 0, PubSubConfig(max_peers=2))
    for i in range(1, 5):
        a.add_peer(sim_key(10, i).node_id, f"sim://{i}")
    assert len(a.peers) == 2 and a.counters["peer_refused_limit"] == 2
    stranger = sim_key(10, 9).node_id
    assert a.handle(Rpc(stranger, "sim://9", subscribe=(TOPIC,)), 0.0) == []
    assert a.counters["drop_unknown_peer"] == 1


def test_ihave_asks_only_for_unseen_ids_within_budget() -> None:
    a = make_core(sim_key(11, 0), 0, PubSubConfig(max_iwant_per_heartbeat=2))
    b = sim_key(11, 1).node_id
    a.subscribe(TOPIC, 0.0)
    a.add_peer(b, "sim://1")
    mine, _ = a.publish(TOPIC, b"seen", 0.0)
    ids = (mine.mid, (b, 1), (b, 2), (b, 3))
    fx = a.handle(Rpc(b, "sim://1", ihave=(IHave(TOPIC, ids),)), 0.0)
    assert fx[0].msg.iwant == ((b, 1), (b, 2))  # type: ignore[union-attr]
    assert a.counters["iwant_budget_exhausted"] == 1


@pytest.mark.parametrize("bad", ["", "x" * 300])
def test_bad_topics_are_refused_locally(bad: str) -> None:
    a = make_core(sim_key(12, 0), 0)
    with pytest.raises(ValueError):
        a.subscribe(bad, 0.0)
    with pytest.raises(ValueError):
        a.publish(bad, b"", 0.0)


def test_same_seed_same_trace() -> None:
    digests = []
    for _ in range(2):
        m = Mesh(15, seed=3, loss=0.05, trace=True)
        m.run(2.0)
        m.publish(0)
        m.run(2.0)
        digests.append(m.sim.trace_digest())
    assert digests[0] == digests[1]


def test_runs_are_identical_across_processes_with_different_hash_seeds() -> None:
    """Set iteration order depends on PYTHONHASHSEED; the core must not leak it."""
    import os
    import subprocess
    import sys

    code = (
        "from hyperion.sim.gossip_run import GossipExperiment as G;"
        "r = G(200, 4, messages=3, loss=0.05).run();"
        "print(r['duplicates_per_delivery'], r['reach99_s_p99'], r['sim_messages'])"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(h)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for h in (1, 2)
    }
    assert len(outs) == 1, outs
