"""Kubernetes protobuf request bodies: the decoder alone, then real kubectl on a real node.

The unit tests build bodies as a Go client marshals them (zero non-pointer fields written
out, Go's zero time as an empty message) and compare the decoded object with the JSON
Go would have written. The end-to-end tests run the kubectl generators that send
protobuf (``create namespace|deployment|job|service``, ``run``, ``expose``) against a
1-node mesh and read the objects back as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st
from kube_helpers import KUBECTL, KUBECTL_OTHER, Kubectl, mesh, raw_request

from hyperion.api import k8sproto
from hyperion.api.errors import ApiError
from hyperion.api.k8spb.gofields import INLINE_FIELDS, POINTER_FIELDS

MEDIA = k8sproto.MEDIA_TYPE


def new(full_name: str) -> Any:
    return k8sproto.message_class(full_name)()


def body(api_version: str, kind: str, msg: Message | bytes, **envelope: str) -> bytes:
    """``k8s\\x00`` + runtime.Unknown, as apimachinery's protobuf serializer writes it."""
    unknown = new("k8s.io.apimachinery.pkg.runtime.Unknown")
    unknown.typeMeta.apiVersion = api_version
    unknown.typeMeta.kind = kind
    unknown.raw = msg if isinstance(msg, bytes) else msg.SerializeToString()
    for key, value in envelope.items():
        setattr(unknown, key, value)
    return k8sproto.MAGIC + unknown.SerializeToString()


def deployment() -> Any:
    d = new("k8s.io.api.apps.v1.Deployment")
    d.metadata.name = "web"
    d.metadata.namespace = ""  # Go writes non-pointer fields even when zero ...
    d.metadata.generation = 0
    d.metadata.creationTimestamp.SetInParent()  # ... and its zero time as an empty message
    d.metadata.labels["app"] = "web"
    d.spec.replicas = 3
    d.spec.minReadySeconds = 0
    d.spec.selector.matchLabels["app"] = "web"
    d.spec.strategy.type = "RollingUpdate"
    d.spec.strategy.rollingUpdate.maxSurge.type = 1
    d.spec.strategy.rollingUpdate.maxSurge.strVal = "25%"
    d.spec.strategy.rollingUpdate.maxUnavailable.intVal = 0
    tpl = d.spec.template
    tpl.metadata.creationTimestamp.SetInParent()
    tpl.metadata.labels["app"] = "web"
    c = tpl.spec.containers.add()
    c.name, c.image, c.imagePullPolicy, c.stdin = "web", "busybox", "", False
    c.command.extend(["sleep", "3600"])
    c.resources.limits["cpu"].string = "500m"
    c.resources.limits["memory"].string = "128Mi"
    c.resources.requests["cpu"].string = "100m"
    port = c.ports.add()
    port.containerPort, port.protocol, port.hostPort = 8080, "TCP", 0
    c.readinessProbe.handler.httpGet.path = "/healthz"  # Probe embeds ProbeHandler
    c.readinessProbe.handler.httpGet.port.type = 1
    c.readinessProbe.handler.httpGet.port.strVal = "http"
    c.readinessProbe.periodSeconds = 5
    v = tpl.spec.volumes.add()  # Volume embeds VolumeSource
    v.name = "scratch"
    v.volumeSource.emptyDir.SetInParent()
    tpl.spec.hostNetwork = False  # non-pointer: dropped
    tpl.spec.terminationGracePeriodSeconds = 0  # pointers: kept
    tpl.spec.automountServiceAccountToken = False
    tpl.spec.securityContext.runAsUser = 0
    d.status.SetInParent()
    return d


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "template": {
            "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "busybox",
                        "command": ["sleep", "3600"],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "100m"},
                        },
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http"},
                            "periodSeconds": 5,
                        },
                    }
                ],
                "volumes": [{"name": "scratch", "emptyDir": {}}],
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": False,
                "securityContext": {"runAsUser": 0},
            },
        },
    },
    "status": {},
}


def test_deployment_decodes_to_the_json_go_writes() -> None:
    out = k8sproto.decode(body("apps/v1", "Deployment", deployment()))
    assert out == DEPLOYMENT
    assert list(out)[:2] == ["apiVersion", "kind"]


def test_service_with_an_int_target_port() -> None:
    s = new("k8s.io.api.core.v1.Service")
    s.metadata.name = "s"
    p = s.spec.ports.add()
    p.name, p.protocol, p.port, p.nodePort = "80-8080", "TCP", 80, 0
    p.targetPort.intVal = 8080
    s.spec.selector["app"] = "s"
    s.spec.type, s.spec.clusterIP = "ClusterIP", ""
    s.spec.internalTrafficPolicy = "Cluster"  # a pointer to a string type
    assert k8sproto.decode(body("v1", "Service", s)) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "s"},
            "type": "ClusterIP",
            "internalTrafficPolicy": "Cluster",
        },
    }


