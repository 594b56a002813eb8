"""Workload custodians (DESIGN §6 step 5): the controllers of a mesh with no controller.

For every Deployment, StatefulSet, Job and HyperionWorkload (and every Pod created
bare), the live node closest to the object's key by XOR is its *custodian* — each node
computes this from its own membership view, so a custodian that dies is replaced by the
next closest node at the next reconcile, with no election. ``reconcile`` is pure: it
reads the node's copy of the object catalog, the live members and the wall clock, and
returns what to do — catalog writes (new Pods, deletions, workload ``status``, Events),
and the Pods to tender. The daemon executes them; the scheduler core places the tenders.

What a custodian does, per workload kind:

* **Pods**: ``replicas`` Pods from the template, owned by the workload (an
  ``ownerReference`` with ``controller: true``). Deployments name them
  ``<name>-<template hash>-<5 chars>`` and roll out a changed template by creating
  Pods of the new hash and retiring the old ones once the new ones are ready;
  StatefulSets and HyperionWorkloads name them ``<name>-<index>``; Jobs
  ``<name>-<5 chars>`` up to ``parallelism`` at a time until ``completions`` succeeded.
* **Lost replicas**: a Pod bound to a node that is not alive in the custodian's view,
  or whose replica lease has lapsed though its node is alive (``Members.lapsed``: the
  driver watches the leases in the DHT, ``hyperion.mesh.leases``), does not count; a
  replacement is created and tendered. The lost Pod is deleted only
  once the workload has its full count *running* again, and only by a custodian
  that has seen the node out of its view for ``lost_grace_s`` while it saw a majority
  of the mesh (``Members.gone_since``, ``Members.quorum_since``): so the only running
  copy is never retired, nor the Pods of a node declared dead by mistake (a stalled
  host; after a partition heals, the stale verdicts of the side that was cut off),
  which is refuted within about a second. When such a node or a partition comes
  back, the surplus is retired instead — unbound first, then not ready, then the
  newest, so nothing running is restarted needlessly.
* **Restarts**: a node that stops cleanly reports its Pods not ready with status
  reason ``NodeShutdown`` (``hyperion.runtime.pods``) and restarts them in place when
  it starts again, as a kubelet does. Such a Pod that may run again (not
  ``Succeeded``/``Failed``) is *restarting*, not lost, while its node has been out of
  the view for less than ``lost_grace_s`` (``Members.gone_since``): it is neither
  replaced nor counted as running. If the node is not back by then, it is lost as
  above. A node that crashed reports nothing, and its replicas are replaced at once.
* **Partitions**: each side of a partition has its own custodian and keeps running
  what it has (an edge site cut off works offline; a workload applied there is placed
  there). Both sides replace the replicas they cannot see, but only the side whose
  view holds a strict majority of the members it knows (SWIM keeps the dead in its
  table) deletes lost Pods. A minority cannot tell a dead node from one it is cut off
  from, and its deletions would win the merge after the heal (a tombstone is newer
  than a Pod nobody rewrote) and stop the copies the majority ran all along; and
  when it rejoins, its grace starts over, as what it knows of the others is stale.
  So after the heal the majority's Pods run on untouched; the minority's Pods that
  the majority replaced are deleted (their replacements run); and the surplus — the
  replacements both sides made — is retired as above. With no majority anywhere (an
  even split, or half the mesh gone for good) lost Pods are replaced but kept,
  uncounted, until their nodes are seen again.
* **Tenders**: every unbound Pod whose custodian this node is, with the ``placed``
  (node, zone, region) of its siblings for spreading, at most ``MAX_TENDERS`` of one
  workload at a time (a 100-replica burst would otherwise swamp the bidders: windows
  close on the few bids in time, and most replicas land on the tenderer itself). An
  ``Unschedulable`` result is written as the Pod's ``PodScheduled=False`` condition
  and retried with backoff.
* **Status**: ``replicas``, ``readyReplicas``, ``availableReplicas``,
  ``updatedReplicas``, ``observedGeneration`` and conditions, as ``kubectl rollout
  status`` / ``wait`` read them; HyperionWorkloads add ``placements`` (node, cloud,
  region, price, spot) and ``phase``; Jobs ``succeeded``/``failed``/``active`` and
  ``Complete``/``Failed`` conditions with ``backoffLimit``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hyperion.runtime.base import NODE_SHUTDOWN

POD = "/pods"
EVENT = "/events"
WORKLOADS = ("apps/deployments", "apps/statefulsets", "batch/jobs", "hyperion.io/hyperionworkloads")
API_VERSION = {
    "apps/deployments": ("apps/v1", "Deployment"),
    "apps/statefulsets": ("apps/v1", "StatefulSet"),
    "batch/jobs": ("batch/v1", "Job"),
    "hyperion.io/hyperionworkloads": ("hyperion.io/v1alpha1", "HyperionWorkload"),
}
POLICY_ANNOTATION = "hyperion.io/policy"  # JSON of a HyperionWorkload's spec.policy
TEMPLATE_HASH = "pod-template-hash"
REPLICA_LABEL = "hyperion.io/replica"
WORKLOAD_LABEL = "hyperion.io/workload"
DEFAULT_BACKOFF_LIMIT = 6
# Pods of a node out of the view are deleted no sooner: a false death is refuted within
# about a second (Kubernetes waits 300 s, the not-ready/unreachable tolerationSeconds).
LOST_GRACE_S = 5.0
MAX_TENDERS = 16  # a workload's replicas being placed at once (the rest wait their turn)

Key = tuple[str, str, str]
Obj = dict[str, Any]


def xor_distance(node_id: str, key_hash: int) -> int:
    return int(node_id, 16) ^ key_hash


def key_hash(resource: str, namespace: str, name: str) -> int:
    return int(hashlib.sha1(f"{resource}/{namespace}/{name}".encode()).hexdigest(), 16)


def custodian_of(resource: str, namespace: str, name: str, live: Iterable[str]) -> str | None:
    """The live node id closest to the object's key (None when no node is live)."""
    h = key_hash(resource, namespace, name)
    return min(live, key=lambda nid: xor_distance(nid, h), default=None)


