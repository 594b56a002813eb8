"""Node records on real processes: a mixed-version mesh, ``hyperion nodes``, a late joiner."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyperion.cli.up import node_command, start_mesh, stop_mesh
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.spiffe import user_spiffe_id
from hyperion.identity.tokens import create_token
from hyperion.mesh.records import NodeRecord
from hyperion.net.transport import call_admin

N = 4
TIMEOUT_S = 20.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")


def _args(i: int) -> list[str]:
    if i % 2:  # node-1, node-3: protocol 2, with the field version 2 added to records
        return ["--labels", "cloud=aws,region=us-east-1", "--egress-price-per-gb", "0.09"]
    return ["--labels", "cloud=gcp,region=europe-west4,spot=true,price=0.31", "--gpus", "L4:1"]


def _known(addrs: list[str], svid: object) -> list[dict[str, NodeRecord]]:
    async def one(addr: str) -> dict[str, NodeRecord]:
        reply = await call_admin(addr, svid, "Nodes", timeout_s=3.0)  # type: ignore[arg-type]
        recs = [NodeRecord.from_bytes(pb.SerializeToString()) for pb in reply.records]
        return {r.node_id: r for r in recs}

    async def all_() -> list[dict[str, NodeRecord]]:
        return list(await asyncio.gather(*(one(a) for a in addrs)))

    return asyncio.run(all_())


def _wait(cond, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_mixed_version_mesh_shares_records_and_filters_by_version(tmp_path: Path) -> None:
    mesh_dir = tmp_path / "D"
    procs, infos = start_mesh(
        N, mesh_dir, "hyperion.local", "local", "1h", wire_versions=(2, 1), node_args=_args
    )
    try:
        ca = CertificateAuthority.load(mesh_dir)
        svid = ca.issue_svid(user_spiffe_id(ca.trust_domain, "test"), ttl_s=600)
        addrs = [str(i["mesh_addr"]) for i in infos]
        ids = [str(i["node_id"]) for i in infos]

        def complete() -> list[dict[str, NodeRecord]] | None:
            v = _known(addrs, svid)
            return v if all(len(x) == N for x in v) else None

        views = _wait(complete, "every node to know every record")
        v2_node, v1_node = ids[0], ids[1]
        new_view, old_view = views[0], views[1]
        # Versions and the field protocol 2 added, as each side reads them.
        assert new_view[v2_node].software_version == "0.2.0"
        assert new_view[v2_node].protocol_versions == (1, 2)
        assert new_view[v1_node].software_version == "0.1.0+compat"
        assert new_view[v1_node].protocol_versions == (1,)
        assert new_view[v2_node].egress_price_per_gb == 0.09
        assert old_view[v2_node].egress_price_per_gb == 0.0  # dropped by the v1 schema
        # Labels with Kubernetes keys, prices, spot and GPUs came through.
        rec = new_view[v1_node]
        assert rec.labels["topology.kubernetes.io/region"] == "europe-west4"
        assert rec.labels["hyperion.io/geography"] == "EU"
        assert rec.spot and rec.price_per_hour == 0.31
        assert [(g.model, g.count) for g in rec.gpus] == [("L4", 1)]
        assert new_view[v2_node].labels["hyperion.io/cloud"] == "aws"

        # The CLI, asked of a version-1 node, filters by semver.
        env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
        out = subprocess.run(
            [sys.executable, "-m", "hyperion", "nodes", "--dir", str(mesh_dir),
             "--node", "node-2", "--selector", "version>=0.2", "--json"],
            capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        listed = json.loads(out.stdout)
        assert {r["node_id"] for r in listed} == {ids[0], ids[2]}
        out = subprocess.run(
            [sys.executable, "-m", "hyperion", "nodes", "--dir", str(mesh_dir),
             "--selector", "gpu=L4,spot", "--json"],
            capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert {r["node_id"] for r in json.loads(out.stdout)} == {ids[1], ids[3]}
        bad = subprocess.run(
            [sys.executable, "-m", "hyperion", "nodes", "--dir", str(mesh_dir),
             "--selector", "version>=banana"],
            capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert bad.returncode == 2 and bad.stderr.startswith("error: bad --selector")
        stats = subprocess.run(
            [sys.executable, "-m", "hyperion", "stats", "--dir", str(mesh_dir), "--json"],
            capture_output=True, text=True, env=env, check=True, cwd=tmp_path,
        )  # fmt: skip
        counters = json.loads(stats.stdout)
        assert counters["pubsub_published"] >= 1 and counters["records_known"] == N
        assert counters.get("pubsub_rejected_bad_signature", 0) == 0

        # A late joiner's record reaches every node; a departed node's record goes away.
        token = create_token(mesh_dir, ttl_s=600)
        ndir = mesh_dir / "nodes" / "late"
        cmd = node_command(mesh_dir, "late", token, join=addrs[0])
        late = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            info = _wait(
                lambda: (
                    json.loads((ndir / "node.json").read_text())
                    if (ndir / "node.json").exists()
                    else None
                ),
                "the late node to start",
            )
            late_id = str(info["node_id"])
            _wait(
                lambda: all(late_id in v for v in _known(addrs, svid)),
                "the late node's record everywhere",
            )
        finally:
            late.send_signal(signal.SIGTERM)
            late.wait(timeout=10)
        _wait(
            lambda: all(late_id not in v for v in _known(addrs, svid)),
            "the departed node's record to disappear",
        )
    finally:
        stop_mesh(procs)
