"""Dapr sidecar latency on a real local mesh (one OS process per node, process runtime).

    python bench/sidecar.py [--calls 300] [--writes 30] [--json]

A 2-node mesh (``startup.mesh``: ``hyperion.cli.up.start_mesh``, no node identities)
and three pods created over HTTPS with the admin certificate, each opted in to the
sidecar (``dapr.io/enabled``, ``dapr.io/app-port: "8080"``) and pinned to a node:
``c1`` (node-1) and ``c2`` (node-2) are two replicas of app-id ``client``; ``e1``
(node-1) is app-id ``echo``. Each pod runs ``APP``: it writes the sidecar environment
its node gave it (``DAPR_HTTP_PORT``, ``DAPR_API_TOKEN``) to ``env.json`` in its
working directory and answers every request on ``$PORT`` with a small JSON body.

This process then talks to the pods' sidecars exactly as their apps would: plain HTTP
to ``127.0.0.1:$DAPR_HTTP_PORT`` with the pod's ``dapr-api-token`` (when its node gave
it one), one kept-alive ``http.client`` connection per sidecar, calls one after another.
Client-side wall time per call, in ms:

* ``state_save_ms``: ``POST /v1.0/state/statestore`` of one item (``--calls`` saves of
  distinct keys) on ``c1``'s sidecar; ``state_get_ms``: ``GET`` of one of those keys;
* ``invoke_local_ms``: ``POST /v1.0/invoke/echo/method/ping`` from ``c1`` (``e1`` runs
  on the same node, so the call stays there);
* ``invoke_forwarded_ms``: the same from ``c2`` on node-2 (forwarded to node-1 over
  its mutual-TLS API, which calls ``e1``);
* ``cross_node_visible_ms``: ``--writes`` times, a save on ``c1``'s sidecar (node-1),
  then back-to-back ``GET``s of that key on ``c2``'s sidecar (node-2, same app-id)
  until the new value comes back; time from the start of the save.

Prints one JSON object with ``--json`` (the README quotes it), else a table.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from startup import MARKER, PODS, Api, install_sigterm, machine, mesh, summary, sweep  # noqa: E402

from hyperion.api import kubeconfig  # noqa: E402

READY_TIMEOUT_S = 60.0
VISIBLE_TIMEOUT_S = 10.0

APP = r"""
import json, os, http.server
with open("env.tmp", "w") as f:
    json.dump({k: os.environ.get(k) for k in ("DAPR_HTTP_PORT", "DAPR_API_TOKEN")}, f)
