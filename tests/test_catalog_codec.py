"""Catalog wire format: round trips, exact size accounting, and a decoder that never crashes."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.control.catalog import (
    MAX_OBJECT_BYTES,
    CatalogDelta,
    CatalogDigest,
    CatalogItem,
    Key,
    encode_object,
)
from hyperion.control.hlc import Timestamp
from hyperion.net import codec, wire_pb2
from hyperion.net.compat import wire_v1_pb2

ids = st.binary(min_size=20, max_size=20).map(bytes.hex)
ascii_text = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=12)
long_text = st.text(st.characters(min_codepoint=1, max_codepoint=127), min_size=1, max_size=253)
keys = st.tuples(
    st.from_regex(r"[a-z.]{0,12}/[a-z]{1,12}", fullmatch=True),
    ascii_text | long_text,
    ascii_text.filter(bool) | long_text,
)
stamps = st.builds(Timestamp, st.integers(0, codec.MAX_WALL_MS), st.integers(0, 2**40), ids)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


@st.composite
def items(draw: st.DrawFn) -> CatalogItem:
    o = draw(st.none() | objects)
    return CatalogItem(draw(keys), draw(stamps), o, 0 if o is None else len(encode_object(o)))


digests = st.builds(
    CatalogDigest,
    ids,
    st.text(max_size=30),
    st.lists(st.integers(0, 2**64 - 1), max_size=70).map(tuple),
)
deltas = st.builds(
    CatalogDelta,
    ids,
    st.text(max_size=30),
    st.booleans(),
    st.lists(items(), max_size=4).map(tuple),
    st.lists(st.integers(0, 4095), max_size=6).map(tuple),
    st.lists(st.tuples(keys, stamps), max_size=4).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(digests | deltas)
def test_round_trip_and_exact_size(msg: CatalogDigest | CatalogDelta) -> None:
    body = codec.encode(msg)
    back = codec.decode(body)
    assert back == msg
    assert codec.catalog_body_size(msg) == len(body)
    if isinstance(msg, CatalogDelta):
        assert isinstance(back, CatalogDelta)
        assert [it.nbytes for it in back.items] == [it.nbytes for it in msg.items]


def test_a_version_1_node_counts_catalog_messages_as_malformed() -> None:
    body = codec.encode(CatalogDigest("ab" * 20, "a:1", (1, 2)))
    with pytest.raises(codec.WireError, match="no known kind"):
        codec.decode(body, version=1)
    names = {f.name for f in wire_v1_pb2.MeshMessage.DESCRIPTOR.fields}
    assert not any(n.startswith("catalog") for n in names)  # the frozen schema is untouched


SRC = b"\x01" * 20
NODE = b"\x02" * 20


def _item(**kw: Any) -> wire_pb2.CatalogItem:
    base: dict[str, Any] = dict(
        resource="/configmaps", namespace="ns", name="x", wall_ms=5, node=NODE, object=b"{}"
    )
    base.update(kw)
    return wire_pb2.CatalogItem(**base)


def _delta(**kw: Any) -> bytes:
    m = wire_pb2.MeshMessage()
    kw.setdefault("src", SRC)
    m.catalog_delta.CopyFrom(wire_pb2.CatalogDelta(**kw))
    return m.SerializeToString()


def _digest(**kw: Any) -> bytes:
    m = wire_pb2.MeshMessage()
    kw.setdefault("src", SRC)
    m.catalog_digest.CopyFrom(wire_pb2.CatalogDigest(**kw))
    return m.SerializeToString()


def test_a_valid_handmade_delta_decodes() -> None:
    msg = codec.decode(_delta(items=[_item(), _item(deleted=True, object=b"")]))
    assert isinstance(msg, CatalogDelta)
    key: Key = ("/configmaps", "ns", "x")
    assert msg.items[0] == CatalogItem(key, Timestamp(5, 0, NODE.hex()), {}, 2)
    assert msg.items[1].obj is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_digest(src=b"short"), id="src-length"),
        pytest.param(_digest(buckets=[0] * 4097), id="too-many-buckets"),
        pytest.param(_digest(src_addr="a" * 300), id="long-addr"),
        pytest.param(_delta(items=[_item(node=b"\x02" * 19)]), id="node-id-length"),
        pytest.param(_delta(items=[_item(resource="configmaps")]), id="resource-without-slash"),
        pytest.param(_delta(items=[_item(name="")]), id="empty-name"),
        pytest.param(_delta(items=[_item(name="n" * 254)]), id="long-name"),
        pytest.param(_delta(items=[_item(namespace="caf\u00e9")]), id="non-ascii-key"),
        pytest.param(_delta(items=[_item(wall_ms=codec.MAX_WALL_MS + 1)]), id="wall-clock"),
        pytest.param(_delta(items=[_item(logical=2**63)]), id="logical"),
        pytest.param(_delta(items=[_item(deleted=True)]), id="tombstone-with-object"),
        pytest.param(_delta(items=[_item(object=b"")]), id="no-object"),
        pytest.param(_delta(items=[_item(object=b"[1, 2]")]), id="json-not-an-object"),
        pytest.param(_delta(items=[_item(object=b'{"x": NaN}')]), id="json-nan"),
        pytest.param(_delta(items=[_item(object=b'{"x": 1')]), id="json-truncated"),
        pytest.param(_delta(items=[_item(object=b'{"x": "\xff"}')]), id="json-bad-utf8"),
        pytest.param(_delta(items=[_item(object=b"[" * 200_000)]), id="json-deep"),
        pytest.param(
            _delta(items=[_item(object=b'{"x":"' + b"y" * MAX_OBJECT_BYTES + b'"}')]),
            id="object-too-large",
        ),
        pytest.param(_delta(items=[_item()] * 4097), id="too-many-items"),
        pytest.param(_delta(buckets=[4096]), id="bucket-index"),
        pytest.param(
            _delta(summary=[wire_pb2.CatalogStamp(resource="/x", name="n", node=b"")]),
            id="stamp-node-id",
        ),
        pytest.param(_delta(src=b""), id="no-src"),
    ],
)
def test_malformed_catalog_messages_are_rejected(body: bytes) -> None:
    with pytest.raises(codec.WireError):
        codec.decode(body)


def _decode_or_wire_error(body: bytes) -> None:
    with contextlib.suppress(codec.WireError):
        codec.decode(body)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_decode_or_raise_wire_error(data: bytes) -> None:
    _decode_or_wire_error(data)
    _decode_or_wire_error(b"\xfa\x01" + bytes([len(data) & 0x7F]) + data)  # as field 31


@settings(max_examples=300, deadline=None)
@given(digests | deltas, st.data())
def test_mutated_valid_messages_decode_or_raise_wire_error(
    msg: CatalogDigest | CatalogDelta, data: st.DataObject
) -> None:
    body = bytearray(codec.encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        if not body:
            break
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    _decode_or_wire_error(bytes(body))
