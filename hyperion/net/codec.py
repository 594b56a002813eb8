"""Conversion between core messages (frozen dataclasses) and protobuf, done once at the edge.

``encode`` and ``decode`` are exact inverses for valid messages. ``decode`` validates
everything a peer could get wrong — id lengths, enum values, sizes — and raises
``WireError`` for anything malformed; unknown fields from newer versions are ignored by
protobuf itself.

Versions: ``version=1`` makes a node speak protocol version 1 exactly as release 0.1
did: what it sends, and what it understands of what it receives, pass through the
frozen version-1 schema (``compat/wire_v1.proto``), which drops the fields version 2
added. Tests and ``hyperion node start --wire-version 1`` use it to run mixed meshes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from hyperion import PROTOCOL_VERSION
from hyperion.control import catalog as cat
from hyperion.control.hlc import Timestamp
from hyperion.identity.keys import NODE_ID_BYTES
from hyperion.mesh import dht, pubsub
from hyperion.mesh.membership import (
    Ack,
    Broadcast,
    Gossip,
    Ping,
    PingReq,
    PushPull,
    Update,
)
from hyperion.net import wire_pb2
from hyperion.net.compat import wire_v1_pb2

if TYPE_CHECKING:
    from hyperion.policy import model

SUPPORTED_VERSIONS = (1, 2)

MAX_UPDATES = 256  # rumors in one message; senders put at most 16
MAX_CONTACTS = 64  # contacts in one DHT reply; senders put at most k = 20
MAX_PUSH_PULL_MEMBERS = 100_000  # members in one full-state sync
MAX_ADDR_CHARS = 256
MAX_NAME_CHARS = 128
MAX_RPC_ITEMS = 5_000  # ids, topics or messages in one pub/sub RPC field
MSG_ID_BYTES = NODE_ID_BYTES + 8
MAX_CATALOG_ITEMS = 4096  # entries in one catalog delta; senders put at most 256
MAX_CATALOG_SUMMARY = 65_536  # stamps in one catalog reply; senders put at most 16,384
MAX_CATALOG_BUCKETS = 4096  # digest length; nodes use CatalogConfig.buckets (64)
MAX_WALL_MS = 253_402_300_799_999  # the end of year 9999: anything later is a broken clock
MAX_LOGICAL = 1 << 62  # HLC counters stay tiny; this leaves room to count up, never overflow
MAX_TENDER_ID_CHARS = 64  # schedulers use "<12 hex digits>-<sequence>"
MAX_POD_CHARS = 253 + 1 + 63  # "namespace/name"; also workload ids
MAX_SCHED_ITEMS = 64  # labels, selector entries, geographies, clouds, users, RTTs, values
MAX_LABEL_CHARS = 253 + 1 + 63  # a label key "prefix/name"; also values, clouds, regions
MAX_REASON_CHARS = 1024  # a decline's reason ("not in geographies [EU]")
MAX_VERSION_CHARS = 128  # software versions and version ranges
MAX_PROTOCOL_VERSIONS = 16


class WireError(ValueError):
    """A message body could not be decoded or failed validation."""


MAX_RAFT_BYTES = 8 << 20  # one Raft message; the raft codec checks what is inside


@dataclass(frozen=True, slots=True)
class RaftPayload:
    """A Raft message of the workplane (``MeshMessage.raft``), still serialized: the mesh
    codec does not look inside; ``hyperion.workplane.raft_codec`` decodes it strictly
    and the receiver checks that its ``src`` is the envelope's signer."""

    data: bytes


def _id(raw: bytes) -> str:
    if len(raw) != NODE_ID_BYTES:
        raise WireError("node id must be 20 bytes")
    return raw.hex()


def _text(s: str, limit: int, what: str) -> str:
    if len(s) > limit:
        raise WireError(f"{what} longer than {limit} characters")
    return s


def _update_pb(u: Update) -> wire_pb2.Update:
    return wire_pb2.Update(
        node_id=bytes.fromhex(u.node_id),
        addr=u.addr,
        incarnation=u.incarnation,
        state=u.state,  # type: ignore[arg-type]
        name=u.name,
    )


def _updates(pbs: object) -> tuple[Update, ...]:
    items = list(pbs)  # type: ignore[call-overload]
    if len(items) > MAX_UPDATES:
        raise WireError(f"more than {MAX_UPDATES} updates")
    out = []
    for p in items:
        if p.state not in (1, 2, 3):
            raise WireError("unknown member state")
        out.append(
            Update(
                _id(p.node_id),
                _text(p.addr, MAX_ADDR_CHARS, "addr"),
                p.incarnation,
                p.state,
                _text(p.name, MAX_NAME_CHARS, "name"),
            )
        )
    return tuple(out)


def _record_pb(r: dht.Record) -> wire_pb2.DhtRecord:
    return wire_pb2.DhtRecord(
        key=bytes.fromhex(r.key),
        value=r.value,
        author=bytes.fromhex(r.author),
        author_key=r.author_key,
        version=r.version,
        expires_at=r.expires_at,
        signature=r.signature,
    )


