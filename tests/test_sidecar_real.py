"""The Dapr-compatible sidecar on a real 2-node mesh: real pods, real HTTP, real mTLS.

Three pods, created with kubectl and pinned to nodes: ``a1`` (node-1) and ``a2``
(node-2) are two replicas of app-id ``alpha``, ``b1`` (node-1) is app-id ``beta``.
Each runs ``APP``: it writes the environment the node gave it (``DAPR_HTTP_PORT``,
``APP_ID``) to ``env.json``, and serves an echo app on the host port the process
runtime chose for its declared port 8080 (``dapr.io/app-port: "8080"``). ``a1``
first runs ``CLIENT``, a Dapr state client written with urllib only, and keeps what it
saw in ``client.json``. The tests then talk to each pod's sidecar themselves, on
127.0.0.1 at the pod's ``DAPR_HTTP_PORT``, as the pod would.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import KUBECTL, Kubectl, admin_ssl, dapr_pod, eventually, mesh, raw_request

pytestmark = pytest.mark.skipif(not Path(KUBECTL).exists(), reason=f"no kubectl at {KUBECTL}")

CLIENT = r"""
import json, os, urllib.request, urllib.error
base = "http://127.0.0.1:%s/v1.0/state/statestore" % os.environ["DAPR_HTTP_PORT"]
token = {"dapr-api-token": os.environ["DAPR_API_TOKEN"]}
def call(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    hdrs = {**token, **(headers or {})}
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), r.headers.get("ETag")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), None
out = {}
out["no_token"] = call("GET", base + "/greeting", headers={"dapr-api-token": ""})[:2]
out["save"] = call("POST", base, [{"key": "greeting", "value": {"hello": "world"}}])[0]
out["get"] = call("GET", base + "/greeting")
etag = out["get"][2]
out["conflict"] = call("POST", base, [{"key": "greeting", "value": 2, "etag": "1.1.ab"}])[:2]
out["update"] = call("POST", base, [{"key": "greeting", "value": 3, "etag": etag}])[0]
out["bulk"] = json.loads(call("POST", base + "/bulk", {"keys": ["greeting", "nope"]})[1])
out["delete"] = call("DELETE", base + "/greeting")[0]
out["gone"] = call("GET", base + "/greeting")[0]
with open("client.tmp", "w") as f:
    json.dump(out, f)
os.rename("client.tmp", "client.json")
"""

APP = r"""
import json, os, sys, http.server
with open("env.tmp", "w") as f:
    json.dump({k: os.environ.get(k) for k in ("DAPR_HTTP_PORT", "APP_ID", "PORT",
                                              "DAPR_API_TOKEN", "APP_API_TOKEN")}, f)
os.rename("env.tmp", "env.json")
if len(sys.argv) > 1:
    exec(sys.argv[1])
class Echo(http.server.BaseHTTPRequestHandler):
    def handle_one_request(self):
        try:
            super().handle_one_request()
        except Exception:
            pass
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.echo
        raise AttributeError(name)
    def echo(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode()
        status = 200
        if self.path.startswith("/status/"):
            status = int(self.path.split("/")[2])
        out = json.dumps({"pod": os.environ["HOSTNAME"], "method": self.command,
                          "path": self.path, "body": body,
                          "callers": self.headers.get_all("dapr-caller-app-id"),
                          "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", "yes")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Echo).serve_forever()
"""


def pod(name: str, node: str, app_id: str, *extra: str) -> dict[str, Any]:
    return dapr_pod(name, node, app_id, APP, *extra)


class Mesh:
    def __init__(self, dir: Path, infos: list[dict[str, object]]) -> None:
        self.dir = dir
        self.api = {str(i["name"]): str(i["api_addr"]) for i in infos}
        self.kube = Kubectl(dir)
        self.nodes = {"a1": "node-1", "a2": "node-2", "b1": "node-1"}

    def file(self, name: str, what: str) -> Path:
        return self.dir / "nodes" / self.nodes[name] / "pods" / "default" / name / "main" / what

    def env(self, name: str) -> dict[str, str]:
        return dict(json.loads(self.file(name, "env.json").read_text()))

    def port(self, name: str) -> int:
        return int(self.env(name)["DAPR_HTTP_PORT"])

    def call(
        self,
        name: str,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        token: str | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """One request to pod ``name``'s sidecar with its API token (or ``token``, ""
        for none): (status, JSON body or None, headers)."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        url = f"http://127.0.0.1:{self.port(name)}{path}"
        token = self.env(name)["DAPR_API_TOKEN"] if token is None else token
        hdrs = {**({"dapr-api-token": token} if token else {}), **(headers or {})}
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                status, text, got = r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            status, text, got = e.code, e.read(), dict(e.headers)
        if got.get("Content-Type", "").startswith("text/plain"):
            return status, text.decode(), got
        return status, json.loads(text) if text else None, got


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    tmp = tmp_path_factory.mktemp("sidecar")
    with mesh(tmp, 2) as infos:
        m = Mesh(tmp, infos)
        pods = [
            pod("a1", "node-1", "alpha", CLIENT),
            pod("a2", "node-2", "alpha"),
            pod("b1", "node-1", "beta"),
        ]
        m.kube.run(
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}),
        )

        def ready() -> bool:
            return all(m.file(n, "env.json").exists() for n in m.nodes) and all(
                m.call(src, "GET", f"/v1.0/invoke/{app}/method/ready")[0] == 200
                for src, app in (("a1", "beta"), ("a2", "beta"), ("b1", "alpha"), ("a2", "alpha"))
            )

        eventually(ready, timeout=20, interval=0.1)
        yield m


