"""The official ``kubernetes`` Python client, unchanged, against real nodes.

Also the raw HTTPS edge cases kubectl cannot produce: undecodable bodies (400), stale
resourceVersions (409 Conflict), a JSON patch, a watch from a resourceVersion with
bookmarks, selectors, and a TLS handshake without a client certificate.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from kube_helpers import eventually, mesh, raw_request
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

HWL = {
    "apiVersion": "hyperion.io/v1alpha1",
    "kind": "HyperionWorkload",
    "metadata": {"name": "py-hwl", "labels": {"team": "ml"}},
    "spec": {
        "replicas": 1,
        "template": {"spec": {"containers": [{"name": "c", "image": "img", "command": ["true"]}]}},
        "policy": {"goal": "cost"},
    },
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> tuple[client.ApiClient, Path, list[dict]]:
    dir = tmp_path_factory.mktemp("pyclient")
    with mesh(dir, 2) as infos:
        apic = config.new_client_from_config(str(dir / "kubeconfig"), context="node-1")
        yield apic, dir, infos
        apic.close()


def test_nodes_and_namespaces(api: tuple[client.ApiClient, Path, list[dict]]) -> None:
    apic, _, _ = api
    core = client.CoreV1Api(apic)
    nodes = eventually(lambda: len(core.list_node().items) == 2 and core.list_node().items)
    assert {n.metadata.name for n in nodes} == {"node-1", "node-2"}
    assert all(n.status.conditions[0].type == "Ready" for n in nodes)
    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system"} <= names
    v = client.VersionApi(apic).get_code()
    assert v.major == "1" and v.minor == "32"


def test_custom_objects_crud_patch_conflict(api: tuple[client.ApiClient, Path, list[dict]]) -> None:
    apic, _, _ = api
    co = client.CustomObjectsApi(apic)
    args = ("hyperion.io", "v1alpha1", "default", "hyperionworkloads")
    created = co.create_namespaced_custom_object(*args, HWL)
    assert created["spec"]["policy"]["consistency"] == "eventual"  # defaulted
    rv = created["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object(*args, HWL)
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "AlreadyExists"
    patched = co.patch_namespaced_custom_object(*args, "py-hwl", {"spec": {"replicas": 3}})
    assert patched["spec"]["replicas"] == 3 and patched["metadata"]["resourceVersion"] != rv
    stale = dict(created)
    stale["spec"] = dict(created["spec"], replicas=5)
    with pytest.raises(ApiException) as e:
        co.replace_namespaced_custom_object(*args, "py-hwl", stale)
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "Conflict"
    got = co.get_namespaced_custom_object(*args, "py-hwl")
    assert got["spec"]["replicas"] == 3  # the stale write changed nothing
    listed = co.list_namespaced_custom_object(*args, label_selector="team=ml")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["py-hwl"]
    assert co.list_namespaced_custom_object(*args, label_selector="team=web")["items"] == []
    co.delete_namespaced_custom_object(*args, "py-hwl")
    with pytest.raises(ApiException) as e:
        co.get_namespaced_custom_object(*args, "py-hwl")
    assert e.value.status == 404


def test_invalid_objects_get_422_with_field_paths(
    api: tuple[client.ApiClient, Path, list[dict]],
) -> None:
    apic, _, _ = api
    co = client.CustomObjectsApi(apic)
    args = ("hyperion.io", "v1alpha1", "default", "hyperionworkloads")
    bad = json.loads(json.dumps(HWL))
    bad["metadata"]["name"] = "bad"
    bad["spec"]["replicas"] = -2
    bad["spec"]["policy"]["goal"] = "speed"
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object(*args, bad)
    status = json.loads(e.value.body)
    assert e.value.status == 422 and status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert {"spec.replicas", "spec.policy.goal"} <= fields
    with pytest.raises(ApiException):
        co.get_namespaced_custom_object(*args, "bad")


def test_watch_from_resource_version(api: tuple[client.ApiClient, Path, list[dict]]) -> None:
    apic, _, _ = api
    core = client.CoreV1Api(apic)
    rv = core.list_namespaced_service("default").metadata.resource_version
    seen: list[tuple[str, str]] = []

    def run() -> None:
        w = watch.Watch()
        for ev in w.stream(
            core.list_namespaced_service,
            "default",
            resource_version=rv,
            timeout_seconds=10,
            allow_watch_bookmarks=True,
        ):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="watched"),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]),
    )
    core.create_namespaced_service("default", svc)
    core.patch_namespaced_service("watched", "default", {"metadata": {"labels": {"a": "b"}}})
    core.delete_namespaced_service("watched", "default")
    t.join(15)
    assert seen == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]


def test_field_selectors(api: tuple[client.ApiClient, Path, list[dict]]) -> None:
    apic, _, _ = api
    core = client.CoreV1Api(apic)
    for name, node in (("p1", "node-1"), ("p2", "node-2")):
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(
                node_name=node, containers=[client.V1Container(name="c", image="busybox")]
            ),
        )
        core.create_namespaced_pod("default", pod)
    on2 = core.list_namespaced_pod("default", field_selector="spec.nodeName=node-2")
    assert [p.metadata.name for p in on2.items] == ["p2"]
    by_name = core.list_pod_for_all_namespaces(field_selector="metadata.name=p1")
    assert [p.metadata.name for p in by_name.items] == ["p1"]
    with pytest.raises(ApiException) as e:
        core.list_namespaced_pod("default", field_selector="spec.bogus=1")
    assert e.value.status == 400
    core.delete_collection_namespaced_pod("default")
    assert core.list_namespaced_pod("default").items == []


def test_undecodable_bodies_get_400(api: tuple[client.ApiClient, Path, list[dict]]) -> None:
    _, dir, infos = api
    addr = str(infos[0]["api_addr"])
    code, status = raw_request(
        dir, addr, "POST", "/api/v1/namespaces/default/services", b"{not json", "application/json"
    )
    assert code == 400 and status["reason"] == "BadRequest"
    code, status = raw_request(
        dir, addr, "PATCH", "/api/v1/namespaces/default", b'[{"op":"explode"}]',
        "application/json-patch+json",
    )  # fmt: skip
    assert code in (400, 422) and status["kind"] == "Status"
    code, status = raw_request(dir, addr, "GET", "/api/v1/namespaces/default/pods/none", b"", "")
    assert code == 404 and status["reason"] == "NotFound"


def test_json_patch(api: tuple[client.ApiClient, Path, list[dict]]) -> None:
    apic, _, _ = api
    core = client.CoreV1Api(apic)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="jp")))
    ns = core.patch_namespace("jp", [{"op": "add", "path": "/metadata/labels/x", "value": "y"}])
    assert ns.metadata.labels["x"] == "y"
    core.delete_namespace("jp")


def test_no_client_certificate_is_refused_at_handshake(
    api: tuple[client.ApiClient, Path, list[dict]],
) -> None:
    _, dir, infos = api
    host, port = str(infos[0]["api_addr"]).rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError, OSError)),
        ctx.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        if not tls.recv(1024):
            raise ConnectionResetError("closed")
    p = subprocess.run(
        ["openssl", "s_client", "-connect", f"{host}:{port}", "-brief"],
        input="GET /version HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert "HTTP/1" not in p.stdout


def test_certificate_expiring_mid_connection_gets_401(
    api: tuple[client.ApiClient, Path, list[dict]], tmp_path: Path
) -> None:
    """Continuous authorization: the same TLS connection stops working at expiry."""
    import time

    from hyperion.identity.ca import CertificateAuthority
    from hyperion.identity.spiffe import user_spiffe_id

    _, dir, infos = api
    ca = CertificateAuthority.load(dir)
    svid = ca.issue_svid(
        user_spiffe_id(ca.trust_domain, "brief"), ttl_s=1.5, groups=("system:masters",)
    )
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_bytes(svid.cert_pem)
    key.write_bytes(svid.key_pem)
    ctx = ssl.create_default_context(cadata=ca.bundle_pem.decode())
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, key)
    host, port = str(infos[0]["api_addr"]).rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=ctx)
    conn.request("GET", "/api/v1/namespaces/default")
    first = conn.getresponse()
    first.read()
    assert first.status == 200
    time.sleep(max(0.0, svid.not_after - time.time()) + 1.1)
    conn.request("GET", "/api/v1/namespaces/default")
    second = conn.getresponse()
    status = json.loads(second.read())
    conn.close()
    assert second.status == 401 and status["reason"] == "Unauthorized"
    assert "expired" in status["message"]