def _record(p: wire_pb2.DhtRecord) -> dht.Record:
    if len(p.value) > dht.MAX_RECORD_BYTES:
        raise WireError("record value too large")
    if len(p.author_key) != 32 or len(p.signature) != 64:
        raise WireError("record key or signature has the wrong length")
    if not math.isfinite(p.expires_at):
        raise WireError("record expiry is not a finite time")
    return dht.Record(
        _id(p.key), p.value, _id(p.author), p.author_key, p.version, p.expires_at, p.signature
    )


def _contacts(pbs: object) -> tuple[dht.Contact, ...]:
    items = list(pbs)  # type: ignore[call-overload]
    if len(items) > MAX_CONTACTS:
        raise WireError(f"more than {MAX_CONTACTS} contacts")
    return tuple(dht.Contact(_id(c.node_id), _text(c.addr, MAX_ADDR_CHARS, "addr")) for c in items)


def _encode_dht(msg: object, m: wire_pb2.MeshMessage) -> bool:
    if isinstance(msg, dht.FindNode):
        m.dht_find_node.CopyFrom(
            wire_pb2.DhtFindNode(
                src=bytes.fromhex(msg.src),
                src_addr=msg.src_addr,
                rid=msg.rid,
                target=bytes.fromhex(msg.target),
            )
        )
    elif isinstance(msg, dht.FindValue):
        m.dht_find_value.CopyFrom(
            wire_pb2.DhtFindValue(
                src=bytes.fromhex(msg.src),
                src_addr=msg.src_addr,
                rid=msg.rid,
                key=bytes.fromhex(msg.key),
            )
        )
    elif isinstance(msg, dht.Nodes):
        pb = wire_pb2.DhtNodes(
            src=bytes.fromhex(msg.src),
            rid=msg.rid,
            contacts=[
                wire_pb2.DhtContact(node_id=bytes.fromhex(c.node_id), addr=c.addr)
                for c in msg.contacts
            ],
        )
        if msg.record is not None:
            pb.record.CopyFrom(_record_pb(msg.record))
        m.dht_nodes.CopyFrom(pb)
    elif isinstance(msg, dht.Store):
        m.dht_store.CopyFrom(
            wire_pb2.DhtStore(
                src=bytes.fromhex(msg.src),
                src_addr=msg.src_addr,
                rid=msg.rid,
                record=_record_pb(msg.record),
            )
        )
    elif isinstance(msg, dht.StoreAck):
        m.dht_store_ack.CopyFrom(
            wire_pb2.DhtStoreAck(
                src=bytes.fromhex(msg.src),
                rid=msg.rid,
                accepted=msg.accepted,
                reason=msg.reason,
            )
        )
    else:
        return False
    return True


def _decode_dht(kind: str, m: wire_pb2.MeshMessage) -> object:
    if kind == "dht_find_node":
        f = m.dht_find_node
        return dht.FindNode(
            _id(f.src), _text(f.src_addr, MAX_ADDR_CHARS, "addr"), f.rid, _id(f.target)
        )
    if kind == "dht_find_value":
        v = m.dht_find_value
        return dht.FindValue(
            _id(v.src), _text(v.src_addr, MAX_ADDR_CHARS, "addr"), v.rid, _id(v.key)
        )
    if kind == "dht_nodes":
        n = m.dht_nodes
        record = _record(n.record) if n.HasField("record") else None
        return dht.Nodes(_id(n.src), n.rid, _contacts(n.contacts), record)
    if kind == "dht_store":
        s = m.dht_store
        if not s.HasField("record"):
            raise WireError("store without a record")
        return dht.Store(
            _id(s.src), _text(s.src_addr, MAX_ADDR_CHARS, "addr"), s.rid, _record(s.record)
        )
    a = m.dht_store_ack
    return dht.StoreAck(_id(a.src), a.rid, a.accepted, _text(a.reason, MAX_NAME_CHARS, "reason"))


def _mid_bytes(mid: pubsub.MsgId) -> bytes:
    return bytes.fromhex(mid[0]) + mid[1].to_bytes(8, "big")


def _mid(raw: bytes) -> pubsub.MsgId:
    if len(raw) != MSG_ID_BYTES:
        raise WireError(f"message id must be {MSG_ID_BYTES} bytes")
    return (raw[:NODE_ID_BYTES].hex(), int.from_bytes(raw[NODE_ID_BYTES:], "big"))


def _items(pbs: object, what: str) -> list:  # type: ignore[type-arg]
    items = list(pbs)  # type: ignore[call-overload]
    if len(items) > MAX_RPC_ITEMS:
        raise WireError(f"more than {MAX_RPC_ITEMS} {what}")
    return items


def _topics(pbs: object) -> tuple[str, ...]:
    return tuple(_text(t, pubsub.MAX_TOPIC_CHARS, "topic") for t in _items(pbs, "topics") if t)


