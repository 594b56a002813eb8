"""Real mesh: time from a new node joining until every node lists its node record.

Starts a ``hyperion up``-style mesh of real processes (mutual TLS on loopback), then,
``--tries`` times: starts one more node (``hyperion node start --join``), takes the moment
its ``node.json`` appears (its port is bound and it starts joining) as time zero, and
polls every node's admin API (``Nodes``, the call behind ``hyperion nodes``) until all of
them, the newcomer included, list the newcomer's record. The newcomer then leaves
(SIGTERM) and the next try starts once its record is gone everywhere. Prints one JSON
object; times are wall-clock seconds and include the polling interval.

    python bench/real_record_visibility.py --nodes 5 --tries 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from hyperion.cli.up import node_command, start_mesh, stop_mesh
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.spiffe import user_spiffe_id
from hyperion.identity.tokens import create_token
from hyperion.net.transport import call_admin
from hyperion.sim.metrics import percentile

POLL_S = 0.02
TIMEOUT_S = 20.0


async def known_ids(addrs: list[str], svid: object) -> list[set[str]]:
    async def one(addr: str) -> set[str]:
        reply = await call_admin(addr, svid, "Nodes", timeout_s=2.0)  # type: ignore[arg-type]
        return {r.node_id.hex() for r in reply.records}

    return list(await asyncio.gather(*(one(a) for a in addrs)))


def wait_for(path: Path) -> dict[str, object]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            return json.loads(path.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            time.sleep(0.005)
    raise RuntimeError(f"{path} did not appear")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5, help="mesh size including the newcomer")
    ap.add_argument("--tries", type=int, default=20)
    args = ap.parse_args()
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hyperion-bench-") as tmp:
        mesh_dir = Path(tmp)
        procs, infos = start_mesh(args.nodes - 1, mesh_dir, "bench.local", "local", "1h")
        try:
            ca = CertificateAuthority.load(mesh_dir)
            svid = ca.issue_svid(user_spiffe_id(ca.trust_domain, "bench"), ttl_s=3600)
            addrs = [str(i["mesh_addr"]) for i in infos]
            loop = asyncio.new_event_loop()
            for t in range(args.tries):
                name = f"joiner-{t}"
                token = create_token(mesh_dir, ttl_s=600)
                cmd = node_command(mesh_dir, name, token, join=addrs[t % len(addrs)])
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    info = wait_for(mesh_dir / "nodes" / name / "node.json")
                    t0 = time.monotonic()
                    new_id = str(info["node_id"])
                    everyone = [*addrs, str(info["mesh_addr"])]
                    while True:
                        views = loop.run_until_complete(known_ids(everyone, svid))
                        if all(new_id in v for v in views):
                            times.append(time.monotonic() - t0)
                            break
                        if time.monotonic() - t0 > TIMEOUT_S:
                            raise RuntimeError(f"{name}'s record did not reach every node")
                        time.sleep(POLL_S)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=10)
                deadline = time.monotonic() + TIMEOUT_S
                while any(new_id in v for v in loop.run_until_complete(known_ids(addrs, svid))):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name}'s record was not withdrawn")
                    time.sleep(0.1)
            loop.close()
        finally:
            stop_mesh(procs)
    print(
        json.dumps(
            {
                "nodes": args.nodes,
                "tries": len(times),
                "visible_everywhere_s_p50": round(percentile(times, 50) or 0.0, 3),
                "visible_everywhere_s_p99": round(percentile(times, 99) or 0.0, 3),
                "visible_everywhere_s_max": round(max(times), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
