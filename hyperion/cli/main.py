"""The ``hyperion`` command: typer app, one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from hyperion import PROTOCOL_VERSION
from hyperion.cli.fleet import bench_app, policy_app
from hyperion.datafiles import DataError
from hyperion.identity.ca import Svid
from hyperion.identity.errors import IdentityError

app = typer.Typer(
    help="Hyperion: one decentralized compute mesh over clouds, regions and edge devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ca_app = typer.Typer(help="Trust-domain certificate authority.", no_args_is_help=True)
token_app = typer.Typer(help="One-time join tokens.", no_args_is_help=True)
node_app = typer.Typer(help="Run a single node.", no_args_is_help=True)
sim_app = typer.Typer(help="Deterministic simulations at scale.", no_args_is_help=True)
app.add_typer(ca_app, name="ca")
app.add_typer(token_app, name="token")
app.add_typer(node_app, name="node")
app.add_typer(sim_app, name="sim")
app.add_typer(bench_app, name="bench")
app.add_typer(policy_app, name="policy")

console = Console()
USAGE_EXIT = 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def fail(msg: str) -> NoReturn:
    raise CliError(msg)


def default_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hyperion" / "mesh"


DirOpt = Annotated[Path, typer.Option("--dir", help="Mesh directory (CA, tokens, nodes).")]


# ------------------------------------------------------------------------- identity


@ca_app.command("init")
def ca_init(
    dir: DirOpt,
    trust_domain: Annotated[str, typer.Option("--trust-domain", help="e.g. example.org")],
) -> None:
    """Create a trust-domain CA in DIR (private key stored with mode 0600)."""
    from hyperion.identity.ca import CertificateAuthority

    ca = CertificateAuthority.init(dir, trust_domain)
    console.print(f"created CA for trust domain [bold]{ca.trust_domain}[/] in {dir}")


@ca_app.command("hash")
def ca_hash(dir: DirOpt) -> None:
    """Print the CA's pin for --ca-hash: sha256 of its certificate's SubjectPublicKeyInfo."""
    from hyperion.identity.ca import CA_CERT_FILE, ca_cert_hash

    path = dir / CA_CERT_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        fail(f"no CA certificate in {dir} (missing {CA_CERT_FILE})")
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror or e}")
    print(ca_cert_hash(data))


@ca_app.command("revoke")
def ca_revoke(
    dir: DirOpt,
    target: Annotated[
        str,
        typer.Argument(
            metavar="SPIFFE_ID_OR_NODE_NAME",
            help="spiffe://TD/..., user/NAME, node/ID, a node id or a node name of DIR",
        ),
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the record).")] = "",
    serial: Annotated[
        str | None, typer.Option("--serial", help="Revoke only this certificate (hex serial).")
    ] = None,
    ttl: Annotated[
        str, typer.Option("--ttl", help="Record lifetime (30d, 25h) or 'never' (default).")
    ] = "never",
    force: Annotated[
        bool, typer.Option("--force", help="Revoke even the only node of DIR.")
    ] = False,
) -> None:
    """Revoke an identity: sign a record into DIR, hand it to DIR's running nodes (the mesh
    spreads it); its certificates stop working at every node that has it."""
    from hyperion.cli import revoke as rv
    from hyperion.identity.tokens import parse_ttl

    ttl_s = None if ttl.strip().lower() == "never" else parse_ttl(ttl)
    rec, answers = rv.revoke(
        dir, target, reason=reason, serial=serial, ttl_s=ttl_s, force=force, svid=cli_svid(dir)
    )
    what = rec.subject + (f" (certificate {rec.serial})" if rec.serial else "")
    print(f"revoked {what}")
    for name, answer in answers:
        print(f"  {name}: {answer}")
    if not any(a and a.startswith("ok") for _, a in answers):
        print(
            f"warning: no running node of {dir} took the record; nodes holding the CA load "
            f"{dir / 'revocations.json'} when they start",
            file=sys.stderr,
        )


@ca_app.command("revocations")
def ca_revocations(
    dir: DirOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the revocations in DIR (each checked against the CA)."""
    import time

    from hyperion.cli import revoke as rv

    recs = rv.listed(dir)
    if as_json:
        print(json.dumps([json.loads(r.to_bytes()) for r in recs], indent=2))
        return
    table = Table(title=f"revocations in {dir}")
    table.add_column("subject", overflow="fold")  # the SPIFFE ID whole, wrapped if need be
    for col in ("serial", "revoked", "expires", "reason"):
        table.add_column(col)

    def when(t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))

    for r in recs:
        table.add_row(
            r.subject,
            r.serial or "all",
            when(r.revoked_at),
            when(r.expires_at) if r.expires_at else "never",
            r.reason,
        )
    console.print(table)


