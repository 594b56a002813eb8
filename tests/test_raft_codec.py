"""The Raft wire codec (hyperion/workplane/raft_codec.py): exact round trips, and any
bytes at all either decode to a valid message or raise RaftWireError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyperion.net import raft_pb2 as pb
from hyperion.workplane import raft_codec
from hyperion.workplane.raft import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    Snapshot,
    VoteRequest,
    VoteResponse,
)
from hyperion.workplane.raft_codec import RaftWireError, decode, encode

ids = st.text("0123456789abcdef", min_size=1, max_size=40)
terms = st.integers(1, 1 << 40)
small = st.integers(0, 1 << 40)


@st.composite
def configs(draw: st.DrawFn) -> tuple[tuple[str, ...], tuple[str, ...]]:
    members = draw(st.lists(ids, min_size=1, max_size=7, unique=True))
    n = draw(st.integers(1, len(members)))
    return tuple(sorted(members[:n])), tuple(sorted(members[n:]))


@st.composite
def entries(draw: st.DrawFn, prev: int, term: int) -> tuple[Entry, ...]:
    out = []
    for k in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(EntryKind))
        t = term if k == 0 else out[-1].term
        if kind is EntryKind.CONFIG:
            vs, ls = draw(configs())
            out.append(Entry(prev + 1 + k, t, kind, b"", vs, ls))
        else:
            data = draw(st.binary(max_size=32)) if kind is EntryKind.NORMAL else b""
            out.append(Entry(prev + 1 + k, t, kind, data))
    return tuple(out)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    group, src, term = draw(ids), draw(ids), draw(terms)
    which = draw(st.integers(0, 6))
    if which == 0:
        return VoteRequest(
            group, src, term, draw(small), draw(st.integers(0, term)), draw(st.booleans())
        )
    if which == 1:
        return VoteResponse(group, src, term, draw(st.booleans()), draw(st.booleans()))
    if which == 2:
        prev, prev_term = draw(small), draw(st.integers(0, term))
        ents = draw(entries(prev, draw(st.integers(max(prev_term, 1), term))))
        return AppendEntries(group, src, term, prev, prev_term, ents, draw(small))
    if which == 3:
        return AppendResponse(
            group,
            src,
            term,
            draw(st.booleans()),
            draw(small),
            draw(small),
            draw(st.integers(0, term)),
        )
    if which == 4:
        return Heartbeat(group, src, term, draw(small), draw(small))
    if which == 5:
        return HeartbeatResponse(group, src, term, draw(small))
    vs, ls = draw(configs())
    snap = Snapshot(
        draw(st.integers(1, 1 << 40)),
        draw(st.integers(1, term)),
        vs,
        ls,
        draw(st.binary(max_size=64)),
    )
    return InstallSnapshot(group, src, term, snap)


@given(messages())
def test_round_trip(msg: Message) -> None:
    assert decode(encode(msg)) == msg


@given(st.binary(max_size=256))
def test_random_bytes_decode_or_raise_wire_error(data: bytes) -> None:
    try:
        msg = decode(data)
    except RaftWireError:
        return
    assert decode(encode(msg)) == msg


@given(messages(), st.data())
def test_mutated_messages_decode_or_raise_wire_error(msg: Message, data: st.DataObject) -> None:
    raw = bytearray(encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        again = decode(bytes(raw))
    except RaftWireError:
        return
    assert decode(encode(again)) == again


def _with(**kw: object) -> bytes:
    m = pb.RaftMessage(group="g", src="n1", term=3)
    for k, v in kw.items():
        getattr(m, k).CopyFrom(v)
    return m.SerializeToString()


@pytest.mark.parametrize(
    "raw, why",
    [
        (pb.RaftMessage(group="g", src="n1", term=3).SerializeToString(), "no known kind"),
        (pb.RaftMessage(src="n1", term=3, heartbeat=pb.Heartbeat()).SerializeToString(), "group"),
        (_with(vote_request=pb.VoteRequest(last_term=4)), "newer than its term"),
        (
            _with(
                append_entries=pb.AppendEntries(
                    prev_index=5, entries=[pb.Entry(index=7, term=1, kind=pb.NORMAL)]
                )
            ),
            "contiguous",
        ),
        (
            _with(append_entries=pb.AppendEntries(entries=[pb.Entry(index=1, term=9, kind=1)])),
            "out of range",
        ),
        (
            _with(append_entries=pb.AppendEntries(entries=[pb.Entry(index=1, term=1, kind=7)])),
            "unknown entry kind",
        ),
        (
            _with(
                append_entries=pb.AppendEntries(
                    entries=[pb.Entry(index=1, term=1, kind=pb.CONFIG, voters=["b", "a"])]
                )
            ),
            "sorted",
        ),
        (
            _with(
                append_entries=pb.AppendEntries(
                    entries=[
                        pb.Entry(index=1, term=1, kind=pb.CONFIG, voters=["a"], learners=["a"])
                    ]
                )
            ),
            "both voter and learner",
        ),
        (_with(install_snapshot=pb.InstallSnapshot()), "without a snapshot"),
        (
            _with(install_snapshot=pb.InstallSnapshot(snapshot=pb.Snapshot(index=1, term=1))),
            "needs a voter",
        ),
        (b"\xff\xff\xff", "undecodable"),
    ],
)
def test_malformed_messages_are_refused(raw: bytes, why: str) -> None:
    with pytest.raises(RaftWireError, match=why):
        decode(raw)


def test_every_message_type_has_a_wire_form() -> None:
    from hyperion.workplane.raft import MESSAGE_TYPES

    kinds = {f.name for f in pb.RaftMessage.DESCRIPTOR.oneofs_by_name["kind"].fields}
    # the Raft messages, plus the key-value store's forwarded request and reply
    assert len(kinds) == len(MESSAGE_TYPES) + 2
    assert raft_codec.MAX_ENTRIES >= 64
