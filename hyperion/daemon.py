"""One Hyperion node: identity, mutual-TLS server, machine plane, SVID rotation, admin API.

``run_node`` is what ``hyperion node start`` runs in its own OS process. State lives in
``DIR/nodes/NAME/``: the Ed25519 node key (0600), the current SVID, ``node.json``
(written once the port is bound: what ``hyperion up`` and the CLI read), the log and
``catalog/``, this node's copy of the object catalog (``hyperion.control.persist``),
restored at start before the node joins.

The first SVID needs a one-time join token; later ones are issued while the current
SVID is still valid (the node proves it holds it, as a SPIRE agent re-attests).
Renewal happens at half-life and swaps credentials under running connections. A node
whose DIR holds the CA redeems the token and signs locally, and with
``enroll_listen`` serves enrollment to other machines (``hyperion.net.enroll``); a node
whose DIR has no CA enrolls over the network first (``enroll_node``, before ``Node``),
keeps the issuer's address in ``enroll.json`` and renews there.

The machine plane is one ``MeshNode`` core (membership, DHT, pub/sub, node records) run
by the asyncio driver. The node's record — labels, capacity, prices, versions — is built
here from the options and the machine, and published when the node starts. The DHT
also holds replica leases and workload records (``hyperion.mesh.leases``), written
and read by the control driver; ``Admin.Locate`` resolves them for ``hyperion locate``.

Revocations (``hyperion.identity.revocation``): the node enforces a ``RevocationList``
filled from the records the mesh verifies (``MeshNode``; a CA-holding node also loads
the CA's ``revocations.json`` at start and spreads it); the mesh port, the admin API,
``Renew``/``Enroll`` and the Kubernetes API consult it at every message or request.
``Admin.Revoke`` takes a record from ``hyperion ca revoke``.

The SPIFFE Workload API (``hyperion.net.workload_api``) is served on
``DIR/nodes/NAME/workload.sock`` from before the first pod starts until after the
last one stops; process-runtime pods find it in ``SPIFFE_ENDPOINT_SOCKET`` and get the
SVID of their namespace and service account, signed here when this node holds the CA.

The Dapr-compatible sidecar (``hyperion.workplane.sidecar``) opens one loopback HTTP
listener per pod annotated ``dapr.io/enabled: "true"`` before its containers start
and closes it after they stop; process-runtime pods find it in ``DAPR_HTTP_PORT``.
Its state lives in the catalog; service invocation for a pod on another node goes
to that node's API (``/sidecar/...``, node identities only).

Test hook: ``HYPERION_TEST_LEASE_PAUSE`` (read once at start) names a file listing
``namespace/name`` of pods whose leases this node stops renewing (see
``hyperion.control.driver``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import random
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from hyperion import PROTOCOL_VERSION, fsutil, protocols_spoken, software_version
from hyperion.api.nodes import node_object, rfc3339
from hyperion.api.resources import PODS
from hyperion.api.server import ApiContext, ApiServer, load_cert, server_ssl_context
from hyperion.api.store import ObjectStore
from hyperion.control.catalog import CatalogChanged
from hyperion.control.custodian import WORKLOADS, controller_ref
from hyperion.control.driver import ControlDriver
from hyperion.control.persist import CatalogStore
from hyperion.control.scheduler import Placed, Scheduler, Unplaced
from hyperion.control.strong import HWL, is_strong, with_consistency
from hyperion.control.strong import views as strong_views
from hyperion.identity import _fs, revocation
from hyperion.identity.ca import CertificateAuthority, Svid
from hyperion.identity.errors import IdentityError, RevocationError
from hyperion.identity.keys import NodeKey
from hyperion.identity.spiffe import node_spiffe_id, parse_spiffe_id
from hyperion.identity.tokens import redeem_token
from hyperion.mesh import leases
from hyperion.mesh.crypto import mesh_record_policy, verify_message, verify_record
from hyperion.mesh.dht import LookupDone, Record
from hyperion.mesh.membership import PROFILES, MemberEvent
from hyperion.mesh.node import MeshNode, RecordEvent, Revoked
from hyperion.mesh.pubsub import PubSubConfig
from hyperion.mesh.records import Gpu, NodeRecord, RecordError, build_record
from hyperion.net import codec, wire_pb2, wire_pb2_grpc
from hyperion.net.codec import RaftPayload
from hyperion.net.driver import CoreDriver
from hyperion.net.enroll import Issuer, RenewalServicer, enroll, renew, start_enrollment_server
from hyperion.net.transport import (
    TLS_NAME,
    Counters,
    CredentialStore,
    Transport,
    peer_identity,
    peer_revoked,
    start_server,
)
from hyperion.net.workload_api import (
    SOCKET_NAME,
    WorkloadApiError,
    WorkloadEndpoint,
    WorkloadSvids,
    attest_pid,
    check_socket_path,
)
from hyperion.policy import get_policy
from hyperion.runtime.base import PodSpec, Runtime
from hyperion.runtime.podman import PodmanRuntime, podman_available
from hyperion.runtime.pods import PodManager
from hyperion.runtime.process import ProcessRuntime
from hyperion.workplane.raft_driver import Source, StrongPlane, StrongState
from hyperion.workplane.sidecar import SidecarHost
from hyperion.workplane.strong import WorkloadView

log = logging.getLogger("hyperion.node")
LEAVE_FLUSH_S = 0.3  # let the leave broadcast go out before closing links


@dataclass
class NodeOptions:
    dir: Path
    name: str
    listen: str = "127.0.0.1:0"
    join: list[str] = field(default_factory=list)
    token: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    profile: str = "local"
    svid_ttl_s: float = 3600.0
    cpu_millis: int | None = None  # default: this machine's
    memory_bytes: int | None = None
    gpus: tuple[Gpu, ...] = ()
    egress_price_per_gb: float = 0.0
    wire_version: int = PROTOCOL_VERSION  # 1: behave as a release-0.1 node on the wire
    api_listen: str = "127.0.0.1:0"  # the Kubernetes-compatible HTTPS API
    policy: str = "rules"  # placement policy of the tenders this node runs: rules | rl
    enroll: str | None = None  # host:port of an enrollment endpoint: join without the CA
    ca_hash: str | None = None  # sha256:HEX pin of the CA, with ``enroll``
    enroll_listen: str | None = None  # serve enrollment here (needs the CA in ``dir``)


ENROLL_FILE = "enroll.json"  # in the node dir of a node without the CA: where to renew
# When the issuer that enrolled a node fails, renewal tries this many other live members
# (those that hold the CA issue; the rest answer UNIMPLEMENTED at once).
RENEW_FAILOVER_TRIES = 16
RENEW_FAILOVER_TIMEOUT_S = 3.0


def node_dir(mesh_dir: Path, name: str) -> Path:
    return mesh_dir / "nodes" / name


def _listen_ips(listen: str) -> tuple[str, ...]:
    host = listen.rsplit(":", 1)[0].strip("[]")
    ips = ["127.0.0.1"]
    with contextlib.suppress(ValueError):
        if not ipaddress.ip_address(host).is_unspecified and host not in ips:
            ips.append(host)
    return tuple(ips)


def obtain_svid(opts: NodeOptions, key: NodeKey, ca: CertificateAuthority) -> Svid:
    """The node's SVID: reuse a valid one, renew while valid, else redeem the join token."""
    ndir = node_dir(opts.dir, opts.name)
    spiffe_id = node_spiffe_id(ca.trust_domain, key.node_id)
    try:
        revoked = revocation.RevocationList(revocation.read_list(opts.dir, ca.bundle_pem))
    except RevocationError as e:
        raise IdentityError(f"cannot check revocations: {e}") from None
    rec = revoked.revoked(spiffe_id)
    if rec is not None:
        raise IdentityError(
            f"node {opts.name} ({spiffe_id}) is revoked: {rec.reason or 'no reason'}"
        )
    current: Svid | None = None
    with contextlib.suppress(IdentityError):
        current = Svid.read(ndir)
    now = time.time()
    if current is not None and current.spiffe_id == spiffe_id and current.not_after > now:
        if now < current.renew_at:
            return current
    elif opts.token is None:
        raise IdentityError(
            f"node {opts.name} has no valid SVID: pass --token "
            f"(create one with `hyperion token create --dir {opts.dir}`)"
        )
    else:
        redeem_token(opts.dir, opts.token)
    svid = ca.issue_svid(
        spiffe_id,
        ttl_s=opts.svid_ttl_s,
        dns_names=("localhost", TLS_NAME),
        ip_addresses=_listen_ips(opts.listen),
    )
    svid.write(ndir)
    return svid