def _join_hint(dir: Path, token: str) -> str | None:
    """The command that joins another machine, if a node of DIR serves enrollment."""
    from hyperion.cli.revoke import node_infos

    for info in node_infos(dir):
        if info.get("enroll_addr") and info.get("mesh_addr"):
            return (
                "hyperion node start --dir DIR --name NAME "
                f"--join {info['mesh_addr']} --enroll {info['enroll_addr']} "
                f"--token {token} --ca-hash {info['ca_hash']}"
            )
    return None


@token_app.command("create")
def token_create(
    dir: DirOpt,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime: 90s, 15m, 1h, 2d.")] = "1h",
) -> None:
    """Print a one-time join token valid for TTL (and, on stderr, the join command when a
    node of DIR serves enrollment)."""
    from hyperion.identity.tokens import create_token, parse_ttl

    token = create_token(dir, ttl_s=parse_ttl(ttl))
    print(token)
    hint = _join_hint(dir, token)
    if hint is not None:
        print(f"join another machine with:\n  {hint}", file=sys.stderr)


# ----------------------------------------------------------------------------- node


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            fail(f"bad label {part!r}: expected key=value")
        labels[k.strip()] = v.strip()
    return labels


NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")


def parse_name(text: str) -> str:
    """Node names become directory names: DNS-label-like, never a path."""
    if not NAME_RE.match(text):
        fail(f"bad node name {text!r}: use lowercase letters, digits, '.', '-', '_' (max 63)")
    return text


def parse_addr(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        fail(f"bad address {text!r}: expected host:port")
    return text


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@node_app.command("start")
def node_start(
    dir: DirOpt,
    name: Annotated[str, typer.Option("--name", help="Node name, unique in the mesh.")],
    listen: Annotated[str, typer.Option("--listen", help="host:port (port 0: any)")] = (
        "127.0.0.1:0"
    ),
    join: Annotated[str, typer.Option("--join", help="Comma-separated host:port seeds.")] = "",
    token: Annotated[str | None, typer.Option("--token", help="One-time join token.")] = None,
    labels: Annotated[
        str,
        typer.Option(
            "--labels",
            help="k=v,... Short keys: cloud, region, zone, geography, instance-type, spot, "
            "price-per-hour, edge; or full keys (topology.kubernetes.io/region, hyperion.io/…).",
        ),
    ] = "",
    profile: Annotated[str, typer.Option("--profile", help="local | lan | wan")] = "local",
    svid_ttl: Annotated[str, typer.Option("--svid-ttl", help="SVID lifetime")] = "1h",
    cpu: Annotated[
        str | None, typer.Option("--cpu", help="CPU to offer (4, 500m); default: all")
    ] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", help="Memory to offer (8Gi); default: all")
    ] = None,
    gpus: Annotated[str, typer.Option("--gpus", help="MODEL:COUNT[:GiB],… e.g. H100:8")] = "",
    egress_price: Annotated[
        float, typer.Option("--egress-price-per-gb", help="USD per GB out; 0 = unknown")
    ] = 0.0,
    wire_version: Annotated[
        int,
        typer.Option(
            "--wire-version", help="Protocol version to speak (1: as release 0.1, for testing)"
        ),
    ] = PROTOCOL_VERSION,
    api_listen: Annotated[
        str, typer.Option("--api-listen", help="host:port of the Kubernetes API (HTTPS)")
    ] = "127.0.0.1:0",
    policy: Annotated[
        str, typer.Option("--policy", help="Placement policy of this node's tenders: rules | rl")
    ] = "rules",
    enroll: Annotated[
        str | None,
        typer.Option(
            "--enroll",
            help="host:port of a node's enrollment port (its --enroll-listen): join from a "
            "machine without the CA, with --token and --ca-hash",
        ),
    ] = None,
    ca_hash: Annotated[
        str | None,
        typer.Option("--ca-hash", help="sha256:HEX pin of the CA (`hyperion ca hash`)"),
    ] = None,
    enroll_listen: Annotated[
        str | None,
        typer.Option(
            "--enroll-listen",
            help="host:port to serve enrollment on (TLS, no client certificate; needs the "
            "CA in --dir)",
        ),
    ] = None,
) -> None:
    """Run one node in the foreground until SIGINT/SIGTERM."""
    from hyperion.daemon import Node, NodeOptions, enroll_node
    from hyperion.identity.ca import CertificateAuthority, parse_ca_hash
    from hyperion.identity.tokens import parse_ttl
    from hyperion.mesh.records import normalize_labels, parse_gpus, parse_quantity
    from hyperion.policy import POLICIES

    parse_name(name)
    parse_addr(listen)
    parse_addr(api_listen)
    seeds = [parse_addr(s.strip()) for s in join.split(",") if s.strip()]
    if enroll_listen is not None:
        parse_addr(enroll_listen)
        if not CertificateAuthority.exists(dir):
            fail(f"--enroll-listen needs the CA in {dir} (this node signs the SVIDs)")
    if enroll is not None:
        parse_addr(enroll)
        if ca_hash is None:
            fail("--enroll needs --ca-hash sha256:HEX (print it with `hyperion ca hash`)")
    if ca_hash is not None:
        ca_hash = parse_ca_hash(ca_hash)
        if enroll is None:
            fail("--ca-hash needs --enroll HOST:PORT, the enrollment port of a node with the CA")
    try:
        cpu_millis = None if cpu is None else int(parse_quantity(cpu) * 1000)
        memory_bytes = None if memory is None else int(parse_quantity(memory))
        opts = NodeOptions(
            dir=dir,
            name=name,
            listen=listen,
            join=seeds,
            token=token,
            labels=normalize_labels(parse_labels(labels)),
            profile=profile,
            svid_ttl_s=parse_ttl(svid_ttl),
            cpu_millis=cpu_millis,
            memory_bytes=memory_bytes,
            gpus=parse_gpus(gpus) if gpus else (),
            egress_price_per_gb=egress_price,
            wire_version=wire_version,
            api_listen=api_listen,
            policy=policy,
            enroll=enroll,
            ca_hash=ca_hash,
            enroll_listen=enroll_listen,
        )
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}: choose one of {', '.join(POLICIES)}")
    except ValueError as e:
        fail(str(e))
    _setup_logging(True)

    async def serve() -> None:
        await enroll_node(opts)  # no CA in DIR and no SVID yet: over the network, first
        node = Node(opts)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await node.run(stop)

    from hyperion.net.workload_api import WorkloadApiError

    try:
        asyncio.run(serve())
    except (ValueError, OSError, WorkloadApiError) as e:
        fail(str(e))


