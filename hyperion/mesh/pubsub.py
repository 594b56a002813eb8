"""Gossip pub/sub: the sans-I/O core, modeled on libp2p gossipsub v1.1 and v1.2.

Theory of operation:

* Every node keeps, per subscribed topic, a *mesh*: a set of about ``d`` peers that
  also subscribe. A published message is pushed eagerly to the mesh; each receiver that
  sees it for the first time delivers it and forwards it to its own mesh except the
  peer it came from (and any peer that said IDONTWANT). A *seen cache* suppresses
  duplicates.
* The heartbeat (every ``heartbeat_s``) keeps each mesh between ``d_low`` and ``d_high``
  by GRAFT and PRUNE, and gossips: it sends IHAVE with the ids of recent messages to
  ``d_lazy`` topic peers outside the mesh. A peer that missed one answers IWANT and is
  sent the message from the *message cache* (the last ``history_length`` heartbeats).
  That lazy path repairs losses the eager path suffered.
* A publisher not subscribed to a topic sends to a *fanout* set of ``d`` topic peers,
  forgotten ``fanout_ttl_s`` after its last publish. A publish with no known topic
  peer is held (bounded, ``max_pending``) until one appears, then sent; if none appears
  within ``pending_ttl_s`` it is dropped and counted.
* Messages are signed by their origin (the signature covers origin, seqno, topic and
  data) and verified by an injected function before delivery or forwarding; the
  envelope around each RPC is signed by the hop that sent it.
* Eager pushing to every mesh peer costs about ``degree - 2`` duplicate copies per
  delivery: every mesh link that is not on a message's first-arrival tree carries it
  both ways. Choking (Episub; proposed for gossipsub v1.3; Plumtree's PRUNE-on-duplicate
  in Leitão et al., SRDS 2007) trims that while the mesh stays at ``d``: a node that
  receives a duplicate from a mesh peer, and still has more than ``d_eager`` unchoked
  mesh peers, sends it CHOKE. A choked link carries only the heartbeat's IHAVE for that
  direction. A node unchokes a peer when its unchoked peers fall below ``d_eager`` or
  when a message had to be fetched by IWANT from that peer (the eager paths lost or
  delayed it). A node's own publishes go to its whole mesh regardless of chokes.
* IDONTWANT (gossipsub v1.2): on first receipt of a message of at least
  ``idontwant_min_bytes``, a node tells its mesh peers so they can skip sending it
  their copy. CHOKE, UNCHOKE and IDONTWANT were added in protocol version 2; older
  peers never send them and ignore them, newer ones cope without them.

Everything that grows is bounded by a named limit (see ``PubSubConfig``); whatever is
refused or dropped is counted in ``counters`` — nothing is dropped silently. The core
owns no I/O, clock or global randomness: ``now`` is the driver's clock, randomness an
injected ``random.Random``, signing and verification injected functions.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hyperion.core import Effect, Notify, Send

MsgId = tuple[str, int]  # (origin node id, seqno)
MAX_TOPIC_CHARS = 256

# ------------------------------------------------------------------------ messages


@dataclass(frozen=True, slots=True)
class Message:
    """A published message; forwarded unchanged, so the origin's signature travels along."""

    origin: str
    origin_key: bytes
    seqno: int
    topic: str
    data: bytes
    signature: bytes = b""

    @property
    def mid(self) -> MsgId:
        return (self.origin, self.seqno)

    def signing_bytes(self) -> bytes:
        head = f"hyperion-pubsub-v1\x00{self.origin}\x00{self.seqno}\x00{self.topic}\x00"
        return head.encode() + self.data


@dataclass(frozen=True, slots=True)
class IHave:
    topic: str
    ids: tuple[MsgId, ...]


