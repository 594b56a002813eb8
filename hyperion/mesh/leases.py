"""Replica leases and workload records: DHT record kinds whose key follows from their value.

Owns the two record kinds the control plane keeps in the DHT besides node records
(DESIGN §5, §6.4–5), their protobuf encoding (``wire_pb2.RecordValue``, a ``kind``
oneof) and the rule that says who may write each. Pure: no I/O, no clock; the DHT core
calls ``write_rule`` from its write policy (``hyperion.mesh.crypto.mesh_record_policy``).

Theory of operation:

* A **lease** says "node H runs pod P". Its key is a hash of a domain-separated string
  naming the pod (namespace, name, uid) *and* the holder H, and only H may write it.
  So a node can only claim leases under its own name: the custodian looks up the lease
  for (pod, the node the pod is bound to), and a lease written under another holder
  is a different key that nobody reads. The holder renews it (new version, expiry a
  TTL ahead) while it runs the pod; a lease that stops being renewed expires.
* A **workload record** is the custodian's summary of a workload: desired and ready
  replicas and where each replica is bound. Its key is the workload's custodian key
  (``hyperion.control.custodian.key_hash`` of "resource/namespace/name", the resource
  naming the domain), so the nodes that store it are those closest to the custodian
  and know its neighbourhood best. Views of who is alive differ for a moment after a
  join or a death, so a storer accepts it from any of the ``CUSTODIAN_SLACK`` nodes
  closest to the key that it knows (itself included).
* Node records (key = the author's node id) keep their own rule (``crypto.py``).

``write_rule`` returns ``None`` when the write is allowed, else the reason the DHT
counts it under: ``malformed`` (the value does not decode or is of no known kind),
``wrong_key`` (the key is not the one the value derives) or ``not_authorized``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from hyperion.control.custodian import WORKLOADS, key_hash
from hyperion.net import wire_pb2

LEASE_DOMAIN = "hyperion-lease-v1"
CUSTODIAN_SLACK = 3  # a workload record is accepted from any of the 3 closest known ids
NODE_ID_BYTES = 20
# Limits: Kubernetes names are at most 253 characters, uids 36; a record value is at
# most 64 KiB (dht.MAX_RECORD_BYTES) and a placement takes about 120 bytes.
MAX_NAME_CHARS = 253
MAX_UID_CHARS = 128
MAX_PLACEMENTS = 400
MAX_VALUE_BYTES = 64 << 10

NearestIds = Callable[[str, int], Sequence[str]]  # the n ids closest to a key, known here


class LeaseError(ValueError):
    """A record value that does not decode, or is not valid."""


@dataclass(frozen=True, slots=True)
class Lease:
    """Node ``holder`` runs pod ``namespace/pod`` (uid ``pod_uid``), as of ``renewed_at``."""

    namespace: str
    pod: str
    pod_uid: str
    holder: str  # node id, 40 hex chars
    workload_key: str  # the owning workload's record key, "" for a bare pod
    renewed_at: float  # unix seconds, holder's clock

    def __post_init__(self) -> None:
        _name("namespace", self.namespace)
        _name("pod", self.pod)
        _uid(self.pod_uid, required=True)
        _node_id("holder", self.holder)
        if self.workload_key:
            _node_id("workload key", self.workload_key)
        if not math.isfinite(self.renewed_at) or self.renewed_at < 0:
            raise LeaseError(f"bad renewed_at {self.renewed_at!r}")

    @property
    def key(self) -> str:
        return lease_key(self.namespace, self.pod, self.pod_uid, self.holder)


@dataclass(frozen=True, slots=True)
class Placement:
    """One replica of a workload: the pod and the node it is bound to."""

    pod: str
    pod_uid: str
    node_id: str  # 40 hex chars
    node_name: str
    ready: bool = False

    def __post_init__(self) -> None:
        _name("pod", self.pod)
        _uid(self.pod_uid, required=True)
        _node_id("node id", self.node_id)
        if len(self.node_name) > MAX_NAME_CHARS:
            raise LeaseError("node name too long")


@dataclass(frozen=True, slots=True)
class Workload:
    """A workload as its custodian sees it."""

    resource: str  # "apps/deployments", "apps/statefulsets", "batch/jobs", ...
    namespace: str
    name: str
    uid: str
    generation: int
    desired: int
    ready: int
    placements: tuple[Placement, ...] = ()

    def __post_init__(self) -> None:
        if self.resource not in WORKLOADS:
            raise LeaseError(f"unknown workload resource {self.resource!r}")
        _name("namespace", self.namespace)
        _name("name", self.name)
        _uid(self.uid, required=False)
        for field, v in (("generation", self.generation), ("desired", self.desired)):
            if not 0 <= v < 2**31:
                raise LeaseError(f"bad {field} {v}")
        if not 0 <= self.ready < 2**31:
            raise LeaseError(f"bad ready {self.ready}")
        if len(self.placements) > MAX_PLACEMENTS:
            raise LeaseError(f"more than {MAX_PLACEMENTS} placements")
        if len({p.pod for p in self.placements}) != len(self.placements):
            raise LeaseError("a pod is placed twice")

    @property
    def key(self) -> str:
        return workload_key(self.resource, self.namespace, self.name)

    def lease_key(self, p: Placement) -> str:
        """Where the lease of placement ``p``'s node on its pod lives."""
        return lease_key(self.namespace, p.pod, p.pod_uid, p.node_id)


Value = Lease | Workload

# ---------------------------------------------------------------------------- keys


