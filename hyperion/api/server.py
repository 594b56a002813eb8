"""The Kubernetes-compatible HTTPS API that every node serves.

What this module owns: HTTP routing, authentication and authorization, the verbs
(get, list, watch, create, update, patch, delete, deletecollection) and their
Kubernetes semantics over the node's ``ObjectStore``, discovery (legacy and aggregated
v2/v2beta1), ``/version``, ``/openapi/v3``, Table output, the ``scale`` and ``status``
subresources, pod logs, and ``Status`` errors. ``/sidecar/...`` (node identities only)
hands service invocation forwarded by another node's Dapr sidecar to
``ApiContext.sidecar``. The resource model (types, schemas,
defaults, tables, patches) lives in ``resources``, ``schema``, ``tables`` and ``patch``;
protobuf request bodies become the same dicts as JSON ones in ``k8sproto``.

Security: the listener is TLS with ``CERT_REQUIRED`` against the trust-domain CA, so a
client without a certificate chained to it fails the handshake. Each request is then
checked again (continuous authorization): the certificate must still be valid now, not
be revoked (``ApiContext.revoked``; 401, and a running watch ends) and name a user
(``spiffe://TD/user/<name>``) or a node of the trust domain. Users in the
``system:masters`` group (the certificate's subject O, as Kubernetes reads it) may do
everything; users in ``hyperion:view`` may only read; anyone else gets 403.

Consistency: the store's resourceVersion is this node's own sequence of applied
changes, so list then watch from one node misses nothing. A write carrying a stale
``metadata.resourceVersion`` gets 409 Conflict here; writes made concurrently on two
nodes converge by last-writer-wins in the catalog.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from hyperion import __version__
from hyperion.api import errors, k8sproto, patch, schema, tables
from hyperion.api.errors import ApiError
from hyperion.api.nodes import rfc3339
from hyperion.api.resources import RESOURCES, ResourceType, lookup
from hyperion.api.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from hyperion.api.store import ObjectStore, with_rv
from hyperion.control.catalog import Change, Expired

log = logging.getLogger(__name__)

KUBE_MINOR = "32"  # the Kubernetes minor whose API we present (kubectl picks its client)
MAX_BODY_BYTES = 3 * 1024 * 1024  # etcd's default request limit
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
WATCH_TIMEOUT_S = 1800.0
BOOKMARK_S = 10.0
LOG_POLL_S = 0.05
ADMIN_GROUP = "system:masters"
VIEW_GROUP = "hyperion:view"
READ_VERBS = frozenset({"get", "list", "watch"})
OPENAPI_V2 = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
DISCOVERY_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def _key(rt: ResourceType, namespace: str, name: str) -> tuple[str, str, str]:
    return (rt.key_resource, namespace if rt.namespaced else "", name)


@dataclass
class Caller:
    """Who is calling: from the verified client certificate."""

    kind: str  # "user" | "node"
    name: str
    groups: tuple[str, ...]


@dataclass
class ApiContext:
    """What the server needs from its node."""

    store: ObjectStore
    node_name: str
    trust_domain: str
    nodes: Callable[[], list[dict[str, Any]]] = lambda: []
    log_path: Callable[[dict[str, Any], str], Path | None] = lambda pod, c: None
    # The API of the node a pod runs on ("host:port", client TLS context), to fetch its
    # logs from there as the Kubernetes API server asks the kubelet; None if unknown.
    peer_api: Callable[[str], tuple[str, ssl.SSLContext] | None] = lambda node: None
    wall: Callable[[], float] = time.time
    mesh_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Whether a client's SPIFFE ID (certificate serial, lowercase hex) is revoked: asked
    # at every request, so a revocation takes effect on open keep-alive connections.
    revoked: Callable[[str, str | None], bool] = lambda spiffe_id, serial: False
    # Service invocation forwarded by another node's Dapr sidecar (``/sidecar/...``,
    # node identities only): ``hyperion.workplane.sidecar``; None: not served.
    sidecar: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None

    def nodes_changed(self) -> None:
        """Wake node watchers (membership or a node record changed)."""
        self.mesh_changed.set()
        self.mesh_changed = asyncio.Event()


# ------------------------------------------------------------------ request helpers


@dataclass
class Target:
    """A parsed resource path."""

    rt: ResourceType
    namespace: str  # "" = all namespaces (lists) or cluster-scoped
    name: str = ""
    sub: str = ""


def _media_types(accept: str) -> list[dict[str, str]]:
    out = []
    for part in accept.split(","):
        bits = [b.strip() for b in part.split(";")]
        if not bits[0]:
            continue
        params = {"type": bits[0]}
        for b in bits[1:]:
            if "=" in b:
                k, v = b.split("=", 1)
                params[k.strip()] = v.strip()
        out.append(params)
    return out


def _wants_table(request: web.Request) -> bool:
    return any(
        m.get("as") == "Table" and m.get("g") == "meta.k8s.io"
        for m in _media_types(request.headers.get("Accept", ""))
    )


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _error(e: ApiError) -> web.Response:
    return _json(e.status(), status=e.code)


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "RequestEntityTooLarge", "the request body is too large")
    # ``read(n)`` returns what has arrived (at most n bytes), not the whole body: a body
    # in several TCP segments needs a loop.
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY_BYTES:
        chunk = await request.content.read(MAX_BODY_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY_BYTES:
        raise ApiError(413, "RequestEntityTooLarge", "the request body is too large")
    return b"".join(chunks)


def _decode(body: bytes, content_type: str) -> Any:
    """Decode a JSON, YAML or Kubernetes protobuf body into the same JSON-shaped value;
    400 BadRequest if it cannot be decoded, 415 for a media type or kind we do not decode."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == k8sproto.MEDIA_TYPE:
        return k8sproto.decode(body)
    if "protobuf" in media:
        raise errors.unsupported_media(
            f"the media type {media} is not supported; send application/json, "
            f"application/yaml or {k8sproto.MEDIA_TYPE}"
        )
    if not body.strip():
        raise errors.bad_request("the request body is empty")
    try:
        if "yaml" in content_type:
            return yaml.safe_load(body.decode())
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise errors.bad_request(f"the body of the request could not be decoded: {e}") from None


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    return meta