@dataclass(frozen=True, slots=True)
class Rpc:
    """Everything one node sends another in one go (gossipsub's RPC)."""

    src: str
    src_addr: str = ""
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    publish: tuple[Message, ...] = ()
    ihave: tuple[IHave, ...] = ()
    iwant: tuple[MsgId, ...] = ()
    graft: tuple[str, ...] = ()
    prune: tuple[str, ...] = ()
    idontwant: tuple[MsgId, ...] = ()
    choke: tuple[str, ...] = ()
    unchoke: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """Notified once per message for a subscribed topic (also for our own publishes)."""

    message: Message
    received_at: float
    from_peer: str  # our own node id for a local publish


# ----------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class PubSubConfig:
    d: int = 6  # target mesh degree
    d_low: int = 4  # graft below this
    d_high: int = 12  # prune above this
    d_lazy: int = 6  # peers that get IHAVE gossip per heartbeat and topic
    d_eager: int = 3  # unchoked mesh peers a node keeps (choke the rest on duplicates)
    choke_min_duplicates: int = 2  # duplicates from a peer before it may be choked
    heartbeat_s: float = 1.0
    fanout_ttl_s: float = 60.0
    history_length: int = 5  # heartbeats a message stays in the message cache
    history_gossip: int = 3  # heartbeats of message ids advertised in IHAVE
    seen_ttl_s: float = 120.0
    prune_backoff_s: float = 10.0  # a pruned peer is not re-grafted before this
    max_peers: int = 256
    max_topics: int = 64  # subscriptions of this node and topics tracked per peer
    max_seen: int = 200_000
    max_message_bytes: int = 256 << 10
    max_cached_messages: int = 50_000  # message-cache entries over all windows
    max_ihave_ids: int = 5_000  # ids advertised in one IHAVE (and accepted from one)
    max_iwant_per_heartbeat: int = 500  # ids this node asks one peer for per heartbeat
    max_idontwant: int = 1_000  # ids remembered per peer
    max_pending: int = 256  # publishes waiting for a first topic peer
    pending_ttl_s: float = 30.0
    gossip_retransmission: int = 3  # times one peer is served the same id via IWANT
    idontwant_min_bytes: int = 1024
    send_idontwant: bool = True  # protocol version 2 behaviour
    choke: bool = True  # protocol version 2 behaviour

    @classmethod
    def for_version(cls, protocol: int) -> PubSubConfig:
        """Defaults as a node of ``protocol`` runs them (version 1: no CHOKE, no IDONTWANT)."""
        return cls() if protocol >= 2 else cls(choke=False, send_idontwant=False)


Signer = Callable[[bytes], bytes]
Verifier = Callable[[Message], bool]


@dataclass(slots=True)
class _Pending:
    message: Message
    queued_at: float


@dataclass(slots=True)
class _Outbox:
    """Per-peer RPC parts accumulated during one handle/tick, sent as one Rpc each."""

    parts: dict[str, dict[str, list[object]]] = field(default_factory=dict)

    def add(self, peer: str, kind: str, item: object) -> None:
        self.parts.setdefault(peer, {}).setdefault(kind, []).append(item)


# ---------------------------------------------------------------------------- core


