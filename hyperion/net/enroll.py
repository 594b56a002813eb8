"""Enrollment and renewal over the network: the gRPC services and their client side.

* ``start_enrollment_server``: the enrollment port of a node that holds the CA. TLS with
  server authentication only, serving ``Enrollment.Enroll`` and nothing else: gRPC asks
  for a client certificate per port, not per method, and a joiner has none yet. The TLS
  chain it sends holds the CA certificate, so a joiner can check it against its pin.
* ``RenewalServicer``: ``Renewal.Renew`` on the mesh port (mutual TLS): a node renews
  its SVID with its current one, for the same SPIFFE ID, without a token.
* ``enroll`` and ``renew``: the joiner's side. ``enroll`` learns the server's chain with
  a bare TLS handshake, pins the CA by hash, then calls ``Enroll`` over a channel that
  trusts only the pinned CA: the token leaves the machine only to a server that CA
  certified.

Owns sockets, TLS, request limits and the token buckets that rate-limit both services.
What is accepted is decided in ``hyperion.identity.enroll``; tokens are redeemed by
``hyperion.identity.tokens`` (single use, expiry, flock), exactly as a local join does.
``Renew`` refuses what mutual TLS and the SPIFFE ID check refuse (other trust domains,
expired SVIDs, non-node identities) and, with the issuer's ``RevocationList``, a revoked
SPIFFE ID or certificate; ``Enroll`` refuses a node key whose SPIFFE ID is revoked
(before its token is redeemed).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from dataclasses import dataclass

import grpc
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError

from hyperion.identity.ca import CertificateAuthority, Svid, trust_domain_of_ca
from hyperion.identity.enroll import (
    EnrollClaim,
    check_enroll_request,
    check_issued,
    check_ttl,
    csr_public_key,
    make_csr,
    node_key_proof,
    pin_ca,
)
from hyperion.identity.errors import EnrollError, IdentityError, TokenError
from hyperion.identity.keys import NodeKey
from hyperion.identity.revocation import RevocationList
from hyperion.identity.spiffe import node_spiffe_id
from hyperion.identity.tokens import redeem_token
from hyperion.net import wire_pb2, wire_pb2_grpc
from hyperion.net.transport import (
    TLS_NAME,
    Counters,
    CredentialStore,
    peer_identity,
    peer_revoked,
    start_secure,
)

log = logging.getLogger("hyperion.enroll")

ENROLL_SERVICE = "hyperion.wire.v1.Enrollment"
# An EnrollRequest is ~450 bytes (a 32-byte key, a ~250-byte CSR, a 64-byte proof, a
# 48-character token); this leaves room for the field limits in identity/enroll.py.
ENROLL_REQUEST_BYTES_MAX = 16 << 10
ENROLL_CONCURRENT_MAX = 16  # RPCs in flight on the enrollment port; more are refused
# Token buckets. Tokens carry 256 random bits, so the limits bound the issuer's work
# (a flock, an fsync, a signature per request), not guessing. 1,000 nodes with 1 h SVIDs
# renew ~0.6 times a second; a mass join of hundreds takes tens of seconds.
ENROLL_RATE_PER_S = 20.0
ENROLL_BURST = 40
RENEW_RATE_PER_S = 50.0
RENEW_BURST = 200
# The names on every node SVID, as on a locally issued one: identity is the SPIFFE ID.
SVID_DNS_NAMES = ("localhost", TLS_NAME)
SVID_IP_ADDRESSES = ("127.0.0.1",)
CONNECT_TIMEOUT_S = 10.0


class TokenBucket:
    """``rate_per_s`` requests a second on average, ``burst`` at once; time comes in."""

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate_per_s)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


@dataclass
class Issuer:
    """What a CA-holding node needs to issue node SVIDs over the network.

    ``max_ttl_s`` caps what a joiner may ask for (the node's own ``--svid-ttl``);
    ``renew_port`` is the mesh port, told to joiners so they know where to renew.
    """

    ca: CertificateAuthority
    max_ttl_s: float
    counters: Counters
    renew_port: int = 0
    enroll_rate_per_s: float = ENROLL_RATE_PER_S
    enroll_burst: int = ENROLL_BURST
    revocations: RevocationList | None = None  # identities it must not issue for

    def __post_init__(self) -> None:
        now = time.monotonic()
        self.enroll_bucket = TokenBucket(self.enroll_rate_per_s, self.enroll_burst, now)
        self.renew_bucket = TokenBucket(RENEW_RATE_PER_S, RENEW_BURST, now)

    def issue(self, spiffe_id: str, key: ec.EllipticCurvePublicKey, ttl_s: float) -> bytes:
        """A node SVID (PEM) for ``key``; blocking (a signature), callers use a thread."""
        return self.ca.issue_for_key(
            spiffe_id,
            key,
            ttl_s=ttl_s,
            dns_names=SVID_DNS_NAMES,
            ip_addresses=SVID_IP_ADDRESSES,
        )

    def _redeem_and_issue(self, token: str, claim: EnrollClaim, ttl_s: float) -> bytes:
        redeem_token(self.ca.ca_dir, token)
        return self.issue(claim.spiffe_id(self.ca.trust_domain), claim.public_key, ttl_s)

    async def refuse(
        self, context: grpc.aio.ServicerContext, code: grpc.StatusCode, what: str, msg: str
    ) -> None:
        """End the RPC with ``code`` and ``msg``, counted as ``<what>_refused``; raises."""
        self.counters.inc(f"{what}_refused")
        log.warning("%s from %s refused: %s", what, context.peer(), msg)
        await context.abort(code, msg)

    async def enroll(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> wire_pb2.EnrollReply:
        """``Enrollment.Enroll`` (raw bytes in, so a malformed message gets a clear error)."""
        if not self.enroll_bucket.take(time.monotonic()):
            await self.refuse(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "enroll",
                "too many enrollment requests; retry in a few seconds",
            )
        try:
            req = wire_pb2.EnrollRequest.FromString(request)
        except DecodeError:
            await self.refuse(
                context, grpc.StatusCode.INVALID_ARGUMENT, "enroll", "malformed EnrollRequest"
            )
        try:
            claim = check_enroll_request(
                token=req.token,
                name=req.name,
                node_key=req.node_key,
                csr=req.csr,
                proof=req.node_key_proof,
            )
            ttl_s = check_ttl(req.ttl_s, self.max_ttl_s)
        except EnrollError as e:
            await self.refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "enroll", str(e))
        wanted = claim.spiffe_id(self.ca.trust_domain)
        if self.revocations is not None and self.revocations.revoked(wanted) is not None:
            await self.refuse(
                context, grpc.StatusCode.PERMISSION_DENIED, "enroll", f"{wanted} is revoked"
            )
        try:
            # A flock, an fsync and a signature: off the event loop that runs the mesh.
            cert = await asyncio.to_thread(self._redeem_and_issue, req.token, claim, ttl_s)
        except TokenError as e:
            await self.refuse(context, grpc.StatusCode.PERMISSION_DENIED, "enroll", str(e))
        except IdentityError as e:
            await self.refuse(context, grpc.StatusCode.FAILED_PRECONDITION, "enroll", str(e))
        self.counters.inc("enrollments")
        log.info(
            "enrolled node %s as %s from %s",
            claim.name,
            claim.spiffe_id(self.ca.trust_domain),
            context.peer(),
        )
        return wire_pb2.EnrollReply(
            svid=cert, bundle=self.ca.bundle_pem, renew_port=self.renew_port
        )


class RenewalServicer(wire_pb2_grpc.RenewalServicer):
    """``Renewal.Renew`` on the mesh port: a new SVID for the caller's own node SPIFFE ID."""

    def __init__(self, issuer: Issuer) -> None:
        self._issuer = issuer

    async def Renew(  # noqa: N802 (gRPC method name)
        self, request: wire_pb2.RenewRequest, context: grpc.aio.ServicerContext
    ) -> wire_pb2.RenewReply:
        issuer = self._issuer
        if not issuer.renew_bucket.take(time.monotonic()):
            await issuer.refuse(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "renew",
                "too many renewal requests; retry in a few seconds",
            )
        td = issuer.ca.trust_domain
        sid = peer_identity(context, td)
        if sid is None or sid.kind != "node":
            await issuer.refuse(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                "renew",
                f"renewal needs the node SVID of a node of trust domain {td}",
            )
        assert sid is not None
        if peer_revoked(context, issuer.revocations):
            await issuer.refuse(
                context, grpc.StatusCode.PERMISSION_DENIED, "renew", f"{sid} is revoked"
            )
        try:
            key = csr_public_key(request.csr)
            ttl_s = check_ttl(request.ttl_s, issuer.max_ttl_s)
        except EnrollError as e:
            await issuer.refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "renew", str(e))
        spiffe_id = node_spiffe_id(td, sid.name)
        try:
            cert = await asyncio.to_thread(issuer.issue, spiffe_id, key, ttl_s)
        except IdentityError as e:
            await issuer.refuse(context, grpc.StatusCode.FAILED_PRECONDITION, "renew", str(e))
        issuer.counters.inc("renewals_issued")
        return wire_pb2.RenewReply(svid=cert, bundle=issuer.ca.bundle_pem)


