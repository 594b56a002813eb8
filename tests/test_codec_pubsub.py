"""Pub/sub wire format: round trips, validation, and the arithmetic size accounting."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.identity.keys import NodeKey
from hyperion.mesh.pubsub import IHave, Message, Rpc
from hyperion.net import codec, wire_pb2
from hyperion.net.envelope import NONCE_BYTES, seal

ids = st.binary(min_size=20, max_size=20).map(bytes.hex)
topics = st.text(min_size=1, max_size=40)
mids = st.tuples(ids, st.integers(0, 2**64 - 1))
messages = st.builds(
    Message,
    ids,
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**64 - 1),
    topics,
    st.binary(max_size=300),
    st.binary(min_size=64, max_size=64),
)
rpcs = st.builds(
    Rpc,
    ids,
    st.text(max_size=30),
    st.lists(topics, max_size=3).map(tuple),
    st.lists(topics, max_size=3).map(tuple),
    st.lists(messages, max_size=3).map(tuple),
    st.lists(st.builds(IHave, topics, st.lists(mids, max_size=4).map(tuple)), max_size=3).map(
        tuple
    ),
    st.lists(mids, max_size=4).map(tuple),
    st.lists(topics, max_size=3).map(tuple),
    st.lists(topics, max_size=3).map(tuple),
    st.lists(mids, max_size=4).map(tuple),
    st.lists(topics, max_size=2).map(tuple),
    st.lists(topics, max_size=2).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(rpcs)
def test_round_trip_and_exact_size(r: Rpc) -> None:
    body = codec.encode(r)
    assert codec.decode(body) == r
    assert codec.rpc_body_size(r) == len(body)


def test_envelope_size_matches_a_real_envelope() -> None:
    key = NodeKey.generate()
    for n in (0, 100, 200, 5000, 70000):
        env = seal(key, b"x" * n, now_ms=1_780_000_000_000, nonce=os.urandom(NONCE_BYTES))
        assert codec.envelope_size(n) == len(env.SerializeToString())


def _pb(**kw: object) -> bytes:
    m = wire_pb2.MeshMessage()
    m.pubsub.CopyFrom(wire_pb2.PubSub(src=b"\x01" * 20, **kw))  # type: ignore[arg-type]
    return m.SerializeToString()


@pytest.mark.parametrize(
    "body",
    [
        _pb(iwant=[b"short"]),
        _pb(idontwant=[b"\x00" * 29]),
        _pb(publish=[wire_pb2.PsMessage(origin=b"\x02" * 20, topic="t")]),  # no key/sig
        _pb(
            publish=[
                wire_pb2.PsMessage(
                    origin=b"\x02" * 19, origin_key=b"k" * 32, topic="t", signature=b"s" * 64
                )
            ]
        ),
        _pb(subscribe=["x" * 300]),
        _pb(iwant=[b"\x00" * 28] * 5001),
    ],
)
def test_malformed_rpcs_are_rejected(body: bytes) -> None:
    with pytest.raises(codec.WireError):
        codec.decode(body)


def test_rpc_without_src_is_rejected() -> None:
    m = wire_pb2.MeshMessage()
    m.pubsub.CopyFrom(wire_pb2.PubSub(subscribe=["t"]))
    with pytest.raises(codec.WireError):
        codec.decode(m.SerializeToString())
