"""Tests for hyperion.net.transport and hyperion.daemon over real gRPC with mutual TLS.

Everything listens on 127.0.0.1 with an OS-chosen port; every server and node a test
starts is stopped by that test.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from node_helpers import running, wait_for

from hyperion.daemon import Node, NodeOptions, obtain_svid
from hyperion.identity.ca import CertificateAuthority, Svid, spiffe_id_from_cert
from hyperion.identity.keys import NodeKey
from hyperion.identity.spiffe import node_spiffe_id, user_spiffe_id
from hyperion.identity.tokens import create_token
from hyperion.net import wire_pb2, wire_pb2_grpc
from hyperion.net.driver import CoreDriver
from hyperion.net.envelope import NONCE_BYTES, Opened, seal
from hyperion.net.transport import (
    GRPC_OPTIONS,
    TLS_NAME,
    Counters,
    CredentialStore,
    Transport,
    call_admin,
    start_server,
)

TD = "mesh.test"
OPENSSL = "/usr/bin/openssl"
TICKET = "New Session Ticket"


# --- helpers ----------------------------------------------------------------------------


@dataclass
class Pki:
    dir: Path
    ca: CertificateAuthority
    other: CertificateAuthority  # same trust domain name, different key: not trusted

    def node(self, key: NodeKey, ca: CertificateAuthority | None = None) -> Svid:
        return (ca or self.ca).issue_svid(
            node_spiffe_id(TD, key.node_id), ttl_s=600, dns_names=("localhost", TLS_NAME)
        )

    def user(self, name: str = "alice", ca: CertificateAuthority | None = None) -> Svid:
        return (ca or self.ca).issue_svid(user_spiffe_id(TD, name), ttl_s=600)

    def files(self, name: str, svid: Svid) -> tuple[Path, Path]:
        cert, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        cert.write_bytes(svid.cert_pem)
        key.write_bytes(svid.key_pem)
        key.chmod(0o600)
        return cert, key

    @property
    def bundle(self) -> Path:
        path = self.dir / "bundle.pem"
        path.write_bytes(self.ca.bundle_pem)
        return path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(
        tmp_path,
        CertificateAuthority.init(tmp_path / "ca", TD),
        CertificateAuthority.init(tmp_path / "other-ca", TD),
    )


def _seal(key: NodeKey, body: bytes) -> wire_pb2.Envelope:
    return seal(key, body, now_ms=int(time.time() * 1000), nonce=os.urandom(NONCE_BYTES))


@contextlib.asynccontextmanager
async def _server(
    svid: Svid, inbox: list[Opened], counters: Counters | None = None
) -> AsyncIterator[int]:
    server, port = await start_server(
        "127.0.0.1:0", CredentialStore(svid), TD, counters or Counters(), inbox.append
    )
    try:
        yield port
    finally:
        await server.stop(grace=None)


@contextlib.asynccontextmanager
async def _transport(svid: Svid, counters: Counters | None = None) -> AsyncIterator[Transport]:
    transport = Transport(CredentialStore(svid), counters or Counters())
    try:
        yield transport
    finally:
        await transport.close()


def _serial(cert: bytes) -> int:
    if cert.startswith(b"-----"):
        return x509.load_pem_x509_certificate(cert).serial_number
    return x509.load_der_x509_certificate(cert).serial_number


@dataclass
class TlsResult:
    established: bool  # the server sent application data (HTTP/2 SETTINGS) after the handshake
    version: str | None = None
    first_bytes: bytes = b""
    peer_der: bytes | None = None
    error: str = ""


def _tls_probe(port: int, bundle_pem: bytes, cert: tuple[Path, Path] | None) -> TlsResult:
    """Handshake with Python's ssl module and read the server's first bytes.

    With TLS 1.3 the client finishes its side of the handshake before the server has
    checked the client certificate, so a refusal may only show on the first read.
    """
    ctx = ssl.create_default_context(cadata=bundle_pem.decode())
    ctx.check_hostname = False  # the server chain is still verified against the bundle
    ctx.set_alpn_protocols(["h2"])
    if cert is not None:
        ctx.load_cert_chain(*cert)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, suppress_ragged_eofs=False) as tls:
                version = tls.version()
                peer = tls.getpeercert(binary_form=True)
                data = tls.recv(64)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            return TlsResult(False, error=repr(e))
    if not data:
        return TlsResult(False, version, error="closed by server")
    return TlsResult(True, version, data, peer)


def _s_client_refused(port: int, bundle: Path, *extra: str) -> str:
    """Run ``openssl s_client`` that keeps reading after stdin EOF; returns its output.

    A server that refuses the client closes the connection right after the handshake,
    so this returns quickly; an accepted client would wait (and hit the timeout).
    """
    args = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(bundle)]
    proc = subprocess.run(
        [*args, "-alpn", "h2", "-ign_eof", *extra], input=b"", capture_output=True, timeout=10
    )
    out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    assert proc.returncode != 0, out
    return out


def _s_client_session(port: int, bundle: Path, *extra: str) -> tuple[int, str]:
    """Run ``openssl s_client`` until the server's post-handshake session ticket arrives.

    The ticket is only sent once the server has accepted the client's certificate, so it
    proves a complete TLS 1.3 session. Stdin stays open until then; a watchdog kills the
    process after 10 s if the ticket never comes.
    """
    args = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(bundle)]
    proc = subprocess.Popen(
        [*args, "-alpn", "h2", *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    watchdog = threading.Timer(10.0, proc.kill)
    watchdog.start()
    lines: list[str] = []
    try:
        assert proc.stdout is not None and proc.stdin is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            lines.append(line)
            if TICKET in line:
                break
        proc.stdin.close()  # EOF on stdin: s_client closes the session and exits
        lines += [raw.decode(errors="replace") for raw in proc.stdout]
        rc = proc.wait(timeout=10)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, "".join(lines)


# --- transport: delivery and per-envelope authorization ------------------------------


def test_envelope_delivered_over_mutual_tls(pki: Pki) -> None:
    server_key, client_key = NodeKey.generate(), NodeKey.generate()

    async def main() -> None:
        inbox: list[Opened] = []
        server_counters, client_counters = Counters(), Counters()
        async with (
            _server(pki.node(server_key), inbox, server_counters) as port,
            _transport(pki.node(client_key), client_counters) as transport,
        ):
            addr = f"127.0.0.1:{port}"
            assert transport.send(addr, _seal(client_key, b"first"))
            assert transport.send(addr, _seal(client_key, b"second"))
            await wait_for(lambda: len(inbox) == 2, what="two envelopes")
            assert [o.body for o in inbox] == [b"first", b"second"]
            assert {o.sender for o in inbox} == {client_key.node_id}
            assert inbox[0].sender_key == client_key.public_bytes
            assert server_counters.values.get("envelopes_in") == 2
            assert client_counters.values.get("envelopes_out") == 2
            assert list(transport.links()) == [addr]
            assert transport.links()[addr].connects == 1

    asyncio.run(main())


def test_a_peer_that_comes_up_late_gets_what_is_sent_after(pki: Pki) -> None:
    # A node started before its seed: the first stream fails at connect, the next
    # call has failed before its first write (grpc raises InvalidStateError there).
    # The link must keep retrying, not die with that error and stay dead.
    server_key, client_key = NodeKey.generate(), NodeKey.generate()

    async def main() -> None:
        with socket.socket() as probe:  # a free port, nothing listening yet
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        addr = f"127.0.0.1:{port}"
        inbox: list[Opened] = []
        client_counters = Counters()
        async with _transport(pki.node(client_key), client_counters) as transport:
            for _ in range(6):  # as a join is retried while the seed is down
                transport.send(addr, _seal(client_key, b"early"))
                await asyncio.sleep(0.1)
            assert client_counters.values.get("send_errors", 0) >= 1
            server, _ = await start_server(
                addr, CredentialStore(pki.node(server_key)), TD, Counters(), inbox.append
            )
            try:

                async def resend_until_delivered() -> None:
                    while not any(o.body == b"late" for o in inbox):
                        transport.send(addr, _seal(client_key, b"late"))
                        await asyncio.sleep(0.2)

                await asyncio.wait_for(resend_until_delivered(), 15.0)
            finally:
                await server.stop(grace=None)

    asyncio.run(main())


def test_envelope_signed_by_another_node_is_rejected(pki: Pki) -> None:
    """Node B's connection may only carry B's envelopes, even if A's signature is valid."""
    server_key, key_a, key_b = NodeKey.generate(), NodeKey.generate(), NodeKey.generate()

    async def main() -> None:
        inbox: list[Opened] = []
        counters = Counters()
        async with (
            _server(pki.node(server_key), inbox, counters) as port,
            _transport(pki.node(key_b)) as transport,
        ):
            addr = f"127.0.0.1:{port}"
            transport.send(addr, _seal(key_a, b"forwarded by B"))
            # Same stream, so once B's own envelope is in, A's was processed before it.
            transport.send(addr, _seal(key_b, b"from B"))
            await wait_for(lambda: len(inbox) >= 1, what="B's envelope")
            await asyncio.sleep(0.1)
            assert [(o.sender, o.body) for o in inbox] == [(key_b.node_id, b"from B")]
            assert counters.values.get("rejected_peer_mismatch") == 1
            assert counters.values.get("envelopes_in") == 1

    asyncio.run(main())