@app.command("up")
def up(
    nodes: Annotated[
        int | None,
        typer.Option(
            "--nodes", help="How many local nodes (default: 3, or one per --fleet file entry)."
        ),
    ] = None,
    dir: Annotated[Path | None, typer.Option("--dir", help="Mesh directory.")] = None,
    trust_domain: Annotated[str, typer.Option("--trust-domain")] = "hyperion.local",
    profile: Annotated[str, typer.Option("--profile", help="local | lan | wan")] = "local",
    svid_ttl: Annotated[str, typer.Option("--svid-ttl", help="SVID lifetime")] = "1h",
    wire_versions: Annotated[
        str,
        typer.Option(
            "--wire-versions",
            help="Protocol versions the nodes speak, cycled: e.g. 2,1 (mixed-version mesh)",
        ),
    ] = str(PROTOCOL_VERSION),
    fleet: Annotated[
        str,
        typer.Option(
            "--fleet",
            help="Node identities: 'default' (a mixed AWS/GCP/Azure/edge fleet priced from "
            "cloud_prices.csv; capacity advertised, not this machine's), 'none' (no cloud "
            "labels, local capacity) or FILE.yaml (see hyperion/cli/fleetspec.py).",
        ),
    ] = "default",
) -> None:
    """Start a local mesh, one OS process per node; Ctrl-C stops them all."""
    from hyperion.cli.fleetspec import FleetError, resolve_fleet
    from hyperion.cli.up import run_up
    from hyperion.identity.tokens import parse_ttl
    from hyperion.mesh.membership import PROFILES

    if nodes is not None and nodes < 1:
        fail("--nodes must be at least 1")
    try:
        n, identities = resolve_fleet(fleet, nodes)
    except FleetError as e:
        fail(str(e))
    if profile not in PROFILES:
        fail(f"unknown --profile {profile!r} (choose {', '.join(PROFILES)})")
    parse_ttl(svid_ttl)
    from hyperion.net.codec import SUPPORTED_VERSIONS

    try:
        versions = [int(v) for v in wire_versions.split(",") if v.strip()]
    except ValueError:
        fail(f"bad --wire-versions {wire_versions!r}: expected e.g. 2,1")
    if not versions or any(v not in SUPPORTED_VERSIONS for v in versions):
        fail(f"--wire-versions must list versions from {list(SUPPORTED_VERSIONS)}")
    mesh_dir = dir or default_dir()
    if mesh_dir.exists() and not mesh_dir.is_dir():
        fail(f"{mesh_dir} exists and is not a directory")
    try:
        run_up(n, mesh_dir, trust_domain, profile, svid_ttl, console, versions, identities)
    except OSError as e:
        fail(str(e))


