"""Dapr pub/sub through the sidecar on a real 2-node mesh (real pods, HTTP, mTLS).

Pods (pinned): ``pub`` (node-1, app-id ``pub``) publishes; ``o1`` (node-1) and ``o2``
(node-2) are two replicas of app-id ``orders``; ``au`` (node-2) is app-id ``audit``.
The subscribers run ``SUB``: ``GET /dapr/subscribe`` names their topics (``orders``
the v1 ``route`` form, ``audit`` the v2 ``routes`` form), and each delivery is
appended to ``got.jsonl`` with its Content-Type and app token; an event whose data
says ``{"retry": n}`` is answered ``RETRY`` until it came ``n`` times.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import Kubectl, dapr_pod, eventually, mesh

SUB = r"""
import json, os, sys, http.server
with open("env.tmp", "w") as f:
    json.dump({k: os.environ.get(k) for k in ("DAPR_HTTP_PORT", "DAPR_API_TOKEN",
                                              "APP_API_TOKEN")}, f)
os.rename("env.tmp", "env.json")
subs = json.loads(sys.argv[1])
seen = {}
class App(http.server.BaseHTTPRequestHandler):
    def reply(self, status, body):
        out = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def do_GET(self):
        self.reply(200, subs) if self.path == "/dapr/subscribe" else self.reply(404, {})
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        ev = json.loads(self.rfile.read(n))
        seen[ev["id"]] = seen.get(ev["id"], 0) + 1
        want = (ev.get("data") or {}).get("retry", 0) if isinstance(ev.get("data"), dict) else 0
        status = "RETRY" if seen[ev["id"]] <= want else "SUCCESS"
        with open("got.jsonl", "a") as f:
            f.write(json.dumps({"path": self.path, "event": ev, "status": status,
                                "ctype": self.headers.get("Content-Type"),
                                "token": self.headers.get("dapr-api-token")}) + "\n")
        self.reply(200, {"status": status})
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), App).serve_forever()
"""

ORDERS = [{"pubsubname": "pubsub", "topic": "orders", "route": "/on-order"}]
AUDIT = [
    {"pubsubname": "pubsub", "topic": "orders", "routes": {"default": "/audit"}},
    {"pubsubname": "other", "topic": "orders", "route": "/never"},
]
PLACES = {
    "pub": ("node-1", "pub", []),
    "o1": ("node-1", "orders", ORDERS),
    "o2": ("node-2", "orders", ORDERS),
    "au": ("node-2", "audit", AUDIT),
}


def pod(name: str) -> dict[str, Any]:
    node, app_id, subs = PLACES[name]
    return dapr_pod(name, node, app_id, SUB, json.dumps(subs))


class Mesh:
    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self.kube = Kubectl(dir)

    def file(self, name: str, what: str) -> Path:
        node = PLACES[name][0]
        return self.dir / "nodes" / node / "pods" / "default" / name / "main" / what

    def env(self, name: str) -> dict[str, str]:
        return dict(json.loads(self.file(name, "env.json").read_text()))

    def got(self, name: str) -> list[dict[str, Any]]:
        f = self.file(name, "got.jsonl")
        return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []

    def call(
        self, name: str, method: str, path: str, data: bytes, ctype: str = "application/json"
    ) -> tuple[int, Any]:
        env = self.env(name)
        req = urllib.request.Request(
            f"http://127.0.0.1:{env['DAPR_HTTP_PORT']}{path}",
            data=data,
            method=method,
            headers={"dapr-api-token": env["DAPR_API_TOKEN"], "Content-Type": ctype},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        return status, json.loads(text) if text else None

    def publish(self, data: Any, query: str = "") -> None:
        status, body = self.call("pub", "POST", f"/v1.0/publish/pubsub/orders{query}",
                                 json.dumps(data).encode())  # fmt: skip
        assert status == 204, body


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    tmp = tmp_path_factory.mktemp("pubsub")
    with mesh(tmp, 2):
        m = Mesh(tmp)
        items = [pod(n) for n in PLACES]
        m.kube.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                        "items": items}))  # fmt: skip

        def subscribed() -> bool:
            for n in ("o1", "o2", "au"):
                if not m.file(n, "env.json").exists():
                    return False
                subs = m.call(n, "GET", "/v1.0/metadata", b"")[1]["subscriptions"]
                if [s["topic"] for s in subs] != ["orders"]:
                    return False
            return m.file("pub", "env.json").exists()

        eventually(subscribed, timeout=20, interval=0.1)
        yield m


def by_id(events: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e["event"]["id"] for e in events)


def test_each_app_id_gets_each_message_once(m: Mesh) -> None:
    n = 20
    for i in range(n):
        m.publish({"n": i})

    def all_in() -> bool:
        orders = m.got("o1") + m.got("o2")
        return len({e["event"]["data"]["n"] for e in orders}) == n and len(m.got("au")) >= n

    eventually(all_in, timeout=10, interval=0.1)
    time.sleep(2 * 1.0 + 0.5)  # two rescans: nothing more may come
    orders, audit = m.got("o1") + m.got("o2"), m.got("au")
    assert sorted(e["event"]["data"]["n"] for e in orders) == list(range(n))
    assert sorted(e["event"]["data"]["n"] for e in audit) == list(range(n))
    assert set(by_id(orders).values()) == {1} and by_id(orders) == by_id(audit)
    assert m.got("o1") and m.got("o2")  # competing consumers: both replicas got some
    assert {e["path"] for e in orders} == {"/on-order"} and {e["path"] for e in audit} == {"/audit"}
    ev = orders[0]["event"]
    assert orders[0]["ctype"] == "application/cloudevents+json"
    assert (ev["specversion"], ev["type"], ev["source"]) == ("1.0", "com.dapr.event.sent", "pub")
    assert (ev["topic"], ev["pubsubname"], ev["datacontenttype"]) == (
        "orders",
        "pubsub",
        "application/json",
    )
    for name in ("o1", "o2", "au"):  # each app gets its own APP_API_TOKEN
        assert {e["token"] for e in m.got(name)} == {m.env(name)["APP_API_TOKEN"]}


def test_a_retry_answer_is_redelivered(m: Mesh) -> None:
    m.publish({"retry": 2, "tag": "r"})

    def done() -> list[dict[str, Any]] | None:
        got = [e for e in m.got("o1") + m.got("o2") if e["event"]["data"].get("tag") == "r"]
        return got if any(e["status"] == "SUCCESS" for e in got) else None

    got = eventually(done, timeout=10, interval=0.1)
    assert [e["status"] for e in got] == ["RETRY", "RETRY", "SUCCESS"]
    assert len({e["event"]["id"] for e in got}) == 1
    audit = [e for e in m.got("au") if e["event"]["data"].get("tag") == "r"]
    assert [e["status"] for e in audit] == ["RETRY", "RETRY", "SUCCESS"]


def test_raw_payload_and_bad_publishes(m: Mesh) -> None:
    m.publish({"raw": True}, "?metadata.rawPayload=true")

    def raw() -> Any:
        return [e for e in m.got("au") if "data_base64" in e["event"]]

    ev = eventually(raw, timeout=10, interval=0.1)[0]["event"]
    assert json.loads(base64.b64decode(ev["data_base64"])) == {"raw": True}
    cases = [
        ("/v1.0/publish/nope/orders", b"{}", "application/json", 400, "ERR_PUBSUB_NOT_FOUND"),
        ("/v1.0/publish/pubsub/", b"{}", "application/json", 404, "ERR_TOPIC_NAME_EMPTY"),
        ("/v1.0/publish/pubsub/t", b"{bad", "application/json", 400, "ERR_PUBSUB_CLOUD_EVENTS_SER"),
        ("/v1.0/publish/pubsub/a%20b", b"{}", "application/json", 400, "ERR_MALFORMED_REQUEST"),
    ]
    for path, data, ctype, want_status, want_code in cases:
        status, body = m.call("pub", "POST", path, data, ctype)
        assert (status, body["errorCode"]) == (want_status, want_code), path
