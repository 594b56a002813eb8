"""Dapr's HTTP vocabulary for the sidecar: opt-in annotations, app-ids, error bodies. Pure.

Owns what a pod says to get a sidecar (the Dapr Kubernetes injector's annotations,
parsed into a ``SidecarSpec``), the rules for app-ids and invocation targets
(``app-id`` or ``app-id.namespace``), and the error a Dapr runtime answers with:
``DaprError`` carries the HTTP status and the ``{"errorCode": "ERR_…", "message": …}``
body, and one constructor per case names the code and status Dapr uses for it (Dapr's
``pkg/messages``), so the HTTP side never makes up codes. No I/O, no clocks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENABLED = "dapr.io/enabled"
# Dapr's API token (docs.dapr.io, "Enable API token authentication in Dapr"): when the
# sidecar has one, every request must carry it in this header; the app-side token
# (APP_API_TOKEN) travels in the same header from the sidecar to the app.
TOKEN_HEADER = "dapr-api-token"
API_TOKEN_ENV = "DAPR_API_TOKEN"
APP_TOKEN_ENV = "APP_API_TOKEN"
# What Dapr answers without the right token: 401 and this plain-text body (Go's
# http.Error in daprd's APITokenAuthMiddleware), not an ``{"errorCode"}`` body.
UNAUTHORIZED_TEXT = "invalid api token\n"
APP_ID = "dapr.io/app-id"
APP_PORT = "dapr.io/app-port"
# Dapr names an app-id like a DNS label (its Kubernetes service is ``<app-id>-dapr``);
# a dot would be read as the namespace of an invocation target, ``||`` is the key
# separator of state.
APP_ID_MAX_CHARS = 60
_APP_ID = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$")


class SidecarConfigError(ValueError):
    """A pod asks for a sidecar with bad annotations; the message names the annotation."""


@dataclass(frozen=True, slots=True)
class SidecarSpec:
    """What a pod's sidecar serves: its app-id, namespace and the app's port (0: none)."""

    namespace: str
    pod: str
    uid: str
    app_id: str
    app_port: int = 0


def app_id_error(app_id: str) -> str | None:
    """Why ``app_id`` cannot be an app-id, or None."""
    if not app_id or len(app_id) > APP_ID_MAX_CHARS or not _APP_ID.match(app_id):
        return (
            f"app-id {app_id!r}: letters, digits, '-' and '_' (not first or last), "
            f"at most {APP_ID_MAX_CHARS} characters"
        )
    return None


def _dict(x: object) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def sidecar_spec(pod: Mapping[str, Any]) -> SidecarSpec | None:
    """The sidecar a Pod object asks for (None: ``dapr.io/enabled`` is not ``"true"``).

    The app-id defaults to the name of the pod's controller (the Deployment, Job …)
    and else to the pod's own name, as Dapr's injector defaults it. Raises
    ``SidecarConfigError`` for a bad app-id or app-port.
    """
    meta = _dict(pod.get("metadata"))
    ann = _dict(meta.get("annotations"))
    if str(ann.get(ENABLED, "")).lower() != "true":
        return None
    name = str(meta.get("name") or "")
    ns = str(meta.get("namespace") or "default")
    app_id = ann.get(APP_ID)
    if app_id is None:
        owners = [_dict(r) for r in meta.get("ownerReferences") or []]
        ctl = next((r for r in owners if r.get("controller")), owners[0] if owners else {})
        app_id = ctl.get("name") or name
    app_id = str(app_id)
    err = app_id_error(app_id)
    if err is not None:
        raise SidecarConfigError(f"annotation {APP_ID}: {err}")
    port_text = ann.get(APP_PORT)
    port = 0
    if port_text is not None and str(port_text) != "":
        try:
            port = int(str(port_text))
        except ValueError:
            port = -1
        if not 1 <= port <= 65535:
            raise SidecarConfigError(f"annotation {APP_PORT}: {port_text!r} is not a port 1-65535")
    return SidecarSpec(ns, name, str(meta.get("uid") or f"{ns}/{name}"), app_id, port)


def token_exempt(method: str, raw_path: str) -> bool:
    """Whether a request needs no API token: as daprd, only ``GET /v1.0/healthz`` and
    ``GET /v1.0/healthz/outbound`` (the exact path, slashes trimmed; the query plays no
    part, unlike Dapr before 1.10.9/1.11.2, GHSA-59m6-82qm-vqgj)."""
    return method == "GET" and raw_path.strip("/") in ("v1.0/healthz", "v1.0/healthz/outbound")


def declared_env(pod: Mapping[str, Any], name: str) -> str | None:
    """The literal value a container of ``pod`` sets for ``name`` in its ``env`` (the
    first container that sets one), or None. The pod's own ``env`` wins over what the
    node adds, so a pod that sets its own ``DAPR_API_TOKEN`` gets a sidecar that
    expects exactly that token."""
    spec = _dict(pod.get("spec"))
    for c in spec.get("containers") or []:
        for e in _dict(c).get("env") or []:
            e = _dict(e)
            if e.get("name") == name and isinstance(e.get("value"), str) and e["value"]:
                return str(e["value"])
    return None


def invoke_target(target: str, caller_namespace: str) -> tuple[str, str] | None:
    """``(app_id, namespace)`` of an invocation target ``app-id`` or ``app-id.namespace``
    (None if it is neither)."""
    app_id, dot, ns = target.partition(".")
    if not dot:
        ns = caller_namespace
    if app_id_error(app_id) is not None or not ns or "." in ns or "/" in ns:
        return None
    return app_id, ns


# ------------------------------------------------------------------------- errors


class DaprError(Exception):
    """An error answered as Dapr does: HTTP ``status`` and ``{"errorCode", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> bytes:
        return json.dumps({"errorCode": self.code, "message": self.message}).encode()


def malformed(detail: str) -> DaprError:
    return DaprError(400, "ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {detail}")


def bad_key(key: str) -> DaprError:
    message = f"input key/keyPrefix '{key}' can't contain '||'"
    return DaprError(400, "ERR_MALFORMED_REQUEST", message)


def store_not_found(store: str) -> DaprError:
    return DaprError(400, "ERR_STATE_STORE_NOT_FOUND", f"state store {store} is not found")


def transactions_not_supported(store: str) -> DaprError:
    return DaprError(
        500, "ERR_STATE_STORE_NOT_SUPPORTED", f"state store {store} doesn't support transaction"
    )


def query_not_supported(store: str) -> DaprError:
    return DaprError(
        500, "ERR_STATE_STORE_NOT_SUPPORTED", f"state store {store} doesn't support query"
    )


def etag_mismatch(code: str, message: str) -> DaprError:
    """``code``: ``ERR_STATE_SAVE`` or ``ERR_STATE_DELETE`` (Dapr answers 409)."""
    return DaprError(409, code, f"possible etag mismatch. error from state store: {message}")


def etag_invalid(code: str, etag: str) -> DaprError:
    return DaprError(400, code, f"invalid etag value: {etag!r}")


def save_failed(store: str, detail: str) -> DaprError:
    return DaprError(500, "ERR_STATE_SAVE", f"failed saving state in state store {store}: {detail}")


def store_failed(code: str, store: str, detail: str) -> DaprError:
    """The store could not answer (``ERR_STATE_GET``/``SAVE``/``DELETE``, 500)."""
    verb = {"ERR_STATE_GET": "getting", "ERR_STATE_DELETE": "deleting"}.get(code, "saving")
    return DaprError(500, code, f"failed {verb} state in state store {store}: {detail}")


def direct_invoke(app_id: str, detail: str) -> DaprError:
    return DaprError(500, "ERR_DIRECT_INVOKE", f"failed to invoke, id: {app_id}, err: {detail}")


def not_found(path: str) -> DaprError:
    return DaprError(404, "ERR_NOT_FOUND", f"{path} is not found")


def method_not_allowed(method: str, path: str) -> DaprError:
    return DaprError(405, "ERR_METHOD_NOT_ALLOWED", f"method {method} is not allowed on {path}")