def test_replayed_and_tampered_envelopes_are_counted_not_delivered(pki: Pki) -> None:
    server_key, client_key = NodeKey.generate(), NodeKey.generate()

    async def main() -> None:
        inbox: list[Opened] = []
        counters = Counters()
        async with (
            _server(pki.node(server_key), inbox, counters) as port,
            _transport(pki.node(client_key)) as transport,
        ):
            addr = f"127.0.0.1:{port}"
            env = _seal(client_key, b"once")
            forged = wire_pb2.Envelope()
            forged.CopyFrom(_seal(client_key, b"real"))
            forged.body = b"forged"
            for e in (env, env, forged, _seal(client_key, b"last")):
                transport.send(addr, e)
            await wait_for(lambda: len(inbox) == 2, what="two envelopes")
            await asyncio.sleep(0.1)
            assert [o.body for o in inbox] == [b"once", b"last"]
            assert counters.values.get("rejected_replay") == 1
            assert counters.values.get("rejected_bad_signature") == 1

    asyncio.run(main())


def test_user_svid_cannot_use_the_mesh_stream(pki: Pki) -> None:
    server_key = NodeKey.generate()
    user = pki.user("mallory")

    async def main() -> None:
        inbox: list[Opened] = []
        counters = Counters()
        async with _server(pki.node(server_key), inbox, counters) as port:
            creds = grpc.ssl_channel_credentials(user.bundle_pem, user.key_pem, user.cert_pem)
            async with grpc.aio.secure_channel(
                f"127.0.0.1:{port}", creds, options=GRPC_OPTIONS
            ) as channel:
                stub = wire_pb2_grpc.MeshStub(channel)
                call = stub.Stream(iter([_seal(NodeKey.generate(), b"x")]), timeout=5)
                with pytest.raises(grpc.aio.AioRpcError) as exc:
                    await call
                assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert inbox == []
        assert counters.values.get("rejected_peer_not_a_node") == 1

    asyncio.run(main())


