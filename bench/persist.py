"""What keeping the catalog on disk costs the API, on a real local mesh.

    python bench/persist.py [--nodes 3] [--sequential 300] [--writes 2000]
                            [--concurrency 16] [--objects 20000] [--json]

Against node-1's API with the admin certificate of ``hyperion up``'s kubeconfig:

* ``create_ms``: ``--sequential`` Service creates one after another over a kept-alive
  HTTPS connection, client-side latency (p50/p99/max);
* ``writes_per_s``: ``--writes`` Service creates from ``--concurrency`` connections at
  once, completed writes per second of wall time;
* ``restore`` (only where ``hyperion.control.persist`` exists): after the mesh is
  stopped, reading node-1's store and restoring it into a fresh catalog, in-process.

and in-process, with ``--objects`` Services of ~850 bytes (persist.py only):

* ``write_us``: ``Catalog.write`` alone vs followed by ``CatalogStore.save`` (encode and
  ``write(2)`` of the record), per write;
* ``fsync_ms``: fsync after a 1 kB append on the store's disk (p50/p99 of 100);
* ``compact_s`` with the largest event-loop stall meanwhile (``loop_stall_ms_max``),
  then ``load_s`` and ``restore_s`` of the snapshot it wrote.

Run it from a checkout without persistence to compare the mesh numbers (the script
imports the ``hyperion`` next to it). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hyperion.api import kubeconfig  # noqa: E402
from hyperion.cli.up import start_mesh, stop_mesh  # noqa: E402


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def service(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name, "bench": "persist"}},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


async def create(s: aiohttp.ClientSession, url: str, name: str) -> None:
    async with s.post(f"{url}/api/v1/namespaces/default/services", json=service(name)) as r:
        body = await r.read()
        assert r.status == 201, body[:200]


async def measure(url: str, ctx: object, sequential: int, writes: int, conc: int) -> dict:
    conn = aiohttp.TCPConnector(ssl=ctx, limit=conc + 1)
    async with aiohttp.ClientSession(connector=conn) as s:
        for i in range(20):  # warm up: TLS, code paths
            await create(s, url, f"warm-{i}")
        lat = []
        for i in range(sequential):
            t0 = time.perf_counter()
            await create(s, url, f"seq-{i}")
            lat.append((time.perf_counter() - t0) * 1000)
        names = iter(range(writes))

        async def worker() -> None:
            for i in names:
                await create(s, url, f"par-{i}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        wall = time.perf_counter() - t0
    return {
        "create_ms": {
            "p50": round(_pct(lat, 0.5), 2),
            "p99": round(_pct(lat, 0.99), 2),
            "max": round(max(lat), 2),
        },
        "writes_per_s": round(writes / wall, 1),
    }


def restore_ms(node_dir: Path) -> dict | None:
    try:
        from hyperion.control.catalog import Catalog
        from hyperion.control.persist import CatalogStore
    except ImportError:
        return None
    t0 = time.perf_counter()
    store = CatalogStore(node_dir / "catalog", "bench", tombstone_ttl_s=3600.0)
    loaded = store.load()
    t1 = time.perf_counter()
    cat = Catalog("bench", "", rng=random.Random(0), now=0.0, wall_offset=time.time())
    n = cat.restore(loaded.items, 0.0)
    t2 = time.perf_counter()
    size = sum(f.stat().st_size for f in (node_dir / "catalog").iterdir())
    return {
        "versions": n,
        "records": loaded.records,
        "bytes": size,
        "load_ms": round((t1 - t0) * 1000, 1),
        "restore_ms": round((t2 - t1) * 1000, 1),
    }


def _service_obj(i: int) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"s{i}", "namespace": "default", "uid": f"{i:036d}"},
        "spec": {"selector": {"app": f"s{i}"}, "ports": [{"port": 80}], "note": "x" * 640},
    }


def offline(n: int, tmp: Path) -> dict | None:
    try:
        from hyperion.control.catalog import Catalog
        from hyperion.control.persist import CatalogStore
    except ImportError:
        return None

    def catalog() -> Catalog:
        return Catalog("b", "", rng=random.Random(0), now=0.0, wall_offset=time.time())

    objs = [_service_obj(i) for i in range(n)]
    plain, cat = catalog(), catalog()
    store = CatalogStore(tmp / "catalog", "b", tombstone_ttl_s=3600.0)
    store.open(cat, 0.0)
    t0 = time.perf_counter()
    for i, o in enumerate(objs):
        plain.write(("/services", "default", f"s{i}"), o, 0.0)
    t1 = time.perf_counter()
    for i, o in enumerate(objs):
        cat.write(("/services", "default", f"s{i}"), o, 0.0)
        store.save()
    t2 = time.perf_counter()
    fd = os.open(tmp / "fsync-probe", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    syncs = []
    for _ in range(100):
        os.write(fd, b"x" * 1024)
        t = time.perf_counter()
        os.fsync(fd)
        syncs.append((time.perf_counter() - t) * 1000)
    os.close(fd)

    async def compact() -> tuple[float, float]:
        stalls: list[float] = []
        done = False

        async def ticker() -> None:
            while not done:
                t = time.perf_counter()
                await asyncio.sleep(0.001)
                stalls.append(time.perf_counter() - t - 0.001)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        t = time.perf_counter()
        await store.compact()
        took = time.perf_counter() - t
        done = True
        await task
        await store.close()
        return took, max(stalls) * 1000

    compact_s, stall_ms = asyncio.run(compact())
    t3 = time.perf_counter()
    loaded = CatalogStore(tmp / "catalog", "b", tombstone_ttl_s=3600.0).load()
    t4 = time.perf_counter()
    catalog().restore(loaded.items, 0.0)
    t5 = time.perf_counter()
    return {
        "objects": n,
        "snapshot_bytes": store.stats()["snapshot_bytes"],
        "write_us": {
            "catalog": round((t1 - t0) / n * 1e6, 1),
            "catalog_and_save": round((t2 - t1) / n * 1e6, 1),
        },
        "fsync_ms": {"p50": round(_pct(syncs, 0.5), 2), "p99": round(_pct(syncs, 0.99), 2)},
        "compact_s": round(compact_s, 3),
        "loop_stall_ms_max": round(stall_ms, 1),
        "load_s": round(t4 - t3, 3),
        "restore_s": round(t5 - t4, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--sequential", type=int, default=300)
    ap.add_argument("--writes", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--objects", type=int, default=20000, help="in-process part; 0: skip")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hyperion-bench-persist-") as tmp:
        d = Path(tmp)
        procs, infos = start_mesh(a.nodes, d, "bench.test", "local", "1h")
        try:
            ctx = kubeconfig.client_ssl(d / "kubeconfig")
            url = f"https://{infos[0]['api_addr']}"
            out = asyncio.run(measure(url, ctx, a.sequential, a.writes, a.concurrency))
        finally:
            stop_mesh(procs)
        out["restore"] = restore_ms(d / "nodes" / "node-1")
        if a.objects > 0:
            (d / "offline").mkdir()
            out["offline"] = offline(a.objects, d / "offline")
    out.update(nodes=a.nodes, cpus=os.cpu_count())
    print(json.dumps(out, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
