"""Revocation records: CA-signed statements that an identity must stop working.

Owns the record (``Revocation``), its byte form and strict decoder, signing with the CA
key and verifying with the trust bundle alone, the in-memory set a node enforces
(``RevocationList``) and the CA directory's list (``revocations.json``). It does not
spread records (the mesh does: ``hyperion.mesh.node``) nor enforce them (the transport,
the admin and renewal services and the Kubernetes API consult a ``RevocationList``).

A record names a SPIFFE ID (a node or a user; workloads likewise) and optionally one
certificate serial (lowercase hex; empty = every certificate of that ID), when it was
revoked, why, and when it expires. ``expires_at`` 0 means never: the record is kept
until the CA directory's list is edited by hand. A finite expiry should lie past the
longest lifetime of a certificate the ID could still hold (node SVIDs: the issuer's
``--svid-ttl``; user certificates: the ``--ttl`` of ``hyperion kubeconfig``); after it,
the record is no longer enforced and is dropped from the CA's list at its next change.

Byte form: compact JSON with sorted keys, ASCII only, at most ``RECORD_BYTES_MAX``::

    {"expires_at":0,"reason":"...","revoked_at":1700000000.0,"serial":"",
     "sig":"<base64 DER ECDSA>","subject":"spiffe://td/node/<id>","v":1}

The signature covers ``SIGNING_TAG`` followed by the same JSON without ``sig``. The
decoder accepts exactly these keys with these types and raises RevocationError for
anything else; it never raises another exception (``tests/test_revocation.py`` checks
this with hypothesis). No pickle, no eval.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hyperion.identity import _fs
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.errors import IdentityError, RevocationError
from hyperion.identity.spiffe import parse_spiffe_id

REVOCATIONS_FILE = "revocations.json"  # in the CA directory
LOCK_FILE = "revocations.lock"
SIGNING_TAG = b"hyperion-revocation-v1\x00"
RECORD_BYTES_MAX = 4096  # a record is ~350 bytes; the reason is the only free text
REASON_CHARS_MAX = 256
SERIAL_HEX_MAX = 40  # X.509 serials are at most 20 octets (RFC 5280 §4.1.2.2)
SIG_BYTES_MAX = 80  # a DER ECDSA P-256 signature is at most 72 bytes
LIST_RECORDS_MAX = 100_000  # records a revocations.json may hold
_KEYS = frozenset({"v", "subject", "serial", "revoked_at", "expires_at", "reason", "sig"})
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Revocation:
    """One signed revocation (see the module docstring); ``sig`` is DER ECDSA."""

    subject: str
    serial: str
    revoked_at: float
    expires_at: float
    reason: str
    sig: bytes = b""

    @property
    def key(self) -> str:
        """A stable name for what is revoked (subject and serial): 32 hex digits."""
        return hashlib.sha256(f"{self.subject}#{self.serial}".encode()).hexdigest()[:32]

    def fields(self) -> dict[str, Any]:
        return {
            "v": 1,
            "subject": self.subject,
            "serial": self.serial,
            "revoked_at": self.revoked_at,
            "expires_at": self.expires_at,
            "reason": self.reason,
        }

    def signing_bytes(self) -> bytes:
        return SIGNING_TAG + _dump(self.fields())

    def to_bytes(self) -> bytes:
        d = self.fields()
        d["sig"] = base64.b64encode(self.sig).decode()
        return _dump(d)

    def expired(self, now: float) -> bool:
        return self.expires_at > 0 and now >= self.expires_at

    def covers(self, spiffe_id: str, serial: str | None) -> bool:
        """Whether this record revokes certificate ``serial`` (hex) of ``spiffe_id``."""
        if spiffe_id != self.subject:
            return False
        return not self.serial or (serial is not None and normalize_serial(serial) == self.serial)


def _dump(d: dict[str, Any]) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def normalize_serial(serial: str | int) -> str:
    """A certificate serial as lowercase hex without leading zeros (int or hex text)."""
    if isinstance(serial, int) and not isinstance(serial, bool):
        if serial < 0:
            raise RevocationError("a certificate serial is not negative")
        return format(serial, "x")
    if not isinstance(serial, str):
        raise RevocationError("a certificate serial is an integer or hex text")
    text = serial.strip().lower().removeprefix("0x").replace(":", "")
    if not text or len(text) > SERIAL_HEX_MAX or not set(text) <= _HEX:
        raise RevocationError(f"invalid certificate serial {serial!r}: expected hex digits")
    return format(int(text, 16), "x")


def _check_fields(
    subject: object, serial: object, revoked_at: object, expires_at: object, reason: object
) -> None:
    if not isinstance(subject, str):
        raise RevocationError("the subject of a revocation is a SPIFFE ID string")
    try:
        parse_spiffe_id(subject)
    except IdentityError as e:
        raise RevocationError(f"the subject of a revocation is invalid: {e}") from None
    if not isinstance(serial, str) or len(serial) > SERIAL_HEX_MAX or not set(serial) <= _HEX:
        raise RevocationError("the serial of a revocation is lowercase hex or empty")
    if serial and (serial != format(int(serial, 16), "x")):
        raise RevocationError("the serial of a revocation has leading zeros")
    for name, value in (("revoked_at", revoked_at), ("expires_at", expires_at)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise RevocationError(f"{name} of a revocation is a non-negative number of seconds")
    assert isinstance(revoked_at, (int, float)) and isinstance(expires_at, (int, float))
    if expires_at and expires_at <= revoked_at:
        raise RevocationError("a revocation must expire after it was made (or never: 0)")
    if not isinstance(reason, str) or len(reason) > REASON_CHARS_MAX:
        raise RevocationError(f"the reason of a revocation is text of {REASON_CHARS_MAX} or fewer")
    if not reason.isprintable():
        raise RevocationError("the reason of a revocation has control characters")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def decode(data: bytes) -> Revocation:
    """Parse a record's byte form strictly (signature not checked: see ``verify``)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RevocationError("a revocation record is bytes")
    raw = bytes(data)
    if len(raw) > RECORD_BYTES_MAX:
        raise RevocationError(f"a revocation record is at most {RECORD_BYTES_MAX} bytes")
    try:
        d = json.loads(
            raw.decode("ascii"),
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
        )
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise RevocationError(f"a revocation record is not valid JSON: {e}") from None
    return _from_dict(d)


