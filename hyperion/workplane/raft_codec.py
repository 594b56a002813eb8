"""Raft messages to and from protobuf (``hyperion/net/raft.proto``), once, at the edge.

``encode`` and ``decode`` are exact inverses for valid messages. ``decode`` checks
everything a peer could get wrong before a message reaches a ``RaftNode``: sizes and
counts, id lengths, enum values, and the invariants the core relies on (an
AppendEntries' entries are contiguous after ``prev_index`` with non-decreasing terms no
newer than the message's term; a configuration is sorted, duplicate-free, with
disjoint voters and learners). Anything malformed raises ``RaftWireError``, never
anything else; unknown fields from newer versions are ignored by protobuf itself.
This module owns the mapping only; the envelope (signature, sender) is the mesh
codec's; the node carries these bytes in ``MeshMessage.raft`` (``raft_driver``). The
same envelope also carries the key-value store's forwarded client requests and their
replies (``kv.StoreRequest``/``StoreReply``), checked as strictly.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import DecodeError

from hyperion.net import raft_pb2 as pb
from hyperion.workplane import kv
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

MAX_GROUP_CHARS = 253 + 1 + 63  # a workload id "namespace/name"
MAX_MEMBER_CHARS = 128  # node ids are 40 hex characters
MAX_MEMBERS = 64  # voters + learners of one group; replicas are a handful
MAX_ENTRIES = 1024  # in one AppendEntries; senders put RaftConfig.max_entries_per_msg (64)
MAX_ENTRY_BYTES = 1 << 20  # one proposal; etcd's default request limit is 1.5 MiB
MAX_SNAPSHOT_BYTES = 64 << 20  # one InstallSnapshot (snapshots are not chunked yet)
MAX_U63 = (1 << 63) - 1  # terms, indexes, contexts


class RaftWireError(ValueError):
    """A peer sent bytes that are not a valid Raft message."""


# ---------------------------------------------------------------------- encode


def entry_pb(e: Entry) -> pb.Entry:
    """The protobuf form of a log entry (on the wire and in ``raft_disk``'s log)."""
    return pb.Entry(
        index=e.index,
        term=e.term,
        kind=int(e.kind),  # type: ignore[arg-type]
        data=e.data,
        voters=e.voters,
        learners=e.learners,
    )


def snapshot_pb(s: Snapshot) -> pb.Snapshot:
    """The protobuf form of a snapshot (on the wire and in ``raft_disk``'s file)."""
    return pb.Snapshot(
        index=s.index, term=s.term, voters=s.voters, learners=s.learners, data=s.data
    )


WireMessage = Message | kv.StoreRequest | kv.StoreReply


def encode(msg: WireMessage) -> bytes:
    if isinstance(msg, kv.StoreRequest):
        m = pb.RaftMessage(group=msg.group, src=msg.src)
        m.store_request.CopyFrom(
            pb.StoreRequest(
                id=msg.id,
                op=int(msg.op),  # type: ignore[arg-type]
                key=msg.key,
                value=msg.value,
                has_expect=msg.expect_version is not None,
                expect_version=msg.expect_version or 0,
            )
        )
        return m.SerializeToString(deterministic=True)
    if isinstance(msg, kv.StoreReply):
        m = pb.RaftMessage(group=msg.group, src=msg.src)
        m.store_reply.CopyFrom(
            pb.StoreReply(
                id=msg.id,
                code=int(msg.code),  # type: ignore[arg-type]
                version=msg.version,
                value=msg.value,
                leader=msg.leader,
                message=msg.message,
            )
        )
        return m.SerializeToString(deterministic=True)
    m = pb.RaftMessage(group=msg.group, src=msg.src, term=msg.term)
    if isinstance(msg, VoteRequest):
        m.vote_request.CopyFrom(
            pb.VoteRequest(
                last_index=msg.last_index, last_term=msg.last_term, pre_vote=msg.pre_vote
            )
        )
    elif isinstance(msg, VoteResponse):
        m.vote_response.CopyFrom(pb.VoteResponse(granted=msg.granted, pre_vote=msg.pre_vote))
    elif isinstance(msg, AppendEntries):
        m.append_entries.CopyFrom(
            pb.AppendEntries(
                prev_index=msg.prev_index,
                prev_term=msg.prev_term,
                entries=[entry_pb(e) for e in msg.entries],
                commit=msg.commit,
            )
        )
    elif isinstance(msg, AppendResponse):
        m.append_response.CopyFrom(
            pb.AppendResponse(
                success=msg.success,
                index=msg.index,
                hint_index=msg.hint_index,
                hint_term=msg.hint_term,
            )
        )
    elif isinstance(msg, Heartbeat):
        m.heartbeat.CopyFrom(pb.Heartbeat(commit=msg.commit, ctx=msg.ctx))
    elif isinstance(msg, HeartbeatResponse):
        m.heartbeat_response.CopyFrom(pb.HeartbeatResponse(ctx=msg.ctx))
    else:
        m.install_snapshot.CopyFrom(pb.InstallSnapshot(snapshot=snapshot_pb(msg.snapshot)))
    return m.SerializeToString(deterministic=True)


# ---------------------------------------------------------------------- decode


def _text(s: str, limit: int, what: str) -> str:
    if not 0 < len(s) <= limit:
        raise RaftWireError(f"{what} must be 1..{limit} characters")
    return s


def _u63(n: int, what: str) -> int:
    if n > MAX_U63:
        raise RaftWireError(f"{what} out of range")
    return n


def _members(voters: Sequence[str], learners: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    vs = tuple(_text(v, MAX_MEMBER_CHARS, "member id") for v in voters)
    ls = tuple(_text(v, MAX_MEMBER_CHARS, "member id") for v in learners)
    if len(vs) + len(ls) > MAX_MEMBERS:
        raise RaftWireError(f"more than {MAX_MEMBERS} members")
    if not vs:
        raise RaftWireError("a configuration needs a voter")
    for xs in (vs, ls):
        if any(a >= b for a, b in zip(xs, xs[1:], strict=False)):
            raise RaftWireError("members must be sorted and distinct")
    if set(vs) & set(ls):
        raise RaftWireError("a member is both voter and learner")
    return vs, ls


def _entry(p: pb.Entry, term: int) -> Entry:
    if not 0 < p.index <= MAX_U63 or not 0 < p.term <= term:
        raise RaftWireError("entry index or term out of range")
    try:
        kind = EntryKind(p.kind)
    except ValueError:
        raise RaftWireError(f"unknown entry kind {p.kind}") from None
    if len(p.data) > MAX_ENTRY_BYTES:
        raise RaftWireError("entry too large")
    if kind is EntryKind.CONFIG:
        if p.data:
            raise RaftWireError("a configuration entry carries no data")
        vs, ls = _members(p.voters, p.learners)
        return Entry(p.index, p.term, kind, b"", vs, ls)
    if p.voters or p.learners or (kind is EntryKind.NOOP and p.data):
        raise RaftWireError(f"{kind.name} entry with configuration or data")
    return Entry(p.index, p.term, kind, bytes(p.data))


def _snapshot(p: pb.Snapshot, term: int) -> Snapshot:
    if not 0 < p.index <= MAX_U63 or not 0 < p.term <= term:
        raise RaftWireError("snapshot index or term out of range")
    if len(p.data) > MAX_SNAPSHOT_BYTES:
        raise RaftWireError("snapshot too large")
    vs, ls = _members(p.voters, p.learners)
    return Snapshot(p.index, p.term, vs, ls, bytes(p.data))


MAX_STORE_MESSAGE_CHARS = 1024  # a reply's explanation


def _store(group: str, src: str, m: pb.RaftMessage, kind: str) -> kv.StoreRequest | kv.StoreReply:
    if m.term:
        raise RaftWireError("a store message carries no term")
    if kind == "store_request":
        r = m.store_request
        try:
            op = kv.StoreOp(r.op)
        except ValueError:
            raise RaftWireError(f"unknown store op {r.op}") from None
        key = _text(r.key, kv.MAX_KEY_CHARS, "key")
        if len(r.value) > kv.MAX_VALUE_BYTES or (r.value and op is not kv.StoreOp.PUT):
            raise RaftWireError("store value too large or on an op without one")
        if (r.has_expect and op is kv.StoreOp.GET) or (r.expect_version and not r.has_expect):
            raise RaftWireError("expect_version on a GET, or without has_expect")
        expect = _u63(r.expect_version, "expect_version") if r.has_expect else None
        return kv.StoreRequest(group, src, _u63(r.id, "id"), op, key, bytes(r.value), expect)
    p = m.store_reply
    try:
        code = kv.StoreCode(p.code)
    except ValueError:
        raise RaftWireError(f"unknown store code {p.code}") from None
    if len(p.value) > kv.MAX_VALUE_BYTES or len(p.message) > MAX_STORE_MESSAGE_CHARS:
        raise RaftWireError("store reply too large")
    if len(p.leader) > MAX_MEMBER_CHARS:
        raise RaftWireError("leader id too long")
    return kv.StoreReply(
        group,
        src,
        _u63(p.id, "id"),
        code,
        _u63(p.version, "version"),
        bytes(p.value),
        p.leader,
        p.message,
    )


def decode_any(data: bytes) -> WireMessage:
    """A Raft message or a store request/reply; ``RaftWireError`` for anything else."""
    m = _parse(data)
    kind = m.WhichOneof("kind")
    if kind in ("store_request", "store_reply"):
        group = _text(m.group, MAX_GROUP_CHARS, "group")
        src = _text(m.src, MAX_MEMBER_CHARS, "src")
        return _store(group, src, m, kind)
    return _decode(m)


def _parse(data: bytes) -> pb.RaftMessage:
    m = pb.RaftMessage()
    try:
        m.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise RaftWireError(f"undecodable Raft message: {e}") from None
    return m


def decode(data: bytes) -> Message:
    """A Raft message (a store request or reply is refused: see ``decode_any``)."""
    return _decode(_parse(data))


def _decode(m: pb.RaftMessage) -> Message:
    group = _text(m.group, MAX_GROUP_CHARS, "group")
    src = _text(m.src, MAX_MEMBER_CHARS, "src")
    term = _u63(m.term, "term")
    kind = m.WhichOneof("kind")
    if kind == "vote_request":
        v = m.vote_request
        if v.last_term > term or v.last_index > MAX_U63:
            raise RaftWireError("vote request's log is newer than its term")
        return VoteRequest(group, src, term, v.last_index, v.last_term, v.pre_vote)
    if kind == "vote_response":
        r = m.vote_response
        return VoteResponse(group, src, term, r.granted, r.pre_vote)
    if kind == "append_entries":
        a = m.append_entries
        if a.prev_term > term or a.prev_index > MAX_U63 or a.commit > MAX_U63:
            raise RaftWireError("append's previous entry out of range")
        if len(a.entries) > MAX_ENTRIES:
            raise RaftWireError(f"more than {MAX_ENTRIES} entries")
        entries = tuple(_entry(p, term) for p in a.entries)
        last_term = a.prev_term
        for k, x in enumerate(entries):
            if x.index != a.prev_index + 1 + k or x.term < last_term:
                raise RaftWireError("entries not contiguous after prev_index")
            last_term = x.term
        return AppendEntries(group, src, term, a.prev_index, a.prev_term, entries, a.commit)
    if kind == "append_response":
        r2 = m.append_response
        if max(r2.index, r2.hint_index) > MAX_U63 or r2.hint_term > term:
            raise RaftWireError("append response out of range")
        return AppendResponse(group, src, term, r2.success, r2.index, r2.hint_index, r2.hint_term)
    if kind == "heartbeat":
        h = m.heartbeat
        return Heartbeat(group, src, term, _u63(h.commit, "commit"), _u63(h.ctx, "ctx"))
    if kind == "heartbeat_response":
        return HeartbeatResponse(group, src, term, _u63(m.heartbeat_response.ctx, "ctx"))
    if kind == "install_snapshot":
        if not m.install_snapshot.HasField("snapshot"):
            raise RaftWireError("InstallSnapshot without a snapshot")
        return InstallSnapshot(group, src, term, _snapshot(m.install_snapshot.snapshot, term))
    raise RaftWireError("Raft message has no known kind (newer protocol?)")
