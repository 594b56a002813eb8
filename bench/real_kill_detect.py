"""Real mesh failure detection: ``kill -9`` of one node, time until every other node marks it dead.

Each try starts a fresh ``hyperion up``-style mesh of real processes (mutual TLS on
loopback), waits until every node sees every node alive, kills one non-seed node with
SIGKILL, then reads each survivor's view through the admin API until all report it
dead. A survivor's detection time is the wall-clock time it recorded the state change
minus the kill time. Prints one JSON object.

    python bench/real_kill_detect.py --tries 20 --nodes 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import tempfile
import time
from pathlib import Path

from hyperion.cli.up import start_mesh, stop_mesh
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.spiffe import user_spiffe_id
from hyperion.net.transport import call_admin

CONVERGE_TIMEOUT_S = 20.0
DETECT_TIMEOUT_S = 15.0
POLL_S = 0.1


async def views(addrs: list[str], svid: object) -> list[dict[str, tuple[str, float]]]:
    async def one(addr: str) -> dict[str, tuple[str, float]]:
        reply = await call_admin(addr, svid, "Members", timeout_s=2.0)  # type: ignore[arg-type]
        return {m.node_id: (m.state, m.state_since_unix) for m in reply.members}

    return list(await asyncio.gather(*(one(a) for a in addrs)))


def one_try(n: int, rng: random.Random, profile: str) -> float:
    with tempfile.TemporaryDirectory(prefix="hyperion-bench-") as tmp:
        mesh_dir = Path(tmp)
        procs, infos = start_mesh(n, mesh_dir, "bench.local", profile, "1h")
        try:
            ca = CertificateAuthority.load(mesh_dir)
            svid = ca.issue_svid(user_spiffe_id(ca.trust_domain, "bench"), ttl_s=600)
            addrs = [str(i["mesh_addr"]) for i in infos]
            deadline = time.monotonic() + CONVERGE_TIMEOUT_S
            while True:
                vs = asyncio.run(views(addrs, svid))
                if all(sum(1 for s, _ in v.values() if s == "alive") == n for v in vs):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("mesh did not converge")
                time.sleep(POLL_S)
            victim = rng.randrange(1, n)
            victim_id = str(infos[victim]["node_id"])
            survivors = [a for i, a in enumerate(addrs) if i != victim]
            time.sleep(rng.uniform(0.0, 1.0))  # kill at a random phase of the probe cycle
            t_kill = time.time()
            os.kill(procs[victim].pid, signal.SIGKILL)
            deadline = time.monotonic() + DETECT_TIMEOUT_S
            while True:
                time.sleep(POLL_S)
                vs = asyncio.run(views(survivors, svid))
                states = [v.get(victim_id, ("unknown", 0.0)) for v in vs]
                if all(s == "dead" for s, _ in states):
                    return max(since for _, since in states) - t_kill
                if time.monotonic() > deadline:
                    return float("inf")
        finally:
            stop_mesh(procs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tries", type=int, default=20)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="local")
    args = ap.parse_args()
    if args.tries < 1 or args.nodes < 2:
        ap.error("need --tries >= 1 and --nodes >= 2")
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    times = [one_try(args.nodes, rng, args.profile) for _ in range(args.tries)]
    finite = sorted(t for t in times if t != float("inf"))
    q = statistics.quantiles(finite, n=100, method="inclusive") if len(finite) > 1 else finite * 99
    print(
        json.dumps(
            {
                "bench": "real_kill_detect",
                "nodes": args.nodes,
                "tries": args.tries,
                "profile": args.profile,
                "detect_s_p50": round(statistics.median(finite), 3) if finite else None,
                "detect_s_p99": round(q[98], 3) if finite else None,
                "detect_s_max": round(finite[-1], 3) if finite else None,
                "undetected": len(times) - len(finite),
                "all_s": [round(t, 3) for t in times],
                "wall_s": round(time.perf_counter() - t0, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
