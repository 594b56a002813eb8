"""Scheduler wire format: round trips, validation, and a decoder that never crashes."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.control.catalog import CatalogDigest
from hyperion.control.scheduler import MESSAGE_TYPES, Award, AwardReply, Bid, Release, Tender
from hyperion.mesh.records import GEOGRAPHIES
from hyperion.net import codec, wire_pb2
from hyperion.net.compat import wire_v1_pb2
from hyperion.policy.model import (
    AFFINITY_OPS,
    GOALS,
    INTERRUPTION_BANDS,
    KINDS,
    MAX_AFFINITY_TERMS,
    MAX_EXPRESSIONS,
    Candidate,
    MatchExpression,
    Request,
    VersionRange,
)

ids = st.binary(min_size=20, max_size=20).map(bytes.hex)
text = st.text(max_size=12)
words = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
geos = st.sampled_from(GEOGRAPHIES)
labels = st.dictionaries(words, text, max_size=5)
amounts = st.integers(0, 2**50)
finite = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=0, max_value=1)
rtts = st.dictionaries(geos | words, finite, max_size=5)
tender_ids = st.text(min_size=1, max_size=codec.MAX_TENDER_ID_CHARS)
pods = st.from_regex(r"[a-z0-9-]{1,63}/[a-z0-9.-]{1,253}", fullmatch=True)
version_ranges = st.sampled_from([">=0.2,<1", "=0.2.0", "version>=1.2.3", "!=0.3.1", "<2"])


@st.composite
def expressions(draw: st.DrawFn) -> MatchExpression:
    op = draw(st.sampled_from(AFFINITY_OPS))
    if op in ("In", "NotIn"):
        values = draw(st.lists(text, min_size=1, max_size=4))
    elif op in ("Gt", "Lt"):
        values = [str(draw(st.integers(-(10**9), 10**9)))]
    else:
        values = []
    return MatchExpression(draw(words), op, tuple(values))


@st.composite
def requests(draw: st.DrawFn) -> Request:
    replicas = draw(st.integers(1, 1000))
    gpus = draw(st.integers(0, 16))
    return Request(
        workload_id=draw(words),
        replica=draw(st.integers(0, replicas - 1)),
        replicas=replicas,
        kind=draw(st.sampled_from(KINDS)),
        cpu_millis=draw(amounts),
        memory_bytes=draw(amounts),
        gpus=gpus,
        gpu_model=draw(st.none() | words) if gpus else None,
        geographies=tuple(draw(st.lists(geos, max_size=3))),
        clouds=tuple(draw(st.lists(words, max_size=3))),
        node_selector=draw(labels),
        affinity=tuple(
            tuple(t)
            for t in draw(st.lists(st.lists(expressions(), min_size=1, max_size=3), max_size=3))
        ),
        version_range=draw(st.none() | version_ranges.map(VersionRange)),
        prefer_spot=draw(st.booleans()),
        data_locality=draw(st.none() | st.sampled_from(["aws:us-east-1", "gcp:europe-west4"])),
        goal=draw(st.sampled_from(GOALS)),
        users=tuple(draw(st.lists(st.tuples(geos, finite), max_size=3))),
        placed_rtt_ms=draw(rtts),
        placed_capacity=draw(rtts),
    )


@st.composite
def capacity(draw: st.DrawFn, top: int = 2**50) -> tuple[int, int]:
    total = draw(st.integers(0, top))
    return total, draw(st.integers(0, total))


@st.composite
def candidates(draw: st.DrawFn, node_id: str | None = None) -> Candidate:
    cpu, cpu_free = draw(capacity())
    mem, mem_free = draw(capacity())
    gpus, gpus_free = draw(capacity(64))
    return Candidate(
        node_id=node_id or draw(ids),
        cloud=draw(text),
        region=draw(text),
        zone=draw(text),
        geography=draw(st.none() | geos),
        price_per_hour=draw(finite),
        spot=draw(st.booleans()),
        interruption_band=draw(st.none() | st.integers(0, INTERRUPTION_BANDS - 1)),
        rtt_ms=draw(rtts),
        cpu_millis=cpu,
        cpu_millis_free=cpu_free,
        memory_bytes=mem,
        memory_bytes_free=mem_free,
        gpus=gpus,
        gpus_free=gpus_free,
        gpu_model=draw(st.none() | text),
        load=draw(unit),
        reliability=draw(unit),
        software_version=draw(text),
        protocol_versions=tuple(draw(st.lists(st.integers(0, 2**32 - 1), max_size=4))),
        labels=draw(labels),
        edge=draw(st.booleans()),
        speed=draw(st.floats(min_value=1e-3, max_value=1e3)),
        replicas_on_node=draw(st.integers(0, 2**31)),
        replicas_in_zone=draw(st.integers(0, 2**31)),
        replicas_in_region=draw(st.integers(0, 2**31)),
    )


@st.composite
def bids(draw: st.DrawFn) -> Bid:
    src = draw(ids)
    cand = draw(st.none() | candidates(node_id=src))
    return Bid(draw(tender_ids), src, cand, draw(text), draw(st.booleans()))


messages = st.one_of(
    st.builds(Tender, tender_ids, ids, pods, requests()),
    bids(),
    st.builds(Award, tender_ids, ids, pods, requests()),
    st.builds(AwardReply, tender_ids, ids, pods, st.booleans(), text),
    st.builds(Release, tender_ids, ids, pods),
)


@settings(max_examples=400, deadline=None)
@given(messages)
def test_round_trip(msg: object) -> None:
    assert codec.decode(codec.encode(msg)) == msg


def test_every_scheduler_message_type_has_a_wire_form() -> None:
    r = Request(workload_id="w")
    c = Candidate(node_id="ab" * 20, cloud="aws", region="us-east-1")
    samples = [
        Tender("t-1", "ab" * 20, "ns/p", r),
        Bid("t-1", "ab" * 20, c),
        Award("t-1", "ab" * 20, "ns/p", r),
        AwardReply("t-1", "ab" * 20, "ns/p", False, "insufficient cpu"),
        Release("t-1", "ab" * 20, "ns/p"),
    ]
    assert {type(m) for m in samples} == set(MESSAGE_TYPES)
    for m in samples:
        assert codec.decode(codec.encode(m)) == m


def test_a_bid_for_another_node_decodes_for_the_core_to_count_as_forged() -> None:
    cand = Candidate(node_id="cd" * 20, cloud="aws", region="us-east-1")
    msg = Bid("t-1", "ab" * 20, cand)
    back = codec.decode(codec.encode(msg))
    assert back == msg
    assert isinstance(back, Bid) and back.candidate is not None
    assert back.candidate.node_id != back.src


def test_a_tender_deadline_travels_and_none_is_infinite() -> None:
    r = Request(workload_id="w")
    back = codec.decode(codec.encode(Tender("t", "ab" * 20, "ns/p", r, 1_795_550_000.25)))
    assert isinstance(back, Tender) and back.deadline == 1_795_550_000.25
    back = codec.decode(codec.encode(Tender("t", "ab" * 20, "ns/p", r)))
    assert isinstance(back, Tender) and back.deadline == float("inf")


def test_optional_fields_keep_none_apart_from_empty() -> None:
    r = Request(workload_id="w", gpus=1, gpu_model="", data_locality=":")
    back = codec.decode(codec.encode(Tender("t", "ab" * 20, "ns/p", r)))
    assert isinstance(back, Tender)
    assert back.request.gpu_model == "" and back.request.data_locality == ":"
    c = Candidate(node_id="ab" * 20, cloud="", region="", geography=None, interruption_band=0)
    back_bid = codec.decode(codec.encode(Bid("t", "ab" * 20, c)))
    assert isinstance(back_bid, Bid) and back_bid.candidate is not None
    assert back_bid.candidate.interruption_band == 0 and back_bid.candidate.geography is None


# ---------------------------------------------------------------- version 1


def test_a_version_1_node_neither_sends_nor_understands_scheduler_messages() -> None:
    """As for catalog messages: the frozen v1 schema drops them, so encoding for v1
    yields a body of no known kind and a v1 node counts one as malformed."""
    catalog_v1 = codec.encode(CatalogDigest("ab" * 20, "a:1", (1,)), version=1)
    msg = Release("t-1", "ab" * 20, "ns/p")
    assert codec.encode(msg, version=1) == catalog_v1 == b""
    with pytest.raises(codec.WireError, match="no known kind"):
        codec.decode(codec.encode(msg), version=1)
    names = {f.name for f in wire_v1_pb2.MeshMessage.DESCRIPTOR.fields}
    assert not any(n.startswith("sched") for n in names)  # the frozen schema is untouched


# ---------------------------------------------------------------- malformed input

SRC = b"\x01" * 20


def _req(**kw: Any) -> wire_pb2.SchedRequest:
    base: dict[str, Any] = dict(
        workload_id="w", replicas=1, kind="service", goal="default", cpu_millis=100
    )
    base.update(kw)
    return wire_pb2.SchedRequest(**base)


def _cand(**kw: Any) -> wire_pb2.SchedCandidate:
    base: dict[str, Any] = dict(
        node_id=SRC, cloud="aws", region="r", reliability=1.0, speed=1.0, cpu_millis=10
    )
    base.update(kw)
    return wire_pb2.SchedCandidate(**base)


def _expr(key: str = "k", op: str = "In", values: tuple[str, ...] = ("v",)) -> Any:
    return wire_pb2.SchedMatchExpression(key=key, operator=op, values=list(values))


def _term(*exprs: Any) -> wire_pb2.SchedAffinityTerm:
    return wire_pb2.SchedAffinityTerm(expressions=list(exprs) or [_expr()])


def _tender(**kw: Any) -> bytes:
    base: dict[str, Any] = dict(src=SRC, tender_id="t-1", pod="ns/p", request=_req())
    base.update(kw)
    m = wire_pb2.MeshMessage()
    m.sched_tender.CopyFrom(wire_pb2.SchedTender(**base))
    return m.SerializeToString()


def _bid(**kw: Any) -> bytes:
    base: dict[str, Any] = dict(src=SRC, tender_id="t-1", candidate=_cand())
    base.update(kw)
    m = wire_pb2.MeshMessage()
    m.sched_bid.CopyFrom(wire_pb2.SchedBid(**base))
    return m.SerializeToString()


def _reply(**kw: Any) -> bytes:
    base: dict[str, Any] = dict(src=SRC, tender_id="t-1", pod="ns/p", accepted=True)
    base.update(kw)
    m = wire_pb2.MeshMessage()
    m.sched_award_reply.CopyFrom(wire_pb2.SchedAwardReply(**base))
    return m.SerializeToString()


def _release(**kw: Any) -> bytes:
    base: dict[str, Any] = dict(src=SRC, tender_id="t-1", pod="ns/p")
    base.update(kw)
    m = wire_pb2.MeshMessage()
    m.sched_release.CopyFrom(wire_pb2.SchedRelease(**base))
    return m.SerializeToString()


def test_valid_handmade_messages_decode() -> None:
    t = codec.decode(_tender(request=_req(affinity=[_term(_expr(op="Gt", values=("3",)))])))
    assert isinstance(t, Tender) and t.src == SRC.hex() and t.request.cpu_millis == 100
    assert t.request.affinity == ((MatchExpression("k", "Gt", ("3",)),),)
    b = codec.decode(_bid())
    assert isinstance(b, Bid) and b.candidate is not None and b.candidate.node_id == SRC.hex()
    decline = codec.decode(_bid(candidate=None, reason="full", resolvable=True))
    assert decline == Bid("t-1", SRC.hex(), None, "full", True)
    assert codec.decode(_release()) == Release("t-1", SRC.hex(), "ns/p")


NAN = math.nan
INF = math.inf
MANY = codec.MAX_SCHED_ITEMS + 1


@pytest.mark.parametrize(
    "body",
    [
        # ids and envelope fields
        pytest.param(_tender(src=b"short"), id="src-length"),
        pytest.param(_release(src=b""), id="no-src"),
        pytest.param(_bid(candidate=_cand(node_id=b"\x02" * 21)), id="candidate-id-length"),
        pytest.param(_tender(tender_id=""), id="empty-tender-id"),
        pytest.param(_reply(tender_id="t" * 65), id="long-tender-id"),
        pytest.param(_tender(pod=""), id="empty-pod"),
        pytest.param(_release(pod="p" * (codec.MAX_POD_CHARS + 1)), id="long-pod"),
        pytest.param(_reply(reason="r" * (codec.MAX_REASON_CHARS + 1)), id="long-reason"),
        pytest.param(_bid(candidate=None, reason="r" * 5000), id="long-decline-reason"),
        pytest.param(_tender(request=None), id="tender-without-request"),
        # request
        pytest.param(_tender(request=_req(workload_id="")), id="empty-workload"),
        pytest.param(_tender(request=_req(workload_id="w" * 400)), id="long-workload"),
        pytest.param(_tender(request=_req(cpu_millis=-1)), id="negative-cpu"),
        pytest.param(_tender(request=_req(memory_bytes=-(2**40))), id="negative-memory"),
        pytest.param(_tender(request=_req(gpus=-2)), id="negative-gpus"),
        pytest.param(_tender(request=_req(replica=3, replicas=3)), id="replica-out-of-range"),
        pytest.param(_tender(request=_req(kind="daemon")), id="unknown-kind"),
        pytest.param(_tender(request=_req(goal="fastest")), id="unknown-goal"),
        pytest.param(_tender(request=_req(gpu_model="T4")), id="gpu-model-without-gpus"),
        pytest.param(_tender(request=_req(geographies=["MARS"])), id="unknown-geography"),
        pytest.param(_tender(request=_req(geographies=["EU"] * MANY)), id="too-many-geographies"),
        pytest.param(_tender(request=_req(clouds=["aws"] * MANY)), id="too-many-clouds"),
        pytest.param(
            _tender(request=_req(node_selector={f"k{i}": "v" for i in range(MANY)})),
            id="too-many-selector-labels",
        ),
        pytest.param(_tender(request=_req(node_selector={"k" * 400: "v"})), id="long-selector-key"),
        pytest.param(_tender(request=_req(affinity=[_term(_expr(op="Near"))])), id="bad-operator"),
        pytest.param(_tender(request=_req(affinity=[_term(_expr(values=()))])), id="in-no-values"),
        pytest.param(
            _tender(request=_req(affinity=[_term(_expr(op="Exists"))])), id="exists-with-values"
        ),
        pytest.param(
            _tender(request=_req(affinity=[_term(_expr(op="Lt", values=("x",)))])),
            id="lt-not-integer",
        ),
        pytest.param(
            _tender(request=_req(affinity=[wire_pb2.SchedAffinityTerm()])), id="empty-term"
        ),
        pytest.param(
            _tender(request=_req(affinity=[_term()] * (MAX_AFFINITY_TERMS + 1))),
            id="too-many-terms",
        ),
        pytest.param(
            _tender(request=_req(affinity=[_term(*[_expr()] * (MAX_EXPRESSIONS + 1))])),
            id="too-many-expressions",
        ),
        pytest.param(
            _tender(request=_req(affinity=[_term(_expr(values=("v",) * MANY))])),
            id="too-many-values",
        ),
        pytest.param(_tender(request=_req(version_range="~1.2")), id="bad-version-range"),
        pytest.param(_tender(request=_req(version_range="zone=a")), id="non-version-bound"),
        pytest.param(_tender(request=_req(version_range="1" * 200)), id="long-version-range"),
        pytest.param(_tender(request=_req(data_locality="aws")), id="locality-without-region"),
        pytest.param(
            _tender(request=_req(users=[wire_pb2.SchedUser(geography="EU", weight=NAN)])),
            id="nan-user-weight",
        ),
        pytest.param(
            _tender(request=_req(users=[wire_pb2.SchedUser(geography="EU", weight=-1)])),
            id="negative-user-weight",
        ),
        pytest.param(
            _tender(request=_req(users=[wire_pb2.SchedUser(geography="XX", weight=1)])),
            id="unknown-user-geography",
        ),
        pytest.param(_tender(request=_req(placed_rtt_ms={"EU": NAN})), id="nan-placed-rtt"),
        pytest.param(_tender(request=_req(placed_rtt_ms={"EU": -1.0})), id="negative-placed-rtt"),
        pytest.param(_tender(request=_req(placed_capacity={"EU": NAN})), id="nan-placed-capacity"),
        # candidate
        pytest.param(_bid(candidate=_cand(price_per_hour=NAN)), id="nan-price"),
        pytest.param(_bid(candidate=_cand(price_per_hour=INF)), id="infinite-price"),
        pytest.param(_bid(candidate=_cand(price_per_hour=-1)), id="negative-price"),
        pytest.param(_bid(candidate=_cand(load=NAN)), id="nan-load"),
        pytest.param(_bid(candidate=_cand(load=1.5)), id="load-above-one"),
        pytest.param(_bid(candidate=_cand(reliability=NAN)), id="nan-reliability"),
        pytest.param(_bid(candidate=_cand(speed=0.0)), id="zero-speed"),
        pytest.param(_bid(candidate=_cand(speed=INF)), id="infinite-speed"),
        pytest.param(_bid(candidate=_cand(rtt_ms={"EU": NAN})), id="nan-rtt"),
        pytest.param(_bid(candidate=_cand(rtt_ms={"EU": INF})), id="infinite-rtt"),
        pytest.param(_bid(candidate=_cand(cpu_millis=-5)), id="negative-cpu-capacity"),
        pytest.param(_bid(candidate=_cand(cpu_millis_free=11)), id="free-cpu-over-capacity"),
        pytest.param(_bid(candidate=_cand(memory_bytes_free=-1)), id="negative-free-memory"),
        pytest.param(_bid(candidate=_cand(gpus=1, gpus_free=2)), id="free-gpus-over-capacity"),
        pytest.param(_bid(candidate=_cand(interruption_band=5)), id="interruption-band"),
        pytest.param(_bid(candidate=_cand(interruption_band=-1)), id="negative-band"),
        pytest.param(_bid(candidate=_cand(replicas_in_zone=-1)), id="negative-replica-count"),
        pytest.param(
            _bid(candidate=_cand(labels={f"k{i}": "v" for i in range(MANY)})),
            id="too-many-labels",
        ),
        pytest.param(_bid(candidate=_cand(labels={"k": "v" * 400})), id="long-label-value"),
        pytest.param(
            _bid(candidate=_cand(rtt_ms={f"g{i}": 1.0 for i in range(MANY)})), id="too-many-rtts"
        ),
        pytest.param(
            _bid(candidate=_cand(protocol_versions=[2] * (codec.MAX_PROTOCOL_VERSIONS + 1))),
            id="too-many-protocol-versions",
        ),
        pytest.param(_bid(candidate=_cand(software_version="1" * 200)), id="long-version"),
        pytest.param(_bid(candidate=_cand(region="r" * 400)), id="long-region"),
        pytest.param(_tender(deadline=float("nan")), id="nan-deadline"),
        pytest.param(_tender(deadline=float("inf")), id="infinite-deadline"),
        pytest.param(_tender(deadline=-1.0), id="negative-deadline"),
    ],
)
def test_malformed_scheduler_messages_are_rejected(body: bytes) -> None:
    with pytest.raises(codec.WireError):
        codec.decode(body)


def test_every_truncation_of_a_valid_message_is_rejected() -> None:
    r = Request(
        workload_id="w",
        gpus=1,
        affinity=((MatchExpression("zone", "In", ("a", "b")),),),
        users=(("EU", 1.0),),
    )
    c = Candidate(node_id="ab" * 20, cloud="aws", region="r", rtt_ms={"EU": 5.0})
    for msg in (Tender("t-1", "ab" * 20, "ns/p", r), Bid("t-1", "ab" * 20, c)):
        body = codec.encode(msg)
        for n in range(len(body)):
            with pytest.raises(codec.WireError):
                codec.decode(body[:n])


# ---------------------------------------------------------------- fuzzing


def _decode_or_wire_error(body: bytes) -> None:
    with contextlib.suppress(codec.WireError):
        codec.decode(body)


def _as_field(number: int, data: bytes) -> bytes:
    """``data`` as MeshMessage field ``number`` (a scheduler oneof member)."""
    tag = (number << 3) | 2
    length = len(data)
    varint = bytearray()
    while True:
        b, length = length & 0x7F, length >> 7
        varint.append(b | (0x80 if length else 0))
        if not length:
            break
    return bytes([tag & 0x7F | 0x80, tag >> 7]) + bytes(varint) + data


SCHED_FIELDS = [
    f.number for f in wire_pb2.MeshMessage.DESCRIPTOR.fields if f.name.startswith("sched_")
]


def test_scheduler_fields_are_where_the_fuzzer_looks() -> None:
    assert SCHED_FIELDS == [40, 41, 42, 43, 44]
    body = codec.encode(Release("t", "ab" * 20, "ns/p"))
    assert body == _as_field(44, body[3:])


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(SCHED_FIELDS))
def test_arbitrary_bytes_decode_or_raise_wire_error(data: bytes, field: int) -> None:
    _decode_or_wire_error(data)
    _decode_or_wire_error(_as_field(field, data))


@settings(max_examples=500, deadline=None)
@given(messages, st.data())
def test_mutated_valid_messages_decode_or_raise_wire_error(
    msg: object, data: st.DataObject
) -> None:
    body = bytearray(codec.encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        if not body:
            break
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    _decode_or_wire_error(bytes(body))


@settings(max_examples=200, deadline=None)
@given(messages, st.data())
def test_spliced_valid_messages_decode_or_raise_wire_error(
    msg: object, data: st.DataObject
) -> None:
    """Bytes cut out of or inserted into a valid encoding (lengths go out of step)."""
    body = codec.encode(msg)
    i = data.draw(st.integers(0, len(body)))
    j = data.draw(st.integers(i, len(body)))
    _decode_or_wire_error(body[:i] + data.draw(st.binary(max_size=8)) + body[j:])