class PubSub:
    """One node's gossip pub/sub state machine."""

    def __init__(
        self,
        node_id: str,
        addr: str,
        *,
        public_key: bytes,
        sign: Signer,
        verify: Verifier,
        rng: random.Random,
        now: float,
        config: PubSubConfig | None = None,
    ) -> None:
        self.node_id = node_id
        self.addr = addr
        self.public_key = public_key
        self.config = config or PubSubConfig()
        self._sign = sign
        self._verify = verify
        self.rng = rng
        self.peers: dict[str, str] = {}  # id -> addr
        self.peer_topics: dict[str, set[str]] = {}
        self.topic_peers: dict[str, set[str]] = {}
        self.subscriptions: set[str] = set()
        self.mesh: dict[str, set[str]] = {}
        self.fanout: dict[str, set[str]] = {}
        self.fanout_last: dict[str, float] = {}
        self.backoff: dict[tuple[str, str], float] = {}  # (topic, peer) -> until
        self.choking: dict[str, set[str]] = {}  # topic -> mesh peers we choked
        self.choked_by: dict[str, set[str]] = {}  # topic -> mesh peers that choked us
        self._tally: dict[tuple[str, str], list[int]] = {}  # (topic, peer) -> [firsts, dups]
        self.seen: OrderedDict[MsgId, float] = OrderedDict()
        self.mcache: dict[MsgId, Message] = {}
        self.windows: deque[list[MsgId]] = deque([[]])
        self.dont_want: dict[str, OrderedDict[MsgId, None]] = {}
        self.pending: deque[_Pending] = deque()
        self.counters: dict[str, int] = {}
        self._asked: dict[MsgId, float] = {}  # IWANT sent, until: do not ask again before
        self._asked_count: dict[str, int] = {}  # ids asked per peer this heartbeat
        self._served: dict[tuple[str, MsgId], int] = {}
        self._seqno = rng.getrandbits(40) << 20  # fresh range after a restart
        self._next_heartbeat = now + rng.random() * self.config.heartbeat_s

    # ------------------------------------------------------------------ peers

    def add_peer(self, peer: str, addr: str) -> list[Effect]:
        """A connection to ``peer`` exists (membership says it is alive): say hello."""
        if peer == self.node_id or not addr:
            return []
        known = peer in self.peers
        if not known and len(self.peers) >= self.config.max_peers:
            self._inc("peer_refused_limit")
            return []
        self.peers[peer] = addr
        self.peer_topics.setdefault(peer, set())
        if known or not self.subscriptions:
            return []
        return [Send(peer, addr, Rpc(self.node_id, self.addr, subscribe=self._topics()))]

    def remove_peer(self, peer: str) -> None:
        """``peer`` is gone (dead or left): forget it everywhere."""
        self.peers.pop(peer, None)
        for t in self.peer_topics.pop(peer, ()):
            self._topic_peers(t).discard(peer)
        for group in (self.mesh, self.fanout, self.choking, self.choked_by):
            for members in group.values():
                members.discard(peer)
        self.dont_want.pop(peer, None)

    def _topics(self) -> tuple[str, ...]:
        return tuple(sorted(self.subscriptions))

    def _topic_peers(self, topic: str) -> set[str]:
        s = self.topic_peers.get(topic)
        if s is None:
            s = self.topic_peers[topic] = set()
        return s

    # ------------------------------------------------------------- local API

    def subscribe(self, topic: str, now: float) -> list[Effect]:
        if topic in self.subscriptions:
            return []
        if not topic or len(topic) > MAX_TOPIC_CHARS:
            raise ValueError(f"topic must be 1..{MAX_TOPIC_CHARS} characters")
        if len(self.subscriptions) >= self.config.max_topics:
            raise ValueError(f"already subscribed to {self.config.max_topics} topics")
        self.subscriptions.add(topic)
        out = _Outbox()
        for peer in self.peers:
            out.add(peer, "subscribe", topic)
        # Join: start from the fanout peers if we were publishing here, then top up.
        mesh = self.mesh[topic] = set(self.fanout.pop(topic, set()))
        self.fanout_last.pop(topic, None)
        self._graft_up_to(topic, mesh, self.config.d, now, out)
        return self._flush(out)

    def unsubscribe(self, topic: str, now: float) -> list[Effect]:
        if topic not in self.subscriptions:
            return []
        self.subscriptions.discard(topic)
        out = _Outbox()
        for peer in sorted(self.mesh.pop(topic, set())):
            out.add(peer, "prune", topic)
        self.choking.pop(topic, None)
        self.choked_by.pop(topic, None)
        for peer in self.peers:
            out.add(peer, "unsubscribe", topic)
        return self._flush(out)

    def publish(self, topic: str, data: bytes, now: float) -> tuple[Message, list[Effect]]:
        """Sign and send ``data`` on ``topic``; delivered locally too if subscribed."""
        if not topic or len(topic) > MAX_TOPIC_CHARS:
            raise ValueError(f"topic must be 1..{MAX_TOPIC_CHARS} characters")
        if len(data) > self.config.max_message_bytes:
            raise ValueError(f"message larger than {self.config.max_message_bytes} bytes")
        self._seqno += 1
        unsigned = Message(self.node_id, self.public_key, self._seqno, topic, data)
        msg = Message(
            unsigned.origin,
            unsigned.origin_key,
            unsigned.seqno,
            topic,
            data,
            self._sign(unsigned.signing_bytes()),
        )
        self._remember(msg, now)
        out: list[Effect] = []
        if topic in self.subscriptions:
            out.append(Notify(Delivery(msg, now, self.node_id)))
        self._inc("published")
        if not self._send_publish(msg, now, out):
            self._hold(msg, now)
        return msg, out

    def _publish_targets(self, topic: str, now: float) -> set[str]:
        if topic in self.subscriptions:
            mesh = self.mesh.setdefault(topic, set())
            if mesh:
                return mesh
            # Mesh not formed yet (just joined): use any topic peers, like flood-publish.
            return set(self._sample(self._topic_peers(topic), self.config.d))
        fan = self.fanout.get(topic)
        if not fan:
            fan = self.fanout[topic] = set(self._sample(self._topic_peers(topic), self.config.d))
        if fan:
            self.fanout_last[topic] = now
        return fan

    def _send_publish(self, msg: Message, now: float, out: list[Effect]) -> bool:
        targets = self._publish_targets(msg.topic, now)
        for peer in sorted(targets):
            out.append(Send(peer, self.peers[peer], Rpc(self.node_id, self.addr, publish=(msg,))))
        return bool(targets)

    def _hold(self, msg: Message, now: float) -> None:
        if len(self.pending) >= self.config.max_pending:
            self.pending.popleft()
            self._inc("publish_dropped_pending_full")
        self.pending.append(_Pending(msg, now))
        self._inc("publish_held_no_peers")

    def _release_pending(self, now: float, out: list[Effect]) -> None:
        keep: deque[_Pending] = deque()
        while self.pending:
            p = self.pending.popleft()
            if now - p.queued_at > self.config.pending_ttl_s:
                self._inc("publish_dropped_no_peers")
            elif not self._send_publish(p.message, now, out):
                keep.append(p)
            else:
                self._inc("publish_released")
        self.pending = keep

    # ----------------------------------------------------------- core interface

    def next_deadline(self) -> float | None:
        return self._next_heartbeat

    def tick(self, now: float) -> list[Effect]:
        if now < self._next_heartbeat:
            return []
        self._next_heartbeat = now + self.config.heartbeat_s
        return self._heartbeat(now)

    def handle(self, msg: object, now: float) -> list[Effect]:
        if not isinstance(msg, Rpc):
            self._inc("drop_unknown_message")
            return []
        src = msg.src
        if src not in self.peers:
            if not msg.src_addr or len(self.peers) >= self.config.max_peers:
                self._inc("drop_unknown_peer")
                return []
            self.peers[src] = msg.src_addr
            self.peer_topics[src] = set()
        out_fx: list[Effect] = []
        out = _Outbox()
        if msg.subscribe or msg.unsubscribe:
            self._on_subscriptions(src, msg, now, out_fx)
        if msg.idontwant:
            self._on_idontwant(src, msg.idontwant)
        for topic in msg.choke:
            if src in self.mesh.get(topic, ()):
                self.choked_by.setdefault(topic, set()).add(src)
        for topic in msg.unchoke:
            self.choked_by.get(topic, set()).discard(src)
        for m in msg.publish:
            self._on_message(src, m, now, out_fx, out)
        if msg.graft:
            self._on_graft(src, msg.graft, now, out)
        for topic in msg.prune:
            self._leave_mesh(topic, src)
            self.backoff[(topic, src)] = now + self.config.prune_backoff_s
        if msg.ihave:
            self._on_ihave(src, msg.ihave, now, out)
        if msg.iwant:
            self._on_iwant(src, msg.iwant, out_fx)
        out_fx.extend(self._flush(out))
        return out_fx

    # ---------------------------------------------------------------- handlers

    def _on_subscriptions(self, src: str, msg: Rpc, now: float, out: list[Effect]) -> None:
        topics = self.peer_topics[src]
        for t in msg.subscribe:
            if t in topics:
                continue
            if len(topics) >= self.config.max_topics:
                self._inc("peer_topic_refused_limit")
                continue
            topics.add(t)
            self._topic_peers(t).add(src)
        for t in msg.unsubscribe:
            topics.discard(t)
            self._topic_peers(t).discard(src)
            self.mesh.get(t, set()).discard(src)
            self.fanout.get(t, set()).discard(src)
        if self.pending:
            self._release_pending(now, out)

    def _on_idontwant(self, src: str, ids: tuple[MsgId, ...]) -> None:
        dw = self.dont_want.setdefault(src, OrderedDict())
        for mid in ids[: self.config.max_idontwant]:
            dw[mid] = None
        while len(dw) > self.config.max_idontwant:
            dw.popitem(last=False)

    def _on_message(
        self, src: str, m: Message, now: float, out: list[Effect], box: _Outbox
    ) -> None:
        mid = (m.origin, m.seqno)
        if mid in self.seen:
            self._inc("duplicates")
            if self.config.choke:
                self._maybe_choke(m.topic, src, box)
            return
        if len(m.data) > self.config.max_message_bytes or len(m.topic) > MAX_TOPIC_CHARS:
            self._inc("rejected_too_large")
            return
        if m.topic not in self.subscriptions and m.topic not in self.fanout:
            self._inc("rejected_unsubscribed_topic")
            return
        if not self._verify(m):
            self._inc("rejected_bad_signature")
            return
        self._remember(m, now)
        if self._asked.pop(mid, None) is not None:
            self._inc("delivered_by_iwant")
            if src in self.choking.get(m.topic, ()):
                self.choking[m.topic].discard(src)  # the eager paths failed us
                box.add(src, "unchoke", m.topic)
        self._inc("delivered")
        tally = self._tally.get((m.topic, src))
        if tally is None:
            self._tally[(m.topic, src)] = [1, 0]
        else:
            tally[0] += 1
        if m.topic in self.subscriptions:
            out.append(Notify(Delivery(m, now, src)))
        mesh = self.mesh.get(m.topic)
        if not mesh:
            return
        c = self.config
        peers = sorted(mesh)  # sets iterate in hash order; runs must be reproducible
        if c.send_idontwant and len(m.data) >= c.idontwant_min_bytes:
            for peer in peers:
                if peer != src:
                    box.add(peer, "idontwant", mid)
        fwd = Rpc(self.node_id, self.addr, publish=(m,))
        dont_want = self.dont_want
        choked_by = self.choked_by.get(m.topic, ())
        for peer in peers:
            if peer == src or peer == m.origin:
                continue
            if peer in choked_by:
                self._inc("forward_skipped_choked")
                continue
            dw = dont_want.get(peer)
            if dw is not None and mid in dw:
                self._inc("forward_skipped_idontwant")
                continue
            out.append(Send(peer, self.peers[peer], fwd))

    def _maybe_choke(self, topic: str, src: str, box: _Outbox) -> None:
        mesh = self.mesh.get(topic)
        if not mesh or src not in mesh:
            return
        tally = self._tally.setdefault((topic, src), [0, 0])
        tally[1] += 1
        choking = self.choking.setdefault(topic, set())
        if src in choking or len(mesh) - len(choking) <= self.config.d_eager:
            return
        firsts, dups = tally
        if dups < self.config.choke_min_duplicates or firsts * 4 >= dups:
            return  # not yet proven redundant: it is first at least a fifth of the time
        choking.add(src)
        box.add(src, "choke", topic)
        self._inc("choked")

    def _leave_mesh(self, topic: str, peer: str) -> None:
        self._tally.pop((topic, peer), None)
        for group in (self.mesh, self.choking, self.choked_by):
            members = group.get(topic)
            if members is not None:
                members.discard(peer)

    def _on_graft(self, src: str, topics: tuple[str, ...], now: float, box: _Outbox) -> None:
        for t in topics:
            if t not in self.subscriptions:
                box.add(src, "prune", t)
                self._inc("graft_refused_unsubscribed")
            elif self.backoff.get((t, src), 0.0) > now:
                box.add(src, "prune", t)
                self._inc("graft_refused_backoff")
            else:
                self.mesh.setdefault(t, set()).add(src)  # heartbeat trims above d_high

    def _on_ihave(self, src: str, ihave: tuple[IHave, ...], now: float, box: _Outbox) -> None:
        c = self.config
        budget = c.max_iwant_per_heartbeat - self._asked_count.get(src, 0)
        asked = 0
        for ih in ihave:
            if ih.topic not in self.subscriptions:
                continue
            for mid in ih.ids[: c.max_ihave_ids]:
                if asked >= budget:
                    self._inc("iwant_budget_exhausted")
                    break
                if mid in self.seen or self._asked.get(mid, 0.0) > now:
                    continue
                self._asked[mid] = now + c.heartbeat_s  # ask someone else after that
                box.add(src, "iwant", mid)
                asked += 1
        if asked:
            self._asked_count[src] = self._asked_count.get(src, 0) + asked
            self._inc_by("iwant_sent", asked)

    def _on_iwant(self, src: str, ids: tuple[MsgId, ...], out: list[Effect]) -> None:
        msgs = []
        for mid in ids[: self.config.max_ihave_ids]:
            m = self.mcache.get(mid)
            if m is None:
                self._inc("iwant_miss")
                continue
            n = self._served.get((src, mid), 0)
            if n >= self.config.gossip_retransmission:
                self._inc("iwant_refused_retransmission")
                continue
            self._served[(src, mid)] = n + 1
            msgs.append(m)
        if msgs:
            self._inc_by("iwant_served", len(msgs))
            out.append(
                Send(src, self.peers[src], Rpc(self.node_id, self.addr, publish=tuple(msgs)))
            )

    # --------------------------------------------------------------- heartbeat

    def _heartbeat(self, now: float) -> list[Effect]:
        c = self.config
        out = _Outbox()
        self._asked_count.clear()
        for topic in sorted(self.subscriptions):
            mesh = self.mesh.setdefault(topic, set())
            for peer in [p for p in mesh if p not in self._topic_peers(topic)]:
                self._leave_mesh(topic, peer)
            if len(mesh) < c.d_low:
                self._graft_up_to(topic, mesh, c.d, now, out)
            elif len(mesh) > c.d_high:
                for peer in self._sample(mesh, len(mesh) - c.d):
                    self._leave_mesh(topic, peer)
                    self.backoff[(topic, peer)] = now + c.prune_backoff_s
                    out.add(peer, "prune", topic)
            choking = self.choking.get(topic)
            if choking and len(mesh) - len(choking) < c.d_eager:
                for peer in self._sample(choking, c.d_eager - (len(mesh) - len(choking))):
                    choking.discard(peer)
                    out.add(peer, "unchoke", topic)
        for topic in list(self.fanout):
            if now - self.fanout_last.get(topic, now) > c.fanout_ttl_s:
                del self.fanout[topic]
                self.fanout_last.pop(topic, None)
                continue
            fan = self.fanout[topic]
            fan &= self._topic_peers(topic)
            if len(fan) < c.d:
                fan.update(self._sample(self._topic_peers(topic) - fan, c.d - len(fan)))
        self._emit_gossip(out)
        self._shift_cache(now)
        fx: list[Effect] = []
        if self.pending:
            self._release_pending(now, fx)
        fx.extend(self._flush(out))
        return fx

    def _graft_up_to(self, topic: str, mesh: set[str], d: int, now: float, out: _Outbox) -> None:
        cands = [
            p
            for p in self._topic_peers(topic)
            if p not in mesh and self.backoff.get((topic, p), 0.0) <= now
        ]
        for peer in self._sample(cands, d - len(mesh)):
            mesh.add(peer)
            out.add(peer, "graft", topic)

    def _emit_gossip(self, out: _Outbox) -> None:
        c = self.config
        by_topic: dict[str, list[MsgId]] = {}
        for window in list(self.windows)[: c.history_gossip]:
            for mid in window:
                m = self.mcache.get(mid)
                if m is not None:
                    by_topic.setdefault(m.topic, []).append(mid)
        for topic, ids in sorted(by_topic.items()):
            ids = ids[: c.max_ihave_ids]
            eager = self.mesh.get(topic) or self.fanout.get(topic) or set()
            cands = [p for p in self._topic_peers(topic) if p not in eager]
            lazy = self._sample(cands, c.d_lazy)
            lazy.extend(sorted(self.choked_by.get(topic, set()) & eager))
            for peer in lazy:
                out.add(peer, "ihave", IHave(topic, tuple(ids)))

    def _shift_cache(self, now: float) -> None:
        c = self.config
        self.windows.appendleft([])
        while len(self.windows) > c.history_length:
            for mid in self.windows.pop():
                self.mcache.pop(mid, None)
        horizon = now - c.seen_ttl_s
        seen = self.seen
        while seen:
            mid, t = next(iter(seen.items()))
            if t >= horizon:
                break
            seen.popitem(last=False)
        for key in [k for k, until in self.backoff.items() if until <= now]:
            del self.backoff[key]
        for mid in [m for m, until in self._asked.items() if until <= now]:
            del self._asked[mid]
        live = set(self.mcache)
        self._served = {k: v for k, v in self._served.items() if k[1] in live}

    # ----------------------------------------------------------------- helpers

    def _remember(self, m: Message, now: float) -> None:
        c = self.config
        mid = (m.origin, m.seqno)
        self.seen[mid] = now
        if len(self.seen) > c.max_seen:
            self.seen.popitem(last=False)
            self._inc("seen_evicted_limit")
        if len(self.mcache) >= c.max_cached_messages:
            self._inc("mcache_refused_limit")
            return
        self.mcache[mid] = m
        self.windows[0].append(mid)

    def _sample(self, items: Iterable[str], n: int) -> list[str]:
        pool = sorted(items)  # sorted: the same seed picks the same peers
        if n <= 0 or not pool:
            return []
        if n >= len(pool):
            return pool
        return self.rng.sample(pool, n)

    def _flush(self, out: _Outbox) -> list[Effect]:
        fx: list[Effect] = []
        for peer, parts in out.parts.items():
            addr = self.peers.get(peer)
            if addr is None:
                continue
            fx.append(
                Send(
                    peer,
                    addr,
                    Rpc(
                        self.node_id,
                        self.addr,
                        subscribe=tuple(parts.get("subscribe", ())),  # type: ignore[arg-type]
                        unsubscribe=tuple(parts.get("unsubscribe", ())),  # type: ignore[arg-type]
                        ihave=tuple(parts.get("ihave", ())),  # type: ignore[arg-type]
                        iwant=tuple(parts.get("iwant", ())),  # type: ignore[arg-type]
                        graft=tuple(parts.get("graft", ())),  # type: ignore[arg-type]
                        prune=tuple(parts.get("prune", ())),  # type: ignore[arg-type]
                        idontwant=tuple(parts.get("idontwant", ())),  # type: ignore[arg-type]
                        choke=tuple(parts.get("choke", ())),  # type: ignore[arg-type]
                        unchoke=tuple(parts.get("unchoke", ())),  # type: ignore[arg-type]
                    ),
                )
            )
        return fx

    def stats(self) -> dict[str, object]:
        return {
            "peers": len(self.peers),
            "topics": sorted(self.subscriptions),
            "mesh": {t: len(m) for t, m in sorted(self.mesh.items())},
            "choking": {t: len(m) for t, m in sorted(self.choking.items())},
            "choked_by": {t: len(m) for t, m in sorted(self.choked_by.items())},
            "fanout": {t: len(m) for t, m in sorted(self.fanout.items())},
            "seen": len(self.seen),
            "cached": len(self.mcache),
            "pending": len(self.pending),
            "counters": dict(sorted(self.counters.items())),
        }

    def _inc(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _inc_by(self, name: str, n: int) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
