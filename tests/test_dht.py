"""Kademlia core driven directly (explicit ``now``), plus a small simulated run."""

from __future__ import annotations

import hashlib
import random

from hyperion.core import Notify, Send
from hyperion.mesh.crypto import node_record_policy, signed_record, verify_record
from hyperion.mesh.dht import (
    ID_BITS,
    Contact,
    Dht,
    DhtConfig,
    FindNode,
    FindValue,
    LookupDone,
    Nodes,
    Store,
    StoreAck,
    bucket_index,
)
from hyperion.sim.dht_run import DhtExperiment, sim_key


def hid(i: int) -> str:
    return hashlib.sha256(b"%d" % i).hexdigest()[:40]


def make(node_id: str, **kw: object) -> Dht:
    return Dht(
        node_id,
        f"a-{node_id[:6]}",
        rng=random.Random(1),
        verify=verify_record,
        may_write=node_record_policy,
        **kw,
    )  # type: ignore[arg-type]


def test_buckets_keep_old_contacts_and_promote_replacements_on_death() -> None:
    me = make(hid(0))
    same_bucket = []
    for i in range(1, 5000):
        c = Contact(hid(i), f"a{i}")
        if bucket_index(me.id_int, int(c.node_id, 16)) == ID_BITS - 1:
            same_bucket.append(c)
        me.add_contact(c)
    top = me.buckets[ID_BITS - 1]
    assert len(top) == 20  # k
    first = list(top)[0]
    assert first == same_bucket[0].node_id  # old contacts stay (§2.2)
    me.remove_contact(first)
    assert first not in top and len(top) == 20  # a replacement moved up


def test_closest_is_exact_xor_order() -> None:
    me = make(hid(0))
    all_c = [Contact(hid(i), f"a{i}") for i in range(1, 400)]
    for c in all_c:
        me.add_contact(c)
    target = hid(10_000)
    known = list(me.contacts())
    expect = sorted(known, key=lambda c: int(c.node_id, 16) ^ int(target, 16))[:20]
    assert me.closest(target, 20) == expect


def _mesh(n: int) -> dict[str, Dht]:
    cores = {hid(i): make(hid(i)) for i in range(n)}
    for c in cores.values():
        for other in cores.values():
            c.add_contact(Contact(other.node_id, other.addr))
    return cores


def _run(cores: dict[str, Dht], effects: list, now: float, drop: set[str] = frozenset()) -> list:
    by_addr = {c.addr: c for c in cores.values()}
    notes, queue = [], list(effects)
    while queue:
        e = queue.pop(0)
        if isinstance(e, Notify):
            notes.append(e.event)
        elif e.addr in by_addr and e.dest not in drop:
            queue.extend(by_addr[e.addr].handle(e.msg, now))
    return notes


def test_find_value_returns_a_signed_record_from_the_closest_nodes() -> None:
    cores = _mesh(60)
    key = sim_key(1, 42)
    rec = signed_record(key, b"hello", 3, expires_at=100.0)
    holder = min(cores.values(), key=lambda c: c.id_int ^ int(key.node_id, 16))
    assert holder.accept(rec, 0.0) == (True, "")
    origin = cores[hid(7)]
    _, effects = origin.lookup(key.node_id, 0.0, want_value=True)
    [done] = [n for n in _run(cores, effects, 0.0) if isinstance(n, LookupDone)]
    assert done.record == rec and done.hops >= 1


def test_dead_contacts_time_out_quickly_and_the_lookup_goes_on() -> None:
    cores = _mesh(40)
    origin = cores[hid(0)]
    target = hid(999)
    dead = {c.node_id for c in origin.closest(target, 3)}
    _, effects = origin.lookup(target, 0.0)
    notes = _run(cores, effects, 0.0, drop=dead)
    assert not any(isinstance(n, LookupDone) for n in notes)  # waiting on the dead ones
    t = origin.next_deadline()
    assert t is not None and t <= origin.config.timeout_max_s
    more = origin.tick(t)
    [done] = [n for n in _run(cores, more, t, drop=dead) if isinstance(n, LookupDone)]
    assert done.timeouts == 3
    assert not dead & {c.node_id for c in done.closest}


def test_records_are_checked_before_they_are_stored() -> None:
    me = make(hid(0))
    key, other = sim_key(1, 1), sim_key(1, 2)
    good = signed_record(key, b"v2", 2, expires_at=50.0)
    assert me.accept(good, 0.0) == (True, "")
    older = signed_record(key, b"v1", 1, expires_at=50.0)
    assert me.accept(older, 0.0) == (False, "stale_version")
    expired = signed_record(key, b"v3", 3, expires_at=5.0)
    assert me.accept(expired, 10.0) == (False, "expired")
    forged = signed_record(key, b"v9", 9, expires_at=50.0)
    forged = type(forged)(
        forged.key,
        b"tampered",
        forged.author,
        forged.author_key,
        forged.version,
        forged.expires_at,
        forged.signature,
    )
    assert me.accept(forged, 0.0) == (False, "bad_signature")
    # Another node may not write this node's record.
    theirs = signed_record(other, b"x", 5, expires_at=50.0)
    hijack = type(theirs)(
        key.node_id,
        theirs.value,
        theirs.author,
        theirs.author_key,
        theirs.version,
        theirs.expires_at,
        theirs.signature,
    )
    assert me.accept(hijack, 0.0) == (False, "not_authorized")
    assert me.records[key.node_id] == good
    for reason in ("stale_version", "expired", "bad_signature", "not_authorized"):
        assert me.counters[f"record_rejected_{reason}"] == 1