def _serial_hex(serial: object) -> str | None:
    """``getpeercert()``'s serialNumber (upper-case hex) as lowercase hex, no leading 0s."""
    try:
        return format(int(str(serial), 16), "x")
    except ValueError:
        return None


def _gvk_of(rt: ResourceType) -> str:
    return f"{rt.kind}.{rt.group}" if rt.group else rt.kind


# ------------------------------------------------------------------------- server


class ApiServer:
    """Handlers for one node's API (see the module docstring)."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.app.router.add_route("*", "/{tail:.*}", self.dispatch)
        self.requests = 0

    # ------------------------------------------------------------------- auth

    def caller(self, request: web.Request) -> Caller:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        if not peer:
            raise errors.unauthorized()
        not_after = peer.get("notAfter")
        if not_after and ssl.cert_time_to_seconds(not_after) < self.ctx.wall():
            raise errors.unauthorized("Unauthorized: the client certificate has expired")
        uris = [v for k, v in peer.get("subjectAltName", ()) if k == "URI"]
        groups = tuple(
            v for rdn in peer.get("subject", ()) for k, v in rdn if k == "organizationName"
        )
        prefix = f"spiffe://{self.ctx.trust_domain}/"
        for uri in uris:
            if not uri.startswith(prefix):
                continue
            if self.ctx.revoked(uri, _serial_hex(peer.get("serialNumber"))):
                raise errors.unauthorized("Unauthorized: the client certificate has been revoked")
            kind, _, name = uri[len(prefix) :].partition("/")
            if kind == "user" and name:
                return Caller("user", name, groups)
            if kind == "node" and name:
                return Caller("node", f"system:node:{name}", ("system:nodes",))
        raise errors.unauthorized("Unauthorized: not a user or node of this trust domain")

    def _revoked_since(self, request: web.Request) -> bool:
        """Whether a long request's caller (a watch) was revoked after it started."""
        try:
            self.caller(request)
        except ApiError:
            return True
        return False

    def authorize(self, caller: Caller, verb: str, t: Target | None) -> None:
        if caller.kind == "node" or ADMIN_GROUP in caller.groups:
            return
        if VIEW_GROUP in caller.groups and verb in READ_VERBS:
            return
        if t is None:
            if verb in READ_VERBS:
                return  # discovery, version and openapi are readable by every user
            raise errors.forbidden(f'User "{caller.name}" cannot {verb} this path')
        resource = t.rt.plural + (f"/{t.sub}" if t.sub else "")
        where = f' in the namespace "{t.namespace}"' if t.namespace else " at the cluster scope"
        what = f' "{t.name}"' if t.name else ""
        raise errors.forbidden(
            f'{resource}{what} is forbidden: User "{caller.name}" cannot {verb} resource '
            f'"{resource}" in API group "{t.rt.group}"{where}',
            details={"name": t.name, "group": t.rt.group, "kind": t.rt.plural},
        )

    # ---------------------------------------------------------------- routing

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            caller = request["caller"] = self.caller(request)
            segs = [s for s in request.path.split("/") if s]
            if segs[:1] == ["sidecar"] and self.ctx.sidecar is not None:
                if caller.kind != "node":
                    raise errors.forbidden(f'User "{caller.name}" cannot call sidecar paths')
                return await self.ctx.sidecar(request)
            if not segs or segs[0] in ("version", "healthz", "livez", "readyz", "openapi"):
                self.authorize(caller, "get", None)
                return self.meta_path(request, segs)
            if segs[0] == "api":
                group, rest = "", segs[1:]
            elif segs[0] == "apis":
                if len(segs) < 3:
                    self.authorize(caller, "get", None)
                    return self.discovery_groups(request, segs[1:])
                group, rest = segs[1], segs[2:]
            else:
                raise errors.no_resource()
            if not rest:
                self.authorize(caller, "get", None)
                if group:
                    raise errors.no_resource()
                return self.discovery_groups(request, [])
            version, rest = rest[0], rest[1:]
            if not rest:
                self.authorize(caller, "get", None)
                return self.resource_list(group, version)
            watch_prefix = rest[0] == "watch"
            if watch_prefix:
                rest = rest[1:]
            t = self.target(group, version, rest)
            verb = self.verb(request, t, watch_prefix)
            self.authorize(caller, verb, t)
            return await self.serve(request, t, verb, caller)
        except ApiError as e:
            return _error(e)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # a handler bug must answer 500, not drop the connection
            log.exception("API handler failed")
            return _error(ApiError(500, "InternalError", f"an internal error occurred: {e}"))

    def target(self, group: str, version: str, rest: list[str]) -> Target:
        nf = errors.no_resource()
        if rest[0] == "namespaces" and len(rest) >= 3:
            rt = lookup(group, version, rest[2])
            if rt is not None and rt.namespaced and len(rest) <= 5:
                ns = rest[1]
                return Target(
                    rt, ns, rest[3] if len(rest) > 3 else "", rest[4] if len(rest) > 4 else ""
                )
            if group == "" and len(rest) == 3 and rest[2] in ("status", "finalize"):
                rt = lookup("", "v1", "namespaces")
                assert rt is not None
                return Target(rt, "", rest[1], rest[2])
            raise nf
        rt = lookup(group, version, rest[0])
        if rt is None or len(rest) > 3:
            raise nf
        if not rt.namespaced:
            return Target(
                rt, "", rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
            )
        if len(rest) > 1:
            raise nf  # a namespaced object needs its namespace in the path
        return Target(rt, "")

    def verb(self, request: web.Request, t: Target, watch_prefix: bool) -> str:
        m = request.method
        q = request.query
        if m == "GET":
            if watch_prefix or q.get("watch") in ("1", "true", "True"):
                return "watch"
            return "get" if t.name else "list"
        if m == "POST":
            return "create"
        if m == "PUT":
            return "update"
        if m == "PATCH":
            return "patch"
        if m == "DELETE":
            return "delete" if t.name else "deletecollection"
        raise errors.method_not_allowed(f"method {m} is not supported")

    async def serve(
        self, request: web.Request, t: Target, verb: str, caller: Caller
    ) -> web.StreamResponse:
        rt = t.rt
        if verb not in rt.verbs and not t.sub:
            raise errors.method_not_allowed(f"{rt.plural} does not support {verb}")
        if (
            t.sub
            and t.sub not in rt.subresources
            and not (rt.plural == "namespaces" and t.sub in ("status", "finalize"))
        ):
            raise errors.no_resource()
        if rt.plural == "nodes":
            return await self.serve_nodes(request, t, verb)
        if verb == "watch":
            return await self.watch(request, t)
        if verb == "list":
            return self.list(request, t)
        if verb == "get":
            if t.sub == "log":
                return await self.pod_log(request, t)
            obj = self.get_obj(t)
            if t.sub == "scale":
                return _json(self.scale_of(rt, obj))
            return self.one(request, t, obj)
        if verb == "deletecollection":
            return self.delete_collection(request, t)
        if t.sub == "log":
            raise errors.method_not_allowed("pods/log only supports GET")
        body = await _read_body(request)
        ctype = request.headers.get("Content-Type", "application/json")
        if verb == "create":
            if t.name:
                raise errors.method_not_allowed("POST to a named object is not supported")
            return self.create(request, t, _decode(body, ctype), caller)
        if verb == "update":
            return self.update(request, t, _decode(body, ctype))
        if verb == "patch":
            return self.patch(request, t, body, ctype)
        return self.delete(request, t, _decode(body, ctype) if body.strip() else {})

    # -------------------------------------------------------------- meta paths

    def meta_path(self, request: web.Request, segs: list[str]) -> web.Response:
        if not segs:
            paths = ["/api", "/api/v1", "/apis", "/openapi/v3", "/version", "/healthz"]
            groups = sorted({f"/apis/{r.group}/{r.version}" for r in RESOURCES if r.group})
            return _json({"paths": paths + groups})
        if segs[0] in ("healthz", "livez", "readyz"):
            return web.Response(text="ok")
        if segs[0] == "version":
            return _json(
                {
                    "major": "1",
                    "minor": KUBE_MINOR,
                    "gitVersion": f"v1.{KUBE_MINOR}.0-hyperion.{__version__}",
                    "gitCommit": "",
                    "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.23",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            )
        # openapi
        if len(segs) == 2 and segs[1] == "v2":
            return web.Response(body=schema.openapi_v2_pb(), headers={"Content-Type": OPENAPI_V2})
        if len(segs) >= 2 and segs[1] == "v3":
            if len(segs) == 2:
                return _json(schema.openapi_v3_index())
            rest = segs[2:]
            data = None
            if rest[0] == "api" and len(rest) == 2:
                data = schema.openapi_v3_doc_json("", rest[1])
            elif rest[0] == "apis" and len(rest) == 3:
                data = schema.openapi_v3_doc_json(rest[1], rest[2])
            if data is not None:
                return web.Response(body=data, content_type="application/json")
        raise errors.no_resource()

    # ---------------------------------------------------------------- discovery

    def _resource_entries(self, group: str, version: str) -> list[dict[str, Any]]:
        out = []
        for r in RESOURCES:
            if r.group != group or r.version != version:
                continue
            out.append(
                {
                    "name": r.plural,
                    "singularName": r.singular,
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": list(r.verbs),
                    **({"shortNames": list(r.short_names)} if r.short_names else {}),
                    **({"categories": list(r.categories)} if r.categories else {}),
                }
            )
            for sub in r.subresources:
                kind = {"scale": "Scale", "log": "Pod"}.get(sub, r.kind)
                entry: dict[str, Any] = {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": kind,
                    "verbs": ["get"] if sub == "log" else ["get", "patch", "update"],
                }
                if sub == "scale":
                    entry["group"], entry["version"] = "autoscaling", "v1"
                out.append(entry)
        return out

    def resource_list(self, group: str, version: str) -> web.Response:
        entries = self._resource_entries(group, version)
        if not entries:
            raise errors.no_resource()
        gv = f"{group}/{version}" if group else version
        return _json(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": gv,
                "resources": entries,
            }
        )

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for r in RESOURCES:
            if r.version not in groups.setdefault(r.group, []):
                groups[r.group].append(r.version)
        return groups

    def discovery_groups(self, request: web.Request, rest: list[str]) -> web.Response:
        """``/api``, ``/apis`` and ``/apis/<group>``: legacy or aggregated discovery."""
        core = request.path.rstrip("/") == "/api"
        accept = _media_types(request.headers.get("Accept", ""))
        aggregated = next(
            (
                m["v"]
                for m in accept
                if m.get("g") == "apidiscovery.k8s.io"
                and m.get("as") == "APIGroupDiscoveryList"
                and m.get("v") in ("v2", "v2beta1")
            ),
            None,
        )
        groups = {g: v for g, v in self._groups().items() if (g == "") == core}
        if rest:  # /apis/<group>
            versions = groups.get(rest[0])
            if versions is None or len(rest) != 1:
                raise errors.no_resource()
            gvs = [{"groupVersion": f"{rest[0]}/{v}", "version": v} for v in versions]
            return _json(
                {"kind": "APIGroup", "apiVersion": "v1", "name": rest[0], "versions": gvs,
                 "preferredVersion": gvs[0]}
            )  # fmt: skip
        if aggregated:
            items = []
            for g, versions in groups.items():
                items.append(
                    {
                        "metadata": {"name": g, "creationTimestamp": None},
                        "versions": [
                            {
                                "version": v,
                                "resources": self._aggregated(g, v),
                                "freshness": "Current",
                            }
                            for v in versions
                        ],
                    }
                )
            body = {
                "kind": "APIGroupDiscoveryList",
                "apiVersion": f"apidiscovery.k8s.io/{aggregated}",
                "metadata": {},
                "items": items,
            }
            ctype = DISCOVERY_V2 if aggregated == "v2" else DISCOVERY_V2BETA1
            return web.Response(
                body=json.dumps(body).encode(),
                headers={"Content-Type": ctype, "Vary": "Accept"},
            )
        if core:
            cidrs = [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]
            return _json(
                {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": cidrs}
            )
        out = []
        for g, versions in groups.items():
            gvs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
            out.append({"name": g, "versions": gvs, "preferredVersion": gvs[0]})
        return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": out})

    def _aggregated(self, group: str, version: str) -> list[dict[str, Any]]:
        out = []
        for r in RESOURCES:
            if r.group != group or r.version != version:
                continue
            subs = []
            for sub in r.subresources:
                if sub == "scale":
                    kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
                    verbs = ["get", "patch", "update"]
                elif sub == "log":
                    kind, verbs = {"group": "", "version": "v1", "kind": "Pod"}, ["get"]
                else:
                    kind = {"group": group, "version": version, "kind": r.kind}
                    verbs = ["get", "patch", "update"]
                subs.append({"subresource": sub, "responseKind": kind, "verbs": verbs})
            entry: dict[str, Any] = {
                "resource": r.plural,
                "responseKind": {"group": group, "version": version, "kind": r.kind},
                "scope": "Namespaced" if r.namespaced else "Cluster",
                "singularResource": r.singular,
                "verbs": list(r.verbs),
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            if subs:
                entry["subresources"] = subs
            out.append(entry)
        return out

    # -------------------------------------------------------------------- reads

    def namespace_exists(self, ns: str) -> bool:
        if ns in DEFAULT_NAMESPACES:
            return True
        nsrt = lookup("", "v1", "namespaces")
        assert nsrt is not None
        return self.store.get(_key(nsrt, "", ns)) is not None

    def _virtual_namespace(self, name: str) -> dict[str, Any]:
        return {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.ctx.trust_domain}/ns/{name}")),
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"kubernetes.io/metadata.name": name},
                "resourceVersion": "1",
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def get_obj(self, t: Target) -> dict[str, Any]:
        obj = self.store.get(_key(t.rt, t.namespace, t.name))
        if obj is None and t.rt.plural == "namespaces" and t.name in DEFAULT_NAMESPACES:
            return self._virtual_namespace(t.name)
        if obj is None:
            raise errors.not_found(t.rt.plural, t.rt.group, t.name)
        return obj

    def one(self, request: web.Request, t: Target, obj: dict[str, Any]) -> web.Response:
        """One object, or a one-row Table when the client asks for it (kubectl get NAME)."""
        if _wants_table(request):
            return _json(
                tables.table(
                    t.rt,
                    [obj],
                    now=self.ctx.wall(),
                    include_object=request.query.get("includeObject", "Metadata"),
                    resource_version=obj["metadata"].get("resourceVersion", ""),
                )
            )
        return _json(obj)

    def all_objects(self, t: Target) -> list[dict[str, Any]]:
        objs = self.store.list(t.rt.key_resource, t.namespace or None)
        if t.rt.plural == "namespaces":
            have = {o["metadata"]["name"] for o in objs}
            objs += [self._virtual_namespace(n) for n in DEFAULT_NAMESPACES if n not in have]
            objs.sort(key=lambda o: o["metadata"]["name"])
        return objs

    def selectors(self, request: web.Request, t: Target) -> tuple[LabelSelector, FieldSelector]:
        try:
            labels = parse_label_selector(request.query.get("labelSelector", ""))
            fields = parse_field_selector(request.query.get("fieldSelector", ""), t.rt.key_resource)
        except ValueError as e:
            raise errors.bad_request(f"unable to parse requirement: {e}") from None
        return labels, fields

    def list(self, request: web.Request, t: Target) -> web.Response:
        labels, fields = self.selectors(request, t)
        rv = self.store.rv
        objs = [o for o in self.all_objects(t) if labels.matches(o) and fields.matches(o)]
        return self.list_response(request, t, objs, rv)

    def list_response(
        self, request: web.Request, t: Target, objs: list[dict[str, Any]], rv: int
    ) -> web.Response:
        q = request.query
        start = ""
        if q.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(q["continue"].encode()))
                start, rv = str(token["start"]), int(token["rv"])
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("continue key is not valid") from None
            objs = [o for o in objs if self._sort_key(o) > start]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        limit = q.get("limit", "")
        if limit:
            try:
                n = int(limit)
            except ValueError:
                raise errors.bad_request(f"limit must be an integer, not {limit!r}") from None
            if n > 0 and len(objs) > n:
                objs = objs[:n]
                last = self._sort_key(objs[-1])
                meta["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"start": last, "rv": rv}).encode()
                ).decode()
                meta["remainingItemCount"] = 0
        rt = t.rt
        if _wants_table(request):
            out = tables.table(
                rt,
                objs,
                now=self.ctx.wall(),
                include_object=q.get("includeObject", "Metadata"),
                resource_version=str(rv),
                continue_=meta.get("continue", ""),
            )
            return _json(out)
        items = []
        for o in objs:
            o = dict(o)
            o.setdefault("apiVersion", rt.api_version)
            o.setdefault("kind", rt.kind)
            items.append(o)
        return _json(
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": meta,
                "items": items,
            }
        )

    @staticmethod
    def _sort_key(obj: dict[str, Any]) -> str:
        m = obj.get("metadata") or {}
        return f"{m.get('namespace', '')}/{m.get('name', '')}"

    # -------------------------------------------------------------------- watch

    async def _start_stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        return resp

    def _event(
        self, request: web.Request, t: Target, typ: str, obj: dict[str, Any], table: bool
    ) -> bytes:
        if table and typ in ("ADDED", "MODIFIED", "DELETED"):
            obj = tables.table(
                t.rt,
                [obj],
                now=self.ctx.wall(),
                include_object=request.query.get("includeObject", "Metadata"),
            )
        else:
            obj = dict(obj)
            obj.setdefault("apiVersion", t.rt.api_version)
            obj.setdefault("kind", t.rt.kind)
        return json.dumps({"type": typ, "object": obj}, separators=(",", ":")).encode() + b"\n"

    def _watch_params(self, request: web.Request) -> tuple[float, bool, str]:
        q = request.query
        timeout = WATCH_TIMEOUT_S
        if q.get("timeoutSeconds"):
            try:
                timeout = min(timeout, max(0.0, float(q["timeoutSeconds"])))
            except ValueError:
                raise errors.bad_request("timeoutSeconds must be a number") from None
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true", "True")
        return timeout, bookmarks, q.get("resourceVersion", "")

    async def watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        labels, fields = self.selectors(request, t)
        timeout, bookmarks, rv_text = self._watch_params(request)
        table = _wants_table(request)
        initial = request.query.get("sendInitialEvents") in ("1", "true", "True")
        store = self.store
        if rv_text in ("", "0") or initial:
            rv = store.rv
            start = [o for o in self.all_objects(t) if labels.matches(o) and fields.matches(o)]
        else:
            try:
                rv = int(rv_text)
            except ValueError:
                raise errors.bad_request(f"invalid resourceVersion {rv_text!r}") from None
            start = []
        resp = await self._start_stream(request)
        for o in start:
            await resp.write(self._event(request, t, "ADDED", o, table))
        if initial:
            mark = {"kind": t.rt.kind, "apiVersion": t.rt.api_version,
                    "metadata": {"resourceVersion": str(rv),
                                 "annotations": {"k8s.io/initial-events-end": "true"}}}  # fmt: skip
            await resp.write(json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n")
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + BOOKMARK_S
        while True:
            try:
                changes = store.changes_since(rv)
            except Expired:
                status = errors.gone(f"too old resource version: {rv} ({store.rv})").status()
                await resp.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
                break
            for ch in changes:
                rv = ch.rv
                event = self._change_event(t, ch, labels, fields)
                if event is not None:
                    await resp.write(self._event(request, t, event[0], event[1], table))
            now = time.monotonic()
            if now >= deadline or self._revoked_since(request):
                break
            if bookmarks and now >= next_bookmark:
                mark = {"kind": t.rt.kind, "apiVersion": t.rt.api_version,
                        "metadata": {"resourceVersion": str(rv)}}  # fmt: skip
                await resp.write(json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n")
                next_bookmark = now + BOOKMARK_S
            wait = min(deadline, next_bookmark if bookmarks else deadline) - now
            await store.wait_newer(rv, max(0.01, wait))
            if request.transport is None or request.transport.is_closing():
                break
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    def _change_event(
        self, t: Target, ch: Change, labels: LabelSelector, fields: FieldSelector
    ) -> tuple[str, dict[str, Any]] | None:
        resource, ns, _ = ch.key
        if resource != t.rt.key_resource or (t.namespace and ns != t.namespace):
            return None
        obj = with_rv(ch.obj, ch.rv)
        if t.name and obj["metadata"].get("name") != t.name:
            return None
        if not (labels.matches(obj) and fields.matches(obj)):
            # An object that stops matching leaves the watch as DELETED, as Kubernetes does.
            return ("DELETED", obj) if ch.type == "MODIFIED" else None
        return ch.type, obj

    # -------------------------------------------------------------------- nodes

    async def serve_nodes(self, request: web.Request, t: Target, verb: str) -> web.StreamResponse:
        if verb not in READ_VERBS:
            raise errors.method_not_allowed(
                "nodes are the mesh's members and are read-only through this API"
            )
        labels, fields = self.selectors(request, t)

        def current() -> dict[str, dict[str, Any]]:
            rv = str(self.store.rv)
            out = {}
            for n in self.ctx.nodes():
                n["metadata"]["resourceVersion"] = rv
                if labels.matches(n) and fields.matches(n):
                    out[n["metadata"]["name"]] = n
            return out

        if verb == "get":
            node = current().get(t.name)
            if node is None or t.sub:
                raise errors.not_found("nodes", "", t.name)
            return self.one(request, t, node)
        if verb == "list":
            objs = sorted(current().values(), key=lambda n: n["metadata"]["name"])
            return self.list_response(request, t, objs, self.store.rv)
        timeout, _, _ = self._watch_params(request)
        table = _wants_table(request)
        resp = await self._start_stream(request)
        deadline = time.monotonic() + timeout
        seen: dict[str, dict[str, Any]] = {}
        while True:
            now_nodes = {k: v for k, v in current().items() if not t.name or k == t.name}
            for name, n in now_nodes.items():
                old = seen.get(name)
                if old is None:
                    await resp.write(self._event(request, t, "ADDED", n, table))
                elif _node_state(old) != _node_state(n):
                    await resp.write(self._event(request, t, "MODIFIED", n, table))
            for name in set(seen) - set(now_nodes):
                await resp.write(self._event(request, t, "DELETED", seen[name], table))
            seen = now_nodes
            left = deadline - time.monotonic()
            if left <= 0 or request.transport is None or request.transport.is_closing():
                break
            event = self.ctx.mesh_changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 5.0)):
                    await event.wait()
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    # ------------------------------------------------------------------- writes

    def _check_kind(self, rt: ResourceType, obj: Any, sub: str = "") -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body must be a JSON or YAML object")
        if sub == "scale":
            return obj
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if av is None or kind is None:
            obj = dict(obj)
            obj.setdefault("apiVersion", rt.api_version)
            obj.setdefault("kind", rt.kind)
        elif av != rt.api_version or kind != rt.kind:
            raise errors.bad_request(
                f"the API version in the data ({av}) does not match the expected API version "
                f"({rt.api_version})"
                if av != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        return obj

    def _field_validation(
        self, request: web.Request, rt: ResourceType, obj: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """Apply ``fieldValidation`` (Strict → 400, Warn → warnings, Ignore → drop)."""
        mode = request.query.get(
            "fieldValidation", "Warn" if rt.group != "hyperion.io" else "Ignore"
        )
        if mode not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not "{mode}"'
            )
        unknown = schema.unknown_fields(rt, obj)
        if unknown and mode == "Strict":
            detail = ", ".join(f'unknown field "{f}"' for f in unknown)
            raise errors.bad_request(f"strict decoding error: {detail}")
        warnings = [f'unknown field "{f}"' for f in unknown] if mode == "Warn" else []
        return (schema.prune(rt, obj) if unknown else obj), warnings

    def _validate(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        self._report(rt, obj, schema.validate(rt, obj))

    def _report(self, rt: ResourceType, obj: dict[str, Any], problems: list[Any]) -> None:
        """422 Invalid with one cause per field error, if there are any."""
        if problems:
            name = str((obj.get("metadata") or {}).get("name") or "")
            causes = [{"reason": p.type, "message": p.message, "field": p.field} for p in problems]
            raise errors.invalid(rt.kind, rt.group, name, causes)

    def _headers(self, warnings: list[str]) -> dict[str, str] | None:
        if not warnings:
            return None
        return {"Warning": ", ".join(f'299 - "{w}"' for w in warnings)}

    def _dry_run(self, request: web.Request) -> bool:
        dry = request.query.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise errors.bad_request(f'unsupported dryRun value "{d}" (only "All")')
        return bool(dry)

    def create(
        self,
        request: web.Request,
        t: Target,
        body: Any,
        caller: Caller,
        operation: str | None = "Update",
    ) -> web.Response:
        rt = t.rt
        obj = self._check_kind(rt, body)
        obj, warnings = self._field_validation(request, rt, obj)
        obj = dict(obj)
        meta = dict(_meta(obj))
        obj["metadata"] = meta
        if rt.namespaced:
            ns = meta.get("namespace") or t.namespace or "default"
            if t.namespace and ns != t.namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            if not t.namespace:
                raise errors.method_not_allowed(f"create {rt.plural} needs a namespace in the path")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        meta["uid"] = str(uuid.uuid4())  # before defaults: a Job's selector is made from it
        obj = schema.apply_defaults(rt, obj)
        meta = obj["metadata"]
        meta.pop("resourceVersion", None)
        self._validate(rt, obj)
        name = meta["name"]
        if rt.namespaced and not self.namespace_exists(t.namespace):
            raise errors.not_found("namespaces", "", t.namespace)
        if rt.plural == "namespaces" and name in DEFAULT_NAMESPACES:
            raise errors.already_exists(rt.plural, rt.group, name)
        key = _key(rt, t.namespace, name)
        if self.store.get(key) is not None:
            raise errors.already_exists(rt.plural, rt.group, name)
        meta["creationTimestamp"] = rfc3339(self.ctx.wall())
        meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        if rt.plural == "namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        if operation is not None:
            obj = patch.update_managed_fields(
                None, obj, rt, self._manager(request, caller), time=rfc3339(self.ctx.wall())
            )
        if self._dry_run(request):
            return _json(with_rv(obj, self.store.rv), 201, self._headers(warnings))
        change = self.store.write(key, obj)
        assert change is not None
        return _json(with_rv(obj, change.rv), 201, self._headers(warnings))

    def _manager(self, request: web.Request, caller: Caller) -> str:
        """The field manager: ``fieldManager``, else the User-Agent's product, else the user."""
        manager = request.query.get("fieldManager")
        if manager is None:
            ua = request.headers.get("User-Agent", "")
            manager = ua.split("/", 1)[0] if ua else caller.name
        if len(manager) > 128:
            raise errors.bad_request("fieldManager must be at most 128 characters")
        return manager

    def _stored(self, t: Target) -> dict[str, Any]:
        key = _key(t.rt, t.namespace, t.name)
        cur = self.store.get(key)
        if cur is None:
            if t.rt.plural == "namespaces" and t.name in DEFAULT_NAMESPACES:
                return self._virtual_namespace(t.name)
            raise errors.not_found(t.rt.plural, t.rt.group, t.name)
        return cur

    def update(self, request: web.Request, t: Target, body: Any) -> web.Response:
        rt = t.rt
        cur = self._stored(t)
        if t.sub == "scale":
            return self._update_scale(request, t, cur, body)
        obj = self._check_kind(rt, body)
        obj, warnings = self._field_validation(request, rt, obj)
        return self._commit(request, t, cur, dict(obj), warnings)

    def _update_scale(
        self, request: web.Request, t: Target, cur: dict[str, Any], body: Any
    ) -> web.Response:
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be a Scale object")
        replicas = (body.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "Scale", "autoscaling", t.name,
                [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                  "message": f"Invalid value: {replicas!r}: must be greater than or equal to 0"}],
            )  # fmt: skip
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != cur["metadata"]["resourceVersion"]:
            raise errors.conflict(t.rt.plural, t.rt.group, t.name)
        obj = dict(cur)
        obj["spec"] = {**(cur.get("spec") or {}), "replicas": replicas}
        saved = self._commit(request, t, cur, obj, [], sub_override="")
        stored = self.store.get(_key(t.rt, t.namespace, t.name))
        assert stored is not None
        return web.Response(
            body=json.dumps(self.scale_of(t.rt, stored)).encode(),
            status=saved.status,
            content_type="application/json",
        )

    def _commit(
        self,
        request: web.Request,
        t: Target,
        cur: dict[str, Any],
        obj: dict[str, Any],
        warnings: list[str],
        sub_override: str | None = None,
        managed: bool = True,
    ) -> web.Response:
        """Finish an update or patch: preserve server-owned fields, check, store.

        ``managed``: record the write in managedFields (server-side apply already did)."""
        rt = t.rt
        sub = t.sub if sub_override is None else sub_override
        meta = dict(_meta(obj))
        obj["metadata"] = meta
        cmeta = cur["metadata"]
        if meta.get("name", t.name) != t.name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({t.name})"
            )
        if rt.namespaced and meta.get("namespace", t.namespace) != t.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        rv = meta.get("resourceVersion")
        if rv and str(rv) != cmeta.get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, t.name)
        if meta.get("uid") and meta["uid"] != cmeta.get("uid"):
            raise errors.conflict(
                rt.plural, rt.group, t.name,
                f"Precondition failed: UID in precondition: {meta['uid']}, "
                f"UID in object meta: {cmeta.get('uid')}",
            )  # fmt: skip
        if sub == "status":
            # The status subresource changes only status (and metadata is kept).
            new = dict(cur)
            new["status"] = obj.get("status")
            obj = new
        elif "status" in rt.subresources:
            obj["status"] = cur.get("status")
            if obj["status"] is None:
                obj.pop("status")
        meta = dict(obj["metadata"])
        obj["metadata"] = meta
        meta["name"] = t.name
        if rt.namespaced:
            meta["namespace"] = t.namespace
        for keep in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
            if keep in cmeta:
                meta[keep] = cmeta[keep]
            else:
                meta.pop(keep, None)
        obj = schema.apply_defaults(rt, obj)
        if managed:
            obj = patch.update_managed_fields(
                cur, obj, rt, self._manager(request, request["caller"]), subresource=sub,
                time=rfc3339(self.ctx.wall()),
            )  # fmt: skip
        meta = obj["metadata"]
        if _spec_of(obj) != _spec_of(schema.apply_defaults(rt, cur)):
            meta["generation"] = int(cmeta.get("generation") or 0) + 1
        self._report(rt, obj, schema.validate_update(rt, obj, cur))
        meta.pop("resourceVersion", None)
        if self._dry_run(request):
            return _json(with_rv(obj, self.store.rv), 200, self._headers(warnings))
        cur_plain = dict(cur)
        cur_plain["metadata"] = {k: v for k, v in cmeta.items() if k != "resourceVersion"}
        if obj == cur_plain:  # a no-op update keeps its resourceVersion, as in Kubernetes
            return _json(cur, 200, self._headers(warnings))
        change = self.store.write(_key(rt, t.namespace, t.name), obj)
        assert change is not None
        out = with_rv(obj, change.rv)
        return _json(out, 200, self._headers(warnings))

    def patch(self, request: web.Request, t: Target, body: bytes, ctype: str) -> web.Response:
        rt = t.rt
        ctype = ctype.split(";")[0].strip()
        if ctype == "application/apply-patch+yaml":
            return self.apply(request, t, body)
        data = _decode(body, "json")
        cur = self._stored(t)
        base = self.scale_of(rt, cur) if t.sub == "scale" else cur
        try:
            if ctype == "application/merge-patch+json":
                if not isinstance(data, dict):
                    raise errors.bad_request("a merge patch must be a JSON object")
                new = patch.json_merge_patch(base, data)
            elif ctype == "application/json-patch+json":
                if not isinstance(data, list):
                    raise errors.bad_request("a JSON patch must be a JSON array of operations")
                new = patch.json_patch(base, data)
            elif ctype == "application/strategic-merge-patch+json":
                if not patch.supports_strategic(rt) or t.sub == "scale":
                    raise errors.unsupported_media(
                        "strategic merge patch is not supported for custom resources; use "
                        "a merge patch, a JSON patch or server-side apply"
                    )
                if not isinstance(data, dict):
                    raise errors.bad_request("a strategic merge patch must be a JSON object")
                new = patch.strategic_merge_patch(base, data, rt)
            else:
                raise errors.unsupported_media(
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: application/json-patch+json, application/merge-patch+json, "
                    f"application/apply-patch+yaml, application/strategic-merge-patch+json "
                    f'(got "{ctype}")'
                )
        except patch.PatchError as e:
            raise errors.ApiError(422, "Invalid", str(e)) from None
        if t.sub == "scale":
            return self._update_scale(request, t, cur, new)
        if not isinstance(new, dict):
            raise errors.bad_request("the patched object is not an object")
        new, warnings = self._field_validation(request, rt, self._check_kind(rt, new))
        return self._commit(request, t, cur, dict(new), warnings)

    def apply(self, request: web.Request, t: Target, body: bytes) -> web.Response:
        """Server-side apply (``application/apply-patch+yaml``)."""
        rt = t.rt
        manager = request.query.get("fieldManager")
        if not manager:
            raise errors.bad_request("PATCH with apply requires a non-empty fieldManager")
        force = request.query.get("force") in ("true", "1", "True")
        applied = self._check_kind(rt, _decode(body, "yaml"))
        applied, warnings = self._field_validation(request, rt, applied)
        key = _key(rt, t.namespace, t.name)
        live = self.store.get(key)
        if live is None and t.sub:
            raise errors.not_found(rt.plural, rt.group, t.name)
        try:
            new, conflicts = patch.apply_patch(
                live, applied, rt, manager, force, subresource=t.sub, time=rfc3339(self.ctx.wall())
            )
        except patch.PatchError as e:
            raise errors.ApiError(422, "Invalid", str(e)) from None
        if conflicts:
            raise errors.ApiError(
                409,
                "Conflict",
                patch.conflict_message(conflicts),
                details={"causes": [c.cause() for c in conflicts]},
            )
        if live is None:
            new.setdefault("metadata", {})["name"] = t.name
            return self.create(request, t, new, request["caller"], operation=None)
        return self._commit(request, t, live, new, warnings, managed=False)

    # ------------------------------------------------------------------- delete

    def delete(self, request: web.Request, t: Target, opts: Any) -> web.Response:
        rt = t.rt
        if t.sub:
            raise errors.method_not_allowed(f"{rt.plural}/{t.sub} does not support delete")
        if not isinstance(opts, dict):
            raise errors.bad_request("DeleteOptions must be an object")
        policy = request.query.get("propagationPolicy") or opts.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(
                f'propagationPolicy must be one of "Orphan", "Background", "Foreground", '
                f'not "{policy}"'
            )
        if rt.plural == "namespaces" and t.name in DEFAULT_NAMESPACES:
            raise errors.forbidden(
                f'namespaces "{t.name}" is forbidden: this namespace may not be deleted'
            )
        cur = self._stored(t)
        pre = opts.get("preconditions") or {}
        if not isinstance(pre, dict):
            raise errors.bad_request("preconditions must be an object")
        if pre.get("uid") and pre["uid"] != cur["metadata"].get("uid"):
            raise errors.conflict(rt.plural, rt.group, t.name,
                                  f"Precondition failed: UID in precondition: {pre['uid']}, "
                                  f"UID in object meta: {cur['metadata'].get('uid')}")  # fmt: skip
        if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"].get(
            "resourceVersion"
        ):
            raise errors.conflict(rt.plural, rt.group, t.name)
        if self._dry_run(request):
            return _json(cur)
        self._remove(rt, cur, policy or "Background")
        if rt.plural == "namespaces":
            out = dict(cur)
            out["status"] = {"phase": "Terminating"}
            return _json(out)
        return _json(cur)

    def _remove(self, rt: ResourceType, obj: dict[str, Any], policy: str) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        self.store.write(_key(rt, ns, meta["name"]), None)
        uid = meta.get("uid")
        if rt.plural == "namespaces":
            for r in RESOURCES:
                if r.namespaced:
                    for o in self.store.list(r.key_resource, meta["name"]):
                        self._remove(r, o, policy)
            return
        # Garbage collection of dependents (ownerReferences), as the GC controller does.
        for r in RESOURCES:
            if not r.namespaced or r.plural == "events":
                continue
            for o in self.store.list(r.key_resource, ns or None):
                refs = (o.get("metadata") or {}).get("ownerReferences") or []
                if not any(isinstance(x, dict) and x.get("uid") == uid for x in refs):
                    continue
                if policy == "Orphan":
                    o = dict(o)
                    m = dict(o["metadata"])
                    m["ownerReferences"] = [x for x in refs if x.get("uid") != uid] or None
                    if m["ownerReferences"] is None:
                        del m["ownerReferences"]
                    o["metadata"] = m
                    self.store.write(_key(r, m.get("namespace", ""), m["name"]), o)
                else:
                    self._remove(r, o, policy)

    def delete_collection(self, request: web.Request, t: Target) -> web.Response:
        labels, fields = self.selectors(request, t)
        policy = request.query.get("propagationPolicy") or "Background"
        objs = [o for o in self.all_objects(t) if labels.matches(o) and fields.matches(o)]
        if t.rt.plural == "namespaces":
            objs = [o for o in objs if o["metadata"]["name"] not in DEFAULT_NAMESPACES]
        if not self._dry_run(request):
            for o in objs:
                self._remove(t.rt, o, policy)
        return self.list_response(request, t, objs, self.store.rv)

    # --------------------------------------------------------------- subresources

    def scale_of(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace", ""),
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
                "creationTimestamp": meta.get("creationTimestamp"),
            },
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {
                "replicas": status.get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(sel.items())),
            },
        }

    async def pod_log(self, request: web.Request, t: Target) -> web.StreamResponse:
        pod = self.get_obj(t)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        q = request.query
        container = q.get("container") or (containers[0] if len(containers) == 1 else "")
        if not container:
            raise errors.bad_request(
                f"a container name must be specified for pod {t.name}, choose one of: "
                f"[{' '.join(str(c) for c in containers)}]"
            )
        if container not in containers:
            raise errors.bad_request(f"container {container} is not valid for pod {t.name}")
        path = self.ctx.log_path(pod, container)
        node = (pod.get("spec") or {}).get("nodeName")
        if path is None and node and node != self.ctx.node_name:
            peer = self.ctx.peer_api(str(node))
            if peer is not None:
                return await self._proxy(request, *peer)
        if path is None or not path.exists():
            raise errors.bad_request(
                f'container "{container}" in pod "{t.name}" is waiting to start: ContainerCreating'
            )
        follow = q.get("follow") in ("true", "1", "True")
        tail = q.get("tailLines")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        with path.open("rb") as f:
            data = f.read()
            if tail is not None:
                try:
                    n = int(tail)
                except ValueError:
                    raise errors.bad_request("tailLines must be an integer") from None
                lines = data.splitlines(keepends=True)
                data = b"".join(lines[-n:]) if n > 0 else b""
            await resp.write(data)
            key = _key(t.rt, t.namespace, t.name)
            uid = pod["metadata"].get("uid")
            while follow:
                chunk = f.read(65536)
                if chunk:
                    await resp.write(chunk)
                    continue
                cur = self.store.get(key)
                if cur is None or cur["metadata"].get("uid") != uid or _terminated(cur, container):
                    await resp.write(f.read())
                    break
                if request.transport is None or request.transport.is_closing():
                    break
                await asyncio.sleep(LOG_POLL_S)
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    async def _proxy(
        self, request: web.Request, addr: str, ctx: ssl.SSLContext
    ) -> web.StreamResponse:
        """Stream the same request from the node at ``addr`` (its logs are there)."""
        url = f"https://{addr}{request.path_qs}"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=5)) as session,
                session.get(url, ssl=ctx) as upstream,
            ):
                resp = web.StreamResponse(
                    status=upstream.status,
                    headers={"Content-Type": upstream.headers.get("Content-Type", "text/plain")},
                )
                resp.enable_chunked_encoding()
                await resp.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
                with contextlib.suppress(ConnectionResetError):
                    await resp.write_eof()
                return resp
        except (aiohttp.ClientError, OSError) as e:
            raise errors.service_unavailable(
                f"cannot reach the node's API at {addr}: {e}"
            ) from None


def _spec_of(obj: dict[str, Any]) -> Any:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def _node_state(node: dict[str, Any]) -> tuple[Any, ...]:
    status = node.get("status") or {}
    ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    meta = node["metadata"]
    return (tuple(ready), json.dumps(meta.get("labels"), sort_keys=True),
            json.dumps(status.get("allocatable"), sort_keys=True))  # fmt: skip


def _terminated(pod: dict[str, Any], container: str) -> bool:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == container and "terminated" in (cs.get("state") or {}):
            return True
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def server_ssl_context(
    cert_pem: bytes, key_pem: bytes, bundle_pem: bytes, tmpdir: Path
) -> ssl.SSLContext:
    """TLS 1.2+ server context that requires a client certificate chained to the CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=bundle_pem.decode())
    load_cert(ctx, cert_pem, key_pem, tmpdir)
    return ctx


def load_cert(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes, tmpdir: Path) -> None:
    """(Re)load the server certificate; new handshakes use it, open connections stay."""
    cert = tmpdir / "api-cert.pem"
    key = tmpdir / "api-key.pem"
    cert.write_bytes(cert_pem)
    key.touch(mode=0o600)
    key.write_bytes(key_pem)
    ctx.load_cert_chain(cert, key)