def _valid_svid(ndir: Path, spiffe_id: str | None, now: float) -> Svid | None:
    """The SVID on disk if it is for ``spiffe_id`` (any node SVID when None), still valid."""
    try:
        current = Svid.read(ndir)
    except IdentityError:
        return None
    if spiffe_id is not None and current.spiffe_id != spiffe_id:
        return None
    return current if current.not_after > now else None


async def enroll_node(opts: NodeOptions) -> bool:
    """Enroll over the network if ``opts.dir`` has no CA and the node has no valid SVID.

    Returns whether it enrolled. On success writes the node key, the SVID and
    ``enroll.json`` (where to renew); on any failure it writes nothing and raises
    IdentityError (EnrollError for what the network or the issuer said).
    """
    if CertificateAuthority.exists(opts.dir):
        return False  # the local path: Node redeems the token against the CA itself
    ndir = node_dir(opts.dir, opts.name)
    key_path = ndir / "node.key"
    key = NodeKey.load(key_path) if key_path.exists() else None
    if key is not None:
        with contextlib.suppress(IdentityError):
            spiffe_id = node_spiffe_id(_svid_trust_domain(ndir), key.node_id)
            if _valid_svid(ndir, spiffe_id, time.time()) is not None:
                return False
    missing = [
        flag
        for flag, value in (
            ("--token", opts.token),
            ("--enroll", opts.enroll),
            ("--ca-hash", opts.ca_hash),
        )
        if not value
    ]
    if missing:
        raise IdentityError(
            f"node {opts.name} has no valid SVID and {opts.dir} has no CA: pass "
            f"{', '.join(missing)} to enroll at a node that holds the CA "
            "(`hyperion token create` on that machine prints the command)"
        )
    assert opts.token and opts.enroll and opts.ca_hash
    if key is None:
        key = NodeKey.generate()
    done = await enroll(
        opts.enroll,
        token=opts.token,
        ca_hash=opts.ca_hash,
        name=opts.name,
        node_key=key,
        ttl_s=opts.svid_ttl_s,
    )
    if not key_path.exists():
        key.save(key_path)
    done.svid.write(ndir)
    record = {"renew_addr": done.renew_addr, "enroll_addr": opts.enroll, "ca_hash": opts.ca_hash}
    _fs.atomic_write(ndir / ENROLL_FILE, (json.dumps(record, indent=2) + "\n").encode())
    log.info("enrolled at %s as %s", opts.enroll, done.svid.spiffe_id)
    return True