def _ps_message_pb(x: pubsub.Message) -> wire_pb2.PsMessage:
    return wire_pb2.PsMessage(
        origin=bytes.fromhex(x.origin),
        origin_key=x.origin_key,
        seqno=x.seqno,
        topic=x.topic,
        data=x.data,
        signature=x.signature,
    )


def _ps_message(p: wire_pb2.PsMessage) -> pubsub.Message:
    if len(p.origin_key) != 32 or len(p.signature) != 64:
        raise WireError("pub/sub message key or signature has the wrong length")
    if not p.topic:
        raise WireError("pub/sub message without a topic")
    return pubsub.Message(
        _id(p.origin),
        p.origin_key,
        p.seqno,
        _text(p.topic, pubsub.MAX_TOPIC_CHARS, "topic"),
        p.data,
        p.signature,
    )


def _encode_pubsub(r: pubsub.Rpc) -> wire_pb2.PubSub:
    return wire_pb2.PubSub(
        src=bytes.fromhex(r.src),
        src_addr=r.src_addr,
        subscribe=list(r.subscribe),
        unsubscribe=list(r.unsubscribe),
        publish=[_ps_message_pb(x) for x in r.publish],
        ihave=[
            wire_pb2.PsIHave(topic=ih.topic, ids=[_mid_bytes(i) for i in ih.ids]) for ih in r.ihave
        ],
        iwant=[_mid_bytes(i) for i in r.iwant],
        graft=list(r.graft),
        prune=list(r.prune),
        idontwant=[_mid_bytes(i) for i in r.idontwant],
        choke=list(r.choke),
        unchoke=list(r.unchoke),
    )


def _decode_pubsub(p: wire_pb2.PubSub) -> pubsub.Rpc:
    ihave = []
    for ih in _items(p.ihave, "ihave entries"):
        ihave.append(
            pubsub.IHave(
                _text(ih.topic, pubsub.MAX_TOPIC_CHARS, "topic"),
                tuple(_mid(i) for i in _items(ih.ids, "message ids")),
            )
        )
    return pubsub.Rpc(
        _id(p.src),
        _text(p.src_addr, MAX_ADDR_CHARS, "addr"),
        _topics(p.subscribe),
        _topics(p.unsubscribe),
        tuple(_ps_message(x) for x in _items(p.publish, "messages")),
        tuple(ihave),
        tuple(_mid(i) for i in _items(p.iwant, "message ids")),
        _topics(p.graft),
        _topics(p.prune),
        tuple(_mid(i) for i in _items(p.idontwant, "message ids")),
        _topics(p.choke),
        _topics(p.unchoke),
    )


def _cat_ts(p: wire_pb2.CatalogItem | wire_pb2.CatalogStamp) -> Timestamp:
    if p.wall_ms > MAX_WALL_MS or p.logical > MAX_LOGICAL:
        raise WireError("catalog timestamp out of range")
    return Timestamp(p.wall_ms, p.logical, _id(p.node))


def _cat_key(p: wire_pb2.CatalogItem | wire_pb2.CatalogStamp) -> cat.Key:
    key = (p.resource, p.namespace, p.name)
    err = cat.key_error(key)
    if err is not None:
        raise WireError(err)
    return key


def _cat_item_pb(it: cat.CatalogItem) -> wire_pb2.CatalogItem:
    r, ns, name = it.key
    return wire_pb2.CatalogItem(
        resource=r,
        namespace=ns,
        name=name,
        wall_ms=it.ts.wall_ms,
        logical=it.ts.logical,
        node=bytes.fromhex(it.ts.node),
        object=b"" if it.obj is None else cat.encode_object(it.obj),
        deleted=it.obj is None,
    )


def _cat_item(p: wire_pb2.CatalogItem) -> cat.CatalogItem:
    key, ts = _cat_key(p), _cat_ts(p)
    if p.deleted:
        if p.object:
            raise WireError("a catalog tombstone carries no object")
        return cat.CatalogItem(key, ts, None, 0)
    try:
        obj = cat.decode_object(p.object)
    except ValueError as e:
        raise WireError(str(e)) from None
    return cat.CatalogItem(key, ts, obj, len(p.object))


def _cat_stamp_pb(key: cat.Key, ts: Timestamp) -> wire_pb2.CatalogStamp:
    return wire_pb2.CatalogStamp(
        resource=key[0],
        namespace=key[1],
        name=key[2],
        wall_ms=ts.wall_ms,
        logical=ts.logical,
        node=bytes.fromhex(ts.node),
    )


def _encode_catalog(msg: object, m: wire_pb2.MeshMessage) -> bool:
    if isinstance(msg, cat.CatalogDigest):
        m.catalog_digest.CopyFrom(
            wire_pb2.CatalogDigest(
                src=bytes.fromhex(msg.src), src_addr=msg.src_addr, buckets=list(msg.buckets)
            )
        )
    elif isinstance(msg, cat.CatalogDelta):
        m.catalog_delta.CopyFrom(
            wire_pb2.CatalogDelta(
                src=bytes.fromhex(msg.src),
                src_addr=msg.src_addr,
                reply=msg.reply,
                items=[_cat_item_pb(it) for it in msg.items],
                buckets=list(msg.buckets),
                summary=[_cat_stamp_pb(k, ts) for k, ts in msg.summary],
            )
        )
    else:
        return False
    return True


