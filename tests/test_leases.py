"""Replica leases and workload records: keys, encoding, a decoder that never crashes, and
the write policy (who may write which key), on one DHT core and across a small mesh."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.control.custodian import WORKLOADS, custodian_of, key_hash
from hyperion.core import Notify
from hyperion.identity.keys import NodeKey
from hyperion.mesh import leases
from hyperion.mesh.crypto import mesh_record_policy, signed_record, signed_value, verify_record
from hyperion.mesh.dht import Contact, Dht, LookupDone, Record, Store, StoreAck
from hyperion.mesh.leases import Lease, LeaseError, Placement, Workload
from hyperion.net import wire_pb2
from hyperion.sim.dht_run import sim_key

KEYS = [sim_key(7, i) for i in range(12)]
UID = "0b6f5c1e-8a8f-4d7e-a1c2-3f4e5d6c7b8a"


def dht(key: NodeKey) -> Dht:
    return Dht(
        key.node_id,
        f"a-{key.node_id[:6]}",
        rng=random.Random(1),
        verify=verify_record,
        may_write=mesh_record_policy,
    )


def lease(holder: NodeKey, pod: str = "web-1", uid: str = UID, at: float = 1000.0) -> Lease:
    wkey = leases.workload_key("apps/deployments", "default", "web")
    return Lease("default", pod, uid, holder.node_id, wkey, at)


def workload(placements: tuple[Placement, ...] = ()) -> Workload:
    return Workload("apps/deployments", "default", "web", "uid-web", 3, 2, 1, placements)


def by_closeness(key: str, ks: list[NodeKey]) -> list[NodeKey]:
    return sorted(ks, key=lambda k: int(k.node_id, 16) ^ int(key, 16))


# ---------------------------------------------------------------------------- keys


def test_a_lease_key_names_the_pod_and_its_holder() -> None:
    a, b = KEYS[0], KEYS[1]
    k = lease(a).key
    raw = f"hyperion-lease-v1\x00default\x00web-1\x00{UID}\x00{a.node_id}".encode()
    assert k == hashlib.sha1(raw).hexdigest()
    assert k == leases.lease_key("default", "web-1", UID, a.node_id)
    others = {
        lease(b).key,  # another holder
        lease(a, pod="web-2").key,
        lease(a, uid="another-uid").key,
        leases.lease_key("other", "web-1", UID, a.node_id),
    }
    assert k not in others and len(others) == 4
    assert lease(a, at=5.0).key == k  # renewals keep the key


def test_a_workload_record_lives_at_its_custodian_key() -> None:
    key = leases.workload_key("apps/deployments", "default", "web")
    assert int(key, 16) == key_hash("apps/deployments", "default", "web") and len(key) == 40
    assert key != leases.workload_key("apps/statefulsets", "default", "web")
    ids = [k.node_id for k in KEYS]
    assert custodian_of("apps/deployments", "default", "web", ids) == (
        by_closeness(key, KEYS)[0].node_id
    )
    # No lease key can be a workload key: the domains differ in their first bytes.
    assert not any(r.startswith("hyperion-lease") for r in WORKLOADS)


# --------------------------------------------------------------------------- codec

names = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,40}[a-z0-9])?", fullmatch=True)
uids = st.uuids().map(str)
node_ids = st.binary(min_size=20, max_size=20).map(bytes.hex)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)

leases_st = st.builds(
    Lease,
    namespace=names,
    pod=names,
    pod_uid=uids,
    holder=node_ids,
    workload_key=st.one_of(st.just(""), node_ids),
    renewed_at=times,
)
placements_st = st.builds(
    Placement, pod=names, pod_uid=uids, node_id=node_ids, node_name=names, ready=st.booleans()
)


@st.composite
def workloads_st(draw: st.DrawFn) -> Workload:
    ps = draw(st.lists(placements_st, max_size=6, unique_by=lambda p: p.pod))
    return Workload(
        resource=draw(st.sampled_from(WORKLOADS)),
        namespace=draw(names),
        name=draw(names),
        uid=draw(st.one_of(st.just(""), uids)),
        generation=draw(st.integers(0, 2**31 - 1)),
        desired=draw(st.integers(0, 1000)),
        ready=draw(st.integers(0, 1000)),
        placements=tuple(ps),
    )


@given(st.one_of(leases_st, workloads_st()))
def test_values_round_trip_and_encode_deterministically(v: Lease | Workload) -> None:
    data = leases.encode(v)
    assert leases.decode(data) == v
    assert leases.encode(leases.decode(data)) == data


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_the_decoder_rejects_any_bytes_with_lease_error_only(data: bytes) -> None:
    try:
        v = leases.decode(data)
    except LeaseError:
        return
    assert leases.decode(leases.encode(v)) == v  # what decodes is valid


@settings(max_examples=300)
@given(st.one_of(leases_st, workloads_st()), st.data())
def test_corrupted_values_never_crash_the_decoder(v: Lease | Workload, data: st.DataObject) -> None:
    raw = bytearray(leases.encode(v))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for blob in (bytes(raw), bytes(raw[:cut])):
        try:
            got = leases.decode(blob)
        except LeaseError:
            continue
        assert leases.decode(leases.encode(got)) == got  # what decodes is valid


def _pb_lease(**kw: Any) -> bytes:
    good = dict(namespace="default", pod="p", pod_uid=UID, holder=b"\x01" * 20, renewed_at=1.0)
    good.update(kw)
    return wire_pb2.RecordValue(lease=wire_pb2.LeaseValue(**good)).SerializeToString()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "no known kind"),
        (b"\xff\xff\xff", "not a record value"),
        (_pb_lease(holder=b"\x01" * 19), "holder must be 20 bytes"),
        (_pb_lease(workload_key=b"\x01" * 3), "workload key must be 20 bytes"),
        (_pb_lease(pod=""), "bad pod"),
        (_pb_lease(pod_uid=""), "bad uid"),
        (_pb_lease(namespace="x" * 300), "bad namespace"),
        (_pb_lease(renewed_at=float("nan")), "bad renewed_at"),
        (
            wire_pb2.RecordValue(
                workload=wire_pb2.WorkloadValue(resource="/pods", namespace="d", name="n")
            ).SerializeToString(),
            "unknown workload resource",
        ),
        (
            wire_pb2.RecordValue(
                workload=wire_pb2.WorkloadValue(
                    resource="apps/deployments",
                    namespace="d",
                    name="n",
                    placements=[
                        wire_pb2.WorkloadPlacement(pod="a", pod_uid="u", node_id=b"\x02" * 20)
                    ]
                    * 2,
                )
            ).SerializeToString(),
            "placed twice",
        ),
        (b"\x00" * (leases.MAX_VALUE_BYTES + 1), "over"),
    ],
)
def test_invalid_values_are_rejected_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(LeaseError, match=why):
        leases.decode(data)


# ------------------------------------------------------------------ write policy


def test_a_lease_is_accepted_only_from_its_holder_and_rejections_are_counted() -> None:
    me = dht(KEYS[0])
    holder, rogue = KEYS[1], KEYS[2]
    good = signed_value(holder, lease(holder), 2, expires_at=50.0)
    assert me.accept(good, 0.0) == (True, "")
    # A rogue node signs a lease naming another holder: not its to write.
    claim = signed_value(rogue, lease(holder), 3, expires_at=50.0)
    assert me.accept(claim, 0.0) == (False, "not_authorized")
    # It copies the holder's public key and id but cannot sign with them.
    forged = dataclasses.replace(claim, author=holder.node_id, author_key=holder.public_bytes)
    assert me.accept(forged, 0.0) == (False, "bad_signature")
    # It claims an author id that is not the hash of its own key.
    liar = dataclasses.replace(claim, author=holder.node_id).signed(rogue.sign)
    assert me.accept(liar, 0.0) == (False, "not_authorized")
    # A valid lease stored under another key (say, where another pod's lease lives).
    elsewhere = Record(
        lease(holder, pod="web-9").key,
        leases.encode(lease(holder)),
        holder.node_id,
        holder.public_bytes,
        4,
        50.0,
    ).signed(holder.sign)
    assert me.accept(elsewhere, 0.0) == (False, "wrong_key")
    garbage = Record("ab" * 20, b"\xff\x00junk", holder.node_id, holder.public_bytes, 1, 50.0)
    assert me.accept(garbage.signed(holder.sign), 0.0) == (False, "malformed")
    stale = signed_value(holder, lease(holder, at=999.0), 1, expires_at=50.0)
    assert me.accept(stale, 0.0) == (False, "stale_version")
    expired = signed_value(holder, lease(holder), 5, expires_at=10.0)
    assert me.accept(expired, 20.0) == (False, "expired")
    assert me.records[good.key] == good
    for reason in (
        "not_authorized",
        "bad_signature",
        "wrong_key",
        "malformed",
        "stale_version",
        "expired",
    ):
        want = 2 if reason == "not_authorized" else 1
        assert me.counters[f"record_rejected_{reason}"] == want, reason


def test_a_workload_record_is_accepted_from_the_three_closest_known_nodes_only() -> None:
    w = workload()
    order = by_closeness(w.key, KEYS)
    me = dht(order[-1])
    for k in order[:-1]:
        me.add_contact(Contact(k.node_id, f"a-{k.node_id[:6]}"))
    for i, k in enumerate(order):
        rec = signed_value(k, w, 10 + i, expires_at=50.0)
        expect = (True, "") if i < leases.CUSTODIAN_SLACK else (False, "not_authorized")
        assert me.accept(rec, 0.0, store=False) == expect, i
    # The custodian dies: the fourth closest is now among the three.
    me.remove_contact(order[0].node_id)
    fourth = signed_value(order[3], w, 99, expires_at=50.0)
    assert me.accept(fourth, 0.0, store=False) == (True, "")
    assert me.counters["record_rejected_not_authorized"] == len(KEYS) - 3


def test_node_records_keep_their_rule() -> None:
    me = dht(KEYS[0])
    own = signed_record(KEYS[1], b"any node record bytes", 1, expires_at=50.0)
    assert me.accept(own, 0.0) == (True, "")
    theirs = signed_record(KEYS[2], b"x", 2, expires_at=50.0)
    hijack = dataclasses.replace(theirs, key=KEYS[1].node_id).signed(KEYS[2].sign)
    # Under another node's id a record is no node record of its author's: it would have
    # to be a lease or workload record, and these bytes are neither.
    assert me.accept(hijack, 0.0) == (False, "malformed")
    assert KEYS[1].node_id not in me.records or me.records[KEYS[1].node_id] == own


# -------------------------------------------------------------- across a small mesh


def _mesh(keys: list[NodeKey]) -> dict[str, Dht]:
    cores = {k.node_id: dht(k) for k in keys}
    for c in cores.values():
        for other in cores.values():
            c.add_contact(Contact(other.node_id, other.addr))
    return cores


def _run(cores: dict[str, Dht], effects: list[Any], now: float) -> list[Any]:
    """Deliver every send at once, in order; return the notifications and the acks."""
    by_addr = {c.addr: c for c in cores.values()}
    notes: list[Any] = []
    queue = list(effects)
    while queue:
        e = queue.pop(0)
        if isinstance(e, Notify):
            notes.append(e.event)
            continue
        if isinstance(e.msg, StoreAck):
            notes.append(e.msg)
        queue.extend(by_addr[e.addr].handle(e.msg, now))
    return notes


def test_storers_refuse_a_workload_record_from_a_non_custodian() -> None:
    cores = _mesh(KEYS)
    w = workload()
    order = by_closeness(w.key, KEYS)
    custodian, outsider, reader = order[0], order[-1], order[len(order) // 2]

    rec = signed_value(outsider, w, 5, expires_at=50.0)
    notes = _run(cores, cores[outsider.node_id].put(rec, 0.0)[1], 0.0)
    acks = [n for n in notes if isinstance(n, StoreAck)]
    assert len(acks) == len(KEYS) - 1 and not any(a.accepted for a in acks)
    assert {a.reason for a in acks} == {"not_authorized"}
    assert all(w.key not in c.records for c in cores.values())
    refused = sum(c.counters.get("record_rejected_not_authorized", 0) for c in cores.values())
    assert refused == len(KEYS)  # every storer, and the outsider itself
    assert cores[outsider.node_id].counters["store_refused_not_authorized"] == len(KEYS) - 1

    rec = signed_value(custodian, w, 6, expires_at=50.0)
    notes = _run(cores, cores[custodian.node_id].put(rec, 0.0)[1], 0.0)
    assert all(a.accepted for a in notes if isinstance(a, StoreAck))
    _, fx = cores[reader.node_id].lookup(w.key, 1.0, want_value=True)
    [done] = [n for n in _run(cores, fx, 1.0) if isinstance(n, LookupDone)]
    assert done.record == rec and leases.decode(done.record.value) == w


def test_a_forged_store_of_a_lease_is_dropped_by_every_storer() -> None:
    cores = _mesh(KEYS[:6])
    holder, rogue = KEYS[1], KEYS[2]
    real = signed_value(holder, lease(holder), 1, expires_at=50.0)
    _run(cores, cores[holder.node_id].put(real, 0.0)[1], 0.0)
    fake = signed_value(rogue, dataclasses.replace(lease(holder), renewed_at=2e9), 9, 50.0)
    for c in cores.values():
        [ack] = c.handle(Store(rogue.node_id, "x", 1, fake), 0.0)
        assert ack.msg.accepted is False and ack.msg.reason == "not_authorized"
        assert c.records[real.key] == real


# ----------------------------------------------------------- the custodian's side


def test_a_replica_whose_lease_lapsed_is_replaced_though_its_node_is_alive() -> None:
    from test_custodian import IDS, NAMES, Cat, bind, deployment, the_custodian

    from hyperion.control.custodian import Members

    def step(lapsed: frozenset[str] = frozenset()) -> list[Any]:
        members = Members({n: NAMES[n] for n in IDS}, {}, lapsed)
        writes, tenders = c.reconcile(cat.list, members, 1000.0, lambda k: False)
        cat.apply(writes)
        return tenders

    cat = Cat()
    cat.put("apps/deployments", deployment(replicas=2))
    c = the_custodian("apps/deployments", "web", IDS)
    step()
    a, b = cat.pods()
    bind(cat, a, "node-1")
    bind(cat, b, "node-2")
    assert step() == [] and len(cat.pods()) == 2  # every node alive, no lapse: steady
    assert set(c.custodied) == {("apps/deployments", "default", "web")}
    held = c.custodied["apps/deployments", "default", "web"].pods
    assert {p["metadata"]["uid"] for p in held} == {a["metadata"]["uid"], b["metadata"]["uid"]}

    gone = frozenset({b["metadata"]["uid"]})
    step(gone)  # b's node is alive but its lease lapsed: a replacement is made
    names = {p["metadata"]["name"] for p in cat.pods()}
    assert len(names) == 3 and b["metadata"]["name"] in names  # b kept until replaced
    st = cat.list("apps/deployments")[0]["status"]
    assert st["replicas"] == 1 and st["readyReplicas"] == 1  # b counts no more
    [t] = step(gone)
    assert t.placed == (("node-1", "", ""),)  # the lapsed one is not a sibling to spread from
    new = next(p for p in cat.pods() if p["metadata"]["name"] == t.key[2])
    bind(cat, new, "node-3")
    step(gone)
    assert {p["spec"]["nodeName"] for p in cat.pods()} == {"node-1", "node-3"}
