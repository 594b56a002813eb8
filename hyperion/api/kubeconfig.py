"""Kubeconfig files for Hyperion meshes.

A kubeconfig names one cluster per node (every node serves the API; there is no
central server), one user with a user SVID (``spiffe://TD/user/<name>``, subject CN the
name and O the groups, which is how Kubernetes reads client certificates) and one
context per node (``node-1``, ``node-2``, …) with the first as current context.
Certificates and keys are embedded (``*-data`` fields), so the file is self-contained;
it is written 0600 because it holds a private key.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hyperion.identity._fs import atomic_write
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.spiffe import user_spiffe_id

ADMIN_GROUPS = ("system:masters",)
VIEW_GROUPS = ("hyperion:view",)
ROLES = {"admin": ADMIN_GROUPS, "view": VIEW_GROUPS}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def build(
    ca: CertificateAuthority,
    servers: Sequence[tuple[str, str]],
    *,
    user: str,
    role: str = "admin",
    ttl_s: float = 24 * 3600.0,
    mesh: str = "hyperion",
) -> dict[str, Any]:
    """A kubeconfig for ``user`` with one context per ``(node name, https address)``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (choose {', '.join(ROLES)})")
    if not servers:
        raise ValueError("the mesh has no node with an API address yet")
    svid = ca.issue_svid(
        user_spiffe_id(ca.trust_domain, user),
        ttl_s=ttl_s,
        common_name=user,
        groups=ROLES[role],
    )
    clusters, contexts = [], []
    for name, addr in servers:
        cluster = f"{mesh}-{name}"
        clusters.append(
            {
                "name": cluster,
                "cluster": {
                    "server": f"https://{addr}",
                    "certificate-authority-data": _b64(ca.bundle_pem),
                    "tls-server-name": "localhost",
                },
            }
        )
        contexts.append({"name": name, "context": {"cluster": cluster, "user": user}})
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": clusters,
        "contexts": contexts,
        "current-context": servers[0][0],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(svid.cert_pem),
                    "client-key-data": _b64(svid.key_pem),
                },
            }
        ],
    }


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)


def write(path: Path, config: dict[str, Any]) -> None:
    atomic_write(path, dump(config).encode(), mode=0o600)


def client_ssl(path: Path) -> ssl.SSLContext:
    """A client TLS context for the first user and cluster of the kubeconfig at ``path``.

    The certificate and key are written next to it (0600: ssl loads them from files).
    Host names are not checked: SVIDs name 127.0.0.1 and localhost, addresses vary.
    """
    cfg = yaml.safe_load(path.read_text())
    user = cfg["users"][0]["user"]
    ca = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    cert, key = path.with_name(f"{path.name}.cert.pem"), path.with_name(f"{path.name}.key.pem")
    atomic_write(cert, base64.b64decode(user["client-certificate-data"]), mode=0o600)
    atomic_write(key, base64.b64decode(user["client-key-data"]), mode=0o600)
    ctx = ssl.create_default_context(cadata=ca)
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, key)
    return ctx
