"""Real kubectl against a throwaway HTTP server built from the resource model alone.

The server here is a test harness, not the product server: discovery from
``resources``, ``/openapi/v3`` from ``schema``, writes through ``schema`` (defaults,
unknown fields, validation) and ``patch`` (all four patch types, managedFields), lists
as ``tables``. It checks that what kubectl reads from our model is enough for it to work
unchanged: ``explain``, client-side ``apply`` (strategic merge patch computed from our
OpenAPI patch metadata, JSON merge patch for the CRD), ``--server-side`` apply with
conflicts, server-side field validation, and ``get`` tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from hyperion.api import patch as P
from hyperion.api import schema as S
from hyperion.api import tables as T
from hyperion.api.resources import RESOURCES, ResourceType, group_versions, lookup

_SDK = Path("/usr/lib/google-cloud-sdk/bin")
# The oldest kubectl we support reads OpenAPI v2 (protobuf), the newer ones v3.
KUBECTLS = [
    str(p)
    for p in (
        _SDK / "kubectl.1.27",
        Path(shutil.which("kubectl") or "/nonexistent"),
        _SDK / "kubectl.1.33",
    )
    if p.exists()
]
pytestmark = pytest.mark.skipif(not KUBECTLS, reason="kubectl is not installed")
NOW = "2024-05-01T10:00:00Z"


def _resource_list(group: str, version: str) -> dict[str, Any]:
    resources = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub in r.subresources:
            resources.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": "Scale" if sub == "scale" else r.kind,
                    "verbs": ["get"] if sub == "log" else ["get", "patch", "update"],
                }
            )
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }


class _Store:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.rv = 0
        self.patch_types: list[str] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    store: _Store

    def log_message(self, *args: Any) -> None:
        pass

    # -- plumbing

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str, **details: Any) -> None:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
        if details:
            body["details"] = details
        self._send(code, body)

    def _route(self) -> tuple[ResourceType | None, str, str, str, dict[str, list[str]]]:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["api"]:
            group, rest = "", parts[1:]
        else:
            group, rest = parts[1], parts[2:]
        version, rest = rest[0], rest[1:]
        ns = ""
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        rt = lookup(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        return rt, ns, name, sub, query

    # -- reads

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        path = url.path.rstrip("/")
        if path == "/version":
            self._send(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
        elif path == "/api":
            self._send(
                200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
            )
        elif path == "/apis":
            groups = []
            for group, version in group_versions():
                if group:
                    gv = {"groupVersion": f"{group}/{version}", "version": version}
                    groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
            self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        elif path == "/api/v1":
            self._send(200, _resource_list("", "v1"))
        elif path.startswith("/apis/") and path.count("/") == 3:
            _, _, group, version = path.split("/")
            self._send(200, _resource_list(group, version))
        elif path == "/openapi/v3":
            self._send(200, S.openapi_v3_index())
        elif path.startswith("/openapi/v3/"):
            key = path[len("/openapi/v3/") :]
            parts = key.split("/")
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            data = S.openapi_v3_doc_json(group, version)
            if data is None:
                self._status(404, "NotFound", "not found")
            else:
                self._send(200, data)
        elif path == "/openapi/v2":
            self._send(
                200, S.openapi_v2_pb(), "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            )
        elif not path.startswith(("/api/", "/apis/")):
            self._status(404, "NotFound", "not found")
        else:
            self._get_object()

    def _get_object(self) -> None:
        rt, ns, name, _, query = self._route()
        assert rt is not None
        with self.store.lock:
            if name:
                obj = self.store.objects.get((rt.key_resource, ns, name))
                if obj is None:
                    self._status(404, "NotFound", f'{rt.plural} "{name}" not found')
                    return
                items = [obj]
            else:
                items = [
                    o
                    for (k, n, _), o in sorted(self.store.objects.items())
                    if k == rt.key_resource and (not ns or n == ns)
                ]
            rv = str(self.store.rv)
        if "as=Table" in self.headers.get("Accept", ""):
            self._send(200, T.table(rt, items, now=time.time(), resource_version=rv))
        elif name:
            self._send(200, items[0])
        else:
            self._send(
                200,
                {
                    "kind": rt.list_kind,
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": rv},
                    "items": items,
                },
            )

    # -- writes

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _store_checked(
        self,
        rt: ResourceType,
        ns: str,
        old: dict[str, Any] | None,
        obj: Any,
        query: dict[str, list[str]],
        manager: str,
    ) -> None:
        validation = query.get("fieldValidation", ["Warn"])[0]
        unknown = S.unknown_fields(rt, obj)
        if unknown and validation == "Strict":
            self._status(400, "BadRequest", S.strict_error_message(unknown))
            return
        obj = S.prune(rt, obj)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            meta.setdefault("namespace", ns)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = NOW
        else:
            for k in ("uid", "creationTimestamp"):
                meta[k] = old["metadata"][k]
        obj = S.apply_defaults(rt, obj)
        errors = S.validate(rt, obj) if old is None else S.validate_update(rt, obj, old)
        if errors:
            self._status(
                422,
                "Invalid",
                S.invalid_message(rt, meta.get("name", ""), errors),
                causes=[e.cause() for e in errors],
            )
            return
        if manager:
            obj = P.update_managed_fields(old, obj, rt, manager, time=NOW)
        with self.store.lock:
            self.store.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.store.rv)
            self.store.objects[(rt.key_resource, ns, obj["metadata"]["name"])] = obj
        self._send(201 if old is None else 200, obj)

    def do_POST(self) -> None:  # noqa: N802
        rt, ns, _, _, query = self._route()
        assert rt is not None
        obj = json.loads(self._body())
        manager = query.get("fieldManager", ["kubectl-create"])[0]
        self._store_checked(rt, ns, None, obj, query, manager)

    def do_PATCH(self) -> None:  # noqa: N802
        rt, ns, name, _, query = self._route()
        assert rt is not None
        ctype = self.headers.get("Content-Type", "").split(";")[0]
        self.store.patch_types.append(ctype)
        body = self._body()
        with self.store.lock:
            live = self.store.objects.get((rt.key_resource, ns, name))
        manager = query.get("fieldManager", ["kubectl-patch"])[0]
        try:
            if ctype == "application/apply-patch+yaml":
                applied = yaml.safe_load(body)
                obj, conflicts = P.apply_patch(
                    live, applied, rt, manager, query.get("force", ["false"])[0] == "true", time=NOW
                )
                if conflicts and query.get("force", ["false"])[0] != "true":
                    self._status(
                        409,
                        "Conflict",
                        P.conflict_message(conflicts),
                        causes=[c.cause() for c in conflicts],
                    )
                    return
                self._store_checked(rt, ns, live, obj, query, "")
                return
            if live is None:
                self._status(404, "NotFound", f'{rt.plural} "{name}" not found')
                return
            patch = json.loads(body)
            if ctype == "application/strategic-merge-patch+json":
                if not P.supports_strategic(rt):
                    self._status(415, "UnsupportedMediaType", "unsupported")
                    return
                obj = P.strategic_merge_patch(live, patch, rt)
            elif ctype == "application/merge-patch+json":
                obj = P.json_merge_patch(live, patch)
            else:
                obj = P.json_patch(live, patch)
        except P.PatchError as e:
            self._status(422, "Invalid", str(e))
            return
        self._store_checked(rt, ns, live, obj, query, manager)


@pytest.fixture(scope="module", params=KUBECTLS, ids=lambda p: Path(p).name)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, _Store, str]]:
    store = _Store()
    handler = type("Handler", (_Handler,), {"store": store})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", store, request.param
    finally:
        httpd.shutdown()
        httpd.server_close()


Server = tuple[str, _Store, str]


def kubectl(
    server: Server, tmp_path: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    url, _, binary = server
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\n")
    env = {**os.environ, "KUBECONFIG": str(config), "HOME": str(tmp_path)}
    return subprocess.run(
        [binary, f"--server={url}", f"--cache-dir={tmp_path / 'cache'}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
      - name: sidecar
        image: busybox:1.36
        command: [sleep, infinity]
"""