# ---------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Write:
    key: Key
    obj: Obj | None  # None: delete
    derived: bool = False  # a status update of the version read: loses to concurrent writes


@dataclass(frozen=True, slots=True)
class TenderPod:
    key: Key
    pod: Obj
    placed: tuple[tuple[str, str, str], ...]  # (node name, zone, region) of siblings


@dataclass(slots=True)
class Members:
    """The custodian's view: live node id -> name, name -> (zone, cloud:region), and the
    uids of pods whose replica lease lapsed while their node stayed alive."""

    live: Mapping[str, str]
    topology: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    lapsed: frozenset[str] = frozenset()
    # Since when ``live`` has been a strict majority of the members known, without a
    # break (None: it is not now): only then may lost Pods be deleted (Partitions).
    quorum_since: float | None = float("-inf")
    # Node name -> wall time it left the live view (absent: long ago, or never seen).
    gone_since: Mapping[str, float] = field(default_factory=dict)
    names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = frozenset(self.live.values())

    def alive(self, node_name: str) -> bool:
        return node_name in self.names

    def lost(self, pod: Obj) -> bool:
        """Bound to a node that is not alive, or its lease lapsed."""
        node = _spec(pod).get("nodeName")
        if not node:
            return False
        return not self.alive(str(node)) or str(_meta(pod).get("uid")) in self.lapsed


@dataclass(frozen=True, slots=True)
class Custodied:
    """A workload this node was custodian of at the last reconcile, with its Pods."""

    resource: str
    workload: Obj
    pods: tuple[Obj, ...]


def _dict(x: object) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _meta(o: Obj) -> dict[str, Any]:
    return _dict(o.get("metadata"))


def _spec(o: Obj) -> dict[str, Any]:
    return _dict(o.get("spec"))


def _status(o: Obj) -> dict[str, Any]:
    return _dict(o.get("status"))


def _count(spec: Obj, field: str, default: int) -> int:
    """An integer field of a spec; ``default`` when absent (0 is kept)."""
    v = spec.get(field)
    return default if v is None else int(v)