os.rename("env.tmp", "env.json")
class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as app servers do; else headers and body wait on ACKs
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        out = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_PUT = answer
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), App).serve_forever()
"""

PLACES = {"c1": ("node-1", "client"), "c2": ("node-2", "client"), "e1": ("node-1", "echo")}


def pod(name: str, node: str, app_id: str, run_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "annotations": {
                "dapr.io/enabled": "true",
                "dapr.io/app-id": app_id,
                "dapr.io/app-port": "8080",
            },
        },
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": "python",
                    "command": [sys.executable, "-c", APP],
                    "ports": [{"containerPort": 8080}],
                    "env": [{"name": MARKER, "value": run_id}],
                }
            ],
        },
    }


class Sidecar:
    """One pod's sidecar as its app sees it: one kept-alive HTTP connection."""

    def __init__(self, env: dict[str, str | None]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", int(env["DAPR_HTTP_PORT"] or 0))
        token = env.get("DAPR_API_TOKEN")
        self.headers = {"dapr-api-token": token} if token else {}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def timed(self, method: str, path: str, body: Any = None, want: int = 200) -> float:
        t0 = time.perf_counter()
        status, text = self.call(method, path, body)
        ms = (time.perf_counter() - t0) * 1000
        if status != want:
            raise RuntimeError(f"{method} {path}: {status} {text[:300]!r}")
        return ms


def env_of(d: Path, name: str) -> dict[str, str | None] | None:
    node = PLACES[name][0]
    f = d / "nodes" / node / "pods" / "default" / name / "main" / "env.json"
    return json.loads(f.read_text()) if f.exists() else None


def wait_ready(d: Path) -> dict[str, Sidecar]:
    """Each pod's sidecar, once every pod wrote its env and each can reach ``echo``."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        envs = {n: env_of(d, n) for n in PLACES}
        if all(envs.values()):
            cars = {n: Sidecar(e) for n, e in envs.items() if e}
            try:
                if all(
                    cars[n].call("POST", "/v1.0/invoke/echo/method/ping", {})[0] == 200
                    for n in ("c1", "c2")
                ):
                    return cars
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"the pods' sidecars were not ready after {READY_TIMEOUT_S} s")


async def run_sidecar(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    with mesh(2, run_id) as (d, _procs, infos):
        ctx = kubeconfig.client_ssl(d / "kubeconfig")
        api = Api(f"https://{infos[0]['api_addr']}", ctx)
        try:
            for name, (node, app_id) in PLACES.items():
                await api.create(PODS, pod(name, node, app_id, run_id))
        finally:
            await api.close()
        cars = wait_ready(d)
        c1, c2 = cars["c1"], cars["c2"]
        base = "/v1.0/state/statestore"
        for _ in range(20):  # warm-up: connections, first-call paths
            c1.timed("POST", base, [{"key": "warm", "value": 0}], want=204)
            c1.timed("POST", "/v1.0/invoke/echo/method/ping", {})
            c2.timed("POST", "/v1.0/invoke/echo/method/ping", {})
        save = [
            c1.timed("POST", base, [{"key": f"k{i}", "value": {"n": i}}], want=204)
            for i in range(args.calls)
        ]
        get = [c1.timed("GET", f"{base}/k{i}") for i in range(args.calls)]
        local = [
            c1.timed("POST", "/v1.0/invoke/echo/method/ping", {"i": i}) for i in range(args.calls)
        ]
        fwd = [
            c2.timed("POST", "/v1.0/invoke/echo/method/ping", {"i": i}) for i in range(args.calls)
        ]
        visible = []
        for i in range(args.writes):
            key, value = f"seen-{i}", {"w": i, "run": run_id}
            want = json.dumps(value).encode()
            t0 = time.perf_counter()
            c1.timed("POST", base, [{"key": key, "value": value}], want=204)
            while True:
                status, text = c2.call("GET", f"{base}/{key}")
                if status == 200 and json.loads(text) == json.loads(want):
                    visible.append((time.perf_counter() - t0) * 1000)
                    break
                if time.perf_counter() - t0 > VISIBLE_TIMEOUT_S:
                    raise RuntimeError(f"{key} not visible on node-2 after {VISIBLE_TIMEOUT_S} s")
        for car in cars.values():
            car.conn.close()
    return {
        "calls": args.calls,
        "writes": args.writes,
        "token": bool(c1.headers),
        "state_save_ms": summary(save),
        "state_get_ms": summary(get),
        "invoke_local_ms": summary(local),
        "invoke_forwarded_ms": summary(fwd),
        "cross_node_visible_ms": summary(visible, 2),
    }


def print_table(result: dict[str, Any]) -> None:
    r = result["sidecar"]
    print(f"2 nodes, {r['calls']} calls each, {r['writes']} cross-node writes")
    for k in ("state_save_ms", "state_get_ms", "invoke_local_ms", "invoke_forwarded_ms",
              "cross_node_visible_ms"):  # fmt: skip
        s = r[k]
        print(f"  {k:24} p50 {s['p50']:8}  p99 {s['p99']:8}  max {s['max']:8}")
    print(f"wall {result['wall_s']} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=300, help="calls per measured operation")
    ap.add_argument("--writes", type=int, default=30, help="cross-node visibility writes")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if args.calls < 1 or args.writes < 1:
        ap.error("need --calls >= 1 and --writes >= 1")
    install_sigterm()
    run_id = uuid.uuid4().hex[:8]
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "bench": "sidecar",
        "machine": machine(),
        "params": vars(args),
        "client": "http.client to 127.0.0.1:$DAPR_HTTP_PORT, one kept-alive connection each",
        "mesh": "2 nodes, hyperion.cli.up.start_mesh, no fleet identities, process runtime",
    }
    try:
        result["sidecar"] = asyncio.run(run_sidecar(args, run_id))
    finally:
        sweep(run_id)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
