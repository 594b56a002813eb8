"""Enrollment and renewal over the network (hyperion.net.enroll, hyperion.identity.enroll).

Real certificates, real gRPC over 127.0.0.1 on OS-chosen ports, real node processes for
the CLI: a machine whose directory has no CA joins with a token and a pinned CA hash.
Every server, node and process a test starts is stopped by that test.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from node_helpers import cli_env, run_cli, running, wait_for

from hyperion.daemon import ENROLL_FILE, Node, NodeOptions, enroll_node
from hyperion.identity.ca import CertificateAuthority, Svid, ca_cert_hash, verify_chain
from hyperion.identity.enroll import make_csr, node_key_proof
from hyperion.identity.errors import EnrollError, IdentityError
from hyperion.identity.keys import NodeKey
from hyperion.identity.spiffe import node_spiffe_id, user_spiffe_id
from hyperion.identity.tokens import TOKENS_FILE, create_token
from hyperion.net import wire_pb2
from hyperion.net.enroll import (
    ENROLL_REQUEST_BYTES_MAX,
    Issuer,
    RenewalServicer,
    TokenBucket,
    enroll,
    renew,
    start_enrollment_server,
)
from hyperion.net.transport import TLS_NAME, Counters, CredentialStore, call_admin, start_server

TD = "enroll.test"
ENROLL_METHOD = "/hyperion.wire.v1.Enrollment/Enroll"

# --- helpers ----------------------------------------------------------------------------


def _seed(mesh: Path, **kw: object) -> Node:
    """A node of the CA's directory that serves enrollment."""
    token = create_token(mesh, ttl_s=60)
    opts = NodeOptions(dir=mesh, name="seed", token=token, enroll_listen="127.0.0.1:0", **kw)  # type: ignore[arg-type]
    return Node(opts)


def _node_svid(ca: CertificateAuthority) -> Svid:
    key = NodeKey.generate()
    return ca.issue_svid(
        node_spiffe_id(ca.trust_domain, key.node_id), ttl_s=600, dns_names=("localhost", TLS_NAME)
    )


@contextlib.asynccontextmanager
async def _enroll_server(
    ca: CertificateAuthority, **issuer_kw: object
) -> AsyncIterator[tuple[str, Issuer]]:
    """An enrollment port alone, served with a node SVID of ``ca``."""
    issuer = Issuer(ca, 3600.0, Counters(), renew_port=1, **issuer_kw)  # type: ignore[arg-type]
    server, port = await start_enrollment_server(
        "127.0.0.1:0", CredentialStore(_node_svid(ca)), issuer
    )
    try:
        yield f"127.0.0.1:{port}", issuer
    finally:
        await server.stop(grace=None)


def _token_used(ca_dir: Path) -> list[object]:
    return [r["used"] for r in json.loads((ca_dir / TOKENS_FILE).read_text())]


def _request(token: str, **fields: object) -> bytes:
    """A well-formed EnrollRequest, then ``fields`` overwritten."""
    signer = NodeKey.generate()
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()))
    msg = wire_pb2.EnrollRequest(
        token=token,
        name="edge-1",
        node_key=signer.public_bytes,
        csr=csr,
        node_key_proof=node_key_proof(signer, csr),
    )
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg.SerializeToString()


async def _raw_enroll(addr: str, ca_pem: bytes, payload: bytes) -> grpc.aio.AioRpcError:
    """Send ``payload`` as an Enroll request; return the error it must end in."""
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    options = [("grpc.ssl_target_name_override", TLS_NAME)]
    async with grpc.aio.secure_channel(addr, creds, options=options) as channel:
        call = channel.unary_unary(ENROLL_METHOD)
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await call(payload, timeout=5.0)
    return exc.value


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.init(tmp_path / "ca", TD)


# --- joining from a machine without the CA ----------------------------------------------


