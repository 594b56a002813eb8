"""Scheduling and running on real node processes, driven by real kubectl: workloads
are placed by tender/bid/award and run as processes; an impossible one says why; a
Job completes; a killed node's replicas run elsewhere; bad pods get clear states."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import KUBECTL, Kubectl, deployment, eventually, mesh

pytestmark = pytest.mark.skipif(
    not Path(KUBECTL).exists(), reason=f"real kubectl is not installed at {KUBECTL}"
)


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    dir = tmp_path_factory.mktemp("sched")
    with mesh(dir, 3):
        k = Kubectl(dir)
        eventually(lambda: len(k.json("get", "nodes")["items"]) == 3, timeout=15)
        yield k


def pods(kube: Kubectl, selector: str) -> list[dict[str, Any]]:
    return kube.json("get", "pods", "-l", selector)["items"]  # type: ignore[no-any-return]


def running(kube: Kubectl, selector: str, n: int, avoid: str = "") -> list[dict[str, Any]]:
    got = pods(kube, selector)
    ok = [
        p
        for p in got
        if p["status"].get("phase") == "Running"
        and p["spec"].get("nodeName") not in ("", None, avoid)
    ]
    assert len(ok) == n and len(got) == n, [
        (p["metadata"]["name"], p["spec"].get("nodeName"), p["status"].get("phase")) for p in got
    ]
    return ok


def test_a_deployment_is_placed_and_runs(kube: Kubectl) -> None:
    kube.run("apply", "-f", "-", input=deployment("web", 3))
    out = kube.run("rollout", "status", "deployment/web", "--timeout=20s").stdout
    assert "successfully rolled out" in out
    ps = eventually(lambda: running(kube, "app=web", 3), timeout=10)
    for p in ps:
        placement = json.loads(p["metadata"]["annotations"]["hyperion.io/placement"])
        assert placement["node"] == p["spec"]["nodeName"] and placement["bids"] >= 1
        assert p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    reasons = {e["reason"] for e in kube.json("get", "events")["items"]}
    assert {"Scheduled", "Started"} <= reasons
    kube.run("scale", "deployment/web", "--replicas=1")
    eventually(lambda: running(kube, "app=web", 1), timeout=10)
    kube.run("delete", "deployment", "web")
    eventually(lambda: pods(kube, "app=web") == [], timeout=10)


def test_an_impossible_workload_says_why(kube: Kubectl) -> None:
    hwl = """\
apiVersion: hyperion.io/v1alpha1
kind: HyperionWorkload
metadata: {name: nowhere}
spec:
  replicas: 1
  policy: {constraints: {geographies: [AF]}}
  template:
    spec:
      containers: [{name: main, command: ["sleep", "300"]}]
"""
    kube.run("apply", "-f", "-", input=hwl)

    def unschedulable() -> dict[str, Any]:
        [p] = pods(kube, "hyperion.io/workload=nowhere")
        cond = next(c for c in p["status"]["conditions"] if c["type"] == "PodScheduled")
        assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
        return cond  # type: ignore[no-any-return]

    cond = eventually(unschedulable, timeout=10)
    assert cond["message"] == "0/3 nodes are available: 3 not in geographies [AF]."
    events = kube.json("get", "events", "--field-selector", "reason=FailedScheduling")["items"]
    assert any("not in geographies [AF]" in e["message"] for e in events)
    hw = kube.json("get", "hwl", "nowhere")
    placed = next(c for c in hw["status"]["conditions"] if c["type"] == "Placed")
    assert placed["reason"] == "Unschedulable" and "[AF]" in placed["message"]
    kube.run("delete", "hwl", "nowhere")


def test_a_job_runs_to_completion(kube: Kubectl) -> None:
    job = """\
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: ["sh", "-c", "echo done"]}]
"""
    kube.run("apply", "-f", "-", input=job)
    kube.run("wait", "--for=condition=complete", "job/once", "--timeout=20s", timeout=30)
    st = kube.json("get", "job", "once")["status"]
    assert st["succeeded"] == 2
    kube.run("delete", "job", "once")


def test_bad_pods_get_clear_states(kube: Kubectl) -> None:
    pod = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  {extra}
  containers: [{{name: main, image: busybox{command}}}]
"""
    kube.run(
        "apply", "-f", "-", input=pod.format(name="nocmd", extra="nodeName: node-2", command="")
    )
    kube.run(
        "apply",
        "-f",
        "-",
        input=pod.format(
            name="badclass", extra="runtimeClassName: gvisor", command=', command: ["sleep", "5"]'
        ),
    )

    def waiting(name: str) -> dict[str, Any]:
        p = kube.json("get", "pod", name)
        [cs] = p["status"]["containerStatuses"]
        assert "waiting" in cs["state"], cs
        return cs["state"]["waiting"]  # type: ignore[no-any-return]

    w = eventually(lambda: waiting("nocmd"), timeout=10)
    assert w["reason"] == "CreateContainerConfigError"
    assert "spec.containers[0].command" in w["message"]
    w = eventually(lambda: waiting("badclass"), timeout=10)
    assert "gvisor" in w.get("message", "") + w.get("reason", "")
    kube.run("delete", "pod", "nocmd", "badclass")


def test_replicas_of_a_killed_node_run_elsewhere(kube: Kubectl) -> None:
    kube.run("apply", "-f", "-", input=deployment("heal", 4))
    ps = eventually(lambda: running(kube, "app=heal", 4), timeout=15)
    on = [p["spec"]["nodeName"] for p in ps]
    victim = next((n for n in ("node-3", "node-2") if n in on), None)
    assert victim is not None, on
    info = json.loads((kube.dir / "nodes" / victim / "node.json").read_text())
    os.kill(int(info["pid"]), signal.SIGKILL)
    eventually(lambda: running(kube, "app=heal", 4, avoid=victim), timeout=15)
    st = kube.json("get", "deployment", "heal")["status"]
    assert st["readyReplicas"] == 4