def test_client_from_another_ca_cannot_send(pki: Pki) -> None:
    server_key, client_key = NodeKey.generate(), NodeKey.generate()
    foreign = pki.node(client_key, ca=pki.other)
    # Trusting our bundle for the server, so only the client certificate is wrong.
    foreign = Svid(
        foreign.spiffe_id,
        foreign.cert_pem,
        foreign.key_pem,
        pki.ca.bundle_pem,
        foreign.not_before,
        foreign.not_after,
    )

    async def main() -> None:
        inbox: list[Opened] = []
        counters, client_counters = Counters(), Counters()
        async with (
            _server(pki.node(server_key), inbox, counters) as port,
            _transport(foreign, client_counters) as transport,
        ):
            addr = f"127.0.0.1:{port}"
            transport.send(addr, _seal(client_key, b"x"))
            await wait_for(
                lambda: client_counters.values.get("send_errors", 0) >= 1, what="a send error"
            )
            assert inbox == []
            assert counters.values.get("envelopes_in", 0) == 0

    asyncio.run(main())


# --- the TLS handshake, seen from outside gRPC ---------------------------------------


def test_handshake_requires_client_cert_from_the_trust_domain_ca(pki: Pki) -> None:
    server_svid = pki.node(NodeKey.generate())
    good = pki.files("good", pki.node(NodeKey.generate()))
    foreign = pki.files("foreign", pki.node(NodeKey.generate(), ca=pki.other))

    async def main() -> None:
        async with _server(server_svid, []) as port:
            probe = lambda cert: asyncio.to_thread(_tls_probe, port, pki.ca.bundle_pem, cert)  # noqa: E731
            ok = await probe(good)
            other_ca = await probe(foreign)
            no_cert = await probe(None)
        # A valid client gets a TLS 1.3 session and the server's HTTP/2 SETTINGS frame.
        assert ok.established, ok.error
        assert ok.version == "TLSv1.3"
        assert ok.first_bytes[3] == 0x04  # HTTP/2 frame type SETTINGS
        assert ok.peer_der is not None and _serial(ok.peer_der) == _serial(server_svid.cert_pem)
        assert spiffe_id_from_cert(ok.peer_der) == server_svid.spiffe_id
        # The others are refused before a byte of application data.
        assert not other_ca.established, other_ca
        assert not no_cert.established, no_cert

    asyncio.run(main())


