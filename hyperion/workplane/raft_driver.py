"""The real driver of a node's Raft groups: asyncio, the mesh transport, files on disk.

Runs one ``RaftHost`` (every group this node is a member of) and, per group, the
key-value state machine (``kv``), and serves the node-internal strong-state API
(``StrongState``) that the Dapr-compatible sidecar's state store calls with
(namespace, workload name). It is a driver: the protocol is in ``raft``, the
decisions about groups in ``strong``, the state machine in ``kv``; what is here is
executing their effects and waiting.

* **Transport.** A Raft message leaves as ``codec.RaftPayload`` (``MeshMessage.raft``),
  sealed and signed by the mesh driver, over the node's existing mutual-TLS links: no
  port per group. Inbound payloads are routed here by the mesh driver with the
  envelope's verified signer, decoded by the strict ``raft_codec`` and dropped
  (counted ``raft_rejected_*``) when malformed or when ``src`` is not the signer.
* **Durability.** Effects run in list order and ``Persist`` is executed synchronously
  (``raft_disk``: fsync before return), so nothing that follows it — a vote, an
  append's acknowledgement — leaves before what it promises is on disk. This blocks
  the event loop for an fsync per change, which is what a handful of groups per node
  can afford; batching the fsyncs of one loop turn is the next step. At start every
  group on disk is reloaded with its term, vote, snapshot and log.
* **Lifecycle.** Every ``RECONCILE_S`` the ``strong.Lifecycle`` plan is executed:
  found (bootstrap a single voter), dissolve (files removed), membership changes; a
  message from the leader of an unknown group creates an empty member when
  ``strong.may_join`` says so. The leader writes ``status.consistency`` (and a
  ``Consistent`` condition); a member that has had no leader for ``QUORUM_LOST_S``
  writes ``Consistent=False``, reason ``QuorumLost``.
* **Requests.** Writes go to the leader only: on a follower they are forwarded to the
  leader over the mesh (``kv.StoreRequest``/``StoreReply``) and retried at the new
  leader when leadership moved before the write was proposed. Reads are linearizable
  through ReadIndex at the leader (forwarded the same way). With no leader reachable
  a call fails with ``Unavailable`` after its bounded wait; a write whose outcome
  cannot be known (proposed, not seen committed in time) fails with
  ``Unavailable(outcome_unknown=True)`` and is never retried behind the caller's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperion.core import Effect, Notify, Send
from hyperion.net.codec import RaftPayload
from hyperion.net.loop import pump
from hyperion.workplane import kv, raft_codec, strong
from hyperion.workplane.raft import (
    Accepted,
    Committed,
    ConfigCommitted,
    DurableState,
    LeaderChanged,
    NotLeader,
    Persist,
    RaftConfig,
    ReadAborted,
    ReadId,
    ReadReady,
    Role,
    SnapshotRestored,
)
from hyperion.workplane.raft_disk import RaftDisk
from hyperion.workplane.raft_host import Dissolved, RaftHost

log = logging.getLogger(__name__)

INBOUND_MAX = 4096  # decoded messages waiting for the host; a few rounds of many groups
RECONCILE_S = 0.25  # lifecycle plan and status, at most this far apart
DEFAULT_WAIT_S = 5.0  # a client call's bound: five election timeouts
FORWARD_ATTEMPT_S = 1.5  # one forwarded request; then the route is looked up again
RETRY_S = 0.05  # between looks for a leader
COMPACT_EVERY = 1024  # applied entries between snapshots (etcd: 10,000 by default)
STATUS_REFRESH_S = 2.0  # a leader rewrites a changed commit index no more often
QUORUM_LOST_S = 3.0  # a member without a leader this long reports QuorumLost
MAX_SERVING = 1024  # forwarded requests being served at once


class StrongStateError(Exception):
    """Base of the strong-state API's errors."""


class NotStrong(StrongStateError):
    """No such workload here, or it is not ``consistency: strong``."""


class Forbidden(StrongStateError):
    """The group's leader refused this node's request: it is neither a member of the
    group nor the node of one of the workload's replicas."""


