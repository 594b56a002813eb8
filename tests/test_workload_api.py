"""The SPIFFE Workload API over a real Unix socket: real pods, real gRPC, real certificates.

Each test runs a ``WorkloadEndpoint`` and a ``PodManager`` over the process runtime in
its own loop. Pods are ``python -c`` children that find the socket in
``SPIFFE_ENDPOINT_SOCKET``, call it with the generated stub and write what they got
(hex DER, or the gRPC status) as JSON into their working directory and to stdout.
The last test runs the same client as a pod of a real node, applied with kubectl.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kube_helpers import KUBECTL, Kubectl, eventually, mesh

from hyperion.identity import revocation
from hyperion.identity.ca import CertificateAuthority, verify_chain
from hyperion.net import workload_pb2, workload_pb2_grpc
from hyperion.net.workload_api import (
    HEADER,
    SOCKET_NAME,
    WorkloadApiError,
    WorkloadEndpoint,
    WorkloadSvids,
    ancestry,
    attest_pid,
    check_socket_path,
)
from hyperion.runtime.pods import PodManager
from hyperion.runtime.process import ProcessRuntime

ROOT = Path(__file__).resolve().parents[1]
TD = "example.org"
WORKLOAD = f"spiffe://{TD}/ns/default/sa/default"

# argv: mode ("svid" or "bundles"), messages to read. Writes result.json in its cwd.
CLIENT = """
import json, os, sys
import grpc
from hyperion.net import workload_pb2, workload_pb2_grpc
mode, want = sys.argv[1], int(sys.argv[2])
stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(
    grpc.insecure_channel(os.environ["SPIFFE_ENDPOINT_SOCKET"]))
md = [("workload.spiffe.io", "true")]
out = []
try:
    if mode == "svid":
        for r in stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=md, timeout=20):
            s = r.svids[0]
            out.append({"id": s.spiffe_id, "cert": s.x509_svid.hex(),
                        "key": s.x509_svid_key.hex(), "bundle": s.bundle.hex()})
            if len(out) >= want:
                break
    else:
        for r in stub.FetchX509Bundles(workload_pb2.X509BundlesRequest(), metadata=md, timeout=20):
            out.append({k: v.hex() for k, v in r.bundles.items()})
            break
except grpc.RpcError as e:
    out.append({"code": e.code().name, "details": e.details()})
with open("result.tmp", "w") as f:
    json.dump(out, f)
os.rename("result.tmp", "result.json")
print(json.dumps(out))
"""


def client_pod(name: str, mode: str = "svid", messages: int = 1, *, wrap: bool = False) -> Any:
    argv = [sys.executable, "-c", CLIENT, mode, str(messages)]
    if wrap:  # run the client as a grandchild of the container's main process
        argv = [
            sys.executable,
            "-c",
            "import subprocess, sys; subprocess.call(sys.argv[1:])",
        ] + argv
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {
            "nodeName": "n1",
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": "python",
                    "command": argv,
                    "env": [{"name": "PYTHONPATH", "value": str(ROOT)}],
                }
            ],
        },
    }


class Env:
    def __init__(self, tmp: Path, *, ttl_s: float = 3600.0, with_ca: bool = True) -> None:
        self.ca = CertificateAuthority.init(tmp / "ca", TD)
        self.revocations = revocation.RevocationList()
        self.svids = WorkloadSvids(self.ca if with_ca else None, self.revocations, ttl_s=ttl_s)
        self.sock = tmp / SOCKET_NAME
        self.root = tmp / "pods"
        self.runtime = ProcessRuntime(cgroup_root=None, workload_socket=self.sock)
        self.pm = PodManager(
            node_name="n1",
            host_ip="127.0.0.1",
            root=self.root,
            runtimes={"process": self.runtime},
            publish=lambda ns, name, status: None,
            record_event=lambda obj, t, r, m: None,
        )
        self.endpoint = WorkloadEndpoint(
            self.sock,
            TD,
            attest=lambda pid: attest_pid(pid, self.pm.workloads()),
            svids=self.svids,
            bundle=lambda: self.ca.bundle_pem,
        )

    async def result(self, name: str, timeout_s: float = 20.0) -> list[dict[str, str]]:
        path = self.root / "default" / name / "c" / "result.json"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not path.exists():
            assert loop.time() < deadline, f"pod {name} wrote no result"
            await asyncio.sleep(0.02)
        out: list[dict[str, str]] = json.loads(path.read_text())
        return out


def run(tmp: Path, body: Callable[[Env], Awaitable[None]], **kwargs: Any) -> None:
    async def main() -> None:
        env = Env(tmp, **kwargs)
        await env.endpoint.start()
        try:
            await body(env)
        finally:
            await env.pm.close()
            await env.runtime.close()
            await env.endpoint.stop()

    asyncio.run(main())


def check_svid(env: Env, got: dict[str, str]) -> x509.Certificate:
    """The SVID chains to the CA, names the workload, and its key is the cert's key."""
    assert got["id"] == WORKLOAD
    cert = x509.load_der_x509_certificate(bytes.fromhex(got["cert"]))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    bundle = x509.load_der_x509_certificate(bytes.fromhex(got["bundle"]))
    assert bundle.public_bytes(serialization.Encoding.PEM) == env.ca.bundle_pem
    issued = cert.not_valid_before_utc.timestamp() + 60
    assert verify_chain(cert_pem, env.ca.bundle_pem, now=issued) == WORKLOAD
    key = serialization.load_der_private_key(bytes.fromhex(got["key"]), password=None)
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
    return cert


