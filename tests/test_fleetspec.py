"""Local-mesh node identities (``hyperion.cli.fleetspec``) and ``hyperion up --fleet``."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from node_helpers import CALL_TIMEOUT_S
from node_helpers import run_cli as hyperion
from test_cli import assert_usage_error

from hyperion.cli import fleetspec
from hyperion.cli.fleetspec import (
    DEFAULT_FLEET,
    EMBEDDED_PRICES,
    FleetError,
    NodeIdentity,
    default_fleet,
    load_fleet,
    parse_fleet,
    resolve_fleet,
)
from hyperion.datafiles import DataError, data_dir
from hyperion.mesh.records import (
    CLOUD,
    EDGE,
    GEOGRAPHY,
    INSTANCE_TYPE,
    PRICE_PER_HOUR,
    REGION,
    SPOT,
    ZONE,
    normalize_labels,
    parse_gpus,
    parse_quantity,
)
from hyperion.sim.fleet import data

GIB = 1 << 30
SHARED = data_dir()
HAVE_SHARED = SHARED is not None and (SHARED / data.PRICES_FILE).is_file()
needs_shared = pytest.mark.skipif(not HAVE_SHARED, reason="../shared/data not found")


def key(i: NodeIdentity) -> tuple[object, ...]:
    return (i.cloud, i.region, i.zone, i.instance_type, i.spot)


# ------------------------------------------------------------------------ default


def test_default_fleet_is_deterministic_distinct_and_diverse() -> None:
    n = 3 * len(DEFAULT_FLEET)
    fleet = default_fleet(n)
    assert fleet == default_fleet(n)
    assert default_fleet(4) == fleet[:4]
    assert len({key(i) for i in fleet}) == n, "identities are distinct up to 3 rounds"
    # the documented order of the first round
    assert [(i.cloud, i.spot) for i in fleet[:5]] == [
        ("aws", False), ("gcp", False), ("edge", False), ("aws", True), ("azure", True),
    ]  # fmt: skip
    assert {i.cloud for i in fleet[:10]} == {"aws", "gcp", "azure", "edge"}
    assert {i.geography for i in fleet[:10]} == {"US", "EU", "APAC"}
    assert any(i.gpus for i in fleet[:3]) and any(not i.gpus for i in fleet[:3])
    assert default_fleet(0) == []
    with pytest.raises(ValueError):
        default_fleet(-1)


def test_default_fleet_zones_follow_each_clouds_convention() -> None:
    zones = [i.zone for i in default_fleet(11)]
    assert zones[0] == "us-east-1a" and zones[3] == "us-east-1b" and zones[10] == "us-east-1c"
    assert zones[1] == "europe-west4-a"
    assert zones[4] == "eastus-1"
    assert zones[2] == "edge-frankfurt-1"


def test_edge_box_is_cheap_small_and_where_its_users_are() -> None:
    edge = default_fleet(3)[2]
    assert edge.cloud == "edge" and edge.edge and not edge.spot
    assert edge.geography == "EU"
    assert edge.price_per_hour < 0.1
    assert edge.cpu_millis <= 12_000 and edge.memory_bytes <= 64 * GIB
    assert [g.model for g in edge.gpus] == ["Jetson-AGX-Orin"]
    labels = edge.labels()
    assert labels[EDGE] == "true" and labels[GEOGRAPHY] == "EU"


def _csv_rows(text: str) -> dict[tuple[str, str, str], dict[str, str]]:
    return {
        (r["cloud"], r["region"], r["instance_type"]): r for r in csv.DictReader(text.splitlines())
    }


@needs_shared
def test_every_default_price_and_shape_is_its_csv_row() -> None:
    assert SHARED is not None
    rows = _csv_rows((SHARED / data.PRICES_FILE).read_text())
    for ident in default_fleet(len(DEFAULT_FLEET)):
        if ident.cloud == "edge":
            continue
        row = rows[(ident.cloud, ident.region, ident.instance_type)]
        column = "spot_usd_per_h" if ident.spot else "ondemand_usd_per_h"
        assert ident.price_per_hour == float(row[column]), ident
        assert float(ident.labels()[PRICE_PER_HOUR]) == float(row[column])
        assert ident.cpu_millis == int(row["vcpus"]) * 1000
        assert ident.memory_bytes == int(float(row["memory_gib"]) * GIB)
        gpus = [(g.model, g.count) for g in ident.gpus]
        assert gpus == ([(row["gpu_model"], int(row["gpu_count"]))] if row["gpu_model"] else [])


@needs_shared
def test_embedded_rows_are_verbatim_rows_of_the_shared_csv() -> None:
    assert SHARED is not None
    shared = (SHARED / data.PRICES_FILE).read_text().splitlines()
    embedded = EMBEDDED_PRICES.splitlines()
    assert embedded[0] == shared[0]
    assert set(embedded[1:]) <= set(shared[1:])


def test_default_fleet_without_shared_data_uses_the_embedded_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_data = default_fleet(12)

    def absent() -> tuple[data.PriceRow, ...]:
        raise DataError("data file cloud_prices.csv not found")

    monkeypatch.setattr(data, "prices", absent)
    assert fleetspec.price_table()[1] == "the embedded price table"
    without = default_fleet(12)
    if HAVE_SHARED:
        assert without == with_data


def test_labels_normalize_and_node_args_round_trip() -> None:
    from hyperion.cli.main import parse_labels

    for ident in default_fleet(len(DEFAULT_FLEET)):
        labels = ident.labels()
        assert normalize_labels(labels) == labels
        assert {CLOUD, REGION, ZONE, GEOGRAPHY, INSTANCE_TYPE, SPOT, PRICE_PER_HOUR} <= set(labels)
        assert labels[SPOT] == ("true" if ident.spot else "false")
        args = ident.node_args()
        flags = dict(zip(args[::2], args[1::2], strict=True))
        assert set(flags) <= {"--labels", "--cpu", "--memory", "--gpus"}
        assert normalize_labels(parse_labels(flags["--labels"])) == labels
        assert int(parse_quantity(flags["--cpu"]) * 1000) == ident.cpu_millis
        assert int(parse_quantity(flags["--memory"])) == ident.memory_bytes
        assert parse_gpus(flags.get("--gpus", "")) == ident.gpus


# --------------------------------------------------------------------------- YAML

GOOD = """\
nodes:
  - {cloud: aws, region: us-east-1, instance-type: g4dn.xlarge, spot: true}
  - {cloud: AWS, region: us-east-1, instance-type: g4dn.xlarge, price-per-hour: 0.5}
  - cloud: gcp
    region: europe-west4
    instance-type: n2-standard-8+L4x1
  - cloud: edge
    region: edge-paris
    geography: eu
    cpu: 8
    memory: 32Gi
    gpus: "Orin:1:32"
    labels: {hyperion.io/tier: edge, team: vision}
  - {cloud: edge, region: edge-tokyo, geography: APAC, instance-type: Jetson-AGX-Xavier}
  - {cloud: onprem, region: us-lab, zone: rack-7, cpu: 500m, memory: "1073741824",
     price-per-hour: "0.01"}
  - {cloud: azure, region: eastus, instance-type: Standard_D9_custom, price-per-hour: 1,
     cpu: "16", memory: 64Gi}