WORKLOAD = """\
apiVersion: hyperion.io/v1alpha1
kind: HyperionWorkload
metadata:
  name: resnet50-inference
  namespace: default
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: server
        image: ghcr.io/example/resnet50:1.0
        resources: {limits: {cpu: "2", memory: 4Gi, nvidia.com/gpu: "1"}}
  policy:
    goal: latency
    constraints: {geographies: [US, EU], clouds: [aws, gcp], preferSpot: true}
    users: [{geography: EU, weight: 0.7}, {geography: US, weight: 0.3}]
"""


def test_explain_builtin_and_crd(server: Server, tmp_path: Path) -> None:
    out = kubectl(server, tmp_path, "explain", "deployments.spec.strategy")
    assert out.returncode == 0, out.stderr
    assert "KIND:       Deployment" in out.stdout and "rollingUpdate" in out.stdout
    out = kubectl(server, tmp_path, "explain", "pods.spec.containers.resources")
    assert out.returncode == 0, out.stderr
    assert "limits" in out.stdout and "requests" in out.stdout
    out = kubectl(server, tmp_path, "explain", "hwl.spec.policy")
    assert out.returncode == 0, out.stderr
    assert "GROUP:      hyperion.io" in out.stdout
    for field in ("goal", "consistency", "constraints", "users"):
        assert field in out.stdout
    out = kubectl(server, tmp_path, "explain", "jobs", "--recursive")
    assert out.returncode == 0, out.stderr
    assert "backoffLimit" in out.stdout


