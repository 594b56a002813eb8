"""Kubernetes API benchmark on a real local mesh (one OS process per node, real mTLS).

    python bench/api.py [--nodes 5] [--tries 50] [--pods 10000] [--watchers 1000] [--json]

Measures, against the API of real nodes with the admin certificate of ``hyperion up``'s
kubeconfig:

* ``visibility_s``: an object created on node-1 → readable (GET 200) on every other node;
  each other node is polled every 5 ms; p50/p99/max over ``--tries`` objects.
* ``get_ms``: GET of one object over a kept-alive HTTPS connection, client-side (an upper
  bound of the server-side time, which excludes the client and the TLS records).
* ``list_table_ms``: ``--pods`` pods listed in one request as a Table (what kubectl
  asks for), client-side, after creating them on node-1 and waiting ``--settle`` s for
  the replication to the other nodes (which loads node-1) to finish.
* ``watch_fanout_s``: ``--watchers`` concurrent watches on node-1 (one TLS connection
  each), then one update: time until every watcher has received it.

Prints JSON; the README quotes its output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hyperion.api import kubeconfig  # noqa: E402
from hyperion.cli.up import start_mesh, stop_mesh  # noqa: E402

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def ns_body(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def pod_body(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]},
    }


async def visibility(
    sessions: list[aiohttp.ClientSession], urls: list[str], tries: int
) -> list[float]:
    out = []
    for i in range(tries):
        name = f"vis-{i}-{os.getpid()}"
        t0 = time.perf_counter()
        async with sessions[0].post(f"{urls[0]}/api/v1/namespaces", json=ns_body(name)) as r:
            assert r.status == 201, await r.text()

        async def seen(
            s: aiohttp.ClientSession, url: str, name: str = name, t0: float = t0
        ) -> float:
            while True:
                async with s.get(f"{url}/api/v1/namespaces/{name}") as r:
                    await r.read()
                    if r.status == 200:
                        return time.perf_counter() - t0
                await asyncio.sleep(0.005)

        times = await asyncio.gather(
            *(seen(s, u) for s, u in zip(sessions[1:], urls[1:], strict=True))
        )
        out.append(max(times))
    return out


async def get_latency(s: aiohttp.ClientSession, url: str, n: int) -> list[float]:
    path = f"{url}/api/v1/namespaces/default"
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with s.get(path) as r:
            await r.read()
            assert r.status == 200
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def list_table(
    s: aiohttp.ClientSession, url: str, pods: int, settle_s: float
) -> dict[str, float]:
    sem = asyncio.Semaphore(32)
    t0 = time.perf_counter()

    async def create(i: int) -> None:
        async with (
            sem,
            s.post(f"{url}/api/v1/namespaces/default/pods", json=pod_body(f"p{i:05d}")) as r,
        ):
            assert r.status == 201, await r.text()

    await asyncio.gather(*(create(i) for i in range(pods)))
    create_s = time.perf_counter() - t0
    await asyncio.sleep(settle_s)  # let the other nodes' copies catch up (it loads this node)
    times = []
    rows = 0
    for _ in range(5):
        t0 = time.perf_counter()
        async with s.get(f"{url}/api/v1/namespaces/default/pods", headers={"Accept": TABLE}) as r:
            body = await r.read()
        times.append((time.perf_counter() - t0) * 1000)
        rows = len(json.loads(body)["rows"])
    return {
        "pods": rows,
        "create_s": round(create_s, 2),
        "list_table_ms_p50": round(statistics.median(times), 1),
        "list_table_ms_max": round(max(times), 1),
    }


async def watch_fanout(ctx: ssl.SSLContext, url: str, watchers: int) -> dict[str, float]:
    conn = aiohttp.TCPConnector(ssl=ctx, limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
        async with s.post(f"{url}/api/v1/namespaces", json=ns_body("watched")) as r:
            assert r.status in (201, 409)
        async with s.get(f"{url}/api/v1/namespaces/watched") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        ready = 0
        all_ready = asyncio.Event()
        got: list[float] = []
        t_update = [0.0]

        async def one() -> None:
            nonlocal ready
            q = (
                f"{url}/api/v1/namespaces?watch=true&resourceVersion={rv}"
                "&fieldSelector=metadata.name%3Dwatched"
            )
            async with s.get(q) as r:
                ready += 1
                if ready == watchers:
                    all_ready.set()
                async for line in r.content:
                    if line.strip():
                        got.append(time.perf_counter() - t_update[0])
                        return

        t0 = time.perf_counter()
        tasks = [asyncio.create_task(one()) for _ in range(watchers)]
        await asyncio.wait_for(all_ready.wait(), 120)
        connect_s = time.perf_counter() - t0
        await asyncio.sleep(0.5)
        t_update[0] = time.perf_counter()
        patch = {"metadata": {"labels": {"touched": "yes"}}}
        async with s.patch(
            f"{url}/api/v1/namespaces/watched",
            data=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as r:
            assert r.status == 200, await r.text()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return {
        "watchers": watchers,
        "received": len(got),
        "connect_s": round(connect_s, 2),
        "watch_fanout_s_p50": round(_pct(got, 0.5), 3),
        "watch_fanout_s_max": round(max(got), 3),
    }


async def run(
    args: argparse.Namespace, dir: Path, infos: list[dict[str, object]]
) -> dict[str, object]:
    ctx = kubeconfig.client_ssl(dir / "kubeconfig")
    urls = [f"https://{i['api_addr']}" for i in infos]
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) for _ in urls]
    try:
        await asyncio.sleep(1.0)  # let membership settle
        vis = await visibility(sessions, urls, args.tries)
        get = await get_latency(sessions[0], urls[0], 500)
        lst = await list_table(sessions[0], urls[0], args.pods, args.settle) if args.pods else {}
    finally:
        for s in sessions:
            await s.close()
    fan = await watch_fanout(ctx, urls[0], args.watchers) if args.watchers else {}
    return {
        "nodes": len(urls),
        "tries": args.tries,
        "visibility_s_p50": round(_pct(vis, 0.5), 4),
        "visibility_s_p99": round(_pct(vis, 0.99), 4),
        "visibility_s_max": round(max(vis), 4),
        "get_ms_p50": round(_pct(get, 0.5), 3),
        "get_ms_p99": round(_pct(get, 0.99), 3),
        **lst,
        **fan,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--tries", type=int, default=50)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--watchers", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=10.0, help="wait after creating pods (s)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dir = Path(tmp)
        procs, infos = start_mesh(args.nodes, dir, "bench.local", "local", "1h")
        try:
            result = asyncio.run(run(args, dir, infos))
        finally:
            stop_mesh(procs)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
