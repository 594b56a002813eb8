"""``hyperion up`` for real: three node processes, mutual TLS, SWIM failure detection."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

N = 3
TRUST_DOMAIN = "hyperion.local"
MESH_TIMEOUT_S = 30.0
CONVERGE_TIMEOUT_S = 15.0
DETECT_TIMEOUT_S = 5.0  # the bench measures <= 3 s; slack for loaded CI machines
STOP_TIMEOUT_S = 10.0
MESH_FIELDS = ("name", "node_id", "spiffe_id", "pid", "mesh_addr", "api_addr")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and sessions")


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _node_pids(mesh_dir: Path) -> set[int]:
    """Every node pid we can find: mesh.json, node.json files and /proc command lines."""
    pids: set[int] = set()
    paths = [mesh_dir / "mesh.json", *mesh_dir.glob("nodes/*/node.json")]
    for path in paths:
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            data = json.loads(path.read_text())
            for n in data.get("nodes", [data]):
                pids.add(int(n["pid"]))
    needle = str(mesh_dir).encode()
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            cmd = (proc / "cmdline").read_bytes()
            if needle in cmd and b"hyperion" in cmd and int(proc.name) != os.getpid():
                pids.add(int(proc.name))
    return pids


def _kill_everything(up: subprocess.Popen[bytes], mesh_dir: Path) -> None:
    """Leave no node behind, whatever state the test failed in."""
    if up.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGTERM)  # up stops its nodes on SIGTERM
        try:
            up.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(up.pid, signal.SIGKILL)
            up.wait(timeout=STOP_TIMEOUT_S)
    for pid in _node_pids(mesh_dir):  # nodes run in sessions of their own
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _members_all(tmp_path: Path, mesh_dir: Path, names: list[str]) -> dict[str, list[dict]]:
    """``hyperion members --json`` asked of several nodes at once (one process each)."""
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hyperion",
                "members",
                "--dir",
                str(mesh_dir),
                "--node",
                name,
                "--json",
            ],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for name in names
    }
    views: dict[str, list[dict]] = {}
    for name, p in procs.items():
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise
        assert p.returncode == 0, f"members --node {name}: rc={p.returncode}\n{err.decode()}"
        views[name] = json.loads(out)
    return views


def _states(view: list[dict]) -> dict[str, str]:
    return {str(m["name"]): str(m["state"]) for m in view}


def _wait_for_mesh(up: subprocess.Popen[bytes], mesh_dir: Path, log: Path) -> list[dict]:
    deadline = time.monotonic() + MESH_TIMEOUT_S
    while time.monotonic() < deadline:
        assert up.poll() is None, f"up exited with {up.returncode}:\n{log.read_text()}"
        with contextlib.suppress(OSError, ValueError):
            nodes = json.loads((mesh_dir / "mesh.json").read_text())["nodes"]
            if len(nodes) == N:
                return nodes  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"no mesh.json with {N} nodes in {MESH_TIMEOUT_S} s:\n{log.read_text()}")


def test_up_members_kill_detect_and_stop(tmp_path: Path) -> None:
    mesh_dir = tmp_path / "D"
    log_path = tmp_path / "up.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed in finally)
    up = subprocess.Popen(
        [sys.executable, "-m", "hyperion", "up", "--nodes", str(N), "--dir", str(mesh_dir)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # --- the mesh description
        nodes = _wait_for_mesh(up, mesh_dir, log_path)
        names = [f"node-{i}" for i in range(1, N + 1)]
        assert [n["name"] for n in nodes] == names
        for n in nodes:
            assert set(MESH_FIELDS) <= n.keys(), n
            assert n["spiffe_id"] == f"spiffe://{TRUST_DOMAIN}/node/{n['node_id']}"
            assert isinstance(n["pid"], int)
            host, _, port = str(n["mesh_addr"]).rpartition(":")
            assert host == "127.0.0.1" and 0 < int(port) < 65536, n
        assert len({n["node_id"] for n in nodes}) == N
        assert len({n["mesh_addr"] for n in nodes}) == N
        pids = {n["name"]: int(n["pid"]) for n in nodes}
        assert len(set(pids.values())) == N, pids
        assert up.pid not in pids.values()
        for name, pid in pids.items():
            assert _alive(pid), f"{name} (pid {pid}) is not running"

        # --- every node sees every node alive
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        while True:
            views = _members_all(tmp_path, mesh_dir, names)
            states = {name: _states(v) for name, v in views.items()}
            if all(s == dict.fromkeys(names, "alive") for s in states.values()):
                break
            assert time.monotonic() < deadline, f"no convergence: {states}"
            time.sleep(0.2)
        by_id = {n["node_id"]: n for n in nodes}
        for view in views.values():
            for m in view:
                assert m["node_id"] in by_id and by_id[m["node_id"]]["name"] == m["name"], m
                assert m["addr"] == by_id[m["node_id"]]["mesh_addr"], m

        # --- kill -9 node-3: the others declare it dead
        victim = names[-1]
        survivors = names[:-1]
        os.kill(pids[victim], signal.SIGKILL)
        killed_at = time.monotonic()
        while True:
            views = _members_all(tmp_path, mesh_dir, survivors)
            seen = {name: _states(v).get(victim) for name, v in views.items()}
            if all(s == "dead" for s in seen.values()):
                break
            waited = time.monotonic() - killed_at
            assert waited < DETECT_TIMEOUT_S, f"{victim} not dead everywhere after {waited:.1f} s"
            time.sleep(0.1)
        detect_s = time.monotonic() - killed_at
        assert detect_s <= DETECT_TIMEOUT_S, f"detection took {detect_s:.2f} s"
        for view in views.values():  # the survivors still see each other alive
            states = _states(view)
            assert all(states[s] == "alive" for s in survivors), states

        # --- SIGTERM to up stops every node
        assert up.poll() is None, "up must keep running after a node dies"
        up.send_signal(signal.SIGTERM)
        rc = up.wait(timeout=STOP_TIMEOUT_S)
        assert rc == 0, log_path.read_text()
        deadline = time.monotonic() + 2.0
        while any(_alive(p) for p in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for name, pid in pids.items():
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # up reaped its children: no zombies left behind
            assert not _alive(pid), f"{name} (pid {pid}) survived `up` stopping"
    finally:
        _kill_everything(up, mesh_dir)
        log.close()