def controller_ref(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``ownerReferences`` entry of an object's controller (None: it has none)."""
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def owner_uid(pod: Obj) -> str | None:
    ref = controller_ref(_meta(pod))
    return None if ref is None else str(ref.get("uid"))


def desired_replicas(resource: str, w: Obj) -> int:
    """Replicas a workload runs at once: ``parallelism`` for a Job, else ``replicas``."""
    return _count(_spec(w), "parallelism" if resource == "batch/jobs" else "replicas", 1)


def pod_ready(pod: Obj) -> bool:
    for c in _status(pod).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


TERMINAL_PHASES = ("Succeeded", "Failed")  # a Pod in one of these has finished


def pod_phase(pod: Obj) -> str:
    return str(_status(pod).get("phase") or "Pending")


def template_hash(template: Obj) -> str:
    raw = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha1(raw).hexdigest()[:10]


_ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # as Kubernetes' rand.String: no vowels, no 0/1/3


class Custodian:
    """One node's custodian logic (see the module docstring). ``now`` is wall seconds;
    ``rfc3339`` formats them; ``rng`` draws Pod name suffixes and uids."""

    def __init__(
        self,
        node_id: str,
        node_name: str,
        *,
        rng: random.Random,
        rfc3339: Callable[[float], str],
        retry_s: float = 2.0,
        max_retry_s: float = 30.0,
        lost_grace_s: float = LOST_GRACE_S,
        max_tenders: int = MAX_TENDERS,
    ) -> None:
        self.node_id = node_id
        self.node_name = node_name
        self._rng = rng
        self._rfc3339 = rfc3339
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self.lost_grace_s = lost_grace_s
        self.max_tenders = max_tenders
        self.unschedulable: dict[Key, tuple[float, int]] = {}  # pod -> (retry at, tries)
        self.counters: dict[str, int] = {}
        # The workloads this node is custodian of, as of the last reconcile (the driver
        # watches their replicas' leases and publishes their records).
        self.custodied: dict[Key, Custodied] = {}

    # ------------------------------------------------------------------ helpers

    def _uid(self) -> str:
        b = self._rng.getrandbits(128).to_bytes(16, "big")
        h = b.hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    def _suffix(self) -> str:
        return "".join(self._rng.choice(_ALNUM) for _ in range(5))

    def restarting(self, pod: Obj, members: Members, now: float) -> bool:
        """Whether ``pod`` is on a node that stopped cleanly less than ``lost_grace_s``
        ago and may run again when it is back (see Restarts in the module docstring)."""
        node = _spec(pod).get("nodeName")
        if not node or members.alive(str(node)) or pod_phase(pod) in ("Succeeded", "Failed"):
            return False
        if _status(pod).get("reason") != NODE_SHUTDOWN:
            return False
        gone = members.gone_since.get(str(node))
        return gone is not None and now - gone < self.lost_grace_s

    def lost(self, pod: Obj, members: Members, now: float) -> bool:
        """Lost (``Members.lost``) and not restarting: to be replaced."""
        return members.lost(pod) and not self.restarting(pod, members, now)

    def mine(self, resource: str, ns: str, name: str, members: Members) -> bool:
        return custodian_of(resource, ns, name, members.live) == self.node_id

    def event(
        self, involved: Obj, kind: str, typ: str, reason: str, message: str, now: float
    ) -> Write:
        m = _meta(involved)
        name = f"{m.get('name')}.{self._rng.getrandbits(64):016x}"
        ts = self._rfc3339(now)
        ns = str(m.get("namespace") or "default")
        api_version = str(involved.get("apiVersion") or "v1")
        obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": self._uid(),
                "creationTimestamp": ts,
            },
            "involvedObject": {
                "apiVersion": api_version,
                "kind": kind,
                "name": m.get("name"),
                "namespace": ns,
                "uid": m.get("uid"),
            },
            "type": typ,
            "reason": reason,
            "message": message,
            "source": {"component": "hyperion-custodian", "host": self.node_name},
            "reportingComponent": "hyperion.io/custodian",
            "reportingInstance": self.node_name,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
        }
        return Write((EVENT, ns, name), obj)

    # ---------------------------------------------------------------- reconcile

    def reconcile(
        self,
        objects: Callable[[str], list[Obj]],
        members: Members,
        now: float,
        tendering: Callable[[Key], bool],
    ) -> tuple[list[Write], list[TenderPod]]:
        """Everything this node, as custodian, should do now. ``objects(resource)``
        lists the catalog's objects of a resource; ``tendering(pod key)`` says whether a
        tender for that pod is already open here."""
        writes: list[Write] = []
        tenders: list[TenderPod] = []
        pods = objects(POD)
        by_owner: dict[str, list[Obj]] = {}
        for p in pods:
            uid = owner_uid(p)
            if uid is not None:
                by_owner.setdefault(uid, []).append(p)
        owners: set[str] = set()
        custodied: dict[Key, Custodied] = {}
        for resource in WORKLOADS:
            for w in objects(resource):
                m = _meta(w)
                owners.add(str(m.get("uid")))
                ns, name = str(m.get("namespace")), str(m.get("name"))
                if not self.mine(resource, ns, name, members):
                    continue
                mine = by_owner.get(str(m.get("uid")), [])
                custodied[(resource, ns, name)] = Custodied(resource, w, tuple(mine))
                self._workload(resource, w, mine, members, now, writes)
                # like the ReplicaSet controller's slow start: a bounded number of a
                # workload's replicas are tendered at once, so a burst of bids does not
                # swamp the bidders and spreading sees the ones placed before
                budget = self.max_tenders - sum(1 for p in mine if tendering(_key(p)))
                for p in mine:
                    if budget <= 0:
                        break
                    budget -= self._maybe_tender(p, mine, members, now, tendering, tenders)
        for p in pods:
            m = _meta(p)
            ns, name = str(m.get("namespace")), str(m.get("name"))
            uid = owner_uid(p)
            if uid is not None and uid not in owners:  # orphan of a deleted workload
                if self.mine(POD, ns, name, members):
                    writes.append(Write((POD, ns, name), None))
                continue
            if uid is None and self.mine(POD, ns, name, members):
                self._maybe_tender(p, [p], members, now, tendering, tenders)
        self.custodied = custodied
        return writes, tenders

    def _maybe_tender(
        self,
        pod: Obj,
        siblings: list[Obj],
        members: Members,
        now: float,
        tendering: Callable[[Key], bool],
        out: list[TenderPod],
    ) -> bool:
        """Tender ``pod`` if it is unbound and not being placed; True if it was."""
        m = _meta(pod)
        if _spec(pod).get("nodeName") or m.get("deletionTimestamp"):
            return False
        key = (POD, str(m.get("namespace")), str(m.get("name")))
        if tendering(key):
            return False
        wait = self.unschedulable.get(key)
        if wait is not None and wait[0] > now:
            return False
        placed = []
        for s in siblings:
            node = _spec(s).get("nodeName")
            if node and s is not pod and not self.lost(s, members, now):
                zone, region = members.topology.get(str(node), ("", ""))
                placed.append((str(node), zone, region))
        out.append(TenderPod(key, pod, tuple(placed)))
        return True

    def unplaced(self, key: Key, now: float) -> float:
        """Record an Unschedulable result for ``key``; returns when it is retried."""
        _, tries = self.unschedulable.get(key, (0.0, 0))
        delay = min(self._max_retry_s, self._retry_s * 2.0**tries)
        self.unschedulable[key] = (now + delay, tries + 1)
        return now + delay

    def placed(self, key: Key) -> None:
        self.unschedulable.pop(key, None)

    # ----------------------------------------------------------------- per kind

    def _workload(
        self, resource: str, w: Obj, pods: list[Obj], members: Members, now: float, out: list[Write]
    ) -> None:
        if _meta(w).get("deletionTimestamp"):
            return
        if resource == "batch/jobs":
            self._job(w, pods, members, now, out)
            return
        spec = _spec(w)
        desired = desired_replicas(resource, w)
        template = _dict(spec.get("template"))
        indexed = resource != "apps/deployments"
        thash = template_hash(template)
        live = [p for p in pods if not _meta(p).get("deletionTimestamp")]
        lost = [p for p in live if self.lost(p, members, now)]
        counted = [p for p in live if p not in lost]
        restarting = [p for p in counted if self.restarting(p, members, now)]
        current = [p for p in counted if _labels(p).get(TEMPLATE_HASH) == thash or indexed]
        old = [p for p in counted if p not in current]
        if indexed:
            have = {_index(p): p for p in current}
            for i in range(desired):
                if i not in have:
                    name = f"{_meta(w)['name']}-{i}"
                    if any(_meta(p).get("name") == name for p in lost):
                        # still bound to a node we cannot see: the name is taken
                        name = f"{_meta(w)['name']}-{i}-{self._suffix()}"
                    out.append(self._new_pod(resource, w, template, name, i, thash, now))
                    self.counters["pods_created"] = self.counters.get("pods_created", 0) + 1
            surplus = [p for p in current if _index(p) >= desired]
            extra_dupes = self._duplicates(current, desired)
            for p in surplus + extra_dupes:
                out.append(Write(_key(p), None))
        else:
            n_new = len(current)
            for _ in range(max(0, desired - n_new)):
                name = f"{_meta(w)['name']}-{thash}-{self._suffix()}"
                out.append(self._new_pod(resource, w, template, name, None, thash, now))
                self.counters["pods_created"] = self.counters.get("pods_created", 0) + 1
            if n_new > desired:
                for p in _retire_order(current)[: n_new - desired]:
                    out.append(Write(_key(p), None))
            ready_new = sum(1 for p in current if pod_ready(p))
            if old and ready_new >= desired:
                for p in old:
                    out.append(Write(_key(p), None))
        running = sum(1 for p in counted if pod_phase(p) == "Running" and p not in restarting)
        if running >= desired and members.quorum_since is not None:
            for p in lost:  # replacements run: lost Pods go after the grace (see above)
                gone = members.gone_since.get(str(_spec(p).get("nodeName")), float("-inf"))
                if now - max(gone, members.quorum_since) >= self.lost_grace_s:
                    out.append(Write(_key(p), None))
        status = self._status(resource, w, current, counted, desired, now)
        if status != _status(w):
            nw = dict(w)
            nw["status"] = status
            out.append(Write(_key(w, resource), nw, derived=True))

    def _duplicates(self, current: list[Obj], desired: int) -> list[Obj]:
        """Two Pods for one index (a partition healed): keep the running, older one."""
        seen: dict[int, list[Obj]] = {}
        for p in current:
            i = _index(p)
            if i < desired:
                seen.setdefault(i, []).append(p)
        out: list[Obj] = []
        for group in seen.values():
            if len(group) > 1:
                out.extend(_retire_order(group)[: len(group) - 1])
        return out

    def _new_pod(
        self,
        resource: str,
        w: Obj,
        template: dict[str, Any],
        name: str,
        index: int | None,
        thash: str,
        now: float,
    ) -> Write:
        m = _meta(w)
        tmeta = _dict(template.get("metadata"))
        labels = dict(tmeta.get("labels") or {})
        annotations = dict(tmeta.get("annotations") or {})
        if resource == "apps/deployments":
            labels[TEMPLATE_HASH] = thash
        if index is not None:
            labels[REPLICA_LABEL] = str(index)
            if resource == "apps/statefulsets":
                labels["statefulset.kubernetes.io/pod-name"] = name
                labels["apps.kubernetes.io/pod-index"] = str(index)
        if resource == "hyperion.io/hyperionworkloads":
            labels[WORKLOAD_LABEL] = str(m.get("name"))
            policy = _spec(w).get("policy")
            if policy:
                annotations[POLICY_ANNOTATION] = json.dumps(policy, sort_keys=True)
        spec = copy.deepcopy(template.get("spec") or {})
        spec.setdefault("restartPolicy", "OnFailure" if resource == "batch/jobs" else "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        for c in spec.get("containers") or []:
            if isinstance(c, dict):
                c.setdefault("imagePullPolicy", "IfNotPresent")
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                c.setdefault("terminationMessagePolicy", "File")
                c.setdefault("resources", {})
        api_version, kind = API_VERSION[resource]
        ns = str(m.get("namespace"))
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": self._uid(),
                "creationTimestamp": self._rfc3339(now),
                "generation": 1,
                "labels": labels,
                **({"annotations": annotations} if annotations else {}),
                "ownerReferences": [
                    {
                        "apiVersion": api_version,
                        "kind": kind,
                        "name": m.get("name"),
                        "uid": m.get("uid"),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Tendering",
                        "message": "waiting for bids",
                        "lastTransitionTime": self._rfc3339(now),
                    }
                ],
                "qosClass": "BestEffort",
            },
        }
        return Write((POD, ns, name), pod)

    def _status(
        self,
        resource: str,
        w: Obj,
        current: list[Obj],
        counted: list[Obj],
        desired: int,
        now: float,
    ) -> dict[str, Any]:
        old = _status(w)
        at = self._rfc3339(now)

        def cond(typ: str, ok: bool, reason: str, message: str, updated: bool = False) -> Obj:
            status = "True" if ok else "False"
            return condition(old.get("conditions"), typ, status, reason, message, at, updated)

        gen = int(_meta(w).get("generation") or 1)
        ready = sum(1 for p in counted if pod_ready(p))
        ready_current = sum(1 for p in current if pod_ready(p))
        st: dict[str, Any] = {
            "observedGeneration": gen,
            "replicas": len(counted),
            "readyReplicas": ready,
        }
        sel = ",".join(f"{k}={v}" for k, v in sorted(_selector_labels(w).items()))
        if resource == "apps/deployments":
            st["updatedReplicas"] = len(current)
            st["availableReplicas"] = ready
            st["unavailableReplicas"] = max(0, desired - ready)
            available = ready >= desired
            progressing_done = len(current) >= desired and ready_current >= desired
            st["conditions"] = [
                cond("Available", available, "MinimumReplicasAvailable" if available
                           else "MinimumReplicasUnavailable",
                           "Deployment has minimum availability." if available
                           else "Deployment does not have minimum availability.", True),
                cond("Progressing", True,
                           "NewReplicaSetAvailable" if progressing_done else "ReplicaSetUpdated",
                           f'ReplicaSet "{_meta(w).get("name")}" has successfully progressed.'
                           if progressing_done else "rolling out", True),
            ]  # fmt: skip
        elif resource == "apps/statefulsets":
            st["currentReplicas"] = len(current)
            st["updatedReplicas"] = len(current)
            st["availableReplicas"] = ready
            st["currentRevision"] = st["updateRevision"] = (
                f"{_meta(w).get('name')}-{template_hash(_spec(w).get('template') or {})}"
            )
        else:  # HyperionWorkload
            st["selector"] = sel
            placements = []
            for p in sorted(counted, key=_index):
                node = _spec(p).get("nodeName")
                if not node:
                    continue
                placements.append({"replica": _index(p), "node": node, **_placement_of(p)})
            st["placements"] = placements
            placed = len(placements)
            st["phase"] = (
                "Running" if ready >= desired and desired > 0
                else "Degraded" if ready > 0
                else "Placing" if placed < desired
                else "Pending"
            )  # fmt: skip
            unsched = [p for p in counted if _unschedulable(p)]
            st["conditions"] = [
                cond("Ready", ready >= desired,
                           "ReplicasReady" if ready >= desired else "ReplicasNotReady",
                           f"{ready}/{desired} replicas ready"),
                cond("Placed", placed >= desired,
                           "AllPlaced" if placed >= desired
                           else "Unschedulable" if unsched else "Placing",
                           _unschedulable(unsched[0]) if unsched
                           else f"{placed}/{desired} replicas placed"),
            ]  # fmt: skip
            # a strong workload's Raft group reports itself (hyperion.control.strong):
            # carried over, not the custodian's to write
            if "consistency" in old:
                st["consistency"] = old["consistency"]
            st["conditions"] += [
                c
                for c in old.get("conditions") or []
                if isinstance(c, dict) and c.get("type") == "Consistent"
            ]
        return st

    def _job(self, w: Obj, pods: list[Obj], members: Members, now: float, out: list[Write]) -> None:
        spec = _spec(w)
        completions = int(spec.get("completions") or 1)
        parallelism = desired_replicas("batch/jobs", w)
        backoff = _count(spec, "backoffLimit", DEFAULT_BACKOFF_LIMIT)
        template = _dict(spec.get("template"))
        old = _status(w)
        done = any(
            isinstance(c, dict)
            and c.get("type") in ("Complete", "Failed")
            and c.get("status") == "True"
            for c in old.get("conditions") or []
        )
        live = [p for p in pods if not _meta(p).get("deletionTimestamp")]
        succeeded = sum(1 for p in live if pod_phase(p) == "Succeeded")
        failed = sum(1 for p in live if pod_phase(p) == "Failed")
        failed += sum(
            int(cs.get("restartCount") or 0)
            for p in live
            for cs in _status(p).get("containerStatuses") or []
            if isinstance(cs, dict)
        )
        active = [
            p
            for p in live
            if pod_phase(p) in ("Pending", "Running") and not self.lost(p, members, now)
        ]
        st: dict[str, Any] = dict(old)
        st.update({"succeeded": succeeded, "failed": failed, "active": len(active)})
        at = self._rfc3339(now)
        st.setdefault("startTime", at)
        conds = [c for c in old.get("conditions") or [] if isinstance(c, dict)]
        if not done:
            if succeeded >= completions:
                conds = [condition(None, "Complete", "True", "Completed", "Job completed", at)]
                st["completionTime"] = at
                st["active"] = 0
            elif failed > backoff:
                conds = [condition(None, "Failed", "True", "BackoffLimitExceeded",
                                   "Job has reached the specified backoff limit", at)]  # fmt: skip
                st["active"] = 0
                for p in active:
                    out.append(Write(_key(p), None))
            else:
                want = min(parallelism, completions - succeeded) - len(active)
                for _ in range(max(0, want)):
                    name = f"{_meta(w)['name']}-{self._suffix()}"
                    tmpl = dict(template)
                    tmpl_spec = dict(tmpl.get("spec") or {})
                    tmpl_spec.setdefault("restartPolicy", "Never")
                    tmpl["spec"] = tmpl_spec
                    out.append(self._new_pod("batch/jobs", w, tmpl, name, None, "", now))
        if conds:
            st["conditions"] = conds
        if st != old:
            nw = dict(w)
            nw["status"] = st
            out.append(Write(_key(w, "batch/jobs"), nw, derived=True))