def test_the_environment_names_the_sidecar(m: Mesh) -> None:
    env = json.loads(m.file("a2", "env.json").read_text())
    assert env["APP_ID"] == "alpha"
    assert int(env["DAPR_HTTP_PORT"]) > 0
    assert (
        env["DAPR_HTTP_PORT"] != json.loads(m.file("a1", "env.json").read_text())["DAPR_HTTP_PORT"]
    )


def test_a_pod_program_uses_the_state_api(m: Mesh) -> None:
    got = json.loads(eventually(lambda: m.file("a1", "client.json").read_text(), timeout=10))
    assert got["no_token"] == [401, "invalid api token\n"]
    assert got["save"] == 204
    status, body, etag = got["get"]
    assert (status, json.loads(body)) == (200, {"hello": "world"}) and etag
    assert got["conflict"][0] == 409
    assert json.loads(got["conflict"][1])["errorCode"] == "ERR_STATE_SAVE"
    assert got["update"] == 204
    assert got["bulk"][0]["key"] == "greeting" and got["bulk"][0]["data"] == 3
    assert got["bulk"][1] == {"key": "nope"}
    assert (got["delete"], got["gone"]) == (204, 204)


def test_the_sidecar_wants_its_pods_api_token(m: Mesh) -> None:
    """Dapr's API token: each pod its own, random; no token, a wrong one or another
    pod's (even of the same app-id) gets daprd's 401; only GET of healthz is exempt."""
    a1, a2, b1 = (m.env(n)["DAPR_API_TOKEN"] for n in ("a1", "a2", "b1"))
    assert len({a1, a2, b1}) == 3 and min(len(a1), len(a2), len(b1)) >= 40
    paths = [
        ("GET", "/v1.0/state/statestore/k"),
        ("POST", "/v1.0/invoke/beta/method/hi"),
        ("GET", "/v1.0/metadata"),
        ("GET", "/other?x=/v1.0/healthz", {"dapr-app-id": "beta"}),
        ("GET", "/v1.0/healthz/../metadata"),
        ("HEAD", "/v1.0/healthz"),
    ]
    for method, path, *hdrs in paths:
        for token in ("", "wrong", a2, b1, a1 + "x", a1[:-1]):
            status, body, got = m.call("a1", method, path, headers=(hdrs or [{}])[0], token=token)
            assert status == 401, (method, path, token)
            assert (body, got["Content-Type"].split(";")[0]) in (
                ("invalid api token\n", "text/plain"),
                ("", "text/plain"),  # HEAD: no body
            )
    assert m.call("a1", "GET", "/v1.0/metadata")[1]["id"] == "alpha"  # its own token
    assert m.call("a1", "GET", "/v1.0/healthz", token="")[0] == 204
    assert m.call("a1", "GET", "/v1.0/healthz/outbound", token="")[0] == 204


def test_apps_get_their_app_token_and_never_the_callers(m: Mesh) -> None:
    """APP_API_TOKEN: the sidecar that calls an app sends the *callee's* app token in
    ``dapr-api-token``, locally and forwarded; the caller's API token stays behind."""
    b1_app = m.env("b1")["APP_API_TOKEN"]
    assert b1_app and b1_app not in (m.env("b1")["DAPR_API_TOKEN"], m.env("a1")["APP_API_TOKEN"])
    for src in ("a1", "a2"):  # a1: b1 on the same node; a2: forwarded to node-1
        status, body, _ = m.call(src, "GET", "/v1.0/invoke/beta/method/who")
        assert (status, body["pod"]) == (200, "b1")
        assert body["headers"]["dapr-api-token"] == b1_app
        assert m.env(src)["DAPR_API_TOKEN"] not in json.dumps(body)


