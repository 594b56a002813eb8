"""What the Raft groups of strong workloads need from the object catalog. Pure.

The workplane's group lifecycle (``hyperion.workplane.strong``) decides from
``WorkloadView``s; this module builds them from the catalog's HyperionWorkloads and
Pods (a layer reading down into the data it owns, never the workplane reading up),
and merges a group's report into a workload's ``status``: the ``consistency`` block
and the ``Consistent`` condition. The custodian's own status writes carry both over
(``custodian._status``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hyperion.control.custodian import (
    POD,
    TERMINAL_PHASES,
    condition,
    custodian_of,
    owner_uid,
    pod_phase,
)
from hyperion.workplane.strong import WorkloadView

HWL = "hyperion.io/hyperionworkloads"


def is_strong(w: Mapping[str, Any]) -> bool:
    policy = (w.get("spec") or {}).get("policy") or {}
    return isinstance(policy, dict) and policy.get("consistency") == "strong"


def views(
    objects: Callable[[str], list[dict[str, Any]]],
    ids: Mapping[str, str],
    me: str,
    live: Iterable[str],
) -> dict[str, WorkloadView]:
    """uid -> view of every strong HyperionWorkload. ``ids``: node name -> node id;
    ``live``: the live node ids (custodian candidates, ``me`` among them)."""
    strong = {}
    for w in objects(HWL):
        meta = w.get("metadata") or {}
        if is_strong(w) and meta.get("uid") and not meta.get("deletionTimestamp"):
            strong[str(meta["uid"])] = w
    if not strong:
        return {}
    replicas: dict[str, set[str]] = {uid: set() for uid in strong}
    for p in objects(POD):
        uid = owner_uid(p)
        if uid not in replicas or pod_phase(p) in TERMINAL_PHASES:
            continue
        if (p.get("metadata") or {}).get("deletionTimestamp"):
            continue
        node = ids.get(str((p.get("spec") or {}).get("nodeName") or ""))
        if node:
            replicas[uid].add(node)
    live_ids = set(live) | {me}
    out = {}
    for uid, w in strong.items():
        meta = w.get("metadata") or {}
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        consistency = (w.get("status") or {}).get("consistency") or {}
        out[uid] = WorkloadView(
            uid,
            ns,
            name,
            frozenset(replicas[uid]),
            str(consistency.get("group") or "") if isinstance(consistency, dict) else "",
            custodian_of(HWL, ns, name, live_ids) == me,
        )
    return out


def with_consistency(
    w: Mapping[str, Any],
    block: Mapping[str, Any],
    ok: bool,
    reason: str,
    message: str,
    at: str,
) -> dict[str, Any]:
    """A copy of workload ``w`` whose status has ``block`` and the ``Consistent`` condition."""
    new = copy.deepcopy(dict(w))
    status = new.setdefault("status", {})
    status["consistency"] = dict(block)
    conds = [c for c in status.get("conditions") or [] if c.get("type") != "Consistent"]
    conds.append(
        condition(
            status.get("conditions"), "Consistent", "True" if ok else "False", reason, message, at
        )
    )
    status["conditions"] = conds
    return new