def condition(
    prev: object,
    typ: str,
    status: str,
    reason: str,
    message: str,
    at: str,
    updated: bool = False,
) -> dict[str, Any]:
    """A status condition of type ``typ``, as of ``at`` (RFC 3339). Its
    ``lastTransitionTime`` is kept from ``prev`` (a list of conditions) when that held the
    same status; empty ``reason``/``message`` are left out; ``updated`` adds
    ``lastUpdateTime`` (Deployments have it)."""
    conds = prev if isinstance(prev, list) else []
    before = next((c for c in conds if isinstance(c, dict) and c.get("type") == typ), None)
    since = before.get("lastTransitionTime") if before and before.get("status") == status else None
    out: dict[str, Any] = {"type": typ, "status": status}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    out["lastTransitionTime"] = since or at
    if updated:
        out["lastUpdateTime"] = out["lastTransitionTime"]
    return out


def _labels(o: Obj) -> dict[str, Any]:
    lab = _meta(o).get("labels")
    return lab if isinstance(lab, dict) else {}


def _selector_labels(w: Obj) -> dict[str, Any]:
    tmpl = _spec(w).get("template")
    if isinstance(tmpl, dict) and isinstance(tmpl.get("metadata"), dict):
        return dict(tmpl["metadata"].get("labels") or {}) or {WORKLOAD_LABEL: _meta(w).get("name")}
    return {WORKLOAD_LABEL: _meta(w).get("name")}