@app.command("kubeconfig")
def kubeconfig_cmd(
    dir: DirOpt,
    user: Annotated[str, typer.Option("--user", help="User name (spiffe://TD/user/NAME).")],
    role: Annotated[str, typer.Option("--role", help="admin | view (read-only)")] = "admin",
    ttl: Annotated[str, typer.Option("--ttl", help="Certificate lifetime, e.g. 24h")] = "24h",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (0600) instead of printing.")
    ] = None,
) -> None:
    """Issue a user certificate and print a kubeconfig with one context per node."""
    from hyperion.api import kubeconfig
    from hyperion.identity.ca import CertificateAuthority
    from hyperion.identity.errors import IdentityError
    from hyperion.identity.tokens import parse_ttl

    mesh = load_mesh(dir)
    servers = [
        (str(n["name"]), str(n["api_addr"]))
        for n in mesh.get("nodes", [])  # type: ignore[attr-defined]
        if n.get("api_addr")
    ]
    try:
        ca = CertificateAuthority.load(dir)
        from hyperion.cli.revoke import user_revoked

        why = user_revoked(dir, ca, user)
        if why is not None:
            fail(why)
        config = kubeconfig.build(ca, servers, user=user, role=role, ttl_s=parse_ttl(ttl))
    except (IdentityError, ValueError) as e:
        fail(str(e))
    if out is None:
        sys.stdout.write(kubeconfig.dump(config))
    else:
        kubeconfig.write(out, config)
        console.print(f"wrote {out}")


# -------------------------------------------------------------------------- members


def load_mesh(dir: Path) -> dict[str, object]:
    path = dir / "mesh.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        fail(f"no mesh in {dir} (missing mesh.json: start one with `hyperion up --dir {dir}`)")
    except (OSError, ValueError) as e:
        fail(f"cannot read {path}: {e}")
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        fail(f"{path} is not a mesh description")
    return data


def find_node(dir: Path, name: str | None) -> dict[str, object]:
    nodes = load_mesh(dir)["nodes"]
    assert isinstance(nodes, list)
    if not nodes:
        fail(f"mesh in {dir} has no nodes")
    if name is None:
        return nodes[0]  # type: ignore[no-any-return]
    for n in nodes:
        if n.get("name") == name:
            return n  # type: ignore[no-any-return]
    have = ", ".join(str(n.get("name")) for n in nodes)
    fail(f"no node named {name!r} in {dir} (have: {have})")


def ask_node(
    dir: Path, node: str | None, method: str, request: Any = None, timeout_s: float = 5.0
) -> Any:
    """Call the admin API of a node of the mesh in ``dir`` (``--node``, default the first)."""
    import grpc

    from hyperion.net.transport import call_admin

    info = find_node(dir, node)
    svid = cli_svid(dir)
    try:
        return asyncio.run(
            call_admin(str(info["mesh_addr"]), svid, method, timeout_s, request=request)
        )
    except grpc.aio.AioRpcError as e:
        fail(f"node {info.get('name')} at {info.get('mesh_addr')} did not answer: {e.details()}")


def cli_svid(dir: Path) -> Svid:
    """A short-lived user SVID for the CLI, issued from the mesh CA."""
    from hyperion.identity.ca import CertificateAuthority
    from hyperion.identity.spiffe import user_spiffe_id

    ca = CertificateAuthority.load(dir)
    return ca.issue_svid(user_spiffe_id(ca.trust_domain, "cli"), ttl_s=300)


