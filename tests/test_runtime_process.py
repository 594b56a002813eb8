"""The process runtime against real processes (sh, sleep, this Python), in tmp dirs.

Each test runs its own event loop (``asyncio.run``) and closes the runtime in a
``finally``, so no process outlives it. Back-off is scaled down to tens of
milliseconds; assertions on time are lower bounds only.
"""

from __future__ import annotations

import asyncio
import re
import resource
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hyperion.runtime.base import ContainerState, PodSpec, pod_spec
from hyperion.runtime.process import ProcessRuntime, expand

FAST = {"backoff_base_s": 0.05, "backoff_cap_s": 0.1, "cgroup_root": None}


def make_pod(root: Path, *containers: dict[str, Any], **spec: Any) -> PodSpec:
    obj = {
        "metadata": {"name": "web", "namespace": "team", "uid": "uid-1"},
        "spec": {"terminationGracePeriodSeconds": 5, **spec, "containers": list(containers)},
    }
    return pod_spec(obj, root)


async def until(pred: Callable[[], bool], timeout_s: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not pred():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def run(
    body: Callable[[ProcessRuntime], Awaitable[None]],
    **kwargs: Any,
) -> None:
    async def main() -> None:
        rt = ProcessRuntime(**{**FAST, **kwargs})
        try:
            await body(rt)
        finally:
            await rt.close()

    asyncio.run(main())


class Recorder:
    """An ``on_change`` that keeps every state it was shown."""

    def __init__(self, rt: ProcessRuntime, uid: str = "uid-1") -> None:
        self.rt, self.uid = rt, uid
        self.seen: list[ContainerState] = []  # every distinct state, in order
        self._last: dict[str, ContainerState] = {}

    def __call__(self) -> None:
        for s in self.rt.states(self.uid):
            if self._last.get(s.name) != s:
                self._last[s.name] = s
                self.seen.append(s)

    def state(self, i: int = 0) -> ContainerState:
        return self.rt.states(self.uid)[i]


def live_in_group(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (a zombie awaits reaping by
    whoever inherited it; it runs nothing)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


def terminated(rec: Recorder, i: int = 0) -> Callable[[], bool]:
    return lambda: rec.state(i).state == "terminated"


# ------------------------------------------------------------------------ the process


def test_env_working_dir_args_and_logs(tmp_path: Path) -> None:
    wd = tmp_path / "elsewhere"
    script = (
        'echo "$HOSTNAME $HYPERION_POD_NAME $HYPERION_POD_NAMESPACE $GREETING $HOME"; '
        'pwd; echo "$@"'
    )
    pod = make_pod(
        tmp_path,
        {
            "name": "a",
            "command": ["sh", "-c", script, "sh"],
            "args": ["one", "two words", "$(GREETING)"],
            "env": [{"name": "GREETING", "value": "hello"}],
        },
        {"name": "b", "command": ["sh", "-c", "pwd; echo oops >&2"], "workingDir": str(wd)},
        restartPolicy="Never",
    )

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        assert [s.reason for s in rt.states("uid-1")] == ["ContainerCreating"] * 2
        await until(lambda: all(s.state == "terminated" for s in rt.states("uid-1")))
        a, b = rt.states("uid-1")
        assert (a.exit_code, a.reason, b.exit_code, b.reason) == (0, "Completed", 0, "Completed")
        assert a.container_id.startswith("process://")
        assert a.started_at is not None and a.finished_at is not None
        assert a.finished_at >= a.started_at
        log_a = pod.log_path("a").read_text().splitlines()
        assert log_a == [
            f"web web team hello {pod.dir}",
            str(pod.dir / "a"),
            "one two words hello",
        ]
        assert pod.log_path("b").read_text().splitlines() == [str(wd), "oops"]

    run(body)


def test_log_is_appended_across_restarts(tmp_path: Path) -> None:
    pod = make_pod(tmp_path, {"name": "a", "command": ["sh", "-c", "echo run; exit 1"]})

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(lambda: rec.state().restart_count >= 2 and rec.state().state != "running")
        await rt.stop("uid-1")
        assert pod.log_path("a").read_text().count("run") >= 3

    run(body)


def test_ports_are_allocated_and_passed_in_env(tmp_path: Path) -> None:
    pod = make_pod(
        tmp_path,
        {
            "name": "a",
            "command": ["sh", "-c", "echo $PORT $HYPERION_PORT_HTTP $HYPERION_PORT_9090"],
            "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090}],
        },
        restartPolicy="Never",
    )

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(terminated(rec))
        ports = rec.state().ports
        assert [(n, cp) for n, cp, _ in ports] == [("http", 8080), ("", 9090)]
        http, other = ports[0][2], ports[1][2]
        assert 0 < http < 65536 and 0 < other < 65536 and http != other
        assert pod.log_path("a").read_text().split() == [str(http), str(http), str(other)]

    run(body)


def test_expand_follows_kubernetes() -> None:
    env = {"A": "x", "B_C": "y"}
    assert expand("$(A)-$(B_C)-$(MISSING)", env) == "x-y-$(MISSING)"
    assert expand("$$(A) $$ $A", env) == "$(A) $ $A"


# ------------------------------------------------------------------- restart policies


def test_always_restarts_with_exponential_backoff_up_to_the_cap(tmp_path: Path) -> None:
    pod = make_pod(tmp_path, {"name": "a", "command": ["sh", "-c", "exit 1"]})

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(lambda: rec.state().restart_count >= 3)
        await rt.stop("uid-1")
        backoffs = [s for s in rec.seen if s.reason == "CrashLoopBackOff"]
        delays = [re.match(r"back-off (\S+)s ", s.message).group(1) for s in backoffs]  # type: ignore[union-attr]
        assert delays[:3] == ["0.05", "0.1", "0.1"]  # three restarts: three back-offs
        assert "container=a pod=web_team(uid-1)" in backoffs[0].message
        ends = [s for s in rec.seen if s.state == "terminated"]
        assert [(s.exit_code, s.reason) for s in ends[:3]] == [(1, "Error")] * 3
        runs = [s for s in rec.seen if s.state == "running"]
        assert [s.restart_count for s in runs[:4]] == [0, 1, 2, 3]
        assert len({s.container_id for s in runs}) == len(runs)  # a new process each time

    run(body, backoff_cap_s=0.1)


def test_backoff_delays_are_waited(tmp_path: Path) -> None:
    pod = make_pod(tmp_path, {"name": "a", "command": ["sh", "-c", "exit 0"]})

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(lambda: rec.state().restart_count >= 2)
        starts = [s.started_at for s in rec.seen if s.state == "running"]
        assert starts[1] - starts[0] >= 0.1  # Always restarts a clean exit, after 0.1 s
        assert starts[2] - starts[1] >= 0.2  # then 0.2 s

    run(body, backoff_base_s=0.1, backoff_cap_s=1.0)


def test_backoff_resets_after_a_clean_run(tmp_path: Path) -> None:
    pod = make_pod(tmp_path, {"name": "a", "command": ["sh", "-c", "exit 1"]})

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(lambda: rec.state().restart_count >= 3)
        delays = [s.message.split()[1] for s in rec.seen if s.reason == "CrashLoopBackOff"]
        assert set(delays) == {"0.05s"}

    run(body, backoff_reset_s=0.0)


def test_on_failure_restarts_until_success(tmp_path: Path) -> None:
    # Fails twice, then succeeds; the counter file lives in the container's directory.
    script = 'n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; [ "$n" -ge 2 ]'
    pod = make_pod(
        tmp_path, {"name": "a", "command": ["sh", "-c", script]}, restartPolicy="OnFailure"
    )

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(lambda: rec.state().state == "terminated" and rec.state().exit_code == 0)
        s = rec.state()
        assert (s.reason, s.restart_count) == ("Completed", 2)
        await asyncio.sleep(0.2)  # longer than the back-off cap: nothing restarts
        assert rec.state() == s

    run(body)


def test_never_does_not_restart(tmp_path: Path) -> None:
    pod = make_pod(
        tmp_path, {"name": "a", "command": ["sh", "-c", "exit 3"]}, restartPolicy="Never"
    )

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(terminated(rec))
        await asyncio.sleep(0.2)
        s = rec.state()
        assert (s.state, s.exit_code, s.reason, s.restart_count) == ("terminated", 3, "Error", 0)
        assert not any(x.reason == "CrashLoopBackOff" for x in rec.seen)

    run(body)


# ------------------------------------------------------------------------- stopping


def test_stop_sends_sigterm_to_the_process_group(tmp_path: Path) -> None:
    script = "trap 'echo term > got; exit 0' TERM; echo ready > ready; while :; do sleep 0.05; done"
    pod = make_pod(tmp_path, {"name": "a", "command": ["sh", "-c", script]})

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(lambda: (pod.dir / "a" / "ready").exists())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await rt.stop("uid-1")  # grace 5 s from the spec; the trap exits at once
        assert loop.time() - t0 < 2
        assert (pod.dir / "a" / "got").read_text() == "term\n"
        s = rec.state()
        assert (s.state, s.exit_code, s.reason) == ("terminated", 0, "Completed")

    run(body)


def test_stop_sigkills_after_the_grace_period_and_never_restarts(tmp_path: Path) -> None:
    script = "trap '' TERM; echo ready > ready; while :; do sleep 0.05; done"
    pod = make_pod(tmp_path, {"name": "a", "command": ["sh", "-c", script]})

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(lambda: (pod.dir / "a" / "ready").exists())
        pid = int(rec.state().container_id.removeprefix("process://"))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await rt.stop("uid-1", grace_s=0.3)
        assert 0.3 <= loop.time() - t0 < 2
        s = rec.state()
        assert (s.state, s.exit_code, s.reason) == ("terminated", 137, "Error")
        await until(lambda: not live_in_group(pid), timeout_s=1.0)  # the whole group died
        await asyncio.sleep(0.2)  # Always, but stopped: no restart
        assert rec.state() == s

    run(body)


def test_stop_during_backoff_and_close(tmp_path: Path) -> None:
    pod = make_pod(tmp_path, {"name": "a", "command": ["sh", "-c", "exit 1"]})
    other = pod_spec(
        {
            "metadata": {"name": "sleeper", "uid": "uid-2"},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "s", "command": ["sleep", "30"]}],
            },
        },
        tmp_path,
    )

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await rt.start(other, lambda: None)
        await until(lambda: rec.state().reason == "CrashLoopBackOff")
        await until(lambda: rt.states("uid-2")[0].state == "running")
        await rt.stop("uid-1")
        s = rec.state()
        assert (s.state, s.exit_code) == ("terminated", 1)  # its last run
        await rt.close()
        assert rt.states("uid-2")[0].state == "terminated"

    run(body, backoff_base_s=5.0, backoff_cap_s=5.0)