def lease_key(namespace: str, pod: str, pod_uid: str, holder: str) -> str:
    """The DHT key of ``holder``'s lease on a pod (40 hex chars)."""
    raw = "\x00".join((LEASE_DOMAIN, namespace, pod, pod_uid, holder)).encode()
    return hashlib.sha1(raw).hexdigest()


def workload_key(resource: str, namespace: str, name: str) -> str:
    """The DHT key of a workload's record: its custodian key (40 hex chars)."""
    return f"{key_hash(resource, namespace, name):040x}"


# ------------------------------------------------------------------------- codec


def encode(value: Value) -> bytes:
    """The deterministic protobuf encoding (``wire_pb2.RecordValue``)."""
    if isinstance(value, Lease):
        pb = wire_pb2.RecordValue(lease=lease_pb(value))
    else:
        pb = wire_pb2.RecordValue(workload=workload_pb(value))
    return pb.SerializeToString(deterministic=True)


def lease_pb(v: Lease) -> wire_pb2.LeaseValue:
    return wire_pb2.LeaseValue(
        namespace=v.namespace,
        pod=v.pod,
        pod_uid=v.pod_uid,
        holder=bytes.fromhex(v.holder),
        workload_key=bytes.fromhex(v.workload_key),
        renewed_at=v.renewed_at,
    )


def workload_pb(w: Workload) -> wire_pb2.WorkloadValue:
    return wire_pb2.WorkloadValue(
        resource=w.resource,
        namespace=w.namespace,
        name=w.name,
        uid=w.uid,
        generation=w.generation,
        desired=w.desired,
        ready=w.ready,
        placements=[placement_pb(p) for p in w.placements],
    )


def placement_pb(p: Placement) -> wire_pb2.WorkloadPlacement:
    return wire_pb2.WorkloadPlacement(
        pod=p.pod,
        pod_uid=p.pod_uid,
        node_id=bytes.fromhex(p.node_id),
        node_name=p.node_name,
        ready=p.ready,
    )


def decode(data: bytes) -> Value:
    """Decode and validate a record value from a peer; raise LeaseError, nothing else."""
    if len(data) > MAX_VALUE_BYTES:
        raise LeaseError(f"value of {len(data)} bytes is over {MAX_VALUE_BYTES}")
    pb = wire_pb2.RecordValue()
    try:
        pb.ParseFromString(data)
    except (DecodeError, RuntimeError) as e:
        raise LeaseError(f"not a record value: {e}") from None
    kind = pb.WhichOneof("kind")
    if kind == "lease":
        return lease_from_pb(pb.lease)
    if kind == "workload":
        return workload_from_pb(pb.workload)
    raise LeaseError("record value of no known kind")


def lease_from_pb(pb: wire_pb2.LeaseValue) -> Lease:
    return Lease(
        namespace=pb.namespace,
        pod=pb.pod,
        pod_uid=pb.pod_uid,
        holder=_hex("holder", pb.holder),
        workload_key=_hex("workload key", pb.workload_key) if pb.workload_key else "",
        renewed_at=pb.renewed_at,
    )


def workload_from_pb(pb: wire_pb2.WorkloadValue) -> Workload:
    if len(pb.placements) > MAX_PLACEMENTS:
        raise LeaseError(f"more than {MAX_PLACEMENTS} placements")
    return Workload(
        resource=pb.resource,
        namespace=pb.namespace,
        name=pb.name,
        uid=pb.uid,
        generation=pb.generation,
        desired=pb.desired,
        ready=pb.ready,
        placements=tuple(placement_from_pb(p) for p in pb.placements),
    )


def placement_from_pb(pb: wire_pb2.WorkloadPlacement) -> Placement:
    return Placement(
        pod=pb.pod,
        pod_uid=pb.pod_uid,
        node_id=_hex("node id", pb.node_id),
        node_name=pb.node_name,
        ready=pb.ready,
    )


# --------------------------------------------------------------------- write rule


def write_rule(key: str, author: str, value: bytes, nearest: NearestIds) -> str | None:
    """May ``author`` (a node id whose key signed the record) write ``value`` at ``key``?

    ``None`` if so, else the reason (see the module docstring). ``nearest(key, n)``
    gives the ids of the ``n`` nodes closest to ``key`` that the storer knows alive,
    the storer included.
    """
    try:
        v = decode(value)
    except LeaseError:
        return "malformed"
    if v.key != key:
        return "wrong_key"
    if isinstance(v, Lease):
        return None if v.holder == author else "not_authorized"
    return None if author in nearest(key, CUSTODIAN_SLACK) else "not_authorized"


# ------------------------------------------------------------------------ checks


def _name(field: str, v: str) -> None:
    if not v or len(v) > MAX_NAME_CHARS or "\x00" in v:
        raise LeaseError(f"bad {field} {v[:40]!r}")


def _uid(v: str, *, required: bool) -> None:
    if (required and not v) or len(v) > MAX_UID_CHARS or "\x00" in v:
        raise LeaseError(f"bad uid {v[:40]!r}")


_HEX = frozenset("0123456789abcdef")


def _node_id(field: str, v: str) -> None:
    if len(v) != 2 * NODE_ID_BYTES or not _HEX.issuperset(v):
        raise LeaseError(f"bad {field} {v[:48]!r}")


def _hex(field: str, b: bytes) -> str:
    if len(b) != NODE_ID_BYTES:
        raise LeaseError(f"{field} must be {NODE_ID_BYTES} bytes, not {len(b)}")
    return b.hex()
