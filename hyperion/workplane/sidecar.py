"""The Dapr-compatible sidecar API a node serves to its pods (DESIGN §8): the HTTP side.

Owns one plaintext HTTP listener on 127.0.0.1 per pod that opts in (``dapr.io/enabled:
"true"``), opened before the pod's containers start and closed after they stop, and
the environment that points the pod at it (``DAPR_HTTP_PORT``, ``DAPR_HTTP_ENDPOINT``,
``APP_ID``, ``DAPR_API_TOKEN``, ``APP_API_TOKEN``). The listener's port names the
caller (with its token, below): its app-id and namespace come from the pod, never from
the request. Loopback plaintext is the one exception to mutual
TLS (DESIGN §9): a node's pods share its network, and the listener is not reachable
from elsewhere.

Served (Dapr's HTTP API, v1.0):

* state, ``/v1.0/state/<store>[/<key>|/bulk|/transaction]`` over ``state.py``'s
  eventual store named ``statestore`` (``state.DEFAULT_STORE``); for a pod of a
  HyperionWorkload with ``consistency: strong``, ``statestore`` is its Raft group's
  key-value store instead (``strong_for``; linearizable reads, leader-only writes, an
  ETag is the log index of the item's last write);
* service invocation, ``/v1.0/invoke/<app-id>[.<namespace>]/method/<method…>`` and any
  path with a ``dapr-app-id`` header: the call goes to a replica of the app-id
  (``invoke.py`` picks it) at ``127.0.0.1:<its app-port>`` when it runs here, else to
  the node that runs it, over that node's mutual-TLS API (``serve_forwarded``, node
  identities only), which calls the app there;
* pub/sub, ``POST /v1.0/publish/pubsub/<topic>``, and delivery to the subscriptions an
  app declares in ``GET /dapr/subscribe`` (``pubsub.py`` owns the rules: which node
  delivers, what the app's answer means; this module runs the watch of the catalog,
  the per-pod subscription reads and the delivery tasks with their retries);
* ``/v1.0/metadata`` (and ``PUT /v1.0/metadata/<key>``), ``/v1.0/healthz``,
  ``/v1.0/healthz/outbound``.

Each pod's sidecar has its own Dapr API token, 256 random bits made when it opens (or
the literal ``DAPR_API_TOKEN`` the pod's spec sets itself), given to the pod in
``DAPR_API_TOKEN``: a request without it in ``dapr-api-token`` gets daprd's 401 ``invalid
api token`` (``GET /v1.0/healthz[/outbound]`` exempt, as in daprd), compared in constant
time. The port alone no longer names the caller: another local process, or another pod
of this node, cannot act as the app-id without the token. Likewise Dapr's
``APP_API_TOKEN``: the sidecar sends the called pod's app token in ``dapr-api-token`` to
the app, so an app can tell its sidecar from other local callers; a caller's own token
never travels on.

Every error is answered as Dapr does (``dapr.DaprError``); a handler bug answers 500
``ERR_INTERNAL`` and never stops the listener.

A pod's ``dapr.io/app-port`` is a *container* port. The process runtime hands each
declared container port a free host port (``PORT``/``HYPERION_PORT_<NAME>``); the
sidecar calls the host port the runtime chose for the declared port equal to the
app-port, and the app-port itself when no container declares it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hmac
import json
import logging
import random
import secrets
import socket
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from yarl import URL

from hyperion.control.catalog import Change
from hyperion.workplane import dapr, invoke, pubsub
from hyperion.workplane.dapr import DaprError, SidecarSpec, sidecar_spec
from hyperion.workplane.kv import KvError
from hyperion.workplane.pubsub import Subscription
from hyperion.workplane.raft_driver import StrongState, StrongStateError, VersionConflict
from hyperion.workplane.state import (
    CONCURRENCY,
    DEFAULT_STORE,
    LAST_WRITE,
    EventualStore,
    Replica,
    encode_value,
    expected_version,
    parse_bulk,
    parse_save,
    strong_key,
)

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
TOKEN_BYTES = 32  # each pod's tokens: 256 random bits, URL-safe base64
MAX_BODY_BYTES = 4 * 1024 * 1024  # Dapr's default --dapr-http-max-request-size (4 MB)
APP_CALL_TIMEOUT_S = 60.0  # a whole call to an app, forwarding included
CONNECT_TIMEOUT_S = 5.0
API_VERSION = "v1.0"

PodsIn = Callable[[str], list[dict[str, Any]]]  # namespace -> Pod objects (every node's)
HostPort = Callable[[str, int], int | None]  # (pod uid, container port) -> host port
PeerApi = Callable[[str], tuple[str, ssl.SSLContext] | None]
SUBSCRIBE_POLL_S_MAX = 2.0  # how often, at most, a silent app is asked for /dapr/subscribe


class CatalogView(Replica, Protocol):
    """What pub/sub needs of this node's catalog beyond state's ``Replica``
    (``hyperion.api.store.ObjectStore`` is one)."""

    @property
    def rv(self) -> int: ...

    def list(
        self, resource: str, namespace: str | None = None
    ) -> builtins.list[dict[str, Any]]: ...

    def changes_since(self, rv: int) -> builtins.list[Change]: ...

    async def wait_newer(self, rv: int, timeout: float) -> bool: ...


EVENTUAL_STORE_TYPE = "state.hyperion.eventual"  # the catalog's LWW store
STRONG_STORE_TYPE = "state.hyperion.raft"  # a strong workload's Raft group

# (namespace, pod name) -> the strong state of the pod's workload (None: eventual)
StrongFor = Callable[[str, str], StrongState | None]


@dataclass(slots=True)
class _Pod:
    """One pod's sidecar: its spec, its listener and what the app told ``metadata``."""

    spec: SidecarSpec
    port: int
    runner_site: web.SockSite
    api_token: str  # what the app must send in ``dapr-api-token`` (DAPR_API_TOKEN)
    app_token: str  # what the sidecar sends the app in ``dapr-api-token`` (APP_API_TOKEN)
    extended: dict[str, str] = field(default_factory=dict)
    subscriptions: list[Subscription] | None = None  # None: the app has not said yet
    subscribe_task: asyncio.Task[None] | None = None