@app.command("members")
def members(
    dir: DirOpt,
    node: Annotated[str | None, typer.Option("--node", help="Ask this node (default: first).")] = (
        None
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one node's membership view."""

    reply = ask_node(dir, node, "Members")
    rows = [
        {
            "node_id": m.node_id,
            "name": m.name,
            "state": m.state,
            "incarnation": m.incarnation,
            "addr": m.addr,
            "state_since": m.state_since_unix or None,
        }
        for m in reply.members
    ]
    rows.sort(key=lambda r: (str(r["name"]), str(r["node_id"])))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"members as seen by {reply.name} ({reply.node_id[:12]}…)")
    for col in ("name", "node id", "state", "incarnation", "address"):
        table.add_column(col)
    colors = {"alive": "green", "suspect": "yellow", "dead": "red"}
    for r in rows:
        st = str(r["state"])
        table.add_row(
            str(r["name"]),
            str(r["node_id"])[:16],
            f"[{colors.get(st, 'white')}]{st}[/]",
            str(r["incarnation"]),
            str(r["addr"]),
        )
    console.print(table)


@app.command("nodes")
def nodes_cmd(
    dir: DirOpt,
    node: Annotated[str | None, typer.Option("--node", help="Ask this node (default: first).")] = (
        None
    ),
    selector: Annotated[
        str,
        typer.Option(
            "--selector",
            "-l",
            help="Kubernetes-style selector, plus version/protocol/cpu/memory/gpu/price: "
            "e.g. 'version>=0.2,region in (us-east-1,eu-west-1),gpu=H100-80GB'",
        ),
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the node records a node knows (its own first), optionally filtered."""

    from hyperion.mesh.records import NodeRecord, RecordError, parse_selector

    try:
        sel = parse_selector(selector)
    except ValueError as e:
        fail(f"bad --selector: {e}")
    reply = ask_node(dir, node, "Nodes")
    records = []
    for pb in reply.records:
        try:
            rec = NodeRecord.from_bytes(pb.SerializeToString())
        except RecordError as e:
            fail(f"node {reply.name} sent an unreadable record: {e}")
        if sel.matches(rec):
            records.append(rec)
    if as_json:
        print(json.dumps([r.to_json() for r in records], indent=2))
        return
    table = Table(title=f"node records known to {reply.name} ({reply.node_id[:12]}…)")
    for col in ("name", "node id", "cloud", "region", "cpu", "memory", "gpus", "$/h", "spot"):
        table.add_column(col)
    table.add_column("version")
    table.add_column("address")
    for r in records:
        labels = r.labels
        table.add_row(
            r.name,
            r.node_id[:12],
            labels.get("hyperion.io/cloud", ""),
            labels.get("topology.kubernetes.io/region", ""),
            f"{r.cpu_millis_free / 1000:g}/{r.cpu_millis / 1000:g}",
            f"{r.memory_bytes_free / 2**30:.1f}/{r.memory_bytes / 2**30:.1f}Gi",
            ",".join(f"{g.model}:{g.free}/{g.count}" for g in r.gpus) or "-",
            f"{r.price_per_hour:g}",
            "yes" if r.spot else "no",
            f"{r.software_version} (p{','.join(map(str, r.protocol_versions))})",
            r.mesh_addr,
        )
    console.print(table)


@app.command("stats")
def stats_cmd(
    dir: DirOpt,
    node: Annotated[str | None, typer.Option("--node", help="Ask this node (default: first).")] = (
        None
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A node's counters: transport, SWIM, DHT, pub/sub and records (drops included)."""

    reply = ask_node(dir, node, "Members")
    counters = dict(sorted(reply.counters.items()))
    if as_json:
        print(json.dumps(counters, indent=2))
        return
    table = Table(title=f"counters of {reply.name} ({reply.node_id[:12]}…)")
    table.add_column("counter")
    table.add_column("value", justify="right")
    for k, v in counters.items():
        table.add_row(k, str(v))
    console.print(table)


def parse_workload(text: str) -> tuple[str, str, str]:
    """``KIND/NAME`` (deployment/web, deploy/web, sts/db, job/x, hwl/y) ->
    (catalog resource, kind, name)."""
    from hyperion.api.resources import RESOURCES
    from hyperion.control.custodian import WORKLOADS

    kind, sep, name = text.partition("/")
    if not sep or not kind or not name or "/" in name:
        fail(f"bad workload {text!r}: expected KIND/NAME, e.g. deployment/web")
    k = kind.lower()
    for r in RESOURCES:
        if r.key_resource not in WORKLOADS:
            continue
        if k in (r.kind.lower(), r.singular, r.plural, *r.short_names, f"{r.plural}.{r.group}"):
            return r.key_resource, r.kind, name
    kinds = ", ".join(r.singular for r in RESOURCES if r.key_resource in WORKLOADS)
    fail(f"{kind!r} is not a workload kind (one of: {kinds})")


@app.command("locate")
def locate_cmd(
    workload: Annotated[str, typer.Argument(help="KIND/NAME, e.g. deployment/web")],
    dir: DirOpt,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")] = "default",
    node: Annotated[
        str | None, typer.Option("--node", help="Resolve through this node (default: first).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Where a workload's replicas run: its record and their leases, read from the DHT."""
    import time

    from hyperion.net import wire_pb2

    resource, kind, name = parse_workload(workload)
    req = wire_pb2.LocateRequest(resource=resource, namespace=namespace, name=name)
    reply = ask_node(dir, node, "Locate", request=req, timeout_s=15.0)
    what = f"{kind.lower()} {namespace}/{name}"
    if not reply.found:
        fail(
            f"no record of {what} in the DHT (asked {reply.name}): no such workload, "
            "or its custodian has not published it yet"
        )
    now = time.time()
    w, rec = reply.workload, reply.record

    def record(r: Any) -> dict[str, object]:
        return {
            "key": r.key,
            "author": r.author,
            "author_name": r.author_name,
            "version": r.version,
            "expires_at": r.expires_at,
        }

    rows: list[dict[str, Any]] = []
    for item in reply.leases:
        pl = item.placement
        lease = None
        if item.found:
            lease = {**record(item.record), "renewed_at": item.lease.renewed_at}
        rows.append(
            {
                "pod": pl.pod,
                "pod_uid": pl.pod_uid,
                "node": pl.node_name,
                "node_id": pl.node_id.hex(),
                "ready": pl.ready,
                "lease": lease,
            }
        )
    if as_json:
        out = {
            "resolved_by": {"name": reply.name, "node_id": reply.node_id},
            "workload": {
                "resource": w.resource,
                "namespace": w.namespace,
                "name": w.name,
                "uid": w.uid,
                "generation": w.generation,
                "desired": w.desired,
                "ready": w.ready,
            },
            "record": record(rec),
            "placements": rows,
        }
        print(json.dumps(out, indent=2))
        return
    custodian = rec.author_name or rec.author[:12]
    table = Table(
        title=f"{what}: {w.ready}/{w.desired} ready, custodian {custodian} "
        f"(record v{rec.version}, expires in {rec.expires_at - now:.0f} s; "
        f"resolved by {reply.name})"
    )
    for col in ("pod", "node", "ready", "lease", "renewed", "expires in"):
        table.add_column(col)
    for r in rows:
        lease = r["lease"]
        table.add_row(
            r["pod"],
            r["node"],
            "yes" if r["ready"] else "no",
            "[green]held[/]" if lease else "[red]missing[/]",
            f"{now - lease['renewed_at']:.1f} s ago" if lease else "-",
            f"{lease['expires_at'] - now:.1f} s" if lease else "-",
        )
    console.print(table)


# ------------------------------------------------------------------------------ sim


@sim_app.command("membership")
def sim_membership(
    nodes: Annotated[int, typer.Option("--nodes")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    duration: Annotated[float, typer.Option("--duration", help="Simulated seconds.")] = 60.0,
    crash_fraction: Annotated[float, typer.Option("--crash-fraction")] = 0.0,
    loss: Annotated[float, typer.Option("--loss", help="Per-message loss probability.")] = 0.0,
    profile: Annotated[str, typer.Option("--profile", help="lan | wan | local")] = "lan",
    start: Annotated[str, typer.Option("--start", help="formed | join")] = "formed",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """SWIM on the simulated network with measured inter-region RTTs."""
    from hyperion.sim.membership_run import MembershipExperiment

    try:
        exp = MembershipExperiment(
            nodes=nodes,
            seed=seed,
            duration_s=duration,
            crash_fraction=crash_fraction,
            loss=loss,
            profile=profile,
            start=start,
        )
    except ValueError as e:
        fail(str(e))
    _print_result(exp.run(), f"SWIM simulation, {nodes} nodes, seed {seed}", as_json)


@sim_app.command("dht")
def sim_dht(
    nodes: Annotated[int, typer.Option("--nodes")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    lookups: Annotated[int, typer.Option("--lookups")] = 1000,
    dead_fraction: Annotated[
        float, typer.Option("--dead-fraction", help="Crashed, not yet detected.")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Kademlia lookups on the simulated network with measured inter-region RTTs."""
    from hyperion.sim.dht_run import DhtExperiment

    try:
        exp = DhtExperiment(nodes=nodes, seed=seed, lookups=lookups, dead_fraction=dead_fraction)
    except ValueError as e:
        fail(str(e))
    _print_result(exp.run(), f"Kademlia simulation, {nodes} nodes, seed {seed}", as_json)


@sim_app.command("gossip")
def sim_gossip(
    nodes: Annotated[int, typer.Option("--nodes")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    messages: Annotated[int, typer.Option("--messages", help="Messages published.")] = 20,
    loss: Annotated[float, typer.Option("--loss", help="Per-message loss probability.")] = 0.0,
    peers: Annotated[int, typer.Option("--peers", help="Connections per node (mean).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Gossip pub/sub (one topic, every node subscribed) with measured inter-region RTTs."""
    from hyperion.sim.gossip_run import GossipExperiment

    try:
        exp = GossipExperiment(nodes=nodes, seed=seed, messages=messages, loss=loss, peers=peers)
    except ValueError as e:
        fail(str(e))
    _print_result(exp.run(), f"gossip simulation, {nodes} nodes, seed {seed}", as_json)


@sim_app.command("catalog")
def sim_catalog(
    nodes: Annotated[int, typer.Option("--nodes")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    writes: Annotated[int, typer.Option("--writes", help="Writes and deletes before the heal.")] = (
        1000
    ),
    loss: Annotated[float, typer.Option("--loss", help="Per-message loss probability.")] = 0.0,
    partition_at: Annotated[
        float, typer.Option("--partition-at", help="When the mesh splits in two (s).")
    ] = 10.0,
    heal_at: Annotated[float, typer.Option("--heal-at", help="When the halves reconnect (s).")] = (
        30.0
    ),
    keys: Annotated[int, typer.Option("--keys", help="Objects the writes are spread over.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Object-catalog anti-entropy through a partition and its heal, measured RTTs."""
    from hyperion.sim.catalog_run import CatalogExperiment

    try:
        exp = CatalogExperiment(
            nodes=nodes,
            seed=seed,
            writes=writes,
            loss=loss,
            partition_at=partition_at,
            heal_at=heal_at,
            keys=keys,
        )
    except ValueError as e:
        fail(str(e))
    _print_result(exp.run(), f"catalog simulation, {nodes} nodes, seed {seed}", as_json)


def _print_result(result: dict[str, object], title: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value")
    for k, v in result.items():
        table.add_row(k, json.dumps(v))
    console.print(table)


def main() -> None:
    """Entry point: click reports usage errors itself (exit 2); ours print one line, exit 2."""
    try:
        app()
    except (CliError, IdentityError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(USAGE_EXIT)


@sim_app.command("placement")
def sim_placement(
    nodes: Annotated[int, typer.Option("--nodes")] = 1000,
    workloads: Annotated[int, typer.Option("--workloads", help="Workloads (one replica each).")] = (
        2000
    ),
    seed: Annotated[int, typer.Option("--seed")] = 1,
    rate: Annotated[float, typer.Option("--rate", help="Arrivals per virtual second.")] = 2000.0,
    sample: Annotated[int, typer.Option("--sample", help="Bidders asked per tender (d).")] = 8,
    loss: Annotated[float, typer.Option("--loss", help="Per-message loss probability.")] = 0.0,
    dead_fraction: Annotated[
        float, typer.Option("--dead-fraction", help="Nodes dead and not yet detected.")
    ] = 0.0,
    policy: Annotated[str, typer.Option("--policy", help="rules or rl.")] = "rules",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Tender -> bid -> award for every workload, measured RTTs, with overcommit and
    hard-constraint checkers."""
    from hyperion.sim.placement_run import PlacementExperiment

    try:
        exp = PlacementExperiment(
            nodes=nodes,
            workloads=workloads,
            seed=seed,
            rate=rate,
            sample=sample,
            loss=loss,
            dead_fraction=dead_fraction,
            policy=policy,
        )
    except ValueError as e:
        fail(str(e))
    _print_result(exp.run(), f"placement simulation, {nodes} nodes, seed {seed}", as_json)
