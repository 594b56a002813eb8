"""Node records: wire round trips, validation, labels, GPUs, semver and selectors."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperion.mesh.records import (
    CLOUD,
    EDGE,
    GEOGRAPHY,
    INSTANCE_TYPE,
    MAX_GPUS,
    MAX_LABELS,
    PRICE_PER_HOUR,
    REGION,
    SPOT,
    ZONE,
    Gpu,
    Labels,
    NodeRecord,
    RecordError,
    Requirement,
    Selector,
    Version,
    build_record,
    free_memory_bytes,
    local_capacity,
    normalize_labels,
    parse_gpus,
    parse_quantity,
    parse_selector,
    parse_version,
)
from hyperion.net import wire_pb2

NID = "ab" * 20
GIB = 1 << 30
FUZZ = settings(derandomize=True, database=None, max_examples=300)


def spiffe(node_id: str = NID) -> str:
    return f"spiffe://example.org/node/{node_id}"


def record(**changes: Any) -> NodeRecord:
    base = NodeRecord(
        node_id=NID,
        spiffe_id=spiffe(),
        name="gpu-1",
        mesh_addr="10.0.0.1:7946",
        api_addr="10.0.0.1:8443",
        labels={CLOUD: "aws", REGION: "us-east-1", GEOGRAPHY: "US", SPOT: "true"},
        cpu_millis=8000,
        memory_bytes=64 * GIB,
        gpus=(Gpu("H100-80GB", 80 * GIB, 8, 6), Gpu("L4", 24 * GIB, 1, 1)),
        cpu_millis_free=6000,
        memory_bytes_free=48 * GIB,
        price_per_hour=2.5,
        spot=True,
        software_version="0.2.0",
        protocol_versions=(1, 2),
        updated_at=1_700_000_000.25,
        egress_price_per_gb=0.09,
    )
    return dataclasses.replace(base, **changes)


def pb(rec: NodeRecord | None = None) -> wire_pb2.NodeRecord:
    out = wire_pb2.NodeRecord()
    out.ParseFromString((rec or record()).to_bytes())
    return out


# --------------------------------------------------------------------------- wire


def test_round_trip_is_exact_and_deterministic() -> None:
    rec = record()
    data = rec.to_bytes()
    assert NodeRecord.from_bytes(data) == rec
    assert record().to_bytes() == data
    assert hash(NodeRecord.from_bytes(data)) == hash(rec)


LABEL_NAME = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?", fullmatch=True)
LABEL_KEY = st.one_of(LABEL_NAME, st.builds(lambda n: f"example.com/{n}", LABEL_NAME))
PRICE = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@st.composite
def records(draw: st.DrawFn) -> NodeRecord:
    node_id = draw(st.binary(min_size=20, max_size=20)).hex()
    cpu = draw(st.integers(0, 2**63 - 1))
    memory = draw(st.integers(0, 2**63 - 1))
    gpus = []
    for model in draw(st.lists(LABEL_NAME, max_size=4, unique=True)):
        count = draw(st.integers(1, 16))
        gpus.append(Gpu(model, draw(st.integers(0, 2**64 - 1)), count, draw(st.integers(0, count))))
    return NodeRecord(
        node_id=node_id,
        spiffe_id=spiffe(node_id),
        name=draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)),
        mesh_addr=draw(st.sampled_from(["", "10.0.0.1:7946", "[::1]:7946"])),
        api_addr=draw(st.sampled_from(["", "h.example:8443"])),
        labels=draw(st.dictionaries(LABEL_KEY, st.one_of(st.just(""), LABEL_NAME), max_size=8)),
        cpu_millis=cpu,
        memory_bytes=memory,
        gpus=tuple(gpus),
        cpu_millis_free=draw(st.integers(0, cpu)),
        memory_bytes_free=draw(st.integers(0, memory)),
        price_per_hour=draw(PRICE),
        spot=draw(st.booleans()),
        software_version=draw(st.sampled_from(["0.1.0", "1.2.3-rc.1+build.5", "10.0.0-alpha"])),
        protocol_versions=tuple(draw(st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=16))),
        updated_at=draw(st.floats(min_value=0, max_value=4e9)),
        egress_price_per_gb=draw(PRICE),
    )


@FUZZ
@given(records())
def test_any_valid_record_round_trips(rec: NodeRecord) -> None:
    assert NodeRecord.from_bytes(rec.to_bytes()) == rec
    json.dumps(rec.to_json())


def test_v1_record_without_egress_price_decodes_as_unknown() -> None:
    old = pb()
    old.ClearField("egress_price_per_gb")
    rec = NodeRecord.from_bytes(old.SerializeToString())
    assert rec.egress_price_per_gb == 0.0
    assert rec == record(egress_price_per_gb=0.0)


def test_unknown_fields_from_newer_versions_are_ignored() -> None:
    data = record().to_bytes() + bytes([0xA0, 0x06, 0x07])  # field 100, varint 7
    assert NodeRecord.from_bytes(data) == record()


def _set(field: str, value: Any) -> Any:
    def mutate(p: wire_pb2.NodeRecord) -> None:
        setattr(p, field, value)

    return mutate


def _add_label(key: str, value: str) -> Any:
    def mutate(p: wire_pb2.NodeRecord) -> None:
        p.labels[key] = value

    return mutate


def _gpu(**fields: Any) -> Any:
    def mutate(p: wire_pb2.NodeRecord) -> None:
        p.gpus.add(**{"model": "T4", "memory_bytes": 16 * GIB, "count": 1, "free": 1, **fields})

    return mutate


def _many_labels(p: wire_pb2.NodeRecord) -> None:
    for i in range(MAX_LABELS + 1):
        p.labels[f"k{i}"] = "v"


def _many_gpus(p: wire_pb2.NodeRecord) -> None:
    for i in range(MAX_GPUS + 1):
        p.gpus.add(model=f"m{i}", memory_bytes=1, count=1, free=1)


def _no_protocols(p: wire_pb2.NodeRecord) -> None:
    del p.protocol_versions[:]


def _many_protocols(p: wire_pb2.NodeRecord) -> None:
    p.protocol_versions.extend(range(3, 20))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set("node_id", b"\x01" * 19), "node id must be 20 bytes"),
        (_set("node_id", b"\x01" * 21), "node id must be 20 bytes"),
        (_set("node_id", b""), "node id must be 20 bytes"),
        (_set("spiffe_id", spiffe("cd" * 20)), "does not name node"),
        (_set("spiffe_id", "spiffe://example.org/user/cli"), "does not name node"),
        (_set("spiffe_id", "https://example.org"), "not a SPIFFE ID"),
        (_set("name", "x" * 129), "name is longer than 128"),
        (_set("name", "evil\x1b[2J"), "control characters"),
        (_set("mesh_addr", "a" * 257), "mesh_addr is longer than 256"),
        (_set("cpu_millis", -1), "cpu_millis must be between"),
        (_set("memory_bytes", -5), "memory_bytes must be between"),
        (_set("cpu_millis_free", 9000), "cpu_millis_free must be between 0 and 8000"),
        (_set("memory_bytes_free", 65 * GIB), "memory_bytes_free must be between"),
        (_set("cpu_millis_free", -1), "cpu_millis_free must be between"),
        (_add_label("Bad_Prefix/x", "v"), "label key 'Bad_Prefix/x'"),
        (_add_label("a/b/c", "v"), "more than one '/'"),
        (_add_label("-x", "v"), "label key '-x'"),
        (_add_label("x" * 64, "v"), "label key"),
        (_add_label("ok", "bad value"), "label ok: value 'bad value'"),
        (_add_label("ok", "v" * 64), "label ok: value"),
        (_many_labels, "more than 64 labels"),
        (_gpu(free=2), "gpu T4 free must be between 0 and its count 1"),
        (_gpu(count=0, free=0), "gpu T4 count must be at least 1"),
        (_gpu(model=""), "gpu model ''"),
        (_gpu(model="H100 80GB"), "gpu model 'H100 80GB'"),
        (_many_gpus, "more than 16 gpu entries"),
        (_set("software_version", "0.2"), "software_version: '0.2' is not a semantic version"),
        (_set("software_version", "v1.0.0"), "software_version"),
        (_set("software_version", ""), "software_version"),
        (_set("price_per_hour", math.nan), "price_per_hour must be a finite non-negative"),
        (_set("price_per_hour", math.inf), "price_per_hour"),
        (_set("price_per_hour", -0.5), "price_per_hour"),
        (_set("egress_price_per_gb", math.nan), "egress_price_per_gb"),
        (_set("updated_at", math.nan), "updated_at must be a finite time"),
        (_set("updated_at", -1.0), "updated_at"),
        (_no_protocols, "protocol_versions must list 1 to 16"),
        (_many_protocols, "more than 16 protocol versions"),
        (lambda p: p.protocol_versions.append(0), "protocol version 0 is out of range"),
    ],
)
def test_malformed_record_is_rejected(mutate: Any, message: str) -> None:
    p = pb()
    mutate(p)
    with pytest.raises(RecordError, match=message.replace("(", r"\(").replace("[", r"\[")):
        NodeRecord.from_bytes(p.SerializeToString())


def test_invalid_records_cannot_be_built_either() -> None:
    with pytest.raises(RecordError, match="node id must be 40 lowercase hex"):
        record(node_id="AB" * 20)
    with pytest.raises(RecordError, match="cpu_millis_free"):
        record(cpu_millis_free=8001)
    with pytest.raises(RecordError, match="price_per_hour"):
        record(price_per_hour=math.nan)
    with pytest.raises(RecordError, match="software_version"):
        record(software_version="1.0")
    with pytest.raises(RecordError, match="gpu entries"):
        record(gpus=(Gpu("T4", 1, 1, 1),) * (MAX_GPUS + 1))
    with pytest.raises(RecordError, match="free must be between"):
        Gpu("T4", 16 * GIB, 1, 2)


def test_garbage_and_oversized_bytes_are_record_errors() -> None:
    for data in (b"\xff", b"\x0a\x05ab", b"\x12\x02\xc3\x28", b"\x00" * 10, b"x" * (65 << 10)):
        with pytest.raises(RecordError):
            NodeRecord.from_bytes(data)


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_decode_or_raise_record_error(data: bytes) -> None:
    try:
        rec = NodeRecord.from_bytes(data)
    except RecordError:
        return
    assert NodeRecord.from_bytes(rec.to_bytes()) == rec


@FUZZ
@given(st.data())
def test_mutated_valid_bytes_decode_or_raise_record_error(data: st.DataObject) -> None:
    raw = bytearray(record().to_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RecordError):
        NodeRecord.from_bytes(bytes(raw))


def test_labels_are_frozen_and_hashable() -> None:
    rec = record()
    assert isinstance(rec.labels, Labels)
    assert rec.labels == {CLOUD: "aws", REGION: "us-east-1", GEOGRAPHY: "US", SPOT: "true"}
    assert list(rec.labels) == sorted(rec.labels)
    with pytest.raises(TypeError):
        rec.labels["x"] = "y"  # type: ignore[index]
    assert hash(Labels({"a": "1", "b": "2"})) == hash(Labels([("b", "2"), ("a", "1")]))
    assert len({rec, record()}) == 1


def test_to_json_has_what_the_cli_prints() -> None:
    out = record().to_json()
    assert json.loads(json.dumps(out)) == out
    assert out["node_id"] == NID
    assert out["version"] == "0.2.0"
    assert out["labels"][CLOUD] == "aws"
    assert out["gpus"][0] == {"model": "H100-80GB", "memory_bytes": 80 * GIB, "count": 8, "free": 6}
    assert out["protocol_versions"] == [1, 2]
    assert out["egress_price_per_gb"] == 0.09
    assert set(out) == {
        "node_id",
        "name",
        "spiffe_id",
        "mesh_addr",
        "api_addr",
        "labels",
        "cpu_millis",
        "memory_bytes",
        "cpu_millis_free",
        "memory_bytes_free",
        "gpus",
        "price_per_hour",
        "spot",
        "egress_price_per_gb",
        "version",
        "protocol_versions",
        "updated_at",
    }


# --------------------------------------------------------------------------- labels


def test_short_aliases_expand_and_values_normalize() -> None:
    got = normalize_labels(
        {
            "cloud": "AWS",
            "region": "eu-west-1",
            "zone": "eu-west-1a",
            "instance-type": "p5.48xlarge",
            "spot": "True",
            "price": "98.32",
            "team": "ml",
            "example.com/owner": "",
        }
    )
    assert got == {
        CLOUD: "aws",
        REGION: "eu-west-1",
        ZONE: "eu-west-1a",
        INSTANCE_TYPE: "p5.48xlarge",
        SPOT: "true",
        PRICE_PER_HOUR: "98.32",
        GEOGRAPHY: "EU",
        "team": "ml",
        "example.com/owner": "",
    }
    assert list(got) == sorted(got)
    assert normalize_labels(got) == got  # idempotent
    assert normalize_labels({"price-per-hour": "0"}) == {PRICE_PER_HOUR: "0"}
    assert normalize_labels({"geography": "apac"}) == {GEOGRAPHY: "APAC"}


@pytest.mark.parametrize(
    ("region", "geography"),
    [
        ("us-east-1", "US"),
        ("us-gov-west-1", "US"),
        ("us-central1", "US"),
        ("eastus", "US"),
        ("WestUS2", "US"),
        ("northamerica-south1", None),
        ("northamerica-northeast1", "CA"),
        ("ca-central-1", "CA"),
        ("canadacentral", "CA"),
        ("eu-central-1", "EU"),
        ("europe-west4", "EU"),
        ("westeurope", "EU"),
        ("uksouth", "EU"),
        ("francecentral", "EU"),
        ("ap-northeast-1", "APAC"),
        ("ap-southeast-2", "APAC"),
        ("asia-east1", "APAC"),
        ("australia-southeast1", "APAC"),
        ("japaneast", "APAC"),
        ("koreacentral", "APAC"),
        ("southeastasia", "APAC"),
        ("centralindia", "APAC"),
        ("sa-east-1", "SA"),
        ("southamerica-east1", "SA"),
        ("brazilsouth", "SA"),
        ("me-south-1", "ME"),
        ("me-west1", "ME"),
        ("il-central-1", "ME"),
        ("uaenorth", "ME"),
        ("af-south-1", "AF"),
        ("africa-south1", "AF"),
        ("southafricanorth", "AF"),
        ("mexicocentral", None),
        ("dc1", None),
        ("lab", None),
    ],
)
def test_geography_is_derived_from_known_regions(region: str, geography: str | None) -> None:
    got = normalize_labels({"region": region})
    assert got.get(GEOGRAPHY) == geography


def test_explicit_geography_wins_and_edge_follows_cloud() -> None:
    assert normalize_labels({"region": "us-east-1", "geography": "CA"})[GEOGRAPHY] == "CA"
    assert normalize_labels({"cloud": "edge"}) == {CLOUD: "edge", EDGE: "true"}
    assert normalize_labels({"cloud": "edge", "edge": "true"})[EDGE] == "true"
    assert EDGE not in normalize_labels({"cloud": "onprem"})
    assert normalize_labels({"cloud": "onprem", "edge": "true"})[EDGE] == "true"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"cloud": "oci"}, "label hyperion.io/cloud: 'oci' is not one of aws, gcp"),
        ({"geography": "Mars"}, "label hyperion.io/geography: 'Mars' is not one of"),
        ({"spot": "yes"}, "label hyperion.io/spot: 'yes' is not one of true, false"),
        ({"edge": "1"}, "label hyperion.io/edge: '1' is not one of"),
        ({"price": "-1"}, "label hyperion.io/price-per-hour: value '-1'"),
        ({"price": "1e3"}, "hyperion.io/price-per-hour: '1e3' is not a non-negative decimal"),
        ({"price": "nan"}, "'nan' is not a non-negative decimal"),
        ({"price": ""}, "'' is not a non-negative decimal"),
        ({"cloud": "edge", "edge": "false"}, "hyperion.io/edge=false contradicts"),
        ({"cloud": "aws", CLOUD: "gcp"}, "label hyperion.io/cloud given twice"),
        ({"Bad Key": "x"}, "label key 'Bad Key'"),
        ({"UPPER.io/x": "x"}, "label key 'UPPER.io/x': the prefix"),
        ({"/x": "x"}, "label key '/x': the prefix"),
        ({"x/": "x"}, "label key 'x/': the name"),
        ({"": "x"}, "label key '': the name"),
        ({"a" * 254 + "/x": "v"}, "the prefix must be a DNS subdomain of at most 253"),
        ({"zone": "a b"}, "label topology.kubernetes.io/zone: value 'a b'"),
        ({"zone": "-a"}, "value '-a'"),
        ({"zone": "a" * 64}, "value 'a{64}'"),
    ],
)
def test_bad_labels_are_named_in_the_error(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        normalize_labels(raw)
    assert "\n" not in str(info.value)


def test_same_value_through_alias_and_full_key_is_fine() -> None:
    assert normalize_labels({"cloud": "aws", CLOUD: "aws"}) == {CLOUD: "aws"}


def test_too_many_labels() -> None:
    with pytest.raises(ValueError, match="more than 64 labels"):
        normalize_labels({f"k{i}": "v" for i in range(MAX_LABELS + 1)})


# --------------------------------------------------------------------------- gpus and build


def test_parse_gpus() -> None:
    assert parse_gpus("H100-80GB:8,L4:1") == (
        Gpu("H100-80GB", 80 * GIB, 8, 8),
        Gpu("L4", 24 * GIB, 1, 1),
    )
    assert parse_gpus(" h200 : 2 ") == (Gpu("H200", 141 * GIB, 2, 2),)
    assert parse_gpus("t4") == (Gpu("T4", 16 * GIB, 1, 1),)
    assert parse_gpus("V100:4,V100-32GB:4")[1].memory_bytes == 32 * GIB
    assert parse_gpus("A100-40GB:1,A100-80GB:1,A10G:1,L40S:1,H100:1")[3].memory_bytes == 48 * GIB
    assert parse_gpus("MI300X:8:192") == (Gpu("MI300X", 192 * GIB, 8, 8),)
    assert parse_gpus("L4:1:22.5") == (Gpu("L4", int(22.5 * GIB), 1, 1),)
    assert parse_gpus("") == ()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("MI300X:8", "unknown GPU model 'MI300X': give its memory as MI300X:8:<GiB>"),
        ("H100:0", "count must be an integer 1-1024"),
        ("H100:x", "count must be an integer"),
        ("H100:-1", "count must be an integer"),
        (":1", "expected MODEL"),
        ("H100:1:2:3", "expected MODEL"),
        ("X:1:0", "memory is out of range"),
        ("X:1:lots", "memory must be a number of GiB"),
        ("L4:1,l4:2", "GPU model L4 is given twice"),
        ("H100,", "expected MODEL"),
        ("bad model:1:8", "gpu model 'bad model'"),
        (",".join(f"m{i}:1:1" for i in range(MAX_GPUS + 1)), "more than 16 GPU models"),
    ],
)
def test_parse_gpus_rejects(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_gpus(spec)


def build(**changes: Any) -> NodeRecord:
    args: dict[str, Any] = {
        "node_id": NID,
        "spiffe_id": spiffe(),
        "name": "n1",
        "mesh_addr": "10.0.0.1:7946",
        "api_addr": "10.0.0.1:8443",
        "labels": {"cloud": "gcp", "region": "europe-west4", "spot": "true", "price": "1.25"},
        "software_version": "0.2.0",
        "protocol_versions": [1, 2],
        "now_unix": 1_700_000_000.0,
        "cpu_millis": 16_000,
        "memory_bytes": 128 * GIB,
        "gpus": parse_gpus("L4:2"),
    }
    return build_record(**{**args, **changes})


def test_build_record_takes_price_and_spot_from_labels() -> None:
    rec = build()
    assert rec.price_per_hour == 1.25 and rec.spot
    assert rec.labels[GEOGRAPHY] == "EU"
    assert (rec.cpu_millis_free, rec.memory_bytes_free) == (16_000, 128 * GIB)
    assert rec.gpus == (Gpu("L4", 24 * GIB, 2, 2),)
    assert rec.protocol_versions == (1, 2) and rec.updated_at == 1_700_000_000.0
    assert NodeRecord.from_bytes(rec.to_bytes()) == rec
    plain = build(labels={})
    assert plain.price_per_hour == 0.0 and not plain.spot and plain.egress_price_per_gb == 0.0
    with pytest.raises(ValueError, match="spot"):
        build(labels={"spot": "maybe"})
    with pytest.raises(RecordError, match="software_version"):
        build(software_version="0.2")


def test_build_record_reads_local_capacity_only_when_asked() -> None:
    rec = build(cpu_millis=None, memory_bytes=None)
    assert (rec.cpu_millis, rec.memory_bytes) == local_capacity()
    assert rec.cpu_millis >= 1000


def test_local_capacity_reads_meminfo(tmp_path: Any) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16384 kB\nMemFree: 1 kB\nMemAvailable:    8192 kB\n")
    cpu, memory = local_capacity(str(meminfo))
    assert cpu >= 1000 and cpu % 1000 == 0
    assert memory == 16384 * 1024
    assert free_memory_bytes(str(meminfo)) == 8192 * 1024
    assert local_capacity(str(tmp_path / "missing"))[1] == 0
    assert free_memory_bytes(str(tmp_path / "missing")) == 0
    meminfo.write_text("MemTotal: lots\n")
    assert local_capacity(str(meminfo))[1] == 0


# --------------------------------------------------------------------------- semver

SEMVER_ORG_CHAIN = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "1.10.0",
    "2.0.0",
]


def test_semver_precedence_follows_semver_org() -> None:
    versions = [parse_version(s) for s in SEMVER_ORG_CHAIN]
    for lower, higher in zip(versions, versions[1:], strict=False):
        assert lower < higher and higher > lower and lower <= higher and higher >= lower
        assert lower != higher
    assert sorted(reversed(versions)) == versions
    assert [str(v) for v in versions] == SEMVER_ORG_CHAIN


def test_semver_parts_and_build_metadata() -> None:
    assert parse_version("1.2.3-rc.1+build.7") == Version(1, 2, 3, ("rc", 1))
    assert parse_version("1.0.0+a") == parse_version("1.0.0+b") == Version(1, 0, 0)
    assert parse_version("1.0.0-0a.1") == Version(1, 0, 0, ("0a", 1))
    assert parse_version("1.0.0-x-y") < parse_version("1.0.0-x-z")
    assert parse_version("1.0.0-1") < parse_version("1.0.0-a")  # numeric < alphanumeric
    assert parse_version("1.0.0-a") < parse_version("1.0.0-a.0")  # fewer ids is lower
    assert parse_version("0.2", shorthand=True) == Version(0, 2, 0)
    assert parse_version("1", shorthand=True) == Version(1, 0, 0)


@pytest.mark.parametrize(
    "text",
    [
        "1",
        "1.2",
        "01.0.0",
        "1.02.0",
        "1.0.0-01",
        "1.0.0-",
        "1.0.0+",
        "1.0.0-a..b",
        "1.0.0+a..b",
        "v1.0.0",
        " 1.0.0",
        "1.0.0\n",
        "1.0.0-a_b",
        "1.0.0-\u0661",
        "1.2.3.4",
        "",
        "1" * 200 + ".0.0",
    ],
)
def test_invalid_semver(text: str) -> None:
    with pytest.raises(ValueError, match="is not a semantic version"):
        parse_version(text)


@pytest.mark.parametrize("text", ["01", "1.02", "1.2-rc.1", "a", "1."])
def test_invalid_version_shorthand(text: str) -> None:
    with pytest.raises(ValueError, match="is not a semantic version"):
        parse_version(text, shorthand=True)


# --------------------------------------------------------------------------- selectors


def test_parse_quantity() -> None:
    assert parse_quantity("4") == 4
    assert parse_quantity("500m") == Decimal("0.5")
    assert parse_quantity("1.5") == Decimal("1.5")
    assert parse_quantity("8Gi") == 8 * GIB
    assert parse_quantity("16G") == 16 * 10**9
    assert parse_quantity("2k") == 2000 and parse_quantity("1Ki") == 1024
    for bad in ("", "-1", "1e3", "4 Gi", "4gi", "Gi", "1.2.3"):
        with pytest.raises(ValueError, match="is not a quantity"):
            parse_quantity(bad)


def sel(text: str, rec: NodeRecord | None = None) -> bool:
    return parse_selector(text).matches(rec or record())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("  ", True),
        ("cloud=aws", True),
        ("cloud==aws", True),
        ("cloud = aws", True),
        ("cloud=gcp", False),
        ("cloud!=gcp", True),
        ("cloud!=aws", False),
        ("zone!=us-east-1a", True),  # absent label: != holds (Kubernetes semantics)
        ("zone=", False),
        ("cloud in (gcp, aws)", True),
        ("cloud in (gcp,azure)", False),
        ("cloud notin (gcp,azure)", True),
        ("cloud notin (aws)", False),
        ("zone notin (a)", True),
        ("cloud", True),
        ("zone", False),
        ("!zone", True),
        ("!cloud", False),
        ("! cloud", False),
        (f"{CLOUD}=aws", True),
        ("geography=us", True),  # closed-set values are normalized like labels
        ("region in (us-east-1,eu-west-1),geography=US,spot", True),
        ("cloud=aws,spot=false", False),
        ("team>3", False),  # absent: order comparisons never hold
    ],
)
def test_label_requirements(text: str, expected: bool) -> None:
    assert sel(text) is expected


def test_numeric_label_comparisons() -> None:
    rec = record(labels={PRICE_PER_HOUR: "2.50", "rank": "7", "tier": "gold"})
    assert sel("price-per-hour>2", rec) and sel("price-per-hour<=2.5", rec)
    assert not sel("price-per-hour<2.5", rec) and sel("price-per-hour>=2.5", rec)
    assert sel("rank>6,rank<8", rec) and not sel("rank>7", rec)
    assert not sel("tier>1", rec) and not sel("tier<1", rec)  # not a number: no match


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version=0.2.0", True),
        ("version=0.2", True),
        ("version==0.2.0+build.1", True),
        ("version!=0.2.0", False),
        ("version>=0.2", True),
        ("version>0.2.0-rc.1", True),
        ("version<1.0.0", True),
        ("version<1", True),
        ("version>0.2", False),
        ("version<=0.1.9", False),
        ("version in (0.1.0,0.2.0)", True),
        ("version notin (0.1.0,0.2.0)", False),
        ("protocol>=2", True),
        ("protocol>2", False),
        ("protocol=1", True),
        ("protocol<2", True),
        ("protocol!=1", False),  # none of its protocols may be 1
        ("protocol!=3", True),
        ("protocol notin (3,4)", True),
        ("protocol in (2,3)", True),
        ("name=gpu-1", True),
        ("name in (a,gpu-1)", True),
        ("name!=gpu-1", False),
        (f"node-id={NID}", True),
        (f"node-id={NID.upper()}", True),
        (f"node-id!={'cd' * 20}", True),
        ("gpu", True),
        ("!gpu", False),
        ("gpu=H100-80GB", True),
        ("gpu=h100-80gb", True),
        ("gpu in (A100-80GB,L4)", True),
        ("gpu=T4", False),
        ("gpu!=T4", True),
        ("gpu!=L4", False),
        ("gpu notin (T4,V100)", True),
        ("cpu>=6", True),
        ("cpu>6", False),
        ("cpu>=6000m", True),
        ("cpu>5500m", True),
        ("cpu=6", True),
        ("cpu<6.5", True),
        ("memory>=48Gi", True),
        ("memory>48Gi", False),
        ("memory>50G", True),  # 48 GiB is 51.5 GB
        ("memory<52G", True),
        ("gpus>=7", True),
        ("gpus>7", False),
        ("gpus=7", True),
        ("price<3", True),
        ("price<=2.5", True),
        ("price<2.5", False),
        ("price=2.5", True),
        ("price>2.49", True),
        ("spot", True),
        ("!spot", False),
        ("spot=true", True),
        ("spot=false", False),
        ("spot!=false", True),
        ("spot in (true)", True),
        ("edge", False),
        ("!edge", True),
        ("edge=false", True),
        ("cloud=aws,version>=0.2,gpu=H100-80GB,gpus>=4,price<3,spot", True),
        ("cloud=aws,version>=0.2,gpu=H100-80GB,gpus>=8", False),
    ],
)
def test_pseudo_keys(text: str, expected: bool) -> None:
    assert sel(text) is expected


def test_pseudo_keys_on_a_plain_node() -> None:
    rec = record(labels={EDGE: "true"}, gpus=(), spot=False, price_per_hour=0.1)
    assert sel("edge", rec) and sel("edge=true", rec) and not sel("!edge", rec)
    assert sel("!gpu", rec) and not sel("gpu", rec) and sel("gpus=0", rec)
    assert sel("gpu!=H100", rec) and not sel("gpu=H100", rec)
    assert sel("!spot", rec) and sel("spot=false", rec)
    assert sel("price<=0.1", rec) and sel("price=0.1", rec)  # the float 0.1 is the decimal 0.1
    assert sel("version>=0.2.0-rc.1", record(software_version="0.2.0-rc.2"))
    assert not sel("version>=0.2", record(software_version="0.2.0-rc.2"))


def test_selector_renders_normalized_and_parses_back() -> None:
    text = "cloud = aws, region in (us-east-1, eu-west-1),!zone,geography=eu,spot,version>=0.2"
    s = parse_selector(text)
    assert str(s) == (
        f"{CLOUD}=aws,{REGION} in (us-east-1,eu-west-1),!{ZONE},{GEOGRAPHY}=EU,"
        "spot=true,version>=0.2"
    )
    assert parse_selector(str(s)) == s
    assert s.requirements[0] == Requirement(CLOUD, "=", ("aws",))
    assert Selector().matches(record())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cloud=aws,version>=x", "bad selector requirement 'version>=x': 'x' is not a semantic"),
        ("cloud=oci", "bad selector requirement 'cloud=oci': .* not one of aws"),
        ("geography=mars", "'mars' is not one of"),
        ("cpu", "bad selector requirement 'cpu': cpu does not support 'key' \\(exists\\)"),
        ("!version", "version does not support '!key'"),
        ("name>a", "name does not support '>'"),
        ("gpu>1", "gpu does not support '>'"),
        ("spot>1", "spot does not support '>'"),
        ("spot=yes", "'yes' is not true or false"),
        ("cpu>=lots", "'lots' is not a quantity"),
        ("cpu>=", "empty value for cpu"),
        ("memory>-1", "'-1' is not a quantity"),
        ("price<cheap", "'cheap' is not a non-negative decimal"),
        ("team>high", "'high' is not a non-negative decimal"),
        ("team>", "empty value for team"),
        ("protocol>=two", "'two' is not a protocol version number"),
        ("node-id=abc", "'abc' is not a node id"),
        ("a b", "bad selector requirement 'a b': expected key, !key"),
        ("a===b", "expected key"),
        ("a=b=c", "expected key"),
        ("!a=b", "expected key"),
        ("a in (b", "'\\(' without '\\)'"),
        ("a in b)", "'\\)' without '\\('"),
        ("a in ()", "empty value in the set"),
        ("a in (b,,c)", "empty value in the set"),
        ("a in ((b))", "expected key"),
        ("a,,b", "empty requirement"),
        ("a,", "empty requirement"),
        ("Bad Key=1", "expected key"),
        ("UPPER.io/x=1", "label key 'UPPER.io/x'"),
        ("zone=a_", "value 'a_'"),
        ("x" * 5000, "longer than 4096"),
    ],
)
def test_bad_selectors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_selector(text)
    assert "\n" not in str(info.value)


def test_requirement_validates_itself() -> None:
    with pytest.raises(ValueError, match="unknown operator"):
        Requirement("cloud", "~", ("a",))
    with pytest.raises(ValueError, match="takes exactly one value"):
        Requirement(CLOUD, "=", ("aws", "gcp"))
    with pytest.raises(ValueError, match="takes no values"):
        Requirement(CLOUD, "exists", ("aws",))
    with pytest.raises(ValueError, match="in takes 1 to 64 values"):
        Requirement(CLOUD, "in", ())


@FUZZ
@given(st.text(alphabet="ab=!<>(), inotcpu0123.Gi", max_size=30))
def test_any_selector_text_parses_or_raises_value_error(text: str) -> None:
    try:
        s = parse_selector(text)
    except ValueError:
        return
    s.matches(record())
    assert parse_selector(str(s)) == s
