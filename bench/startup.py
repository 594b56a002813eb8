"""Workload start-up latency on a real local mesh (one OS process per node, process runtime).

    python bench/startup.py [--tries 50] [--replicas 100] [--nodes-big 5] [--json]

Meshes are started with ``hyperion.cli.up.start_mesh`` and no node identities (what
``hyperion up --fleet none`` does: no cloud labels, every node offers this machine), and
the API is spoken directly over HTTPS with the admin certificate of its kubeconfig
(``POST`` of the Deployment, as ``kubectl apply`` would do; no ``kubectl`` process).
Containers run ``/bin/sleep 3600`` with requests of cpu 10m, memory 16Mi.

* ``single``: a 3-node mesh (``--nodes``); ``--tries`` times: open a watch on node-1 for
  the pods of a new uniquely named 1-replica Deployment, ``POST`` it to node-1, time
  until the watch shows its pod ``Running`` with ``Ready=True`` (``bound_s``: until the
  pod first shows a ``nodeName``); then delete the Deployment and wait until its pod is
  gone. p50/p99/max in seconds (target p99 <= 0.5 s).
* ``big``: a fresh ``--nodes-big``-node mesh; one Deployment of ``--replicas``
  replicas; time until all of them are Running and Ready on node-1's watch (target
  <= 5 s), and how they spread over the nodes.

Every mesh is stopped (and every container process this run started is killed) on exit,
Ctrl-C or SIGTERM included. Prints one JSON object with ``--json``, else tables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The node processes (``python -m hyperion``) import this checkout too, whatever the
# working directory and whichever checkout is installed.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)
from hyperion.api import kubeconfig  # noqa: E402
from hyperion.cli.up import start_mesh, stop_mesh  # noqa: E402

NS = "default"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
PODS = f"/api/v1/namespaces/{NS}/pods"
MARKER = "HYPERION_BENCH_RUN"  # env of every container: finds this run's processes
COMMAND = ["/bin/sleep", "3600"]
TRUST_DOMAIN = "bench.local"


# ------------------------------------------------------------------------ helpers


def pct(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile (as bench/api.py); None for no samples."""
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def summary(xs: list[float], digits: int = 3) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, digits)

    return {"p50": r(pct(xs, 0.5)), "p99": r(pct(xs, 0.99)), "max": r(max(xs) if xs else None)}


def machine() -> dict[str, object]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "hyperion": str(ROOT),
    }


def deployment(name: str, replicas: int, run_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"bench": "hyperion"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "sleep",
                            "image": "busybox",
                            "command": COMMAND,
                            "env": [{"name": MARKER, "value": run_id}],
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ],
                },
            },
        },
    }


def pod_ready(pod: dict[str, Any]) -> bool:
    """Running, Ready=True and not being deleted."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    st = pod.get("status") or {}
    if st.get("phase") != "Running":
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
    )


def node_of(pod: dict[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _marked(run_id: str) -> Iterator[tuple[int, int]]:
    """(pid, ppid) of every process whose environment carries this run's marker."""
    needle = f"{MARKER}={run_id}".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError):
            continue
        yield int(entry.name), ppid


def sweep(run_id: str, live_parents: set[int] | None = None) -> int:
    """SIGKILL this run's container processes: all of them, or (``live_parents``) those
    whose parent is not one of these node processes (orphans of a killed node)."""
    n = 0
    for pid, ppid in _marked(run_id):
        if live_parents is not None and ppid in live_parents:
            continue
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            n += 1
    return n


def install_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so that every ``finally`` stops what it started."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)