# ---------------------------------------------------------------------------- errors


def test_missing_command_is_a_config_error(tmp_path: Path) -> None:
    pod = make_pod(tmp_path, {"name": "ok", "command": ["sleep", "30"]}, {"name": "bad"})

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(lambda: rec.state(1).reason == "CreateContainerConfigError")
        assert rec.state(1).state == "waiting"
        assert rec.state(1).message == (
            "spec.containers[1].command: required by the process runtime"
        )
        await until(lambda: rec.state(0).state == "running")
        await rt.stop("uid-1", grace_s=0)
        assert [s.state for s in rt.states("uid-1")] == ["terminated", "terminated"]
        assert rec.state(1).reason == "ContainerStatusUnknown"

    run(body)


def test_executable_not_found_is_retried_with_backoff(tmp_path: Path) -> None:
    exe = tmp_path / "bin" / "later"
    pod = make_pod(tmp_path, {"name": "a", "command": [str(exe)]}, restartPolicy="Never")

    async def body(rt: ProcessRuntime) -> None:
        rec = Recorder(rt)
        await rt.start(pod, rec)
        await until(lambda: rec.state().reason == "CreateContainerError")
        s = rec.state()
        assert s.state == "waiting"
        assert s.message.startswith("executable file not found:") and str(exe) in s.message
        exe.parent.mkdir()
        exe.write_text("#!/bin/sh\necho made it\n")
        exe.chmod(0o755)
        await until(terminated(rec))
        assert (rec.state().exit_code, rec.state().restart_count) == (0, 0)
        assert pod.log_path("a").read_text() == "made it\n"

    run(body)