class _Unreachable(Exception):
    """The app or the node that runs it could not be reached (not an answer of the app)."""


def _error(e: DaprError) -> web.Response:
    return web.Response(status=e.status, body=e.body(), content_type="application/json")


class SidecarHost:
    """Every sidecar listener of one node (see the module docstring)."""

    def __init__(
        self,
        *,
        node_name: str,
        replica: CatalogView,
        pods_in: PodsIn,
        host_port: HostPort,
        peer_api: PeerApi,
        version: str,
        strong_for: StrongFor | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.node_name = node_name
        self._strong_for = strong_for
        self.stores = {DEFAULT_STORE: EventualStore(DEFAULT_STORE, replica)}
        self._replica = replica
        self._inflight: set[tuple[str, str, str]] = set()  # (namespace, message, app-id)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pods_in = pods_in
        self._host_port = host_port
        self._peer_api = peer_api
        self.version = version
        self._rng = rng or random.Random()
        self._pods: dict[str, _Pod] = {}  # uid -> pod
        self._by_port: dict[int, _Pod] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.counters: dict[str, int] = {}

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=APP_CALL_TIMEOUT_S, sock_connect=CONNECT_TIMEOUT_S),
            auto_decompress=False,
        )
        self._spawn(self._pubsub_loop())

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        for uid in list(self._pods):
            await self.close(uid)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def open(self, pod: dict[str, Any]) -> None:
        """Open the sidecar of ``pod`` if it asks for one (before its containers start).
        Raises ``SidecarConfigError`` for bad annotations."""
        spec = sidecar_spec(pod)
        if spec is None or spec.uid in self._pods:
            return
        assert self._runner is not None, "start() first"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((HOST, 0))
            sock.setblocking(False)
            site = web.SockSite(self._runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            raise
        port = int(sock.getsockname()[1])
        api_token = dapr.declared_env(pod, dapr.API_TOKEN_ENV) or secrets.token_urlsafe(TOKEN_BYTES)
        app_token = dapr.declared_env(pod, dapr.APP_TOKEN_ENV) or secrets.token_urlsafe(TOKEN_BYTES)
        p = _Pod(spec, port, site, api_token, app_token)
        self._pods[spec.uid] = p
        self._by_port[port] = p
        if spec.app_port:
            p.subscribe_task = self._spawn(self._load_subscriptions(p))
        log.info("sidecar of %s/%s (app-id %s) on %s:%d", spec.namespace, spec.pod,
                 spec.app_id, HOST, port)  # fmt: skip

    async def close(self, uid: str) -> None:
        """Close the sidecar of pod ``uid`` (after its containers stopped); no-op if none."""
        p = self._pods.pop(uid, None)
        if p is None:
            return
        self._by_port.pop(p.port, None)
        if p.subscribe_task is not None:
            p.subscribe_task.cancel()
        with contextlib.suppress(Exception):
            await p.runner_site.stop()

    def env(self, uid: str) -> dict[str, str]:
        """What pod ``uid``'s containers find in their environment ({}: no sidecar)."""
        p = self._pods.get(uid)
        if p is None:
            return {}
        return {
            "DAPR_HTTP_PORT": str(p.port),
            "DAPR_HTTP_ENDPOINT": f"http://{HOST}:{p.port}",
            "APP_ID": p.spec.app_id,
            dapr.API_TOKEN_ENV: p.api_token,
            dapr.APP_TOKEN_ENV: p.app_token,
        }

    def port(self, uid: str) -> int | None:
        p = self._pods.get(uid)
        return None if p is None else p.port

    def _inc(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    # ---------------------------------------------------------------- routing

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        p = self._by_port.get(sockname[1]) if sockname else None
        if p is None:  # the pod ended while this keep-alive connection stayed open
            return _error(DaprError(404, "ERR_NOT_FOUND", "this sidecar is closed"))
        self._inc("requests")
        if not dapr.token_exempt(request.method, request.rel_url.raw_path):
            given = request.headers.get(dapr.TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), p.api_token.encode()):
                self._inc("errors_401")
                return web.Response(
                    status=401, text=dapr.UNAUTHORIZED_TEXT, content_type="text/plain"
                )
        try:
            return await self._route(request, p)
        except DaprError as e:
            self._inc(f"errors_{e.status}")
            return _error(e)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:
            log.exception("sidecar handler failed")
            return _error(DaprError(500, "ERR_INTERNAL", f"internal error: {e}"))

    async def _route(self, request: web.Request, p: _Pod) -> web.StreamResponse:
        raw = request.rel_url.raw_path
        segs = raw.split("/")[1:]
        m = request.method
        if segs[:1] == [API_VERSION] and len(segs) >= 2:
            what = segs[1]
            if what == "state" and len(segs) >= 3:
                return await self._state(request, p, [unquote(s) for s in segs[2:]])
            if what == "invoke" and len(segs) >= 5 and segs[3] == "method":
                method = "/".join(segs[4:])
                return await self._invoke(request, p, unquote(segs[2]), method)
            if what == "metadata":
                return await self._metadata(request, p, segs[2:])
            if what == "publish" and len(segs) >= 3:
                return await self._publish(request, p, [unquote(x) for x in segs[2:]])
            if what == "healthz" and segs[2:] in ([], ["outbound"]):
                if m not in ("GET", "HEAD"):
                    raise dapr.method_not_allowed(m, raw)
                return web.Response(status=204)
        if segs[:2] == ["v1.0-alpha1", "state"] and len(segs) >= 4 and segs[3] == "query":
            store = self._store(unquote(segs[2]))
            raise dapr.query_not_supported(store.name)
        target = request.headers.get("dapr-app-id")
        if target:
            return await self._invoke(request, p, target, raw.lstrip("/"))
        raise dapr.not_found(raw)

    # ------------------------------------------------------------------ state

    def _store(self, name: str) -> EventualStore:
        store = self.stores.get(name)
        if store is None:
            raise dapr.store_not_found(name)
        return store

    def _strong_of(self, p: _Pod) -> StrongState | None:
        """The Raft store behind ``statestore`` for pod ``p`` (None: the eventual one)."""
        if self._strong_for is None:
            return None
        return self._strong_for(p.spec.namespace, p.spec.pod)

    async def _state(self, request: web.Request, p: _Pod, rest: list[str]) -> web.Response:
        m = request.method
        store = self._store(rest[0])
        if rest[0] == DEFAULT_STORE:
            strong = self._strong_of(p)
            if strong is not None:
                return await self._strong_state(request, p, strong, rest)
        ns, app = p.spec.namespace, p.spec.app_id
        if len(rest) == 1:
            if m != "POST":
                raise dapr.method_not_allowed(m, request.path)
            store.save(ns, app, parse_save(await request.read()))
            return web.Response(status=204)
        if len(rest) == 2 and m == "POST" and rest[1] == "bulk":
            out = []
            for it in store.bulk_get(ns, app, parse_bulk(await request.read())):
                if isinstance(it, str):
                    out.append({"key": it})
                else:
                    out.append({"key": it.key, "data": json.loads(it.data), "etag": it.etag})
            return web.json_response(out)
        if len(rest) == 2 and m == "POST" and rest[1] == "transaction":
            raise dapr.transactions_not_supported(store.name)
        key = "/".join(rest[1:])
        if m == "GET":
            item = store.get(ns, app, key)
            if item is None:
                return web.Response(status=204)
            return web.Response(
                status=200,
                body=item.data,
                content_type="application/json",
                headers={"ETag": item.etag},
            )
        if m == "DELETE":
            etag = request.headers.get("If-Match")
            concurrency = request.query.get("concurrency") or "last-write"
            store.delete(ns, app, key, etag, concurrency)
            return web.Response(status=204)
        raise dapr.method_not_allowed(m, request.path)

    async def _strong_state(
        self, request: web.Request, p: _Pod, strong: StrongState, rest: list[str]
    ) -> web.Response:
        """``statestore`` of a strong workload: its Raft group's key-value store. A save
        of several items writes them one after another (each is linearizable; the
        request is not atomic, as with Dapr's non-transactional stores)."""
        m, app = request.method, p.spec.app_id
        code = {"GET": "ERR_STATE_GET", "DELETE": "ERR_STATE_DELETE"}.get(m, "ERR_STATE_SAVE")
        try:
            if len(rest) == 1:
                if m != "POST":
                    raise dapr.method_not_allowed(m, request.path)
                for it in parse_save(await request.read()):
                    version = expected_version(code, it.etag, it.concurrency)
                    value = encode_value(it.key, it.value)
                    await strong.put(strong_key(app, it.key), value, version)
                return web.Response(status=204)
            if len(rest) == 2 and m == "POST" and rest[1] == "bulk":
                code = "ERR_STATE_GET"
                out: list[dict[str, Any]] = []
                for k in parse_bulk(await request.read()):
                    item = await strong.get(strong_key(app, k))
                    if item is None:
                        out.append({"key": k})
                    else:
                        data = json.loads(item.value)
                        out.append({"key": k, "data": data, "etag": str(item.version)})
                return web.json_response(out)
            if len(rest) == 2 and m == "POST" and rest[1] == "transaction":
                raise dapr.transactions_not_supported(DEFAULT_STORE)
            key = strong_key(app, "/".join(rest[1:]))
            if m == "GET":
                item = await strong.get(key)
                if item is None:
                    return web.Response(status=204)
                return web.Response(
                    status=200,
                    body=item.value,
                    content_type="application/json",
                    headers={"ETag": str(item.version)},
                )
            if m == "DELETE":
                concurrency = request.query.get("concurrency") or LAST_WRITE
                if concurrency not in CONCURRENCY:
                    raise dapr.malformed(f"concurrency must be one of {CONCURRENCY}")
                version = expected_version(code, request.headers.get("If-Match"), LAST_WRITE)
                await strong.delete(key, version)
                return web.Response(status=204)
            raise dapr.method_not_allowed(m, request.path)
        except VersionConflict as e:
            raise dapr.etag_mismatch(code, str(e)) from None
        except KvError as e:
            raise dapr.malformed(str(e)) from None
        except StrongStateError as e:
            raise dapr.store_failed(code, DEFAULT_STORE, str(e)) from None

    # --------------------------------------------------------------- metadata

    async def _metadata(self, request: web.Request, p: _Pod, rest: list[str]) -> web.Response:
        m = request.method
        if not rest and m == "GET":
            strong = self._strong_of(p) is not None
            components = [
                {
                    "name": s.name,
                    "type": STRONG_STORE_TYPE
                    if strong and s.name == DEFAULT_STORE
                    else EVENTUAL_STORE_TYPE,
                    "version": "v1",
                    "capabilities": ["ETAG"],
                }  # fmt: skip
                for s in self.stores.values()
            ]
            components.append(
                {
                    "name": pubsub.DEFAULT_PUBSUB,
                    "type": pubsub.COMPONENT_TYPE,
                    "version": "v1",
                    "capabilities": [],
                }  # fmt: skip
            )
            subscriptions = [
                {
                    "pubsubname": sub.pubsub,
                    "topic": sub.topic,
                    "metadata": {},
                    "rules": [{"match": "", "path": sub.route}],
                    "deadLetterTopic": "",
                    "type": "PROGRAMMATIC",
                }
                for sub in p.subscriptions or []
            ]
            return web.json_response(
                {
                    "id": p.spec.app_id,
                    "runtimeVersion": f"hyperion-{self.version}",
                    "enabledFeatures": [],
                    "actors": [],
                    "components": components,
                    "httpEndpoints": [],
                    "subscriptions": subscriptions,
                    "extended": {
                        **p.extended,
                        "namespace": p.spec.namespace,
                        "pod": p.spec.pod,
                        "node": self.node_name,
                    },
                    "appConnectionProperties": {
                        "port": p.spec.app_port,
                        "protocol": "http",
                        "channelAddress": HOST,
                    },
                }
            )
        if len(rest) == 1 and rest[0] and m == "PUT":
            p.extended[unquote(rest[0])] = (await request.read()).decode("utf-8", "replace")
            return web.Response(status=204)
        raise dapr.method_not_allowed(m, request.path)

    # ------------------------------------------------------------- invocation

    async def _invoke(
        self, request: web.Request, p: _Pod, target_text: str, method: str
    ) -> web.StreamResponse:
        target = dapr.invoke_target(target_text, p.spec.namespace)
        if target is None:
            raise dapr.direct_invoke(target_text, "not a valid app-id or app-id.namespace")
        app_id, ns = target
        chosen = invoke.choose(
            invoke.targets(self._pods_in(ns), app_id, ns), self.node_name, self._rng
        )
        if chosen is None:
            raise dapr.direct_invoke(
                app_id, f"no running replica of app {app_id} in namespace {ns}"
            )
        body = await request.read()
        headers = invoke.passed_headers(request.headers.items())
        ours = (
            "dapr-app-id",
            dapr.TOKEN_HEADER,  # the caller's token stays here (as daprd drops it)
            invoke.CALLER_APP_ID,
            invoke.CALLER_NAMESPACE,
            invoke.CALLEE_APP_ID,
        )
        headers = [(k, v) for k, v in headers if k.lower() not in ours]  # never the app's
        headers += [
            (invoke.CALLER_APP_ID, p.spec.app_id),
            (invoke.CALLER_NAMESPACE, p.spec.namespace),
            (invoke.CALLEE_APP_ID, app_id),
        ]
        query = request.rel_url.raw_query_string
        try:
            if chosen.node == self.node_name:
                self._inc("invoke_local")
                return await self._call_app(chosen, request.method, method, query, headers, body)
            self._inc("invoke_forwarded")
            return await self._forward(chosen, request.method, method, query, headers, body)
        except _Unreachable as e:
            raise dapr.direct_invoke(app_id, str(e)) from None

    async def _relay(self, upstream: aiohttp.ClientResponse) -> web.Response:
        data = await upstream.read()
        resp = web.Response(status=upstream.status, body=data)
        for k, v in invoke.passed_headers(upstream.headers.items()):
            resp.headers.add(k, v)
        return resp

    async def _call_app(
        self,
        t: invoke.Target,
        verb: str,
        method: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> web.Response:
        """Call the app of pod ``t``, which runs on this node."""
        assert self._session is not None
        if t.app_port == 0:
            raise _Unreachable(f"pod {t.namespace}/{t.pod} declares no dapr.io/app-port")
        port = self._host_port(t.uid, t.app_port) or t.app_port
        headers = [(k, v) for k, v in headers if k.lower() != dapr.TOKEN_HEADER]
        callee = self._pods.get(t.uid)
        if callee is not None:
            headers.append((dapr.TOKEN_HEADER, callee.app_token))
        url = f"http://{HOST}:{port}/{method}" + (f"?{query}" if query else "")
        try:
            async with self._session.request(
                verb, URL(url, encoded=True), headers=headers, data=body
            ) as upstream:
                return await self._relay(upstream)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise _Unreachable(
                f"app of pod {t.namespace}/{t.pod} at {HOST}:{port}: {e or type(e).__name__}"
            ) from None

    async def _forward(
        self,
        t: invoke.Target,
        verb: str,
        method: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> web.Response:
        """Send the call to the node that runs ``t`` (its API, mutual TLS)."""
        assert self._session is not None
        peer = self._peer_api(t.node)
        if peer is None:
            raise _Unreachable(f"the API of node {t.node} is not known")
        addr, ctx = peer
        url = f"https://{addr}{invoke.forward_path(t.namespace, t.pod, method)}"
        url += f"?{query}" if query else ""
        try:
            async with self._session.request(
                verb, URL(url, encoded=True), headers=headers, data=body, ssl=ctx
            ) as upstream:
                if upstream.headers.get(invoke.FORWARD_ERROR):
                    raise _Unreachable(await upstream.text())
                return await self._relay(upstream)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise _Unreachable(f"node {t.node} at {addr}: {e or type(e).__name__}") from None

    async def serve_forwarded(self, request: web.Request) -> web.StreamResponse:
        """A call forwarded by another node's sidecar (already authenticated as a node by
        the API server): call the app of the named pod, which must run here."""

        def failed(status: int, message: str) -> web.Response:
            self._inc("forwarded_failed")
            return web.Response(status=status, text=message, headers={invoke.FORWARD_ERROR: "1"})

        parsed = invoke.parse_forward_path(request.rel_url.raw_path)
        if parsed is None:
            return failed(404, "malformed sidecar path")
        ns, name, method = parsed
        pod = next(
            (o for o in self._pods_in(ns) if (o.get("metadata") or {}).get("name") == name), None
        )
        if pod is None or (pod.get("spec") or {}).get("nodeName") != self.node_name:
            return failed(404, f"pod {ns}/{name} does not run on node {self.node_name}")
        try:
            spec = sidecar_spec(pod)
        except dapr.SidecarConfigError as e:
            return failed(404, str(e))
        if spec is None or not invoke.serving(pod):
            return failed(404, f"pod {ns}/{name} serves no app")
        t = invoke.Target(ns, name, spec.uid, self.node_name, spec.app_port)
        self._inc("forwarded_served")
        body = await request.read()
        headers = invoke.passed_headers(request.headers.items())
        try:
            return await self._call_app(
                t, request.method, method, request.rel_url.raw_query_string, headers, body
            )
        except _Unreachable as e:
            return failed(502, str(e))

    # ---------------------------------------------------------------- pub/sub

    async def _publish(self, request: web.Request, p: _Pod, rest: list[str]) -> web.Response:
        if request.method != "POST":
            raise dapr.method_not_allowed(request.method, request.path)
        name = rest[0]
        if name != pubsub.DEFAULT_PUBSUB:
            raise DaprError(400, "ERR_PUBSUB_NOT_FOUND", f"pubsub {name} not found")
        topic = "/".join(rest[1:])
        if not topic:
            raise DaprError(404, "ERR_TOPIC_NAME_EMPTY", f"topic is empty in pubsub {name}")
        err = pubsub.topic_error(topic)
        if err is not None:
            raise dapr.malformed(err)
        body = await request.read()
        msg_id = str(uuid.uuid4())
        if pubsub.metadata_flag(request.query, "rawPayload"):
            event = pubsub.raw_event(event_id=msg_id, pubsub=name, topic=topic, data=body)
        else:
            event = pubsub.cloud_event(
                event_id=msg_id,
                source=p.spec.app_id,
                pubsub=name,
                topic=topic,
                data=body,
                content_type=request.headers.get("Content-Type", ""),
                time_rfc3339=datetime.now(UTC).isoformat(timespec="milliseconds"),
            )
        obj = {"name": msg_id, **pubsub.message_object(name, topic, event)}
        try:
            self._replica.write(pubsub.message_key(p.spec.namespace, msg_id), obj)
        except ValueError as e:
            raise DaprError(
                500, "ERR_PUBSUB_PUBLISH_MESSAGE", f"error when publish to topic {topic}: {e}"
            ) from None
        self._inc("published")
        return web.Response(status=204)

    async def _app_request(
        self, p: _Pod, verb: str, path: str, body: bytes, content_type: str | None, timeout: float
    ) -> tuple[int, bytes]:
        """One call of the sidecar itself to pod ``p``'s app (here); raises _Unreachable."""
        assert self._session is not None
        port = self._host_port(p.spec.uid, p.spec.app_port) or p.spec.app_port
        headers = {dapr.TOKEN_HEADER: p.app_token}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            async with self._session.request(
                verb,
                f"http://{HOST}:{port}{path}",
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=CONNECT_TIMEOUT_S),
            ) as r:
                return r.status, await r.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise _Unreachable(f"{HOST}:{port}: {e or type(e).__name__}") from None

    async def _load_subscriptions(self, p: _Pod) -> None:
        """Ask the app for ``GET /dapr/subscribe`` until it answers (it starts after the
        sidecar opens), then deliver what is waiting for it."""
        wait_s = 0.05
        while self._pods.get(p.spec.uid) is p:
            try:
                status, body = await self._app_request(p, "GET", "/dapr/subscribe", b"", None, 5.0)
            except _Unreachable:
                await asyncio.sleep(wait_s)
                wait_s = min(SUBSCRIBE_POLL_S_MAX, wait_s * 2)
                continue
            subs: list[Subscription] = []
            if status == 200:
                try:
                    subs = pubsub.parse_subscriptions(body)
                except ValueError as e:
                    log.warning("pod %s/%s: %s", p.spec.namespace, p.spec.pod, e)
            p.subscriptions = [s for s in subs if s.pubsub == pubsub.DEFAULT_PUBSUB]
            if p.subscriptions:
                log.info("pod %s/%s subscribes to %s", p.spec.namespace, p.spec.pod,
                         [s.topic for s in p.subscriptions])  # fmt: skip
            self._reconcile()
            return

    async def _pubsub_loop(self) -> None:
        """Reconcile when messages change and every ``RESCAN_S`` (replicas come and go)."""
        loop = asyncio.get_running_loop()
        rv = self._replica.rv
        last = loop.time()
        while True:
            await self._replica.wait_newer(rv, pubsub.RESCAN_S)
            try:
                changes = self._replica.changes_since(rv)
            except Exception:  # history trimmed: rescan everything
                changes = []
                last = 0.0
            rv = self._replica.rv
            touched = any(c.key[0] == pubsub.MESSAGES for c in changes)
            if touched or loop.time() - last >= pubsub.RESCAN_S:
                last = loop.time()
                try:
                    self._reconcile()
                except Exception:
                    log.exception("pub/sub reconcile failed")

    def _acked(self, ns: str, msg_id: str, app_id: str) -> bool:
        e = self._replica.entry(pubsub.ack_key(ns, msg_id, app_id))
        return e is not None and e.obj is not None

    def _chosen_here(
        self, ns: str, msg_id: str, app_id: str, replicas: list[invoke.Target] | None = None
    ) -> _Pod | None:
        """This node's pod chosen for ``msg_id`` of ``app_id`` (None: elsewhere or none),
        among ``replicas`` (default: the app-id's replicas as the catalog shows them)."""
        if replicas is None:
            replicas = invoke.targets(self._pods_in(ns), app_id, ns)
        chosen = pubsub.chosen_replica(msg_id, replicas)
        if chosen is None or chosen.node != self.node_name:
            return None
        return self._pods.get(chosen.uid)

    def _reconcile(self) -> None:
        """Start a delivery for each live, unacked message that this node's pods'
        subscriptions want and whose chosen replica runs here."""
        wanted: dict[str, dict[tuple[str, str], set[str]]] = {}  # ns -> (ps, topic) -> ids
        for p in self._pods.values():
            for sub in p.subscriptions or []:
                by_topic = wanted.setdefault(p.spec.namespace, {})
                by_topic.setdefault((sub.pubsub, sub.topic), set()).add(p.spec.app_id)
        for ns, by_topic in wanted.items():
            pods = self._pods_in(ns)  # once per namespace, not per message
            replicas = {
                app_id: invoke.targets(pods, app_id, ns)
                for app_ids in by_topic.values()
                for app_id in app_ids
            }
            for obj in self._replica.list(pubsub.MESSAGES, ns):
                msg_id = str(obj.get("name") or "")
                apps = by_topic.get((str(obj.get("pubsub")), str(obj.get("topic"))), set())
                for app_id in sorted(apps):
                    k = (ns, msg_id, app_id)
                    if k in self._inflight or self._acked(*k):
                        continue
                    chosen = self._chosen_here(*k, replicas[app_id])
                    if chosen is not None and chosen.subscriptions:
                        self._inflight.add(k)
                        self._spawn(self._deliver(k))

    async def _deliver(self, k: tuple[str, str, str]) -> None:
        ns, msg_id, app_id = k
        try:
            for attempt in range(1, pubsub.MAX_ATTEMPTS + 1):
                entry = self._replica.entry(pubsub.message_key(ns, msg_id))
                if entry is None or entry.obj is None or self._acked(*k):
                    return  # expired, or delivered by another node
                p = self._chosen_here(*k)
                sub = next(
                    (s for s in (p.subscriptions or []) if s.topic == entry.obj.get("topic")),
                    None,
                ) if p is not None else None  # fmt: skip
                if p is None or sub is None:
                    return  # another replica's now: its node's rescan takes it
                body = json.dumps(entry.obj.get("event")).encode()
                try:
                    status, answer = await self._app_request(
                        p, "POST", sub.route, body, pubsub.CLOUDEVENTS_JSON, APP_CALL_TIMEOUT_S
                    )
                    result = pubsub.outcome(status, answer)
                except _Unreachable:
                    result = pubsub.RETRY
                self._inc(f"delivered_{result.lower()}")
                if result != pubsub.RETRY:
                    self._ack(k, result)
                    return
                await asyncio.sleep(pubsub.backoff_s(attempt))
            log.warning("pub/sub: message %s to %s/%s dropped after %d attempts", msg_id, ns,
                        app_id, pubsub.MAX_ATTEMPTS)  # fmt: skip
            self._ack(k, "EXHAUSTED")
        finally:
            self._inflight.discard(k)

    def _ack(self, k: tuple[str, str, str], result: str) -> None:
        ns, msg_id, app_id = k
        obj = {"message": msg_id, "app": app_id, "node": self.node_name, "outcome": result}
        self._replica.write(pubsub.ack_key(ns, msg_id, app_id), obj)
