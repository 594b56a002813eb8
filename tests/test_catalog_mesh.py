"""The object catalog inside MeshNode: peers from membership and node records, versions mixed."""

from __future__ import annotations

from hyperion.control.catalog import ADDED, CatalogChanged, Key
from hyperion.core import Notify, Send
from hyperion.sim.mesh_run import SimMesh, build_mesh

KEY: Key = ("hyperion.io/hyperionworkloads", "default", "web")


def started(n: int, until: float, **kw: object) -> SimMesh:
    m = build_mesh(n, **kw)  # type: ignore[arg-type]
    for i in range(n):
        m.start(i, 0.05 * i)
    m.sim.run(until)
    return m


def write(m: SimMesh, i: int, obj: dict[str, object] | None) -> None:
    change, fx = m.nodes[i].catalog_write(KEY, obj, m.sim.now)
    assert obj is None or (change is not None and change.key == KEY)
    m.sim.inject(i, fx)


def test_a_write_reaches_every_node_and_stats_are_prefixed() -> None:
    n = 8
    m = started(n, 4.0)
    assert all(node.catalog.stats()["peers"] == n - 1 for node in m.nodes)
    change, fx = m.nodes[3].catalog_write(KEY, {"spec": {"replicas": 2}}, m.sim.now)
    assert change is not None and change.type == ADDED
    assert fx[0] == Notify(CatalogChanged(change.rv))
    assert sum(isinstance(e, Send) for e in fx) == 3  # push_fanout
    m.sim.inject(3, fx)
    m.sim.run(m.sim.now + 2.0)
    for node in m.nodes:
        e = node.catalog.get(KEY)
        assert e is not None and e.obj == {"spec": {"replicas": 2}}
    assert len({node.catalog.digest() for node in m.nodes}) == 1
    st = m.nodes[0].stats()
    assert st["catalog_entries"] == 1 and st["catalog_rounds"] > 0
    assert st["catalog_rejected"] == 0 and st["catalog_dropped_not_speaking"] == 0
    # A delete reaches everyone too.
    write(m, 5, None)
    m.sim.run(m.sim.now + 2.0)
    assert all(node.catalog.get(KEY) is None for node in m.nodes)


def test_a_dead_member_stops_being_a_catalog_peer() -> None:
    n = 6
    m = started(n, 4.0)
    victim = m.keys[4].node_id
    m.sim.crash(4)
    m.sim.run(20.0)
    for i, node in enumerate(m.nodes):
        if i != 4:
            assert victim not in node.catalog.peers
            assert node.catalog.stats()["peers"] == n - 2


def test_version_1_nodes_get_no_catalog_traffic() -> None:
    n = 8
    versions = [1 if i % 2 else 2 for i in range(n)]
    m = started(n, 5.0, versions=versions, seed=5)
    write(m, 0, {"data": {"x": "1"}})
    m.sim.run(m.sim.now + 3.0)
    for i, node in enumerate(m.nodes):
        st = node.stats()
        if versions[i] == 1:
            assert st["catalog_peers"] == 0 and st["catalog_digests_received"] == 0
            assert st["catalog_dropped_not_speaking"] == 0 and node.catalog.get(KEY) is None
        else:
            assert st["catalog_peers"] == n // 2 - 1
            assert node.catalog.get(KEY) is not None
