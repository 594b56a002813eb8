"""Enrollment rules: what a joining node proves, what the issuer checks, what the joiner checks.

A node that has no CA key gets its SVID from a node that has one (``hyperion.net.enroll``
carries the bytes). This module owns the rules, as pure functions over bytes:

* the joiner's proof: a PKCS#10 CSR for its new SVID key (self-signed, so it proves that
  key), and an Ed25519 signature by its node key over ``PROOF_CONTEXT + csr`` (so it
  proves the node key whose hash is the node id in the SPIFFE ID it is asking for);
* the issuer's checks of a request: sizes, node name, both signatures; the join token
  itself is redeemed by ``hyperion.identity.tokens``;
* the joiner's checks: the CA the server presents must match the pinned ``sha256:``
  hash (``ca.ca_cert_hash``) and must have issued the server's certificate, before the
  token is sent; the SVID that comes back must chain to that CA, carry the expected
  SPIFFE ID and certify the key the joiner holds.

No sockets, files or clocks here: ``now`` is passed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hyperion.identity.ca import (
    Svid,
    ca_cert_hash,
    parse_ca_hash,
    spiffe_id_from_cert,
    verify_chain,
)
from hyperion.identity.errors import EnrollError, IdentityError
from hyperion.identity.keys import NodeKey, node_id_from_public_key, verify_signature
from hyperion.identity.spiffe import node_spiffe_id

PROOF_CONTEXT = b"hyperion-enroll-v1\x00"  # domain separation for the node-key signature
# Limits on what an unauthenticated client may send. A P-256 CSR is ~250 bytes DER and a
# token 37 characters (tokens.TOKEN_PREFIX + 43); the limits leave room, nothing more.
CSR_BYTES_MAX = 4096
TOKEN_CHARS_MAX = 256
NODE_KEY_BYTES = 32
PROOF_BYTES = 64
# Node names become directory names (the CLI's rule): DNS-label-like, never a path.
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class EnrollClaim:
    """A checked enrollment request: who the joiner says it is and the key to certify.

    ``node_id`` is derived from the node key the joiner proved it holds; ``public_key``
    is the SVID key its CSR proved it holds.
    """

    name: str
    node_id: str
    public_key: ec.EllipticCurvePublicKey

    def spiffe_id(self, trust_domain: str) -> str:
        """The SPIFFE ID the SVID is issued for: ``spiffe://TD/node/<node id>``."""
        return node_spiffe_id(trust_domain, self.node_id)


def make_csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A DER CSR for ``key``. The issuer reads only its key and its signature."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Hyperion")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def node_key_proof(node_key: NodeKey, csr_der: bytes) -> bytes:
    """The node key's signature that binds the CSR to the node id."""
    return node_key.sign(PROOF_CONTEXT + csr_der)


def csr_public_key(csr_der: bytes) -> ec.EllipticCurvePublicKey:
    """The P-256 key of a DER CSR whose self-signature verifies; EnrollError otherwise."""
    if not isinstance(csr_der, bytes) or not csr_der:
        raise EnrollError("the CSR is empty")
    if len(csr_der) > CSR_BYTES_MAX:
        raise EnrollError(f"the CSR is {len(csr_der)} bytes, more than {CSR_BYTES_MAX}")
    try:
        csr = x509.load_der_x509_csr(csr_der)
        valid = csr.is_signature_valid
        key = csr.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise EnrollError("the CSR is not a valid DER PKCS#10 request") from e
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise EnrollError("the CSR's key is not an ECDSA P-256 key")
    if not valid:
        raise EnrollError("the CSR's signature does not verify")
    return key