def test_openssl_s_client_is_refused_without_a_valid_client_cert(pki: Pki) -> None:
    foreign = pki.files("foreign", pki.node(NodeKey.generate(), ca=pki.other))
    bundle = pki.bundle

    async def main() -> None:
        async with _server(pki.node(NodeKey.generate()), []) as port:
            no_cert = await asyncio.to_thread(_s_client_refused, port, bundle)
            other_ca = await asyncio.to_thread(
                _s_client_refused, port, bundle, "-cert", str(foreign[0]), "-key", str(foreign[1])
            )
        for out in (no_cert, other_ca):
            # The client verified the server fine, the server then refused the client:
            # no session ticket, the connection is cut (BoringSSL in gRPC closes without
            # an alert, so OpenSSL reports an unexpected EOF).
            assert "Verify return code: 0 (ok)" in out, out
            assert TICKET not in out, out
            assert "unexpected eof" in out or "alert" in out, out

    asyncio.run(main())


def test_openssl_s_client_gets_a_tls13_session_with_a_valid_cert(pki: Pki) -> None:
    server_svid = pki.node(NodeKey.generate())
    cert, key = pki.files("good", pki.node(NodeKey.generate()))
    bundle = pki.bundle

    async def main() -> None:
        async with _server(server_svid, []) as port:
            rc, out = await asyncio.to_thread(
                _s_client_session, port, bundle, "-cert", str(cert), "-key", str(key)
            )
        assert rc == 0, out
        assert "Verify return code: 0 (ok)" in out, out
        assert "TLSv1.3" in out, out
        assert TICKET in out, out

    asyncio.run(main())


# --- a real node: admin API and SVID renewal -------------------------------------------


def _node(mesh: Path, name: str, **kw: object) -> Node:
    token = create_token(mesh, ttl_s=60)
    return Node(NodeOptions(dir=mesh, name=name, token=token, profile="local", **kw))  # type: ignore[arg-type]