def test_etags_guard_saves_and_deletes(m: Mesh) -> None:
    base = "/v1.0/state/statestore"
    assert m.call("a1", "POST", base, [{"key": "k1", "value": "v1"}])[0] == 204
    status, body, hdrs = m.call("a1", "GET", f"{base}/k1")
    assert (status, body) == (200, "v1")
    etag = hdrs["ETag"]
    first = [{"key": "k1", "value": "v2", "options": {"concurrency": "first-write"}}]
    status, body, _ = m.call("a1", "POST", base, first)
    assert (status, body["errorCode"]) == (409, "ERR_STATE_SAVE")
    status, body, _ = m.call("a1", "POST", base, [{"key": "k1", "value": 0, "etag": "nonsense"}])
    assert (status, body["errorCode"]) == (400, "ERR_STATE_SAVE")
    assert m.call("a1", "POST", base, [{"key": "k1", "value": "v2", "etag": etag}])[0] == 204
    status, body, _ = m.call("a1", "POST", base, [{"key": "k1", "value": "v3", "etag": etag}])
    assert status == 409  # that ETag is now stale
    status, body, _ = m.call("a1", "DELETE", f"{base}/k1", headers={"If-Match": etag})
    assert (status, body["errorCode"]) == (409, "ERR_STATE_DELETE")
    new = m.call("a1", "GET", f"{base}/k1")[2]["ETag"]
    assert m.call("a1", "DELETE", f"{base}/k1", headers={"If-Match": new})[0] == 204
    assert m.call("a1", "GET", f"{base}/k1")[0] == 204
    assert m.call("a1", "DELETE", f"{base}/k1")[0] == 204  # absent, no ETag: fine


def test_the_same_app_id_reads_on_another_node_and_other_apps_do_not(m: Mesh) -> None:
    base = "/v1.0/state/statestore"
    key = f"shared-{time.monotonic_ns()}"
    value = {"n": [1, 2, 3], "s": "héllo"}
    assert m.call("a1", "POST", base, [{"key": key, "value": value}])[0] == 204
    eventually(lambda: m.call("a2", "GET", f"{base}/{key}")[1] == value, timeout=10)
    assert m.call("b1", "GET", f"{base}/{key}")[0] == 204  # beta: another key space
    assert m.call("b1", "POST", base, [{"key": key, "value": "beta's"}])[0] == 204
    assert m.call("a1", "GET", f"{base}/{key}")[1] == value
    assert m.call("b1", "GET", f"{base}/{key}")[1] == "beta's"


def test_state_items_are_not_kubernetes_objects(m: Mesh) -> None:
    assert m.call("a1", "POST", "/v1.0/state/statestore", [{"key": "hidden", "value": 1}])[0] == 204
    resources = m.kube.run("api-resources", "-o", "name").stdout
    assert "workplane" not in resources
    names = m.kube.run("get", "all", "-A", "-o", "name").stdout
    assert "hidden" not in names


def test_bad_requests_get_daprs_errors(m: Mesh) -> None:
    base = "/v1.0/state/statestore"
    cases: list[tuple[str, str, bytes | None, int, str]] = [
        ("POST", base, b"[{not json", 400, "ERR_MALFORMED_REQUEST"),
        ("POST", base, b'{"key": "x"}', 400, "ERR_MALFORMED_REQUEST"),
        ("POST", base, b'[{"value": 1}]', 400, "ERR_MALFORMED_REQUEST"),
        ("POST", base, b'[{"key": "a||b", "value": 1}]', 400, "ERR_MALFORMED_REQUEST"),
        ("POST", base + "/bulk", b'{"keys": "x"}', 400, "ERR_MALFORMED_REQUEST"),
        ("GET", "/v1.0/state/nostore/x", None, 400, "ERR_STATE_STORE_NOT_FOUND"),
        ("POST", "/v1.0/state/nostore", b"[]", 400, "ERR_STATE_STORE_NOT_FOUND"),
        ("POST", base + "/transaction", b"{}", 500, "ERR_STATE_STORE_NOT_SUPPORTED"),
        ("POST", "/v1.0/invoke/nobody/method/x", b"", 500, "ERR_DIRECT_INVOKE"),
        ("GET", "/v1.0/invoke/bad..id/method/x", None, 500, "ERR_DIRECT_INVOKE"),
        ("GET", "/v1.0/nothing-here", None, 404, "ERR_NOT_FOUND"),
    ]
    for method, path, raw, want_status, want_code in cases:
        status, body, _ = m.call("a1", method, path, raw=raw)
        assert (status, body["errorCode"]) == (want_status, want_code), (method, path, raw)
        assert body["message"]


