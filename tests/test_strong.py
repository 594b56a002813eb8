"""The pieces under a strong workload's Raft group, without a network: the key-value
state machine (against a model, with hypothesis), its wire forms, the group lifecycle
decisions, the per-group files (persist, reload, torn tail, dissolve) and the driver's
inbound checks (signer, malformed bytes)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.net.codec import RaftPayload
from hyperion.workplane import kv, raft_codec, strong
from hyperion.workplane.raft import (
    ChangeOp,
    DurableState,
    Entry,
    EntryKind,
    MemoryStorage,
    Persist,
    RaftNode,
    Snapshot,
    VoteRequest,
)
from hyperion.workplane.raft_disk import RaftDisk, RaftDiskError
from hyperion.workplane.raft_driver import Source, StrongPlane

# ------------------------------------------------------------------ state machine

KEYS = st.sampled_from(["a", "b", "c"])
OPS = st.lists(
    st.tuples(
        st.sampled_from(["put", "del"]),
        KEYS,
        st.binary(max_size=8),
        st.one_of(st.none(), st.integers(0, 12)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(OPS, st.integers(0, 40))
def test_kv_matches_a_model_and_snapshots_restore_the_same_state(
    ops: list[tuple[str, str, bytes, int | None]], cut: int
) -> None:
    store, model = kv.KvStore(), {}
    copy = kv.KvStore()
    for i, (op, key, value, expect) in enumerate(ops, start=1):
        data = kv.encode_put(key, value, expect) if op == "put" else kv.encode_delete(key, expect)
        r = store.apply(i, data)
        current = model.get(key, (b"", 0))[1]
        if expect is not None and expect != current:
            assert r == kv.Result(kv.StoreCode.CONFLICT, current=current)
        elif op == "put":
            model[key] = (value, i)
            assert r == kv.Result(kv.StoreCode.OK, version=i)
        elif key in model:
            del model[key]
            assert r.code is kv.StoreCode.OK
        else:
            assert r.code is kv.StoreCode.NOT_FOUND
        for k in "abc":
            assert store.get(k) == model.get(k)
        if i == cut:  # a snapshot taken here and restored elsewhere, then the rest applied
            copy.restore(i, store.snapshot())
        elif i > cut:
            copy.apply(i, data)
    if cut <= len(ops):
        assert copy.items() == store.items()
        assert copy.snapshot() == store.snapshot()


def test_kv_applies_an_undecodable_entry_as_a_counted_noop() -> None:
    s = kv.KvStore()
    assert s.apply(1, kv.encode_put("k", b"v")).version == 1
    for i, junk in enumerate([b"", b"not json", b"[]", b'{"op":"put","k":"k","e":null}'], 2):
        assert s.apply(i, junk).code is kv.StoreCode.NOT_FOUND
    assert s.get("k") == (b"v", 1) and s.stats.undecodable == 4
    with pytest.raises(AssertionError):
        s.apply(3, kv.encode_put("k", b"again"))  # indexes only go up


def test_kv_refuses_out_of_bounds_keys_and_values() -> None:
    with pytest.raises(kv.KvError):
        kv.encode_put("", b"v")
    with pytest.raises(kv.KvError):
        kv.encode_put("k" * (kv.MAX_KEY_CHARS + 1), b"v")
    with pytest.raises(kv.KvError):
        kv.encode_put("k", b"v" * (kv.MAX_VALUE_BYTES + 1))
    with pytest.raises(kv.KvError):
        kv.encode_delete("k", -1)


# -------------------------------------------------------------------- wire forms

G = "uid-1.00000000000000aa"
ME = "a" * 40


@pytest.mark.parametrize(
    "msg",
    [
        kv.StoreRequest(G, ME, 7, kv.StoreOp.GET, "k"),
        kv.StoreRequest(G, ME, 8, kv.StoreOp.PUT, "k", b"v", None),
        kv.StoreRequest(G, ME, 9, kv.StoreOp.PUT, "k", b"", 0),
        kv.StoreRequest(G, ME, 10, kv.StoreOp.DELETE, "k", b"", 12),
        kv.StoreReply(G, ME, 7, kv.StoreCode.OK, 12, b"v"),
        kv.StoreReply(G, ME, 7, kv.StoreCode.NOT_LEADER, leader="b" * 40),
        kv.StoreReply(G, ME, 7, kv.StoreCode.UNAVAILABLE, message="no quorum"),
        kv.StoreReply(G, ME, 7, kv.StoreCode.FORBIDDEN, message="not a member"),
    ],
)
def test_store_messages_round_trip(msg: kv.StoreRequest | kv.StoreReply) -> None:
    assert raft_codec.decode_any(raft_codec.encode(msg)) == msg
    with pytest.raises(raft_codec.RaftWireError):
        raft_codec.decode(raft_codec.encode(msg))  # not a Raft message for a RaftNode


def test_malformed_store_messages_are_refused() -> None:
    from hyperion.net import raft_pb2 as pb

    bad = [
        pb.RaftMessage(group=G, src=ME, store_request=pb.StoreRequest(id=1, op=9, key="k")),
        pb.RaftMessage(group=G, src=ME, store_request=pb.StoreRequest(id=1, op=1, key="")),
        pb.RaftMessage(
            group=G, src=ME, store_request=pb.StoreRequest(id=1, op=1, key="k", has_expect=True)
        ),
        pb.RaftMessage(
            group=G, src=ME, store_request=pb.StoreRequest(id=1, op=3, key="k", value=b"v")
        ),
        pb.RaftMessage(group=G, src=ME, term=3, store_reply=pb.StoreReply(id=1, code=1)),
        pb.RaftMessage(group=G, src=ME, store_reply=pb.StoreReply(id=1, code=42)),
        pb.RaftMessage(group="", src=ME, store_reply=pb.StoreReply(id=1, code=1)),
    ]
    for m in bad:
        with pytest.raises(raft_codec.RaftWireError):
            raft_codec.decode_any(m.SerializeToString())
    with pytest.raises(raft_codec.RaftWireError):
        raft_codec.decode_any(b"\xff\xff")


# --------------------------------------------------------------------- lifecycle

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)


def view(replicas: set[str], group: str = "", custodian: bool = False) -> strong.WorkloadView:
    return strong.WorkloadView("uid-1", "default", "kv", frozenset(replicas), group, custodian)


def test_only_the_custodian_founds_and_only_after_the_hold_with_no_named_group() -> None:
    lc = strong.Lifecycle(A, started=0.0)
    w = {"uid-1": view({A, B}, custodian=True)}
    assert lc.plan(w, [], 10.0) == []  # custodian from now on: hold
    assert lc.plan(w, [], 10.0 + strong.BOOTSTRAP_HOLD_S) == [strong.Found(w["uid-1"])]
    other = strong.Lifecycle(B, started=0.0)
    assert other.plan({"uid-1": view({A, B})}, [], 20.0) == []
    named = {"uid-1": view({A, B}, group="uid-1.01", custodian=True)}
    lc2 = strong.Lifecycle(A, started=0.0)
    lc2.plan(named, [], 0.0)
    assert lc2.plan(named, [], 5.0) == []  # the status names a group: never a second one
    nobody = {"uid-1": view(set(), custodian=True)}
    lc3 = strong.Lifecycle(A, started=0.0)
    lc3.plan(nobody, [], 0.0)
    assert lc3.plan(nobody, [], 5.0) == []  # nothing bound yet


def test_group_ids_are_fresh_per_founding() -> None:
    rng = random.Random(1)
    ids = {strong.group_id("uid-1", rng) for _ in range(100)}
    assert len(ids) == 100
    assert all(strong.group_uid(g) == "uid-1" for g in ids)


def member(
    voters: set[str], learners: frozenset[str] | set[str] = frozenset(), leader: bool = True
) -> strong.MemberView:
    return strong.MemberView("uid-1.01", "uid-1", leader, frozenset(voters), frozenset(learners))


def test_the_leader_promotes_then_removes_then_adds_one_at_a_time() -> None:
    desired = frozenset({B, C, D})
    cs = strong.changes(A, member({A, B}, {C, "e" * 40}), desired)
    assert cs == (
        (ChangeOp.PROMOTE, C),
        (ChangeOp.REMOVE, "e" * 40),
        (ChangeOp.REMOVE, A),  # the founder that runs no replica hands over, last
        (ChangeOp.ADD_LEARNER, D),
    )
    # no voter runs a replica yet: nobody is removed before one is promoted
    assert strong.changes(A, member({A}), frozenset({B})) == ((ChangeOp.ADD_LEARNER, B),)
    assert strong.changes(A, member({A, B}), frozenset()) == ()
    lc = strong.Lifecycle(A, started=0.0)
    plan = lc.plan({"uid-1": view({A, B, C}, group="uid-1.01")}, [member({A, B, C})], 1.0)
    assert plan == []  # converged


def test_members_dissolve_when_their_workload_goes_or_another_group_is_named() -> None:
    lc = strong.Lifecycle(A, started=0.0)
    m = member({A, B}, leader=False)
    assert lc.plan({}, [m], strong.START_GRACE_S - 1) == []  # a restored catalog catches up
    assert lc.plan({}, [m], strong.START_GRACE_S) == [
        strong.Dissolve("uid-1.01", "workload deleted")
    ]
    other = {"uid-1": view({A, B}, group="uid-1.02")}
    assert [type(a) for a in lc.plan(other, [m], 1.0)] == [strong.Dissolve]
    gone = {"uid-1": view({B}, group="uid-1.01")}
    removed = member({B}, leader=False)
    assert [type(a) for a in lc.plan(gone, [removed], 1.0)] == [strong.Dissolve]
    assert lc.plan(gone, [member({A, B}, leader=False)], 1.0) == []  # still a voter: stays


def test_may_join_only_a_group_of_a_workload_with_a_replica_here() -> None:
    w = {"uid-1": view({A, B})}
    assert strong.may_join(A, "uid-1.01", w)
    assert not strong.may_join(C, "uid-1.01", w)
    assert not strong.may_join(A, "uid-2.01", w)
    named = {"uid-1": view({A, B}, group="uid-1.02")}
    assert not strong.may_join(A, "uid-1.01", named) and strong.may_join(A, "uid-1.02", named)


def test_the_leader_serves_forwarded_requests_of_members_and_replica_nodes_only() -> None:
    w = {"uid-1": view({A, D})}
    assert strong.may_request(B, "uid-1.01", frozenset({A, B}), w)  # a member
    assert strong.may_request(D, "uid-1.01", frozenset({A, B}), w)  # a replica's node
    assert not strong.may_request(C, "uid-1.01", frozenset({A, B}), w)  # any other node
    assert not strong.may_request(D, "uid-1.01", frozenset({A}), {})  # workload unknown here
    named = {"uid-1": view({A, D}, group="uid-1.02")}  # D's replica belongs to another group
    assert not strong.may_request(D, "uid-1.01", frozenset({A}), named)


# ------------------------------------------------------------------------- files


def test_persist_reload_matches_the_reference_storage(tmp_path: Path) -> None:
    disk = RaftDisk(tmp_path / "raft")
    assert disk.load() == []
    start = DurableState.bootstrap([A])
    disk.create(G, "uid-1", start)
    ref = MemoryStorage(DurableState(0, "", Snapshot(0, 0, ()), ()))
    steps = [
        Persist(G, start.term, "", start.snapshot, 0, start.entries),
        Persist(G, 2, A),
        Persist(G, 2, A, entries=(Entry(2, 2, EntryKind.NOOP), Entry(3, 2, data=b"x"))),
        Persist(G, 3, "", truncate_from=3, entries=(Entry(3, 3, data=b"y"),)),
        Persist(G, 3, B, entries=(Entry(4, 3, data=b"z"),)),
        Persist(G, 3, B, snapshot=Snapshot(3, 3, (A,), (), b"snap")),
        Persist(G, 3, B, entries=(Entry(5, 3, data=b"w"),)),
    ]
    for p in steps:
        disk.persist(p)
        ref.apply(p)
        [loaded] = RaftDisk(tmp_path / "raft").load()
        assert (loaded.group, loaded.uid) == (G, "uid-1")
        assert loaded.state == ref.state()
    # a node restarted from these files campaigns from term 3 with its log intact
    node = RaftNode(G, A, ref.state(), random.Random(1), 0.0)
    assert (node.term, node.vote, node.last_index) == (3, B, 5)


def test_a_torn_last_append_is_dropped_and_other_damage_refused(tmp_path: Path) -> None:
    disk = RaftDisk(tmp_path / "raft")
    start = DurableState.bootstrap([A])
    disk.create(G, "uid-1", start)
    disk.persist(Persist(G, 1, "", start.snapshot, 0, start.entries))
    disk.persist(Persist(G, 1, "", entries=(Entry(2, 1, data=b"kept"),)))
    log = disk.dir_of(G) / "log.bin"
    whole = log.read_bytes()
    disk.persist(Persist(G, 1, "", entries=(Entry(3, 1, data=b"torn"),)))
    log.write_bytes(log.read_bytes()[:-3])  # a crash in the middle of the last append
    [loaded] = RaftDisk(tmp_path / "raft").load()
    assert [e.data for e in loaded.state.entries] == [b"", b"kept"]
    assert log.read_bytes() == whole  # the torn tail is cut, appends line up again
    log.write_bytes(whole[:10] + b"\x00" * 4 + whole[14:])  # damage in the middle
    with pytest.raises(RaftDiskError):
        RaftDisk(tmp_path / "raft").load()
    disk.remove(G)
    assert not disk.dir_of(G).exists() and RaftDisk(tmp_path / "raft").load() == []


# ---------------------------------------------------------------- driver inbound


def test_the_driver_drops_forged_and_malformed_payloads(tmp_path: Path) -> None:
    counts: dict[str, int] = {}

    def inc(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    async def main() -> None:
        source = Source(
            workloads=lambda: {},
            find=lambda ns, name: None,
            write_status=lambda *a: None,
            resolve=lambda nid: "",
            name_of=lambda nid: nid[:4],
        )
        plane = StrongPlane(A, tmp_path / "raft", lambda fx: None, source, inc)
        vote = VoteRequest(G, B, 2, 1, 1)
        plane.deliver(RaftPayload(raft_codec.encode(vote)), C)  # signed by C, claims B
        plane.deliver(RaftPayload(b"\x08\xff"), B)
        plane.deliver(RaftPayload(raft_codec.encode(vote)), B)  # fine: queued
        assert counts == {"raft_rejected_src_mismatch": 1, "raft_rejected_malformed": 1}
        assert plane._inbound.qsize() == 1
        plane._handle(plane._inbound.get_nowait(), 0.0)  # no such group, not ours to join
        assert plane.host.stats.dropped_unknown_group == 1 and len(plane.host) == 0

    asyncio.run(main())


def test_the_driver_refuses_a_forwarded_request_from_a_stranger(tmp_path: Path) -> None:
    """A mesh node that is neither in the group nor running a replica is told
    FORBIDDEN (and its caller raises ``Forbidden``); a replica's node gets past the
    check (here: NOT_LEADER, the group has not elected yet)."""
    sent: list[kv.StoreReply] = []
    counts: dict[str, int] = {}
    group = "uid-1.01"

    def send(effects: list) -> None:
        sent.extend(raft_codec.decode_any(e.msg.data) for e in effects)

    def inc(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    async def main() -> None:
        source = Source(
            workloads=lambda: {"uid-1": view({A, D})},
            find=lambda ns, name: None,
            write_status=lambda *a: None,
            resolve=lambda nid: "addr-" + nid[:4],
            name_of=lambda nid: nid[:4],
        )
        plane = StrongPlane(A, tmp_path / "raft", send, source, inc)
        plane._create(group, DurableState.bootstrap((A, B)), 0.0)
        sent.clear()
        await plane._serve_forwarded(kv.StoreRequest(group, C, 1, kv.StoreOp.GET, "k"))
        await plane._serve_forwarded(kv.StoreRequest(group, D, 2, kv.StoreOp.GET, "k"))
        assert [(r.id, r.code) for r in sent] == [
            (1, kv.StoreCode.FORBIDDEN),
            (2, kv.StoreCode.NOT_LEADER),
        ]
        assert counts.get("raft_store_forbidden") == 1

    asyncio.run(main())


def test_raft_payloads_ride_the_mesh_codec_and_a_version_1_node_drops_them() -> None:
    from hyperion.net import codec

    body = codec.encode(RaftPayload(b"\x0a\x01g"))
    assert codec.decode(body) == RaftPayload(b"\x0a\x01g")
    with pytest.raises(codec.WireError):
        codec.decode(codec.encode(RaftPayload(b"x"), version=1), version=1)
    with pytest.raises(codec.WireError):
        codec.decode(codec.encode(RaftPayload(b"")))