def test_store_message_and_expiry() -> None:
    me, peer = make(hid(0)), make(hid(1))
    rec = signed_record(sim_key(1, 3), b"v", 1, expires_at=20.0)
    [ack] = me.handle(Store(peer.node_id, peer.addr, 9, rec), 0.0)
    assert isinstance(ack, Send) and ack.msg == StoreAck(me.node_id, 9, True)
    [reply] = me.handle(FindValue(peer.node_id, peer.addr, 10, rec.key), 1.0)
    assert isinstance(reply.msg, Nodes) and reply.msg.record == rec
    assert me.expire(25.0) == 1 and rec.key not in me.records
    [reply] = me.handle(FindNode(peer.node_id, peer.addr, 11, rec.key), 25.0)
    assert reply.msg.record is None and reply.msg.contacts  # it knows the asker now


def test_unsolicited_reply_is_counted_not_trusted() -> None:
    me = make(hid(0))
    assert me.handle(Nodes(hid(5), 12345, ()), 0.0) == []
    assert me.counters["late_or_unsolicited_replies"] == 1


def test_small_simulated_mesh_finds_every_record() -> None:
    r = DhtExperiment(nodes=500, seed=2, lookups=100).run()
    assert r["success_rate"] == 1.0
    r = DhtExperiment(nodes=500, seed=2, lookups=100, dead_fraction=0.2).run()
    assert r["success_rate"] >= 0.99  # type: ignore[operator]


def test_maintenance_expires_records_refreshes_stale_buckets_and_replicates() -> None:
    cfg = DhtConfig(refresh_s=100.0, replicate_s=50.0, expire_check_s=10.0)
    me = make(hid(0), config=cfg, now=0.0)
    for i in range(1, 60):
        me.add_contact(Contact(hid(i), f"a{i}"))
    key = sim_key(3, 1)
    short = signed_record(key, b"short-lived", 1, expires_at=15.0)
    keep = signed_record(sim_key(3, 2), b"long-lived", 1, expires_at=10_000.0)
    assert me.accept(short, 0.0) == (True, "") and me.accept(keep, 0.0) == (True, "")
    t, sent = 0.0, []
    while t < 120.0:
        t = me.next_deadline() or t + 1.0
        for eff in me.tick(t):
            if isinstance(eff, Send):
                sent.append(eff.msg)
    assert short.key not in me.records and keep.key in me.records
    assert me.counters["records_expired"] == 1
    assert me.counters["bucket_refreshes"] >= 1  # every non-empty bucket was stale
    assert me.counters["records_replicated"] >= 2  # at t≈50 and t≈100: the live record
    assert any(isinstance(m, FindNode) for m in sent)


def test_put_stores_at_the_k_closest_after_the_lookup() -> None:
    me = make(hid(0))
    for i in range(1, 30):
        me.add_contact(Contact(hid(i), f"a{i}"))
    rec = signed_record(sim_key(4, 0), b"v", 1, expires_at=100.0)
    lid, fx = me.put(rec, 0.0)
    # Every contact asked answers with no closer contacts: the lookup ends, stores go out.
    out = list(fx)
    stores = []
    while out:
        eff = out.pop()
        if isinstance(eff, Send) and isinstance(eff.msg, FindNode):
            out.extend(me.handle(Nodes(eff.dest, eff.msg.rid, ()), 0.01))
        elif isinstance(eff, Send) and isinstance(eff.msg, Store):
            stores.append(eff.dest)
    expect = {c.node_id for c in me.closest(rec.key, 20)}
    assert set(stores) == expect and lid > 0


def test_handoff_gives_a_closer_newcomer_the_records_it_should_hold() -> None:
    me = make(hid(0))
    rec = signed_record(sim_key(4, 1), b"v", 1, expires_at=100.0)
    me.accept(rec, 0.0)
    newcomer = Contact(hid(7), "a7")
    me.add_contact(newcomer)
    fx = me.handoff(newcomer, 1.0)  # fewer than k contacts: everyone is among the closest
    assert [(e.dest, type(e.msg)) for e in fx] == [(newcomer.node_id, Store)]  # type: ignore[union-attr]
    assert me.handoff(newcomer, 200.0) == []  # nothing fresh to hand over
