"""``hyperion up``: a local mesh, one OS process per node, supervised in the foreground.

Creates the CA (if absent) and one join token per node, starts node-1, waits for it to
bind, starts the rest joining through it, writes ``DIR/mesh.json`` and waits for
Ctrl-C/SIGTERM, then stops every node it started. A node that dies (``kill -9``) is
reported and left dead: that is how failure detection is exercised by hand.

``run_up`` may give each node an identity (cloud, region, zone, instance type, spot,
price, nominal capacity: ``hyperion.cli.fleetspec``) through its ``node start`` flags;
``start_mesh`` alone gives none unless its ``node_args`` do.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from hyperion import PROTOCOL_VERSION, fsutil
from hyperion.api import kubeconfig
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.tokens import create_token

if TYPE_CHECKING:  # fleetspec imports the simulator's tables: only run_up needs it
    from hyperion.cli.fleetspec import NodeIdentity

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


class UpError(Exception):
    pass


def _wait_for_info(path: Path, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, object]:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UpError(f"node exited with code {proc.returncode} (see {path.parent}/node.log)")
        try:
            info = json.loads(path.read_text())
            if info.get("pid") == proc.pid and info.get("mesh_addr"):
                return info  # type: ignore[no-any-return]
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise UpError(
        f"node did not start within {STARTUP_TIMEOUT_S:.0f} s (see {path.parent}/node.log)"
    )


def node_command(
    mesh_dir: Path, name: str, token: str, *, join: str = "", extra: Sequence[str] = ()
) -> list[str]:
    """The command line that runs one node of the mesh in ``mesh_dir``."""
    cmd = [
        sys.executable, "-m", "hyperion", "node", "start",
        "--dir", str(mesh_dir), "--name", name, "--listen", "127.0.0.1:0", "--token", token,
    ]  # fmt: skip
    if join:
        cmd += ["--join", join]
    return cmd + list(extra)


def start_mesh(
    n: int,
    mesh_dir: Path,
    trust_domain: str,
    profile: str,
    svid_ttl: str,
    wire_versions: Sequence[int] = (PROTOCOL_VERSION,),
    node_args: Callable[[int], list[str]] | None = None,
) -> tuple[list[subprocess.Popen[bytes]], list[dict[str, object]]]:
    mesh_dir.mkdir(parents=True, exist_ok=True)
    if not CertificateAuthority.exists(mesh_dir):
        CertificateAuthority.init(mesh_dir, trust_domain)
    procs: list[subprocess.Popen[bytes]] = []
    infos: list[dict[str, object]] = []
    try:
        seed = ""
        pending: list[tuple[Path, subprocess.Popen[bytes]]] = []
        for i in range(1, n + 1):
            name = f"node-{i}"
            ndir = mesh_dir / "nodes" / name
            ndir.mkdir(parents=True, exist_ok=True, mode=0o700)
            (ndir / "node.json").unlink(missing_ok=True)
            extra = ["--profile", profile, "--svid-ttl", svid_ttl]
            version = wire_versions[(i - 1) % len(wire_versions)]
            if version != PROTOCOL_VERSION:
                extra += ["--wire-version", str(version)]
            if node_args is not None:
                extra += node_args(i)
            token = create_token(mesh_dir, ttl_s=600)
            cmd = node_command(mesh_dir, name, token, join=seed, extra=extra)
            log = open(ndir / "node.log", "ab")  # noqa: SIM115 (owned by the child)
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            log.close()
            procs.append(proc)
            if i == 1:
                info = _wait_for_info(
                    ndir / "node.json", proc, time.monotonic() + STARTUP_TIMEOUT_S
                )
                infos.append(info)
                seed = str(info["mesh_addr"])
            else:
                pending.append((ndir / "node.json", proc))
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for path, proc in pending:
            infos.append(_wait_for_info(path, proc, deadline))
    except BaseException:
        stop_mesh(procs)
        raise
    mesh = {
        "nodes": [
            {
                k: info.get(k)
                for k in ("name", "node_id", "spiffe_id", "pid", "mesh_addr", "api_addr")
            }
            for info in infos
        ]
    }
    fsutil.atomic_write(mesh_dir / "mesh.json", json.dumps(mesh, indent=2).encode())
    servers = [(str(i["name"]), str(i["api_addr"])) for i in infos if i.get("api_addr")]
    if servers:
        config = kubeconfig.build(CertificateAuthority.load(mesh_dir), servers, user="admin")
        kubeconfig.write(mesh_dir / "kubeconfig", config)
    return procs, infos


def stop_mesh(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def summary_table(
    mesh_dir: Path, infos: Sequence[dict[str, object]], fleet: Sequence[NodeIdentity] | None
) -> Table:
    """``hyperion up``'s table: one row per node, with its identity when it has one."""
    from hyperion.cli.fleetspec import format_price

    table = Table(title=f"Hyperion mesh in {mesh_dir}")
    cols = ["name", "node id", "pid"]
    if fleet is not None:
        cols += ["cloud", "region", "instance type", "spot", "$/h"]
    for col in (*cols, "mesh address", "Kubernetes API"):
        table.add_column(col, justify="right" if col == "$/h" else "left")
    for i, info in enumerate(infos):
        node_id = str(info["node_id"])[: 16 if fleet is None else 12]
        row = [str(info["name"]), node_id, str(info["pid"])]
        if fleet is not None:
            f = fleet[i]
            spot = "yes" if f.spot else ("-" if f.cloud in ("edge", "onprem") else "no")
            price = format_price(f.price_per_hour)
            row += [f.cloud, f.region, f.instance_type or "-", spot, price]
        row += [
            str(info["mesh_addr"]),
            f"https://{info['api_addr']}" if info.get("api_addr") else "-",
        ]
        table.add_row(*row)
    return table