async def start_enrollment_server(
    listen: str, creds: CredentialStore, issuer: Issuer
) -> tuple[grpc.aio.Server, int]:
    """Serve ``Enrollment.Enroll`` alone on ``listen`` (TLS, no client certificate)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", ENROLL_REQUEST_BYTES_MAX),
            ("grpc.max_send_message_length", ENROLL_REQUEST_BYTES_MAX),
        ],
        maximum_concurrent_rpcs=ENROLL_CONCURRENT_MAX,
    )
    handler = grpc.method_handlers_generic_handler(
        ENROLL_SERVICE,
        {
            "Enroll": grpc.unary_unary_rpc_method_handler(
                issuer.enroll,
                request_deserializer=None,  # bytes: parsed (and refused) by the handler
                response_serializer=wire_pb2.EnrollReply.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    return server, await start_secure(server, listen, creds.server_credentials(client_auth=False))


# ------------------------------------------------------------------------ client side


def split_addr(addr: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) into its parts; EnrollError if it is not one."""
    host, sep, port = addr.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise EnrollError(f"bad address {addr!r}: expected host:port")
    return host, int(port)


def _unverified_chain(tls: ssl.SSLSocket) -> list[bytes]:
    public = getattr(tls, "get_unverified_chain", None)  # Python 3.13+
    if public is not None:
        return [bytes(c) for c in public() or []]
    # Python 3.10-3.12 have the same call on the private object only.
    certs = tls._sslobj.get_unverified_chain() or []  # type: ignore[attr-defined]
    return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in certs]  # type: ignore[attr-defined]