def _decode_catalog(kind: str, m: wire_pb2.MeshMessage) -> object:
    if kind == "catalog_digest":
        d = m.catalog_digest
        if len(d.buckets) > MAX_CATALOG_BUCKETS:
            raise WireError(f"more than {MAX_CATALOG_BUCKETS} digest buckets")
        return cat.CatalogDigest(
            _id(d.src), _text(d.src_addr, MAX_ADDR_CHARS, "addr"), tuple(d.buckets)
        )
    x = m.catalog_delta
    if len(x.items) > MAX_CATALOG_ITEMS:
        raise WireError(f"more than {MAX_CATALOG_ITEMS} catalog items")
    if len(x.summary) > MAX_CATALOG_SUMMARY:
        raise WireError(f"more than {MAX_CATALOG_SUMMARY} catalog stamps")
    if len(x.buckets) > MAX_CATALOG_BUCKETS or any(b >= MAX_CATALOG_BUCKETS for b in x.buckets):
        raise WireError("catalog bucket index out of range")
    return cat.CatalogDelta(
        _id(x.src),
        _text(x.src_addr, MAX_ADDR_CHARS, "addr"),
        x.reply,
        tuple(_cat_item(p) for p in x.items),
        tuple(x.buckets),
        tuple((_cat_key(p), _cat_ts(p)) for p in x.summary),
    )


# ---------------------------------------------------------------- scheduler
# Tender -> bid -> award (hyperion/control/scheduler.py), protocol version 2. The
# scheduler and policy modules are imported on first use: hyperion.policy.model imports
# hyperion.mesh.records, which imports this module.


def _sched_text(s: str, limit: int, what: str) -> str:
    if not s:
        raise WireError(f"{what} is empty")
    return _text(s, limit, what)


def _opt_text(p: object, field: str, limit: int) -> str | None:
    if not p.HasField(field):  # type: ignore[attr-defined]
        return None
    return _text(getattr(p, field), limit, field.replace("_", " "))


def _bounded(pbs: object, what: str, limit: int = MAX_SCHED_ITEMS) -> list:  # type: ignore[type-arg]
    items = list(pbs)  # type: ignore[call-overload]
    if len(items) > limit:
        raise WireError(f"more than {limit} {what}")
    return items


def _strings(pbs: object, what: str, limit: int = MAX_LABEL_CHARS) -> tuple[str, ...]:
    return tuple(_text(x, limit, what) for x in _bounded(pbs, what))


def _labels(pbs: Mapping[str, str], what: str) -> dict[str, str]:
    """A label map (``what``: "label" or "node selector label")."""
    if len(pbs) > MAX_SCHED_ITEMS:
        raise WireError(f"more than {MAX_SCHED_ITEMS} {what}s")
    return {
        _text(k, MAX_LABEL_CHARS, f"{what} key"): _text(v, MAX_LABEL_CHARS, f"{what} value")
        for k, v in pbs.items()
    }


def _rtts(pbs: Mapping[str, float], what: str) -> dict[str, float]:
    if len(pbs) > MAX_SCHED_ITEMS:
        raise WireError(f"more than {MAX_SCHED_ITEMS} {what}s")
    out = {}
    for k, v in pbs.items():
        if not (math.isfinite(v) and v >= 0):
            raise WireError(f"{what} {v} is not finite and non-negative")
        out[_text(k, MAX_LABEL_CHARS, f"{what} key")] = v
    return out


def _finite(**values: float) -> None:
    for name, v in values.items():
        if not math.isfinite(v):
            raise WireError(f"{name.replace('_', ' ')} {v} is not finite")


def _sched_request_pb(r: model.Request) -> wire_pb2.SchedRequest:
    pb = wire_pb2.SchedRequest(
        workload_id=r.workload_id,
        replica=r.replica,
        replicas=r.replicas,
        kind=r.kind,
        cpu_millis=r.cpu_millis,
        memory_bytes=r.memory_bytes,
        gpus=r.gpus,
        geographies=list(r.geographies),
        clouds=list(r.clouds),
        node_selector=dict(r.node_selector),
        affinity=[
            wire_pb2.SchedAffinityTerm(
                expressions=[
                    wire_pb2.SchedMatchExpression(
                        key=e.key, operator=e.operator, values=list(e.values)
                    )
                    for e in term
                ]
            )
            for term in r.affinity
        ],
        prefer_spot=r.prefer_spot,
        goal=r.goal,
        users=[wire_pb2.SchedUser(geography=g, weight=w) for g, w in r.users],
        placed_rtt_ms=dict(r.placed_rtt_ms),
        placed_capacity=dict(r.placed_capacity),
    )
    if r.gpu_model is not None:
        pb.gpu_model = r.gpu_model
    if r.version_range is not None:
        pb.version_range = r.version_range.text
    if r.data_locality is not None:
        pb.data_locality = r.data_locality
    return pb


