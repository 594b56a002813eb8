"""SPIFFE IDs: building, parsing and validating the URIs that name principals in the mesh.

Owns the ID grammar used by Hyperion, a strict subset of the SPIFFE spec:
``spiffe://<trust-domain>/node/<node-id>``, ``spiffe://<trust-domain>/user/<name>`` and
``spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`` (a workload).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hyperion.identity.errors import IdentityError

_SCHEME_PREFIX = "spiffe://"
_MAX_ID_LENGTH = 2048
_MAX_TRUST_DOMAIN_LENGTH = 255
_TRUST_DOMAIN_RE = re.compile(r"[a-z0-9._-]+")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._-]+")

KIND_NODE = "node"
KIND_USER = "user"
KIND_WORKLOAD = "workload"


@dataclass(frozen=True, slots=True)
class SpiffeId:
    """A parsed SPIFFE ID; ``name`` is ``"<ns>/<sa>"`` for workloads."""

    trust_domain: str
    kind: str
    name: str

    def __str__(self) -> str:
        if self.kind == KIND_WORKLOAD:
            ns, _, sa = self.name.partition("/")
            return f"{_SCHEME_PREFIX}{self.trust_domain}/ns/{ns}/sa/{sa}"
        return f"{_SCHEME_PREFIX}{self.trust_domain}/{self.kind}/{self.name}"


def validate_trust_domain(td: str) -> str:
    """Return ``td`` if it is a valid SPIFFE trust domain name, else raise IdentityError."""
    if not isinstance(td, str) or not td:
        raise IdentityError("the trust domain is empty")
    if len(td) > _MAX_TRUST_DOMAIN_LENGTH:
        raise IdentityError(f"trust domain is longer than {_MAX_TRUST_DOMAIN_LENGTH} characters")
    if _TRUST_DOMAIN_RE.fullmatch(td) is None:
        if td.isascii() and _TRUST_DOMAIN_RE.fullmatch(td.lower()) is not None:
            raise IdentityError(f"trust domain {td!r} must be lowercase")
        if ":" in td:
            raise IdentityError(f"trust domain {td!r} must not contain a port")
        if "@" in td:
            raise IdentityError(f"trust domain {td!r} must not contain user info")
        raise IdentityError(
            f"trust domain {td!r} may only contain lowercase letters, digits, '.', '-' and '_'"
        )
    return td


def _validate_segment(uri: str, segment: str) -> None:
    if not segment:
        raise IdentityError(f"SPIFFE ID {uri!r} has an empty path segment")
    if segment in (".", ".."):
        raise IdentityError(f"SPIFFE ID {uri!r} has a '.' or '..' path segment")
    if _SEGMENT_RE.fullmatch(segment) is None:
        raise IdentityError(
            f"SPIFFE ID {uri!r} has a path segment with characters other than "
            "letters, digits, '.', '-' and '_'"
        )


def parse_spiffe_id(uri: str) -> SpiffeId:
    """Parse and validate a node, user or workload SPIFFE ID; raise IdentityError if bad."""
    if not isinstance(uri, str):
        raise IdentityError(f"SPIFFE ID must be a string, not {type(uri).__name__}")
    if not uri:
        raise IdentityError("the SPIFFE ID is empty")
    if len(uri) > _MAX_ID_LENGTH:
        raise IdentityError(f"SPIFFE ID is longer than {_MAX_ID_LENGTH} characters")
    if not uri.startswith(_SCHEME_PREFIX):
        raise IdentityError(f"{uri!r} is not a SPIFFE ID (it must start with 'spiffe://')")
    if "?" in uri:
        raise IdentityError(f"SPIFFE ID {uri!r} must not contain a query")
    if "#" in uri:
        raise IdentityError(f"SPIFFE ID {uri!r} must not contain a fragment")
    rest = uri[len(_SCHEME_PREFIX) :]
    td, sep, path = rest.partition("/")
    if not td:
        raise IdentityError(f"SPIFFE ID {uri!r} has no trust domain")
    try:
        validate_trust_domain(td)
    except IdentityError as e:
        raise IdentityError(f"SPIFFE ID {uri!r} is invalid: {e}") from None
    if not sep or not path:
        raise IdentityError(f"SPIFFE ID {uri!r} has no path naming a node, user or workload")
    segments = path.split("/")
    for segment in segments:
        _validate_segment(uri, segment)
    if len(segments) == 2 and segments[0] in (KIND_NODE, KIND_USER):
        return SpiffeId(trust_domain=td, kind=segments[0], name=segments[1])
    if len(segments) == 4 and segments[0] == "ns" and segments[2] == "sa":
        return SpiffeId(trust_domain=td, kind=KIND_WORKLOAD, name=f"{segments[1]}/{segments[3]}")
    raise IdentityError(
        f"SPIFFE ID {uri!r} must have the path /node/<id>, /user/<name> or /ns/<ns>/sa/<sa>"
    )


def node_spiffe_id(trust_domain: str, node_id: str) -> str:
    """Return ``spiffe://<trust_domain>/node/<node_id>`` (validated)."""
    validate_trust_domain(trust_domain)
    uri = f"{_SCHEME_PREFIX}{trust_domain}/{KIND_NODE}/{node_id}"
    if not isinstance(node_id, str):
        raise IdentityError(f"{node_id!r} is not a valid SPIFFE ID path segment")
    _validate_segment(uri, node_id)
    parse_spiffe_id(uri)
    return uri


def user_spiffe_id(trust_domain: str, name: str) -> str:
    """Return ``spiffe://<trust_domain>/user/<name>`` (validated)."""
    validate_trust_domain(trust_domain)
    uri = f"{_SCHEME_PREFIX}{trust_domain}/{KIND_USER}/{name}"
    if not isinstance(name, str):
        raise IdentityError(f"{name!r} is not a valid SPIFFE ID path segment")
    _validate_segment(uri, name)
    parse_spiffe_id(uri)
    return uri


def workload_spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """Return ``spiffe://<trust_domain>/ns/<namespace>/sa/<service_account>`` (validated)."""
    validate_trust_domain(trust_domain)
    if not isinstance(namespace, str) or not isinstance(service_account, str):
        raise IdentityError("a workload's namespace and service account must be strings")
    uri = f"{_SCHEME_PREFIX}{trust_domain}/ns/{namespace}/sa/{service_account}"
    _validate_segment(uri, namespace)
    _validate_segment(uri, service_account)
    parse_spiffe_id(uri)
    return uri
