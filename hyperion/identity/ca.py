"""The trust-domain certificate authority and the X.509 SVIDs it issues.

Owns the CA directory (``ca.key`` ECDSA P-256 private key, mode 0600; ``ca.crt`` the
self-signed CA certificate, which is also the trust bundle; ``ca.json`` metadata), issuing
short-lived X.509 SVIDs (leaf certificates whose single URI SAN is a SPIFFE ID) with a fresh
key or for a key held elsewhere (enrollment over the network), storing an SVID on disk,
checking that a certificate chains to a bundle and reading its SPIFFE ID, and the CA's pin
(``sha256:`` of its SubjectPublicKeyInfo) that joiners check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hyperion.identity import _fs
from hyperion.identity.errors import IdentityError
from hyperion.identity.spiffe import parse_spiffe_id, validate_trust_domain

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.crt"
CA_META_FILE = "ca.json"
SVID_CERT_FILE = "svid.crt"
SVID_KEY_FILE = "svid.key"
BUNDLE_FILE = "bundle.crt"
CA_HASH_PREFIX = "sha256:"

CA_VALIDITY_S = 3650 * 86400.0
CLOCK_SKEW_S = 60.0
_SPIFFE_PREFIX = "spiffe://"


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _iso(epoch: float) -> str:
    return _utc(epoch).isoformat(timespec="seconds").replace("+00:00", "Z")


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _load_cert(data: bytes, what: str) -> x509.Certificate:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise IdentityError(f"{what} is not a valid X.509 certificate") from e


def _load_bundle(bundle_pem: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(bundle_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise IdentityError("the trust bundle is not valid PEM certificates") from e
    if not certs:
        raise IdentityError("the trust bundle holds no certificates")
    return certs


def _load_ec_key(data: bytes, what: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise IdentityError(f"{what} is not a valid unencrypted PEM private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IdentityError(f"{what} is not an ECDSA private key")
    return key


def _uri_sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    except ValueError as e:  # malformed extension
        raise IdentityError("the certificate has a malformed subject alternative name") from e
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return bc.ca


def _same_public_key(a: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_key().public_bytes(*fmt) == cert.public_key().public_bytes(*fmt)


@dataclass(frozen=True, slots=True)
class Svid:
    """An X.509 SVID: a leaf certificate, its private key and the trust bundle (all PEM).

    ``not_before`` / ``not_after`` are epoch seconds taken from the certificate.
    """

    spiffe_id: str
    cert_pem: bytes
    key_pem: bytes
    bundle_pem: bytes
    not_before: float
    not_after: float

    @property
    def renew_at(self) -> float:
        """Epoch seconds at which to renew: halfway between issue and expiry.

        ``not_before`` is back-dated by ``CLOCK_SKEW_S`` for peers with slow clocks; the
        issue time is what the lifetime counts from.
        """
        issued = min(self.not_before + CLOCK_SKEW_S, self.not_after)
        return issued + (self.not_after - issued) / 2

    def write(self, dir: Path) -> None:
        """Write ``svid.crt``, ``svid.key`` (0600) and ``bundle.crt`` into ``dir``, atomically.

        Each file is replaced atomically; ``read`` rejects a key that does not match the
        certificate, so a reader racing a renewal gets an error to retry, never a bad pair.
        """
        directory = Path(dir)
        _fs.ensure_dir(directory)
        _fs.atomic_write(directory / SVID_KEY_FILE, self.key_pem, mode=0o600)
        _fs.atomic_write(directory / SVID_CERT_FILE, self.cert_pem, mode=0o644)
        _fs.atomic_write(directory / BUNDLE_FILE, self.bundle_pem, mode=0o644)

    @classmethod
    def read(cls, dir: Path) -> Svid:
        """Read an SVID written by ``write``; raise IdentityError if missing or inconsistent."""
        directory = Path(dir)
        missing = f"no SVID in {directory}"
        cert_pem = _fs.read_bytes(directory / SVID_CERT_FILE, what="SVID", missing=missing)
        key_pem = _fs.read_bytes(directory / SVID_KEY_FILE, what="SVID key", missing=missing)
        bundle_pem = _fs.read_bytes(directory / BUNDLE_FILE, what="bundle", missing=missing)
        cert = _load_cert(cert_pem, str(directory / SVID_CERT_FILE))
        key = _load_ec_key(key_pem, str(directory / SVID_KEY_FILE))
        if not _same_public_key(key, cert):
            raise IdentityError(
                f"{directory / SVID_KEY_FILE} does not match {directory / SVID_CERT_FILE}"
            )
        _load_bundle(bundle_pem)
        return cls(
            spiffe_id=spiffe_id_from_cert(cert_pem),
            cert_pem=cert_pem,
            key_pem=key_pem,
            bundle_pem=bundle_pem,
            not_before=cert.not_valid_before_utc.timestamp(),
            not_after=cert.not_valid_after_utc.timestamp(),
        )


class CertificateAuthority:
    """The CA of one trust domain, backed by a CA directory. Use ``init`` or ``load``."""

    __slots__ = ("_ca_dir", "_trust_domain", "_key", "_cert")

    def __init__(
        self,
        ca_dir: Path,
        trust_domain: str,
        key: ec.EllipticCurvePrivateKey,
        cert: x509.Certificate,
    ) -> None:
        self._ca_dir = Path(ca_dir)
        self._trust_domain = trust_domain
        self._key = key
        self._cert = cert

    @staticmethod
    def exists(ca_dir: Path) -> bool:
        """Whether ``ca_dir`` holds a CA (its ``ca.key``)."""
        return (Path(ca_dir) / CA_KEY_FILE).exists()

    @classmethod
    def init(
        cls, ca_dir: Path, trust_domain: str, *, now: float | None = None
    ) -> CertificateAuthority:
        """Create a new CA for ``trust_domain`` in ``ca_dir`` (created 0700 if missing)."""
        ca_dir = Path(ca_dir)
        validate_trust_domain(trust_domain)
        if now is None:
            now = time.time()
        if cls.exists(ca_dir):
            raise IdentityError(f"a CA already exists in {ca_dir}")
        _fs.ensure_dir(ca_dir)

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Hyperion CA {trust_domain}")])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_utc(now - CLOCK_SKEW_S))
            .not_valid_after(_utc(now + CA_VALIDITY_S))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(f"{_SPIFFE_PREFIX}{trust_domain}")]
                ),
                critical=False,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )

        # ca.key is created exclusively and first: it claims the directory, so two
        # concurrent inits cannot both succeed.
        try:
            _fs.create_exclusive(ca_dir / CA_KEY_FILE, _private_pem(key), mode=0o600)
        except FileExistsError:
            raise IdentityError(f"a CA already exists in {ca_dir}") from None
        _fs.atomic_write(
            ca_dir / CA_CERT_FILE, cert.public_bytes(serialization.Encoding.PEM), mode=0o644
        )
        meta = {"trust_domain": trust_domain, "created": now}
        _fs.atomic_write(
            ca_dir / CA_META_FILE, (json.dumps(meta, indent=2) + "\n").encode(), mode=0o644
        )
        return cls(ca_dir, trust_domain, key, cert)

    @classmethod
    def load(cls, ca_dir: Path) -> CertificateAuthority:
        """Load the CA in ``ca_dir``; raise IdentityError if there is none or it is damaged."""
        ca_dir = Path(ca_dir)
        if not cls.exists(ca_dir):
            raise IdentityError(f"no CA in {ca_dir} (run `hyperion ca init --dir {ca_dir}`)")
        key = _load_ec_key(_fs.read_bytes(ca_dir / CA_KEY_FILE, what="CA key"), "the CA key")
        cert = _load_cert(
            _fs.read_bytes(
                ca_dir / CA_CERT_FILE,
                what="CA certificate",
                missing=f"the CA in {ca_dir} is incomplete: {CA_CERT_FILE} is missing",
            ),
            str(ca_dir / CA_CERT_FILE),
        )
        if not _same_public_key(key, cert):
            raise IdentityError(f"{CA_KEY_FILE} and {CA_CERT_FILE} in {ca_dir} do not match")
        raw = _fs.read_bytes(
            ca_dir / CA_META_FILE,
            what="CA metadata",
            missing=f"the CA in {ca_dir} is incomplete: {CA_META_FILE} is missing",
        )
        try:
            meta = json.loads(raw)
            trust_domain = meta["trust_domain"]
        except (ValueError, TypeError, KeyError) as e:
            raise IdentityError(f"{ca_dir / CA_META_FILE} is malformed") from e
        if not isinstance(trust_domain, str):
            raise IdentityError(f"{ca_dir / CA_META_FILE} is malformed")
        validate_trust_domain(trust_domain)
        if _uri_sans(cert) != [f"{_SPIFFE_PREFIX}{trust_domain}"]:
            raise IdentityError(
                f"{CA_CERT_FILE} in {ca_dir} is not the CA of trust domain {trust_domain}"
            )
        return cls(ca_dir, trust_domain, key, cert)

    @property
    def trust_domain(self) -> str:
        """The trust domain this CA signs for."""
        return self._trust_domain

    @property
    def bundle_pem(self) -> bytes:
        """The trust bundle (the CA certificate, PEM) that peers verify SVIDs against."""
        return self._cert.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_hash(self) -> str:
        """The CA's pin, ``sha256:HEX`` (see ``ca_cert_hash``): what joiners pass as --ca-hash."""
        return ca_cert_hash(self.bundle_pem)

    @property
    def ca_dir(self) -> Path:
        """The directory holding this CA."""
        return self._ca_dir

    def sign_data(self, data: bytes) -> bytes:
        """An ECDSA P-256 / SHA-256 signature (DER) of ``data`` by the CA key.

        For statements any holder of the trust bundle can check, such as revocation
        records (``hyperion.identity.revocation``); callers prefix ``data`` with a
        domain-separation tag of their own.
        """
        return self._key.sign(bytes(data), ec.ECDSA(hashes.SHA256()))

    def issue_svid(
        self,
        spiffe_id: str,
        *,
        ttl_s: float = 3600.0,
        now: float | None = None,
        dns_names: Sequence[str] = ("localhost",),
        ip_addresses: Sequence[str] = ("127.0.0.1",),
        common_name: str = "",
        groups: Sequence[str] = (),
    ) -> Svid:
        """Issue an X.509 SVID for ``spiffe_id`` valid from now - 60 s to now + ``ttl_s``.

        The validity never extends past the CA certificate's own expiry. ``common_name``
        and ``groups`` go into the subject as CN and O attributes, which is where
        Kubernetes reads a client certificate's user name and groups (the API server
        uses the groups for authorization); without groups the subject is O=Hyperion.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign_leaf(
            spiffe_id,
            key.public_key(),
            ttl_s=ttl_s,
            now=now,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            common_name=common_name,
            groups=groups,
        )
        return Svid(
            spiffe_id=spiffe_id,
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=_private_pem(key),
            bundle_pem=self.bundle_pem,
            not_before=cert.not_valid_before_utc.timestamp(),
            not_after=cert.not_valid_after_utc.timestamp(),
        )

    def issue_for_key(
        self,
        spiffe_id: str,
        public_key: ec.EllipticCurvePublicKey,
        *,
        ttl_s: float = 3600.0,
        now: float | None = None,
        dns_names: Sequence[str] = ("localhost",),
        ip_addresses: Sequence[str] = ("127.0.0.1",),
    ) -> bytes:
        """Issue an X.509 SVID (PEM certificate) for a key held elsewhere.

        Same certificate as ``issue_svid``, for ``public_key`` instead of a fresh key: what
        enrollment and renewal over the network sign (the caller proved it holds the
        private key with a CSR). Only P-256 keys, the curve every SVID here uses.
        """
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise IdentityError("an SVID key must be an ECDSA P-256 public key")
        cert = self._sign_leaf(
            spiffe_id,
            public_key,
            ttl_s=ttl_s,
            now=now,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            common_name="",
            groups=(),
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def _sign_leaf(
        self,
        spiffe_id: str,
        public_key: ec.EllipticCurvePublicKey,
        *,
        ttl_s: float,
        now: float | None,
        dns_names: Sequence[str],
        ip_addresses: Sequence[str],
        common_name: str,
        groups: Sequence[str],
    ) -> x509.Certificate:
        parsed = parse_spiffe_id(spiffe_id)
        if parsed.trust_domain != self._trust_domain:
            raise IdentityError(
                f"{spiffe_id} is not in trust domain {self._trust_domain}, "
                "so this CA cannot issue it"
            )
        if not (ttl_s > 0) or ttl_s == float("inf"):
            raise IdentityError(f"SVID TTL must be a positive number of seconds, not {ttl_s}")
        if now is None:
            now = time.time()

        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id)]
        try:
            sans += [x509.DNSName(name) for name in dns_names]
        except (ValueError, TypeError) as e:
            raise IdentityError(f"invalid DNS name for the SVID: {e}") from e
        try:
            sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        except (ValueError, TypeError) as e:
            raise IdentityError(f"invalid IP address for the SVID: {e}") from e

        ca_not_after = self._cert.not_valid_after_utc.timestamp()
        not_after = min(now + ttl_s, ca_not_after)
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(self._key.public_key())
        return (
            x509.CertificateBuilder()
            .subject_name(_subject(common_name, groups))
            .issuer_name(self._cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_utc(now - CLOCK_SKEW_S))
            .not_valid_after(_utc(not_after))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )


def _subject(common_name: str, groups: Sequence[str]) -> x509.Name:
    try:
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups] or [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hyperion")
        ]
        if common_name:
            attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    except ValueError as e:
        raise IdentityError(f"invalid certificate subject: {e}") from e
    return x509.Name(attrs)


def ca_cert_hash(cert_pem_or_der: bytes) -> str:
    """The pin of a CA certificate: ``sha256:`` and the hex SHA-256 of its DER
    SubjectPublicKeyInfo.

    The same value kubeadm's ``--discovery-token-ca-cert-hash`` takes (``openssl x509
    -pubkey | openssl pkey -pubin -outform der | sha256sum``): it names the CA's key.
    """
    cert = _load_cert(bytes(cert_pem_or_der), "the CA certificate")
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return CA_HASH_PREFIX + hashlib.sha256(spki).hexdigest()


def trust_domain_of_ca(cert_pem_or_der: bytes) -> str:
    """The trust domain a CA certificate signs for: its single ``spiffe://TD`` URI SAN."""
    cert = _load_cert(bytes(cert_pem_or_der), "the CA certificate")
    uris = _uri_sans(cert)
    if not _is_ca(cert) or len(uris) != 1 or not uris[0].startswith(_SPIFFE_PREFIX):
        raise IdentityError("the certificate is not the CA of a SPIFFE trust domain")
    return validate_trust_domain(uris[0][len(_SPIFFE_PREFIX) :])


