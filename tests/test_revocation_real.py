"""Revocation on a real mesh: three node processes, mutual TLS, the real CLI.

``hyperion ca revoke`` of a node: the others mark it dead, refuse its envelopes on open
streams, and refuse its renewal (locally and over the network). A revoked user: the
next request on the same keep-alive HTTPS connection gets 401, the admin gRPC refuses
it too, on the live nodes, although only one node was handed the record (gossip did
the rest). Timings are printed (``pytest -s``) for the README.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from kube_helpers import eventually, mesh

from hyperion.daemon import NodeOptions, obtain_svid
from hyperion.identity.ca import CertificateAuthority, Svid
from hyperion.identity.errors import EnrollError, IdentityError
from hyperion.identity.keys import NodeKey
from hyperion.identity.spiffe import user_spiffe_id
from hyperion.net import wire_pb2
from hyperion.net.enroll import renew
from hyperion.net.transport import call_admin

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")

TD = "kube.test"
SPREAD_TIMEOUT_S = 10.0


def _hyperion(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hyperion", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _ssl(svid: Svid, tmp: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=svid.bundle_pem.decode())
    ctx.check_hostname = False
    svid.write(tmp)
    ctx.load_cert_chain(tmp / "svid.crt", tmp / "svid.key")
    return ctx


def _admin(addr: str, svid: Svid, method: str, request: object = None) -> object:
    return asyncio.run(call_admin(addr, svid, method, 5.0, request=request))


def _states(addr: str, svid: Svid) -> dict[str, str]:
    reply = _admin(addr, svid, "Members")
    return {m.name: m.state for m in reply.members}  # type: ignore[attr-defined]


def _counter(addr: str, svid: Svid, name: str) -> int:
    return int(_admin(addr, svid, "Members").counters.get(name, 0))  # type: ignore[attr-defined]


def test_revoke_a_node_and_a_user_on_a_real_mesh(tmp_path: Path) -> None:
    d = tmp_path / "mesh"
    with mesh(d, 3) as infos:
        ca = CertificateAuthority.load(d)
        cli = ca.issue_svid(user_spiffe_id(TD, "ops"), ttl_s=600)
        by = {str(i["name"]): i for i in infos}
        mesh_addr = {n: str(i["mesh_addr"]) for n, i in by.items()}
        for n in by:
            eventually(lambda n=n: set(_states(mesh_addr[n], cli).values()) == {"alive"})

        # A user with an open keep-alive connection to node-2's API.
        alice = ca.issue_svid(user_spiffe_id(TD, "alice"), ttl_s=600, groups=("system:masters",))
        host, port = str(by["node-2"]["api_addr"]).rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), context=_ssl(alice, tmp_path / "a"))
        conn.request("GET", "/api/v1/namespaces")
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        resp.read()
        sock = conn.sock
        assert _states(mesh_addr["node-2"], alice)  # the admin API takes her, too

        # --- revoke node-3 with the CLI ---------------------------------------------
        assert _hyperion("ca", "revoke", "--dir", str(d), "nope").returncode == 2
        t0 = time.monotonic()
        r = _hyperion("ca", "revoke", "--dir", str(d), "node-3", "--reason", "test")
        assert r.returncode == 0, r.stderr
        assert "revoked spiffe://kube.test/node/" in r.stdout
        assert "node-1: ok" in r.stdout and "node-2: ok" in r.stdout
        for n in ("node-1", "node-2"):
            eventually(lambda n=n: _states(mesh_addr[n], cli)["node-3"] == "dead", SPREAD_TIMEOUT_S)
        node_dead_s = time.monotonic() - t0
        # node-3 still runs and sends: its envelopes are refused on the mesh port.
        eventually(
            lambda: (
                sum(_counter(mesh_addr[n], cli, "rejected_revoked") for n in ("node-1", "node-2"))
                > 0
            ),
            SPREAD_TIMEOUT_S,
        )
        time.sleep(2.0)  # it cannot talk its way back in
        assert _states(mesh_addr["node-1"], cli)["node-3"] == "dead"
        listed = _hyperion("ca", "revocations", "--dir", str(d), "--json")
        assert json.loads(listed.stdout)[0]["reason"] == "test"

        # Its renewal is refused: locally (it holds the CA) and over the network.
        n3 = d / "nodes" / "node-3"
        key3 = NodeKey.load(n3 / "node.key")
        with pytest.raises(IdentityError, match="is revoked"):
            obtain_svid(NodeOptions(dir=d, name="node-3"), key3, ca)
        with pytest.raises(EnrollError, match="revoked"):
            asyncio.run(renew(mesh_addr["node-1"], Svid.read(n3), ttl_s=60.0))

        # --- revoke alice at node-1 only: gossip brings it to node-2 -----------------
        user_rec = subprocess.run(  # sign with the library, hand over through node-1 only
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; "
                "from hyperion.identity import revocation as r; "
                "from hyperion.identity.ca import CertificateAuthority as C; "
                "ca = C.load(Path(sys.argv[1])); "
                "sys.stdout.write(r.sign(ca, sys.argv[2], reason='left').to_bytes().decode())",
                str(d),
                user_spiffe_id(TD, "alice"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.encode()
        t1 = time.monotonic()
        _admin(mesh_addr["node-1"], cli, "Revoke", wire_pb2.RevokeRequest(record=user_rec))

        def refused() -> bool:
            conn.request("GET", "/api/v1/namespaces")
            resp = conn.getresponse()
            body = json.loads(resp.read())
            if resp.status == 200:
                return False
            assert resp.status == 401 and body["kind"] == "Status", body
            assert "revoked" in body["message"]
            return True

        eventually(refused, SPREAD_TIMEOUT_S, interval=0.02)
        user_refused_s = time.monotonic() - t1
        assert conn.sock is sock  # the same TLS connection all along
        conn.close()
        for n in ("node-1", "node-2"):
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                _states(mesh_addr[n], alice)
            assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "revoked" in (exc.value.details() or "")
        assert _states(mesh_addr["node-1"], cli)  # others still work
        bad = _admin_error(mesh_addr["node-1"], cli, b"{}")
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
        print(
            f"\nrevocation timings: node dead at both peers {node_dead_s:.2f} s after "
            f"`hyperion ca revoke` started (CLI start-up included); user refused by "
            f"node-2's API {user_refused_s:.2f} s after node-1 took the record"
        )


def _admin_error(addr: str, svid: Svid, record: bytes) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        _admin(addr, svid, "Revoke", wire_pb2.RevokeRequest(record=record))
    return exc.value