def _from_dict(d: object) -> Revocation:
    if not isinstance(d, dict) or set(d) != _KEYS:
        raise RevocationError(
            f"a revocation record has exactly the keys {', '.join(sorted(_KEYS))}"
        )
    if type(d["v"]) is not int or d["v"] != 1:
        raise RevocationError("unsupported revocation record version")
    _check_fields(d["subject"], d["serial"], d["revoked_at"], d["expires_at"], d["reason"])
    sig_text = d["sig"]
    if not isinstance(sig_text, str) or len(sig_text) > 2 * SIG_BYTES_MAX:
        raise RevocationError("the signature of a revocation is base64 text")
    try:
        sig = base64.b64decode(sig_text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise RevocationError("the signature of a revocation is not valid base64") from None
    if not 0 < len(sig) <= SIG_BYTES_MAX:
        raise RevocationError("the signature of a revocation has the wrong length")
    return Revocation(
        subject=d["subject"],
        serial=d["serial"],
        revoked_at=float(d["revoked_at"]),
        expires_at=float(d["expires_at"]),
        reason=d["reason"],
        sig=sig,
    )


def sign(
    ca: CertificateAuthority,
    subject: str,
    *,
    reason: str = "",
    serial: str | int | None = None,
    now: float | None = None,
    ttl_s: float | None = None,
) -> Revocation:
    """A record revoking ``subject`` (one certificate if ``serial``), signed by ``ca``.

    ``ttl_s``: seconds until the record expires (None: never). The subject must be in
    the CA's trust domain.
    """
    if now is None:
        now = time.time()
    serial_hex = "" if serial is None else normalize_serial(serial)
    expires_at = 0.0 if ttl_s is None else now + ttl_s
    if ttl_s is not None and not (0 < ttl_s < math.inf):
        raise RevocationError(f"a revocation's lifetime must be positive and finite, not {ttl_s}")
    _check_fields(subject, serial_hex, now, expires_at, reason)
    if parse_spiffe_id(subject).trust_domain != ca.trust_domain:
        raise RevocationError(f"{subject} is not in trust domain {ca.trust_domain}")
    rec = Revocation(subject, serial_hex, float(now), float(expires_at), reason)
    return replace(rec, sig=ca.sign_data(rec.signing_bytes()))


def verify(rec: Revocation, bundle_pem: bytes) -> None:
    """Check ``rec``'s signature against the CA of its subject's trust domain in the bundle.

    Raises RevocationError if no CA certificate in ``bundle_pem`` of that trust domain
    signed it.
    """
    td = parse_spiffe_id(rec.subject).trust_domain
    try:
        certs = x509.load_pem_x509_certificates(bytes(bundle_pem))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise RevocationError("the trust bundle is not valid PEM certificates") from None
    data = rec.signing_bytes()
    for cert in certs:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        except (x509.ExtensionNotFound, ValueError):
            continue
        if uris != [f"spiffe://{td}"]:
            continue
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            continue
        try:
            key.verify(rec.sig, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            continue
        return
    raise RevocationError(f"the revocation of {rec.subject} is not signed by its trust domain's CA")


def decode_verified(data: bytes, bundle_pem: bytes) -> Revocation:
    """``decode`` then ``verify``: a record any node may enforce."""
    rec = decode(data)
    verify(rec, bundle_pem)
    return rec


class RevocationList:
    """The verified records a node enforces; lookups are a dict access.

    Only verified records may be added (``decode_verified``): this class checks nothing
    but expiry. Single-threaded (one asyncio loop) by design.
    """

    def __init__(self, records: Iterable[Revocation] = ()) -> None:
        self._by_key: dict[str, Revocation] = {}
        self._by_subject: dict[str, list[Revocation]] = {}
        for rec in records:
            self.add(rec)

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Revocation]:
        return iter(list(self._by_key.values()))

    def add(self, rec: Revocation) -> bool:
        """Hold ``rec``; False if an equal record was held. A later one for the same key wins."""
        held = self._by_key.get(rec.key)
        if held == rec:
            return False
        self._by_key[rec.key] = rec
        self._by_subject[rec.subject] = [
            r for r in self._by_subject.get(rec.subject, []) if r.key != rec.key
        ] + [rec]
        return True

    def get(self, key: str) -> Revocation | None:
        return self._by_key.get(key)

    def revoked(
        self, spiffe_id: str, serial: str | None = None, now: float | None = None
    ) -> Revocation | None:
        """The record revoking ``spiffe_id`` (certificate ``serial``), if one is in force."""
        recs = self._by_subject.get(spiffe_id)
        if not recs:
            return None
        if now is None:
            now = time.time()
        for rec in recs:
            if not rec.expired(now) and rec.covers(spiffe_id, serial):
                return rec
        return None


# ---------------------------------------------------------------- the CA's list


def read_list(ca_dir: Path, bundle_pem: bytes) -> list[Revocation]:
    """The records in ``ca_dir/revocations.json`` (none if absent), each verified.

    Raises RevocationError for a damaged file or a record that does not verify.
    """
    path = Path(ca_dir) / REVOCATIONS_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise RevocationError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        doc = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise RevocationError(f"{path} is not valid JSON: {e}") from None
    items = doc.get("revocations") if isinstance(doc, dict) else None
    if not isinstance(items, list) or len(items) > LIST_RECORDS_MAX:
        raise RevocationError(f"{path} is not a revocation list")
    out = []
    for i, item in enumerate(items):
        try:
            rec = _from_dict(item)
            verify(rec, bundle_pem)
        except RevocationError as e:
            raise RevocationError(f"{path}: record {i}: {e}") from None
        out.append(rec)
    return out


def add_to_list(ca_dir: Path, rec: Revocation, bundle_pem: bytes, now: float | None = None) -> None:
    """Add ``rec`` to the CA's list (replacing one for the same key), dropping expired ones.

    Under an exclusive flock, written atomically (temporary file, fsync, rename).
    """
    ca_dir = Path(ca_dir)
    if now is None:
        now = time.time()
    with _fs.locked(ca_dir / LOCK_FILE, RevocationError):
        recs = [r for r in read_list(ca_dir, bundle_pem) if r.key != rec.key and not r.expired(now)]
        recs.append(rec)
        doc = {"revocations": [json.loads(r.to_bytes()) for r in recs]}
        try:
            _fs.atomic_write(
                ca_dir / REVOCATIONS_FILE,
                (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode(),
                mode=0o644,
            )
        except IdentityError as e:
            raise RevocationError(str(e)) from None