class Unavailable(StrongStateError):
    """No leader with a quorum answered within the wait (a minority partition, or the
    group is still forming). ``outcome_unknown``: a write was proposed but not seen
    committed; it may still take effect."""

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class VersionConflict(StrongStateError):
    """``expect_version`` did not match; ``current`` is the key's version (0: absent)."""

    def __init__(self, key: str, expected: int, current: int) -> None:
        super().__init__(f"{key!r}: expected version {expected}, found {current}")
        self.current = current


@dataclass(frozen=True, slots=True)
class Item:
    value: bytes
    version: int  # the log index that last wrote the key: usable as an ETag


@dataclass(frozen=True, slots=True)
class Source:
    """What the driver reads from and writes to the layers above (wired by the daemon)."""

    workloads: Callable[[], dict[str, strong.WorkloadView]]  # uid -> view
    find: Callable[[str, str], tuple[str, dict[str, Any]] | None]  # (ns, name) -> uid, status
    write_status: Callable[[str, str, dict[str, Any], bool, str, str], None]
    resolve: Callable[[str], str]  # node id -> mesh address ("" unknown)
    name_of: Callable[[str], str]  # node id -> node name


class StrongPlane:
    """The Raft groups of one node (see the module docstring)."""

    def __init__(
        self,
        node_id: str,
        root: Path,
        send: Callable[[list[Effect]], None],
        source: Source,
        counters: Callable[[str], None],
        cfg: RaftConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.me = node_id
        self.rng = rng or random.Random()
        self.host = RaftHost(node_id, self.rng, cfg)
        self.disk = RaftDisk(root)
        self.source = source
        self._send = send
        self._inc = counters
        self.kv: dict[str, kv.KvStore] = {}
        self.uid_of: dict[str, str] = {}
        self.lifecycle = strong.Lifecycle(node_id, time.monotonic())
        # None wakes the protocol loop to look at the deadlines again (a group was created)
        self._inbound: asyncio.Queue[raft_codec.WireMessage | None] = asyncio.Queue(INBOUND_MAX)
        self._writes: dict[tuple[str, int], tuple[int, asyncio.Future[kv.Result]]] = {}
        self._reads: dict[tuple[str, int], asyncio.Future[bool]] = {}
        self._replies: dict[int, asyncio.Future[kv.StoreReply]] = {}
        self._ids = itertools.count(1)
        self._serving: set[asyncio.Task[None]] = set()
        self._no_leader_since: dict[str, float] = {}
        self._status_written: dict[str, tuple[tuple[Any, ...], float]] = {}
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ start

    def load(self) -> None:
        """Rejoin the groups on disk with their term, vote and log."""
        now = time.monotonic()
        for g in self.disk.load():
            self.host.create(g.group, g.state, now, new=False)
            store = self.kv[g.group] = kv.KvStore()
            store.restore(g.state.snapshot.index, g.state.snapshot.data)
            self.uid_of[g.group] = g.uid
            self._inc("raft_groups_reloaded")
            log.info("rejoined Raft group %s at term %d", g.group, g.state.term)

    # --------------------------------------------------------------- inbound

    def deliver(self, payload: object, signer: str) -> None:
        """Called by the mesh driver for every verified ``RaftPayload``."""
        assert isinstance(payload, RaftPayload)
        try:
            msg = raft_codec.decode_any(payload.data)
        except raft_codec.RaftWireError:
            self._inc("raft_rejected_malformed")
            return
        if msg.src != signer:
            self._inc("raft_rejected_src_mismatch")
            return
        try:
            self._inbound.put_nowait(msg)
        except asyncio.QueueFull:
            self._inc("raft_dropped_inbound_full")

    def _handle(self, msg: raft_codec.WireMessage, now: float) -> None:
        if isinstance(msg, kv.StoreReply):
            fut = self._replies.pop(msg.id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        if isinstance(msg, kv.StoreRequest):
            if len(self._serving) >= MAX_SERVING:
                self._inc("raft_store_refused_busy")
                self._reply(msg, kv.StoreCode.UNAVAILABLE, message="leader busy")
                return
            task = asyncio.get_running_loop().create_task(self._serve_forwarded(msg))
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
            return
        if msg.group not in self.host:
            if not strong.may_join(self.me, msg.group, self.source.workloads()):
                self.host.stats.dropped_unknown_group += 1
                return
            self._create(msg.group, DurableState.bootstrap(()), now)
            self._inc("raft_groups_joined")
        self.execute(self.host.handle(msg, now))

    # --------------------------------------------------------------- effects

    def execute(self, effects: list[Effect]) -> None:
        for eff in effects:
            if isinstance(eff, Send):
                addr = self.source.resolve(eff.dest)
                if not addr:
                    self._inc("raft_dropped_no_address")
                    continue
                msg = RaftPayload(raft_codec.encode(eff.msg))  # type: ignore[arg-type]
                self._send([Send(eff.dest, addr, msg)])
            elif isinstance(eff, Notify):
                self._notify(eff.event)

    def _notify(self, ev: object) -> None:
        if isinstance(ev, Persist):
            self.disk.persist(ev)  # fsync'd before the next effect runs
        elif isinstance(ev, Committed):
            store = self.kv[ev.group]
            result = store.apply(ev.index, ev.data)
            waiter = self._writes.pop((ev.group, ev.index), None)
            if waiter is not None and not waiter[1].done():
                term, fut = waiter
                fut.set_result(result if term == ev.term else kv.Result(kv.StoreCode.NOT_LEADER))
        elif isinstance(ev, ReadReady | ReadAborted):
            ready = self._reads.pop((ev.group, ev.read), None)
            if ready is not None and not ready.done():
                ready.set_result(isinstance(ev, ReadReady))
        elif isinstance(ev, SnapshotRestored):
            self.kv[ev.group].restore(ev.snapshot.index, ev.snapshot.data)
        elif isinstance(ev, LeaderChanged):
            self._wake.set()
            if ev.leader == self.me:
                self._inc("raft_leaderships")
        elif isinstance(ev, Dissolved):
            self.disk.remove(ev.group)
        elif isinstance(ev, ConfigCommitted):
            pass  # the configuration lives in the log; status shows it

    def _create(self, group: str, state: DurableState, now: float) -> None:
        uid = strong.group_uid(group)
        self.disk.create(group, uid, state)
        self.kv[group] = kv.KvStore()
        self.uid_of[group] = uid
        self.execute(self.host.create(group, state, now))
        with contextlib.suppress(asyncio.QueueFull):
            self._inbound.put_nowait(None)

    def dissolve(self, group: str) -> None:
        self.execute(self.host.dissolve(group))
        self.kv.pop(group, None)
        self.uid_of.pop(group, None)
        self._no_leader_since.pop(group, None)
        self._status_written.pop(group, None)
        for key in [k for k in self._writes if k[0] == group]:
            _, fut = self._writes.pop(key)
            if not fut.done():
                fut.set_result(kv.Result(kv.StoreCode.UNAVAILABLE))
        for key in [k for k in self._reads if k[0] == group]:
            fut2 = self._reads.pop(key)
            if not fut2.done():
                fut2.set_result(False)
        self._inc("raft_groups_dissolved")

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._protocol_loop())
            tg.create_task(self._reconcile_loop())

    async def _protocol_loop(self) -> None:
        host = self.host

        def handle(msg: raft_codec.WireMessage | None, now: float) -> None:
            if msg is not None:  # None only wakes the loop: a group was created
                self._handle(msg, now)

        def failed() -> None:  # a bug must not stop the node's other groups
            log.exception("Raft host raised")
            self._inc("raft_core_errors")

        await pump(
            self._inbound,
            host.next_deadline,
            handle,
            lambda now: self.execute(host.tick(now)),
            failed,
        )

    async def _reconcile_loop(self) -> None:
        while True:
            try:
                self.reconcile(time.monotonic())
            except Exception:
                log.exception("Raft reconcile failed")
                self._inc("raft_reconcile_errors")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECONCILE_S):
                    await self._wake.wait()
            self._wake.clear()

    def _members(self) -> list[strong.MemberView]:
        out = []
        for g in self.host.groups():
            n = self.host.node(g)
            out.append(
                strong.MemberView(g, self.uid_of[g], n.role is Role.LEADER, n.voters, n.learners)
            )
        return out

    def reconcile(self, now: float) -> None:
        workloads = self.source.workloads()
        for action in self.lifecycle.plan(workloads, self._members(), now):
            if isinstance(action, strong.Dissolve):
                log.info("dissolving Raft group %s: %s", action.group, action.reason)
                self.dissolve(action.group)
            elif isinstance(action, strong.Found):
                group = strong.group_id(action.workload.uid, self.rng)
                log.info(
                    "founding Raft group %s for %s/%s",
                    group,
                    action.workload.namespace,
                    action.workload.name,
                )
                self._create(group, DurableState.bootstrap([self.me]), now)
                self._inc("raft_groups_founded")
            else:
                for op, member in action.changes:
                    res, fx = self.host.change_membership(action.group, op, member, now)
                    self.execute(fx)
                    if isinstance(res, Accepted):
                        log.info("group %s: %s %s", action.group, op.value, member[:12])
                        self._inc("raft_membership_changes")
                        break
        for g in self.host.groups():
            n = self.host.node(g)
            if n.applied - n.snapshot.index >= COMPACT_EVERY:
                self.execute(self.host.compact(g, n.applied, self.kv[g].snapshot(), now))
            self._report(g, workloads, now)

    # ---------------------------------------------------------------- status

    def _report(self, group: str, workloads: dict[str, strong.WorkloadView], now: float) -> None:
        n = self.host.node(group)
        w = workloads.get(self.uid_of[group])
        if w is None or (w.group and w.group != group):
            return
        if n.role is Role.LEADER:
            self._no_leader_since.pop(group, None)
            ok, reason = True, "Consistent"
            message = (
                f"leader {self.source.name_of(self.me)}, {len(n.voters)} voters, term {n.term}"
            )
        elif n.leader:
            self._no_leader_since.pop(group, None)
            return  # the leader reports
        else:
            since = self._no_leader_since.setdefault(group, now)
            if now - since < QUORUM_LOST_S or not (n.voters or n.learners):
                return
            ok, reason = False, "QuorumLost"
            message = f"no leader for {now - since:.0f}s: a majority of the voters is unreachable"
        members = [{"node": self.source.name_of(m), "role": "voter"} for m in sorted(n.voters)] + [
            {"node": self.source.name_of(m), "role": "learner"} for m in sorted(n.learners)
        ]
        block: dict[str, Any] = {
            "group": group,
            "leader": self.source.name_of(self.me) if ok else "",
            "leaderNodeId": self.me if ok else "",
            "term": n.term,
            "commitIndex": n.commit,
            "members": members,
        }
        stable = (ok, block["leader"], n.term, tuple(sorted(n.voters)), tuple(sorted(n.learners)))
        last = self._status_written.get(group)
        found = self.source.find(w.namespace, w.name)
        current = (found[1] if found else {}).get("consistency")
        if (
            last is not None
            and last[0] == stable
            and current is not None
            and current.get("group") == group
            and current.get("leader") == block["leader"]
            and (current.get("commitIndex") == n.commit or now - last[1] < STATUS_REFRESH_S)
        ):
            return
        self._status_written[group] = (stable, now)
        self.source.write_status(w.namespace, w.name, block, ok, reason, message)

    # ------------------------------------------------------------- client API

    def state(self, namespace: str, name: str) -> StrongState:
        return StrongState(self, namespace, name)

    def _route(self, namespace: str, name: str) -> tuple[str, str]:
        """(group, leader node id) as known here; "" for what is unknown."""
        found = self.source.find(namespace, name)
        if found is None:
            raise NotStrong(f"no strong workload {namespace}/{name}")
        uid, status = found
        named = str((status.get("consistency") or {}).get("group") or "")
        local = [g for g in self.host.groups() if self.uid_of[g] == uid]
        group = named if named in local or not local else local[0]
        if group in self.host:
            return group, self.host.node(group).leader
        if not group:
            return "", ""
        return group, str((status.get("consistency") or {}).get("leaderNodeId") or "")

    async def request(
        self,
        namespace: str,
        name: str,
        op: kv.StoreOp,
        key: str,
        value: bytes = b"",
        expect_version: int | None = None,
        wait_s: float = DEFAULT_WAIT_S,
    ) -> kv.StoreReply:
        kv.check_key(key)
        if op is kv.StoreOp.PUT:
            kv.encode_put(key, value, expect_version)  # checks the bounds before any wait
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        why = "the group has not formed yet"
        while True:
            group, leader = self._route(namespace, name)
            reply: kv.StoreReply | None = None
            if group and leader == self.me:
                reply = await self._serve(group, op, key, value, expect_version, deadline)
            elif group and leader:
                reply = await self._forward(group, leader, op, key, value, expect_version, deadline)
                if reply is None:
                    why = f"no answer from the leader {self.source.name_of(leader)}"
                    if op is not kv.StoreOp.GET:
                        raise Unavailable(
                            f"{namespace}/{name}: {why} within {wait_s:.1f}s; the write's "
                            "outcome is unknown",
                            outcome_unknown=True,
                        )
            elif group:
                why = "no leader: a majority of the group's voters is unreachable"
            if reply is not None:
                if reply.code is kv.StoreCode.UNAVAILABLE:
                    raise Unavailable(
                        f"{namespace}/{name}: {reply.message}",
                        outcome_unknown=op is not kv.StoreOp.GET,
                    )
                if reply.code is kv.StoreCode.FORBIDDEN:
                    raise Forbidden(f"{namespace}/{name}: {reply.message}")
                if reply.code is not kv.StoreCode.NOT_LEADER:
                    return reply
                why = "leadership moved"
            if loop.time() >= deadline:
                self._inc("raft_store_unavailable")
                raise Unavailable(f"{namespace}/{name}: {why} (waited {wait_s:.1f}s)")
            await asyncio.sleep(RETRY_S)

    async def _forward(
        self,
        group: str,
        leader: str,
        op: kv.StoreOp,
        key: str,
        value: bytes,
        expect: int | None,
        deadline: float,
    ) -> kv.StoreReply | None:
        loop = asyncio.get_running_loop()
        rid = next(self._ids)
        fut: asyncio.Future[kv.StoreReply] = loop.create_future()
        self._replies[rid] = fut
        req = kv.StoreRequest(group, self.me, rid, op, key, value, expect)
        self._inc("raft_store_forwarded")
        self.execute([Send(leader, leader, req)])
        try:
            wait = max(0.0, min(FORWARD_ATTEMPT_S, deadline - loop.time()))
            if op is not kv.StoreOp.GET:
                wait = max(0.0, deadline - loop.time())
            async with asyncio.timeout(wait):
                return await fut
        except TimeoutError:
            return None
        finally:
            self._replies.pop(rid, None)

    def _reply(self, req: kv.StoreRequest, code: kv.StoreCode, **kw: Any) -> None:
        rep = kv.StoreReply(req.group, self.me, req.id, code, **kw)
        self.execute([Send(req.src, req.src, rep)])

    async def _serve_forwarded(self, req: kv.StoreRequest) -> None:
        deadline = asyncio.get_running_loop().time() + DEFAULT_WAIT_S
        if req.group not in self.host:
            self._reply(req, kv.StoreCode.NOT_LEADER)
            return
        n = self.host.node(req.group)
        if not strong.may_request(
            req.src, req.group, n.voters | n.learners, self.source.workloads()
        ):
            self._inc("raft_store_forbidden")
            self._reply(
                req, kv.StoreCode.FORBIDDEN, message="not a member or replica node of the group"
            )
            return
        r = await self._serve(req.group, req.op, req.key, req.value, req.expect_version, deadline)
        self.execute([Send(req.src, req.src, _with_src(r, req, self.me))])

    async def _serve(
        self,
        group: str,
        op: kv.StoreOp,
        key: str,
        value: bytes,
        expect: int | None,
        deadline: float,
    ) -> kv.StoreReply:
        """Serve a request as the leader of ``group`` (NOT_LEADER if it is not)."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if group not in self.host:
            return kv.StoreReply(group, self.me, 0, kv.StoreCode.NOT_LEADER)
        if op is kv.StoreOp.GET:
            res, fx = self.host.read_index(group, now)
            if isinstance(res, NotLeader):
                return kv.StoreReply(group, self.me, 0, kv.StoreCode.NOT_LEADER, leader=res.leader)
            if not isinstance(res, ReadId):
                return kv.StoreReply(
                    group, self.me, 0, kv.StoreCode.UNAVAILABLE, message=res.reason
                )
            ready: asyncio.Future[bool] = loop.create_future()
            self._reads[(group, res.read)] = ready
            self.execute(fx)
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    ok = await ready
            except TimeoutError:
                self._reads.pop((group, res.read), None)
                return kv.StoreReply(
                    group, self.me, 0, kv.StoreCode.UNAVAILABLE,
                    message="the leader could not confirm a quorum in time",
                )  # fmt: skip
            if not ok or group not in self.kv:
                return kv.StoreReply(group, self.me, 0, kv.StoreCode.NOT_LEADER)
            got = self.kv[group].get(key)
            if got is None:
                return kv.StoreReply(group, self.me, 0, kv.StoreCode.NOT_FOUND)
            return kv.StoreReply(group, self.me, 0, kv.StoreCode.OK, got[1], got[0])
        if op is kv.StoreOp.PUT:
            data = kv.encode_put(key, value, expect)
        else:
            data = kv.encode_delete(key, expect)
        res2, fx = self.host.propose(group, data, now)
        if isinstance(res2, NotLeader):
            return kv.StoreReply(group, self.me, 0, kv.StoreCode.NOT_LEADER, leader=res2.leader)
        if not isinstance(res2, Accepted):
            return kv.StoreReply(group, self.me, 0, kv.StoreCode.UNAVAILABLE, message=res2.reason)
        done: asyncio.Future[kv.Result] = loop.create_future()
        self._writes[(group, res2.index)] = (res2.term, done)
        self.execute(fx)
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                result = await done
        except TimeoutError:
            self._writes.pop((group, res2.index), None)
            return kv.StoreReply(
                group, self.me, 0, kv.StoreCode.UNAVAILABLE,
                message="the write was not committed in time (no quorum?); its outcome is "
                "unknown",
            )  # fmt: skip
        return kv.StoreReply(group, self.me, 0, result.code, result.version or result.current)


def _with_src(r: kv.StoreReply, req: kv.StoreRequest, me: str) -> kv.StoreReply:
    return kv.StoreReply(req.group, me, req.id, r.code, r.version, r.value, r.leader, r.message)


class StrongState:
    """The strong state of one workload, for code on this node (the sidecar's state
    store): linearizable ``get``, leader-only ``put``/``delete`` with optional
    ``expect_version`` (0: the key must not exist). Versions are log indexes, the same
    on every member: use them as ETags."""

    def __init__(self, plane: StrongPlane, namespace: str, name: str) -> None:
        self.plane = plane
        self.namespace = namespace
        self.name = name

    async def get(self, key: str, wait_s: float = DEFAULT_WAIT_S) -> Item | None:
        r = await self.plane.request(self.namespace, self.name, kv.StoreOp.GET, key, wait_s=wait_s)
        return Item(r.value, r.version) if r.code is kv.StoreCode.OK else None

    async def put(
        self,
        key: str,
        value: bytes,
        expect_version: int | None = None,
        wait_s: float = DEFAULT_WAIT_S,
    ) -> int:
        """Write ``value``; returns the key's new version."""
        r = await self.plane.request(
            self.namespace, self.name, kv.StoreOp.PUT, key, value, expect_version, wait_s
        )
        if r.code is kv.StoreCode.CONFLICT:
            raise VersionConflict(key, expect_version or 0, r.version)
        return r.version

    async def delete(
        self, key: str, expect_version: int | None = None, wait_s: float = DEFAULT_WAIT_S
    ) -> bool:
        """Delete ``key``; whether it existed."""
        r = await self.plane.request(
            self.namespace, self.name, kv.StoreOp.DELETE, key, b"", expect_version, wait_s
        )
        if r.code is kv.StoreCode.CONFLICT:
            raise VersionConflict(key, expect_version or 0, r.version)
        return r.code is kv.StoreCode.OK
