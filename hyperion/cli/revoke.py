"""``hyperion ca revoke`` and ``hyperion ca revocations``: the CA side of revocation.

Owns resolving what the operator names (a SPIFFE ID, ``user/NAME``, ``node/ID``, a node
id or the name of a node of DIR) to a SPIFFE ID, the refusals (the CLI's own identity,
the only node of DIR), signing the record into the CA directory's list and handing it
to the running nodes of DIR over the admin API. The record itself is
``hyperion.identity.revocation``; its spread and enforcement belong to the nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from hyperion.identity import revocation
from hyperion.identity.ca import CertificateAuthority, Svid
from hyperion.identity.errors import IdentityError, RevocationError
from hyperion.identity.spiffe import node_spiffe_id, parse_spiffe_id, user_spiffe_id
from hyperion.net import wire_pb2

CLI_USER = "cli"  # the user SVID the CLI talks to nodes with (``cli_svid``)
HAND_OVER_TIMEOUT_S = 5.0
_NODE_ID = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class LocalNode:
    """A node of DIR as its ``node.json`` describes it."""

    name: str
    node_id: str
    mesh_addr: str
    pid: int


def node_infos(dir: Path) -> list[dict[str, Any]]:
    """The ``node.json`` of every node of DIR that has a readable one (running or not)."""
    out = []
    for path in sorted(dir.glob("nodes/*/node.json")):
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(path.read_text())
            if isinstance(info, dict):
                out.append(info)
    return out


def local_nodes(dir: Path) -> list[LocalNode]:
    """Every node of DIR with a readable, complete ``node.json``, running or not."""
    out = []
    for info in node_infos(dir):
        with contextlib.suppress(ValueError, TypeError, KeyError):
            out.append(
                LocalNode(
                    str(info["name"]),
                    str(info["node_id"]),
                    str(info["mesh_addr"]),
                    int(info["pid"]),
                )
            )
    return out


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resolve_subject(ca: CertificateAuthority, text: str, nodes: list[LocalNode]) -> str:
    """The SPIFFE ID ``text`` names (see the module docstring); IdentityError if none."""
    td = ca.trust_domain
    text = text.strip()
    if text.startswith("spiffe://"):
        sid = parse_spiffe_id(text)
        if sid.trust_domain != td:
            raise IdentityError(f"{text} is not in this CA's trust domain {td}")
        return str(sid)
    kind, sep, rest = text.partition("/")
    if sep and kind == "user":
        return user_spiffe_id(td, rest)
    if sep and kind == "node":
        return node_spiffe_id(td, rest)
    if _NODE_ID.fullmatch(text):
        return node_spiffe_id(td, text)
    for n in nodes:
        if n.name == text:
            return node_spiffe_id(td, n.node_id)
    have = ", ".join(n.name for n in nodes) or "none"
    raise IdentityError(
        f"{text!r} is not a SPIFFE ID, user/NAME, node/ID, a node id or a node of this "
        f"directory (nodes: {have})"
    )


def refusal(ca: CertificateAuthority, subject: str, nodes: list[LocalNode]) -> str | None:
    """Why revoking ``subject`` is refused without --force, or None."""
    if subject == user_spiffe_id(ca.trust_domain, CLI_USER):
        return f"{subject} is the identity this CLI uses to reach the nodes"
    sid = parse_spiffe_id(subject)
    if sid.kind == "node":
        others = [n for n in nodes if n.node_id != sid.name]
        if nodes and not others:
            return f"{subject} is the only node of this directory: nothing would be left to run"
    return None


async def _hand_over(
    nodes: list[LocalNode], svid: Svid, record: bytes
) -> list[tuple[LocalNode, str | None]]:
    from hyperion.net.transport import call_admin

    async def one(n: LocalNode) -> tuple[LocalNode, str | None]:
        try:
            reply = await call_admin(
                n.mesh_addr,
                svid,
                "Revoke",
                HAND_OVER_TIMEOUT_S,
                request=wire_pb2.RevokeRequest(record=record),
            )
        except grpc.aio.AioRpcError as e:
            return n, e.details() or e.code().name
        return n, f"ok: enforces {reply.known}"

    return list(await asyncio.gather(*(one(n) for n in nodes)))


def revoke(
    dir: Path,
    target: str,
    *,
    reason: str,
    serial: str | None,
    ttl_s: float | None,
    force: bool,
    svid: Svid,
) -> tuple[revocation.Revocation, list[tuple[str, str | None]]]:
    """Sign, store in DIR's list and hand to the running nodes of DIR (except the revoked).

    Returns the record and, per node told, its name and answer (None: not running).
    """
    ca = CertificateAuthority.load(dir)
    nodes = local_nodes(dir)
    subject = resolve_subject(ca, target, nodes)
    why = refusal(ca, subject, nodes)
    if why is not None and not force:
        raise IdentityError(f"refusing to revoke: {why} (--force to revoke anyway)")
    rec = revocation.sign(ca, subject, reason=reason, serial=serial, ttl_s=ttl_s)
    revocation.add_to_list(dir, rec, ca.bundle_pem)
    sid = parse_spiffe_id(subject)
    told = [
        n
        for n in nodes
        if not (sid.kind == "node" and n.node_id == sid.name) and _running(n.pid) and n.mesh_addr
    ]
    answers = asyncio.run(_hand_over(told, svid, rec.to_bytes())) if told else []
    return rec, [(n.name, a) for n, a in answers]


def listed(dir: Path) -> list[revocation.Revocation]:
    """The records in DIR's list (verified against DIR's CA)."""
    ca = CertificateAuthority.load(dir)
    try:
        return revocation.read_list(dir, ca.bundle_pem)
    except RevocationError as e:
        raise IdentityError(str(e)) from None


def user_revoked(dir: Path, ca: CertificateAuthority, user: str) -> str | None:
    """Why ``hyperion kubeconfig`` must not issue for ``user`` (revoked in DIR), or None."""
    try:
        subject = user_spiffe_id(ca.trust_domain, user)
        rec = revocation.RevocationList(revocation.read_list(dir, ca.bundle_pem)).revoked(subject)
    except IdentityError as e:
        return str(e)
    if rec is None:
        return None
    return f"{subject} is revoked ({rec.reason or 'no reason given'}): choose another user name"
