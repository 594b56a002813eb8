"""What the scheduler sees of a real node and of a real Pod.

Owns two translations: a ``NodeRecord`` (what a node advertises) into the policy's
``Candidate`` (price, spot, region, zone, geography, RTT estimates to each user
geography, capacity, GPUs, versions, labels), and a Kubernetes Pod object (plus a
HyperionWorkload's policy, carried on the Pod as the ``hyperion.io/policy`` annotation)
into a placement ``Request``. RTTs to users come from the measured inter-region matrix:
a user geography is reached through its anchor region (``USER_ANCHORS``) plus a last-mile
term, as in the fleet model; a node whose region the matrix does not know (an edge box,
``onprem``) is near its own geography's users only.

Pure: no I/O beyond the packaged RTT table read once (cached).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from hyperion.control.custodian import POLICY_ANNOTATION, controller_ref
from hyperion.mesh.records import (
    CLOUD,
    EDGE,
    GEOGRAPHY,
    REGION,
    ZONE,
    NodeRecord,
)
from hyperion.policy.model import (
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    Candidate,
    MatchExpression,
    Request,
    VersionRange,
)
from hyperion.runtime.base import SpecError, cpu_millis, memory_bytes

LAST_MILE_MS = 15.0  # as the fleet model (hyperion/sim/fleet/scenario.py)
EDGE_LOCAL_MS = 4.0
FAR_MS = 250.0
# Where users of a geography enter the clouds: the measured region nearest to them.
USER_ANCHORS: Mapping[str, str] = {
    "US": "aws:us-east-1",
    "CA": "aws:ca-central-1",
    "SA": "aws:sa-east-1",
    "EU": "aws:eu-central-1",
    "ME": "aws:me-south-1",
    "AF": "aws:af-south-1",
    "APAC": "aws:ap-northeast-1",
}


@functools.cache
def _matrix() -> Any:
    from hyperion.sim import rtt

    return rtt.load()


def user_rtts(cloud: str, region: str, geography: str | None) -> dict[str, float]:
    """Estimated RTT (ms) from users in each geography to a node in ``cloud:region``."""
    m = _matrix()
    here = f"{cloud}:{region}"
    out: dict[str, float] = {}
    for geo, anchor in USER_ANCHORS.items():
        if here in m.regions and anchor in m.regions:
            out[geo] = LAST_MILE_MS + m.rtt_ms(here, anchor)
        elif geography == geo:
            out[geo] = EDGE_LOCAL_MS if cloud in ("edge", "onprem") else LAST_MILE_MS
        else:
            out[geo] = FAR_MS
    return out


def candidate_of(rec: NodeRecord) -> Candidate:
    """The node as a bidder (free resources as advertised in its record)."""
    labels = dict(rec.labels)
    cloud = labels.get(CLOUD, "onprem")
    region = labels.get(REGION, "")
    geo = labels.get(GEOGRAPHY)
    gpu_model = rec.gpus[0].model if rec.gpus else None
    if gpu_model and GPU_PRODUCT_LABEL not in labels:
        labels[GPU_PRODUCT_LABEL] = gpu_model
    return Candidate(
        node_id=rec.node_id,
        cloud=cloud,
        region=region,
        zone=labels.get(ZONE, ""),
        geography=geo,
        price_per_hour=rec.price_per_hour,
        spot=rec.spot,
        interruption_band=2 if rec.spot else None,  # the Spot Advisor's middle band
        rtt_ms=user_rtts(cloud, region, geo),
        cpu_millis=rec.cpu_millis,
        cpu_millis_free=rec.cpu_millis_free,
        memory_bytes=rec.memory_bytes,
        memory_bytes_free=rec.memory_bytes_free,
        gpus=sum(g.count for g in rec.gpus),
        gpus_free=sum(g.free for g in rec.gpus),
        gpu_model=gpu_model,
        software_version=rec.software_version,
        protocol_versions=rec.protocol_versions,
        labels=labels,
        edge=labels.get(EDGE) == "true" or cloud == "edge",
    )


def _dict(x: object) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def workload_of(meta: Mapping[str, Any]) -> str:
    """The workload a Pod is a replica of, ``namespace/kind/name`` of its controller
    (replicas of one workload share it: the scheduler spreads them); a bare Pod is its
    own workload, ``namespace/name``."""
    ns = str(meta.get("namespace"))
    ref = controller_ref(meta)
    if ref is not None:
        return f"{ns}/{str(ref.get('kind')).lower()}/{ref.get('name')}"
    return f"{ns}/{meta.get('name')}"


def request_of(pod: Mapping[str, Any]) -> Request:
    """The placement request of a Pod; raises ValueError (SpecError) naming the field."""
    meta = _dict(pod.get("metadata"))
    spec = _dict(pod.get("spec"))
    cpu = mem = gpus = 0
    for i, c in enumerate(spec.get("containers") or []):
        res = _dict(_dict(c).get("resources"))
        req = {**_dict(res.get("limits")), **_dict(res.get("requests"))}
        path = f"spec.containers[{i}].resources.requests"
        if "cpu" in req:
            cpu += cpu_millis(req["cpu"], f"{path}.cpu")
        if "memory" in req:
            mem += memory_bytes(req["memory"], f"{path}.memory")
        if GPU_RESOURCE in req:
            g = str(req[GPU_RESOURCE])
            if not g.isdigit():
                raise SpecError(f"{path}[{GPU_RESOURCE}]: must be a whole number, not {g!r}")
            gpus += int(g)
    selector = {str(k): str(v) for k, v in _dict(spec.get("nodeSelector")).items()}
    gpu_model = selector.get(GPU_PRODUCT_LABEL) if gpus else None
    affinity = _affinity(spec)
    policy: dict[str, Any] = {}
    raw = _dict(meta.get("annotations")).get(POLICY_ANNOTATION)
    if raw:
        try:
            policy = _dict(json.loads(raw))
        except ValueError:
            raise SpecError(f"metadata.annotations[{POLICY_ANNOTATION}]: not JSON") from None
    cons = _dict(policy.get("constraints"))
    users = tuple(
        (str(u.get("geography")), float(u.get("weight", 0)))
        for u in policy.get("users") or []
        if isinstance(u, dict)
    )
    locality = _dict(policy.get("data")).get("locality")
    if locality and ":" not in str(locality):
        locality = f"{locality}:"
    versions = cons.get("versions")
    try:
        return Request(
            workload_id=workload_of(meta),
            kind="batch" if spec.get("restartPolicy") in ("Never", "OnFailure") else "service",
            cpu_millis=cpu,
            memory_bytes=mem,
            gpus=gpus,
            gpu_model=gpu_model,
            geographies=tuple(cons.get("geographies") or ()),
            clouds=tuple(cons.get("clouds") or ()),
            node_selector=selector,
            affinity=affinity,
            version_range=VersionRange(str(versions)) if versions else None,
            prefer_spot=bool(cons.get("preferSpot", False)),
            data_locality=str(locality) if locality else None,
            goal=str(policy.get("goal") or "default"),
            users=users,
        )
    except ValueError as e:
        raise SpecError(str(e)) from None


def _affinity(spec: Mapping[str, Any]) -> tuple[tuple[MatchExpression, ...], ...]:
    na = _dict(_dict(spec.get("affinity")).get("nodeAffinity"))
    req = _dict(na.get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms = []
    for t in req.get("nodeSelectorTerms") or []:
        exprs = tuple(
            MatchExpression(str(e.get("key")), str(e.get("operator")), tuple(e.get("values") or ()))
            for e in _dict(t).get("matchExpressions") or []
            if isinstance(e, dict)
        )
        if exprs:
            terms.append(exprs)
    return tuple(terms)
