"""Nodes that restart run their pods again in place: real nodes, real kubectl.

A 3-node mesh runs a 3-replica Deployment. (1) Every node is stopped (SIGTERM) and the
mesh started again from the same directory: each pod comes back on its node under its
name and uid, restarted once (``restartCount`` 1, ``lastState`` terminated), and no
pod is created or scheduled. (2) One node with pods (not node-1, the seed) is stopped
and started again within the custodians' grace: its pods are restarted in place
(``restartCount`` 2), the others are untouched. (3) It is stopped and stays away:
after the grace its replicas are replaced on other nodes, as for a node that died.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import KUBECTL, Kubectl, deployment, eventually, mesh

from hyperion.cli.up import node_command
from hyperion.identity.tokens import create_token

pytestmark = pytest.mark.skipif(
    not Path(KUBECTL).exists(), reason=f"real kubectl is not installed at {KUBECTL}"
)


def web_pods(kube: Kubectl) -> dict[str, tuple[str, str, int]]:
    """Pod name -> (uid, node, restartCount) of the Deployment's pods, once all of
    them run and are ready."""
    items: list[dict[str, Any]] = kube.json("get", "pods", "-l", "app=web")["items"]
    out = {}
    for p in items:
        st = p["status"]
        [cs] = st.get("containerStatuses") or [{}]
        assert st.get("phase") == "Running" and cs.get("ready"), (p["metadata"]["name"], st)
        assert "reason" not in st, st
        out[p["metadata"]["name"]] = (
            p["metadata"]["uid"],
            p["spec"]["nodeName"],
            cs["restartCount"],
        )
    return out


def scheduled(kube: Kubectl) -> int:
    """Scheduled events of the Deployment's pods: one per pod ever placed."""
    events = kube.json("get", "events", "--field-selector", "reason=Scheduled")["items"]
    return sum(1 for e in events if e["involvedObject"]["name"].startswith("web-"))


def stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)  # a child of this process: reap it


def test_restarted_nodes_restart_their_pods_in_place(tmp_path: Path) -> None:
    kube = Kubectl(tmp_path)
    with mesh(tmp_path, 3):
        eventually(lambda: len(kube.json("get", "nodes")["items"]) == 3, timeout=15)
        kube.run("apply", "-f", "-", input=deployment("web", 3))
        kube.run("rollout", "status", "deployment/web", "--timeout=30s", timeout=40)
        before = eventually(lambda: len(web_pods(kube)) == 3 and web_pods(kube), timeout=10)
        assert scheduled(kube) == 3
    on = [node for _, node, _ in before.values()]
    victim = next((n for n in ("node-3", "node-2") if n in on), None)
    assert victim is not None, on
    # (1) every node was stopped; the same directory again
    with mesh(tmp_path, 3) as infos:
        again = {name: (uid, node, 1) for name, (uid, node, _) in before.items()}
        eventually(lambda: web_pods(kube) == again, timeout=20)
        assert scheduled(kube) == 3  # nothing was placed anew
        web = kube.json("get", "deployment", "web")["status"]
        assert web["readyReplicas"] == 3 and web["replicas"] == 3
        for name in before:
            [cs] = kube.json("get", "pod", name)["status"]["containerStatuses"]
            assert cs["lastState"]["terminated"]["exitCode"] == 143  # SIGTERM, at the stop
        sandbox = kube.json("get", "events", "--field-selector", "reason=SandboxChanged")
        assert {e["involvedObject"]["name"] for e in sandbox["items"]} == set(before)

        # (2) the victim alone stops and starts again, within the grace
        info = next(i for i in infos if i["name"] == victim)
        stop(int(str(info["pid"])))
        cmd = node_command(
            tmp_path,
            victim,
            create_token(tmp_path, ttl_s=600),
            join=str(infos[0]["mesh_addr"]),
            extra=["--profile", "local"],
        )
        with open(tmp_path / "nodes" / victim / "node.log", "ab") as log:
            restarted = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            again = {
                name: (uid, node, 2 if node == victim else 1)
                for name, (uid, node, _) in before.items()
            }
            eventually(lambda: web_pods(kube) == again, timeout=20)
            assert scheduled(kube) == 3
            # (3) the victim stops and stays away: its replicas run elsewhere after the grace
            pid = json.loads((tmp_path / "nodes" / victim / "node.json").read_text())["pid"]
            assert pid == restarted.pid
            restarted.terminate()
            restarted.wait(timeout=10)

            def replaced() -> bool:
                now = web_pods(kube)
                assert len(now) == 3 and victim not in {n for _, n, _ in now.values()}
                return True

            eventually(replaced, timeout=30)
            assert scheduled(kube) == 3 + on.count(victim)
        finally:
            if restarted.poll() is None:
                restarted.kill()
                restarted.wait()