class Api:
    """One node's Kubernetes API over HTTPS with the kubeconfig's admin certificate."""

    def __init__(self, url: str, ctx: Any) -> None:
        self.url = url
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=10)
        self.s = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx, limit=0), timeout=timeout
        )

    async def close(self) -> None:
        await self.s.close()

    async def create(self, path: str, body: dict[str, Any]) -> None:
        async with self.s.post(self.url + path, json=body) as r:
            if r.status != 201:
                raise RuntimeError(f"POST {path}: {r.status} {await r.text()}")

    async def delete(self, path: str) -> None:
        async with self.s.delete(self.url + path) as r:
            if r.status not in (200, 202, 404):
                raise RuntimeError(f"DELETE {path}: {r.status} {await r.text()}")

    async def get(self, path: str, **params: str) -> dict[str, Any]:
        async with self.s.get(self.url + path, params=params) as r:
            if r.status != 200:
                raise RuntimeError(f"GET {path}: {r.status} {await r.text()}")
            return await r.json()  # type: ignore[no-any-return]

    async def pods(self, selector: str) -> list[dict[str, Any]]:
        return list((await self.get(PODS, labelSelector=selector))["items"])

    @contextlib.asynccontextmanager
    async def watch(self, selector: str) -> AsyncIterator[AsyncIterator[tuple[str, Any]]]:
        """A pod watch; once entered the server has registered it (its first event is
        anything that changes after this point, plus ADDED for the pods already there)."""
        params = {"watch": "true", "labelSelector": selector, "timeoutSeconds": "600"}
        async with self.s.get(self.url + PODS, params=params) as r:
            if r.status != 200:
                raise RuntimeError(f"watch {selector}: {r.status} {await r.text()}")

            async def events() -> AsyncIterator[tuple[str, Any]]:
                async for line in r.content:
                    if line.strip():
                        ev = json.loads(line)
                        yield ev["type"], ev["object"]
                raise RuntimeError("watch ended")

            yield events()

    async def wait_gone(self, selector: str, timeout_s: float = 60.0) -> float:
        """Poll until no pod matches; returns the seconds it took."""
        t0 = time.perf_counter()
        while await self.pods(selector):
            if time.perf_counter() - t0 > timeout_s:
                raise RuntimeError(f"pods {selector} still there after {timeout_s:.0f} s")
            await asyncio.sleep(0.05)
        return time.perf_counter() - t0

    async def node_states(self) -> dict[str, str]:
        """Node name → its Ready condition's status, as this node's API lists them."""
        nodes = (await self.get("/api/v1/nodes"))["items"]
        return {
            n["metadata"]["name"]: c["status"]
            for n in nodes
            for c in n["status"].get("conditions", [])
            if c["type"] == "Ready"
        }

    async def wait_nodes_ready(self, n: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            states = await self.node_states()
            if sum(1 for v in states.values() if v == "True") >= n:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.url}: fewer than {n} nodes Ready after {timeout_s} s: {states}"
                )
            await asyncio.sleep(0.1)


@contextlib.contextmanager
def mesh(
    n: int, run_id: str, keep: Path | None = None
) -> Iterator[tuple[Path, list[Any], list[dict[str, Any]]]]:
    """A fresh local mesh in a temporary directory (or in ``keep``, left there with the
    nodes' logs); stopped (and this run's container processes killed) on the way out."""
    with tempfile.TemporaryDirectory(prefix="hyperion-bench-") as tmp:
        d = Path(tmp) if keep is None else keep / f"mesh-{n}-{run_id}"
        procs, infos = start_mesh(n, d, TRUST_DOMAIN, "local", "1h")
        try:
            yield d, procs, infos
        finally:
            stop_mesh(procs)
            sweep(run_id)


# ------------------------------------------------------------------------ measurements


async def start_one(api: Api, name: str, run_id: str, timeout_s: float) -> dict[str, float]:
    sel = f"app={name}"
    async with api.watch(sel) as events:
        t0 = time.perf_counter()
        await api.create(DEPLOYMENTS, deployment(name, 1, run_id))
        created = time.perf_counter() - t0
        bound = None

        async def until_ready() -> float:
            nonlocal bound
            async for typ, pod in events:
                if typ not in ("ADDED", "MODIFIED"):
                    continue
                now = time.perf_counter() - t0
                if bound is None and node_of(pod):
                    bound = now
                if pod_ready(pod):
                    return now
            raise AssertionError("unreachable")

        ready = await asyncio.wait_for(until_ready(), timeout_s)
    return {"ready_s": ready, "bound_s": bound or ready, "create_s": created}