def _sched_request(p: wire_pb2.SchedRequest) -> model.Request:
    try:
        return _sched_request_unchecked(p)
    except ValueError as e:  # WireError, or what the dataclasses reject
        raise WireError(f"invalid request: {e}") from None


def _sched_request_unchecked(p: wire_pb2.SchedRequest) -> model.Request:
    from hyperion.policy import model

    affinity = []
    for term in _bounded(p.affinity, "affinity terms", model.MAX_AFFINITY_TERMS):
        exprs = []
        for e in _bounded(term.expressions, "affinity expressions", model.MAX_EXPRESSIONS):
            exprs.append(
                (
                    _text(e.key, MAX_LABEL_CHARS, "affinity key"),
                    _text(e.operator, MAX_LABEL_CHARS, "affinity operator"),
                    _strings(e.values, "affinity values"),
                )
            )
        affinity.append(exprs)
    users = [
        (_text(u.geography, MAX_LABEL_CHARS, "user geography"), u.weight)
        for u in _bounded(p.users, "users")
    ]
    for _, w in users:
        _finite(user_weight=w)
    vr = _opt_text(p, "version_range", MAX_VERSION_CHARS)
    return model.Request(
        workload_id=_sched_text(p.workload_id, MAX_POD_CHARS, "workload id"),
        replica=p.replica,
        replicas=p.replicas,
        kind=_text(p.kind, MAX_LABEL_CHARS, "kind"),
        cpu_millis=p.cpu_millis,
        memory_bytes=p.memory_bytes,
        gpus=p.gpus,
        gpu_model=_opt_text(p, "gpu_model", MAX_LABEL_CHARS),
        geographies=_strings(p.geographies, "geographies"),
        clouds=_strings(p.clouds, "clouds"),
        node_selector=_labels(p.node_selector, "node selector label"),
        affinity=tuple(
            tuple(model.MatchExpression(k, op, vals) for k, op, vals in t) for t in affinity
        ),
        version_range=None if vr is None else model.VersionRange(vr),
        prefer_spot=p.prefer_spot,
        data_locality=_opt_text(p, "data_locality", MAX_LABEL_CHARS),
        goal=_text(p.goal, MAX_LABEL_CHARS, "goal"),
        users=tuple(users),
        placed_rtt_ms=_rtts(p.placed_rtt_ms, "placed RTT"),
        placed_capacity=_rtts(p.placed_capacity, "placed capacity"),
    )


def _sched_candidate_pb(c: model.Candidate) -> wire_pb2.SchedCandidate:
    pb = wire_pb2.SchedCandidate(
        node_id=bytes.fromhex(c.node_id),
        cloud=c.cloud,
        region=c.region,
        zone=c.zone,
        price_per_hour=c.price_per_hour,
        spot=c.spot,
        rtt_ms=dict(c.rtt_ms),
        cpu_millis=c.cpu_millis,
        cpu_millis_free=c.cpu_millis_free,
        memory_bytes=c.memory_bytes,
        memory_bytes_free=c.memory_bytes_free,
        gpus=c.gpus,
        gpus_free=c.gpus_free,
        load=c.load,
        reliability=c.reliability,
        software_version=c.software_version,
        protocol_versions=list(c.protocol_versions),
        labels=dict(c.labels),
        edge=c.edge,
        speed=c.speed,
        replicas_on_node=c.replicas_on_node,
        replicas_in_zone=c.replicas_in_zone,
        replicas_in_region=c.replicas_in_region,
    )
    if c.geography is not None:
        pb.geography = c.geography
    if c.interruption_band is not None:
        pb.interruption_band = c.interruption_band
    if c.gpu_model is not None:
        pb.gpu_model = c.gpu_model
    return pb


def _sched_candidate(p: wire_pb2.SchedCandidate) -> model.Candidate:
    try:
        return _sched_candidate_unchecked(p)
    except ValueError as e:  # WireError, or what the dataclasses reject
        raise WireError(f"invalid candidate: {e}") from None


def _sched_candidate_unchecked(p: wire_pb2.SchedCandidate) -> model.Candidate:
    from hyperion.policy import model

    _finite(price=p.price_per_hour, load=p.load, reliability=p.reliability, speed=p.speed)
    if min(p.replicas_on_node, p.replicas_in_zone, p.replicas_in_region) < 0:
        raise WireError("replica counts must be non-negative")
    return model.Candidate(
        node_id=_id(p.node_id),
        cloud=_text(p.cloud, MAX_LABEL_CHARS, "cloud"),
        region=_text(p.region, MAX_LABEL_CHARS, "region"),
        zone=_text(p.zone, MAX_LABEL_CHARS, "zone"),
        geography=_opt_text(p, "geography", MAX_LABEL_CHARS),
        price_per_hour=p.price_per_hour,
        spot=p.spot,
        interruption_band=p.interruption_band if p.HasField("interruption_band") else None,
        rtt_ms=_rtts(p.rtt_ms, "RTT"),
        cpu_millis=p.cpu_millis,
        cpu_millis_free=p.cpu_millis_free,
        memory_bytes=p.memory_bytes,
        memory_bytes_free=p.memory_bytes_free,
        gpus=p.gpus,
        gpus_free=p.gpus_free,
        gpu_model=_opt_text(p, "gpu_model", MAX_LABEL_CHARS),
        load=p.load,
        reliability=p.reliability,
        software_version=_text(p.software_version, MAX_VERSION_CHARS, "software version"),
        protocol_versions=tuple(
            _bounded(p.protocol_versions, "protocol versions", MAX_PROTOCOL_VERSIONS)
        ),
        labels=_labels(p.labels, "label"),
        edge=p.edge,
        speed=p.speed,
        replicas_on_node=p.replicas_on_node,
        replicas_in_zone=p.replicas_in_zone,
        replicas_in_region=p.replicas_in_region,
    )