def test_admin_members_requires_a_user_svid(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh"
    ca = CertificateAuthority.init(mesh, TD)
    other = CertificateAuthority.init(tmp_path / "other", TD)
    alice = ca.issue_svid(user_spiffe_id(TD, "alice"), ttl_s=600)
    node_svid = ca.issue_svid(
        node_spiffe_id(TD, NodeKey.generate().node_id),
        ttl_s=600,
        dns_names=("localhost", TLS_NAME),
    )
    forged = other.issue_svid(user_spiffe_id(TD, "alice"), ttl_s=600)
    forged = dataclasses.replace(forged, bundle_pem=ca.bundle_pem)

    async def main() -> None:
        async with running(_node(mesh, "n1")) as node:
            reply = await call_admin(node.addr, alice, "Members")
            assert reply.node_id == node.key.node_id
            assert reply.name == "n1"
            me = [m for m in reply.members if m.node_id == node.key.node_id]
            assert len(me) == 1 and me[0].state == "alive" and me[0].addr == node.addr

            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await call_admin(node.addr, node_svid, "Members")
            assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED

            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await call_admin(node.addr, forged, "Members", timeout_s=2.0)
            assert exc.value.code() == grpc.StatusCode.UNAVAILABLE

    asyncio.run(main())


def test_svid_renewal_keeps_connections_and_serves_new_cert(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh"
    ca = CertificateAuthority.init(mesh, TD)
    alice = ca.issue_svid(user_spiffe_id(TD, "alice"), ttl_s=600)
    alice_files = (tmp_path / "alice.crt", tmp_path / "alice.key")
    alice_files[0].write_bytes(alice.cert_pem)
    alice_files[1].write_bytes(alice.key_pem)

    async def main() -> None:
        started = time.time()
        n1 = _node(mesh, "n1", svid_ttl_s=4.0)
        async with running(n1):
            n2 = _node(mesh, "n2", svid_ttl_s=4.0, join=[n1.addr])
            async with running(n2):
                assert n1.core is not None and n2.core is not None
                id1, id2 = n1.key.node_id, n2.key.node_id
                await wait_for(
                    lambda: (
                        n1.core.membership.state_of(id2) == "alive"
                        and n2.core.membership.state_of(id1) == "alive"
                    ),
                    timeout_s=10.0,
                    what="n1 and n2 to see each other alive",
                )
                first_pem = n1.svid.cert_pem
                first_serial = _serial(first_pem)
                reconnects = [n.counters.values.get("reconnects", 0) for n in (n1, n2)]
                envelopes_in = n1.counters.values.get("envelopes_in", 0)
                # Past the half-life renewal (2 s) and past the expiry of the certificates
                # the established connections were authenticated with.
                expired = max(n1.svid.not_after, n2.svid.not_after) + 0.5
                await asyncio.sleep(max(3.0, expired - time.time()))

                assert n1.svid.cert_pem != first_pem
                assert n1.creds.svid is n1.svid
                # Renewed at half-life (every ~2 s here), not in a tight loop.
                most = (time.time() - started) / 1.9 + 1
                for n in (n1, n2):
                    assert 1 <= n.counters.values.get("svid_renewals", 0) <= most
                assert n1.svid.spiffe_id == node_spiffe_id(TD, id1)
                # Membership kept flowing over the established links, none reconnected.
                assert n1.core.membership.state_of(id2) == "alive"
                assert n2.core.membership.state_of(id1) == "alive"
                assert [n.counters.values.get("reconnects", 0) for n in (n1, n2)] == reconnects
                assert n1.counters.values.get("envelopes_in", 0) > envelopes_in
                assert n1.counters.values.get("svid_renewal_errors", 0) == 0

                # A new connection is served the renewed certificate.
                port = int(n1.addr.rsplit(":", 1)[1])
                before = _serial(n1.svid.cert_pem)
                probe = await asyncio.to_thread(_tls_probe, port, ca.bundle_pem, alice_files)
                after = _serial(n1.svid.cert_pem)
                assert probe.established, probe.error
                assert probe.peer_der is not None
                served = _serial(probe.peer_der)
                assert served != first_serial
                assert served in {before, after}
                assert spiffe_id_from_cert(probe.peer_der) == node_spiffe_id(TD, id1)
                # The admin API works over a fresh connection too.
                reply = await call_admin(n1.addr, alice, "Members")
                assert {m.node_id for m in reply.members} == {id1, id2}

    asyncio.run(main())


def test_short_lived_svid_is_not_renewed_before_half_life(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh"
    CertificateAuthority.init(mesh, TD)
    ca = CertificateAuthority.load(mesh)
    opts = NodeOptions(dir=mesh, name="n1", token=create_token(mesh, ttl_s=60), svid_ttl_s=4.0)
    key = NodeKey.generate()
    first = obtain_svid(opts, key, ca)
    # Renewal is due half the TTL after issue, not half-way through the back-dated
    # validity window (which would make any SVID shorter than 60 s due at once).
    assert 1.5 < first.renew_at - time.time() <= 2.0
    assert obtain_svid(opts, key, ca).cert_pem == first.cert_pem  # reused, not re-issued


class _BusyCore:
    """A core that handles everything with no effects; its next tick is always 10 s
    away (so the driver waits for a message with a timeout)."""

    def handle(self, msg: object, now: float) -> list[object]:
        return []

    def tick(self, now: float) -> list[object]:
        return []

    def next_deadline(self) -> float | None:
        return time.monotonic() + 10.0


def test_the_driver_loop_ends_when_cancelled_under_a_steady_stream() -> None:
    # On Python 3.11, asyncio.wait_for hands back a message that arrives together with a
    # cancellation and swallows the cancellation: the loop ran on and a node never
    # stopped on SIGTERM while peers kept sending (seen in CI).
    async def main() -> None:
        driver = CoreDriver(_BusyCore(), NodeKey.generate(), None, Counters())  # type: ignore[arg-type]

        async def feed() -> None:
            while True:
                with contextlib.suppress(asyncio.QueueFull):
                    driver._inbound.put_nowait(object())
                await asyncio.sleep(0)

        for _ in range(20):
            feeder = asyncio.create_task(feed())
            run = asyncio.create_task(driver.run())
            await asyncio.sleep(0.005)
            run.cancel()
            done, _ = await asyncio.wait([run], timeout=1.0)
            feeder.cancel()
            assert done, "the driver loop swallowed its cancellation"

    asyncio.run(main())
