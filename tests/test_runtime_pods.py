"""The pod manager over the real process runtime: phases, statuses, events, sync.

Pods are Kubernetes Pod dicts as the API server would hold them; ``publish`` and
``record_event`` are recorders. Each test runs its own loop and closes the manager.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hyperion.runtime.base import NODE_SHUTDOWN
from hyperion.runtime.pods import PodManager
from hyperion.runtime.process import ProcessRuntime

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def pod(name: str, *containers: dict[str, Any], uid: str = "", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team", "uid": uid or f"uid-{name}"},
        "spec": {
            "nodeName": "n1",
            "terminationGracePeriodSeconds": 1,
            **spec,
            "containers": list(containers),
        },
    }


def sh(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


class Harness:
    def __init__(self, root: Path, now: float = T0) -> None:
        self.published: list[tuple[str, str, dict[str, Any]]] = []
        self.events: list[tuple[str, str, str, str]] = []  # (pod, type, reason, message)
        self.runtime = ProcessRuntime(backoff_base_s=0.05, backoff_cap_s=0.1, cgroup_root=None)
        self.pm = PodManager(
            node_name="n1",
            host_ip="10.0.0.7",
            root=root,
            runtimes={"process": self.runtime},
            publish=lambda ns, name, status: self.published.append((ns, name, status)),
            record_event=lambda obj, t, r, m: self.events.append(
                (obj["metadata"]["name"], t, r, m)
            ),
            clock=lambda: now,
        )

    def last(self, name: str) -> dict[str, Any]:
        return [s for _, n, s in self.published if n == name][-1]

    def phase(self, name: str) -> str:
        return self.last(name)["phase"] if any(n == name for _, n, _ in self.published) else ""

    def started(self, name: str) -> bool:
        """Whether the last status of ``name`` has its first container running."""
        if not self.phase(name):
            return False
        return "running" in self.last(name)["containerStatuses"][0]["state"]

    def reasons(self, name: str) -> list[str]:
        return [r for n, _, r, _ in self.events if n == name]


async def until(pred: Callable[[], bool], timeout_s: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not pred():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def run(root: Path, body: Callable[[Harness], Awaitable[None]]) -> None:
    async def main() -> None:
        h = Harness(root)
        try:
            await body(h)
        finally:
            await h.pm.close()
            await h.runtime.close()

    asyncio.run(main())


def test_running_pod_status_is_a_kubernetes_pod_status(tmp_path: Path) -> None:
    p = pod("web", sh("app", "sleep 30", ports=[{"name": "http", "containerPort": 80}]))

    async def body(h: Harness) -> None:
        await h.pm.sync([p])
        await until(lambda: h.phase("web") == "Running")
        ns, _, st = h.published[-1]
        assert ns == "team"
        assert st == h.pm.status("uid-web")
        cs = st["containerStatuses"][0]
        started = cs["state"]["running"]["startedAt"]
        assert cs == {
            "name": "app",
            "image": "busybox",
            "imageID": "process://busybox",
            "containerID": cs["containerID"],
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": started}},
            "lastState": {},
        }
        assert cs["containerID"].startswith("process://")
        assert len(started) == 20 and started.endswith("Z") and started[10] == "T"
        t = "2026-11-18T11:06:40Z"
        assert {k: v for k, v in st.items() if k not in ("containerStatuses",)} == {
            "phase": "Running",
            "conditions": [
                {"type": c, "status": "True", "lastProbeTime": None, "lastTransitionTime": t}
                for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "hostIP": "10.0.0.7",
            "hostIPs": [{"ip": "10.0.0.7"}],
            "podIP": "10.0.0.7",
            "podIPs": [{"ip": "10.0.0.7"}],
            "startTime": t,
        }
        assert h.reasons("web") == ["Created", "Started"]
        assert h.events[-1] == ("web", "Normal", "Started", "Started container app")

    run(tmp_path, body)


def test_pending_until_every_container_has_started(tmp_path: Path) -> None:
    p = pod("web", sh("app", "sleep 30"), {"name": "bad", "image": "x"})

    async def body(h: Harness) -> None:
        await h.pm.sync([p])
        await until(lambda: bool(h.published) and h.last("web")["containerStatuses"][0]["ready"])
        st = h.last("web")
        assert st["phase"] == "Pending"
        bad = st["containerStatuses"][1]
        assert bad["state"] == {
            "waiting": {
                "reason": "CreateContainerConfigError",
                "message": "spec.containers[1].command: required by the process runtime",
            }
        }
        ready = {c["type"]: c for c in st["conditions"]}["Ready"]
        assert (ready["status"], ready["reason"], ready["message"]) == (
            "False",
            "ContainersNotReady",
            "containers with unready status: [bad]",
        )
        assert ("web", "Warning", "Failed", f"Error: {bad['state']['waiting']['message']}") in (
            h.events
        )

    run(tmp_path, body)


def test_never_pod_phases_succeeded_and_failed(tmp_path: Path) -> None:
    ok = pod("ok", sh("a", "exit 0"), restartPolicy="Never")
    bad = pod("bad", sh("a", "exit 1"), restartPolicy="Never")

    async def body(h: Harness) -> None:
        await h.pm.sync([ok, bad])
        await until(lambda: h.phase("ok") == "Succeeded" and h.phase("bad") == "Failed")
        term = h.last("bad")["containerStatuses"][0]["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (1, "Error")
        ready = {c["type"]: c for c in h.last("ok")["conditions"]}["Ready"]
        assert (ready["status"], ready["reason"]) == ("False", "PodCompleted")

    run(tmp_path, body)


def test_on_failure_pod_succeeds_after_a_retry(tmp_path: Path) -> None:
    script = 'n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; [ "$n" -ge 1 ]'
    p = pod("job", sh("a", script), restartPolicy="OnFailure")

    async def body(h: Harness) -> None:
        await h.pm.sync([p])
        await until(lambda: h.phase("job") == "Succeeded")
        cs = h.last("job")["containerStatuses"][0]
        assert cs["restartCount"] == 1
        assert cs["state"]["terminated"]["exitCode"] == 0
        phases = [s["phase"] for _, n, s in h.published if n == "job"]
        assert "Failed" not in phases

    run(tmp_path, body)


def test_crash_loop_reports_last_state_and_backoff_events(tmp_path: Path) -> None:
    p = pod("crash", sh("a", "exit 2"))

    async def body(h: Harness) -> None:
        await h.pm.sync([p])
        await until(
            lambda: (
                h.phase("crash") == "Running"
                and h.last("crash")["containerStatuses"][0]["restartCount"] >= 1
                and "waiting" in h.last("crash")["containerStatuses"][0]["state"]
            )
        )
        cs = h.last("crash")["containerStatuses"][0]
        assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert cs["lastState"]["terminated"]["exitCode"] == 2
        assert cs["ready"] is False
        assert "BackOff" in h.reasons("crash")
        backoff = next(e for e in h.events if e[2] == "BackOff")
        assert backoff == (
            "crash",
            "Warning",
            "BackOff",
            "Back-off restarting failed container a in pod crash_team(uid-crash)",
        )

    run(tmp_path, body)


def test_a_stopping_node_reports_its_pods_stopped_with_it_not_finished(tmp_path: Path) -> None:
    # close() is the node stopping: pods that may run again under their restartPolicy
    # stay Running (kubelet getPhase), not ready, with reason NodeShutdown.
    web = pod("web", sh("app", "sleep 30"))
    job = pod("job", sh("a", "sleep 30"), restartPolicy="OnFailure")
    once = pod("once", sh("a", "sleep 30"), restartPolicy="Never")

    async def body(h: Harness) -> None:
        await h.pm.sync([web, job, once])
        await until(lambda: all(h.phase(n) == "Running" for n in ("web", "job", "once")))
        await h.pm.close()
        for name, phase in (("web", "Running"), ("job", "Running"), ("once", "Failed")):
            st = h.last(name)
            assert (st["phase"], st["reason"]) == (phase, NODE_SHUTDOWN), st
            assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "False"
            [cs] = st["containerStatuses"]
            assert cs["state"]["terminated"]["exitCode"] == 143 and cs["restartCount"] == 0
        assert h.last("web")["message"] == "Node n1 was stopped; the pod restarts when it is back"
        assert h.last("once")["message"] == "Node n1 was stopped"

    run(tmp_path, body)


def test_a_restarted_node_restarts_its_pods_in_place(tmp_path: Path) -> None:
    # As a kubelet after a reboot: same pod, restartCount + 1, lastState kept,
    # startTime kept; what finished under its restartPolicy is not run again, and a
    # Never pod whose end was not seen (the node was killed) is Failed, not rerun.
    web = pod("web", sh("app", "sleep 30"))
    killed = pod("killed", sh("app", "sleep 30"))
    once = pod("once", sh("a", "sleep 30"), restartPolicy="Never")
    lost = pod("lost", sh("a", "sleep 30"), restartPolicy="Never")
    done = pod("done", sh("a", "exit 0"), restartPolicy="OnFailure")
    names = ("web", "killed", "once", "lost", "done")

    async def main() -> None:
        first = Harness(tmp_path)
        await first.pm.sync([web, killed, once, lost, done])
        await until(lambda: first.phase("done") == "Succeeded")
        await until(lambda: all(first.phase(n) == "Running" for n in names[:4]))
        # what the catalog holds: the last status each pod got before the node went
        at_kill = {n: first.last(n) for n in ("killed", "lost")}
        await first.pm.close()
        await first.runtime.close()
        before = {n: first.last(n) for n in names} | at_kill
        assert before["once"]["phase"] == "Failed"
        objs = {
            n: {**p, "status": before[n]}
            for n, p in zip(names, (web, killed, once, lost, done), strict=True)
        }
        second = Harness(tmp_path, now=T0 + 60)
        try:
            await second.pm.sync(objs.values())
            await until(
                lambda: (
                    second.started("web")
                    and second.started("killed")
                    and second.phase("lost") == "Failed"
                )
            )
            st = second.last("web")
            [cs] = st["containerStatuses"]
            assert st["phase"] == "Running" and "reason" not in st
            assert st["startTime"] == before["web"]["startTime"] == "2026-11-18T11:06:40Z"
            assert cs["restartCount"] == 1 and cs["ready"] is True
            assert cs["lastState"] == before["web"]["containerStatuses"][0]["state"]
            assert second.reasons("web") == ["SandboxChanged", "Created", "Started"]
            [cs] = second.last("killed")["containerStatuses"]
            started = before["killed"]["containerStatuses"][0]["state"]["running"]["startedAt"]
            assert cs["restartCount"] == 1
            assert cs["lastState"] == {
                "terminated": {"exitCode": 255, "reason": "Unknown", "startedAt": started}
            }
            [cs] = second.last("lost")["containerStatuses"]
            assert cs["restartCount"] == 0 and cs["state"]["terminated"]["exitCode"] == 137
            assert cs["state"]["terminated"]["reason"] == "ContainerStatusUnknown"
            for n in ("once", "done", "lost"):  # not run again
                assert second.runtime.states(f"uid-{n}") == []
            assert not any(n in ("once", "done") for _, n, _ in second.published)
            # and once more: the count goes on
            await second.pm.close()
            third = Harness(tmp_path)
            try:
                await third.pm.sync([{**web, "status": second.last("web")}])
                await until(lambda: third.started("web"))
                assert third.last("web")["containerStatuses"][0]["restartCount"] == 2
            finally:
                await third.pm.close()
                await third.runtime.close()
        finally:
            await second.pm.close()
            await second.runtime.close()

    asyncio.run(main())


def test_sync_is_idempotent(tmp_path: Path) -> None:
    p = pod("web", sh("app", "sleep 30"))

    async def body(h: Harness) -> None:
        await h.pm.sync([p])
        await until(lambda: h.phase("web") == "Running")
        first = h.pm.status("uid-web")["containerStatuses"][0]["containerID"]
        n_published = len(h.published)
        for _ in range(3):
            await h.pm.sync([p])
            await asyncio.sleep(0.05)
        assert h.pm.status("uid-web")["containerStatuses"][0]["containerID"] == first
        assert h.reasons("web") == ["Created", "Started"]
        assert len(h.published) == n_published  # nothing changed, nothing published

    run(tmp_path, body)


def test_pod_leaving_the_set_is_stopped_and_forgotten(tmp_path: Path) -> None:
    p = pod("web", sh("app", "trap 'exit 0' TERM; while :; do sleep 0.05; done"))

    async def body(h: Harness) -> None:
        await h.pm.sync([p])
        await until(lambda: h.phase("web") == "Running")
        n_published = len(h.published)
        await h.pm.sync([])
        assert ("web", "Normal", "Killing", "Stopping container app") in h.events
        await until(lambda: h.pm.status("uid-web") == {})
        assert h.runtime.states("uid-web")[0].state == "terminated"
        assert len(h.published) == n_published  # a pod that is gone gets no status

    run(tmp_path, body)


def test_deleted_pod_is_stopped_with_its_grace_and_reported(tmp_path: Path) -> None:
    p = pod("web", sh("app", "trap '' TERM; while :; do sleep 0.05; done"))

    async def body(h: Harness) -> None:
        await h.pm.sync([p])
        await until(lambda: h.phase("web") == "Running")
        assert not h.pm.stopped("uid-web")
        deleting = {
            **p,
            "metadata": {
                **p["metadata"],
                "deletionTimestamp": "2026-11-18T08:27:00Z",
                "deletionGracePeriodSeconds": 0,
            },
        }
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await h.pm.sync([deleting])
        await until(lambda: h.pm.stopped("uid-web"))
        assert loop.time() - t0 < 0.9  # grace 0 from the deletion, not 1 s from the spec
        await until(lambda: h.phase("web") == "Failed")
        term = h.last("web")["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 137
        await h.pm.sync([deleting])  # still listed while being deleted: no restart
        await asyncio.sleep(0.2)
        assert h.runtime.states("uid-web")[0].state == "terminated"
        assert h.reasons("web").count("Started") == 1

    run(tmp_path, body)


def test_unknown_runtime_class_is_reported_not_raised(tmp_path: Path) -> None:
    p = pod("gpu", sh("a", "true"), runtimeClassName="kata")

    async def body(h: Harness) -> None:
        await h.pm.sync([p])
        await until(lambda: h.phase("gpu") == "Pending")
        st = h.last("gpu")
        assert st["message"] == 'RuntimeClass "kata" not found'
        waiting = st["containerStatuses"][0]["state"]["waiting"]
        assert waiting == {
            "reason": "CreateContainerConfigError",
            "message": 'RuntimeClass "kata" not found',
        }
        assert h.events == [("gpu", "Warning", "Failed", 'Error: RuntimeClass "kata" not found')]
        await h.pm.sync([p])
        assert len(h.events) == 1

    run(tmp_path, body)


def test_unparseable_pod_is_reported_not_raised(tmp_path: Path) -> None:
    bad = pod("odd", sh("a", "true"), restartPolicy="Sometimes")
    good = pod("web", sh("app", "sleep 30"))

    async def body(h: Harness) -> None:
        await h.pm.sync([bad, good])
        await until(lambda: h.phase("odd") == "Pending" and h.phase("web") == "Running")
        waiting = h.last("odd")["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "CreateContainerConfigError"
        assert waiting["message"].startswith("spec.restartPolicy:")
        assert h.reasons("odd") == ["Failed"]

    run(tmp_path, body)