def parse_ca_hash(text: str) -> str:
    """Check a ``sha256:HEX`` CA pin (64 hex digits) and return it in lower case."""
    value = text.strip().lower() if isinstance(text, str) else ""
    digest = value.removeprefix(CA_HASH_PREFIX)
    if (
        not value.startswith(CA_HASH_PREFIX)
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise IdentityError(
            f"invalid CA hash {text!r}: expected sha256: and 64 hex digits "
            "(print it with `hyperion ca hash --dir DIR`)"
        )
    return value


def spiffe_id_from_cert(cert_pem_or_der: bytes) -> str:
    """Return the SPIFFE ID of a certificate (PEM or DER): its single ``spiffe://`` URI SAN."""
    cert = _load_cert(bytes(cert_pem_or_der), "the certificate")
    uris = _uri_sans(cert)
    if not uris:
        raise IdentityError("the certificate has no SPIFFE ID (no URI subject alternative name)")
    if len(uris) != 1:
        raise IdentityError(
            f"the certificate has {len(uris)} URI subject alternative names, not exactly one"
        )
    if not uris[0].startswith(_SPIFFE_PREFIX):
        raise IdentityError(f"the certificate's URI {uris[0]!r} is not a SPIFFE ID")
    return uris[0]


def verify_chain(cert_pem: bytes, bundle_pem: bytes, *, now: float | None = None) -> str:
    """Check that ``cert_pem`` was issued by a CA in ``bundle_pem`` and is valid at ``now``.

    Returns the certificate's SPIFFE ID, which must be in the bundle CA's trust domain;
    raises IdentityError otherwise.
    """
    if now is None:
        now = time.time()
    leaf = _load_cert(bytes(cert_pem), "the certificate")
    if _is_ca(leaf):
        raise IdentityError("the certificate is a CA certificate, not an SVID")
    spiffe_id = spiffe_id_from_cert(cert_pem)
    parsed = parse_spiffe_id(spiffe_id)

    issuer: x509.Certificate | None = None
    for ca_cert in _load_bundle(bytes(bundle_pem)):
        if not _is_ca(ca_cert):
            continue
        try:
            leaf.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        issuer = ca_cert
        break
    if issuer is None:
        raise IdentityError(f"the certificate for {spiffe_id} was not issued by a trusted CA")
    if _uri_sans(issuer) != [f"{_SPIFFE_PREFIX}{parsed.trust_domain}"]:
        raise IdentityError(
            f"the certificate for {spiffe_id} was signed by a CA of another trust domain"
        )

    for cert, what in ((issuer, "the CA certificate"), (leaf, f"the certificate for {spiffe_id}")):
        not_before = cert.not_valid_before_utc.timestamp()
        not_after = cert.not_valid_after_utc.timestamp()
        if now < not_before:
            raise IdentityError(f"{what} is not valid until {_iso(not_before)}")
        if now > not_after:
            raise IdentityError(f"{what} expired at {_iso(not_after)}")
    return spiffe_id
