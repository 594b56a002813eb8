"""A network lab for tests that need real partitions: one network namespace per node,
all wired to one bridge that lives in a namespace of its own.

::

    ns hyplab<pid>-1  eth0 10.213.0.11 ──veth── n1 ┐
    ns hyplab<pid>-2  eth0 10.213.0.12 ──veth── n2 ├─ br0   (ns hyplab<pid>-br)
    ns hyplab<pid>-3  eth0 10.213.0.13 ──veth── n3 ┘

Nothing is created in the root namespace — no address, route, link or firewall rule —
so the lab cannot collide with the host's networks (10.213.0.0/24 exists only inside
it) nor with a lab of another test run (names carry the pid). ``cut(i)`` detaches node
``i``'s port from the bridge: its packets are silently dropped, as on a WAN partition
(no carrier loss, no ICMP); ``heal(i)`` re-attaches it. Commands run inside a node's
namespace through ``prefix(i)`` (``ip netns exec``).

Needs root and iproute2; ``unavailable()`` says why not, for a skip. ``close()`` (also on
any failure while building) kills whatever still runs in the lab's namespaces and
deletes them, which removes every link with them. Labs left by a killed test run are
removed the next time one is built.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

SUBNET = "10.213.0"  # /24, private to the lab's namespaces
HOST_BASE = 10  # node i is SUBNET.(HOST_BASE + i)
PREFIX = "hyplab"
IP_TIMEOUT_S = 10.0


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False
    )
    if check and p.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {p.stderr.strip() or p.returncode}")
    return p


def unavailable() -> str | None:
    """Why a lab cannot be built here (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"{PREFIX}{os.getpid()}-probe"
    p = _ip("netns", "add", probe, check=False)
    if p.returncode != 0:
        return f"cannot create a network namespace: {p.stderr.strip()}"
    try:
        p = _ip("-n", probe, "link", "add", "br0", "type", "bridge", check=False)
        if p.returncode != 0:
            return f"cannot create a bridge: {p.stderr.strip()}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def _remove_stale() -> None:
    """Namespaces of labs whose test process is gone."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        digits = name[len(PREFIX) :].split("-")[0]
        if not name.startswith(PREFIX) or not digits.isdigit():
            continue
        if not Path(f"/proc/{digits}").exists():
            _kill_inside(name)
            _ip("netns", "del", name, check=False)


def _kill_inside(ns: str) -> None:
    for pid in _ip("netns", "pids", ns, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


class Lab:
    """``n`` node namespaces on one bridge (see the module docstring)."""

    def __init__(self, n: int) -> None:
        _remove_stale()
        self.n = n
        tag = f"{PREFIX}{os.getpid()}"
        self.bridge_ns = f"{tag}-br"
        self.ns = [f"{tag}-{i}" for i in range(1, n + 1)]
        self._made: list[str] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        br = self.bridge_ns
        _ip("netns", "add", br)
        self._made.append(br)
        _ip("-n", br, "link", "set", "lo", "up")
        _ip("-n", br, "link", "add", "br0", "type", "bridge")
        _ip("-n", br, "link", "set", "br0", "up")
        for i, ns in enumerate(self.ns, start=1):
            _ip("netns", "add", ns)
            self._made.append(ns)
            port = self.port(i)
            _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port,
                "netns", br)  # fmt: skip
            _ip("-n", br, "link", "set", port, "master", "br0")
            _ip("-n", br, "link", "set", port, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def addr(self, i: int) -> str:
        """Node ``i``'s address (1-based)."""
        return f"{SUBNET}.{HOST_BASE + i}"

    def port(self, i: int) -> str:
        """The bridge-side end of node ``i``'s veth pair."""
        return f"n{i}"

    def prefix(self, i: int) -> list[str]:
        """Prepended to a command line, runs it in node ``i``'s namespace."""
        return ["ip", "netns", "exec", self.ns[i - 1]]

    def cut(self, i: int) -> None:
        """Partition node ``i`` from all the others: its frames go nowhere."""
        _ip("-n", self.bridge_ns, "link", "set", self.port(i), "nomaster")

    def heal(self, i: int) -> None:
        _ip("-n", self.bridge_ns, "link", "set", self.port(i), "master", "br0")

    def close(self) -> None:
        for ns in reversed(self._made):
            _kill_inside(ns)
        deadline = time.monotonic() + IP_TIMEOUT_S
        for ns in reversed(self._made):
            while _ip("netns", "pids", ns, check=False).stdout.strip():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            _ip("netns", "del", ns, check=False)
        self._made.clear()