def _index(p: Obj) -> int:
    try:
        return int(_labels(p).get(REPLICA_LABEL, 1 << 30))
    except (TypeError, ValueError):
        return 1 << 30


def _key(o: Obj, resource: str = POD) -> Key:
    m = _meta(o)
    return (resource, str(m.get("namespace")), str(m.get("name")))


def _unschedulable(p: Obj) -> str:
    for c in _status(p).get("conditions") or []:
        if (
            isinstance(c, dict)
            and c.get("type") == "PodScheduled"
            and c.get("reason") == "Unschedulable"
        ):
            return str(c.get("message") or "Unschedulable")
    return ""


def _placement_of(p: Obj) -> dict[str, Any]:
    raw = _meta(p).get("annotations", {}) or {}
    try:
        d = json.loads(raw.get("hyperion.io/placement", "{}"))
    except ValueError:
        return {}
    return {k: d[k] for k in ("cloud", "region", "pricePerHour", "spot") if k in d}


def _retire_order(pods: list[Obj]) -> list[Obj]:
    """Kubernetes' ReplicaSet order: unbound, then not running, then not ready, then
    the newest first — so the pods that have run longest are kept."""
    return sorted(
        pods,
        key=lambda p: (
            bool(_spec(p).get("nodeName")),
            pod_phase(p) == "Running",
            pod_ready(p),
            -_created(p),
            str(_meta(p).get("name")),
        ),
    )


def _created(p: Obj) -> float:
    ts = str(_meta(p).get("creationTimestamp") or "")
    return float(ts.replace("-", "").replace(":", "").replace("T", "").replace("Z", "") or 0)
