"""Self-healing across a real network partition, on real node processes.

Four ``hyperion node`` processes, each in its own network namespace on one bridge
(``netns_lab``), run Deployments of ``sleep`` processes; real kubectl talks to the API
of a node on each side. A node that hosts replicas is cut off, then healed:

* a blip (healed as soon as the majority sees the node dead, well inside the
  custodian's ``LOST_GRACE_S``): the majority may start replacements, but once healed
  every replica that ran before the cut runs on, untouched, and the surplus goes;
* a partition (held until the majority has deleted the cut-off node's pods): the
  isolated node keeps running what it has (same PIDs, no restart, nothing of its own
  deleted) and runs the full count offline, the majority runs the full count without
  it; once healed both sides converge on one catalog, the running replicas converge
  to the desired count, each a live process with no orphan left, the replicas the
  majority ran since before the cut are never restarted, and no moment passes with no
  copy running.

Nothing may end in a crash loop. The timings (detection, re-run, deletion of the lost
pods, convergence after the heal) are printed (``pytest -s``); the nodes' logs are
kept under pytest's base temp, ``partition*/nodes/*/node.log``. Skips where there is no
kubectl, no root or no network namespaces (as on some CI runners).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import KUBECTL, Kubectl, deployment, eventually
from netns_lab import Lab, unavailable

from hyperion.api import kubeconfig
from hyperion.cli.up import stop_mesh
from hyperion.control.custodian import LOST_GRACE_S, custodian_of
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.tokens import create_token

pytestmark = pytest.mark.skipif(
    not Path(KUBECTL).exists(), reason=f"real kubectl is not installed at {KUBECTL}"
)

NODES = 4
NAMES = frozenset(f"node-{i}" for i in range(1, NODES + 1))
REPLICAS = 4
MESH_PORT = 7946
API_PORT = 6443
STARTUP_TIMEOUT_S = 30.0
# Bounds on each phase. With the "local" SWIM profile a death is declared in about a
# second and a healed partition is found by the reconnect probe (every 1-3 s); the
# rest is slack for a loaded 2-core CI machine.
DETECT_TIMEOUT_S = 10.0
RERUN_TIMEOUT_S = 15.0
EVICT_TIMEOUT_S = LOST_GRACE_S + 10.0
CONVERGE_TIMEOUT_S = 20.0
STABLE_S = 2.0  # a converged state must hold this long, untouched
POLL_S = 0.2  # each poll runs kubectl a few times: polling faster starves the nodes


class NsKubectl(Kubectl):
    """kubectl run inside a node's namespace, against that node's API."""

    def __init__(self, dir: Path, prefix: list[str], context: str) -> None:
        super().__init__(dir)
        self.prefix = prefix
        self.context = context

    def run(
        self, *args: str, input: str | None = None, timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [*self.prefix, self.binary, "--context", self.context, "--request-timeout=5s"]
        p = subprocess.run(
            [*cmd, *args], input=input, capture_output=True, text=True, env=self.env,
            timeout=timeout,
        )  # fmt: skip
        if check and p.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} on {self.context} failed ({p.returncode}):\n"
                f"{p.stdout}\n{p.stderr}"
            )
        return p


@dataclass
class Mesh:
    lab: Lab
    dir: Path
    infos: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> node.json
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def kubectl(self, i: int) -> NsKubectl:
        return NsKubectl(self.dir, self.lab.prefix(i), f"node-{i}")


def _start_node(mesh: Mesh, i: int) -> None:
    lab, name = mesh.lab, f"node-{i}"
    ndir = mesh.dir / "nodes" / name
    ndir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = [
        *lab.prefix(i), sys.executable, "-m", "hyperion", "node", "start",
        "--dir", str(mesh.dir), "--name", name,
        "--listen", f"{lab.addr(i)}:{MESH_PORT}", "--api-listen", f"{lab.addr(i)}:{API_PORT}",
        "--token", create_token(mesh.dir, ttl_s=600), "--profile", "local", "--svid-ttl", "1h",
    ]  # fmt: skip
    if i > 1:
        cmd += ["--join", f"{lab.addr(1)}:{MESH_PORT}"]
    with open(ndir / "node.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    mesh.procs.append(proc)


def _wait_started(mesh: Mesh) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    for i, proc in enumerate(mesh.procs, start=1):
        path = mesh.dir / "nodes" / f"node-{i}" / "node.json"
        while True:
            assert proc.poll() is None, f"node-{i} exited: see {path.parent}/node.log"
            try:
                info = json.loads(path.read_text())
                if info.get("pid") == proc.pid and info.get("api_addr"):
                    mesh.infos[f"node-{i}"] = info
                    break
            except (OSError, ValueError):
                pass
            assert time.monotonic() < deadline, f"node-{i} did not start: see {path.parent}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    dir = tmp_path_factory.mktemp("partition")
    lab = Lab(NODES)
    m = Mesh(lab, dir)
    try:
        CertificateAuthority.init(dir, "part.test")
        for i in range(1, NODES + 1):
            _start_node(m, i)
        _wait_started(m)
        servers = [(f"node-{i}", f"{lab.addr(i)}:{API_PORT}") for i in range(1, NODES + 1)]
        config = kubeconfig.build(CertificateAuthority.load(dir), servers, user="admin")
        kubeconfig.write(dir / "kubeconfig", config)
        k1 = m.kubectl(1)
        eventually(lambda: all(node_ready(k1, n) for n in NAMES), timeout=STARTUP_TIMEOUT_S)
        yield m
    finally:
        try:
            stop_mesh(m.procs)
        finally:
            lab.close()


# ------------------------------------------------------------------ observations


@dataclass(frozen=True)
class Replica:
    """One pod as an API shows it, down to the process that runs it."""

    name: str
    uid: str
    node: str
    phase: str
    ready: bool
    pid: int | None
    restarts: int
    started_at: str
    waiting: str

    @classmethod
    def of(cls, p: dict[str, Any]) -> Replica:
        st = p.get("status") or {}
        [cs] = st.get("containerStatuses") or [{}]
        cid = str(cs.get("containerID") or "")
        state = cs.get("state") or {}
        return cls(
            name=p["metadata"]["name"],
            uid=p["metadata"]["uid"],
            node=str(p["spec"].get("nodeName") or ""),
            phase=str(st.get("phase") or ""),
            ready=any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in st.get("conditions") or []
            ),
            pid=int(cid.removeprefix("process://")) if cid.startswith("process://") else None,
            restarts=int(cs.get("restartCount") or 0),
            started_at=str((state.get("running") or {}).get("startedAt") or ""),
            waiting=str((state.get("waiting") or {}).get("reason") or ""),
        )

    @property
    def identity(self) -> tuple[str, str, int | None, int, str]:
        """What must not change for a replica that was never restarted."""
        return (self.uid, self.node, self.pid, self.restarts, self.started_at)


def _epoch(rfc3339: str) -> float:
    return dt.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def node_ready(k: Kubectl, name: str) -> bool:
    for n in k.json("get", "nodes")["items"]:
        if n["metadata"]["name"] == name:
            conds = n["status"].get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
    return False


def running_on(reps: dict[str, Replica], nodes: set[str]) -> dict[str, Replica]:
    return {
        n: r
        for n, r in reps.items()
        if r.node in nodes and r.phase == "Running" and r.ready and r.pid is not None
    }


def watch(check: Callable[[], None], until: Callable[[], Any], timeout: float) -> Any:
    """``until()`` eventually truthy, calling ``check()`` (safety) at every step."""

    def step() -> Any:
        check()
        return until()

    return eventually(step, timeout=timeout, interval=POLL_S)


class Workload:
    """One Deployment of ``sleep <mark>`` processes; ``mark`` finds them in /proc."""

    def __init__(self, mesh: Mesh, name: str, mark: str) -> None:
        self.mesh = mesh
        self.name = name
        self.mark = mark
        self.k1 = mesh.kubectl(1)
        self.k1.run("apply", "-f", "-", input=deployment(name, 1, sleep=mark))

    def replicas(self, k: Kubectl) -> dict[str, Replica]:
        items = k.json("get", "pods", "-l", f"app={self.name}")["items"]
        return {r.name: r for r in map(Replica.of, items)}

    def processes(self) -> set[int]:
        """PIDs of this workload's live processes (the ground truth)."""
        want = b"sleep\0" + self.mark.encode() + b"\0"
        out = set()
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if (d / "cmdline").read_bytes() == want:
                        out.add(int(d.name))
                except OSError:
                    pass
        return out

    def catalog(self, k: Kubectl) -> set[tuple[str, str, str]]:
        """This workload's objects as one side holds them: (kind, name, uid)."""
        objs = [
            k.json("get", "deployment", self.name),
            *k.json("get", "pods", "-l", f"app={self.name}")["items"],
        ]
        return {(o["kind"], o["metadata"]["name"], o["metadata"]["uid"]) for o in objs}

    def all_running(self) -> dict[str, Replica]:
        """Scaled up one replica at a time: a tender sees only bound siblings, so
        replicas tendered together may all land on one node; one by one they spread."""
        for n in range(1, REPLICAS + 1):
            if n > 1:
                self.k1.run("scale", f"deployment/{self.name}", f"--replicas={n}")

            def check(n: int = n) -> dict[str, Replica]:
                r = self.replicas(self.k1)
                assert len(running_on(r, set(NAMES))) == n == len(r), r
                return r

            before: dict[str, Replica] = eventually(check, timeout=20)
        assert {r.pid for r in before.values()} == self.processes()
        assert len({r.node for r in before.values()}) > 1, f"not spread: {before}"
        # Timestamps have whole seconds (as in Kubernetes), so the retire order can
        # tell a replacement from an original only if they were made in different
        # seconds: cut no sooner than the second after the newest original started.
        newest = max(_epoch(r.started_at) for r in before.values())
        time.sleep(max(0.0, newest + 1.0 - time.time()))
        return before

    def victim(self, before: dict[str, Replica]) -> str:
        """A node to cut: one that runs replicas, not node-1 (the majority's API); the
        Deployment's custodian when it qualifies, so the majority must find a new one."""
        ids = {n: str(info["node_id"]) for n, info in self.mesh.infos.items()}
        hosts = {r.node for r in before.values()} - {"node-1"}
        assert hosts, f"every replica landed on node-1: {before}"
        boss = custodian_of("apps/deployments", "default", self.name, ids.values())
        custodian = next(n for n, i in ids.items() if i == boss)
        return custodian if custodian in hosts else sorted(hosts)[0]

    def converged(self, kv: Kubectl) -> dict[str, Replica]:
        """Both sides agree; ``REPLICAS`` pods run, each a live process, no orphan."""
        a, b = self.replicas(self.k1), self.replicas(kv)
        assert a == b, ("the sides disagree", sorted(a), sorted(b))
        assert self.catalog(self.k1) == self.catalog(kv)
        up = running_on(a, set(NAMES))
        assert len(up) == len(a) == REPLICAS, sorted((r.name, r.node, r.phase) for r in a.values())
        assert {r.pid for r in up.values()} == self.processes(), "orphan or missing processes"
        return a

    def heal_and_converge(
        self, v: int, kv: Kubectl, keep: dict[str, Replica], t: dict[str, float]
    ) -> dict[str, Replica]:
        """Heal node ``v``; wait until converged and steady; ``keep`` ran throughout."""
        fewest = [len(self.processes())]

        def keep_running() -> None:
            alive = self.processes()
            fewest[0] = min(fewest[0], len(alive))
            assert alive, "the workload ran no copy at all during the heal"
            gone = [r for r in keep.values() if r.pid not in alive]
            assert not gone, f"pods that ran all along were stopped: {gone}"

        t1 = time.monotonic()
        self.mesh.lab.heal(v)
        after: dict[str, Replica] = watch(
            keep_running, lambda: self.converged(kv), CONVERGE_TIMEOUT_S
        )
        t["converge_s"] = time.monotonic() - t1
        time.sleep(STABLE_S)
        keep_running()
        assert self.converged(kv) == after, "the converged state did not hold"
        for n, r in keep.items():
            assert n in after and after[n].identity == r.identity, (n, after.get(n), r)
        for r in after.values():
            assert r.restarts == 0 and r.waiting == "", r
        for k in (self.k1, kv):
            st = k.json("get", "deployment", self.name)["status"]
            assert st["readyReplicas"] == REPLICAS, st
        t["fewest_processes"] = fewest[0]
        return after


