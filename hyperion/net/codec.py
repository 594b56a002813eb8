"""Conversion between core messages (frozen dataclasses) and protobuf, done once at the edge.

``encode`` and ``decode`` are exact inverses for valid messages. ``decode`` validates
everything a peer could get wrong — id lengths, enum values, sizes — and raises
``WireError`` for anything malformed; unknown fields from newer versions are ignored by
protobuf itself.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from hyperion.identity.keys import NODE_ID_BYTES
from hyperion.mesh.membership import (
    Ack,
    Broadcast,
    Gossip,
    Message,
    Ping,
    PingReq,
    PushPull,
    Update,
)
from hyperion.net import wire_pb2

MAX_UPDATES = 256  # rumors in one message; senders put at most 32
MAX_PUSH_PULL_MEMBERS = 100_000  # members in one full-state sync
MAX_ADDR_CHARS = 256
MAX_NAME_CHARS = 128


class WireError(Exception):
    """A message body could not be decoded or failed validation."""


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


def encode(msg: Message) -> bytes:
    m = wire_pb2.MeshMessage()
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
    else:
        raise TypeError(f"cannot encode {type(msg).__name__}")
    return m.SerializeToString()


def decode(body: bytes) -> Message:
    m = wire_pb2.MeshMessage()
    try:
        m.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise WireError(f"undecodable message: {e}") from None
    kind = m.WhichOneof("kind")
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