def _svid_trust_domain(ndir: Path) -> str:
    """The trust domain of the SVID in ``ndir`` (of its bundle's CA)."""
    return parse_spiffe_id(Svid.read(ndir).spiffe_id).trust_domain


def _save_renew_addr(ndir: Path, addr: str) -> None:
    """Point ``enroll.json`` at another issuer (after a renewal failed over to it)."""
    path = ndir / ENROLL_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    record["renew_addr"] = addr
    _fs.atomic_write(path, (json.dumps(record, indent=2) + "\n").encode())


def _renew_addr(ndir: Path) -> str:
    path = ndir / ENROLL_FILE
    try:
        addr = json.loads(path.read_text())["renew_addr"]
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise IdentityError(f"{path} is missing or malformed: enroll the node again") from e
    if not isinstance(addr, str):
        raise IdentityError(f"{path} is malformed: enroll the node again")
    return addr


class _Admin(wire_pb2_grpc.AdminServicer):
    def __init__(self, node: Node) -> None:
        self._node = node

    async def _require_user(self, context: grpc.aio.ServicerContext) -> None:
        sid = peer_identity(context, self._node.trust_domain)
        if sid is None or sid.kind != "user":
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "admin API needs a user SVID")
        if peer_revoked(context, self._node.revocations):
            self._node.counters.inc("admin_refused_revoked")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{sid} is revoked")

    async def Revoke(  # noqa: N802 (gRPC method name)
        self, request: wire_pb2.RevokeRequest, context: grpc.aio.ServicerContext
    ) -> wire_pb2.RevokeReply:
        """Enforce and spread a CA-signed record: its signature is the authority."""
        await self._require_user(context)
        node = self._node
        try:
            rec = revocation.decode_verified(request.record, node.svid.bundle_pem)
        except RevocationError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if node.core is None or node.driver is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "node is starting")
        assert node.core is not None and node.driver is not None
        _, effects = node.core.revoke(rec.to_bytes(), time.monotonic())
        node.driver.execute(effects)
        return wire_pb2.RevokeReply(
            node_id=node.key.node_id,
            name=node.opts.name,
            subject=rec.subject,
            known=len(node.revocations),
        )

    async def Members(  # noqa: N802 (gRPC method name)
        self, request: wire_pb2.MembersRequest, context: grpc.aio.ServicerContext
    ) -> wire_pb2.MembersReply:
        await self._require_user(context)
        return self._node.members_reply()

    async def Nodes(  # noqa: N802 (gRPC method name)
        self, request: wire_pb2.NodesRequest, context: grpc.aio.ServicerContext
    ) -> wire_pb2.NodesReply:
        await self._require_user(context)
        return self._node.nodes_reply()

    async def Locate(  # noqa: N802 (gRPC method name)
        self, request: wire_pb2.LocateRequest, context: grpc.aio.ServicerContext
    ) -> wire_pb2.LocateReply:
        await self._require_user(context)
        return await self._node.locate_reply(request, context)


