"""The ``hyperion`` command run for real, as subprocesses: exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from node_helpers import cli_env
from node_helpers import run_cli as hyperion

SIM_ARGS = [
    "sim", "membership", "--nodes", "50", "--seed", "3", "--duration", "20",
    "--crash-fraction", "0.1", "--loss", "0.01", "--json",
]  # fmt: skip
SIM_KEYS = {
    "nodes", "seed", "converged_s", "detect_s_p50", "detect_s_p99", "false_dead",
    "msgs_per_node_per_s", "wall_s", "peak_rss_mib",
}  # fmt: skip


def assert_usage_error(r: subprocess.CompletedProcess[str], *, one_line: bool = True) -> str:
    """Exit code 2, no traceback; with ``one_line`` a single ``error: ...`` line on stderr."""
    detail = f"rc={r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert r.returncode == 2, detail
    assert "Traceback" not in r.stderr, detail
    assert "Traceback" not in r.stdout, detail
    if one_line:
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, detail
        assert lines[0].startswith("error: "), detail
    return r.stderr


def make_ca(tmp_path: Path, name: str = "D") -> Path:
    d = tmp_path / name
    r = hyperion(tmp_path, "ca", "init", "--dir", str(d), "--trust-domain", "example.org")
    assert r.returncode == 0, r.stderr
    return d


def make_token(tmp_path: Path, d: Path, ttl: str = "1h") -> str:
    r = hyperion(tmp_path, "token", "create", "--dir", str(d), "--ttl", ttl)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token and len(token.splitlines()) == 1, r.stdout
    return token


# ------------------------------------------------------------------------- identity


def test_ca_init_creates_private_key_0600_and_refuses_second_init(tmp_path: Path) -> None:
    d = make_ca(tmp_path)
    key = d / "ca.key"
    assert key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    r = hyperion(tmp_path, "ca", "init", "--dir", str(d), "--trust-domain", "example.org")
    assert_usage_error(r)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # untouched


def test_token_create_and_bad_ttl(tmp_path: Path) -> None:
    d = make_ca(tmp_path)
    t1 = make_token(tmp_path, d, "1h")
    t2 = make_token(tmp_path, d, "1h")
    assert t1 != t2

    assert_usage_error(hyperion(tmp_path, "token", "create", "--dir", str(d), "--ttl", "bogus"))


def test_token_create_without_ca(tmp_path: Path) -> None:
    r = hyperion(tmp_path, "token", "create", "--dir", str(tmp_path / "noca"), "--ttl", "1h")
    assert_usage_error(r)


# -------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["up", "--nodes", "0"], id="up-nodes-0"),
        pytest.param(["up", "--nodes", "abc"], id="up-nodes-abc"),
        pytest.param(["no-such-command"], id="unknown-subcommand"),
        pytest.param(["sim", "membership", "--nodes", "1", "--json"], id="sim-nodes-1"),
        pytest.param(["sim", "membership", "--nodes", "10", "--loss", "2"], id="sim-loss-2"),
    ],
)
def test_bad_flags_exit_2_without_traceback(tmp_path: Path, args: list[str]) -> None:
    r = hyperion(tmp_path, *args)
    assert_usage_error(r, one_line=False)
    assert r.stderr.strip(), "a usage error must say what is wrong"
    assert not (tmp_path / "xdg").exists(), "a rejected command must not create a mesh"


def test_members_without_mesh_json(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    err = assert_usage_error(hyperion(tmp_path, "members", "--dir", str(empty)))
    assert "mesh.json" in err


@pytest.mark.parametrize("cmd", ["nodes", "stats"])
def test_nodes_and_stats_without_mesh_json(tmp_path: Path, cmd: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "mesh.json" in assert_usage_error(hyperion(tmp_path, cmd, "--dir", str(empty)))


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--labels", "cloud=oci"], "hyperion.io/cloud"),
        (["--labels", "region=Not A Region!"], "topology.kubernetes.io/region"),
        (["--labels", "price=-1"], "price"),
        (["--gpus", "Quantum9000:1"], "Quantum9000"),
        (["--cpu", "lots"], "lots"),
        (["--wire-version", "7"], "wire version"),
    ],
)
def test_node_start_rejects_bad_record_inputs(
    tmp_path: Path, flags: list[str], needle: str
) -> None:
    d = make_ca(tmp_path)
    err = assert_usage_error(
        hyperion(tmp_path, "node", "start", "--dir", str(d), "--name", "n1", *flags)
    )
    assert needle in err


def test_nodes_rejects_a_bad_selector_before_contacting_anyone(tmp_path: Path) -> None:
    err = assert_usage_error(hyperion(tmp_path, "nodes", "--dir", str(tmp_path), "-l", "a in b"))
    assert "bad --selector" in err


# ------------------------------------------------------------------------------ sim


def test_sim_membership_json_is_deterministic(tmp_path: Path) -> None:
    runs = []
    for _ in range(2):
        r = hyperion(tmp_path, *SIM_ARGS)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        out = r.stdout.strip()
        assert len(out.splitlines()) == 1, r.stdout
        obj = json.loads(out)
        assert isinstance(obj, dict)
        runs.append(obj)

    first, second = runs
    missing = SIM_KEYS - first.keys()
    assert not missing, sorted(missing)
    assert first["nodes"] == 50
    assert first["seed"] == 3
    assert first["false_dead"] == 0
    for k in ("converged_s", "detect_s_p50", "detect_s_p99", "msgs_per_node_per_s"):
        assert isinstance(first[k], int | float), (k, first[k])
    assert first["detect_s_p50"] <= first["detect_s_p99"]

    volatile = {"wall_s", "peak_rss_mib"}
    strip = {k: v for k, v in first.items() if k not in volatile}
    assert strip == {k: v for k, v in second.items() if k not in volatile}


# ----------------------------------------------------------------------------- node


def test_node_start_without_token_or_svid(tmp_path: Path) -> None:
    d = make_ca(tmp_path)
    r = hyperion(tmp_path, "node", "start", "--dir", str(d), "--name", "x")
    assert "--token" in assert_usage_error(r)


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"node exited early with code {proc.returncode}"
        try:
            info = json.loads(path.read_text())
            if info.get("mesh_addr"):
                return info  # type: ignore[no-any-return]
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout_s} s")


def test_join_token_is_one_time_and_expires(tmp_path: Path) -> None:
    d = make_ca(tmp_path)
    token = make_token(tmp_path, d, "1h")
    short = make_token(tmp_path, d, "1s")
    created = time.monotonic()

    log = open(tmp_path / "a.log", "wb")  # noqa: SIM115 (closed in finally)
    a = subprocess.Popen(
        [sys.executable, "-m", "hyperion", "node", "start", "--dir", str(d), "--name", "a",
         "--listen", "127.0.0.1:0", "--token", token],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        info = _wait_for_file(d / "nodes" / "a" / "node.json", a, 30.0)
        assert info["name"] == "a"
        assert info["pid"] == a.pid

        r = hyperion(tmp_path, "node", "start", "--dir", str(d), "--name", "b", "--token", token)
        assert "already used" in assert_usage_error(r)

        time.sleep(max(0.0, created + 1.5 - time.monotonic()))
        r = hyperion(tmp_path, "node", "start", "--dir", str(d), "--name", "c", "--token", short)
        assert "expired" in assert_usage_error(r)

        assert a.poll() is None, "node a must survive the refused joins"
        a.send_signal(signal.SIGTERM)
        assert a.wait(timeout=10) == 0, (tmp_path / "a.log").read_text()
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)
            a.wait(timeout=10)
        log.close()


def test_bad_node_names_never_become_paths(tmp_path: Path) -> None:
    d = make_ca(tmp_path)
    for name in ("../../escape", "Node1", "a/b", ""):
        r = hyperion(tmp_path, "node", "start", "--dir", str(d), "--name", name, "--token", "t")
        assert_usage_error(r)
    assert not (tmp_path / "escape").exists()


def test_up_into_a_file_and_listen_on_a_busy_port(tmp_path: Path) -> None:
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    assert "not a directory" in assert_usage_error(hyperion(tmp_path, "up", "--dir", str(f)))
    d = make_ca(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = hyperion(
            tmp_path,
            "node",
            "start",
            "--dir",
            str(d),
            "--name",
            "n1",
            "--token",
            make_token(tmp_path, d),
            "--listen",
            f"127.0.0.1:{port}",
        )
    assert r.returncode == 2, r.stderr
    assert "cannot listen" in r.stderr and "Traceback" not in r.stderr