def test_a_node_without_the_ca_enrolls_joins_and_restarts(tmp_path: Path) -> None:
    mesh, edge_dir = tmp_path / "mesh", tmp_path / "edge"
    ca = CertificateAuthority.init(mesh, TD)

    async def main() -> None:
        async with running(_seed(mesh)) as seed:
            assert seed.enroll_addr
            opts = NodeOptions(
                dir=edge_dir,
                name="edge-1",
                join=[seed.addr],
                token=create_token(mesh, ttl_s=60),
                enroll=seed.enroll_addr,
                ca_hash=ca.cert_hash,
            )
            assert await enroll_node(opts)
            edge = Node(opts)
            assert edge.ca is None and edge.renew_addr == seed.addr
            record = json.loads((edge_dir / "nodes" / "edge-1" / ENROLL_FILE).read_text())
            assert record["renew_addr"] == seed.addr
            # The SVID chains to the CA and names the node id of the edge's own key.
            assert verify_chain(edge.svid.cert_pem, ca.bundle_pem) == node_spiffe_id(
                TD, edge.key.node_id
            )
            assert edge.svid.bundle_pem == ca.bundle_pem
            assert not CertificateAuthority.exists(edge_dir)
            assert not (edge_dir / TOKENS_FILE).exists()
            assert seed.counters.values["enrollments"] == 1
            async with running(edge):
                assert seed.core is not None and edge.core is not None
                await wait_for(
                    lambda: (
                        seed.core.membership.state_of(edge.key.node_id) == "alive"
                        and edge.core.membership.state_of(seed.key.node_id) == "alive"
                    ),
                    what="seed and edge to see each other alive",
                )
                user = ca.issue_svid(user_spiffe_id(TD, "alice"), ttl_s=60)
                reply = await call_admin(seed.addr, user, "Members")
                states = {m.name: m.state for m in reply.members}
                assert states == {"seed": "alive", "edge-1": "alive"}

            # Restarted without a token: the SVID on disk is reused, nothing is enrolled.
            again = NodeOptions(dir=edge_dir, name="edge-1", join=[seed.addr])
            assert not await enroll_node(again)
            restarted = Node(again)
            assert restarted.key.node_id == edge.key.node_id
            assert restarted.svid.cert_pem == edge.svid.cert_pem
            assert seed.counters.values["enrollments"] == 1

    asyncio.run(main())


def test_a_node_without_the_ca_needs_token_enroll_and_hash(tmp_path: Path) -> None:
    opts = NodeOptions(dir=tmp_path / "edge", name="edge-1", token="t")
    with pytest.raises(IdentityError, match="pass --enroll, --ca-hash"):
        asyncio.run(enroll_node(opts))
    assert not (tmp_path / "edge").exists()


# --- refusals ----------------------------------------------------------------------------