async def run_single(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    with mesh(args.nodes, run_id, args.keep) as (d, _procs, infos):
        api = Api(f"https://{infos[0]['api_addr']}", kubeconfig.client_ssl(d / "kubeconfig"))
        try:
            await api.wait_nodes_ready(args.nodes)
            samples: list[dict[str, float]] = []
            timeouts = 0
            delete_s: list[float] = []
            for i in range(args.tries):
                name = f"start-{run_id}-{i}"
                try:
                    samples.append(await start_one(api, name, run_id, args.timeout))
                except TimeoutError:
                    timeouts += 1
                await api.delete(f"{DEPLOYMENTS}/{name}")
                delete_s.append(await api.wait_gone(f"app={name}"))
        finally:
            await api.close()
    ready = [s["ready_s"] for s in samples]
    return {
        "nodes": args.nodes,
        "tries": args.tries,
        "timeouts": timeouts,
        "ready_s": summary(ready),
        "bound_s": summary([s["bound_s"] for s in samples]),
        "create_request_s": summary([s["create_s"] for s in samples], 4),
        "delete_until_gone_s": summary(delete_s),
        "target_p99_s": 0.5,
        "met": timeouts == 0 and bool(ready) and (pct(ready, 0.99) or 0) <= 0.5,
        "samples_ready_s": [round(x, 4) for x in ready],
        "samples_bound_s": [round(s["bound_s"], 4) for s in samples],
    }


async def run_big(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    n = args.replicas
    with mesh(args.nodes_big, run_id, args.keep) as (d, _procs, infos):
        api = Api(f"https://{infos[0]['api_addr']}", kubeconfig.client_ssl(d / "kubeconfig"))
        try:
            await api.wait_nodes_ready(args.nodes_big)
            name = f"big-{run_id}"
            pods: dict[str, dict[str, Any]] = {}
            all_bound = None
            async with api.watch(f"app={name}") as events:
                t0 = time.perf_counter()
                await api.create(DEPLOYMENTS, deployment(name, n, run_id))

                async def until_ready() -> float:
                    nonlocal all_bound
                    async for typ, pod in events:
                        key = pod["metadata"]["name"]
                        if typ == "DELETED":
                            pods.pop(key, None)
                            continue
                        if typ not in ("ADDED", "MODIFIED"):
                            continue
                        pods[key] = pod
                        now = time.perf_counter() - t0
                        live = [
                            p
                            for p in pods.values()
                            if p["metadata"].get("deletionTimestamp") is None
                        ]
                        if all_bound is None and sum(1 for p in live if node_of(p)) >= n:
                            all_bound = now
                        if sum(1 for p in live if pod_ready(p)) >= n:
                            return now
                    raise AssertionError("unreachable")

                try:
                    ready: float | None = await asyncio.wait_for(until_ready(), args.timeout_big)
                except TimeoutError:
                    ready = None
            ready_pods = [p for p in pods.values() if pod_ready(p)]
            spread = Counter(node_of(p) for p in ready_pods)
            await api.delete(f"{DEPLOYMENTS}/{name}")
            gone = await api.wait_gone(f"app={name}", timeout_s=120)
        finally:
            await api.close()
    return {
        "nodes": args.nodes_big,
        "replicas": n,
        "all_ready_s": None if ready is None else round(ready, 3),
        "all_bound_s": None if all_bound is None else round(all_bound, 3),
        "ready_at_end": len(ready_pods),
        "spread": {k: spread[k] for k in sorted(spread)},
        "delete_until_gone_s": round(gone, 3),
        "target_s": 5.0,
        "met": ready is not None and ready <= 5.0,
    }


# ------------------------------------------------------------------------ output


def print_tables(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def f(v: object) -> str:
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    console = Console()
    s = result.get("single")
    if s:
        t = Table(
            title=f"1-replica Deployment → pod Ready ({s['nodes']} nodes, {s['tries']} tries)"
        )
        for c in ("measure", "p50 s", "p99 s", "max s"):
            t.add_column(c, justify="left" if c == "measure" else "right")
        for label, key in (
            ("create → Ready (target p99 ≤ 0.5 s)", "ready_s"),
            ("create → bound to a node", "bound_s"),
            ("the POST itself", "create_request_s"),
            ("delete → pod gone", "delete_until_gone_s"),
        ):
            t.add_row(label, *(f(s[key][q]) for q in ("p50", "p99", "max")))
        console.print(t)
        console.print(f"timeouts: {s['timeouts']}; target met: {s['met']}")
    b = result.get("big")
    if b:
        t = Table(title=f"{b['replicas']}-replica Deployment on {b['nodes']} nodes")
        t.add_column("measure")
        t.add_column("value", justify="right")
        t.add_row("create → all Running+Ready (target ≤ 5 s)", f(b["all_ready_s"]))
        t.add_row("create → all bound", f(b["all_bound_s"]))
        t.add_row("ready at the end", f(b["ready_at_end"]))
        t.add_row("spread", ", ".join(f"{k}: {v}" for k, v in b["spread"].items()))
        t.add_row("delete → all gone (s)", f(b["delete_until_gone_s"]))
        console.print(t)
        console.print(f"target met: {b['met']}")
    console.print(f"machine: {result['machine']}; wall {result['wall_s']} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tries", type=int, default=50, help="1-replica starts (0: skip)")
    ap.add_argument("--nodes", type=int, default=3, help="nodes of the 1-replica mesh")
    ap.add_argument("--replicas", type=int, default=100, help="big Deployment (0: skip)")
    ap.add_argument("--nodes-big", type=int, default=5, help="nodes of the big mesh")
    ap.add_argument("--timeout", type=float, default=30.0, help="per 1-replica start (s)")
    ap.add_argument("--timeout-big", type=float, default=120.0, help="for the big one (s)")
    ap.add_argument("--keep", type=Path, help="make the meshes here and keep their logs")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if args.tries < 0 or args.replicas < 0 or args.nodes < 1 or args.nodes_big < 1:
        ap.error("need --tries, --replicas >= 0 and --nodes, --nodes-big >= 1")
    steps: list[tuple[str, Step]] = []
    if args.tries:
        steps.append(("single", run_single))
    if args.replicas:
        steps.append(("big", run_big))
    run_bench("startup", args, steps, print_tables)


Step = Callable[[argparse.Namespace, str], Coroutine[Any, Any, dict[str, Any]]]


def run_bench(
    name: str,
    args: argparse.Namespace,
    steps: list[tuple[str, Step]],
    show: Callable[[dict[str, Any]], None],
) -> None:
    """Run each step under one run id (its processes are swept even on errors) and print
    the result: one JSON object with ``--json``, else ``show``'s tables."""
    install_sigterm()
    run_id = uuid.uuid4().hex[:8]
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "bench": name,
        "machine": machine(),
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "client": "aiohttp HTTPS to node-1's API (POST like kubectl apply; pod watch)",
        "mesh": "hyperion.cli.up.start_mesh, no fleet identities (= hyperion up --fleet none)",
        "command": COMMAND,
        "requests": {"cpu": "10m", "memory": "16Mi"},
    }
    try:
        for key, step in steps:
            result[key] = asyncio.run(step(args, run_id))
    finally:
        sweep(run_id)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(result))
    else:
        show(result)


if __name__ == "__main__":
    main()