def test_times_and_managed_fields() -> None:
    e = new("k8s.io.api.core.v1.Event")
    e.metadata.name = "e"
    m = e.metadata.managedFields.add()
    m.manager, m.operation, m.fieldsType = "kubectl", "Update", "FieldsV1"
    m.fieldsV1.Raw = b'{"f:spec":{"f:replicas":{}}}'
    m.time.seconds = 1704164645
    e.eventTime.seconds, e.eventTime.nanos = 1704164645, 123456789
    e.lastTimestamp.seconds, e.lastTimestamp.nanos = 1704164645, 999  # Time keeps seconds
    e.firstTimestamp.SetInParent()
    e.metadata.deletionTimestamp.seconds = 0  # set but zero: the Unix epoch, not null
    out = k8sproto.decode(body("v1", "Event", e))
    assert out["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Update",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
            "time": "2024-01-02T03:04:05Z",
        }
    ]
    assert out["eventTime"] == "2024-01-02T03:04:05.123456Z"
    assert out["lastTimestamp"] == "2024-01-02T03:04:05Z"
    assert out["firstTimestamp"] is None
    assert out["metadata"]["deletionTimestamp"] == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (10**9, "1s"),
        (90 * 10**9, "1m30s"),
        (3600 * 10**9, "1h0m0s"),
        (3723_500_000_000, "1h2m3.5s"),
        (-5 * 10**9, "-5s"),
    ],
)
def test_duration_is_gos_string(ns: int, text: str) -> None:
    d = new("k8s.io.apimachinery.pkg.apis.meta.v1.Duration")
    d.duration = ns
    assert k8sproto.to_json(d) == text


def test_bytes_are_base64_and_raw_extensions_json() -> None:
    s = new("k8s.io.api.core.v1.Secret")
    s.data["k"] = b"\x00\xff"
    s.immutable = False  # a pointer: kept
    assert k8sproto.to_json(s) == {"data": {"k": "AP8="}, "immutable": False}
    r = new("k8s.io.apimachinery.pkg.runtime.RawExtension")
    r.raw = b'{"a": [1, 2]}'
    assert k8sproto.to_json(r) == {"a": [1, 2]}


