"""The SPIFFE Workload API of one node (X.509-SVID profile) on a local Unix socket.

Owns ``DIR/nodes/NAME/workload.sock`` (mode 0600 in the node's 0700 directory), the
gRPC service behind it (``FetchX509SVID``, ``FetchX509Bundles``; the vendored
``workload.proto``), attesting the calling process, and the workload SVIDs this node
issues and caches. It never listens on TCP: together with the sidecar it is the only
plaintext endpoint, and the kernel, not the network, says who is calling. Pods learn
the socket from ``SPIFFE_ENDPOINT_SOCKET`` (set by the process runtime), the variable
SPIFFE libraries (go-spiffe, py-spiffe, java-spiffe) read.

Theory of operation (SPIFFE Workload Endpoint and Workload API specifications):

* Every RPC must carry the metadata ``workload.spiffe.io: true``, else
  ``InvalidArgument`` (it keeps a browser or SSRF from reaching the endpoint).
* Attestation by peer credentials. gRPC's Python server does not expose the client's
  socket, so the public socket is served by a small relay: per accepted connection it
  reads ``SO_PEERCRED`` (the connecting process's pid, filled in by the kernel at
  connect), then opens a connection to the real gRPC server on a private abstract
  socket from a client socket bound to a fresh random abstract name, and pipes bytes.
  The gRPC server sees that name as ``context.peer()`` (``unix-abstract:NAME``) and
  looks the pid up in the relay's table. A name not in the table (someone who reached
  the private socket directly) attests as nobody. The entry is removed before the
  relay's socket closes, and a name cannot be bound twice while in use.
* The pid is mapped to a pod by ``attest``: the pid, or its nearest ancestor found by
  walking ``/proc/<pid>/stat`` parent links (at most ``ANCESTRY_DEPTH_MAX``), must be
  the main process of a container this node runs; the pod's identity is
  ``spiffe://TD/ns/<namespace>/sa/<serviceAccountName or default>``. Anything else
  gets ``PermissionDenied``: no workload identity for this process. As with every
  pid-based attestor (SPIRE's unix and k8s attestors), a pid is only a name for a
  process while it lives; the relay's pid was taken by the kernel at connect, and the
  ancestry is read again at every RPC and every rotation.
* Issuance: a node that holds the CA signs the workload SVID here, with a key made
  here (it leaves the node only to the workload), valid ``ttl_s``. One SVID per
  identity is cached and shared by the pods of that namespace and service account
  (as SPIRE serves one SVID per registration entry); it is replaced at half-life, and
  an open ``FetchX509SVID`` stream gets the new one as another message. A node without
  the CA answers ``Unavailable``: remote issuance is not built yet.
* Revocation: an identity revoked as a whole is refused (``PermissionDenied``), also
  mid-stream, checked every ``RECHECK_S``; a cached SVID whose serial alone was revoked
  is replaced by a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import stat
import struct
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hyperion.identity.ca import CertificateAuthority, Svid
from hyperion.identity.errors import IdentityError
from hyperion.identity.revocation import RevocationList
from hyperion.identity.spiffe import workload_spiffe_id
from hyperion.net import workload_pb2, workload_pb2_grpc

log = logging.getLogger(__name__)

SOCKET_NAME = "workload.sock"
ENDPOINT_ENV = "SPIFFE_ENDPOINT_SOCKET"
HEADER = "workload.spiffe.io"
# sockaddr_un.sun_path is 108 bytes on Linux, one of them the terminating NUL.
SUN_PATH_MAX = 107
# Parent links followed from the caller to a container's main process: deeper process
# trees than this are not attested (a bound on work per RPC, not a real-world limit).
ANCESTRY_DEPTH_MAX = 64
# How often an open FetchX509SVID stream re-checks revocation and attestation.
RECHECK_S = 1.0
# Connections the relay holds at once; more are closed at accept (a node serves its
# own pods, a few each).
CONNECTIONS_MAX = 1024
RELAY_CHUNK_BYTES = 65536
NO_IDENTITY = "no workload identity for this process"
NO_CA = (
    "workload SVIDs need a node that holds the CA; remote issuance is not built yet "
    "(this node was enrolled over the network)"
)

Attest = Callable[[int], tuple[str, str] | None]  # pid -> (namespace, service account)


class WorkloadApiError(Exception):
    """The Workload API endpoint cannot be set up (the message says why)."""


def check_socket_path(path: Path) -> None:
    """Raise WorkloadApiError if ``path`` does not fit in ``sockaddr_un.sun_path``."""
    n = len(os.fsencode(str(path)))
    if n > SUN_PATH_MAX:
        raise WorkloadApiError(
            f"the Workload API socket path {path} is {n} bytes, but a Unix socket path "
            f"may have at most {SUN_PATH_MAX}: use a shorter --dir"
        )


def peer_pid(sock: socket.socket) -> int:
    """The pid of the process that connected ``sock`` (Linux ``SO_PEERCRED``)."""
    fmt = "3i"  # struct ucred: pid, uid, gid
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(fmt))
    pid, _uid, _gid = struct.unpack(fmt, raw)
    return int(pid)


def parent_pid(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The parent of ``pid`` from ``/proc/<pid>/stat``, or None if it is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: the fields after it follow the
    # last ')'. They are: state ppid ...
    fields = text[text.rfind(")") + 1 :].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None


def ancestry(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """``pid`` and its ancestors, nearest first, at most ``ANCESTRY_DEPTH_MAX`` of them."""
    out: list[int] = []
    current: int | None = pid
    while current is not None and current > 0 and len(out) < ANCESTRY_DEPTH_MAX:
        out.append(current)
        current = parent_pid(current, proc)
    return out


def attest_pid(pid: int, workloads: dict[int, tuple[str, str]]) -> tuple[str, str] | None:
    """The (namespace, service account) of the container whose main process is ``pid``
    or its nearest ancestor in ``workloads`` (main pid -> identity); None if none."""
    for p in ancestry(pid):
        found = workloads.get(p)
        if found is not None:
            return found
    return None


def _der_certs(pem: bytes) -> bytes:
    return b"".join(
        c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(pem)
    )


def _der_key(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _serial(svid: Svid) -> str:
    return format(x509.load_pem_x509_certificate(svid.cert_pem).serial_number, "x")


class WorkloadSvids:
    """The workload SVIDs a CA-holding node issues, one cached per SPIFFE ID."""

    def __init__(
        self,
        ca: CertificateAuthority | None,
        revocations: RevocationList,
        *,
        ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ca = ca
        self.revocations = revocations
        self.ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, Svid] = {}
        self.issued = 0

    def revoked(self, spiffe_id: str) -> bool:
        """Whether ``spiffe_id`` is revoked as a whole (any certificate of it)."""
        return self.revocations.revoked(spiffe_id, None, self._clock()) is not None

    def get(self, spiffe_id: str) -> Svid:
        """The current SVID for ``spiffe_id``: the cached one until its half-life, else a
        new one. Raises IdentityError without the CA."""
        if self.ca is None:
            raise IdentityError(NO_CA)
        now = self._clock()
        svid = self._cache.get(spiffe_id)
        if (
            svid is None
            or now >= svid.renew_at
            or self.revocations.revoked(spiffe_id, _serial(svid), now) is not None
        ):
            svid = self.ca.issue_svid(
                spiffe_id, ttl_s=self.ttl_s, now=now, dns_names=(), ip_addresses=()
            )
            self._cache[spiffe_id] = svid
            self.issued += 1
        return svid


class _Servicer(workload_pb2_grpc.SpiffeWorkloadAPIServicer):
    def __init__(self, endpoint: WorkloadEndpoint) -> None:
        self._ep = endpoint

    async def _identity(self, context: grpc.aio.ServicerContext) -> str:
        """Check the header and attest the caller; abort the RPC if either fails."""
        md = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
        if md.get(HEADER) != "true":
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"security header missing from request: {HEADER}"
            )
        sid = self._ep.attest_peer(context.peer())
        if sid is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, NO_IDENTITY)
        assert sid is not None
        return sid

    async def FetchX509SVID(  # noqa: N802 (gRPC method name)
        self,
        request: workload_pb2.X509SVIDRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[workload_pb2.X509SVIDResponse]:
        ep = self._ep
        peer = context.peer()
        sid = await self._identity(context)
        sent: Svid | None = None
        while True:
            if ep.attest_peer(peer) != sid:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, NO_IDENTITY)
            if ep.svids.revoked(sid):
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{sid} is revoked")
            try:
                svid = ep.svids.get(sid)
            except IdentityError as e:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
            if svid is not sent:
                sent = svid
                yield workload_pb2.X509SVIDResponse(
                    svids=[
                        workload_pb2.X509SVID(
                            spiffe_id=sid,
                            x509_svid=_der_certs(svid.cert_pem),
                            x509_svid_key=_der_key(svid.key_pem),
                            bundle=_der_certs(svid.bundle_pem),
                        )
                    ]
                )
            wait_s = min(RECHECK_S, max(0.0, svid.renew_at - time.time()))
            await asyncio.sleep(max(wait_s, 0.01))

    async def FetchX509Bundles(  # noqa: N802 (gRPC method name)
        self,
        request: workload_pb2.X509BundlesRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[workload_pb2.X509BundlesResponse]:
        await self._identity(context)
        ep = self._ep
        sent = b""
        while True:
            bundle = ep.bundle()
            if bundle != sent:
                sent = bundle
                yield workload_pb2.X509BundlesResponse(
                    bundles={f"spiffe://{ep.trust_domain}": _der_certs(bundle)}
                )
            await asyncio.sleep(RECHECK_S)


class WorkloadEndpoint:
    """The node's Workload API: the public socket, the relay and the gRPC server.

    ``attest`` maps a pid to the (namespace, service account) of the pod it belongs
    to (see ``attest_pid``); ``bundle`` returns the trust bundle (PEM) now.
    """

    def __init__(
        self,
        path: Path,
        trust_domain: str,
        *,
        attest: Attest,
        svids: WorkloadSvids,
        bundle: Callable[[], bytes],
    ) -> None:
        check_socket_path(path)
        self.path = Path(path)
        self.trust_domain = trust_domain
        self.svids = svids
        self.bundle = bundle
        self._attest = attest
        self._inner = f"hyperion-wapi-{os.getpid()}-{secrets.token_hex(8)}"
        self._conns: dict[str, int] = {}  # relay client name -> caller pid
        self._relays: set[asyncio.Task[None]] = set()
        self._server: grpc.aio.Server | None = None
        self._relay: asyncio.Server | None = None

    def attest_peer(self, peer: str) -> str | None:
        """The SPIFFE ID of the caller behind gRPC peer ``peer``, or None."""
        name = peer.removeprefix("unix-abstract:")
        pid = self._conns.get(name) if name != peer else None
        if pid is None:
            return None
        found = self._attest(pid)
        if found is None:
            return None
        try:
            return workload_spiffe_id(self.trust_domain, *found)
        except IdentityError as e:
            log.warning("pid %d: no valid workload SPIFFE ID: %s", pid, e)
            return None

    async def start(self) -> None:
        server = grpc.aio.server()
        workload_pb2_grpc.add_SpiffeWorkloadAPIServicer_to_server(  # type: ignore[no-untyped-call]
            _Servicer(self), server
        )
        if server.add_insecure_port(f"unix-abstract:{self._inner}") == 0:
            raise WorkloadApiError("cannot bind the Workload API's private socket")
        await server.start()
        self._server = server
        try:
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                    self.path.unlink()  # left by a node that was killed
            self._relay = await asyncio.start_unix_server(self._accept, path=str(self.path))
            os.chmod(self.path, 0o600)
        except OSError as e:
            await server.stop(grace=None)
            raise WorkloadApiError(f"cannot serve the Workload API on {self.path}: {e}") from e
        log.info("SPIFFE Workload API on unix://%s", self.path)

    async def stop(self) -> None:
        if self._relay is not None:
            self._relay.close()
        for t in list(self._relays):
            t.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        if self._server is not None:
            await self._server.stop(grace=0.2)
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._relays) >= CONNECTIONS_MAX:
            writer.close()
            return
        self._relays.add(task)
        try:
            await self._relay_one(reader, writer)
        finally:
            self._relays.discard(task)

    async def _relay_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        name = f"hyperion-wapi-c-{secrets.token_hex(16)}"
        out = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        out_writer: asyncio.StreamWriter | None = None
        try:
            pid = peer_pid(writer.get_extra_info("socket"))
            out.setblocking(False)
            out.bind("\0" + name)
            self._conns[name] = pid
            await loop.sock_connect(out, "\0" + self._inner)
            out_reader, out_writer = await asyncio.open_unix_connection(sock=out)
            pipes = [
                asyncio.create_task(_pipe(reader, out_writer)),
                asyncio.create_task(_pipe(out_reader, writer)),
            ]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for p in pipes:
                    p.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except OSError as e:
            log.debug("Workload API connection dropped: %s", e)
        finally:
            # Forget the name before its socket closes: once closed it may be bound again.
            self._conns.pop(name, None)
            if out_writer is not None:
                out_writer.close()
            else:
                out.close()
            writer.close()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    while data := await src.read(RELAY_CHUNK_BYTES):
        dst.write(data)
        await dst.drain()
