"""DHT messages on the wire: exact round trips, and malformed input rejected with WireError."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyperion.mesh import dht
from hyperion.mesh.crypto import signed_record, verify_record
from hyperion.net import codec, wire_pb2
from hyperion.sim.dht_run import sim_key

ID = st.binary(min_size=20, max_size=20).map(bytes.hex)
ADDR = st.text(max_size=40)
U64 = st.integers(min_value=0, max_value=2**64 - 1)


def record() -> dht.Record:
    return signed_record(sim_key(7, 1), b'{"cpu_millis": 4000}', 3, expires_at=1_800_000_000.5)


def test_every_dht_message_round_trips() -> None:
    rec = record()
    contacts = (dht.Contact("ab" * 20, "10.0.0.1:7946"), dht.Contact("cd" * 20, "h:1"))
    for msg in (
        dht.FindNode("01" * 20, "a:1", 5, "02" * 20),
        dht.FindValue("01" * 20, "a:1", 6, rec.key),
        dht.Nodes("01" * 20, 7, contacts),
        dht.Nodes("01" * 20, 8, (), rec),
        dht.Store("01" * 20, "a:1", 9, rec),
        dht.StoreAck("01" * 20, 10, False, "stale_version"),
    ):
        assert codec.decode(codec.encode(msg)) == msg
    # The signature still verifies after the trip (expiry is a double, exactly preserved).
    back = codec.decode(codec.encode(dht.Store("01" * 20, "a:1", 1, rec)))
    assert isinstance(back, dht.Store) and verify_record(back.record)


@given(ID, ADDR, U64, ID)
def test_find_node_round_trips(src: str, addr: str, rid: int, target: str) -> None:
    msg = dht.FindNode(src, addr, rid, target)
    assert codec.decode(codec.encode(msg)) == msg


def _with_record(**overrides: object) -> bytes:
    rec = record()
    pb = wire_pb2.DhtRecord(
        key=bytes.fromhex(rec.key),
        value=rec.value,
        author=bytes.fromhex(rec.author),
        author_key=rec.author_key,
        version=rec.version,
        expires_at=rec.expires_at,
        signature=rec.signature,
    )
    for k, v in overrides.items():
        setattr(pb, k, v)
    m = wire_pb2.MeshMessage()
    m.dht_store.CopyFrom(wire_pb2.DhtStore(src=b"\x01" * 20, src_addr="a:1", rid=1, record=pb))
    return m.SerializeToString()


@pytest.mark.parametrize(
    "overrides",
    [
        {"key": b"\x00" * 19},
        {"author_key": b"\x00" * 31},
        {"signature": b"\x00" * 63},
        {"expires_at": math.inf},
        {"expires_at": math.nan},
        {"value": b"x" * (dht.MAX_RECORD_BYTES + 1)},
    ],
)
def test_malformed_records_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(codec.WireError):
        codec.decode(_with_record(**overrides))


def test_store_without_record_and_too_many_contacts_are_rejected() -> None:
    m = wire_pb2.MeshMessage()
    m.dht_store.CopyFrom(wire_pb2.DhtStore(src=b"\x01" * 20, src_addr="a:1", rid=1))
    with pytest.raises(codec.WireError):
        codec.decode(m.SerializeToString())
    m = wire_pb2.MeshMessage()
    m.dht_nodes.CopyFrom(
        wire_pb2.DhtNodes(
            src=b"\x01" * 20,
            rid=1,
            contacts=[wire_pb2.DhtContact(node_id=b"\x02" * 20, addr="x:1")] * 65,
        )
    )
    with pytest.raises(codec.WireError):
        codec.decode(m.SerializeToString())
