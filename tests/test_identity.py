"""Tests for hyperion.identity: node keys, SPIFFE IDs, the CA and SVIDs, join tokens."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.identity.ca import (
    CertificateAuthority,
    Svid,
    spiffe_id_from_cert,
    verify_chain,
)
from hyperion.identity.errors import IdentityError, TokenError
from hyperion.identity.keys import (
    NODE_ID_BYTES,
    NodeKey,
    node_id_from_public_key,
    verify_signature,
)
from hyperion.identity.spiffe import (
    SpiffeId,
    node_spiffe_id,
    parse_spiffe_id,
    user_spiffe_id,
    validate_trust_domain,
)
from hyperion.identity.tokens import create_token, parse_ttl, redeem_token

TD = "mesh.test"
T0 = 1_700_000_000.0


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.init(tmp_path / "ca", TD, now=T0)


# --- node keys -------------------------------------------------------------------------


def test_node_id_is_hash_of_public_key() -> None:
    key = NodeKey.generate()
    assert len(key.public_bytes) == 32
    expected = hashlib.sha256(key.public_bytes).digest()[:NODE_ID_BYTES].hex()
    assert key.node_id == expected == node_id_from_public_key(key.public_bytes)
    assert len(key.node_id) == 40
    assert NodeKey.generate().node_id != key.node_id


def test_sign_verify() -> None:
    key = NodeKey.generate()
    sig = key.sign(b"hello")
    assert len(sig) == 64
    assert verify_signature(key.public_bytes, b"hello", sig)
    assert not verify_signature(key.public_bytes, b"hellO", sig)
    assert not verify_signature(NodeKey.generate().public_bytes, b"hello", sig)
    bad_sig = bytes([sig[0] ^ 1]) + sig[1:]
    assert not verify_signature(key.public_bytes, b"hello", bad_sig)
    # Garbage never raises.
    assert not verify_signature(b"garbage", b"hello", sig)
    assert not verify_signature(b"\x00" * 32, b"hello", sig)
    assert not verify_signature(key.public_bytes, b"hello", b"short")
    assert not verify_signature(b"", b"", b"")


def test_key_save_load_roundtrip(tmp_path: Path) -> None:
    key = NodeKey.generate()
    path = tmp_path / "sub" / "node.key"
    key.save(path)
    assert _mode(path) == 0o600
    loaded = NodeKey.load(path)
    assert loaded.node_id == key.node_id
    assert verify_signature(key.public_bytes, b"x", loaded.sign(b"x"))
    # Overwrite keeps 0600 and leaves no temp files behind.
    NodeKey.generate().save(path)
    assert _mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["node.key"]


def test_key_load_errors(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="no node key"):
        NodeKey.load(tmp_path / "missing.key")
    garbled = tmp_path / "garbled.key"
    garbled.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with pytest.raises(IdentityError, match="not a valid"):
        NodeKey.load(garbled)


# --- SPIFFE IDs ------------------------------------------------------------------------


def test_spiffe_builders() -> None:
    node_id = NodeKey.generate().node_id
    assert node_spiffe_id(TD, node_id) == f"spiffe://{TD}/node/{node_id}"
    assert user_spiffe_id(TD, "alice") == f"spiffe://{TD}/user/alice"
    with pytest.raises(IdentityError):
        user_spiffe_id(TD, "a/b")
    with pytest.raises(IdentityError):
        node_spiffe_id("Bad.Domain", node_id)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("spiffe://mesh.test/node/abc123", SpiffeId("mesh.test", "node", "abc123")),
        ("spiffe://a-b_c.d/user/Alice.B-c_d", SpiffeId("a-b_c.d", "user", "Alice.B-c_d")),
        ("spiffe://mesh.test/ns/prod/sa/web", SpiffeId("mesh.test", "workload", "prod/web")),
    ],
)
def test_parse_spiffe_id_good(uri: str, expected: SpiffeId) -> None:
    parsed = parse_spiffe_id(uri)
    assert parsed == expected
    assert str(parsed) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "mesh.test/node/x",
        "http://mesh.test/node/x",
        "SPIFFE://mesh.test/node/x",
        "spiffe://",
        "spiffe:///node/x",
        "spiffe://mesh.test",
        "spiffe://mesh.test/",
        "spiffe://Mesh.Test/node/x",
        "spiffe://mesh.test:8443/node/x",
        "spiffe://user@mesh.test/node/x",
        "spiffe://mesh.test/node/x?q=1",
        "spiffe://mesh.test/node/x#frag",
        "spiffe://mesh.test/node/x/",
        "spiffe://mesh.test/node//x",
        "spiffe://mesh.test/node/..",
        "spiffe://mesh.test/node/a b",
        "spiffe://mesh.test/node/%41",
        "spiffe://mesh.test/node",
        "spiffe://mesh.test/node/a/b",
        "spiffe://mesh.test/group/x",
        "spiffe://mesh.test/ns/prod/sa",
        "spiffe://mesh.test/ns/prod/xx/web",
        "spiffe://" + "a" * 256 + "/node/x",
    ],
)
def test_parse_spiffe_id_bad(uri: str) -> None:
    with pytest.raises(IdentityError):
        parse_spiffe_id(uri)


def test_validate_trust_domain() -> None:
    assert validate_trust_domain("example.org") == "example.org"
    for bad in ("", "Example.org", "a:1", "a/b", "é.org", "a b"):
        with pytest.raises(IdentityError):
            validate_trust_domain(bad)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text().map(lambda s: "spiffe://" + s)))
def test_parse_spiffe_id_only_raises_identity_error(text: str) -> None:
    try:
        parsed = parse_spiffe_id(text)
    except IdentityError:
        return
    assert str(parsed) == text


_SEG = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,15}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[a-z0-9_-][a-z0-9._-]{0,20}", fullmatch=True), _SEG)
def test_valid_ids_roundtrip(td: str, name: str) -> None:
    if name in (".", ".."):
        return
    assert str(parse_spiffe_id(user_spiffe_id(td, name))) == f"spiffe://{td}/user/{name}"


# --- CA and SVIDs ----------------------------------------------------------------------


def test_ca_init(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    assert not CertificateAuthority.exists(ca_dir)
    ca = CertificateAuthority.init(ca_dir, TD, now=T0)
    assert CertificateAuthority.exists(ca_dir)
    assert _mode(ca_dir) == 0o700
    assert _mode(ca_dir / "ca.key") == 0o600
    assert ca.trust_domain == TD
    assert ca.ca_dir == ca_dir
    cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    assert cert.public_bytes(serialization.Encoding.PEM) == ca.bundle_pem
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"spiffe://{TD}"]
    assert f"Hyperion CA {TD}" in cert.subject.rfc4514_string()

    with pytest.raises(IdentityError, match="a CA already exists"):
        CertificateAuthority.init(ca_dir, TD, now=T0)
    assert cert == x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())

    loaded = CertificateAuthority.load(ca_dir)
    assert loaded.trust_domain == TD
    assert loaded.bundle_pem == ca.bundle_pem


def test_ca_load_missing_and_bad_domain(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="no CA in .*hyperion ca init --dir"):
        CertificateAuthority.load(tmp_path / "nope")
    with pytest.raises(IdentityError):
        CertificateAuthority.init(tmp_path / "x", "Not A Domain")
    assert not CertificateAuthority.exists(tmp_path / "x")


def test_issue_svid_and_verify(ca: CertificateAuthority, tmp_path: Path) -> None:
    node_id = NodeKey.generate().node_id
    sid = node_spiffe_id(TD, node_id)
    svid = ca.issue_svid(sid, ttl_s=600, now=T0 + 100)
    assert svid.spiffe_id == sid
    assert svid.not_before == T0 + 100 - 60
    assert svid.not_after == T0 + 100 + 600
    assert svid.renew_at == T0 + 100 + 300  # half the TTL after issue, not after back-dating
    assert svid.bundle_pem == ca.bundle_pem

    assert spiffe_id_from_cert(svid.cert_pem) == sid
    der = x509.load_pem_x509_certificate(svid.cert_pem).public_bytes(serialization.Encoding.DER)
    assert spiffe_id_from_cert(der) == sid
    assert verify_chain(svid.cert_pem, ca.bundle_pem, now=T0 + 200) == sid

    cert = x509.load_pem_x509_certificate(svid.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}

    # Expired, and not yet valid.
    with pytest.raises(IdentityError, match="expired"):
        verify_chain(svid.cert_pem, ca.bundle_pem, now=T0 + 100 + 601)
    with pytest.raises(IdentityError, match="not valid until"):
        verify_chain(svid.cert_pem, ca.bundle_pem, now=T0)

    # Write / read roundtrip.
    svid_dir = tmp_path / "svid"
    svid.write(svid_dir)
    assert _mode(svid_dir / "svid.key") == 0o600
    assert Svid.read(svid_dir) == svid
    assert sorted(p.name for p in svid_dir.iterdir()) == ["bundle.crt", "svid.crt", "svid.key"]


def test_svid_read_rejects_mismatched_key(ca: CertificateAuthority, tmp_path: Path) -> None:
    a = ca.issue_svid(user_spiffe_id(TD, "a"), now=T0)
    b = ca.issue_svid(user_spiffe_id(TD, "b"), now=T0)
    a.write(tmp_path)
    (tmp_path / "svid.key").write_bytes(b.key_pem)
    with pytest.raises(IdentityError, match="does not match"):
        Svid.read(tmp_path)
    with pytest.raises(IdentityError, match="no SVID"):
        Svid.read(tmp_path / "empty")


def test_cert_from_other_ca_rejected(ca: CertificateAuthority, tmp_path: Path) -> None:
    other = CertificateAuthority.init(tmp_path / "other", TD, now=T0)
    svid = other.issue_svid(user_spiffe_id(TD, "mallory"), now=T0)
    with pytest.raises(IdentityError, match="not issued by a trusted CA"):
        verify_chain(svid.cert_pem, ca.bundle_pem, now=T0 + 10)
    # A bundle holding both CAs (rotation) accepts it.
    both = ca.bundle_pem + other.bundle_pem
    assert verify_chain(svid.cert_pem, both, now=T0 + 10) == svid.spiffe_id


def test_wrong_trust_domain_rejected_at_issue(ca: CertificateAuthority) -> None:
    with pytest.raises(IdentityError, match="not in trust domain"):
        ca.issue_svid("spiffe://other.test/node/abc", now=T0)
    with pytest.raises(IdentityError):
        ca.issue_svid("not a spiffe id", now=T0)
    with pytest.raises(IdentityError):
        ca.issue_svid(user_spiffe_id(TD, "a"), ttl_s=0, now=T0)


def test_ca_cert_is_not_an_svid(ca: CertificateAuthority) -> None:
    with pytest.raises(IdentityError):
        verify_chain(ca.bundle_pem, ca.bundle_pem, now=T0 + 10)
    with pytest.raises(IdentityError):
        spiffe_id_from_cert(b"garbage")


# --- join tokens -----------------------------------------------------------------------


def test_token_lifecycle(ca: CertificateAuthority) -> None:
    ca_dir = ca.ca_dir
    token = create_token(ca_dir, ttl_s=60, now=T0)
    assert token.startswith("hyp1.")
    stored = (ca_dir / "tokens.json").read_text()
    assert token not in stored and token[5:] not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored

    redeem_token(ca_dir, token, now=T0 + 1)
    with pytest.raises(TokenError, match=r"already used \(at 2023-"):
        redeem_token(ca_dir, token, now=T0 + 2)

    expired = create_token(ca_dir, ttl_s=60, now=T0)
    with pytest.raises(TokenError, match="expired at 2023-"):
        redeem_token(ca_dir, expired, now=T0 + 60)

    with pytest.raises(TokenError, match="unknown join token"):
        redeem_token(ca_dir, "hyp1.nope", now=T0)


def test_token_errors(tmp_path: Path, ca: CertificateAuthority) -> None:
    with pytest.raises(IdentityError, match="no CA"):
        create_token(tmp_path / "none", ttl_s=60)
    for ttl in (0, -1):
        with pytest.raises(IdentityError):
            create_token(ca.ca_dir, ttl_s=ttl)
    bad = b"{not json"
    (ca.ca_dir / "tokens.json").write_bytes(bad)
    with pytest.raises(IdentityError, match="malformed") as info:
        redeem_token(ca.ca_dir, "hyp1.x")
    assert not isinstance(info.value, TokenError)
    with pytest.raises(IdentityError, match="malformed"):
        create_token(ca.ca_dir, ttl_s=60)
    assert (ca.ca_dir / "tokens.json").read_bytes() == bad


def _redeem_worker(ca_dir: str, token: str, start: object, results: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        redeem_token(Path(ca_dir), token)
    except TokenError:
        results.put("refused")  # type: ignore[attr-defined]
    else:
        results.put("ok")  # type: ignore[attr-defined]


def test_concurrent_redeem_exactly_one_wins(ca: CertificateAuthority) -> None:
    methods = multiprocessing.get_all_start_methods()
    mp = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    for _ in range(3):
        token = create_token(ca.ca_dir, ttl_s=60)
        start = mp.Event()
        results = mp.Queue()
        procs = [
            mp.Process(target=_redeem_worker, args=(str(ca.ca_dir), token, start, results))
            for _ in range(2)
        ]
        for p in procs:
            p.start()
        start.set()
        outcomes = sorted(results.get(timeout=10) for _ in procs)
        for p in procs:
            p.join(timeout=10)
            assert p.exitcode == 0
        assert outcomes == ["ok", "refused"]


# --- TTLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), ("3600", 3600), ("1.5", 1.5)],
)
def test_parse_ttl_good(text: str, seconds: float) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "0", "0s", "-5", "-1h", "1w", "h", "1hh", "abc", "1 2", "nan"]
)
def test_parse_ttl_bad(text: str) -> None:
    with pytest.raises(IdentityError, match="invalid TTL"):
        parse_ttl(text)


def test_no_world_readable_secrets(ca: CertificateAuthority) -> None:
    create_token(ca.ca_dir, ttl_s=60)
    for name in ("ca.key", "tokens.json", "tokens.lock"):
        assert _mode(ca.ca_dir / name) & 0o077 == 0, name
    assert os.access(ca.ca_dir / "ca.crt", os.R_OK)