def report(what: str, victim: str, t: dict[str, float], extra: str = "") -> None:
    times = ", ".join(f"{k} {v:.2f}" if k.endswith("_s") else f"{k} {v:g}" for k, v in t.items())
    print(f"\n{what} of {victim}: {times}{extra}")


# ---------------------------------------------------------------------- the tests


def test_a_blip_restarts_nothing(mesh: Mesh) -> None:
    w = Workload(mesh, "blip", f"3600.{os.getpid()}")
    before = w.all_running()
    victim = w.victim(before)
    v = int(victim.removeprefix("node-"))
    t: dict[str, float] = {}

    def all_alive() -> None:
        gone = [r for r in before.values() if r.pid not in w.processes()]
        assert not gone, f"pods running before the cut were stopped: {gone}"

    t0 = time.monotonic()
    mesh.lab.cut(v)
    try:
        watch(all_alive, lambda: not node_ready(w.k1, victim), DETECT_TIMEOUT_S)
        t["detect_majority_s"] = time.monotonic() - t0
    finally:
        w.heal_and_converge(v, mesh.kubectl(v), before, t)
    report("a blip", victim, t, f"; LOST_GRACE_S {LOST_GRACE_S:g}")
    w.k1.run("delete", "deployment", w.name)


def test_a_partition_heals_without_restarting_survivors(mesh: Mesh) -> None:
    w = Workload(mesh, "part", f"3601.{os.getpid()}")
    before = w.all_running()
    victim = w.victim(before)
    v = int(victim.removeprefix("node-"))
    kv = mesh.kubectl(v)
    majority = set(NAMES) - {victim}
    isolated_before = {n: r for n, r in before.items() if r.node == victim}
    majority_before = {n: r for n, r in before.items() if r.node != victim}
    t: dict[str, float] = {}

    def originals_alive() -> None:
        alive = w.processes()
        gone = [r for r in before.values() if r.pid not in alive]
        assert not gone, f"pods running before the cut were stopped: {gone}"

    def majority_runs_all(evicted: bool) -> dict[str, Replica]:
        reps = w.replicas(w.k1)
        up = running_on(reps, majority)
        assert len(up) == REPLICAS, sorted((r.name, r.node, r.phase) for r in reps.values())
        assert {r.pid for r in up.values()} <= w.processes()
        if evicted:
            assert len(reps) == REPLICAS, f"{victim}'s lost pods are still listed"
        return up

    def isolated_keeps_its_own() -> dict[str, Replica]:
        reps = w.replicas(kv)
        for n, r in isolated_before.items():
            assert n in reps, f"{victim} deleted its own pod {n} while cut off"
            assert reps[n].identity == r.identity and reps[n].phase == "Running", (reps[n], r)
        mine = running_on(reps, {victim})
        assert len(mine) == REPLICAS, f"{victim} does not run the full count offline: {reps}"
        return reps

    t0 = time.monotonic()
    mesh.lab.cut(v)
    try:
        watch(originals_alive, lambda: not node_ready(w.k1, victim), DETECT_TIMEOUT_S)
        t["detect_majority_s"] = time.monotonic() - t0
        watch(
            originals_alive,
            lambda: not any(node_ready(kv, n) for n in majority),
            DETECT_TIMEOUT_S,
        )
        t["detect_isolated_s"] = time.monotonic() - t0
        during = watch(originals_alive, lambda: majority_runs_all(False), RERUN_TIMEOUT_S)
        t["rerun_s"] = time.monotonic() - t0
        for n, r in majority_before.items():
            assert during[n].identity == r.identity, (n, during[n], r)
        watch(originals_alive, isolated_keeps_its_own, RERUN_TIMEOUT_S)
        t["isolated_full_s"] = time.monotonic() - t0
        watch(originals_alive, lambda: majority_runs_all(True), EVICT_TIMEOUT_S)
        t["evict_s"] = time.monotonic() - t0
        time.sleep(STABLE_S)  # both sides stay put
        originals_alive()
        isolated_keeps_its_own()
    finally:
        after = w.heal_and_converge(v, kv, majority_before, t)
    report(
        "a partition",
        victim,
        t,
        f" (custodian {w.victim(before) == victim}; it ran {len(isolated_before)} of "
        f"{REPLICAS}); kept: {len(set(after) & set(majority_before))} of the majority's "
        f"{len(majority_before)}, {len(set(after) & set(isolated_before))} of its own",
    )
    w.k1.run("delete", "deployment", w.name)