def _encode_sched(msg: object, m: wire_pb2.MeshMessage) -> bool:
    from hyperion.control import scheduler as sched

    if isinstance(msg, sched.Tender):
        m.sched_tender.CopyFrom(
            wire_pb2.SchedTender(
                src=bytes.fromhex(msg.src),
                tender_id=msg.tender_id,
                pod=msg.pod,
                request=_sched_request_pb(msg.request),
                deadline=msg.deadline if math.isfinite(msg.deadline) else 0.0,
            )
        )
    elif isinstance(msg, sched.Bid):
        pb = wire_pb2.SchedBid(
            src=bytes.fromhex(msg.src),
            tender_id=msg.tender_id,
            reason=msg.reason,
            resolvable=msg.resolvable,
        )
        if msg.candidate is not None:
            pb.candidate.CopyFrom(_sched_candidate_pb(msg.candidate))
        m.sched_bid.CopyFrom(pb)
    elif isinstance(msg, sched.Award):
        m.sched_award.CopyFrom(
            wire_pb2.SchedAward(
                src=bytes.fromhex(msg.src),
                tender_id=msg.tender_id,
                pod=msg.pod,
                request=_sched_request_pb(msg.request),
            )
        )
    elif isinstance(msg, sched.AwardReply):
        m.sched_award_reply.CopyFrom(
            wire_pb2.SchedAwardReply(
                src=bytes.fromhex(msg.src),
                tender_id=msg.tender_id,
                pod=msg.pod,
                accepted=msg.accepted,
                reason=msg.reason,
            )
        )
    elif isinstance(msg, sched.Release):
        m.sched_release.CopyFrom(
            wire_pb2.SchedRelease(src=bytes.fromhex(msg.src), tender_id=msg.tender_id, pod=msg.pod)
        )
    else:
        return False
    return True


def _decode_sched(kind: str, m: wire_pb2.MeshMessage) -> object:
    from hyperion.control import scheduler as sched

    x = getattr(m, kind)
    src = _id(x.src)
    tid = _sched_text(x.tender_id, MAX_TENDER_ID_CHARS, "tender id")
    if kind == "sched_bid":
        cand = _sched_candidate(x.candidate) if x.HasField("candidate") else None
        return sched.Bid(tid, src, cand, _text(x.reason, MAX_REASON_CHARS, "reason"), x.resolvable)
    pod = _sched_text(x.pod, MAX_POD_CHARS, "pod")
    if kind in ("sched_tender", "sched_award"):
        if not x.HasField("request"):
            raise WireError(f"{kind.removeprefix('sched_')} without a request")
        if kind == "sched_award":
            return sched.Award(tid, src, pod, _sched_request(x.request))
        if not (math.isfinite(x.deadline) and x.deadline >= 0):
            raise WireError("tender deadline must be a finite time")
        deadline = x.deadline or math.inf
        return sched.Tender(tid, src, pod, _sched_request(x.request), deadline)
    if kind == "sched_award_reply":
        return sched.AwardReply(
            tid, src, pod, x.accepted, _text(x.reason, MAX_REASON_CHARS, "reason")
        )
    return sched.Release(tid, src, pod)


def through_schema(data: bytes, message: str, version: int) -> bytes:
    """``data`` as a node of protocol ``version`` sees it: fields it does not know dropped."""
    if version == PROTOCOL_VERSION:
        return data
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"unsupported protocol version {version}")
    old = getattr(wire_v1_pb2, message)()
    try:
        old.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise WireError(f"undecodable {message}: {e}") from None
    old.DiscardUnknownFields()
    return bytes(old.SerializeToString(deterministic=True))


def encode(msg: object, version: int = PROTOCOL_VERSION) -> bytes:
    body = _encode(msg)
    return body if version == PROTOCOL_VERSION else through_schema(body, "MeshMessage", version)


def encode_record(rec: dht.Record) -> bytes:
    """A signed DHT record on its own (the payload of a node-record announcement)."""
    return bytes(_record_pb(rec).SerializeToString())


def decode_record(data: bytes) -> dht.Record:
    p = wire_pb2.DhtRecord()
    try:
        p.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise WireError(f"undecodable record: {e}") from None
    return _record(p)