def test_on_change_that_raises_does_not_break_supervision(tmp_path: Path) -> None:
    pod = make_pod(
        tmp_path, {"name": "a", "command": ["sh", "-c", "exit 0"]}, restartPolicy="Never"
    )

    def boom() -> None:
        raise RuntimeError("observer bug")

    async def body(rt: ProcessRuntime) -> None:
        await rt.start(pod, boom)
        await until(lambda: rt.states("uid-1")[0].state == "terminated")

    run(body)


# ---------------------------------------------------------------------------- limits


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_AS"), reason="no RLIMIT_AS on this OS")
def test_memory_limit_is_enforced(tmp_path: Path) -> None:
    grab = "import sys; b = bytearray(int(sys.argv[1]) * 2**20); print('allocated')"
    pod = make_pod(
        tmp_path,
        {
            "name": "hog",
            "command": [sys.executable, "-c", grab, "500"],
            "resources": {"limits": {"memory": "100Mi"}},
        },
        # The same program within its means runs fine under the same limit.
        {
            "name": "fits",
            "command": [sys.executable, "-c", grab, "20"],
            "resources": {"limits": {"memory": "100Mi"}},
        },
        restartPolicy="Never",
    )

    async def body(rt: ProcessRuntime) -> None:
        assert rt.limits_enforced == "rlimit"
        await rt.start(pod, lambda: None)
        await until(lambda: all(s.state == "terminated" for s in rt.states("uid-1")))
        hog, fits = rt.states("uid-1")
        assert hog.exit_code != 0 and hog.reason in ("Error", "OOMKilled")
        assert "MemoryError" in pod.log_path("hog").read_text()
        assert fits.exit_code == 0 and pod.log_path("fits").read_text() == "allocated\n"

    run(body)


