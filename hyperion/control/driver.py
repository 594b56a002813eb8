"""The real driver of the control plane on one node (asyncio): custodian, scheduler,
binding and the node's own pods.

Owns the loop that, on every catalog or membership change (and at least every
``RESYNC_S``):

1. runs this node's ``Custodian.reconcile`` over its copy of the catalog and writes
   what it returns (Pods, deletions, workload status, Events);
2. tenders the unplaced Pods it is custodian of through the ``Scheduler`` core (whose
   messages travel in the machine plane's signed envelopes);
3. binds a Pod when its award is accepted (``spec.nodeName``, the ``PodScheduled``
   condition, the ``hyperion.io/placement`` annotation, a ``Scheduled`` Event), or
   records ``PodScheduled=False``/``Unschedulable`` and a ``FailedScheduling`` Event;
4. runs the Pods bound to this node with the ``PodManager`` (the kubelet part) and
   writes their status back, keeping the scheduler's reservations equal to them.

Replica leases and workload records (DESIGN §6.4–5, ``hyperion.mesh.leases``), on their
own timers so that no reconcile waits on the DHT:

* the kubelet part puts a lease (expiry ``LEASE_TTL_S`` ahead, version growing) for
  each Pod bound here that has not finished: at once when the Pod arrives, then every
  ``LEASE_RENEW_S``. A deleted Pod's lease is no longer renewed and expires.
* every ``LEASE_CHECK_S`` the custodian looks up the lease of each bound replica of the
  workloads it custodies whose node is alive. A lease is missing once it has gone
  unrenewed for ``LEASE_TTL_S`` (it expired). A replica whose lease was missing in
  ``LEASE_MISSES`` lookups in a row, at least ``LEASE_TTL_S`` after this node began
  watching it (a grace period after binding or takeover), has lapsed: it is passed to
  the custodian in ``Members.lapsed`` and replaced like a replica on a dead node. A
  lookup that does not end, or in which a node asked did not answer, proves nothing
  and counts as neither. Membership death stays the fast path: replicas on dead nodes
  are never watched.
* in the same round it publishes the record of each workload it custodies when it
  changed, and at least every ``WORKLOAD_REPUBLISH_S``.

After a restart, the daemon restores the catalog from disk (``hyperion.control.persist``)
before the node has relearnt its peers; ``hold_after_restore`` keeps this loop idle
until the nodes of the restored Pods are back (or ``REJOIN_HOLD_S``), so that they are
not replaced as lost.

Test hook: ``lease_pause_file`` (the daemon passes ``$HYPERION_TEST_LEASE_PAUSE``, read
once at start) names a local file listing ``namespace/name`` of Pods whose leases this
node stops renewing while they keep running. Only a process that can write that file
(and set the node's environment) reaches it; nothing on the network does.

The scheduler's view of the mesh (who may bid) comes from node records and membership,
fed by the daemon through ``observe``/``forget``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperion.api.nodes import rfc3339
from hyperion.control.custodian import (
    API_VERSION,
    POD,
    TERMINAL_PHASES,
    Custodian,
    Custodied,
    Key,
    Members,
    Write,
    condition,
    desired_replicas,
    pod_phase,
    pod_ready,
)
from hyperion.control.features import candidate_of, request_of
from hyperion.control.scheduler import Placed, Scheduler, Unplaced
from hyperion.core import Effect
from hyperion.identity.keys import NodeKey
from hyperion.mesh import leases
from hyperion.mesh.crypto import signed_value
from hyperion.mesh.dht import LookupDone, Record
from hyperion.mesh.node import MeshNode
from hyperion.mesh.records import NodeRecord
from hyperion.policy.model import Candidate
from hyperion.runtime.pods import PodManager

log = logging.getLogger("hyperion.control")
RESYNC_S = 1.0
SCHEDULER_PROTOCOL = 2  # the first protocol version with tender/bid/award messages
PLACEMENT_ANNOTATION = "hyperion.io/placement"
LEASE_RENEW_S = 3.0  # a holder renews each lease this often ...
LEASE_TTL_S = 10.0  # ... and it expires this long after: three renewals may be lost
LEASE_CHECK_S = 2.0  # the custodian looks up its replicas' leases this often
LEASE_MISSES = 2  # consecutive missing lookups before a lease can lapse: one lost reply is not
LOOKUP_TIMEOUT_S = 3.0  # a DHT lookup ends on its own within about k × 1 s timeouts; rarely
LEASE_LOOKUPS_MAX = 16  # lease lookups in flight at once, per check round
WORKLOAD_TTL_S = 120.0
WORKLOAD_REPUBLISH_S = 30.0
TERMINAL = TERMINAL_PHASES  # a finished Pod holds no lease
# A node that restored its catalog from disk waits at most this long for the nodes its
# Pods are bound to (hold_after_restore): about a whole mesh's restart, and twice the
# custodian's grace before it deletes a lost node's Pods.
REJOIN_HOLD_S = 10.0
_RESOURCE_OF_KIND = {kind: res for res, (_, kind) in API_VERSION.items()}


def pod_key(key: Key) -> str:
    return f"{key[1]}/{key[2]}"


def key_of(pod: str) -> Key:
    ns, _, name = pod.partition("/")
    return (POD, ns, name)


class DhtClient:
    """The node's DHT from asyncio code: puts, and lookups awaited until the core
    notifies their ``LookupDone`` (the daemon passes those to ``done``)."""

    def __init__(self, core: MeshNode, execute: Callable[[list[Effect]], None]) -> None:
        self.core = core
        self.execute = execute
        self._waiting: dict[int, asyncio.Future[LookupDone]] = {}

    def _now(self) -> float:
        return time.monotonic() + self.core.wall_offset  # the DHT runs on the wall clock

    def put(self, rec: Record) -> None:
        _, fx = self.core.dht.put(rec, self._now())
        self.execute(fx)

    async def get(self, key: str, timeout_s: float = LOOKUP_TIMEOUT_S) -> Record | None:
        """The valid, unexpired record under ``key`` (None: none found); raises
        TimeoutError if the lookup does not end in ``timeout_s``."""
        return (await self.find(key, timeout_s)).record

    async def find(self, key: str, timeout_s: float = LOOKUP_TIMEOUT_S) -> LookupDone:
        """A lookup for the record under ``key``, to its end (see ``get``)."""
        lid, fx = self.core.dht.lookup(key, self._now(), want_value=True)
        fut: asyncio.Future[LookupDone] = asyncio.get_running_loop().create_future()
        self._waiting[lid] = fut
        try:
            self.execute(fx)  # a record held here ends the lookup at once
            async with asyncio.timeout(timeout_s):
                return await fut
        finally:
            self._waiting.pop(lid, None)

    def done(self, ev: LookupDone) -> bool:
        """A lookup ended; True if it was one of ours."""
        fut = self._waiting.pop(ev.lookup_id, None)
        if fut is None:
            return False
        if not fut.done():
            fut.set_result(ev)
        return True


@dataclass(slots=True)
class _Watch:
    """The custodian's watch on one replica's lease."""

    key: str  # lease key: (pod, the node it is bound to)
    since: float  # wall time the watch began: binding, or this node's takeover
    misses: int = 0  # conclusive lookups in a row that found no valid lease


@dataclass(frozen=True, slots=True)
class Located:
    """What ``ControlDriver.locate`` resolved: the workload record and its value, and
    for each placement the lease record found (None: missing) and its value."""

    record: Record
    workload: leases.Workload
    leases: tuple[tuple[leases.Placement, Record | None, leases.Lease | None], ...]


class ControlDriver:
    """See the module docstring."""

    def __init__(
        self,
        *,
        core: MeshNode,
        scheduler: Scheduler,
        node_name: str,
        execute: Callable[[list[Effect]], None],
        pods: PodManager,
        live_members: Callable[[], dict[str, str]],
        key: NodeKey,
        lease_pause_file: str | None = None,
    ) -> None:
        self.core = core
        self.scheduler = scheduler
        self.node_id = core.node_id
        self.node_name = node_name
        self.execute = execute
        self.pods = pods
        self._live_members = live_members
        self.custodian = Custodian(core.node_id, node_name, rng=random.Random(), rfc3339=rfc3339)
        self.names: dict[str, str] = {}  # node id -> name
        self.api_addrs: dict[str, str] = {}  # node name -> its Kubernetes API host:port
        self.bidders: dict[str, Candidate] = {}  # name -> the node as it bids (its record)
        self._wake = asyncio.Event()
        self._was_live: frozenset[str] = frozenset()  # node names, at the last reconcile
        self._gone_since: dict[str, float] = {}  # name -> when it left them
        self._quorum_since: float | None = None  # see _majority_since
        self.counters: dict[str, int] = {}
        self.key = key
        self.dht = DhtClient(core, execute)
        self._lease_pause = Path(lease_pause_file) if lease_pause_file else None
        self._lease_versions: dict[str, int] = {}  # lease key -> last version put
        self._watches: dict[str, _Watch] = {}  # pod uid -> watch
        self.lapsed: frozenset[str] = frozenset()  # pod uids whose lease lapsed
        # workload key -> (value, republish at, version) of the records we published
        self._published: dict[str, tuple[leases.Workload, float, int]] = {}
        # (monotonic deadline, node names) while held after a restore, else None
        self._hold: tuple[float, frozenset[str]] | None = None

    # ---------------------------------------------------------------- inputs

    def observe(self, rec: NodeRecord) -> None:
        """A node record learned (ours included)."""
        cand = candidate_of(rec)
        self.names[rec.node_id] = rec.name
        self.api_addrs[rec.name] = rec.api_addr
        self.bidders[rec.name] = cand
        if rec.node_id == self.node_id:
            self.scheduler.set_self(cand)
        elif SCHEDULER_PROTOCOL in rec.protocol_versions:  # older nodes cannot bid
            self.scheduler.observe(rec.node_id, rec.mesh_addr, cand)
        self.wake()

    def forget(self, node_id: str) -> None:
        self.scheduler.forget(node_id)
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def hold_after_restore(self) -> None:
        """After the catalog was restored from disk (``hyperion.control.persist``), do
        nothing — no custody, no kubelet, no leases — until every other node that the
        restored Pods are bound to is live and the catalog has been compared with a peer,
        or for ``REJOIN_HOLD_S`` at most. Until it has rejoined, this node does not
        know its peers and would replace their replicas as lost (as the cut-off side
        of a partition does), then retire the surplus when they show up."""
        others = set()
        for e in self.core.catalog.list(POD):
            p = e.obj or {}
            node = (p.get("spec") or {}).get("nodeName")
            if node and node != self.node_name and pod_phase(p) not in TERMINAL:
                others.add(str(node))
        if others:
            self._hold = (time.monotonic() + REJOIN_HOLD_S, frozenset(others))
            log.info("restored Pods on %s: waiting for them to rejoin", ", ".join(sorted(others)))

    def _held(self) -> bool:
        if self._hold is None:
            return False
        until, others = self._hold
        missing = others - set(self._live_members().values())
        c = self.core.catalog.counters
        if time.monotonic() < until and (missing or c["in_sync"] + c["deltas_received"] == 0):
            self._inc("held_after_restore")
            return True
        if missing:
            log.warning("acting after %.0f s without %s", REJOIN_HOLD_S, ", ".join(sorted(missing)))
        else:
            log.info("rejoined: acting again")
        self._hold = None
        return False

    def on_event(self, ev: object) -> None:
        """Scheduler events passed up by the core."""
        if isinstance(ev, Placed):
            self._bind(ev)
        elif isinstance(ev, Unplaced):
            self._unplaced(ev)

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._reconcile_loop())
            tg.create_task(self._every(LEASE_RENEW_S, self._renew_leases))
            tg.create_task(self._every(LEASE_CHECK_S, self._check_leases))

    async def _every(self, period_s: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await step()
            except Exception:  # a bug here must not stop the node: log it, go on
                log.exception("%s failed", getattr(step, "__name__", step))
                self._inc("lease_loop_errors")

    async def _reconcile_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RESYNC_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:  # a bug here must not stop the node: log it, go on
                log.exception("reconcile failed")
                self._inc("reconcile_errors")
            await asyncio.sleep(0.02)  # coalesce bursts of changes

    async def reconcile(self) -> None:
        if self._held():
            return
        now = time.time()
        live = dict(self._live_members())
        live[self.node_id] = self.node_name
        named = {nid: name for nid, name in live.items() if name}
        members = Members(
            named,
            {name: (c.zone, c.cloud_region) for name, c in self.bidders.items()},
            self.lapsed,
            quorum_since=self._majority_since(len(named), now),
            gone_since=self._gone(frozenset(named.values()), now),
        )
        cat = self.core.catalog

        def objects(resource: str) -> list[dict[str, Any]]:
            return [e.obj for e in cat.list(resource) if e.obj is not None]

        writes, tenders = self.custodian.reconcile(
            objects, members, now, lambda k: self.scheduler.tendering(pod_key(k))
        )
        for w in writes:
            self._write(w)
        mono = time.monotonic()
        ids = {name: nid for nid, name in self.names.items()}
        for t in tenders:
            try:
                req = request_of(t.pod)
            except ValueError as e:
                self._mark_unschedulable(t.key, str(e), "InvalidRequest")
                self.custodian.unplaced(t.key, now)
                continue
            siblings = [self.bidders[n] for n, _, _ in t.placed if n in self.bidders]
            if req.kind == "service" and siblings:  # where its replicas already serve from
                req = req.with_siblings(siblings)
            placed = [(ids.get(n, n), z, r) for n, z, r in t.placed]
            _, fx = self.scheduler.tender(pod_key(t.key), req, mono, placed=placed)
            self._inc("tenders")
            self.execute(fx)
        await self._kubelet(objects(POD))

    def _gone(self, live: frozenset[str], now: float) -> dict[str, float]:
        """Node name -> when it left the live view (wall seconds), kept for the
        custodian's grace before it deletes the Pods of a node that may come back. One
        that membership holds alive again is not gone while its record is relearnt
        (the live view waits for it): its clock stays at now."""
        for name in self._was_live - live:
            self._gone_since.setdefault(name, now)
        state = self.core.membership.state_of
        for nid, name in self.names.items():
            if name not in live and state(nid) in ("alive", "suspect"):
                self._gone_since[name] = now
        self._was_live = live
        grace = self.custodian.lost_grace_s
        self._gone_since = {
            n: t for n, t in self._gone_since.items() if n not in live and now - t < grace
        }
        return self._gone_since

    def _majority_since(self, live: int, now: float) -> float | None:
        """Since when the ``live`` nodes the custodian acts on (this one included) have
        been a strict majority of the members this node knows (the dead stay in SWIM's
        table), without a break; None while they are not: on the side a partition cut
        off, or on a node rejoining that has yet to relearn the others' records
        (membership says alive before the records come)."""
        t = self.core.membership.table
        if 2 * live <= t.alive + t.suspect + t.dead:
            self._quorum_since = None
        elif self._quorum_since is None:
            self._quorum_since = now
        return self._quorum_since

    async def _kubelet(self, pods: list[dict[str, Any]]) -> None:
        mine = [p for p in pods if (p.get("spec") or {}).get("nodeName") == self.node_name]
        # Capacity held for our pods: confirmed holds are exactly the pods bound here
        # (pending ones are awards whose binding has not arrived yet).
        held = {k for k, (*_, confirmed) in self.scheduler.holds().items() if confirmed}
        keys = set()
        for p in mine:
            m = p["metadata"]
            k = f"{m.get('namespace')}/{m.get('name')}"
            keys.add(k)
            if k not in held:
                with contextlib.suppress(ValueError):  # the custodian tenders valid pods only
                    self.scheduler.hold(k, request_of(p))
        for k in held - keys:
            self.scheduler.release(k)
        await self.pods.sync(mine)
        self._put_leases(
            [p for p in mine if pod_phase(p) not in TERMINAL], time.time(), renew=False
        )

    # ------------------------------------------------------------- leases

    def _bound_here(self) -> list[dict[str, Any]]:
        """Pods bound to this node that have not finished."""
        out = []
        for e in self.core.catalog.list(POD):
            p = e.obj
            if p is None or (p.get("spec") or {}).get("nodeName") != self.node_name:
                continue
            if pod_phase(p) not in TERMINAL:
                out.append(p)
        return out

    def _paused(self) -> set[str]:
        if self._lease_pause is None:
            return set()
        try:
            return set(self._lease_pause.read_text().split())
        except OSError:
            return set()

    async def _renew_leases(self) -> None:
        """The kubelet part: renew the lease of every Pod bound here."""
        if self._hold is not None:
            return
        self._put_leases(self._bound_here(), time.time(), renew=True)

    def _put_leases(self, pods: list[dict[str, Any]], now: float, *, renew: bool) -> None:
        """Put the leases of ``pods`` (bound here): all of them when ``renew``, else only
        those that have none yet (a Pod just bound gets its lease at once)."""
        paused = self._paused()
        versions: dict[str, int] = {}
        for p in pods:
            m = p.get("metadata") or {}
            ns, name, uid = str(m.get("namespace")), str(m.get("name")), str(m.get("uid") or "")
            if not uid:
                continue
            key = leases.lease_key(ns, name, uid, self.node_id)
            last = self._lease_versions.get(key)
            if not renew and last is not None:
                continue
            if f"{ns}/{name}" in paused:
                self._inc("lease_renewals_paused")
                continue
            try:
                lease = leases.Lease(ns, name, uid, self.node_id, _owner_key(p), now)
            except leases.LeaseError as e:
                log.warning("no lease for pod %s/%s: %s", ns, name, e)
                continue
            versions[key] = version = max((last or 0) + 1, int(now * 1000))
            self.dht.put(signed_value(self.key, lease, version, now + LEASE_TTL_S))
            self._inc("lease_renewals")
        if renew:
            self._lease_versions = versions  # a deleted Pod's lease is forgotten: it expires
        else:
            self._lease_versions.update(versions)

    async def _check_leases(self) -> None:
        """The custodian part: look up the leases of the replicas we custody, mark
        the lapsed ones, then publish the workload records."""
        now = time.time()
        ids = {name: nid for nid, name in self.names.items()}
        alive = set(self._live_members().values()) | {self.node_name}
        targets: dict[str, str] = {}  # pod uid -> lease key
        for c in self.custodian.custodied.values():
            for p in c.pods:
                m, spec = p.get("metadata") or {}, p.get("spec") or {}
                node, uid = spec.get("nodeName"), str(m.get("uid") or "")
                if not node or not uid or m.get("deletionTimestamp") or pod_phase(p) in TERMINAL:
                    continue
                nid = ids.get(str(node))
                if nid is None or node not in alive:
                    continue  # a dead node's replicas are membership's business
                ns, name = str(m.get("namespace")), str(m.get("name"))
                targets[uid] = leases.lease_key(ns, name, uid, nid)
        for uid in [u for u, w in self._watches.items() if targets.get(u) != w.key]:
            del self._watches[uid]  # deleted, rebound, or its node died: the watch ends
        for uid, key in targets.items():
            self._watches.setdefault(uid, _Watch(key, since=now))
        gate = asyncio.Semaphore(LEASE_LOOKUPS_MAX)

        async def check(uid: str, w: _Watch) -> None:
            async with gate:
                try:
                    done = await self.dht.find(w.key)
                except TimeoutError:
                    self._inc("lease_lookup_timeouts")
                    return  # proves nothing either way
            self._inc("lease_lookups")
            if done.record is not None and _lease_of(done.record, uid) is not None:
                w.misses = 0
            elif done.timeouts:  # a node asked did not answer: it may hold the lease
                self._inc("lease_lookups_inconclusive")
            else:
                w.misses += 1
                self._inc("lease_misses")

        await asyncio.gather(*(check(u, w) for u, w in list(self._watches.items())))
        lapsed = frozenset(
            u
            for u, w in self._watches.items()
            if w.misses >= LEASE_MISSES and now - w.since >= LEASE_TTL_S
        )
        for uid in lapsed - self.lapsed:
            log.warning("lease of pod uid %s lapsed: replacing the replica", uid)
            self._inc("lease_lapses")
        if lapsed != self.lapsed:
            self.lapsed = lapsed
            self.wake()
        self._publish_workloads(ids, now)

    def _publish_workloads(self, ids: dict[str, str], now: float) -> None:
        keep: dict[str, tuple[leases.Workload, float, int]] = {}
        for c in self.custodian.custodied.values():
            try:
                value = self._workload_value(c, ids)
            except (leases.LeaseError, ValueError, TypeError) as e:
                self._inc("workload_record_errors")
                log.warning("no record for %s: %s", c.resource, e)
                continue
            last = self._published.get(value.key)
            if last is not None and last[0] == value and now < last[1]:
                keep[value.key] = last
                continue
            version = max((last[2] + 1) if last else 0, int(now * 1000))
            self.dht.put(signed_value(self.key, value, version, now + WORKLOAD_TTL_S))
            keep[value.key] = (value, now + WORKLOAD_REPUBLISH_S, version)
            self._inc("workload_records_published")
        self._published = keep  # custody moved or workload deleted: its record expires

    def _workload_value(self, c: Custodied, ids: dict[str, str]) -> leases.Workload:
        m = c.workload.get("metadata") or {}
        desired = desired_replicas(c.resource, c.workload)
        placed = []
        for p in sorted(c.pods, key=lambda p: str((p.get("metadata") or {}).get("name"))):
            pm, node = p.get("metadata") or {}, (p.get("spec") or {}).get("nodeName")
            nid, uid = ids.get(str(node)), str(pm.get("uid") or "")
            if not node or nid is None or not uid or pm.get("deletionTimestamp"):
                continue
            if uid in self.lapsed or pod_phase(p) in TERMINAL:
                continue
            placed.append(leases.Placement(str(pm.get("name")), uid, nid, str(node), pod_ready(p)))
        return leases.Workload(
            resource=c.resource,
            namespace=str(m.get("namespace")),
            name=str(m.get("name")),
            uid=str(m.get("uid") or ""),
            generation=int(m.get("generation") or 1),
            desired=desired,
            ready=sum(1 for x in placed if x.ready),
            placements=tuple(placed[: leases.MAX_PLACEMENTS]),
        )

    async def locate(self, resource: str, namespace: str, name: str) -> Located | None:
        """Resolve a workload's record and its placements' leases through the DHT."""
        key = leases.workload_key(resource, namespace, name)
        rec = await self.dht.get(key)
        if rec is None:
            return None
        w = leases.decode(rec.value)  # the DHT accepted it: it decodes
        if not isinstance(w, leases.Workload):
            return None

        async def one(
            pl: leases.Placement,
        ) -> tuple[leases.Placement, Record | None, leases.Lease | None]:
            try:
                lr = await self.dht.get(w.lease_key(pl))
            except TimeoutError:
                return pl, None, None
            return pl, lr, None if lr is None else _lease_of(lr, pl.pod_uid)

        found = await asyncio.gather(*(one(pl) for pl in w.placements))
        return Located(rec, w, tuple(found))

    # ------------------------------------------------------------- writes

    def _write(self, w: Write) -> None:
        after = None
        if w.derived:
            cur = self.core.catalog.get(w.key)
            if cur is None or cur.obj is None:
                return  # deleted meanwhile: nothing to update
            after = cur.ts
        _, fx = self.core.catalog_write(w.key, w.obj, time.monotonic(), after=after)
        self.execute(fx)

    def write_derived(self, key: Key, obj: dict[str, Any]) -> None:
        """Write ``obj``, made from what ``key`` holds now, as a derived write (a status
        update): it gives way to any write made knowing that version."""
        self._write(Write(key, obj, derived=True))

    def publish_status(self, ns: str, name: str, status: dict[str, Any]) -> None:
        """The pod manager's status of one of our pods, written into the catalog."""
        key = (POD, ns, name)
        cur = self.core.catalog.get(key)
        pod = None if cur is None else cur.obj
        if pod is None or (pod.get("spec") or {}).get("nodeName") != self.node_name:
            return
        new = dict(pod)
        old = pod.get("status") or {}
        merged = dict(status)
        if old.get("conditions") and merged.get("conditions"):
            have = {c.get("type") for c in merged["conditions"]}
            merged["conditions"] = [
                c for c in old["conditions"] if c.get("type") not in have
            ] + merged["conditions"]
        new["status"] = merged
        if new != pod:
            self._write(Write(key, new, derived=True))

    def record_event(self, pod: dict[str, Any], typ: str, reason: str, message: str) -> None:
        self._write(self.custodian.event(pod, "Pod", typ, reason, message, time.time()))

    def _bind(self, ev: Placed) -> None:
        key = key_of(ev.pod)
        cur = self.core.catalog.get(key)
        pod = None if cur is None else cur.obj
        if pod is None or (pod.get("spec") or {}).get("nodeName"):
            self._inc("bind_skipped")  # deleted, or bound by another custodian meanwhile
            return
        name = self.names.get(ev.node_id, ev.node_id)
        c = ev.candidate
        placement = {
            "node": name,
            "cloud": c.cloud,
            "region": c.region,
            "zone": c.zone,
            "pricePerHour": c.price_per_hour,
            "spot": c.spot,
            "policy": ev.decision.policy,
            "score": round(ev.decision.score, 1),
            "bids": ev.bids,
            "tenderMs": round(ev.elapsed_s * 1000, 1),
        }
        now = time.time()
        new = dict(pod)
        meta = dict(pod["metadata"])
        ann = dict(meta.get("annotations") or {})
        ann[PLACEMENT_ANNOTATION] = json.dumps(placement, sort_keys=True)
        meta["annotations"] = ann
        new["metadata"] = meta
        new["spec"] = dict(pod.get("spec") or {}, nodeName=name)
        st = dict(pod.get("status") or {})
        before = st.get("conditions")
        st["conditions"] = _with(
            before, condition(before, "PodScheduled", "True", "", "", rfc3339(now))
        )
        new["status"] = st
        self._write(Write(key, new, derived=True))
        self.custodian.placed(key)
        spot = "spot" if c.spot else "on-demand"
        self._write(
            self.custodian.event(
                new,
                "Pod",
                "Normal",
                "Scheduled",
                f"Successfully assigned {ev.pod} to {name} ({c.cloud} {c.region} {spot}, "
                f"${c.price_per_hour:g}/h; {ev.decision.policy} over {ev.bids} bids "
                f"in {ev.elapsed_s * 1000:.0f} ms)",
                now,
            )
        )
        self._inc("bound")

    def _unplaced(self, ev: Unplaced) -> None:
        key = key_of(ev.pod)
        self._mark_unschedulable(key, ev.message, "Unschedulable")
        self.custodian.unplaced(key, time.time())

    def _mark_unschedulable(self, key: Key, message: str, reason: str) -> None:
        cur = self.core.catalog.get(key)
        pod = None if cur is None else cur.obj
        if pod is None or (pod.get("spec") or {}).get("nodeName"):
            return
        now = time.time()
        new = dict(pod)
        st = dict(pod.get("status") or {})
        before = st.get("conditions")
        st["conditions"] = _with(
            before, condition(before, "PodScheduled", "False", reason, message, rfc3339(now))
        )
        st["phase"] = "Pending"
        new["status"] = st
        if new != pod:
            self._write(Write(key, new, derived=True))
            self._write(
                self.custodian.event(new, "Pod", "Warning", "FailedScheduling", message, now)
            )
        self._inc("unschedulable")

    def _inc(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1


def _owner_key(pod: dict[str, Any]) -> str:
    """The record key of the workload that owns ``pod`` ("" for a bare pod)."""
    m = pod.get("metadata") or {}
    for ref in m.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            res = _RESOURCE_OF_KIND.get(str(ref.get("kind")))
            if res is not None:
                return leases.workload_key(res, str(m.get("namespace")), str(ref.get("name")))
    return ""


def _lease_of(rec: Record, uid: str) -> leases.Lease | None:
    """The lease in ``rec`` if it is one, on the pod with ``uid``."""
    try:
        v = leases.decode(rec.value)
    except leases.LeaseError:
        return None
    return v if isinstance(v, leases.Lease) and v.pod_uid == uid else None


def _with(conds: object, cond: dict[str, Any]) -> list[dict[str, Any]]:
    """``conds`` with ``cond`` first in place of the one of its type."""
    rest = [c for c in (conds if isinstance(conds, list) else []) if c.get("type") != cond["type"]]
    return [cond, *rest]
