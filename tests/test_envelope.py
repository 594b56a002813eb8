"""Tests for hyperion.net.envelope (signed envelopes, replay guard) and hyperion.net.codec."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperion import PROTOCOL_VERSION
from hyperion.identity.keys import NODE_ID_BYTES, NodeKey
from hyperion.mesh.membership import (
    Ack,
    Broadcast,
    Gossip,
    Ping,
    PingReq,
    PushPull,
    Update,
)
from hyperion.net import codec, wire_pb2
from hyperion.net.envelope import (
    NONCE_BYTES,
    REPLAY_WINDOW_S,
    EnvelopeError,
    ReplayGuard,
    open_envelope,
    seal,
    verify,
)

NOW_MS = 1_700_000_000_000
WINDOW_MS = int(REPLAY_WINDOW_S * 1000)
KEY = NodeKey.generate()
OTHER = NodeKey.generate()
ID_A = "a" * 40
ID_B = "0123456789abcdef0123456789abcdef01234567"


def _nonce(i: int) -> bytes:
    return i.to_bytes(NONCE_BYTES, "big")


def _sealed(
    body: bytes = b"hello", *, key: NodeKey = KEY, now_ms: int = NOW_MS, nonce: bytes | None = None
) -> bytes:
    env = seal(key, body, now_ms=now_ms, nonce=nonce or os.urandom(NONCE_BYTES))
    return env.SerializeToString()


def _reason(data: bytes, *, now_ms: int = NOW_MS, guard: ReplayGuard | None = None) -> str:
    with pytest.raises(EnvelopeError) as exc:
        open_envelope(data, now_ms=now_ms, guard=guard or ReplayGuard())
    return exc.value.reason


def _tamper(data: bytes, **fields: object) -> bytes:
    env = wire_pb2.Envelope()
    env.ParseFromString(data)
    for name, value in fields.items():
        setattr(env, name, value)
    return env.SerializeToString()


# --- seal / open ----------------------------------------------------------------------


def test_seal_open_roundtrip() -> None:
    env = seal(KEY, b"body bytes", now_ms=NOW_MS, nonce=_nonce(1))
    assert isinstance(env, wire_pb2.Envelope)
    assert env.sender == bytes.fromhex(KEY.node_id)
    assert env.sender_key == KEY.public_bytes
    assert len(env.signature) == 64
    opened = open_envelope(env.SerializeToString(), now_ms=NOW_MS, guard=ReplayGuard())
    assert opened.sender == KEY.node_id
    assert opened.sender_key == KEY.public_bytes
    assert opened.protocol_version == PROTOCOL_VERSION
    assert opened.timestamp_ms == NOW_MS
    assert opened.body == b"body bytes"


def test_seal_keeps_explicit_version_and_empty_body() -> None:
    env = seal(KEY, b"", now_ms=NOW_MS, nonce=_nonce(2), version=7)
    opened = open_envelope(env.SerializeToString(), now_ms=NOW_MS, guard=ReplayGuard())
    assert opened.protocol_version == 7
    assert opened.body == b""


def test_seal_rejects_bad_nonce_length() -> None:
    with pytest.raises(ValueError):
        seal(KEY, b"x", now_ms=NOW_MS, nonce=b"short")


def test_replay_of_same_bytes_is_rejected() -> None:
    guard = ReplayGuard()
    data = _sealed(nonce=_nonce(3))
    open_envelope(data, now_ms=NOW_MS, guard=guard)
    assert _reason(data, now_ms=NOW_MS + 1, guard=guard) == "replay"
    # The same nonce from another sender is a different pair, hence accepted.
    open_envelope(_sealed(key=OTHER, nonce=_nonce(3)), now_ms=NOW_MS, guard=guard)


def test_timestamp_outside_window() -> None:
    assert _reason(_sealed(now_ms=NOW_MS - WINDOW_MS - 1)) == "stale"
    assert _reason(_sealed(now_ms=NOW_MS + WINDOW_MS + 1)) == "future"
    # The edges of the window are inside it.
    for ts in (NOW_MS - WINDOW_MS, NOW_MS + WINDOW_MS):
        open_envelope(_sealed(now_ms=ts), now_ms=NOW_MS, guard=ReplayGuard())


def test_tampered_fields_fail_signature() -> None:
    data = _sealed(b"original", nonce=_nonce(4))
    assert _reason(_tamper(data, body=b"forged")) == "bad_signature"
    assert _reason(_tamper(data, timestamp_ms=NOW_MS + 1)) == "bad_signature"
    assert _reason(_tamper(data, nonce=_nonce(5))) == "bad_signature"
    assert _reason(_tamper(data, protocol_version=PROTOCOL_VERSION + 1)) == "bad_signature"
    env = wire_pb2.Envelope()
    env.ParseFromString(data)
    sig = bytearray(env.signature)
    sig[0] ^= 1
    assert _reason(_tamper(data, signature=bytes(sig))) == "bad_signature"


def test_rejected_envelope_does_not_burn_its_nonce() -> None:
    guard = ReplayGuard()
    data = _sealed(nonce=_nonce(6))
    assert _reason(_tamper(data, body=b"forged"), guard=guard) == "bad_signature"
    open_envelope(data, now_ms=NOW_MS, guard=guard)


def test_sender_id_must_be_hash_of_key() -> None:
    data = _sealed()
    assert _reason(_tamper(data, sender=bytes.fromhex(OTHER.node_id))) == "id_mismatch"
    # Re-signed by OTHER but still claiming KEY's id: the id does not match OTHER's key.
    assert _reason(_tamper(_sealed(key=OTHER), sender=bytes.fromhex(KEY.node_id))) == (
        "id_mismatch"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",
        b"\x0a\x05ab",  # truncated length-delimited field
        b"",  # parses, but every field is missing
        wire_pb2.Envelope(protocol_version=1, sender=b"x" * 20).SerializeToString(),
    ],
)
def test_garbage_is_malformed(data: bytes) -> None:
    assert _reason(data) == "malformed"


def test_wrong_field_lengths_are_malformed() -> None:
    data = _sealed()
    assert _reason(_tamper(data, sender=b"\x00" * 19)) == "malformed"
    assert _reason(_tamper(data, sender_key=b"\x00" * 31)) == "malformed"
    assert _reason(_tamper(data, nonce=b"\x00" * 15)) == "malformed"
    assert _reason(_tamper(data, signature=b"\x00" * 63)) == "malformed"
    assert _reason(_tamper(data, protocol_version=0)) == "malformed"


def test_oversized_envelope_is_malformed() -> None:
    assert _reason(b"\x00" * ((4 << 20) + 1)) == "malformed"


def test_replay_guard_is_bounded_and_evicted_nonces_stay_rejected() -> None:
    guard = ReplayGuard(max_nonces=4)
    first = _sealed(now_ms=NOW_MS, nonce=_nonce(100))
    open_envelope(first, now_ms=NOW_MS, guard=guard)
    for i in range(1, 5):
        ts = NOW_MS + i
        open_envelope(_sealed(now_ms=ts, nonce=_nonce(100 + i)), now_ms=ts, guard=guard)
    assert len(guard._seen) <= 4
    # The first nonce was evicted: it must be refused (as stale), never accepted again.
    assert _reason(first, now_ms=NOW_MS + 5, guard=guard) == "stale"
    # A nonce still remembered is a replay.
    again = _sealed(now_ms=NOW_MS + 4, nonce=_nonce(104))
    assert _reason(again, now_ms=NOW_MS + 5, guard=guard) == "replay"
    # Fresh envelopes still flow.
    open_envelope(_sealed(now_ms=NOW_MS + 6), now_ms=NOW_MS + 6, guard=guard)
    assert len(guard._seen) <= 4


def test_replay_guard_forgets_nonces_outside_window() -> None:
    guard = ReplayGuard(window_s=1.0)
    data = _sealed(now_ms=NOW_MS, nonce=_nonce(200))
    open_envelope(data, now_ms=NOW_MS, guard=guard)
    later = NOW_MS + 5_000
    open_envelope(_sealed(now_ms=later), now_ms=later, guard=guard)
    assert len(guard._seen) == 1
    # Replaying the forgotten one is still refused: it is outside the window now.
    assert _reason(data, now_ms=later, guard=guard) == "stale"


def test_verify_checks_parsed_envelope() -> None:
    env = seal(KEY, b"x", now_ms=NOW_MS, nonce=_nonce(7))
    assert verify(env, now_ms=NOW_MS, guard=ReplayGuard()).body == b"x"


# --- robustness (hypothesis) ------------------------------------------------------------


def _mutations() -> st.SearchStrategy[bytes]:
    base = _sealed(nonce=_nonce(9))

    def mutate(args: tuple[int, int, bytes]) -> bytes:
        pos, cut, insert = args
        pos %= len(base) + 1
        return base[:pos] + insert + base[pos + cut :]

    return st.tuples(st.integers(0, 10_000), st.integers(0, 8), st.binary(max_size=8)).map(mutate)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=512), _mutations()))
def test_open_envelope_raises_only_envelope_error(data: bytes) -> None:
    try:
        opened = open_envelope(data, now_ms=NOW_MS, guard=ReplayGuard())
    except EnvelopeError as e:
        assert e.reason in {
            "malformed",
            "bad_signature",
            "id_mismatch",
            "stale",
            "future",
            "replay",
        }
    else:
        assert opened.sender == KEY.node_id


def _raw_updates() -> st.SearchStrategy[list[wire_pb2.Update]]:
    update = st.builds(
        wire_pb2.Update,
        node_id=st.binary(max_size=24),
        addr=st.text(max_size=8),
        incarnation=st.integers(0, 2**64 - 1),
        state=st.integers(-3, 6),
        name=st.text(max_size=8),
    )
    return st.lists(update, max_size=3)


def _raw_mesh_messages() -> st.SearchStrategy[bytes]:
    ids = st.binary(max_size=24)
    text = st.text(max_size=8)
    u64 = st.integers(0, 2**64 - 1)
    kinds = st.one_of(
        st.builds(
            lambda s, a, q, t, u: wire_pb2.MeshMessage(
                ping=wire_pb2.Ping(src=s, src_addr=a, seq=q, target=t, updates=u)
            ),
            ids,
            text,
            u64,
            ids,
            _raw_updates(),
        ),
        st.builds(
            lambda s, q, u: wire_pb2.MeshMessage(ack=wire_pb2.Ack(src=s, seq=q, updates=u)),
            ids,
            u64,
            _raw_updates(),
        ),
        st.builds(
            lambda s, u: wire_pb2.MeshMessage(gossip=wire_pb2.Gossip(src=s, updates=u)),
            ids,
            _raw_updates(),
        ),
        st.builds(
            lambda s, lo, hi, u: wire_pb2.MeshMessage(
                broadcast=wire_pb2.Broadcast(src=s, lo=lo, hi=hi, updates=u)
            ),
            ids,
            ids,
            ids,
            _raw_updates(),
        ),
        st.builds(
            lambda s, a, ids_, addrs, names, keys: wire_pb2.MeshMessage(
                push_pull=wire_pb2.PushPull(
                    src=s, src_addr=a, ids=ids_, addrs=addrs, names=names, keys=keys
                )
            ),
            ids,
            text,
            st.lists(ids, max_size=3),
            st.lists(text, max_size=3),
            st.lists(text, max_size=3),
            st.lists(u64, max_size=3),
        ),
    )
    return kinds.map(lambda m: m.SerializeToString())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=512), _raw_mesh_messages()))
def test_codec_decode_raises_only_wire_error(data: bytes) -> None:
    try:
        msg = codec.decode(data)
    except codec.WireError:
        return
    # Whatever decodes re-encodes to something that decodes to the same message.
    assert codec.decode(codec.encode(msg)) == msg


# --- codec ------------------------------------------------------------------------------

_node_ids = st.binary(min_size=NODE_ID_BYTES, max_size=NODE_ID_BYTES).map(bytes.hex)
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_u64 = st.integers(0, 2**64 - 1)
_updates = st.lists(
    st.builds(Update, _node_ids, _text, _u64, st.sampled_from([1, 2, 3]), _text), max_size=4
).map(tuple)
_id_ints = st.integers(0, (1 << 160) - 1)


def _broadcasts() -> st.SearchStrategy[Broadcast]:
    return st.builds(
        lambda src, a, b, ups: Broadcast(src, min(a, b), max(a, b), ups),
        _node_ids,
        _id_ints,
        _id_ints,
        _updates,
    )


def _push_pulls() -> st.SearchStrategy[PushPull]:
    @st.composite
    def build(draw: st.DrawFn) -> PushPull:
        n = draw(st.integers(0, 5))
        return PushPull(
            draw(_node_ids),
            draw(_text),
            draw(st.booleans()),
            draw(st.booleans()),
            tuple(draw(_node_ids) for _ in range(n)),
            tuple(draw(_text) for _ in range(n)),
            tuple(draw(_text) for _ in range(n)),
            tuple(draw(_u64) for _ in range(n)),
        )

    return build()


_messages = st.one_of(
    st.builds(Ping, _node_ids, _text, _u64, _node_ids, _updates),
    st.builds(Ack, _node_ids, _u64, _updates),
    st.builds(PingReq, _node_ids, _text, _u64, _node_ids, _text, _updates),
    st.builds(Gossip, _node_ids, _updates),
    _broadcasts(),
    _push_pulls(),
)


@settings(max_examples=300, deadline=None)
@given(_messages)
def test_codec_roundtrip_property(msg: object) -> None:
    assert codec.decode(codec.encode(msg)) == msg  # type: ignore[arg-type]


UPD = (Update(ID_B, "10.0.0.2:7946", 3, 2, "n2"), Update(ID_A, "", 0, 3, ""))
EXAMPLES = [
    Ping(ID_A, "127.0.0.1:1", 1, ID_B, UPD),
    Ping(ID_A, "127.0.0.1:1", 2, ID_B),
    Ack(ID_B, 2**64 - 1, UPD),
    PingReq(ID_A, "127.0.0.1:1", 5, ID_B, "127.0.0.1:2", UPD),
    Gossip(ID_A, UPD),
    Gossip(ID_A, ()),
    Broadcast(ID_A, 0, (1 << 160) - 1, UPD),
    Broadcast(ID_A, 42, 42, ()),
    PushPull(ID_A, "127.0.0.1:1", True, False, (ID_A, ID_B), ("a", "b"), ("n1", "n2"), (4, 9)),
    PushPull(ID_A, "127.0.0.1:1", False, True, (), (), (), ()),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_codec_roundtrip_every_message_type(msg: object) -> None:
    body = codec.encode(msg)  # type: ignore[arg-type]
    assert isinstance(body, bytes)
    assert codec.decode(body) == msg


def test_codec_covers_every_message_type() -> None:
    assert {type(m) for m in EXAMPLES} == {Ping, Ack, PingReq, Gossip, Broadcast, PushPull}


def test_codec_encode_rejects_unknown_type() -> None:
    with pytest.raises(TypeError):
        codec.encode(object())  # type: ignore[arg-type]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _unknown_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def test_unknown_fields_are_ignored_in_body_and_envelope() -> None:
    msg = Ping(ID_A, "127.0.0.1:1", 1, ID_B, UPD)
    body = codec.encode(msg) + _unknown_field(1000, b"from a newer version")
    assert codec.decode(body) == msg
    # Inside a signed envelope, and with an unknown field on the envelope itself too.
    data = _sealed(body, nonce=_nonce(300)) + _unknown_field(1001, b"envelope extension")
    opened = open_envelope(data, now_ms=NOW_MS, guard=ReplayGuard())
    assert opened.body == body
    assert codec.decode(opened.body) == msg


def _ping_pb(**overrides: object) -> wire_pb2.Ping:
    fields: dict[str, object] = {
        "src": bytes.fromhex(ID_A),
        "src_addr": "a",
        "seq": 1,
        "target": bytes.fromhex(ID_B),
    }
    fields.update(overrides)
    return wire_pb2.Ping(**fields)  # type: ignore[arg-type]


def _decode_err(m: wire_pb2.MeshMessage) -> None:
    with pytest.raises(codec.WireError):
        codec.decode(m.SerializeToString())


def test_codec_rejects_19_byte_node_ids() -> None:
    short = b"\x01" * 19
    _decode_err(wire_pb2.MeshMessage(ping=_ping_pb(src=short)))
    _decode_err(wire_pb2.MeshMessage(ping=_ping_pb(target=short)))
    _decode_err(wire_pb2.MeshMessage(ack=wire_pb2.Ack(src=short)))
    _decode_err(wire_pb2.MeshMessage(gossip=wire_pb2.Gossip(src=short)))
    upd = wire_pb2.Update(node_id=short, state=1)
    _decode_err(wire_pb2.MeshMessage(gossip=wire_pb2.Gossip(src=bytes(20), updates=[upd])))
    pp = wire_pb2.PushPull(src=bytes(20), ids=[short], addrs=["a"], names=["n"], keys=[4])
    _decode_err(wire_pb2.MeshMessage(push_pull=pp))


@pytest.mark.parametrize("state", [0, 4, 99, -1])
def test_codec_rejects_unknown_member_state(state: int) -> None:
    upd = wire_pb2.Update(node_id=bytes(20), state=state)  # type: ignore[arg-type]
    _decode_err(wire_pb2.MeshMessage(ack=wire_pb2.Ack(src=bytes(20), updates=[upd])))


def test_codec_rejects_empty_broadcast_range() -> None:
    lo = (5).to_bytes(NODE_ID_BYTES, "big")
    hi = (4).to_bytes(NODE_ID_BYTES, "big")
    _decode_err(wire_pb2.MeshMessage(broadcast=wire_pb2.Broadcast(src=bytes(20), lo=lo, hi=hi)))
    _decode_err(
        wire_pb2.MeshMessage(broadcast=wire_pb2.Broadcast(src=bytes(20), lo=b"\x00" * 19, hi=hi))
    )
    ok = wire_pb2.MeshMessage(broadcast=wire_pb2.Broadcast(src=bytes(20), lo=hi, hi=hi))
    assert codec.decode(ok.SerializeToString()) == Broadcast("00" * 20, 4, 4, ())


def test_codec_rejects_ragged_push_pull_and_empty_message() -> None:
    pp = wire_pb2.PushPull(src=bytes(20), ids=[bytes(20)], addrs=["a"], names=[], keys=[4])
    _decode_err(wire_pb2.MeshMessage(push_pull=pp))
    _decode_err(wire_pb2.MeshMessage())