def fetch_chain(addr: str, timeout_s: float = CONNECT_TIMEOUT_S) -> list[bytes]:
    """The certificate chain (DER, leaf first) a TLS server presents, unverified.

    Only the handshake happens: nothing is sent that the pin has not yet vouched for.
    """
    host, port = split_addr(addr)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # checked against the pinned hash by the caller
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as sock,
            ctx.wrap_socket(sock, server_hostname=TLS_NAME) as tls,
        ):
            return _unverified_chain(tls)
    except (OSError, ssl.SSLError) as e:
        raise EnrollError(f"cannot reach the enrollment endpoint {addr}: {e}") from e


def _channel_options() -> list[tuple[str, object]]:
    return [
        ("grpc.ssl_target_name_override", TLS_NAME),
        ("grpc.max_receive_message_length", 1 << 20),
    ]


@dataclass(frozen=True, slots=True)
class Enrolled:
    """What enrollment gives a joiner: its SVID and where to renew it (``host:port``)."""

    svid: Svid
    renew_addr: str


async def enroll(
    addr: str,
    *,
    token: str,
    ca_hash: str,
    name: str,
    node_key: NodeKey,
    ttl_s: float = 0.0,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> Enrolled:
    """Trade ``token`` for an SVID at the enrollment endpoint ``addr``, pinning the CA.

    Raises EnrollError (an IdentityError) with a message for the user; when the CA does
    not match ``ca_hash`` the token has not left this process.
    """
    server = f"the enrollment endpoint {addr}"
    chain = await asyncio.to_thread(fetch_chain, addr, timeout_s)
    ca_pem = pin_ca(chain, ca_hash, server=server, now=time.time())
    key = ec.generate_private_key(ec.SECP256R1())
    csr = make_csr(key)
    request = wire_pb2.EnrollRequest(
        token=token.strip(),
        name=name,
        node_key=node_key.public_bytes,
        csr=csr,
        node_key_proof=node_key_proof(node_key, csr),
        ttl_s=ttl_s,
    )
    # The channel trusts the pinned CA alone: gRPC verifies the server before sending.
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    try:
        async with grpc.aio.secure_channel(addr, creds, options=_channel_options()) as channel:
            reply = await wire_pb2_grpc.EnrollmentStub(channel).Enroll(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as e:
        raise EnrollError(f"{server} refused to enroll node {name}: {e.details()}") from e
    trust_domain = trust_domain_of_ca(ca_pem)
    svid = check_issued(
        reply.svid,
        reply.bundle,
        ca_pem,
        key=key,
        spiffe_id=node_spiffe_id(trust_domain, node_key.node_id),
        now=time.time(),
    )
    host, _ = split_addr(addr)
    if not 0 < reply.renew_port <= 65535:
        raise EnrollError(f"{server} did not say where to renew (port {reply.renew_port})")
    shown = f"[{host}]" if ":" in host else host
    return Enrolled(svid=svid, renew_addr=f"{shown}:{reply.renew_port}")


async def renew(
    addr: str, svid: Svid, *, ttl_s: float = 0.0, timeout_s: float = CONNECT_TIMEOUT_S
) -> Svid:
    """A new SVID for ``svid``'s SPIFFE ID from the issuer's mesh port ``addr``.

    Authenticated by ``svid`` (mutual TLS), so it works only while ``svid`` is valid.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    request = wire_pb2.RenewRequest(csr=make_csr(key), ttl_s=ttl_s)
    creds = grpc.ssl_channel_credentials(svid.bundle_pem, svid.key_pem, svid.cert_pem)
    try:
        async with grpc.aio.secure_channel(addr, creds, options=_channel_options()) as channel:
            reply = await wire_pb2_grpc.RenewalStub(channel).Renew(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as e:
        raise EnrollError(f"renewal at {addr} failed: {e.details()}") from e
    return check_issued(
        reply.svid,
        reply.bundle,
        svid.bundle_pem,
        key=key,
        spiffe_id=svid.spiffe_id,
        now=time.time(),
    )