def test_invocation_reaches_local_and_remote_replicas(m: Mesh) -> None:
    # a1 (node-1) -> beta: b1 runs on node-1 too.
    status, body, hdrs = m.call(
        "a1", "PUT", "/v1.0/invoke/beta/method/orders/7?x=1&y=a%2Fb", {"n": 1}, {"X-Trace": "t1"}
    )
    assert status == 200 and body["pod"] == "b1" and hdrs["X-Echo"] == "yes"
    assert (body["method"], body["path"], json.loads(body["body"])) == (
        "PUT",
        "/orders/7?x=1&y=a%2Fb",
        {"n": 1},
    )
    assert body["headers"]["x-trace"] == "t1"
    assert body["headers"]["dapr-caller-app-id"] == "alpha"
    # a2 (node-2) -> beta: forwarded to node-1 over its mutual-TLS API.
    spoof = {"dapr-caller-app-id": "root"}
    status, body, _ = m.call("a2", "POST", "/v1.0/invoke/beta.default/method/hi", {"n": 2}, spoof)
    assert (status, body["pod"], body["path"], json.loads(body["body"])) == (
        200,
        "b1",
        "/hi",
        {"n": 2},
    )
    assert body["callers"] == ["alpha"]  # the sidecar's, never the app's own
    # The app's own status comes back as is, forwarded or not.
    assert m.call("a2", "GET", "/v1.0/invoke/beta/method/status/418")[0] == 418
    # The dapr-app-id header form; a local replica is preferred.
    status, body, _ = m.call("b1", "GET", "/some/path?q=1", headers={"dapr-app-id": "alpha"})
    assert (status, body["pod"], body["path"]) == (200, "a1", "/some/path?q=1")


def test_only_nodes_may_forward_calls(m: Mesh) -> None:
    status, body = raw_request(
        m.dir, m.api["node-1"], "POST", "/sidecar/v1/invoke/default/b1/hi", b"{}", "text/plain"
    )
    assert (status, body["reason"]) == (403, "Forbidden")


def test_the_api_reads_a_body_that_arrives_in_pieces(m: Mesh) -> None:
    """The pods above are a body of a few KB, which kubectl's write may split; the API
    must read it to its end, not just what has arrived (it once did)."""
    body = json.dumps(pod("pieces", "node-2", "gamma")).encode()
    host, port = m.api["node-1"].rsplit(":", 1)
    head = (
        f"POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        admin_ssl(m.dir).wrap_socket(raw) as tls,
    ):
        tls.sendall(head + body[:100])
        time.sleep(0.2)
        tls.sendall(body[100:])
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    m.kube.run("delete", "pod", "pieces", "--wait=false")


def test_bad_annotations_reject_the_pod(m: Mesh) -> None:
    bad = pod("bad", "node-2", "no.dots")
    m.kube.run("apply", "-f", "-", input=json.dumps(bad))

    def rejected() -> Any:
        status = m.kube.json("get", "pod", "bad")["status"]
        return status.get("reason") == "CreateContainerConfigError" and status["message"]

    assert "dapr.io/app-id" in eventually(rejected, timeout=10)
    m.kube.run("delete", "pod", "bad", "--wait=false")


def test_metadata_and_health(m: Mesh) -> None:
    status, body, _ = m.call("a2", "GET", "/v1.0/metadata")
    assert status == 200 and body["id"] == "alpha"
    assert [c["name"] for c in body["components"]] == ["statestore", "pubsub"]
    assert body["components"][0]["type"] == "state.hyperion.eventual"
    assert m.call("a2", "PUT", "/v1.0/metadata/color", raw=b"blue")[0] == 204
    assert m.call("a2", "GET", "/v1.0/metadata")[1]["extended"]["color"] == "blue"
    assert m.call("a2", "GET", "/v1.0/healthz")[0] == 204
    assert m.call("a2", "GET", "/v1.0/healthz/outbound")[0] == 204


def test_the_sidecar_closes_with_its_pod(m: Mesh) -> None:
    port = m.port("a2")
    m.kube.run("delete", "pod", "a2", "--wait=false")

    def closed() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1.0/healthz", timeout=2)
        except urllib.error.HTTPError:
            return False  # still answering (or answering "closed" on a kept connection)
        except OSError:
            return True
        return False

    eventually(closed, timeout=10, interval=0.1)