def test_cgroup_v2_limits_are_written_and_joined(tmp_path: Path) -> None:
    # A stand-in hierarchy: plain files, so the kernel enforces nothing, but the
    # runtime's side (detection, cpu.max, memory.max, joining before exec) is real.
    cg = tmp_path / "cgroup"
    cg.mkdir()
    (cg / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (cg / "cgroup.subtree_control").write_text("")
    (cg / "hyperion").mkdir()
    (cg / "hyperion" / "cgroup.subtree_control").write_text("")
    pod = make_pod(
        tmp_path / "pods",
        {
            "name": "a",
            "command": ["sh", "-c", "echo $$$$"],  # Kubernetes expansion: $$ -> $
            "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
        },
        restartPolicy="Never",
    )

    async def body(rt: ProcessRuntime) -> None:
        assert rt.limits_enforced == "cgroup"
        assert (cg / "cgroup.subtree_control").read_text() == "+cpu +memory\n"
        await rt.start(pod, lambda: None)
        await until(lambda: rt.states("uid-1")[0].state == "terminated")
        d = cg / "hyperion" / "uid-1-a"
        assert (d / "cpu.max").read_text() == "25000 100000\n"
        assert (d / "memory.max").read_text() == f"{64 * 2**20}\n"
        assert (d / "cgroup.procs").read_text() == pod.log_path("a").read_text().strip()

    run(body, cgroup_root=cg)


def test_no_cgroup_v2_means_rlimits(tmp_path: Path) -> None:
    async def body(rt: ProcessRuntime) -> None:
        assert rt.limits_enforced == "rlimit"

    run(body, cgroup_root=tmp_path)  # no cgroup.controllers here