def test_delete_options() -> None:
    o = new("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
    o.gracePeriodSeconds = 0
    o.propagationPolicy = "Foreground"
    for av in ("v1", "meta.k8s.io/v1"):
        assert k8sproto.decode(body(av, "DeleteOptions", o)) == {
            "apiVersion": av,
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "propagationPolicy": "Foreground",
        }


def test_go_field_tables_name_fields_of_the_vendored_messages() -> None:
    for full in POINTER_FIELDS | INLINE_FIELDS:
        message, _, field = full.rpartition(".")
        fd = k8sproto.message_class(message).DESCRIPTOR.fields_by_name[field]
        assert (fd.message_type is None) == (full in POINTER_FIELDS), full
    assert "k8s.io.api.apps.v1.DeploymentSpec.replicas" in POINTER_FIELDS
    assert "k8s.io.api.apps.v1.DeploymentSpec.minReadySeconds" not in POINTER_FIELDS
    assert "k8s.io.api.core.v1.Probe.handler" in INLINE_FIELDS


def test_served_kinds() -> None:
    kinds = {kind for _, kind in k8sproto.kinds()}
    assert {"Namespace", "Pod", "Service", "Deployment", "StatefulSet", "Job"} <= kinds
    assert "HyperionWorkload" not in kinds


# ------------------------------------------------------------------ bad bodies


def _bad_utf8_name() -> bytes:
    return body("v1", "Namespace", b"\x0a\x03\x0a\x01\xff")  # metadata.name = b"\xff"


def _bad_int_or_string() -> bytes:
    s = new("k8s.io.api.core.v1.Service")
    s.spec.ports.add().targetPort.type = 7
    return body("v1", "Service", s)


def _time_out_of_range() -> bytes:
    n = new("k8s.io.api.core.v1.Namespace")
    n.metadata.creationTimestamp.seconds = 10**15
    return body("v1", "Namespace", n)


def _fields_not_json() -> bytes:
    n = new("k8s.io.api.core.v1.Namespace")
    n.metadata.managedFields.add().fieldsV1.Raw = b"{nope"
    return body("v1", "Namespace", n)


GOOD = body("apps/v1", "Deployment", deployment())
RAW = deployment().SerializeToString()

BAD_BODIES = [
    ("empty", b"", 400, "prefix"),
    ("json", b'{"kind": "Namespace"}', 400, "prefix"),
    ("truncated envelope", GOOD[: len(GOOD) // 2], 400, "could not be decoded"),
    ("truncated raw", body("apps/v1", "Deployment", RAW[: len(RAW) // 2]), 400, "decoded"),
    ("garbage raw", body("apps/v1", "Deployment", b"\xff\xff\xff\xff"), 400, "Deployment"),
    ("no kind", k8sproto.MAGIC, 400, "no apiVersion and kind"),
    ("unknown kind", body("v1", "ConfigMap", b""), 415, "ConfigMap"),
    ("custom resource", body("hyperion.io/v1alpha1", "HyperionWorkload", b""), 415, "Hyperion"),
    ("gzip", body("v1", "Namespace", b"", contentEncoding="gzip"), 415, "gzip"),
    ("json inside", body("v1", "Namespace", b"{}", contentType="application/json"), 415, "json"),
    ("bad utf-8", _bad_utf8_name(), 400, "UTF-8"),
    ("bad int-or-string", _bad_int_or_string(), 400, "IntOrString"),
    ("time out of range", _time_out_of_range(), 400, "out of range"),
    ("fields not json", _fields_not_json(), 400, "not JSON"),
]


@pytest.mark.parametrize(("data", "code", "words"), [b[1:] for b in BAD_BODIES],
                         ids=[b[0] for b in BAD_BODIES])  # fmt: skip
def test_bad_bodies_are_a_status_error(data: bytes, code: int, words: str) -> None:
    with pytest.raises(ApiError) as e:
        k8sproto.decode(data)
    assert e.value.code == code and words in e.value.message, e.value.message
    assert e.value.status()["reason"] in ("BadRequest", "UnsupportedMediaType")


def _decodes_or_refuses(data: bytes) -> None:
    try:
        out = k8sproto.decode(data)
    except ApiError as e:
        assert e.code in (400, 415), e.message
    else:
        json.dumps(out)  # always plain JSON data


@given(st.binary(max_size=512))
def test_random_bytes_after_the_magic_never_crash(data: bytes) -> None:
    _decodes_or_refuses(k8sproto.MAGIC + data)


@given(st.sampled_from(sorted(k8sproto.kinds())), st.binary(max_size=512))
def test_random_raw_of_every_kind_never_crashes(kind: tuple[str, str], raw: bytes) -> None:
    _decodes_or_refuses(body(*kind, raw))


@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=8))
def test_damaged_deployments_never_crash(flips: list[tuple[int, int]]) -> None:
    data = bytearray(GOOD)
    for at, byte in flips:
        data[at] = byte
    _decodes_or_refuses(bytes(data))


# ------------------------------------------------------------------ real kubectl

needs_kubectl = pytest.mark.skipif(
    not Path(KUBECTL).exists(), reason=f"real kubectl is not installed at {KUBECTL}"
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> tuple[Kubectl, str]:
    dir = tmp_path_factory.mktemp("kubepb")
    with mesh(dir, 1) as infos:
        yield Kubectl(dir), str(infos[0]["api_addr"])


@needs_kubectl
def test_kubectl_generators_send_protobuf_and_work(node: tuple[Kubectl, str]) -> None:
    kube, _ = node
    p = kube.run("create", "namespace", "x", "-v=8")
    assert "namespace/x created" in p.stdout
    # kubectl sends protobuf, accepts JSON back, and is content with a JSON answer.
    assert f"Content-Type: {MEDIA}" in p.stderr
    assert f"Accept: {MEDIA},application/json" in p.stderr
    assert "Response Status: 201 Created" in p.stderr
    kube.run("create", "deployment", "web", "--image=busybox", "--replicas=2", "-n", "x",
             "--", "sleep", "3600")  # fmt: skip
    kube.run("run", "p", "--image=busybox", "--", "sleep", "1")
    kube.run("create", "job", "j", "--image=busybox", "--", "true")
    kube.run("create", "service", "clusterip", "s", "--tcp=80:8080")
    kube.run("expose", "deployment", "web", "-n", "x", "--port=80", "--target-port=8080")

    assert kube.json("get", "namespace", "x")["status"]["phase"] == "Active"
    d = kube.json("get", "deployment", "web", "-n", "x")
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert (c["name"], c["image"], c["command"]) == ("busybox", "busybox", ["sleep", "3600"])
    pod = kube.json("get", "pod", "p")
    assert pod["metadata"]["labels"] == {"run": "p"}
    (c,) = pod["spec"]["containers"]
    assert (c["name"], c["image"], c["args"]) == ("p", "busybox", ["sleep", "1"])
    job = kube.json("get", "job", "j")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert (c["image"], c["command"]) == ("busybox", ["true"])
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    s = kube.json("get", "service", "s")
    assert s["spec"]["type"] == "ClusterIP" and s["spec"]["selector"] == {"app": "s"}
    assert s["spec"]["ports"] == [
        {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}
    ]
    exposed = kube.json("get", "service", "web", "-n", "x")
    assert exposed["spec"]["selector"] == {"app": "web"}
    assert exposed["spec"]["ports"][0]["targetPort"] == 8080


@needs_kubectl
def test_protobuf_and_json_bodies_store_the_same_object(node: tuple[Kubectl, str]) -> None:
    kube, _ = node
    flags = ["deployment", "twin", "--image=busybox", "--replicas=0", "--port=8080"]
    cmd = ["--", "sleep", "60"]
    manifest = json.loads(kube.run("create", *flags, "--dry-run=client", "-o", "json", *cmd).stdout)
    manifest["metadata"]["name"] = "twin-json"
    kube.run("create", "-f", "-", input=json.dumps(manifest))  # JSON
    p = kube.run("create", *flags, "-v=8", *cmd)  # protobuf
    assert f"Content-Type: {MEDIA}" in p.stderr
    twin, json_twin = (kube.json("get", "deployment", n) for n in ("twin", "twin-json"))
    assert twin["spec"] == json_twin["spec"] and twin["spec"]["replicas"] == 0
    assert twin["metadata"]["labels"] == json_twin["metadata"]["labels"]


def test_server_checks_protobuf_bodies(node: tuple[Kubectl, str]) -> None:
    kube, addr = node
    dir = kube.dir
    ns = new("k8s.io.api.core.v1.Namespace")
    ns.metadata.name = "raw-pb"
    code, obj = raw_request(dir, addr, "POST", "/api/v1/namespaces", body("v1", "Namespace", ns),
                            MEDIA)  # fmt: skip
    assert code == 201 and obj["metadata"]["name"] == "raw-pb", obj
    ns.metadata.labels["team"] = "a"
    ns.metadata.resourceVersion = obj["metadata"]["resourceVersion"]
    code, obj = raw_request(dir, addr, "PUT", "/api/v1/namespaces/raw-pb",
                            body("v1", "Namespace", ns), f"{MEDIA}; charset=utf-8")  # fmt: skip
    assert code == 200 and obj["metadata"]["labels"]["team"] == "a", obj
    cases = [  # path, body, content type → code, reason, words
        ("namespaces/default/pods", GOOD, MEDIA, 400, "BadRequest", "apps/v1"),
        ("namespaces", body("v1", "ConfigMap", b""), MEDIA, 415, "UnsupportedMediaType",
         "ConfigMap"),
        ("namespaces", k8sproto.MAGIC + b"\xff\xff", MEDIA, 400, "BadRequest", "decoded"),
        ("namespaces", b"\x00", "application/x-protobuf", 415, "UnsupportedMediaType",
         "x-protobuf"),
    ]  # fmt: skip
    for path, data, ctype, want, reason, words in cases:
        code, status = raw_request(dir, addr, "POST", f"/api/v1/{path}", data, ctype)
        assert (code, status["reason"]) == (want, reason) and words in status["message"], status
    opts = new("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
    opts.propagationPolicy = "Background"
    code, _ = raw_request(dir, addr, "DELETE", "/api/v1/namespaces/raw-pb",
                          body("meta.k8s.io/v1", "DeleteOptions", opts), MEDIA)  # fmt: skip
    assert code == 200


OTHER_MINORS = [Path(KUBECTL_OTHER).with_name(f"kubectl.1.{minor}") for minor in (27, 30, 33)]


@pytest.mark.parametrize("binary", OTHER_MINORS, ids=[p.name for p in OTHER_MINORS])
def test_other_kubectl_minors_send_protobuf_too(node: tuple[Kubectl, str], binary: Path) -> None:
    if not binary.exists():
        pytest.skip(f"{binary} is not installed")
    other = Kubectl(node[0].dir, str(binary))
    name = binary.name.replace(".", "-")
    other.run("create", "deployment", name, "--image=busybox", "--replicas=0")
    assert other.json("get", "deployment", name)["spec"]["replicas"] == 0