def _encode(msg: object) -> bytes:
    m = wire_pb2.MeshMessage()
    if isinstance(msg, RaftPayload):
        m.raft = msg.data
        return m.SerializeToString()
    if isinstance(msg, pubsub.Rpc):
        m.pubsub.CopyFrom(_encode_pubsub(msg))
        return m.SerializeToString()
    if _encode_dht(msg, m) or _encode_catalog(msg, m):
        return m.SerializeToString()
    if isinstance(msg, Ping):
        m.ping.CopyFrom(
            wire_pb2.Ping(
                src=bytes.fromhex(msg.src),
                src_addr=msg.src_addr,
                seq=msg.seq,
                target=bytes.fromhex(msg.target),
                updates=[_update_pb(u) for u in msg.updates],
            )
        )
    elif isinstance(msg, Ack):
        m.ack.CopyFrom(
            wire_pb2.Ack(
                src=bytes.fromhex(msg.src),
                seq=msg.seq,
                updates=[_update_pb(u) for u in msg.updates],
            )
        )
    elif isinstance(msg, PingReq):
        m.ping_req.CopyFrom(
            wire_pb2.PingReq(
                src=bytes.fromhex(msg.src),
                src_addr=msg.src_addr,
                seq=msg.seq,
                target=bytes.fromhex(msg.target),
                target_addr=msg.target_addr,
                updates=[_update_pb(u) for u in msg.updates],
            )
        )
    elif isinstance(msg, Gossip):
        m.gossip.CopyFrom(
            wire_pb2.Gossip(
                src=bytes.fromhex(msg.src), updates=[_update_pb(u) for u in msg.updates]
            )
        )
    elif isinstance(msg, Broadcast):
        m.broadcast.CopyFrom(
            wire_pb2.Broadcast(
                src=bytes.fromhex(msg.src),
                lo=msg.lo.to_bytes(NODE_ID_BYTES, "big"),
                hi=msg.hi.to_bytes(NODE_ID_BYTES, "big"),
                updates=[_update_pb(u) for u in msg.updates],
                rank=msg.rank,
            )
        )
    elif isinstance(msg, PushPull):
        m.push_pull.CopyFrom(
            wire_pb2.PushPull(
                src=bytes.fromhex(msg.src),
                src_addr=msg.src_addr,
                reply=msg.reply,
                join=msg.join,
                ids=[bytes.fromhex(i) for i in msg.ids],
                addrs=list(msg.addrs),
                names=list(msg.names),
                keys=list(msg.keys),
            )
        )
    elif not _encode_sched(msg, m):
        raise TypeError(f"cannot encode {type(msg).__name__}")
    return m.SerializeToString()


def decode(body: bytes, version: int = PROTOCOL_VERSION) -> object:
    if version != PROTOCOL_VERSION:
        body = through_schema(body, "MeshMessage", version)
    m = wire_pb2.MeshMessage()
    try:
        m.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise WireError(f"undecodable message: {e}") from None
    kind = m.WhichOneof("kind")
    if kind == "raft":
        if not 0 < len(m.raft) <= MAX_RAFT_BYTES:
            raise WireError("empty or oversized Raft message")
        return RaftPayload(bytes(m.raft))
    if kind is not None and kind.startswith("dht_"):
        return _decode_dht(kind, m)
    if kind == "pubsub":
        return _decode_pubsub(m.pubsub)
    if kind is not None and kind.startswith("catalog_"):
        return _decode_catalog(kind, m)
    if kind is not None and kind.startswith("sched_"):
        return _decode_sched(kind, m)
    if kind == "ping":
        p = m.ping
        return Ping(
            _id(p.src),
            _text(p.src_addr, MAX_ADDR_CHARS, "addr"),
            p.seq,
            _id(p.target),
            _updates(p.updates),
        )
    if kind == "ack":
        a = m.ack
        return Ack(_id(a.src), a.seq, _updates(a.updates))
    if kind == "ping_req":
        r = m.ping_req
        return PingReq(
            _id(r.src),
            _text(r.src_addr, MAX_ADDR_CHARS, "addr"),
            r.seq,
            _id(r.target),
            _text(r.target_addr, MAX_ADDR_CHARS, "addr"),
            _updates(r.updates),
        )
    if kind == "gossip":
        g = m.gossip
        return Gossip(_id(g.src), _updates(g.updates))
    if kind == "broadcast":
        b = m.broadcast
        if len(b.lo) != NODE_ID_BYTES or len(b.hi) != NODE_ID_BYTES:
            raise WireError("broadcast range bounds must be 20 bytes")
        lo, hi = int.from_bytes(b.lo, "big"), int.from_bytes(b.hi, "big")
        if lo > hi:
            raise WireError("broadcast range is empty")
        return Broadcast(_id(b.src), lo, hi, _updates(b.updates), b.rank)
    if kind == "push_pull":
        pp = m.push_pull
        n = len(pp.ids)
        if n > MAX_PUSH_PULL_MEMBERS:
            raise WireError(f"more than {MAX_PUSH_PULL_MEMBERS} members in a push-pull")
        if not (len(pp.addrs) == len(pp.names) == len(pp.keys) == n):
            raise WireError("push-pull columns differ in length")
        return PushPull(
            _id(pp.src),
            _text(pp.src_addr, MAX_ADDR_CHARS, "addr"),
            pp.reply,
            pp.join,
            tuple(_id(i) for i in pp.ids),
            tuple(_text(a, MAX_ADDR_CHARS, "addr") for a in pp.addrs),
            tuple(_text(x, MAX_NAME_CHARS, "name") for x in pp.names),
            tuple(pp.keys),
        )
    raise WireError("message has no known kind (newer protocol?)")


