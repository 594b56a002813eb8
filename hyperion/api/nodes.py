"""Mesh machines as Kubernetes ``Node`` objects.

Nodes are not stored in the catalog: every node builds them from what its machine plane
knows, so they are never stale. A member's Node carries the labels, capacity and
allocatable from its signed node record, and a ``Ready`` condition from membership
(alive → True, suspect → Unknown, dead/left → False, as the node-lifecycle controller
would set it), plus addresses and ``nodeInfo`` with the software version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from hyperion.mesh.records import NodeRecord

_READY = {
    "alive": ("True", "KubeletReady", "hyperion node is alive"),
    "suspect": ("Unknown", "NodeStatusUnknown", "membership suspects this node"),
    "dead": ("False", "NodeStatusUnknown", "membership declared this node dead"),
    "left": ("False", "NodeLeft", "the node left the mesh"),
}


def rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_object(
    rec: NodeRecord, state: str, since: float, now: float, self_name: str = ""
) -> dict[str, Any]:
    """The ``Node`` for one mesh member (``state``: alive | suspect | dead | left)."""
    status, reason, message = _READY.get(state, _READY["dead"])
    labels = dict(rec.labels)
    labels.setdefault("kubernetes.io/hostname", rec.name)
    labels.setdefault("kubernetes.io/os", "linux")
    labels.setdefault("hyperion.io/node-id", rec.node_id[:63])
    gpus = sum(g.count for g in rec.gpus)
    capacity = {
        "cpu": f"{rec.cpu_millis}m" if rec.cpu_millis % 1000 else str(rec.cpu_millis // 1000),
        "memory": f"{rec.memory_bytes // 1024}Ki",
        "pods": "110",
    }
    allocatable = {
        "cpu": f"{rec.cpu_millis_free}m"
        if rec.cpu_millis_free % 1000
        else str(rec.cpu_millis_free // 1000),
        "memory": f"{rec.memory_bytes_free // 1024}Ki",
        "pods": "110",
    }
    if gpus:
        capacity["nvidia.com/gpu"] = str(gpus)
        allocatable["nvidia.com/gpu"] = str(sum(g.free for g in rec.gpus))
    host = rec.mesh_addr.rsplit(":", 1)[0] if rec.mesh_addr else ""
    created = since if since else rec.updated_at
    transition = rfc3339(since if since else now)
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": rec.name,
            "uid": _uid(rec.node_id),
            "creationTimestamp": rfc3339(created),
            "labels": labels,
            "annotations": {
                "hyperion.io/node-id": rec.node_id,
                "hyperion.io/spiffe-id": rec.spiffe_id,
                "hyperion.io/mesh-addr": rec.mesh_addr,
                "hyperion.io/api-addr": rec.api_addr,
                "hyperion.io/protocols": ",".join(str(p) for p in rec.protocol_versions),
            },
        },
        "spec": {"providerID": f"hyperion://{rec.node_id}"},
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                {
                    "type": "Ready",
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": rfc3339(now),
                    "lastTransitionTime": transition,
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": host},
                {"type": "Hostname", "address": rec.name},
            ],
            "nodeInfo": {
                "machineID": rec.node_id[:32],
                "systemUUID": _uid(rec.node_id),
                "bootID": "",
                "kernelVersion": "",
                "osImage": "Hyperion",
                "containerRuntimeVersion": "process://",
                "kubeletVersion": f"v{rec.software_version}",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def _uid(node_id: str) -> str:
    h = hashlib.sha256(node_id.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