class Node:
    """A running node (see module docstring)."""

    def __init__(self, opts: NodeOptions) -> None:
        if opts.profile not in PROFILES:
            raise ValueError(f"unknown profile {opts.profile!r} (choose {', '.join(PROFILES)})")
        if opts.wire_version not in codec.SUPPORTED_VERSIONS:
            raise ValueError(
                f"unsupported wire version {opts.wire_version} "
                f"(supported: {', '.join(map(str, codec.SUPPORTED_VERSIONS))})"
            )
        self.opts = opts
        self.dir = node_dir(opts.dir, opts.name)
        key_path = self.dir / "node.key"
        # A node whose DIR holds the CA signs its own SVIDs; one without renews at the
        # node that enrolled it (enroll_node must have run first).
        self.ca: CertificateAuthority | None = None
        self.renew_addr = ""
        remote = opts.enroll is not None or (self.dir / ENROLL_FILE).exists()
        if CertificateAuthority.exists(opts.dir) or not remote:
            self.ca = CertificateAuthority.load(opts.dir)
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if key_path.exists():
                self.key = NodeKey.load(key_path)
            else:
                self.key = NodeKey.generate()
                self.key.save(key_path)
            self.trust_domain = self.ca.trust_domain
            self.svid = obtain_svid(opts, self.key, self.ca)
        else:
            if not key_path.exists():
                raise IdentityError(f"node {opts.name} is not enrolled yet (no {key_path})")
            self.key = NodeKey.load(key_path)
            self.trust_domain = _svid_trust_domain(self.dir)
            svid = _valid_svid(
                self.dir, node_spiffe_id(self.trust_domain, self.key.node_id), time.time()
            )
            if svid is None:
                raise IdentityError(
                    f"node {opts.name} has no valid SVID: enroll it again with a new --token"
                )
            self.svid = svid
            self.renew_addr = _renew_addr(self.dir)
        if opts.enroll_listen is not None and self.ca is None:
            raise IdentityError(f"--enroll-listen needs the CA in {opts.dir}")
        self.enroll_addr = ""
        self.workload_socket: Path | None = self.dir / SOCKET_NAME
        try:
            check_socket_path(self.workload_socket)
        except WorkloadApiError as e:  # the node runs; its pods get no Workload API
            log.warning("SPIFFE Workload API not served: %s", e)
            self.workload_socket = None
        self.pods: PodManager | None = None
        self.creds = CredentialStore(self.svid)
        self.counters = Counters()
        self.revocations = revocation.RevocationList()
        self.state_since: dict[str, float] = {}
        self.addr = ""
        self.core: MeshNode | None = None
        self.driver: CoreDriver | None = None
        self.api_addr = ""
        self.api: ApiServer | None = None
        self._api_ssl: ssl.SSLContext | None = None
        self.policy = get_policy(opts.policy)  # fails early on an unknown name
        self.control: ControlDriver | None = None
        self.persist: CatalogStore | None = None
        self.strong: StrongPlane | None = None
        self._client_ssl: ssl.SSLContext | None = None
        self.sidecars: SidecarHost | None = None

    def _on_notify(self, event: object) -> None:
        if isinstance(event, LookupDone):
            if self.control is not None:
                self.control.dht.done(event)
            return
        if isinstance(event, CatalogChanged):
            if self.persist is not None:
                self.persist.save()  # before the API answers a local write
            if self.api is not None:
                self.api.store.notify()
            if self.control is not None:
                self.control.wake()
            return
        if isinstance(event, (Placed, Unplaced)):
            if self.control is not None:
                self.control.on_event(event)
            return
        if isinstance(event, Revoked):
            self._on_revoked(event)
            return
        if self.control is not None:
            self._feed_control(event)
        if self.api is not None and isinstance(event, (RecordEvent, MemberEvent)):
            self.api.ctx.nodes_changed()
        if isinstance(event, RecordEvent):
            if event.record is not None and event.via != "self":
                log.info(
                    "record of %s v%d via %s", event.node_id[:12], event.record.version, event.via
                )
            return
        if isinstance(event, MemberEvent):
            self.state_since[event.node_id] = time.time()
            if event.state == "dead" and self.driver is not None:
                # Stop the reconnect loop; reconnect probes and refutations reopen it.
                self.driver.transport.forget(event.addr)
            log.info(
                "member %s (%s) is %s", event.name or event.node_id[:12], event.addr, event.state
            )

    def _check_revocation(self, data: bytes) -> Revoked | None:
        """``MeshNode``'s verifier: a record signed by our trust domain's CA, or None."""
        try:
            rec = revocation.decode_verified(data, self.svid.bundle_pem)
        except RevocationError as e:
            log.warning("revocation record refused: %s", e)
            return None
        sid = parse_spiffe_id(rec.subject)
        whole_node = sid.kind == "node" and not rec.serial and sid.trust_domain == self.trust_domain
        return Revoked(
            rec.key, rec.subject, sid.name if whole_node else "", rec.expires_at, rec.to_bytes()
        )

    def _on_revoked(self, event: Revoked) -> None:
        with contextlib.suppress(RevocationError):
            self.revocations.add(revocation.decode(event.record))
        self.counters.inc("revocations_enforced")
        if event.node_id == self.key.node_id:
            log.error("this node's identity %s is revoked: peers refuse it", event.subject)
        else:
            log.warning("revoked: %s", event.subject)

    def _feed_control(self, event: object) -> None:
        """Node records and membership changes into the scheduler's view."""
        assert self.control is not None
        if isinstance(event, RecordEvent):
            if event.record is None:
                self.control.forget(event.node_id)
                return
            try:
                rec = NodeRecord.from_bytes(event.record.value, self.opts.wire_version)
            except RecordError:
                return
            self.control.observe(rec)
        elif isinstance(event, MemberEvent):
            if event.state not in ("alive", "suspect"):
                self.control.forget(event.node_id)
            else:
                self.control.wake()

    # ----------------------------------------------------------- strong state

    def strong_state(self, namespace: str, name: str) -> StrongState:
        """The strong state of HyperionWorkload ``namespace/name`` (``consistency:
        strong``), served by its Raft group: ``await .get(key)``, ``.put(key, value,
        expect_version=None)``, ``.delete(key, expect_version=None)``. Raises
        ``raft_driver.NotStrong`` / ``Unavailable`` / ``VersionConflict``."""
        if self.strong is None:
            raise RuntimeError("node is not running")
        return self.strong.state(namespace, name)

    def _strong_source(self) -> Source:
        assert self.core is not None and self.control is not None
        core, control = self.core, self.control

        def objects(resource: str) -> list[dict[str, Any]]:
            return [e.obj for e in core.catalog.list(resource) if e.obj is not None]

        def workloads() -> dict[str, WorkloadView]:
            ids = {name: nid for nid, name in control.names.items()}
            ids[self.opts.name] = self.key.node_id
            return strong_views(objects, ids, self.key.node_id, self.live_members())

        def find(ns: str, name: str) -> tuple[str, dict[str, Any]] | None:
            cur = core.catalog.get((HWL, ns, name))
            w = None if cur is None else cur.obj
            if w is None or not is_strong(w):
                return None
            return str((w.get("metadata") or {}).get("uid")), dict(w.get("status") or {})

        def write_status(
            ns: str, name: str, block: dict[str, Any], ok: bool, reason: str, message: str
        ) -> None:
            cur = core.catalog.get((HWL, ns, name))
            if cur is None or cur.obj is None:
                return
            new = with_consistency(cur.obj, block, ok, reason, message, rfc3339(time.time()))
            control.write_derived((HWL, ns, name), new)

        def resolve(node_id: str) -> str:
            d = core.membership.directory
            slot = d.find(node_id)
            return "" if slot is None else d.addrs[slot]

        def name_of(node_id: str) -> str:
            return control.names.get(node_id) or node_id[:12]

        return Source(workloads, find, write_status, resolve, name_of)

    def live_members(self) -> dict[str, str]:
        """Live members that take part in the catalog (custodian candidates): id -> name."""
        assert self.core is not None and self.control is not None
        names = self.control.names
        return {nid: names.get(nid, "") for nid in self.core.catalog_peers()}

    def members_reply(self) -> wire_pb2.MembersReply:
        assert self.core is not None
        members = [
            wire_pb2.MemberInfo(
                node_id=str(m["node_id"]),
                name=str(m["name"]),
                addr=str(m["addr"]),
                state=str(m["state"]),
                incarnation=int(m["incarnation"]),  # type: ignore[call-overload]
                state_since_unix=self.state_since.get(str(m["node_id"]), 0.0),
            )
            for m in self.core.members()
        ]
        counters = dict(self.counters.values)
        counters.update(self.core.stats())
        if self.control is not None:
            counters.update({f"control_{k}": v for k, v in self.control.counters.items()})
        if self.persist is not None:
            counters.update({f"catalog_store_{k}": v for k, v in self.persist.stats().items()})
        return wire_pb2.MembersReply(
            node_id=self.key.node_id, name=self.opts.name, members=members, counters=counters
        )

    async def locate_reply(
        self, request: wire_pb2.LocateRequest, context: grpc.aio.ServicerContext
    ) -> wire_pb2.LocateReply:
        """A workload's record and its replicas' leases, resolved through our DHT."""
        if self.control is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "node is starting")
        assert self.control is not None
        if request.resource not in WORKLOADS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"not a workload resource: {request.resource}"
            )
        reply = wire_pb2.LocateReply(node_id=self.key.node_id, name=self.opts.name)
        try:
            found = await self.control.locate(request.resource, request.namespace, request.name)
        except (TimeoutError, leases.LeaseError):
            found = None
        if found is None:
            return reply
        names = self.control.names

        def located(rec: Record) -> wire_pb2.LocatedRecord:
            return wire_pb2.LocatedRecord(
                key=rec.key,
                author=rec.author,
                author_name=names.get(rec.author, ""),
                version=rec.version,
                expires_at=rec.expires_at,
            )

        reply.found = True
        reply.record.CopyFrom(located(found.record))
        reply.workload.CopyFrom(leases.workload_pb(found.workload))
        for pl, rec, lease in found.leases:
            item = reply.leases.add(placement=leases.placement_pb(pl), found=lease is not None)
            if rec is not None and lease is not None:
                item.record.CopyFrom(located(rec))
                item.lease.CopyFrom(leases.lease_pb(lease))
        return reply

    def build_record(self) -> NodeRecord:
        o = self.opts
        return build_record(
            node_id=self.key.node_id,
            spiffe_id=self.svid.spiffe_id,
            name=o.name,
            mesh_addr=self.addr,
            api_addr=self.api_addr,
            labels=o.labels,
            software_version=software_version(self.opts.wire_version),
            protocol_versions=protocols_spoken(o.wire_version),
            now_unix=time.time(),
            cpu_millis=o.cpu_millis,
            memory_bytes=o.memory_bytes,
            gpus=o.gpus,
            egress_price_per_gb=o.egress_price_per_gb,
        )

    def nodes_reply(self) -> wire_pb2.NodesReply:
        assert self.core is not None
        own = self.key.node_id
        order = sorted(self.core.directory, key=lambda nid: (nid != own, nid))
        records = []
        for nid in order:
            try:
                rec = NodeRecord.from_bytes(self.core.directory[nid].value, self.opts.wire_version)
            except RecordError as e:
                self.counters.inc("records_unreadable")
                log.warning("record of %s is unreadable: %s", nid[:12], e)
                continue
            pb = wire_pb2.NodeRecord()
            pb.ParseFromString(rec.to_bytes())
            records.append(pb)
        return wire_pb2.NodesReply(
            node_id=own, name=self.opts.name, records=records, counters=self.core.stats()
        )

    def _write_info(self) -> None:
        info = {
            "name": self.opts.name,
            "node_id": self.key.node_id,
            "spiffe_id": self.svid.spiffe_id,
            "pid": os.getpid(),
            "mesh_addr": self.addr,
            "api_addr": self.api_addr or None,
            "labels": self.opts.labels,
            "version": software_version(self.opts.wire_version),
            "wire_version": self.opts.wire_version,
            "profile": self.opts.profile,
            "workload_socket": str(self.workload_socket or ""),
        }
        if self.enroll_addr:
            assert self.ca is not None
            info["enroll_addr"] = self.enroll_addr
            info["ca_hash"] = self.ca.cert_hash
        fsutil.atomic_write(self.dir / "node.json", json.dumps(info, indent=2).encode())

    async def _renew_remote(self) -> Svid:
        """Renew at the issuer that enrolled us or, when it fails, at another live member
        that holds the CA (any of them issues for our SPIFFE ID; others answer
        UNIMPLEMENTED). The first that issues becomes the one ``enroll.json`` names."""
        try:
            return await renew(self.renew_addr, self.svid, ttl_s=self.opts.svid_ttl_s)
        except IdentityError as e:
            first = e
        others = [
            str(m["addr"])
            for m in (self.core.members() if self.core is not None else [])
            if m["state"] == "alive" and m["node_id"] != self.key.node_id
        ]
        random.shuffle(others)
        for addr in [a for a in others if a != self.renew_addr][:RENEW_FAILOVER_TRIES]:
            try:
                svid = await renew(
                    addr, self.svid, ttl_s=self.opts.svid_ttl_s, timeout_s=RENEW_FAILOVER_TIMEOUT_S
                )
            except IdentityError:
                continue
            log.warning("renewed at %s: the issuer at %s failed (%s)", addr, self.renew_addr, first)
            self.renew_addr = addr
            _save_renew_addr(self.dir, addr)
            self.counters.inc("svid_renewal_failovers")
            return svid
        raise first

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.creds.svid.renew_at - time.time()))
            try:
                if self.ca is not None:
                    svid = obtain_svid(self.opts, self.key, self.ca)
                else:
                    svid = await self._renew_remote()
                    svid.write(self.dir)
            except IdentityError as e:
                log.error("SVID renewal failed: %s", e)
                self.counters.inc("svid_renewal_errors")
                await asyncio.sleep(1.0)
                continue
            self.creds.update(svid)
            self.svid = svid
            self._client_ssl = None  # rebuilt with the new SVID on next use
            if self._api_ssl is not None:
                load_cert(self._api_ssl, svid.cert_pem, svid.key_pem, self.dir)
            self.counters.inc("svid_renewals")
            log.info("renewed SVID, valid until %s", time.ctime(svid.not_after))

    # ------------------------------------------------------------ Kubernetes API

    def node_objects(self) -> list[dict[str, object]]:
        """Every member with a known record, as a Kubernetes Node."""
        assert self.core is not None
        now = time.time()
        states = {str(m["node_id"]): str(m["state"]) for m in self.core.members()}
        states[self.key.node_id] = "alive"
        out = []
        for nid, rec in self.core.directory.items():
            try:
                record = NodeRecord.from_bytes(rec.value, self.opts.wire_version)
            except RecordError:
                continue
            out.append(
                node_object(record, states.get(nid, "dead"), self.state_since.get(nid, 0.0), now)
            )
        return out  # type: ignore[return-value]

    def pod_log_path(self, pod: dict[str, object], container: str) -> Path | None:
        """Where this node's runtime writes a container's log (None: not on this node)."""
        spec = pod.get("spec") or {}
        meta = pod.get("metadata") or {}
        if not isinstance(spec, dict) or not isinstance(meta, dict):
            return None
        if spec.get("nodeName") != self.opts.name:
            return None
        return (
            self.dir
            / "pods"
            / str(meta.get("namespace"))
            / str(meta.get("name"))
            / (f"{container}.log")
        )

    def _sidecar_host(self) -> SidecarHost:
        assert self.api is not None
        store = self.api.store
        return SidecarHost(
            node_name=self.opts.name,
            replica=store,
            pods_in=lambda ns: store.list(PODS.key_resource, ns),
            host_port=self._host_port,
            peer_api=self.peer_api,
            version=software_version(self.opts.wire_version),
            strong_for=self._strong_for,
        )

    def _strong_for(self, namespace: str, pod_name: str) -> StrongState | None:
        """The strong state of the HyperionWorkload that controls pod ``pod_name``, if
        that workload asks for ``consistency: strong`` (the sidecar's ``statestore``)."""
        if self.api is None or self.strong is None:
            return None
        pod = self.api.store.get((PODS.key_resource, namespace, pod_name)) or {}
        ref = controller_ref(pod.get("metadata") or {})
        if ref is None or ref.get("kind") != "HyperionWorkload":
            return None
        name = str(ref.get("name"))
        if self.strong.source.find(namespace, name) is None:  # absent, or not strong
            return None
        return self.strong.state(namespace, name)

    def _host_port(self, uid: str, container_port: int) -> int | None:
        return None if self.pods is None else self.pods.host_port(uid, container_port)

    def _pod_manager(self, host: str, sidecars: SidecarHost) -> PodManager:
        def pod_env(pod: PodSpec) -> Mapping[str, str]:
            return sidecars.env(pod.uid)

        runtimes: dict[str, Runtime] = {
            "process": ProcessRuntime(workload_socket=self.workload_socket, pod_env=pod_env)
        }
        podman = podman_available()
        if podman is not None:
            runtimes["podman"] = PodmanRuntime(podman, self.opts.dir / "podman", pod_env=pod_env)

        def publish(ns: str, name: str, status: dict[str, object]) -> None:
            if self.control is not None:
                self.control.publish_status(ns, name, status)

        def event(pod: dict[str, object], typ: str, reason: str, message: str) -> None:
            if self.control is not None:
                self.control.record_event(pod, typ, reason, message)

        return PodManager(
            node_name=self.opts.name,
            host_ip=host,
            root=self.dir / "pods",
            runtimes=runtimes,
            publish=publish,
            record_event=event,
            hooks=sidecars,
        )

    def peer_api(self, node_name: str) -> tuple[str, ssl.SSLContext] | None:
        """Another node's API address and a client context presenting our node SVID."""
        addr = None if self.control is None else self.control.api_addrs.get(node_name)
        if not addr or node_name == self.opts.name:
            return None
        if self._client_ssl is None:
            ctx = ssl.create_default_context(cadata=self.svid.bundle_pem.decode())
            ctx.check_hostname = False  # SVIDs name the node, not its address
            client_dir = self.dir / "api-client"
            client_dir.mkdir(mode=0o700, exist_ok=True)
            load_cert(ctx, self.svid.cert_pem, self.svid.key_pem, client_dir)
            self._client_ssl = ctx
        return addr, self._client_ssl

    def _load_revocations(self, now: float) -> None:
        """Enforce the records in the restored catalog and, on a CA node, the CA's list."""
        assert self.core is not None and self.driver is not None
        self.driver.execute(self.core.scan_revocations(now))
        if self.ca is None:
            return
        try:
            recs = revocation.read_list(self.opts.dir, self.ca.bundle_pem)
        except RevocationError as e:
            log.error("revocation list not loaded: %s", e)
            return
        for rec in recs:
            self.driver.execute(self.core.revoke(rec.to_bytes(), now)[1])

    async def _start_api(self) -> web.AppRunner:
        assert self.core is not None and self.driver is not None
        store = ObjectStore(
            self.core.catalog, self.driver.execute, time.monotonic, self.core.catalog_write
        )
        ctx = ApiContext(
            store=store,
            node_name=self.opts.name,
            trust_domain=self.trust_domain,
            nodes=self.node_objects,  # type: ignore[arg-type]
            log_path=self.pod_log_path,  # type: ignore[arg-type]
            peer_api=self.peer_api,
            revoked=lambda sid, serial: self.revocations.revoked(sid, serial) is not None,
        )
        self.api = ApiServer(ctx)
        self._api_ssl = server_ssl_context(
            self.svid.cert_pem, self.svid.key_pem, self.svid.bundle_pem, self.dir
        )
        runner = web.AppRunner(self.api.app, access_log=None, handle_signals=False)
        await runner.setup()
        host, _, port = self.opts.api_listen.rpartition(":")
        site = web.TCPSite(
            runner, host.strip("[]") or "127.0.0.1", int(port), ssl_context=self._api_ssl
        )
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        bound = sock.getsockname()[1]
        shown = host.strip("[]")
        if shown in ("", "0.0.0.0", "::"):
            shown = "127.0.0.1"
        self.api_addr = f"{shown}:{bound}"
        log.info("Kubernetes API on https://%s", self.api_addr)
        return runner

    def _attest(self, pid: int) -> tuple[str, str] | None:
        return None if self.pods is None else attest_pid(pid, self.pods.workloads())

    async def run(self, stop: asyncio.Event) -> None:
        if self.workload_socket is None:
            await self._run(stop)
            return
        workload_api = WorkloadEndpoint(
            self.workload_socket,
            self.trust_domain,
            attest=self._attest,
            svids=WorkloadSvids(self.ca, self.revocations, ttl_s=self.opts.svid_ttl_s),
            bundle=lambda: self.svid.bundle_pem,
        )
        await workload_api.start()
        try:
            await self._run(stop)
        finally:
            await workload_api.stop()

    async def _run(self, stop: asyncio.Event) -> None:
        transport = Transport(self.creds, self.counters)
        holder: list[CoreDriver] = []
        issuer = None
        if self.ca is not None:
            issuer = Issuer(
                self.ca, self.opts.svid_ttl_s, self.counters, revocations=self.revocations
            )
        server, port = await start_server(
            self.opts.listen,
            self.creds,
            self.trust_domain,
            self.counters,
            lambda opened: holder[0].deliver(opened),
            admin=_Admin(self),
            renewal=None if issuer is None else RenewalServicer(issuer),
            revocations=self.revocations,
        )
        host = self.opts.listen.rsplit(":", 1)[0]
        if host in ("", "0.0.0.0", "[::]"):
            host = "127.0.0.1"
        self.addr = f"{host}:{port}"
        enroll_server: grpc.aio.Server | None = None
        if issuer is not None and self.opts.enroll_listen is not None:
            issuer.renew_port = port
            try:
                enroll_server, enroll_port = await start_enrollment_server(
                    self.opts.enroll_listen, self.creds, issuer
                )
            except OSError:
                await server.stop(grace=None)
                raise
            enroll_host = self.opts.enroll_listen.rsplit(":", 1)[0]
            if enroll_host in ("", "0.0.0.0", "[::]"):
                enroll_host = "127.0.0.1"
            self.enroll_addr = f"{enroll_host}:{enroll_port}"
            log.info("enrollment on %s (CA %s)", self.enroll_addr, self.ca.cert_hash)
        now = time.monotonic()
        wall_offset = time.time() - now  # the mesh clock: DHT expiry, tender deadlines
        scheduler = Scheduler(
            self.key.node_id,
            policy=self.policy,
            rng=random.Random(),
            clock_offset=wall_offset,
        )
        self.core = MeshNode(
            self.key.node_id,
            self.addr,
            name=self.opts.name,
            public_key=self.key.public_bytes,
            sign=self.key.sign,
            verify_record=verify_record,
            verify_message=verify_message,
            may_write=mesh_record_policy,
            encode_record=codec.encode_record,
            decode_record=codec.decode_record,
            rng=random.Random(),
            now=now,
            wall_offset=wall_offset,
            swim=PROFILES[self.opts.profile],
            pubsub=PubSubConfig.for_version(self.opts.wire_version),
            rv_start=int(time.time() * 1000) * 1000,
            control=scheduler,
            check_revocation=self._check_revocation,
        )
        # The catalog saved by the last run, before any peer traffic (persist.py).
        self.persist = CatalogStore(
            self.dir / "catalog",
            self.key.node_id,
            tombstone_ttl_s=self.core.catalog.config.tombstone_ttl_s,
        )
        self.persist.open(self.core.catalog, now)
        self.driver = CoreDriver(
            self.core,
            self.key,
            transport,
            self.counters,
            self._on_notify,
            version=self.opts.wire_version,
        )
        holder.append(self.driver)
        self._load_revocations(now)
        runner = await self._start_api()
        assert self.api is not None
        sidecars = self.sidecars = self._sidecar_host()
        await sidecars.start()
        self.api.ctx.sidecar = sidecars.serve_forwarded
        pods = self.pods = self._pod_manager(host, sidecars)
        self.control = ControlDriver(
            core=self.core,
            scheduler=scheduler,
            node_name=self.opts.name,
            execute=self.driver.execute,
            pods=pods,
            live_members=self.live_members,
            key=self.key,
            lease_pause_file=os.environ.get("HYPERION_TEST_LEASE_PAUSE"),
        )
        if self.core.catalog.counters.get("restored"):
            self.control.hold_after_restore()
        # Raft groups of strong workloads, over the same links (hyperion.workplane),
        # rejoined from disk before the node joins the mesh
        self.strong = StrongPlane(
            self.key.node_id,
            self.dir / "raft",
            self.driver.execute,
            self._strong_source(),
            self.counters.inc,
        )
        self.strong.load()
        self.driver.routes[RaftPayload] = self.strong.deliver
        record = self.build_record()
        self.control.observe(record)
        value = record.to_bytes(self.opts.wire_version)
        self.driver.execute(self.core.join(self.opts.join, now))
        self.driver.execute(self.core.set_record(value, now))
        self._write_info()
        log.info("node %s (%s) listening on %s", self.opts.name, self.key.node_id, self.addr)
        tasks = [
            asyncio.create_task(self.driver.run()),
            asyncio.create_task(self._renew_loop()),
            asyncio.create_task(self.control.run()),
            asyncio.create_task(self.persist.run()),
            asyncio.create_task(self.strong.run()),
        ]
        try:
            await stop.wait()
        finally:
            tasks[2].cancel()
            await pods.close()  # stop what runs here (SIGTERM, grace, SIGKILL)
            await sidecars.stop()
            self.driver.execute(self.core.leave(time.monotonic()))
            await asyncio.sleep(LEAVE_FLUSH_S)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.persist.close()
            await transport.close()
            await runner.cleanup()
            if enroll_server is not None:
                await enroll_server.stop(grace=0.2)
            await server.stop(grace=0.2)
            log.info("node %s stopped", self.opts.name)
