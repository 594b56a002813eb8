"""Revocation records (hyperion.identity.revocation) and their spread in the simulator.

Real CA keys and signatures; the spread runs whole ``MeshNode``s on the deterministic
simulated network (``hyperion.sim.mesh_run``): a node revoked at one node is banned by
every other within seconds of virtual time, its messages are dropped, and a node that
was cut off while it happened learns it by anti-entropy after the heal.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.control.catalog import CatalogDelta
from hyperion.core import Send
from hyperion.identity import revocation
from hyperion.identity.ca import CertificateAuthority
from hyperion.identity.errors import RevocationError
from hyperion.identity.spiffe import node_spiffe_id, user_spiffe_id
from hyperion.mesh.membership import Ping
from hyperion.mesh.node import REVOCATIONS, Revoked
from hyperion.sim.mesh_run import TRUST_DOMAIN, SimMesh, build_mesh

TD = TRUST_DOMAIN


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.init(tmp_path_factory.mktemp("ca"), TD)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.init(tmp_path_factory.mktemp("other"), TD)


ALICE = user_spiffe_id(TD, "alice")


# --- the record ---------------------------------------------------------------------------


def test_sign_encode_decode_verify(ca: CertificateAuthority) -> None:
    rec = revocation.sign(ca, ALICE, reason="laptop stolen", now=1000.0, ttl_s=90000)
    data = rec.to_bytes()
    assert revocation.decode_verified(data, ca.bundle_pem) == rec
    assert rec.expires_at == 91000.0 and rec.serial == ""
    assert json.loads(data)["subject"] == ALICE
    one = revocation.sign(ca, ALICE, serial="0x00AB:CD", now=1000.0)
    assert one.serial == "abcd" and one.expires_at == 0.0 and one.key != rec.key
    assert one.covers(ALICE, "ABCD") and not one.covers(ALICE, "abce")
    assert not one.covers(ALICE, None) and rec.covers(ALICE, None)


def test_tampered_or_foreign_records_do_not_verify(
    ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    rec = revocation.sign(ca, ALICE, reason="r", now=1000.0)
    d = json.loads(rec.to_bytes())
    for field, value in (("subject", user_spiffe_id(TD, "bob")), ("reason", "x"),
                         ("revoked_at", 1001.0), ("expires_at", 5000.0)):  # fmt: skip
        bad = json.dumps({**d, field: value}).encode()
        with pytest.raises(RevocationError, match="not signed"):
            revocation.decode_verified(bad, ca.bundle_pem)
    forged = revocation.sign(other_ca, ALICE, now=1000.0)  # same trust domain, other key
    with pytest.raises(RevocationError, match="not signed"):
        revocation.decode_verified(forged.to_bytes(), ca.bundle_pem)
    with pytest.raises(RevocationError, match="not in trust domain"):
        revocation.sign(ca, "spiffe://elsewhere.test/user/alice")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "exactly the keys"),
        (b'{"v":1}', "exactly the keys"),
        (b"x" * 5000, "at most"),
        (b'{"a":NaN}', "not valid JSON"),
        (b"[" * 3000 + b"]" * 3000, "at most"),
        (b"[" * 2000 + b"]" * 2000, "JSON"),
    ],
)
def test_malformed_bytes_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(RevocationError, match=match):
        revocation.decode(data)


def test_each_field_is_checked(ca: CertificateAuthority) -> None:
    d = json.loads(revocation.sign(ca, ALICE, now=1000.0).to_bytes())
    cases = {
        "v": [2, True, "1"],
        "subject": ["alice", 5, "spiffe://TD/user/a"],
        "serial": ["0ab", "xyz", 12, "a" * 41],
        "revoked_at": [-1, "1", True, None],
        "expires_at": [500.0, -2],
        "reason": ["\x00", "r" * 300, 3],
        "sig": ["!!", "", 7, "QUJD" * 100],
    }
    for field, values in cases.items():
        for value in values:
            with pytest.raises(RevocationError):
                revocation.decode(json.dumps({**d, field: value}).encode())
    dup = b'{"v":1,"v":1,' + json.dumps(d).encode()[1:]
    with pytest.raises(RevocationError, match="duplicate"):
        revocation.decode(dup)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_decoder_never_crashes_on_bytes(data: bytes) -> None:
    with contextlib.suppress(RevocationError):
        revocation.decode(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(revocation._KEYS) + ["x"]), _json, max_size=8))
def test_decoder_never_crashes_on_near_records(d: dict[str, object]) -> None:
    try:
        data = json.dumps(d).encode()
    except ValueError:
        return
    with contextlib.suppress(RevocationError):
        revocation.decode(data)


def test_the_ca_list_is_atomic_verified_and_prunes_expired(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    d = tmp_path
    assert revocation.read_list(d, ca.bundle_pem) == []
    short = revocation.sign(ca, user_spiffe_id(TD, "temp"), now=1000.0, ttl_s=10)
    forever = revocation.sign(ca, ALICE, now=1000.0)
    revocation.add_to_list(d, short, ca.bundle_pem, now=1001.0)
    revocation.add_to_list(d, forever, ca.bundle_pem, now=1001.0)
    assert revocation.read_list(d, ca.bundle_pem) == [short, forever]
    again = revocation.sign(ca, ALICE, reason="again", now=1500.0)
    revocation.add_to_list(d, again, ca.bundle_pem, now=1500.0)  # short has expired
    assert revocation.read_list(d, ca.bundle_pem) == [again]
    doc = json.loads((d / revocation.REVOCATIONS_FILE).read_text())
    doc["revocations"][0]["reason"] = "edited"
    (d / revocation.REVOCATIONS_FILE).write_text(json.dumps(doc))
    with pytest.raises(RevocationError, match="record 0: .*not signed"):
        revocation.read_list(d, ca.bundle_pem)
    (d / revocation.REVOCATIONS_FILE).write_text("{")
    with pytest.raises(RevocationError, match="not valid JSON"):
        revocation.read_list(d, ca.bundle_pem)


def test_revocation_list_lookup_and_expiry(ca: CertificateAuthority) -> None:
    rl = revocation.RevocationList()
    rec = revocation.sign(ca, ALICE, now=1000.0, ttl_s=100)
    assert rl.add(rec) and not rl.add(rec) and len(rl) == 1
    assert rl.revoked(ALICE, now=1050.0) == rec
    assert rl.revoked(ALICE, now=1100.0) is None  # expired
    assert rl.revoked(user_spiffe_id(TD, "bob"), now=1050.0) is None


# --- the spread, in the simulator ---------------------------------------------------------


def _checker(ca: CertificateAuthority):  # type: ignore[no-untyped-def]
    def check(data: bytes) -> Revoked | None:
        try:
            rec = revocation.decode_verified(data, ca.bundle_pem)
        except RevocationError:
            return None
        node_id = rec.subject.rsplit("/", 1)[1] if "/node/" in rec.subject else ""
        return Revoked(rec.key, rec.subject, node_id, rec.expires_at, rec.to_bytes())

    return check


def _mesh(ca: CertificateAuthority, n: int) -> SimMesh:
    m = build_mesh(n, check_revocation=_checker(ca))
    for i in range(n):
        m.start(i, 0.05 * i)
    m.sim.run(5.0)
    return m


def test_a_revoked_node_is_banned_everywhere_and_its_messages_dropped(
    ca: CertificateAuthority,
) -> None:
    n, victim, cut_off = 8, 5, 7
    m = _mesh(ca, n)
    assert all(len(node.members()) == n for node in m.nodes)
    vid = m.keys[victim].node_id
    m.sim.isolate(cut_off)  # partitioned while the revocation spreads
    rec = revocation.sign(ca, node_spiffe_id(TD, vid), reason="compromised", now=0.0)
    got, fx = m.nodes[0].revoke(rec.to_bytes(), m.sim.now)
    assert got is not None and got.node_id == vid
    assert any(isinstance(e, Send) and isinstance(e.msg, CatalogDelta) for e in fx)
    m.sim.inject(0, fx)
    start = m.sim.now
    m.sim.run(start + 3.0)
    others = [i for i in range(n) if i not in (victim, cut_off)]
    for i in others:
        node = m.nodes[i]
        assert vid in node.banned, i
        assert node.membership.state_of(vid) == "dead", i
        assert vid not in node.directory and vid not in node.catalog.peers
    # Its messages are dropped and counted, whatever they say.
    before = m.nodes[1].counters.get("revoked_dropped", 0)
    ping = Ping(vid, m.nodes[victim].addr, 99, m.nodes[1].node_id, ())
    assert m.nodes[1].handle(ping, m.sim.now) == []
    assert m.nodes[1].counters["revoked_dropped"] == before + 1
    # The victim's own attempts to refute are dropped too: it stays dead after a while.
    m.sim.run(m.sim.now + 10.0)
    assert all(m.nodes[i].membership.state_of(vid) == "dead" for i in others)
    # The node that was cut off learns it by anti-entropy once the partition heals.
    assert vid not in m.nodes[cut_off].banned
    m.sim.heal()
    m.sim.run(m.sim.now + 10.0)
    assert vid in m.nodes[cut_off].banned
    assert m.nodes[cut_off].membership.state_of(vid) == "dead"
    assert all(m.nodes[i].membership.state_of(vid) == "dead" for i in range(n) if i != victim)


def test_invalid_records_are_counted_and_deletes_undone(
    ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    n = 4
    m = _mesh(ca, n)
    forged = revocation.sign(other_ca, node_spiffe_id(TD, m.keys[2].node_id), now=0.0)
    got, fx = m.nodes[0].revoke(forged.to_bytes(), m.sim.now)
    assert got is None and fx == []
    assert m.nodes[0].counters["revocation_refused"] == 1
    # A forged record written straight into the catalog is replicated but never enforced.
    key = (REVOCATIONS, "", forged.key)
    _, fx = m.nodes[1].catalog_write(key, {"record": forged.to_bytes().decode()}, m.sim.now)
    m.sim.inject(1, fx)
    m.sim.run(m.sim.now + 2.0)
    assert all(not node.banned for node in m.nodes)
    assert all(node.counters.get("revocation_invalid", 0) >= 1 for node in m.nodes)
    # A user's revocation bans no node; a delete of it is written back by the holders.
    rec = revocation.sign(ca, ALICE, now=0.0)
    _, fx = m.nodes[3].revoke(rec.to_bytes(), m.sim.now)
    m.sim.inject(3, fx)
    m.sim.run(m.sim.now + 2.0)
    assert all(rec.key in node.revoked and not node.banned for node in m.nodes)
    ukey = (REVOCATIONS, "", rec.key)
    _, fx = m.nodes[1].catalog_write(ukey, None, m.sim.now)
    m.sim.inject(1, fx)
    m.sim.run(m.sim.now + 3.0)
    assert all(node.catalog.get(ukey) is not None for node in m.nodes)
    assert sum(node.counters.get("revocation_restored", 0) for node in m.nodes) >= 1


# --- the CLI, without running nodes -------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hyperion", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_revoke_list_and_refusals(tmp_path: Path) -> None:
    d = tmp_path / "mesh"
    assert _cli("ca", "init", "--dir", str(d), "--trust-domain", "cli.test").returncode == 0
    node = d / "nodes" / "solo"
    node.mkdir(parents=True)
    nid = "ab" * 20
    info = {"name": "solo", "node_id": nid, "mesh_addr": "127.0.0.1:1", "pid": 2**22 + 7}
    (node / "node.json").write_text(json.dumps(info))
    for bad, why in (
        (["nobody"], "not a SPIFFE ID"),
        (["spiffe://other.test/user/x"], "not in this CA's trust domain"),
        (["user/cli"], "identity this CLI uses"),
        (["solo"], "only node of this directory"),
        (["user/alice", "--ttl", "soon"], "invalid TTL"),
        (["user/alice", "--serial", "xyz"], "invalid certificate serial"),
    ):
        r = _cli("ca", "revoke", "--dir", str(d), *bad)
        assert r.returncode == 2 and why in r.stderr, (bad, r.stderr)
    r = _cli("ca", "revoke", "--dir", str(d), "user/alice", "--reason", "left", "--ttl", "25h")
    assert r.returncode == 0, r.stderr
    assert "revoked spiffe://cli.test/user/alice" in r.stdout
    assert "no running node" in r.stderr  # written, nobody told
    r = _cli("ca", "revoke", "--dir", str(d), "solo", "--force")
    assert r.returncode == 0 and f"spiffe://cli.test/node/{nid}" in r.stdout
    recs = json.loads(_cli("ca", "revocations", "--dir", str(d), "--json").stdout)
    assert [x["subject"] for x in recs] == [
        "spiffe://cli.test/user/alice",
        f"spiffe://cli.test/node/{nid}",
    ]
    assert recs[0]["expires_at"] - recs[0]["revoked_at"] == pytest.approx(25 * 3600)
    mesh = {"nodes": [{"name": "solo", "api_addr": "127.0.0.1:1"}]}
    (d / "mesh.json").write_text(json.dumps(mesh))
    r = _cli("kubeconfig", "--dir", str(d), "--user", "alice")
    assert r.returncode == 2 and "is revoked" in r.stderr
    assert _cli("kubeconfig", "--dir", str(d), "--user", "bob").returncode == 0
    (d / revocation.REVOCATIONS_FILE).write_text("[")
    r = _cli("ca", "revocations", "--dir", str(d))
    assert r.returncode == 2 and "not valid JSON" in r.stderr
