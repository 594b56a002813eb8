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
from collections.abc import Callable
from typing import Any

from hyperion.api.nodes import rfc3339
from hyperion.control.custodian import POD, Custodian, Key, Members, Write, condition
from hyperion.control.features import candidate_of, request_of
from hyperion.control.scheduler import Placed, Scheduler, Unplaced
from hyperion.core import Effect
from hyperion.mesh.node import MeshNode
from hyperion.mesh.records import NodeRecord
from hyperion.runtime.pods import PodManager

log = logging.getLogger("hyperion.control")
RESYNC_S = 1.0
SCHEDULER_PROTOCOL = 2  # the first protocol version with tender/bid/award messages
PLACEMENT_ANNOTATION = "hyperion.io/placement"


def pod_key(key: Key) -> str:
    return f"{key[1]}/{key[2]}"


def key_of(pod: str) -> Key:
    ns, _, name = pod.partition("/")
    return (POD, ns, name)


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
        self.topology: dict[str, tuple[str, str]] = {}  # name -> (zone, cloud:region)
        self._wake = asyncio.Event()
        self.counters: dict[str, int] = {}

    # ---------------------------------------------------------------- inputs

    def observe(self, rec: NodeRecord) -> None:
        """A node record learned (ours included)."""
        cand = candidate_of(rec)
        self.names[rec.node_id] = rec.name
        self.api_addrs[rec.name] = rec.api_addr
        self.topology[rec.name] = (cand.zone, cand.cloud_region)
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

    def on_event(self, ev: object) -> None:
        """Scheduler events passed up by the core."""
        if isinstance(ev, Placed):
            self._bind(ev)
        elif isinstance(ev, Unplaced):
            self._unplaced(ev)

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RESYNC_S)
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:  # a bug here must not stop the node: log it, go on
                log.exception("reconcile failed")
                self._inc("reconcile_errors")
            await asyncio.sleep(0.02)  # coalesce bursts of changes

    async def reconcile(self) -> None:
        now = time.time()
        live = dict(self._live_members())
        live[self.node_id] = self.node_name
        members = Members({nid: name for nid, name in live.items() if name}, dict(self.topology))
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
            placed = [(ids.get(n, n), z, r) for n, z, r in t.placed]
            _, fx = self.scheduler.tender(pod_key(t.key), req, mono, placed=placed)
            self._inc("tenders")
            self.execute(fx)
        await self._kubelet(objects(POD))

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


def _with(conds: object, cond: dict[str, Any]) -> list[dict[str, Any]]:
    """``conds`` with ``cond`` first in place of the one of its type."""
    rest = [c for c in (conds if isinstance(conds, list) else []) if c.get("type") != cond["type"]]
    return [cond, *rest]