def test_client_side_apply_uses_strategic_merge(server: Server, tmp_path: Path) -> None:
    _, store, _ = server
    out = kubectl(server, tmp_path, "apply", "-f", "-", stdin=DEPLOYMENT)
    assert out.returncode == 0, out.stderr
    assert "deployment.apps/web created" in out.stdout
    changed = DEPLOYMENT.replace("nginx:1.25", "nginx:1.26").replace("replicas: 2", "replicas: 3")
    store.patch_types.clear()
    out = kubectl(server, tmp_path, "apply", "-f", "-", stdin=changed)
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr.lower(), out.stderr
    assert store.patch_types == ["application/strategic-merge-patch+json"]
    obj = store.objects[("apps/deployments", "default", "web")]
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("nginx", "nginx:1.26"),
        ("sidecar", "busybox:1.36"),
    ]
    assert obj["spec"]["replicas"] == 3
    # Dropping the sidecar from the manifest removes it (three-way merge + $patch delete).
    without = changed[: changed.index("      - name: sidecar")]
    out = kubectl(server, tmp_path, "apply", "-f", "-", stdin=without)
    assert out.returncode == 0, out.stderr
    obj = store.objects[("apps/deployments", "default", "web")]
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["nginx"]


def test_client_side_apply_of_crd_uses_merge_patch(server: Server, tmp_path: Path) -> None:
    _, store, _ = server
    out = kubectl(server, tmp_path, "apply", "-f", "-", stdin=WORKLOAD)
    assert out.returncode == 0, out.stderr
    store.patch_types.clear()
    out = kubectl(
        server, tmp_path, "apply", "-f", "-", stdin=WORKLOAD.replace("goal: latency", "goal: cost")
    )
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr.lower(), out.stderr
    assert store.patch_types == ["application/merge-patch+json"]
    obj = store.objects[("hyperion.io/hyperionworkloads", "default", "resnet50-inference")]
    assert obj["spec"]["policy"]["goal"] == "cost"
    assert obj["spec"]["policy"]["consistency"] == "eventual"


def test_server_side_field_validation(server: Server, tmp_path: Path) -> None:
    bad = WORKLOAD.replace("name: resnet50-inference", "name: bad").replace(
        "preferSpot: true", "preferSpot: true, fastest: true"
    )
    out = kubectl(server, tmp_path, "create", "-f", "-", stdin=bad)
    assert out.returncode != 0
    assert 'unknown field "spec.policy.constraints.fastest"' in out.stderr
    invalid = WORKLOAD.replace("name: resnet50-inference", "name: bad").replace(
        "goal: latency", "goal: fast"
    )
    out = kubectl(server, tmp_path, "create", "-f", "-", stdin=invalid)
    assert out.returncode != 0
    assert (
        'spec.policy.goal: Unsupported value: "fast": supported values: "cost", "latency", '
        '"default"' in out.stderr
    )


def test_server_side_apply_and_conflicts(server: Server, tmp_path: Path) -> None:
    _, store, _ = server
    manifest = DEPLOYMENT.replace("name: web", "name: api")
    out = kubectl(server, tmp_path, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert out.returncode == 0, out.stderr
    assert "serverside-applied" in out.stdout
    obj = store.objects[("apps/deployments", "default", "api")]
    managers = {e["manager"]: e["operation"] for e in obj["metadata"]["managedFields"]}
    assert managers == {"kubectl": "Apply"}
    other = manifest.replace("replicas: 2", "replicas: 5")
    out = kubectl(
        server, tmp_path, "apply", "--server-side", "--field-manager=ci", "-f", "-", stdin=other
    )
    assert out.returncode != 0
    assert "conflict" in out.stderr and ".spec.replicas" in out.stderr
    out = kubectl(
        server,
        tmp_path,
        "apply",
        "--server-side",
        "--field-manager=ci",
        "--force-conflicts",
        "-f",
        "-",
        stdin=other,
    )
    assert out.returncode == 0, out.stderr
    assert store.objects[("apps/deployments", "default", "api")]["spec"]["replicas"] == 5


def test_get_prints_tables(server: Server, tmp_path: Path) -> None:
    kubectl(server, tmp_path, "apply", "-f", "-", stdin=WORKLOAD)
    out = kubectl(server, tmp_path, "get", "hwl", "-n", "default", "-o", "wide")
    assert out.returncode == 0, out.stderr
    header = out.stdout.splitlines()[0].split()
    assert header == ["NAME", "GOAL", "REPLICAS", "READY", "PHASE", "AGE", "CLOUDS", "GEOGRAPHIES"]
    assert "resnet50-inference" in out.stdout and "aws,gcp" in out.stdout