def test_wrong_token_reuse_expiry_and_wrong_ca_hash(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    other = CertificateAuthority.init(tmp_path / "other", TD)  # same name, another key

    async def main() -> None:
        async with _enroll_server(ca) as (addr, issuer):

            async def join(token: str, ca_hash: str = ca.cert_hash) -> Svid:
                done = await enroll(
                    addr, token=token, ca_hash=ca_hash, name="edge-1", node_key=NodeKey.generate()
                )
                return done.svid

            with pytest.raises(EnrollError, match="unknown join token"):
                await join("hyp1.garbage")
            with pytest.raises(EnrollError, match="unknown join token"):
                await join("not even the format \u2603")

            expired = create_token(ca.ca_dir, ttl_s=60, now=time.time() - 120)
            with pytest.raises(EnrollError, match="join token expired at"):
                await join(expired)

            token = create_token(ca.ca_dir, ttl_s=60)
            # Another CA's hash: refused before the token is sent, so it stays unused.
            with pytest.raises(EnrollError, match="does not match --ca-hash") as exc:
                await join(token, other.cert_hash)
            assert "token was not sent" in str(exc.value)
            assert ca.cert_hash not in str(exc.value)  # never offer the hash to copy
            assert _token_used(ca.ca_dir)[-1] is None
            with pytest.raises(IdentityError, match="invalid CA hash"):
                await join(token, "sha256:abc")

            svid = await join(token)
            assert verify_chain(svid.cert_pem, ca.bundle_pem) == svid.spiffe_id
            assert _token_used(ca.ca_dir)[-1] is not None
            with pytest.raises(EnrollError, match="join token already used"):
                await join(token)
            assert issuer.counters.values == {"enroll_refused": 4, "enrollments": 1}

    asyncio.run(main())


def test_malformed_and_oversized_requests_get_clear_errors(ca: CertificateAuthority) -> None:
    async def main() -> None:
        async with _enroll_server(ca) as (addr, issuer):
            token = create_token(ca.ca_dir, ttl_s=60)
            pem = ca.bundle_pem
            cases: list[tuple[bytes, grpc.StatusCode, str]] = [
                (b"\xff\xff\xff garbage", grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
                (b"", grpc.StatusCode.INVALID_ARGUMENT, "join token must be"),
                (_request(token, csr=b"not a csr"), grpc.StatusCode.INVALID_ARGUMENT, "CSR"),
                (_request(token, node_key=b"short"), grpc.StatusCode.INVALID_ARGUMENT, "node key"),
                (
                    _request(token, node_key_proof=bytes(64)),
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "signature over the CSR does not verify",
                ),
                (_request(token, name="../etc"), grpc.StatusCode.INVALID_ARGUMENT, "node name"),
                (_request("x" * 300), grpc.StatusCode.INVALID_ARGUMENT, "1 to 256 characters"),
                (_request(token, ttl_s=-1.0), grpc.StatusCode.INVALID_ARGUMENT, "TTL"),
                (_request(token, ttl_s=float("nan")), grpc.StatusCode.INVALID_ARGUMENT, "TTL"),
                (
                    _request(token, csr=b"\x30" * 5000),
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "more than 4096",
                ),
                (
                    b"\x0a" + b"\xff" * (ENROLL_REQUEST_BYTES_MAX + 100),
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "",
                ),
            ]
            for payload, code, text in cases:
                err = await _raw_enroll(addr, pem, payload)
                assert err.code() == code, (payload[:40], err)
                assert text in (err.details() or ""), (payload[:40], err.details())
            # None of that used the token up, and the server still serves.
            assert _token_used(ca.ca_dir) == [None]
            assert issuer.counters.values.get("enrollments", 0) == 0
            done = await enroll(
                addr, token=token, ca_hash=ca.cert_hash, name="edge-1", node_key=NodeKey.generate()
            )
            assert done.svid.spiffe_id.startswith(f"spiffe://{TD}/node/")

    asyncio.run(main())


def test_enrollment_is_rate_limited(ca: CertificateAuthority) -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=2, now=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(100.5) and not bucket.take(100.5)

    async def main() -> None:
        async with _enroll_server(ca, enroll_rate_per_s=0.01, enroll_burst=2) as (addr, _):
            errors = [await _raw_enroll(addr, ca.bundle_pem, b"") for _ in range(3)]
            assert [e.code() for e in errors] == [
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            ]
            assert "too many enrollment requests" in (errors[2].details() or "")

    asyncio.run(main())


def test_a_client_without_a_certificate_can_call_enroll_and_nothing_else(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh"
    ca = CertificateAuthority.init(mesh, TD)
    creds = grpc.ssl_channel_credentials(root_certificates=ca.bundle_pem)
    options = [("grpc.ssl_target_name_override", TLS_NAME)]
    others = {
        "/hyperion.wire.v1.Admin/Members": wire_pb2.MembersRequest(),
        "/hyperion.wire.v1.Admin/Nodes": wire_pb2.NodesRequest(),
        "/hyperion.wire.v1.Renewal/Renew": wire_pb2.RenewRequest(),
    }

    async def call(addr: str, method: str, request: bytes) -> grpc.StatusCode:
        async with grpc.aio.secure_channel(addr, creds, options=options) as channel:
            try:
                await channel.unary_unary(method)(request, timeout=3.0)
            except grpc.aio.AioRpcError as e:
                return e.code()
        return grpc.StatusCode.OK

    async def main() -> None:
        async with running(_seed(mesh)) as seed:
            # The enrollment port serves Enroll and nothing else.
            for method, request in others.items():
                code = await call(seed.enroll_addr, method, request.SerializeToString())
                assert code == grpc.StatusCode.UNIMPLEMENTED, method
            async with grpc.aio.secure_channel(seed.enroll_addr, creds, options=options) as ch:
                stream = ch.stream_unary("/hyperion.wire.v1.Mesh/Stream")
                with pytest.raises(grpc.aio.AioRpcError) as exc:
                    await stream(iter(()), timeout=3.0)
                assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert await call(seed.enroll_addr, ENROLL_METHOD, b"") == (
                grpc.StatusCode.INVALID_ARGUMENT  # reached the handler
            )
            # The mesh port still refuses the handshake without a client certificate.
            for method, request in [*others.items(), (ENROLL_METHOD, wire_pb2.EnrollRequest())]:
                code = await call(seed.addr, method, request.SerializeToString())
                assert code == grpc.StatusCode.UNAVAILABLE, method

    asyncio.run(main())


# --- renewal ----------------------------------------------------------------------------


def test_renewal_over_the_network_at_half_life(tmp_path: Path) -> None:
    mesh, edge_dir = tmp_path / "mesh", tmp_path / "edge"
    ca = CertificateAuthority.init(mesh, TD)

    async def main() -> None:
        async with running(_seed(mesh)) as seed:
            opts = NodeOptions(
                dir=edge_dir,
                name="edge-1",
                join=[seed.addr],
                token=create_token(mesh, ttl_s=60),
                enroll=seed.enroll_addr,
                ca_hash=ca.cert_hash,
                svid_ttl_s=3.0,
            )
            assert await enroll_node(opts)
            edge = Node(opts)
            first = edge.svid
            assert 1.5 < first.not_after - time.time() <= 3.0  # the TTL asked for (1 s steps)
            async with running(edge):
                assert seed.core is not None and edge.core is not None
                await wait_for(
                    lambda: seed.core.membership.state_of(edge.key.node_id) == "alive",
                    what="seed to see the edge alive",
                )
                # Past the first SVID's expiry: renewed (at ~1.5 s and ~3 s) in time.
                await asyncio.sleep(max(0.0, first.not_after - time.time()) + 0.5)
                assert edge.counters.values.get("svid_renewals", 0) >= 1
                assert edge.counters.values.get("svid_renewal_errors", 0) == 0
                assert seed.counters.values.get("renewals_issued", 0) >= 1
                assert edge.svid.cert_pem != first.cert_pem
                assert edge.svid.key_pem != first.key_pem  # a new key each time
                assert edge.svid.spiffe_id == first.spiffe_id
                assert verify_chain(edge.svid.cert_pem, ca.bundle_pem) == first.spiffe_id
                assert Svid.read(edge_dir / "nodes" / "edge-1").cert_pem == edge.svid.cert_pem
                assert seed.core.membership.state_of(edge.key.node_id) == "alive"

    asyncio.run(main())


def test_renewal_fails_over_to_another_node_that_holds_the_ca(tmp_path: Path) -> None:
    """The issuer that enrolled the node is gone: the next renewal goes to another live
    member holding the CA, and ``enroll.json`` names that one from then on."""
    mesh, edge_dir = tmp_path / "mesh", tmp_path / "edge"
    ca = CertificateAuthority.init(mesh, TD)

    async def main() -> None:
        seed = _seed(mesh)
        stop_seed = asyncio.Event()
        seed_task = asyncio.create_task(seed.run(stop_seed))
        try:
            await wait_for(lambda: bool(seed.addr) or seed_task.done(), what="seed to listen")
            other = Node(
                NodeOptions(
                    dir=mesh, name="ca-2", token=create_token(mesh, ttl_s=60), join=[seed.addr]
                )
            )
            opts = NodeOptions(
                dir=edge_dir,
                name="edge-1",
                join=[seed.addr],
                token=create_token(mesh, ttl_s=60),
                enroll=seed.enroll_addr,
                ca_hash=ca.cert_hash,
                svid_ttl_s=4.0,
            )
            assert await enroll_node(opts)
            edge = Node(opts)
            async with running(other), running(edge):
                assert edge.core is not None
                await wait_for(
                    lambda: edge.core.membership.state_of(other.key.node_id) == "alive",
                    what="the edge to see ca-2 alive",
                )
                first = edge.svid
                seed_addr = seed.addr
                stop_seed.set()
                await asyncio.wait_for(seed_task, timeout=10)
                await asyncio.sleep(max(0.0, first.not_after - time.time()) + 0.5)
                assert edge.counters.values.get("svid_renewal_failovers", 0) >= 1
                assert edge.svid.cert_pem != first.cert_pem
                assert edge.svid.not_after > time.time()
                assert verify_chain(edge.svid.cert_pem, ca.bundle_pem) == first.spiffe_id
                assert other.counters.values.get("renewals_issued", 0) >= 1
                saved = json.loads((edge_dir / "nodes" / "edge-1" / ENROLL_FILE).read_text())
                assert saved["renew_addr"] == other.addr != seed_addr
                assert other.core is not None
                assert other.core.membership.state_of(edge.key.node_id) == "alive"
        finally:
            stop_seed.set()
            await asyncio.wait_for(seed_task, timeout=10)

    asyncio.run(main())


def test_renew_refuses_users_other_cas_and_asks_for_nothing_else(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    other = CertificateAuthority.init(tmp_path / "other", TD)

    async def main() -> None:
        issuer = Issuer(ca, 3600.0, Counters())
        server, port = await start_server(
            "127.0.0.1:0",
            CredentialStore(_node_svid(ca)),
            TD,
            Counters(),
            lambda opened: None,
            renewal=RenewalServicer(issuer),
        )
        addr = f"127.0.0.1:{port}"
        try:
            node = _node_svid(ca)
            renewed = await renew(addr, node, ttl_s=60.0)
            assert renewed.spiffe_id == node.spiffe_id
            assert verify_chain(renewed.cert_pem, ca.bundle_pem) == node.spiffe_id
            assert 55 < renewed.not_after - time.time() <= 60

            capped = await renew(addr, node, ttl_s=10 * 3600.0)
            assert capped.not_after - time.time() <= 3600.0  # the issuer's cap

            user = ca.issue_svid(user_spiffe_id(TD, "alice"), ttl_s=60)
            with pytest.raises(EnrollError, match="needs the node SVID"):
                await renew(addr, user)

            forged = _node_svid(other)
            forged = dataclasses.replace(forged, bundle_pem=ca.bundle_pem)
            with pytest.raises(EnrollError, match="renewal at"):
                await renew(addr, forged, timeout_s=3.0)

            expired = ca.issue_svid(
                node.spiffe_id, ttl_s=1.0, now=time.time() - 120, dns_names=("localhost", TLS_NAME)
            )
            with pytest.raises(EnrollError, match="renewal at"):
                await renew(addr, expired, timeout_s=3.0)
            assert issuer.counters.values == {"renewals_issued": 2, "renew_refused": 1}
        finally:
            await server.stop(grace=None)

    asyncio.run(main())


# --- the CLI, as processes ----------------------------------------------------------------

START_TIMEOUT_S = 30.0


def _start(tmp_path: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hyperion", *args],
            cwd=tmp_path,
            env=cli_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_info(path: Path, proc: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"node exited {proc.returncode}:\n{log.read_text()}"
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(path.read_text())
            if info.get("pid") == proc.pid:
                return info  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=15)


def _last_error(r: subprocess.CompletedProcess[str]) -> str:
    detail = f"rc={r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert r.returncode == 2, detail
    assert "Traceback" not in r.stderr + r.stdout, detail
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), detail
    return last


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and sessions")
def test_cli_join_from_a_directory_without_the_ca(tmp_path: Path) -> None:
    mesh, edge = tmp_path / "mesh", tmp_path / "edge"
    assert run_cli(tmp_path, "ca", "init", "--dir", str(mesh), "--trust-domain", TD).returncode == 0
    r = run_cli(tmp_path, "ca", "hash", "--dir", str(mesh))
    assert r.returncode == 0, r.stderr
    ca_hash = r.stdout.strip()
    assert ca_hash == CertificateAuthority.load(mesh).cert_hash
    assert ca_hash == ca_cert_hash((mesh / "ca.crt").read_bytes())
    other = CertificateAuthority.init(tmp_path / "other", TD).cert_hash

    seed_token = run_cli(tmp_path, "token", "create", "--dir", str(mesh)).stdout.strip()
    seed_log = tmp_path / "seed.log"
    seed = _start(
        tmp_path, seed_log, "node", "start", "--dir", str(mesh), "--name", "seed",
        "--token", seed_token, "--enroll-listen", "127.0.0.1:0",
    )  # fmt: skip
    procs = [seed]
    try:
        info = _wait_info(mesh / "nodes" / "seed" / "node.json", seed, seed_log)
        assert info["ca_hash"] == ca_hash
        r = run_cli(tmp_path, "token", "create", "--dir", str(mesh), "--ttl", "5m")
        token = r.stdout.strip()
        assert len(r.stdout.splitlines()) == 1  # stdout is the token alone, as before
        join = (
            f"hyperion node start --dir DIR --name NAME --join {info['mesh_addr']} "
            f"--enroll {info['enroll_addr']} --token {token} --ca-hash {ca_hash}"
        )
        assert join in r.stderr
        args = join.split()[1:]
        args[args.index("DIR")] = str(edge)
        args[args.index("NAME")] = "edge-1"

        def with_flag(flag: str, value: str) -> list[str]:
            out = list(args)
            out[out.index(flag) + 1] = value
            return out

        err = _last_error(run_cli(tmp_path, *with_flag("--ca-hash", other)))
        assert "does not match --ca-hash" in err and "token was not sent" in err
        assert not edge.exists()
        assert _token_used(mesh)[-1] is None
        err = _last_error(run_cli(tmp_path, *with_flag("--token", "hyp1.wrong")))
        assert "unknown join token" in err
        assert not edge.exists()

        edge_log = tmp_path / "edge.log"
        node = _start(tmp_path, edge_log, *args)
        procs.append(node)
        edge_info = _wait_info(edge / "nodes" / "edge-1" / "node.json", node, edge_log)
        assert not CertificateAuthority.exists(edge)
        assert _token_used(mesh)[-1] is not None

        async def members() -> dict[str, str]:
            user = CertificateAuthority.load(mesh).issue_svid(user_spiffe_id(TD, "t"), ttl_s=60)
            reply = await call_admin(str(info["mesh_addr"]), user, "Members")
            return {m.node_id: m.state for m in reply.members}

        deadline = time.monotonic() + 10
        while asyncio.run(members()).get(str(edge_info["node_id"])) != "alive":
            assert time.monotonic() < deadline, "the seed never saw the edge alive"
            time.sleep(0.1)
        err = _last_error(run_cli(tmp_path, *with_flag("--name", "edge-2")))
        assert "join token already used" in err
        assert not (edge / "nodes" / "edge-2").exists()
    finally:
        codes = [_stop(p) for p in reversed(procs)]
    assert codes == [0] * len(procs), [p.read_text()[-2000:] for p in (seed_log,)]


def test_cli_bad_enrollment_flags(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh"
    CertificateAuthority.init(mesh, TD)
    good = "sha256:" + "ab" * 32
    node = ["node", "start", "--name", "n"]
    cases = [
        ([*node, "--dir", str(tmp_path / "e"), "--enroll", "h:1"], "--enroll needs --ca-hash"),
        ([*node, "--dir", str(tmp_path / "e"), "--ca-hash", good], "--ca-hash needs --enroll"),
        ([*node, "--dir", str(tmp_path / "e"), "--enroll", "h:1", "--ca-hash", "md5:1"], "hash"),
        ([*node, "--dir", str(tmp_path / "e"), "--enroll", "nope", "--ca-hash", good], "address"),
        ([*node, "--dir", str(tmp_path / "e"), "--enroll-listen", "127.0.0.1:0"], "needs the CA"),
        (["ca", "hash", "--dir", str(tmp_path / "e")], "no CA certificate"),
    ]
    for args, text in cases:
        r = run_cli(tmp_path, *args)
        assert text in _last_error(r), (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "e").exists()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_ca_hash_is_the_sha256_of_the_subject_public_key_info(tmp_path: Path) -> None:
    # The README's recipe, as kubeadm documents it for --discovery-token-ca-cert-hash.
    ca = CertificateAuthority.init(tmp_path / "ca", TD)
    pub = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout", "-in", str(tmp_path / "ca" / "ca.crt")],
        capture_output=True,
        check=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True, check=True
    ).stdout
    assert ca.cert_hash == "sha256:" + hashlib.sha256(der).hexdigest()