# ---------------------------------------------------------------- sizes without encoding
# The simulator accounts bytes for millions of messages; encoding each would dominate
# its run time. These compute the exact protobuf sizes arithmetically (tests/
# test_codec_pubsub.py checks them against real encodings).


def _varint_len(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def _len_field(payload: int) -> int:
    """One length-delimited field with a one-byte tag (field numbers below 16)."""
    return 1 + _varint_len(payload) + payload


def _str_field(s: str) -> int:
    return _len_field(len(s.encode())) if s else 0


def ps_message_size(x: pubsub.Message) -> int:
    return (
        _len_field(NODE_ID_BYTES)
        + (_len_field(len(x.origin_key)) if x.origin_key else 0)
        + (1 + _varint_len(x.seqno) if x.seqno else 0)
        + _str_field(x.topic)
        + (_len_field(len(x.data)) if x.data else 0)
        + (_len_field(len(x.signature)) if x.signature else 0)
    )


def rpc_body_size(r: pubsub.Rpc) -> int:
    """``len(encode(r))`` for a pub/sub RPC, computed without encoding."""
    mid = _len_field(MSG_ID_BYTES)
    n = _len_field(NODE_ID_BYTES) + _str_field(r.src_addr)
    for topics in (r.subscribe, r.unsubscribe, r.graft, r.prune, r.choke, r.unchoke):
        n += sum(_len_field(len(t.encode())) for t in topics)
    n += sum(_len_field(ps_message_size(x)) for x in r.publish)
    for ih in r.ihave:
        n += _len_field(_str_field(ih.topic) + mid * len(ih.ids))
    n += mid * (len(r.iwant) + len(r.idontwant))
    return 2 + _varint_len(n) + n  # MeshMessage field 20: a two-byte tag


def catalog_stamp_size(key: cat.Key, ts: Timestamp) -> int:
    """Encoded size of a ``CatalogStamp`` (and of the stamp part of a ``CatalogItem``)."""
    r, ns, name = key  # ASCII (cat.key_error): characters are bytes
    return (
        (_len_field(len(r)) if r else 0)
        + (_len_field(len(ns)) if ns else 0)
        + (_len_field(len(name)) if name else 0)
        + (1 + _varint_len(ts.wall_ms) if ts.wall_ms else 0)
        + (1 + _varint_len(ts.logical) if ts.logical else 0)
        + 2
        + NODE_ID_BYTES
    )


def catalog_item_size(it: cat.CatalogItem) -> int:
    """Encoded size of a ``CatalogItem`` with its field tag and length, as in a delta.

    Exact when ``it.nbytes`` is the length of its object's compact JSON (as the catalog
    computes it).
    """
    size = catalog_stamp_size(it.key, it.ts)
    size += _len_field(it.nbytes) if it.obj is not None else 2
    return _len_field(size)


def catalog_body_size(
    msg: cat.CatalogDigest | cat.CatalogDelta,
    item_size: Callable[[cat.CatalogItem], int] = catalog_item_size,
) -> int:
    """``len(encode(msg))`` for a catalog message, computed without encoding.

    ``item_size`` may be a memoized ``catalog_item_size`` (the simulator sends the same
    version objects many times). tests/test_catalog_codec.py checks it against encodings.
    """
    n = _len_field(NODE_ID_BYTES) + _str_field(msg.src_addr)
    if type(msg) is cat.CatalogDigest:
        n += _len_field(8 * len(msg.buckets)) if msg.buckets else 0  # packed fixed64
    else:
        assert type(msg) is cat.CatalogDelta
        n += 2 if msg.reply else 0
        n += sum(map(item_size, msg.items))
        if msg.buckets:  # packed varints (one byte each below 128)
            b = msg.buckets
            n += _len_field(len(b) if max(b) < 128 else sum(_varint_len(x) for x in b))
        for k, ts in msg.summary:
            n += _len_field(catalog_stamp_size(k, ts))
    return 2 + _varint_len(n) + n  # MeshMessage fields 30/31: two-byte tags


ENVELOPE_FIXED_BYTES = 2 + 22 + 34 + 7 + 18 + 66  # version, ids, key, timestamp, nonce, sig


def envelope_size(body_len: int) -> int:
    """Size of a sealed envelope around a body of ``body_len`` bytes (current timestamps)."""
    return ENVELOPE_FIXED_BYTES + (_len_field(body_len) if body_len else 0)
