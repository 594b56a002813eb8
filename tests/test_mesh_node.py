"""The composed machine plane on the simulator: records everywhere, liveness, versions."""

from __future__ import annotations

from hyperion.mesh.crypto import signed_record
from hyperion.mesh.node import NODES_TOPIC, RecordEvent
from hyperion.mesh.records import NodeRecord, parse_selector
from hyperion.net import codec
from hyperion.sim.dht_run import sim_key
from hyperion.sim.mesh_run import SimMesh, build_mesh


def started(n: int, until: float, **kw: object) -> SimMesh:
    """A mesh of ``n`` nodes started 50 ms apart, run until ``until``."""
    m = build_mesh(n, **kw)  # type: ignore[arg-type]
    for i in range(n):
        m.start(i, 0.05 * i)
    m.sim.run(until)
    return m


def test_every_node_learns_every_record_and_the_dht_holds_them() -> None:
    n = 16
    m = started(n, 6.0)
    everyone = {k.node_id for k in m.keys}
    for i in range(n):
        assert m.knows(i) == everyone
    # Each record is stored in the DHT (k = 20 > n: at every node that answered).
    for k in m.keys:
        holders = sum(1 for node in m.nodes if k.node_id in node.dht.records)
        assert holders >= n // 2
    assert any(ev.via == "gossip" for _, _, ev in m.events)


def test_a_late_joiner_is_visible_everywhere_within_a_second() -> None:
    n = 12
    m = build_mesh(n)
    for i in range(n - 1):
        m.start(i, 0.05 * i)
    m.sim.run(5.0)
    m.start(n - 1, 5.0)
    m.sim.run(6.0)
    newcomer = m.keys[n - 1].node_id
    seen = [t for t, i, ev in m.events if ev.node_id == newcomer and ev.record is not None]
    assert len(seen) == n  # every node, the newcomer itself included
    assert max(seen) - 5.0 < 1.0
    # And the newcomer learned everyone else's record.
    assert m.knows(n - 1) == {k.node_id for k in m.keys}


def test_dead_members_leave_the_directory() -> None:
    n = 10
    m = started(n, 4.0)
    victim = m.keys[7].node_id
    m.sim.crash(7)
    m.sim.run(20.0)
    for i in range(n):
        if i != 7:
            assert victim not in m.knows(i)
            assert all(c.node_id != victim for c in m.nodes[i].dht.contacts())
            assert victim not in m.nodes[i].pubsub.peers


def test_record_changes_supersede_older_versions_everywhere() -> None:
    n = 8
    m = started(n, 4.0)
    node = m.nodes[2]
    before = node.directory[node.node_id].version
    m.sim.inject(2, node.set_record(b"changed", m.sim.now))
    m.sim.run(m.sim.now + 2.0)
    for other in m.nodes:
        rec = other.directory[node.node_id]
        assert rec.version > before and rec.value == b"changed"


def test_forged_and_stale_announcements_are_refused_and_counted() -> None:
    n = 6
    m = started(n, 4.0)
    target = m.nodes[0]
    victim = m.keys[1]
    # A record for node 1 signed by node 3: not its author.
    forged = signed_record(m.keys[3], b"evil", 10**15, 10**9)
    forged = type(forged)(
        victim.node_id, b"evil", victim.node_id, forged.author_key, 10**15, 10**9, forged.signature
    )
    msg, fx = m.nodes[3].pubsub.publish(NODES_TOPIC, codec.encode_record(forged), m.sim.now)
    m.sim.inject(3, fx)
    # An old version of node 2's record, properly signed.
    stale = signed_record(m.keys[2], b"old", 1, 10**9)
    _, fx = m.nodes[2].pubsub.publish(NODES_TOPIC, codec.encode_record(stale), m.sim.now)
    m.sim.inject(2, fx)
    m.sim.run(m.sim.now + 2.0)
    assert target.directory[victim.node_id].value != b"evil"
    assert target.directory[m.keys[2].node_id].value != b"old"
    assert target.counters.get("record_refused_gossip", 0) >= 1
    assert target.counters.get("record_not_newer", 0) >= 1
    assert msg.origin == m.keys[3].node_id


def test_mixed_protocol_versions_interoperate() -> None:
    n = 12
    versions = [1 if i % 2 else 2 for i in range(n)]
    m = started(n, 6.0, versions=versions, seed=5)
    everyone = {k.node_id for k in m.keys}
    for i in range(n):
        assert m.knows(i) == everyone
    new, old = m.nodes[0], m.nodes[1]
    v2_id, v1_id = m.keys[0].node_id, m.keys[1].node_id
    # The newer record field: newer readers see it, older readers drop it unharmed.
    assert NodeRecord.from_bytes(new.directory[v2_id].value, 2).egress_price_per_gb == 0.09
    assert NodeRecord.from_bytes(old.directory[v2_id].value, 1).egress_price_per_gb == 0.0
    # Its absence in an older node's record reads as "unknown" on a newer node.
    assert NodeRecord.from_bytes(new.directory[v1_id].value, 2).egress_price_per_gb == 0.0
    # Version-2 pub/sub fields never reach version-1 nodes; v2 nodes choke each other only.
    assert all(m.nodes[i].pubsub.counters.get("choked", 0) == 0 for i in range(1, n, 2))
    assert all(not m.nodes[i].pubsub.choked_by.get(NODES_TOPIC) for i in range(1, n, 2))
    # Selecting by software version over the records a node knows.
    sel = parse_selector("version>=0.2")
    recs = [NodeRecord.from_bytes(r.value, 2) for r in new.directory.values()]
    assert {r.node_id for r in recs if sel.matches(r)} == {
        m.keys[i].node_id for i in range(0, n, 2)
    }
    assert {r.node_id for r in recs if parse_selector("protocol>=2").matches(r)} == {
        m.keys[i].node_id for i in range(0, n, 2)
    }


def test_record_events_are_notified_for_each_change() -> None:
    m = build_mesh(4)
    for i in range(4):
        m.start(i, 0.0)
    m.sim.run(3.0)
    kinds = {ev.via for _, _, ev in m.events}
    assert "self" in kinds and kinds & {"gossip", "dht"}
    assert all(isinstance(ev, RecordEvent) for _, _, ev in m.events)
    assert sim_key(1, 0).node_id == m.keys[0].node_id
