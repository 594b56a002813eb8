"""Service invocation for the sidecar: which replica serves an app-id, and what a
forwarded call carries. Pure.

Owns the choice of a target pod for ``/v1.0/invoke/{app-id}/method/{method}`` (a
Running, ready, undeleted pod of that app-id in that namespace: one on this node if
there is one, else one of the others at random, from an injected ``random.Random``),
the path a call takes to the node that runs the pod (``FORWARD_PREFIX``, served on
every node's mutual-TLS API for node identities only) and the headers passed along
(all but hop-by-hop ones). The HTTP legs are ``sidecar.py``'s.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from hyperion.workplane.dapr import SidecarConfigError, sidecar_spec

# ``{METHOD} /sidecar/v1/invoke/<namespace>/<pod>/<method…>?<query>`` on a node's API.
FORWARD_PREFIX = "/sidecar/v1/invoke/"
CALLER_APP_ID = "dapr-caller-app-id"
CALLER_NAMESPACE = "dapr-caller-namespace"
CALLEE_APP_ID = "dapr-callee-app-id"
# Set by the node that runs the target when the failure is its own (pod gone, app not
# reachable), not an answer from the app: the calling sidecar turns it into Dapr's
# ERR_DIRECT_INVOKE.
FORWARD_ERROR = "hyperion-sidecar-error"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True, slots=True)
class Target:
    """One replica that can serve a call."""

    namespace: str
    pod: str
    uid: str
    node: str
    app_port: int


def _dict(x: object) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def serving(pod: Mapping[str, Any]) -> bool:
    """Running, Ready and not being deleted."""
    meta, status = _dict(pod.get("metadata")), _dict(pod.get("status"))
    if meta.get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    conds = [_dict(c) for c in status.get("conditions") or []]
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def targets(pods: Iterable[Mapping[str, Any]], app_id: str, namespace: str) -> list[Target]:
    """The pods of ``pods`` that serve ``app_id`` in ``namespace``, by name."""
    out = []
    for pod in pods:
        try:
            spec = sidecar_spec(pod)
        except SidecarConfigError:
            continue
        if spec is None or spec.app_id != app_id or spec.namespace != namespace:
            continue
        node = _dict(pod.get("spec")).get("nodeName")
        if not node or not serving(pod):
            continue
        out.append(Target(spec.namespace, spec.pod, spec.uid, str(node), spec.app_port))
    return sorted(out, key=lambda t: t.pod)


def choose(found: list[Target], node_name: str, rng: random.Random) -> Target | None:
    """A replica on ``node_name`` if any, else any other; None if there is none."""
    local = [t for t in found if t.node == node_name]
    pool = local or found
    return rng.choice(pool) if pool else None


def forward_path(namespace: str, pod: str, method: str) -> str:
    """The path of a forwarded call; ``method`` is kept as the caller escaped it."""
    return f"{FORWARD_PREFIX}{quote(namespace, safe='')}/{quote(pod, safe='')}/{method}"


def parse_forward_path(raw_path: str) -> tuple[str, str, str] | None:
    """``(namespace, pod, method)`` of a forwarded call's raw path, or None."""
    if not raw_path.startswith(FORWARD_PREFIX):
        return None
    parts = raw_path[len(FORWARD_PREFIX) :].split("/", 2)
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return None
    return unquote(parts[0]), unquote(parts[1]), parts[2]


def passed_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers that travel with a call or its answer (hop-by-hop ones dropped)."""
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
