"""The real mesh transport: gRPC over TLS 1.3 with mutual authentication.

* Server: one port per node, no plaintext. The TLS handshake requires a client
  certificate chained to the trust-domain CA bundle; anything else is refused before a
  byte of application data. Certificates are served through a fetcher, so a renewed
  SVID is picked up by new handshakes while established connections stay up.
* Every inbound envelope is checked against the connection: the peer's SPIFFE ID must
  be ``spiffe://TD/node/<sender>``, and the envelope must verify (signature, replay
  window) before its body reaches the node. Rejections are counted by reason.
* Continuous authorization: with a ``RevocationList`` the server checks the peer's
  SPIFFE ID and certificate serial against it at every envelope, so a revocation that
  arrives mid-connection ends the stream (``PERMISSION_DENIED``, counted
  ``rejected_revoked``); a reconnect is refused at its first envelope.
* Client: one ``PeerLink`` per destination address with a bounded outbound queue and
  one long-lived client stream; on failure it reconnects with capped exponential
  backoff and jitter. Messages that cannot be queued or are in flight when a stream
  breaks are counted, never dropped silently.

The transport owns sockets and TLS; it does not interpret messages (see ``driver``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography import x509

from hyperion.identity.ca import Svid
from hyperion.identity.errors import IdentityError
from hyperion.identity.revocation import RevocationList
from hyperion.identity.spiffe import SpiffeId, parse_spiffe_id
from hyperion.net import wire_pb2, wire_pb2_grpc
from hyperion.net.envelope import EnvelopeError, Opened, ReplayGuard, verify

PEER_QUEUE_MAX = 1024  # envelopes waiting per peer; a probe round is a few dozen
BACKOFF_INITIAL_S = 0.05
BACKOFF_MAX_S = 2.0
TLS_NAME = "hyperion-node"  # DNS SAN on every node SVID; identity is checked by SPIFFE ID
GRPC_OPTIONS = [
    ("grpc.ssl_target_name_override", TLS_NAME),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.max_receive_message_length", 8 << 20),
]


class Counters:
    """Named monotonic counters (exported by the node's admin API and /metrics later)."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc(self, name: str, n: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + n


class CredentialStore:
    """The node's current SVID, swappable at renewal time."""

    def __init__(self, svid: Svid) -> None:
        self.svid = svid

    def update(self, svid: Svid) -> None:
        self.svid = svid

    def server_credentials(self, *, client_auth: bool = True) -> grpc.ServerCredentials:
        """Credentials serving the current SVID; a renewed one from the next handshake on.

        ``client_auth``: require a client certificate chained to the bundle (every port
        but the enrollment port). Without it the chain sent also holds the bundle, so a
        joiner can compare the CA with its pinned hash (``hyperion.net.enroll``).
        """

        def config(s: Svid) -> grpc.ServerCertificateConfiguration:
            chain = s.cert_pem if client_auth else s.cert_pem + s.bundle_pem
            return grpc.ssl_server_certificate_configuration(
                [(s.key_pem, chain)], root_certificates=s.bundle_pem
            )

        served = [self.svid.cert_pem]  # per credentials object: one per server

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            # Called by gRPC before each handshake: hand over a new config once renewed.
            s = self.svid
            if served[0] == s.cert_pem:
                return None
            served[0] = s.cert_pem
            return config(s)

        return grpc.dynamic_ssl_server_credentials(
            config(self.svid), fetch, require_client_authentication=client_auth
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        s = self.svid
        return grpc.ssl_channel_credentials(s.bundle_pem, s.key_pem, s.cert_pem)


def peer_spiffe_id(context: grpc.aio.ServicerContext) -> str | None:
    ids = context.auth_context().get("peer_spiffe_id") or []
    return ids[0].decode() if len(ids) == 1 else None


def peer_serial(context: grpc.aio.ServicerContext) -> str | None:
    """The serial (lowercase hex) of the TLS-authenticated peer's certificate."""
    pems = context.auth_context().get("x509_pem_cert") or []
    if len(pems) != 1:
        return None
    try:
        return format(x509.load_pem_x509_certificate(pems[0]).serial_number, "x")
    except ValueError:
        return None


def peer_revoked(context: grpc.aio.ServicerContext, revocations: RevocationList | None) -> bool:
    """Whether the peer's SPIFFE ID (or its certificate) is revoked."""
    if revocations is None or not len(revocations):
        return False
    sid = peer_spiffe_id(context)
    return sid is not None and revocations.revoked(sid, peer_serial(context)) is not None


def peer_identity(context: grpc.aio.ServicerContext, trust_domain: str) -> SpiffeId | None:
    """The TLS-authenticated peer's SPIFFE ID, if it is well formed and in our domain."""
    try:
        sid = parse_spiffe_id(peer_spiffe_id(context) or "")
    except IdentityError:
        return None
    return sid if sid.trust_domain == trust_domain else None


InboundHandler = Callable[[Opened], None]


class _MeshServicer(wire_pb2_grpc.MeshServicer):
    def __init__(
        self,
        trust_domain: str,
        guard: ReplayGuard,
        counters: Counters,
        on_envelope: InboundHandler,
        revocations: RevocationList | None = None,
    ) -> None:
        self._td = trust_domain
        self._guard = guard
        self._counters = counters
        self._on_envelope = on_envelope
        self._revocations = revocations

    async def Stream(  # noqa: N802 (gRPC method name)
        self,
        request_iterator: AsyncIterator[wire_pb2.Envelope],
        context: grpc.aio.ServicerContext,
    ) -> wire_pb2.StreamSummary:
        sid = peer_identity(context, self._td)
        peer_node = sid.name if sid is not None and sid.kind == "node" else None
        if peer_node is None:
            self._counters.inc("rejected_peer_not_a_node")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "peer is not a mesh node")
        accepted = rejected = 0
        revocations = self._revocations
        spiffe_id = str(sid)
        serial = peer_serial(context) if revocations is not None else None
        async for env in request_iterator:
            if revocations and revocations.revoked(spiffe_id, serial) is not None:
                self._counters.inc("rejected_revoked")
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{spiffe_id} is revoked")
            if env.sender.hex() != peer_node:
                self._counters.inc("rejected_peer_mismatch")
                rejected += 1
                continue
            try:
                opened = verify(env, now_ms=int(time.time() * 1000), guard=self._guard)
            except EnvelopeError as e:
                self._counters.inc(f"rejected_{e.reason}")
                rejected += 1
                continue
            accepted += 1
            self._counters.inc("envelopes_in")
            self._on_envelope(opened)
        return wire_pb2.StreamSummary(accepted=accepted, rejected=rejected)


async def start_server(
    listen: str,
    creds: CredentialStore,
    trust_domain: str,
    counters: Counters,
    on_envelope: InboundHandler,
    admin: wire_pb2_grpc.AdminServicer | None = None,
    renewal: wire_pb2_grpc.RenewalServicer | None = None,
    revocations: RevocationList | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Start the node's mutual-TLS gRPC server; returns it and the bound port.

    ``renewal`` (``hyperion.net.enroll``) is served by nodes that hold the CA;
    ``revocations``: peers whose identity is in it are refused at every envelope.
    """
    server = grpc.aio.server(options=GRPC_OPTIONS[1:])
    wire_pb2_grpc.add_MeshServicer_to_server(
        _MeshServicer(trust_domain, ReplayGuard(), counters, on_envelope, revocations), server
    )
    if admin is not None:
        wire_pb2_grpc.add_AdminServicer_to_server(admin, server)
    if renewal is not None:
        wire_pb2_grpc.add_RenewalServicer_to_server(renewal, server)
    return server, await start_secure(server, listen, creds.server_credentials())


async def start_secure(
    server: grpc.aio.Server, listen: str, credentials: grpc.ServerCredentials
) -> int:
    """Bind ``server`` to ``listen`` with TLS ``credentials`` and start it; return the
    bound port. OSError if the address cannot be bound."""
    try:
        port = server.add_secure_port(listen, credentials)
    except RuntimeError:  # grpc reports bind failures this way
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {listen}: address in use or not available")
    await server.start()
    return port


@dataclass
class _Backoff:
    delay_s: float = BACKOFF_INITIAL_S

    def next(self, rng: random.Random) -> float:
        d = self.delay_s * (0.5 + rng.random())
        self.delay_s = min(self.delay_s * 2, BACKOFF_MAX_S)
        return d

    def reset(self) -> None:
        self.delay_s = BACKOFF_INITIAL_S


class PeerLink:
    """A bounded queue and one client stream to one peer address, reconnecting as needed."""

    def __init__(self, addr: str, creds: CredentialStore, counters: Counters) -> None:
        self.addr = addr
        self._creds = creds
        self._counters = counters
        self._queue: asyncio.Queue[wire_pb2.Envelope] = asyncio.Queue(PEER_QUEUE_MAX)
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()
        self.connects = 0
        self.last_used = time.monotonic()

    def send(self, env: wire_pb2.Envelope) -> bool:
        self.last_used = time.monotonic()
        if self._task is None or self._task.done():  # a link never stays dead
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            self._queue.put_nowait(env)
        except asyncio.QueueFull:
            self._counters.inc("dropped_queue_full")
            return False
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        pending = self._queue.qsize()
        if pending:
            self._counters.inc("dropped_on_close", pending)

    async def _run(self) -> None:
        backoff = _Backoff()
        while True:
            channel = grpc.aio.secure_channel(
                self.addr, self._creds.channel_credentials(), options=GRPC_OPTIONS
            )
            try:
                stub = wire_pb2_grpc.MeshStub(channel)
                call = stub.Stream()
                self.connects += 1
                if self.connects > 1:
                    self._counters.inc("reconnects")
                while True:
                    env = await self._queue.get()
                    try:
                        await call.write(env)
                    except BaseException:
                        self._counters.inc("dropped_on_error")
                        raise
                    self._counters.inc("envelopes_out")
                    backoff.reset()
            except asyncio.CancelledError:
                await channel.close(grace=None)
                raise
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError, OSError):
                # InvalidStateError: the call failed (peer unreachable) before our write
                self._counters.inc("send_errors")
            await channel.close(grace=None)
            await asyncio.sleep(backoff.next(self._rng))


class Transport:
    """All outbound links of one node, created on first use per address."""

    def __init__(self, creds: CredentialStore, counters: Counters) -> None:
        self._creds = creds
        self._counters = counters
        self._links: dict[str, PeerLink] = {}

    def send(self, addr: str, env: wire_pb2.Envelope) -> bool:
        link = self._links.get(addr)
        if link is None:
            link = self._links[addr] = PeerLink(addr, self._creds, self._counters)
        return link.send(env)

    def forget(self, addr: str) -> None:
        """Close the link to ``addr`` (its member died); a later send reopens it."""
        link = self._links.pop(addr, None)
        if link is not None:
            asyncio.get_running_loop().create_task(link.close())

    def links(self) -> dict[str, PeerLink]:
        return self._links

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self._links.values()))
        self._links.clear()


async def call_admin(
    addr: str, svid: Svid, method: str, timeout_s: float = 5.0, request: Any = None
) -> Any:
    """The CLI side of the admin API (authenticated with a user SVID).

    ``method`` is "Members", "Nodes", "Locate" or "Revoke" (which need their ``request``); returns
    the reply message.
    """
    requests = {"Members": wire_pb2.MembersRequest, "Nodes": wire_pb2.NodesRequest}
    creds = grpc.ssl_channel_credentials(svid.bundle_pem, svid.key_pem, svid.cert_pem)
    async with grpc.aio.secure_channel(addr, creds, options=GRPC_OPTIONS) as channel:
        stub = wire_pb2_grpc.AdminStub(channel)
        if request is None:
            request = requests[method]()
        return await getattr(stub, method)(request, timeout=timeout_s)