def test_a_pod_gets_its_workload_svid(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        assert env.sock.stat().st_mode & 0o777 == 0o600
        await env.pm.sync([client_pod("app", wrap=True)])
        (got,) = await env.result("app")
        cert = check_svid(env, got)
        ttl_s = cert.not_valid_after_utc.timestamp() - cert.not_valid_before_utc.timestamp()
        assert ttl_s == 3600 + 60  # back-dated 60 s for slow clocks

    run(tmp_path, body)


def test_rotation_pushes_a_new_svid_on_the_open_stream(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        await env.pm.sync([client_pod("app", messages=2)])
        first, second = await env.result("app")
        a, b = check_svid(env, first), check_svid(env, second)
        assert a.serial_number != b.serial_number
        assert first["key"] != second["key"]
        assert env.svids.issued == 2

    run(tmp_path, body, ttl_s=2.0)  # renewed at half-life: 1 s


def test_bundles_are_the_trust_domains_bundle(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        await env.pm.sync([client_pod("app", "bundles")])
        (got,) = await env.result("app")
        der = x509.load_pem_x509_certificate(env.ca.bundle_pem).public_bytes(
            serialization.Encoding.DER
        )
        assert got == {f"spiffe://{TD}": der.hex()}

    run(tmp_path, body)


def test_a_revoked_workload_id_is_refused(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        env.revocations.add(revocation.sign(env.ca, WORKLOAD, reason="test"))
        await env.pm.sync([client_pod("app")])
        (got,) = await env.result("app")
        assert got["code"] == "PERMISSION_DENIED"
        assert env.svids.issued == 0

    run(tmp_path, body)


def test_revocation_ends_an_open_stream(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        await env.pm.sync([client_pod("app", messages=2)])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while env.svids.issued == 0:
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
        env.revocations.add(revocation.sign(env.ca, WORKLOAD, reason="test"))
        first, second = await env.result("app")
        check_svid(env, first)
        assert second["code"] == "PERMISSION_DENIED"
        assert env.svids.issued == 1

    run(tmp_path, body)


def test_a_node_without_the_ca_is_unavailable(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        await env.pm.sync([client_pod("app")])
        (got,) = await env.result("app")
        assert got["code"] == "UNAVAILABLE"
        assert "remote issuance is not built yet" in got["details"]

    run(tmp_path, body, with_ca=False)


async def call(env: Env, metadata: tuple[tuple[str, str], ...]) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(f"unix://{env.sock}") as ch:
        stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(ch)
        stream = stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=metadata)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stream.read()
    return e.value


def test_a_process_that_is_no_pod_is_denied(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        err = await call(env, ((HEADER, "true"),))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert err.details() == "no workload identity for this process"

    run(tmp_path, body)


def test_a_request_without_the_security_header_is_invalid(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        err = await call(env, ())
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert HEADER in (err.details() or "")

    run(tmp_path, body)


def test_socket_paths_longer_than_sun_path_fail_clearly(tmp_path: Path) -> None:
    check_socket_path(Path("/" + "d" * 106))
    with pytest.raises(WorkloadApiError, match="at most 107"):
        check_socket_path(Path("/" + "d" * 107))


def test_ancestry_reaches_this_process_from_a_child() -> None:
    import os

    assert ancestry(os.getpid())[:2] == [os.getpid(), os.getppid()]
    assert attest_pid(os.getpid(), {os.getppid(): ("ns", "sa")}) == ("ns", "sa")
    assert attest_pid(os.getpid(), {}) is None


@pytest.mark.skipif(not Path(KUBECTL).exists(), reason=f"no kubectl at {KUBECTL}")
def test_a_pod_of_a_real_node_gets_the_svid_of_its_service_account(tmp_path: Path) -> None:
    obj = client_pod("wapi")
    obj["spec"].pop("nodeName")
    obj["spec"]["serviceAccountName"] = "builder"
    with mesh(tmp_path, 1):
        kube = Kubectl(tmp_path)
        kube.run("apply", "-f", "-", input=json.dumps(obj))
        eventually(
            lambda: kube.json("get", "pod", "wapi")["status"].get("phase") == "Succeeded",
            timeout=20,
        )
        (got,) = json.loads(kube.run("logs", "wapi").stdout.strip().splitlines()[-1])
    assert got["id"] == "spiffe://kube.test/ns/default/sa/builder"
    cert = x509.load_der_x509_certificate(bytes.fromhex(got["cert"]))
    bundle_pem = (tmp_path / "ca.crt").read_bytes()
    issued = cert.not_valid_before_utc.timestamp() + 60
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    assert verify_chain(cert_pem, bundle_pem, now=issued) == got["id"]