"""


@needs_shared
def test_load_fleet_happy_path(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(GOOD)
    fleet = load_fleet(path)
    assert len(fleet) == 7
    spot, od, gcp, edge, xavier, onprem, custom = fleet
    assert spot.spot and spot.price_per_hour == 0.1845 and spot.zone == "us-east-1a"
    assert spot.cpu_millis == 4000 and spot.memory_bytes == 16 * GIB
    assert [g.model for g in spot.gpus] == ["T4"]
    assert od.cloud == "aws" and not od.spot and od.price_per_hour == 0.5  # explicit wins
    assert od.zone == "us-east-1b"
    assert gcp.instance_type == "n2-standard-8" and [g.model for g in gcp.gpus] == ["L4"]
    assert gcp.price_per_hour == pytest.approx(0.58804 + 0.42766)
    assert gcp.labels()[INSTANCE_TYPE] == "n2-standard-8"
    assert edge.edge and edge.geography == "EU" and edge.price_per_hour == 0.0
    assert edge.cpu_millis == 8000 and edge.memory_bytes == 32 * GIB
    assert edge.gpus[0].model == "Orin" and edge.gpus[0].memory_bytes == 32 * GIB
    assert edge.labels()["hyperion.io/tier"] == "edge" and edge.labels()["team"] == "vision"
    assert xavier.cpu_millis == 8000 and xavier.gpus[0].model == "Jetson-AGX-Xavier"
    assert xavier.price_per_hour == fleetspec.EDGE_USD_PER_H
    assert not onprem.edge and onprem.labels()[EDGE] == "false"
    assert onprem.zone == "rack-7" and onprem.cpu_millis == 500 and onprem.memory_bytes == GIB
    assert onprem.geography == "US"  # implied by the region's us- prefix
    assert custom.instance_type == "Standard_D9_custom" and custom.price_per_hour == 1.0
    for ident in fleet:
        assert normalize_labels(ident.labels()) == ident.labels()


ONE = "  - {cloud: aws, region: us-east-1, instance-type: g4dn.xlarge}\n"
EDGE_BOX = "cloud: edge, region: edge-x, geography: EU, cpu: 1, memory: 1Gi"


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        pytest.param("{region: us-east-1}", "cloud: missing", id="no-cloud"),
        pytest.param("{cloud: oci, region: x}", "cloud: unknown cloud 'oci'", id="cloud"),
        pytest.param("{cloud: aws}", "region: missing", id="no-region"),
        pytest.param("{cloud: aws, region: 7}", "region: expected a non-empty", id="region-int"),
        pytest.param(
            "{cloud: aws, region: us-east-1, flavour: x}", "flavour: unknown key", id="key"
        ),
        pytest.param(
            "{cloud: aws, region: us-east-1, instance-type: x9.huge}",
            "instance-type: 'x9.huge' is not in",
            id="instance-type",
        ),
        pytest.param(
            "{cloud: aws, region: us-east-1, instance-type: x9.huge, cpu: 4, memory: 8Gi}",
            "give price-per-hour explicitly",
            id="instance-type-no-price",
        ),
        pytest.param(
            "{cloud: aws, region: mars-1, price-per-hour: 1}",
            "instance-type: missing",
            id="no-instance-type",
        ),
        pytest.param("{cloud: aws, region: us-east-1, cpu: lots}", "cpu: 'lots'", id="cpu"),
        pytest.param("{cloud: aws, region: us-east-1, cpu: 0}", "cpu: must be positive", id="cpu0"),
        pytest.param(
            "{cloud: aws, region: us-east-1, memory: [1]}", "memory: expected a quantity", id="mem"
        ),
        pytest.param(
            "{cloud: aws, region: us-east-1, memory: -1Gi}", "memory: '-1Gi'", id="mem-neg"
        ),
        pytest.param(
            "{cloud: aws, region: us-east-1, gpus: 'Quantum9000:1'}",
            "gpus: unknown GPU model 'Quantum9000'",
            id="gpus",
        ),
        pytest.param(
            "{cloud: aws, region: us-east-1, gpus: 3}", "gpus: expected a string", id="gpus-int"
        ),
        pytest.param(
            "{cloud: aws, region: us-east-1, price-per-hour: -1}",
            "price-per-hour: must be a finite non-negative",
            id="price-negative",
        ),
        pytest.param(
            "{cloud: aws, region: us-east-1, price-per-hour: cheap}",
            "price-per-hour: expected a number",
            id="price-text",
        ),
        pytest.param(
            "{cloud: aws, region: us-east-1, spot: 'yes'}",
            "spot: expected true or false",
            id="spot",
        ),
        pytest.param(
            "{cloud: edge, region: edge-x, geography: EU, spot: true, cpu: 1, memory: 1Gi}",
            "spot: edge machines have no spot market",
            id="edge-spot",
        ),
        pytest.param(
            "{cloud: edge, region: edge-x, geography: EU, memory: 1Gi}",
            "cpu: missing",
            id="edge-cpu",
        ),
        pytest.param(
            "{cloud: onprem, region: lab, cpu: 1, memory: 1Gi}",
            "geography: missing",
            id="no-geography",
        ),
        pytest.param(
            "{cloud: edge, region: edge-x, geography: Mars, cpu: 1, memory: 1Gi}",
            "geography: 'MARS' is not one of",
            id="geography",
        ),
        pytest.param(
            "{" + EDGE_BOX + ", labels: {cloud: aws}}",
            "labels: 'cloud' is set by the entry's own fields",
            id="labels-identity",
        ),
        pytest.param(
            "{" + EDGE_BOX + ", labels: {a: 'b c'}}",
            "labels: label a: value 'b c'",
            id="labels-value",
        ),
        pytest.param(
            "{cloud: edge, region: 'Not A Region!', geography: EU, cpu: 1, memory: 1Gi}",
            "topology.kubernetes.io/region",
            id="region-value",
        ),
        pytest.param("aws", "expected a mapping", id="entry-not-mapping"),
    ],
)
def test_load_fleet_errors_name_the_entry_and_field(
    tmp_path: Path, entry: str, needle: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"nodes:\n{ONE}  - {entry}\n")
    with pytest.raises(FleetError) as exc:
        load_fleet(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: nodes[1] (node-2): "), msg
    assert needle in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("nodes: [", "not valid YAML at line", id="syntax"),
        pytest.param("- cloud: aws\n", "expected a mapping with a 'nodes' list", id="list"),
        pytest.param("", "expected a mapping with a 'nodes' list", id="empty"),
        pytest.param("nodes: []\n", "'nodes' must be a non-empty list", id="no-nodes"),
        pytest.param(f"nodes:\n{ONE}extra: 1\n", "unknown top-level key 'extra'", id="top-key"),
    ],
)
def test_parse_fleet_document_errors(text: str, needle: str) -> None:
    with pytest.raises(FleetError) as exc:
        parse_fleet(text, "f.yaml")
    assert str(exc.value).startswith("f.yaml: ") and needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_load_fleet_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="cannot read fleet file"):
        load_fleet(tmp_path / "absent.yaml")


# ------------------------------------------------------------------ --fleet value


def test_resolve_fleet(tmp_path: Path) -> None:
    assert resolve_fleet("none", None) == (3, None)
    assert resolve_fleet("none", 5) == (5, None)
    assert resolve_fleet("default", None) == (3, default_fleet(3))
    assert resolve_fleet("default", 7) == (7, default_fleet(7))
    two = tmp_path / "two.yaml"
    two.write_text(f"nodes:\n{ONE}{ONE}")
    n, fleet = resolve_fleet(str(two), None)
    assert n == 2 and fleet is not None and len(fleet) == 2
    n, fleet = resolve_fleet(str(two), 1)
    assert n == 1 and fleet is not None and len(fleet) == 1
    with pytest.raises(FleetError, match=r"describes 2 node\(s\) but --nodes is 3"):
        resolve_fleet(str(two), 3)
    with pytest.raises(FleetError, match="expected default, none or a YAML file"):
        resolve_fleet(str(tmp_path / "nosuch.yaml"), None)
    with pytest.raises(FleetError, match="at least 1"):
        resolve_fleet("default", 0)


# ------------------------------------------------------------------------ the CLI


def test_up_with_a_bad_fleet_file_exits_2_with_the_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"nodes:\n{ONE}  - {{cloud: aws, region: us-east-1, cpu: lots}}\n")
    d = tmp_path / "mesh"
    err = assert_usage_error(hyperion(tmp_path, "up", "--dir", str(d), "--fleet", str(bad)))
    assert "nodes[1] (node-2): cpu: 'lots'" in err
    err = assert_usage_error(hyperion(tmp_path, "up", "--dir", str(d), "--fleet", "cloudy"))
    assert "expected default, none or a YAML file" in err
    two = tmp_path / "two.yaml"
    two.write_text(f"nodes:\n{ONE}{ONE}")
    err = assert_usage_error(
        hyperion(tmp_path, "up", "--dir", str(d), "--fleet", str(two), "--nodes", "3")
    )
    assert "--nodes is 3" in err
    assert not d.exists(), "a rejected --fleet must not create a mesh"


def _up_labels(tmp_path: Path, *flags: str) -> tuple[list[dict[str, str]], str]:
    """Run ``hyperion up`` until its nodes are up; their labels and up's output."""
    tmp_path.mkdir(exist_ok=True)
    d = tmp_path / "mesh"
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"), PYTHONUNBUFFERED="1")
    env["COLUMNS"] = "250"
    out = tmp_path / "up.out"
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hyperion", "up", "--dir", str(d), *flags],
            cwd=tmp_path,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while not (d / "mesh.json").exists() or b"Ctrl-C" not in out.read_bytes():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        names = [n["name"] for n in json.loads((d / "mesh.json").read_text())["nodes"]]
        labels = [
            json.loads((d / "nodes" / name / "node.json").read_text())["labels"]
            for name in sorted(names)
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    return labels, out.read_text()


def test_up_gives_each_node_its_default_identity_and_none_gives_none(tmp_path: Path) -> None:
    labels, out = _up_labels(tmp_path / "a", "--nodes", "2")
    assert labels == [i.labels() for i in default_fleet(2)]
    assert "us-east-1" in out and "europe-west4" in out and "0.42766" in out
    labels, out = _up_labels(tmp_path / "b", "--nodes", "2", "--fleet", "none")
    assert labels == [{}, {}]
    assert "us-east-1" not in out and "no fleet" in out