def run_up(
    n: int,
    mesh_dir: Path,
    trust_domain: str,
    profile: str,
    svid_ttl: str,
    console: Console,
    wire_versions: Sequence[int] = (PROTOCOL_VERSION,),
    fleet: Sequence[NodeIdentity] | None = None,
) -> None:
    """Start the mesh, print its summary and supervise it until SIGINT/SIGTERM.

    ``fleet`` (one identity per node, at least ``n``) gives node ``i`` the labels and
    capacity of ``fleet[i - 1]``; None leaves nodes unlabelled with local capacity.
    """
    if fleet is not None and len(fleet) < n:
        raise ValueError(f"a fleet of {len(fleet)} identities for {n} nodes")
    node_args: Callable[[int], list[str]] | None = None
    if fleet is not None:
        identities = list(fleet)

        def node_args(i: int) -> list[str]:
            return identities[i - 1].node_args()

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        procs, infos = start_mesh(
            n, mesh_dir, trust_domain, profile, svid_ttl, wire_versions, node_args
        )
    except UpError as e:
        console.print(f"[red]error:[/] {e}")
        sys.exit(1)
    console.print(summary_table(mesh_dir, infos, fleet))
    if fleet is None:
        console.print("no fleet (--fleet none): no cloud labels, each node offers this machine")
    else:
        console.print(
            "each node advertises the capacity and price of its instance (--fleet), "
            "not this machine's"
        )
    console.print(
        f"wrote {mesh_dir / 'mesh.json'} and {mesh_dir / 'kubeconfig'}; try:\n"
        f"  export KUBECONFIG={mesh_dir / 'kubeconfig'}; kubectl get nodes\n"
        f"  hyperion members --dir {mesh_dir}   (or: hyperion nodes --dir {mesh_dir})"
    )
    console.print("Ctrl-C stops the mesh.")
    reported: set[int] = set()
    try:
        while not stopping:
            for p, info in zip(procs, infos, strict=True):
                if p.poll() is not None and p.pid not in reported:
                    reported.add(p.pid)
                    console.print(
                        f"[yellow]{info['name']} (pid {p.pid}) exited with code {p.returncode}[/]"
                    )
            time.sleep(0.2)
    finally:
        console.print("stopping the mesh…")
        stop_mesh(procs)