def check_enroll_request(
    *, token: str, name: str, node_key: bytes, csr: bytes, proof: bytes
) -> EnrollClaim:
    """Check everything in an enrollment request except whether the token is redeemable.

    Raises EnrollError with a message meant for the joiner. The caller redeems the token
    only after this passes, so a malformed request never uses up a token.
    """
    if not token or len(token) > TOKEN_CHARS_MAX:
        raise EnrollError(f"the join token must be 1 to {TOKEN_CHARS_MAX} characters")
    if not NAME_RE.match(name):
        raise EnrollError(
            f"bad node name {name[:80]!r}: use lowercase letters, digits, '.', '-', '_' (max 63)"
        )
    if len(node_key) != NODE_KEY_BYTES:
        raise EnrollError(f"the node key must be a {NODE_KEY_BYTES}-byte Ed25519 public key")
    public_key = csr_public_key(csr)
    if len(proof) != PROOF_BYTES or not verify_signature(node_key, PROOF_CONTEXT + csr, proof):
        raise EnrollError("the node key's signature over the CSR does not verify")
    return EnrollClaim(name=name, node_id=node_id_from_public_key(node_key), public_key=public_key)


def check_ttl(requested_s: float, max_s: float) -> float:
    """The SVID lifetime to issue: the requested one capped at the issuer's, 0 = the issuer's."""
    if not math.isfinite(requested_s) or requested_s < 0:
        raise EnrollError(f"the requested SVID TTL {requested_s} is not a positive number")
    return max_s if requested_s == 0 else min(requested_s, max_s)


def pin_ca(chain_der: Sequence[bytes], ca_hash: str, *, server: str, now: float) -> bytes:
    """The PEM CA certificate in a server's TLS chain that matches ``ca_hash``.

    The server's own certificate (``chain_der[0]``) must have been issued by that CA and
    be valid at ``now``; EnrollError otherwise.
    """
    pin = parse_ca_hash(ca_hash)
    certs: list[x509.Certificate] = []
    for der in chain_der:
        try:
            certs.append(x509.load_der_x509_certificate(bytes(der)))
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    if not certs:
        raise EnrollError(f"{server} presented no certificate")
    for cert in certs[1:]:
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if ca_cert_hash(pem) != pin:
            continue
        leaf = certs[0].public_bytes(serialization.Encoding.PEM)
        try:
            verify_chain(leaf, pem, now=now)
        except IdentityError as e:
            raise EnrollError(
                f"{server} presented the pinned CA but its own certificate does not "
                f"chain to it: {e}"
            ) from e
        return pem
    # The hash the server did present is not shown: copying it would defeat the pin.
    raise EnrollError(
        f"the CA of {server} does not match --ca-hash {pin}; the join token was not sent"
    )


def check_issued(
    cert_pem: bytes,
    bundle_pem: bytes,
    pinned_ca_pem: bytes,
    *,
    key: ec.EllipticCurvePrivateKey,
    spiffe_id: str,
    now: float,
) -> Svid:
    """Check an SVID the issuer returned and pair it with our key; EnrollError otherwise.

    It must chain to a CA of ``pinned_ca_pem`` (the pinned CA when enrolling, the current
    bundle when renewing), name ``spiffe_id`` and certify ``key``; the returned bundle,
    which becomes the node's, must contain that CA.
    """
    try:
        got = verify_chain(cert_pem, pinned_ca_pem, now=now)
        cert = x509.load_pem_x509_certificate(cert_pem)
        bundle = x509.load_pem_x509_certificates(bundle_pem)
    except (IdentityError, ValueError) as e:
        raise EnrollError(f"the issuer returned an unusable SVID: {e}") from e
    if got != spiffe_id:
        raise EnrollError(f"the issuer returned an SVID for {got}, not {spiffe_id}")
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*fmt) != key.public_key().public_bytes(*fmt):
        raise EnrollError("the issuer returned an SVID for a key other than ours")
    if not any(ca in bundle for ca in x509.load_pem_x509_certificates(pinned_ca_pem)):
        raise EnrollError("the issuer's trust bundle does not contain the CA we trust")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Svid(
        spiffe_id=spiffe_id_from_cert(cert_pem),
        cert_pem=cert_pem,
        key_pem=key_pem,
        bundle_pem=bundle_pem,
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
    )
