"""Replica leases on real node processes, driven by real kubectl: every running replica
holds a lease in the DHT that ``hyperion locate`` shows, and a replica whose lease stops
being renewed while its node stays alive is replaced elsewhere (DESIGN §6.4–5)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import KUBECTL, Kubectl, deployment, eventually, mesh

from hyperion.control.driver import LEASE_RENEW_S, LEASE_TTL_S

pytestmark = pytest.mark.skipif(
    not Path(KUBECTL).exists(), reason=f"real kubectl is not installed at {KUBECTL}"
)


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    dir = tmp_path_factory.mktemp("leases")
    with pytest.MonkeyPatch.context() as mp:
        # The nodes' test hook: pods listed in this file get no lease renewals.
        mp.setenv("HYPERION_TEST_LEASE_PAUSE", str(dir / "lease-pause"))
        with mesh(dir, 3):
            k = Kubectl(dir)
            eventually(lambda: len(k.json("get", "nodes")["items"]) == 3, timeout=15)
            yield k


def hyperion(dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hyperion", *args, "--dir", str(dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def locate(dir: Path, what: str, node: str = "node-1") -> dict[str, Any]:
    p = hyperion(dir, "locate", what, "--node", node, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)  # type: ignore[no-any-return]


def running(kube: Kubectl, app: str, n: int) -> list[dict[str, Any]]:
    got = kube.json("get", "pods", "-l", f"app={app}")["items"]
    ok = [p for p in got if p["status"].get("phase") == "Running" and p["spec"].get("nodeName")]
    assert len(ok) == n and len(got) == n, [
        (p["metadata"]["name"], p["spec"].get("nodeName"), p["status"].get("phase")) for p in got
    ]
    return ok


def node_ids(dir: Path) -> dict[str, str]:
    nodes = json.loads((dir / "mesh.json").read_text())["nodes"]
    return {n["name"]: n["node_id"] for n in nodes}


def leased(kube: Kubectl, app: str, n: int, node: str = "node-1") -> dict[str, Any]:
    """``hyperion locate`` once it shows the ``n`` running pods, each with its lease."""
    pods = {p["metadata"]["name"]: p for p in running(kube, app, n)}
    got = locate(kube.dir, f"deployment/{app}", node)
    rows = {r["pod"]: r for r in got["placements"]}
    assert rows.keys() == pods.keys(), (rows.keys(), pods.keys())
    ids = node_ids(kube.dir)
    for name, r in rows.items():
        assert r["node"] == pods[name]["spec"]["nodeName"]
        assert r["pod_uid"] == pods[name]["metadata"]["uid"]
        assert r["lease"] is not None, f"{name} has no lease"
        assert r["lease"]["author"] == ids[r["node"]] == r["node_id"]  # only its holder
        assert r["lease"]["expires_at"] > time.time()
    return got


def test_running_replicas_hold_leases_that_locate_shows(kube: Kubectl) -> None:
    kube.run("apply", "-f", "-", input=deployment("web", 3))
    kube.run("rollout", "status", "deployment/web", "--timeout=20s")
    got = eventually(lambda: leased(kube, "web", 3), timeout=10, interval=0.5)
    w = got["workload"]
    assert (w["resource"], w["namespace"], w["name"]) == ("apps/deployments", "default", "web")
    assert w["desired"] == 3
    custodian = got["record"]["author_name"]
    assert custodian in node_ids(kube.dir)
    # Every node resolves the same thing through the DHT.
    other = locate(kube.dir, "deploy/web", "node-3")
    assert other["record"]["author"] == got["record"]["author"]
    table = hyperion(kube.dir, "locate", "deployment/web")
    assert table.returncode == 0 and "held" in table.stdout and custodian in table.stdout
    missing = hyperion(kube.dir, "locate", "deployment/nope")
    assert missing.returncode == 2 and "no record of deployment default/nope" in missing.stderr
    bad = hyperion(kube.dir, "locate", "pod/x")
    assert bad.returncode == 2 and "not a workload kind" in bad.stderr
    kube.run("delete", "deployment", "web")
    eventually(lambda: kube.json("get", "pods", "-l", "app=web")["items"] == [], timeout=10)


def test_a_replica_whose_lease_stops_being_renewed_is_replaced(kube: Kubectl) -> None:
    kube.run("apply", "-f", "-", input=deployment("lapse", 2))
    before = eventually(lambda: leased(kube, "lapse", 2), timeout=15, interval=0.5)
    victim = before["placements"][0]
    (kube.dir / "lease-pause").write_text(f"default/{victim['pod']}\n")
    t0 = time.monotonic()

    def replaced() -> list[dict[str, Any]]:
        ps = running(kube, "lapse", 2)
        assert victim["pod"] not in {p["metadata"]["name"] for p in ps}
        return ps

    eventually(replaced, timeout=LEASE_TTL_S + 10, interval=0.2)
    took = time.monotonic() - t0
    # Not before the lease expired (its last renewal came at most LEASE_RENEW_S before
    # the pause), and the victim's node stayed alive all along.
    assert took > LEASE_TTL_S - LEASE_RENEW_S, took
    after = eventually(lambda: leased(kube, "lapse", 2), timeout=5, interval=0.5)
    members = json.loads(hyperion(kube.dir, "members", "--json").stdout)
    assert all(m["state"] == "alive" for m in members), members
    custodian, holder = before["record"]["author_name"], victim["node"]
    stats = json.loads(hyperion(kube.dir, "stats", "--json", "--node", custodian).stdout)
    assert stats["control_lease_lapses"] >= 1 and stats["control_lease_misses"] >= 2
    if holder != custodian:
        stats = json.loads(hyperion(kube.dir, "stats", "--json", "--node", holder).stdout)
    assert stats["control_lease_renewals_paused"] >= 1
    assert after["workload"]["ready"] == 2
    (kube.dir / "lease-pause").write_text("")
    kube.run("delete", "deployment", "lapse")
