"""Object catalog core: LWW on HLCs, tombstones, rv and the change log, anti-entropy.

Cores are driven directly with explicit ``now`` over a small in-memory network with
``cut``, ``isolate``, ``drop`` and ``stabilize`` (STYLE §9).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.control.catalog import (
    ADDED,
    DELETED,
    MODIFIED,
    Catalog,
    CatalogChanged,
    CatalogConfig,
    CatalogDelta,
    CatalogDigest,
    CatalogItem,
    Expired,
    Key,
    PeerSet,
    entry_hash,
)
from hyperion.control.hlc import Hlc, Timestamp
from hyperion.core import Effect, Notify, Send

K1: Key = ("/configmaps", "default", "one")
K2: Key = ("apps/deployments", "default", "web")


def obj(v: object) -> dict[str, Any]:
    return {"kind": "ConfigMap", "data": {"v": v}}


class Net:
    """n catalogs, every pair peered; messages delivered FIFO with no delay."""

    def __init__(
        self,
        n: int,
        *,
        seed: int = 1,
        config: CatalogConfig | None = None,
        offsets: dict[int, float] | None = None,
    ) -> None:
        offsets = offsets or {}
        self.cores = [
            Catalog(
                f"n{i}",
                f"mem://{i}",
                rng=random.Random(seed * 1000 + i),
                now=0.0,
                wall_offset=1_700_000_000.0 + offsets.get(i, 0.0),
                config=config,
            )
            for i in range(n)
        ]
        for a in self.cores:
            for b in self.cores:
                if a is not b:
                    a.peer_up(b.node_id, b.addr)
        self.now = 0.0
        self.rng = random.Random(seed)
        self.loss = 0.0
        self.group = [0] * n
        self.queue: deque[tuple[int, Send]] = deque()
        self.sent: list[object] = []
        self.dropped = 0
        self.events: list[tuple[int, object]] = []

    # --- faults
    def cut(self, side: list[int]) -> None:
        for i in side:
            self.group[i] = 1

    def isolate(self, i: int) -> None:
        self.group[i] = max(self.group) + 1

    def heal(self) -> None:
        self.group = [0] * len(self.group)

    def drop(self, p: float) -> None:
        self.loss = p

    # --- driving
    def out(self, i: int, effects: list[Effect]) -> None:
        """Sends are cut or lost when sent (as in the simulator), else queued."""
        for e in effects:
            if isinstance(e, Send):
                self.sent.append(e.msg)
                j = int(e.addr.removeprefix("mem://"))
                if self.group[i] != self.group[j] or (self.loss and self.rng.random() < self.loss):
                    self.dropped += 1
                else:
                    self.queue.append((j, e))
            else:
                self.events.append((i, e.event))

    def write(self, i: int, key: Key, value: dict[str, Any] | None) -> Any:
        change, fx = self.cores[i].write(key, value, self.now)
        self.out(i, fx)
        return change

    def deliver(self) -> None:
        while self.queue:
            j, s = self.queue.popleft()
            self.out(j, self.cores[j].handle(s.msg, self.now))

    def step(self, dt: float = 0.05) -> None:
        self.now += dt
        for i, c in enumerate(self.cores):
            d = c.next_deadline()
            if d is not None and d <= self.now:
                self.out(i, c.tick(self.now))
        self.deliver()

    def identical(self) -> bool:
        return len({c.digest() for c in self.cores}) == 1

    def stabilize(self, limit_s: float = 30.0) -> float:
        """Run until every digest is equal; the simulated seconds it took."""
        self.deliver()
        t0 = self.now
        while not self.identical():
            assert self.now - t0 < limit_s, "did not converge"
            self.step()
        return self.now - t0


def core(node: str = "n0", **kw: Any) -> Catalog:
    return Catalog(node, f"mem://{node}", rng=random.Random(7), now=0.0, **kw)


# ------------------------------------------------------------------------ HLC


def test_hlc_is_monotonic_when_the_wall_clock_stalls_or_goes_back() -> None:
    c = Hlc("a")
    stamps = [c.now(w) for w in (10.0, 10.0, 9.0, 10.0005, 11.0)]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert stamps[0] == Timestamp(10_000, 0, "a")
    assert stamps[2] == Timestamp(10_000, 2, "a")  # clock went back: counted on
    assert stamps[4] == Timestamp(11_000, 0, "a")


def test_hlc_observe_makes_the_next_local_stamp_later_and_counts_skew() -> None:
    c = Hlc("a", max_skew_ms=1000)
    remote = Timestamp(50_000, 7, "z")  # 40 s ahead of our wall clock
    c.observe(remote, 10.0)
    assert c.skewed == 1 and c.max_ahead_ms == 40_000
    mine = c.now(10.0)
    assert mine > remote and mine == Timestamp(50_000, 8, "a")
    c.observe(Timestamp(10_500, 0, "z"), 10.0)  # within the bound: not counted
    assert c.skewed == 1


# ------------------------------------------------------------- local writes


def test_write_get_list_and_rv() -> None:
    c = core(rv_start=1000)
    assert c.rv == 1000
    ch, fx = c.write(K1, obj(1), 1.0)
    assert ch is not None and (ch.rv, ch.type, ch.key) == (1001, ADDED, K1)
    assert fx == [Notify(CatalogChanged(1001))]  # no peers: nothing to push
    c.write(("/configmaps", "kube-system", "a"), obj(2), 1.0)
    c.write(K2, obj(3), 1.0)
    ch, _ = c.write(K1, obj(4), 2.0)
    assert ch is not None and (ch.rv, ch.type) == (1004, MODIFIED)
    e = c.get(K1)
    assert e is not None and e.obj == obj(4) and e.rv == 1004
    assert [e.key for e in c.list("/configmaps")] == sorted(
        [K1, ("/configmaps", "kube-system", "a")]
    )
    assert [e.key for e in c.list("/configmaps", "default")] == [K1]
    assert c.list("/pods") == []
    ch, fx = c.write(K1, None, 3.0)
    assert ch is not None and ch.type == DELETED and ch.obj == obj(4) and ch.rv == 1005
    assert c.get(K1) is None and c.entry(K1) is not None and c.entry(K1).obj is None  # type: ignore[union-attr]
    assert c.write(K1, None, 4.0) == (None, [])  # already deleted
    assert c.write(("/pods", "x", "never"), None, 4.0) == (None, [])
    assert c.stats()["entries"] == 2 and c.stats()["tombstones"] == 1
    # Writing over a tombstone adds the object again.
    ch, _ = c.write(K1, obj(5), 5.0)
    assert ch is not None and ch.type == ADDED and c.stats()["tombstones"] == 0


def test_write_deep_copies_and_validates() -> None:
    c = core()
    o = {"spec": {"replicas": 1, "tags": ["a"]}}
    c.write(K1, o, 1.0)
    o["spec"]["replicas"] = 99
    o["spec"]["tags"].append("b")  # type: ignore[attr-defined]
    assert c.get(K1).obj == {"spec": {"replicas": 1, "tags": ["a"]}}  # type: ignore[union-attr]
    for bad_key in [("pods", "", "x"), ("/pods", "", ""), ("/pods", "x"), ("/pods", "a\x00", "b")]:
        with pytest.raises(ValueError):
            c.write(bad_key, obj(1), 1.0)  # type: ignore[arg-type]
    for bad in [{"x": float("nan")}, {"x": object()}, ["not", "a", "dict"], {"x": "y" * (1 << 20)}]:
        with pytest.raises(ValueError):
            c.write(K1, bad, 1.0)  # type: ignore[arg-type]
    assert c.rv == 1


def test_a_write_is_pushed_to_push_fanout_peers_after_the_notify() -> None:
    c = core(config=CatalogConfig(push_fanout=3))
    for i in range(1, 6):
        c.peer_up(f"n{i}", f"mem://n{i}")
    c.peer_up("n0", "mem://n0")  # itself: ignored
    _, fx = c.write(K1, obj(1), 1.0)
    assert fx[0] == Notify(CatalogChanged(1))
    sends = [e for e in fx[1:] if isinstance(e, Send)]
    assert len(sends) == 3 == len({s.dest for s in sends}) and "n0" not in {s.dest for s in sends}
    msg = sends[0].msg
    assert isinstance(msg, CatalogDelta) and not msg.reply and msg.items[0].obj == obj(1)
    c.peer_down("n3")
    assert c.stats()["peers"] == 4


# ------------------------------------------------------------------------- LWW


def test_concurrent_writes_converge_on_the_larger_timestamp() -> None:
    net = Net(3)
    net.cut([1])  # n0 and n2 on one side, n1 on the other
    net.write(0, K1, obj("from n0"))
    net.write(1, K1, obj("from n1"))  # same millisecond: the node id breaks the tie
    net.now += 0.5
    net.write(2, K2, obj("n2 later"))
    net.write(1, K2, obj("n1 earlier"))  # same ms as n2's: n2 > n1
    net.deliver()
    net.heal()
    net.stabilize()
    for c in net.cores:
        assert c.get(K1).obj == obj("from n1")  # type: ignore[union-attr]
        assert c.get(K2).obj == obj("n2 later")  # type: ignore[union-attr]
    assert net.cores[1].stats()["ignored_older"] >= 0
    assert sum(c.stats()["ignored_older"] for c in net.cores) >= 1


def test_a_later_write_wins_regardless_of_node_id() -> None:
    net = Net(2)
    net.isolate(1)
    net.write(1, K1, obj("early, big id"))
    net.now += 0.010
    net.write(0, K1, obj("late, small id"))
    net.heal()
    net.stabilize()
    assert all(c.get(K1).obj == obj("late, small id") for c in net.cores)  # type: ignore[union-attr]


def test_delete_vs_concurrent_update() -> None:
    # The later of the two wins: here the update.
    net = Net(2)
    net.write(0, K1, obj(1))
    net.stabilize()
    net.isolate(1)
    net.write(0, K1, None)
    net.now += 0.001
    net.write(1, K1, obj(2))
    net.heal()
    net.stabilize()
    assert all(c.get(K1).obj == obj(2) for c in net.cores)  # type: ignore[union-attr]
    # n0 sees the object come back (ADDED over its tombstone).
    assert [ch.type for ch in net.cores[0].changes_since(0)] == [ADDED, DELETED, ADDED]
    # And the other way round: the delete is later.
    net.isolate(1)
    net.write(1, K1, obj(3))
    net.now += 0.001
    net.write(0, K1, None)
    net.heal()
    net.stabilize()
    assert all(c.get(K1) is None and c.entry(K1) is not None for c in net.cores)
    last = net.cores[1].changes_since(net.cores[1].rv - 1)
    assert last[0].type == DELETED and last[0].obj == obj(3)  # the last live object


def test_a_tombstone_stops_an_older_write_from_resurrecting_the_object() -> None:
    net = Net(3)
    net.write(0, K1, obj(1))
    net.stabilize()
    net.isolate(2)
    net.write(2, K1, obj("stale"))  # made on the cut-off node...
    net.now += 0.5
    net.write(0, K1, None)  # ...before this delete
    net.deliver()
    net.now += 5.0
    net.heal()
    net.stabilize()
    assert all(c.get(K1) is None for c in net.cores)
    assert net.cores[2].changes_since(net.cores[2].rv - 1)[0].type == DELETED


def test_a_tombstone_for_a_key_never_seen_is_stored_silently() -> None:
    net = Net(2)
    net.isolate(1)
    net.write(0, K1, obj(1))
    net.write(0, K1, None)
    rv1 = net.cores[1].rv
    net.heal()
    net.stabilize()
    b = net.cores[1]
    assert b.rv == rv1 and b.get(K1) is None and b.entry(K1) is not None
    assert b.stats()["tombstones"] == 1


def test_tombstones_are_collected_after_their_ttl() -> None:
    net = Net(2, config=CatalogConfig(tombstone_ttl_s=10.0))
    net.write(0, K1, obj(1))
    net.write(0, K2, obj(2))
    net.stabilize()
    net.write(0, K1, None)
    net.stabilize()
    assert all(c.stats()["tombstones"] == 1 for c in net.cores)
    before = net.cores[0].digest()
    net.now += 9.0
    net.step()
    assert net.cores[0].digest() == before  # not yet
    net.now += 1.5
    net.step()
    for c in net.cores:
        assert c.entry(K1) is None and c.stats()["tombstones_collected"] == 1
        assert c.stats()["tombstones"] == 0 and c.get(K2) is not None
    assert net.identical()
    # A peer still holding the expired tombstone cannot plant it again.
    late = net.cores[0]
    stale = CatalogItem(K1, Timestamp(1_700_000_000_000, 0, "n9"), None)
    fx = late.handle(CatalogDelta("n9", "mem://n9", False, (stale,)), net.now)
    assert fx == [] and late.entry(K1) is None
    assert late.stats()["ignored_expired_tombstone"] == 1
    assert late.next_deadline() is not None


EV = ("/events", "default", "web.1")


def test_expiring_objects_become_the_same_tombstone_on_every_node() -> None:
    net = Net(3, config=CatalogConfig(expire_s={"/events": 60.0}, tombstone_ttl_s=100.0))
    net.write(0, EV, obj("scheduled"))
    net.write(0, K1, obj(1))  # a kind that does not expire
    net.stabilize()
    net.now += 30.0
    net.write(1, EV, obj("scheduled x2"))  # an update restarts the hour
    net.stabilize()
    net.now += 45.0
    net.step()
    assert all(c.get(EV) is not None for c in net.cores)  # 45 s after the update
    net.events.clear()
    net.now += 16.0
    net.step()
    for c in net.cores:
        e = c.entry(EV)
        assert e is not None and e.obj is None and c.get(K1) is not None
        assert c.stats()["expired"] == 1 and c.stats()["tombstones"] == 1
        assert c.changes_since(c.rv - 1)[0].type == "DELETED"
    assert net.identical() and net.dropped == 0
    assert sum(isinstance(ev, CatalogChanged) for _, ev in net.events) == 3
    # a write made after the expiry wins; the tombstone is collected in its turn
    net.write(2, EV, obj("again"))
    net.stabilize()
    assert all(c.get(EV) is not None for c in net.cores)


def test_a_version_that_arrives_expired_is_taken_as_its_tombstone() -> None:
    cfg = CatalogConfig(expire_s={"/events": 60.0}, tombstone_ttl_s=100.0)
    net = Net(2, config=cfg)
    net.isolate(1)
    net.write(0, EV, obj(1))
    net.now += 61.0
    net.step()  # node 0 expired it; node 1 never saw it live
    late = net.cores[1]
    ts = net.cores[0].entry(EV)
    assert ts is not None and ts.obj is None
    old = CatalogItem(EV, Timestamp(int((1_700_000_000.0 + 0.0) * 1000), 0, "n0"), obj(1))
    fx = late.handle(CatalogDelta("n0", "mem://0", False, (old,)), net.now)
    assert fx == [] and late.get(EV) is None and late.stats()["expired"] == 1
    net.heal()
    net.stabilize()
    # and once even its tombstone is past the tombstone TTL, it is not stored at all
    net.now += 200.0
    net.step()
    fresh = core("n5", wall_offset=1_700_000_000.0, config=cfg)
    fresh.handle(CatalogDelta("n0", "mem://0", False, (old,)), net.now)
    assert fresh.entry(EV) is None and fresh.stats()["ignored_expired_tombstone"] == 1


def test_expire_s_must_be_positive() -> None:
    with pytest.raises(ValueError, match="expire_s"):
        CatalogConfig(expire_s={"/events": 0.0})


# -------------------------------------------------------------- rv and watches


def test_rv_counts_applied_changes_and_changes_since_expires() -> None:
    net = Net(2, config=CatalogConfig(log_max=3))
    a, b = net.cores
    for v in range(4):
        net.write(0, K1, obj(v))
    assert a.rv == 4 and [ch.rv for ch in a.changes_since(2)] == [3, 4]
    assert a.changes_since(4) == [] and a.changes_since(99) == []
    net.write(0, K2, obj("x"))
    net.write(0, K2, obj("y"))
    net.write(0, K2, obj("z"))  # 7 changes: trimmed to the last 3 once past 2 x 3
    assert [ch.rv for ch in a.changes_since(4)] == [5, 6, 7]
    with pytest.raises(Expired):
        a.changes_since(0)
    net.stabilize()
    # b applied what it got: only winners bump its rv (pushes may arrive in any order).
    assert b.rv >= 2 and b.get(K2).obj == obj("z")  # type: ignore[union-attr]
    seen = [ch.rv for ch in b.changes_since(b.rv - 2)]
    assert seen == [b.rv - 1, b.rv]
    rv = b.rv
    net.step()
    net.step()
    assert b.rv == rv  # in sync: nothing applied


def test_rv_start_keeps_a_restarted_node_monotonic() -> None:
    c = core(rv_start=5000, config=CatalogConfig(log_max=10))
    with pytest.raises(Expired):
        c.changes_since(4000)  # from before the restart
    assert c.changes_since(5000) == []
    c.write(K1, obj(1), 1.0)
    assert [ch.rv for ch in c.changes_since(5000)] == [5001]
    with pytest.raises(Expired):
        c.changes_since(4999)


def test_catalog_changed_is_notified_once_per_call_that_applied_changes() -> None:
    net = Net(2)
    net.isolate(1)
    for v in range(3):
        net.write(0, (K1[0], K1[1], f"k{v}"), obj(v))
    net.heal()
    net.events.clear()
    net.stabilize()
    got = [ev for i, ev in net.events if i == 1]
    assert got and all(isinstance(ev, CatalogChanged) for ev in got)
    assert got[-1] == CatalogChanged(net.cores[1].rv) and net.cores[1].rv == 3


def test_local_write_after_seeing_a_remote_one_wins_even_with_a_slow_clock() -> None:
    # n1's wall clock is 30 s ahead of n0's.
    net = Net(2, offsets={1: 30.0})
    net.write(1, K1, obj("fast clock"))
    net.stabilize()
    assert net.cores[0].get(K1).obj == obj("fast clock")  # type: ignore[union-attr]
    net.now += 1.0
    net.write(0, K1, obj("slow clock, but later"))
    net.stabilize()
    assert all(c.get(K1).obj == obj("slow clock, but later") for c in net.cores)  # type: ignore[union-attr]
    assert net.cores[0].stats()["hlc_skewed"] == 0  # 30 s is under the default bound
    # A clock further ahead than max_skew_ms is merged but counted.
    net2 = Net(2, offsets={1: 120.0})
    net2.write(1, K1, obj("way ahead"))
    net2.stabilize()
    assert net2.cores[0].stats()["hlc_skewed"] >= 1
    net2.write(0, K1, obj("mine"))
    net2.stabilize()
    assert all(c.get(K1).obj == obj("mine") for c in net2.cores)  # type: ignore[union-attr]


# -------------------------------------------------------------- anti-entropy


def lww(writes: list[tuple[Key, Timestamp, dict[str, Any] | None]]) -> dict[Key, object]:
    best: dict[Key, tuple[Timestamp, object]] = {}
    for key, ts, o in writes:
        if key not in best or ts > best[key][0]:
            best[key] = (ts, o)
    return {k: v for k, (_, v) in best.items()}


def test_a_healed_partition_converges_to_the_lww_state() -> None:
    n = 8
    net = Net(n, seed=3)
    rng = random.Random(3)
    keys = [("/configmaps", "default", f"k{i}") for i in range(12)]
    writes: list[tuple[Key, Timestamp, dict[str, Any] | None]] = []

    def burst(count: int) -> None:
        for _ in range(count):
            i = rng.randrange(n)
            key = rng.choice(keys)
            value = None if rng.random() < 0.25 else obj(rng.random())
            net.write(i, key, value)
            e = net.cores[i].entry(key)
            if e is not None and e.rv == net.cores[i].rv and (value is None) == (e.obj is None):
                writes.append((key, e.ts, value))
            net.step(0.01)

    burst(30)
    net.stabilize()
    net.cut(list(range(n // 2)))
    burst(80)
    for _ in range(40):
        net.step()
    assert not net.identical()
    net.heal()
    took = net.stabilize()
    assert took < 5.0
    want = lww(writes)
    for c in net.cores:
        got = {k: (c.get(k).obj if c.get(k) else None) for k in want}  # type: ignore[union-attr]
        assert got == want


def test_lost_messages_only_slow_convergence() -> None:
    net = Net(6, seed=4)
    net.drop(0.3)
    for v in range(20):
        net.write(v % 6, ("/configmaps", "default", f"k{v % 7}"), obj(v))
        net.step(0.01)
    net.stabilize(limit_s=60.0)
    assert net.dropped > 0


def test_in_sync_rounds_cost_one_message() -> None:
    net = Net(4)
    net.write(0, K1, obj(1))
    net.stabilize()
    net.sent.clear()
    for _ in range(20):
        net.step()
    assert net.sent and all(isinstance(m, CatalogDigest) for m in net.sent)
    assert all(len(m.buckets) == 64 for m in net.sent)  # type: ignore[attr-defined]
    # Two empty catalogs exchange an empty digest.
    e = Net(2)
    for _ in range(10):
        e.step()
    assert e.sent and all(m.buckets == () for m in e.sent)  # type: ignore[attr-defined]


def test_an_exchange_that_differs_is_three_messages() -> None:
    a, b = core("a"), core("b")
    a.write(K1, obj("a only"), 1.0)
    b.write(K2, obj("b only"), 1.0)
    dig = CatalogDigest("a", "mem://a", a._bucket_vector())
    [reply] = b.handle(dig, 2.0)
    assert isinstance(reply, Send) and reply.dest == "a"
    r = reply.msg
    assert isinstance(r, CatalogDelta) and r.reply and [it.key for it in r.items] == [K2]
    fx = a.handle(r, 2.0)
    assert fx[0] == Notify(CatalogChanged(2))
    [back] = [e for e in fx if isinstance(e, Send)]
    assert isinstance(back.msg, CatalogDelta) and [it.key for it in back.msg.items] == [K1]
    assert not back.msg.reply
    assert b.handle(back.msg, 2.0) == [Notify(CatalogChanged(2))]
    assert a.digest() == b.digest()
    assert a.handle(CatalogDigest("b", "mem://b", b._bucket_vector()), 3.0) == []


def test_deltas_are_bounded_and_the_rest_follows() -> None:
    cfg = CatalogConfig(max_delta_items=3, max_delta_bytes=2000, max_summary=10)
    net = Net(2, config=cfg)
    net.isolate(1)
    for v in range(40):
        net.write(0, ("/configmaps", "default", f"k{v}"), obj(v))
        net.write(1, ("/configmaps", "other", f"k{v}"), obj(v))
    big = {"data": "x" * 5000}  # larger than the byte budget: still travels alone
    net.write(0, K2, big)
    net.queue.clear()
    net.heal()
    net.stabilize(limit_s=60.0)
    deltas = [m for m in net.sent if isinstance(m, CatalogDelta)]
    assert deltas and all(len(m.items) <= 3 for m in deltas)
    assert all(len(m.items) + len(m.summary) <= 10 or len(m.buckets) <= 1 for m in deltas)
    for m in deltas:
        if len(m.items) > 1:
            assert sum(it.nbytes for it in m.items) <= 2000
    st = net.cores[0].stats()
    assert st["deferred_items"] > 0 and st["deferred_buckets"] > 0
    assert net.cores[1].get(K2).obj == big  # type: ignore[union-attr]
    assert net.cores[1].stats()["entries"] == 81


def test_malformed_messages_are_counted_not_raised() -> None:
    c = core(config=CatalogConfig(buckets=8))
    c.write(K1, obj(1), 1.0)
    ts = Timestamp(1, 0, "x")
    bad: list[object] = [
        object(),
        "digest",
        CatalogDigest("x", "mem://x", (1, 2, 3)),  # wrong bucket count
        CatalogDigest("x", "mem://x", 5),  # type: ignore[arg-type]
        CatalogDelta("x", "mem://x", False, ("not an item", None, (K2, ts, None))),  # type: ignore[arg-type]
        CatalogDelta("x", "mem://x", True, (), (99, -1, "b"), ()),  # type: ignore[arg-type]
        CatalogDelta("x", "mem://x", True, (), (), (("k",), (K2, "ts"))),  # type: ignore[arg-type]
        CatalogDelta("x", "mem://x", True, None, (), ()),  # type: ignore[arg-type]
    ]
    for m in bad:
        assert c.handle(m, 2.0) == []
    st = c.stats()
    assert st["rejected"] == 2 + 1 + 1 + 3 + 3 + 2 + 1
    assert st["rejected_unknown_message"] == 2 and st["rejected_bucket_count"] == 1
    assert st["rejected_item"] == 3 and st["rejected_bucket"] == 3
    assert st["rejected_summary"] == 2 and st["rejected_shape"] == 2
    assert c.rv == 1 and c.get(K2) is None
    # A digest without a reply address cannot be answered: counted too.
    assert c.handle(CatalogDigest("x", "", (0,) * 8), 2.0) == []
    assert c.stats()["rejected_no_addr"] == 1
    # A version checks its own shape: a malformed one cannot even be made.
    for args in [(("a", "b"), ts, None), (K2, (1, 0, "x"), None), (K2, ts, ["list"])]:
        with pytest.raises(TypeError):
            CatalogItem(*args)  # type: ignore[arg-type]


def test_digest_is_order_independent_and_counts_tombstones() -> None:
    ts1, ts2 = Timestamp(1000, 0, "a"), Timestamp(2000, 0, "b")
    a, b = core("a"), core("b")
    items = (CatalogItem(K1, ts1, obj(1)), CatalogItem(K2, ts2, None))
    a.handle(CatalogDelta("x", "", False, items), 1.0)
    b.handle(CatalogDelta("x", "", False, items[::-1]), 1.0)
    assert a.digest() == b.digest()
    want = entry_hash(K1, ts1, False) ^ entry_hash(K2, ts2, True)
    assert a.digest() == want.to_bytes(8, "big")
    assert entry_hash(K2, ts2, False) != entry_hash(K2, ts2, True)


def test_peer_set_picks_distinct_peers_other_than_the_caller() -> None:
    ps = PeerSet()
    for i in range(5):
        ps.add(f"p{i}", f"a{i}")
    ps.remove("p1")
    ps.remove("nobody")
    ps.add("p2", "a2-new")
    rng = random.Random(1)
    for _ in range(50):
        got = ps.pick(rng, 3, "p0")
        assert len(got) == 3 == len(set(got)) and all(p != "p0" for p, _ in got)
    assert sorted(ps.pick(rng, 10, "p0")) == [("p2", "a2-new"), ("p3", "a3"), ("p4", "a4")]
    assert ps.others("p0") == 3 and ps.others("zz") == 4
    assert PeerSet().pick(rng, 3, "x") == []


def test_a_derived_write_loses_to_a_concurrent_delete_even_when_later() -> None:
    """A controller's status update (``after=`` the version it read) never undoes a
    delete made elsewhere, even one stamped before it in real time."""
    net = Net(2)
    net.write(0, K1, obj(1))
    net.stabilize()
    read = net.cores[1].get(K1)
    assert read is not None
    net.isolate(1)
    net.write(0, K1, None)  # the user deletes on n0
    net.now += 0.5  # n1's status write comes later in real time
    change, _ = net.cores[1].write(K1, obj("status"), net.now, after=read.ts)
    assert change is not None  # applied locally: n1 had not seen the delete
    net.heal()
    net.stabilize()
    assert all(c.get(K1) is None for c in net.cores)  # the delete stands everywhere


def test_a_derived_write_of_a_stale_version_is_not_applied() -> None:
    c = core()
    c.write(K1, obj(1), 0.0)
    old = c.get(K1)
    assert old is not None
    c.write(K1, obj(2), 0.1)
    assert c.write(K1, obj("status"), 0.2, after=old.ts) == (None, [])
    assert c.get(K1).obj == obj(2)  # type: ignore[union-attr]
    assert c.stats()["derived_writes_stale"] == 1


@settings(max_examples=200, deadline=None)
@given(
    skew=st.lists(st.floats(-5.0, 5.0), min_size=3, max_size=3),
    gap=st.floats(0.0, 0.2),
    status_first=st.booleans(),
)
def test_a_scale_is_never_lost_to_a_status_write_it_races(
    skew: list[float], gap: float, status_first: bool
) -> None:
    """``kubectl scale`` on one node racing the custodian's status write on another:
    whatever the nodes' clock skews and whichever is made first in real time, the
    scale survives everywhere (the status write, derived from the version both read,
    is the one that gives way and is recomputed by the custodian later). The custodian
    has the larger node id, so an exact tie of stamps would go its way."""
    net = Net(3, offsets=dict(enumerate(skew)))
    net.write(0, K1, {"spec": {"replicas": 1}})
    net.stabilize()
    read = net.cores[2].get(K1)
    assert read is not None and net.cores[1].get(K1) is not None
    net.cut([2])  # n2 (custodian) and n1 (user) do not hear each other yet
    status = {"spec": {"replicas": 1}, "status": {"replicas": 1}}

    def custodian() -> None:
        change, fx = net.cores[2].write(K1, status, net.now, after=read.ts)
        assert change is not None  # applied locally: n2 had not seen the scale
        net.out(2, fx)

    if status_first:
        custodian()
    net.now += gap
    net.write(1, K1, {"spec": {"replicas": 5}})
    if not status_first:
        custodian()
    net.heal()
    net.stabilize()
    for c in net.cores:
        got = c.get(K1)
        assert got is not None and got.obj == {"spec": {"replicas": 5}}
