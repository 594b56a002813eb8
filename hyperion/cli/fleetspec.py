"""Node identities for a local mesh: which cloud, region, zone, instance and price each
``hyperion up`` node claims to be, so that cost- and latency-aware placement is visible
on one machine.

Owns ``NodeIdentity`` (an identity and the ``node start`` flags it implies), the built-in
``default_fleet``, the YAML fleet format (``load_fleet``) and how ``hyperion up --fleet``
is resolved (``resolve_fleet``). Prices and instance shapes come from the simulator's
price table (``hyperion.sim.fleet.data.prices``, i.e. ``cloud_prices.csv``); when the
shared data directory is absent a few rows copied from it (``EMBEDDED_PRICES``) stand in,
so ``hyperion up`` works on a fresh machine. Edge boxes take the simulator's edge models
(``hyperion.sim.fleet.scenario.EDGE_MODELS`` and ``EDGE_USD_PER_H``).

Capacity is the instance's nominal capacity (vCPUs x 1000 millicores, memory GiB, its
GPUs): it is *advertised*, not this machine's. Every node process still runs on the
laptop; only its record (labels, capacity, price) says otherwise.

The default fleet, in this fixed order (``DEFAULT_FLEET``), then again from the top with
the next zone of each region (AWS/GCP zones ``a``, ``b``, ``c``; Azure ``1``-``3``; edge
boxes ``-1``..``-3``), so identities are distinct up to ``3 * len(DEFAULT_FLEET)`` (30)
nodes and repeat after that (node names stay distinct)::

    node-1   aws    us-east-1       g4dn.xlarge               on-demand  T4
    node-2   gcp    europe-west4    n2-standard-8             on-demand  (CPU)
    node-3   edge   edge-frankfurt  Jetson-AGX-Orin           (power)    Orin, geography EU
    node-4   aws    us-east-1       g4dn.xlarge               spot       T4
    node-5   azure  eastus          Standard_NC4as_T4_v3      spot       T4
    node-6   aws    ap-northeast-1  g5.xlarge                 on-demand  A10G
    node-7   gcp    asia-southeast1 n2-standard-4             spot       (CPU)
    node-8   edge   edge-tokyo      Jetson-AGX-Xavier         (power)    Xavier, geography APAC
    node-9   aws    eu-central-1    g6.xlarge                 spot       L4
    node-10  azure  westus2         Standard_NC24ads_A100_v4  on-demand  A100-80GB

The price table has no South American rows, so the default fleet has none.

The YAML format (``hyperion up --fleet FILE.yaml``)::

    nodes:                      # one entry per node, in order: node-1, node-2, ...
      - cloud: aws              # aws | gcp | azure | edge | onprem (required)
        region: us-east-1       # required
        instance-type: g4dn.xlarge
        spot: true              # default false; not for edge/onprem
      - cloud: gcp
        region: europe-west4
        instance-type: n2-standard-8+L4x1   # GCP GPU rows: host VM + accelerators
      - cloud: edge
        region: edge-paris
        geography: EU           # required where the region implies none (edge, onprem)
        price-per-hour: 0.0     # default: the edge model's, else 0
        cpu: "8"                # Kubernetes quantities: 8, 500m
        memory: 32Gi
        gpus: "Orin:1:32"       # as node start --gpus: MODEL[:COUNT[:GiB]],...
        labels: {hyperion.io/tier: edge}   # optional extra labels

Keys: ``cloud``, ``region``, ``zone`` (default: the cloud's convention, zones in turn),
``geography`` (default: implied by the region), ``instance-type``, ``spot``,
``price-per-hour``, ``cpu``, ``memory``, ``gpus``, ``labels``. For aws/gcp/azure, an
``instance-type`` found in the price table for that cloud and region supplies the price
(the spot price when ``spot``), cpu, memory and gpus; any of them given explicitly wins.
An instance type not in the table (or none) needs ``price-per-hour``, ``cpu`` and
``memory``. An edge entry whose ``instance-type`` is one of the simulator's edge models
(``Jetson-AGX-Orin``, ``Jetson-AGX-Xavier``) takes that model's shape and price; other
edge and onprem entries need ``cpu`` and ``memory`` and default to a price of 0.

``--nodes`` defaults to the number of entries; a larger ``--nodes`` is an error (the file
must describe every node), a smaller one uses the first entries. Every error is a
``FleetError`` (a ValueError) naming the file, the entry (``nodes[1] (node-2)``) and the
field.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hyperion.datafiles import DataError
from hyperion.mesh.records import (
    CLOUD,
    CLOUDS,
    EDGE,
    GEOGRAPHIES,
    GEOGRAPHY,
    INSTANCE_TYPE,
    PRICE_PER_HOUR,
    REGION,
    SHORT_KEYS,
    SPOT,
    ZONE,
    Gpu,
    geography_of_region,
    normalize_labels,
    parse_gpus,
    parse_quantity,
)
from hyperion.sim.fleet import data
from hyperion.sim.fleet.scenario import EDGE_MODELS, EDGE_USD_PER_H

GIB = 1 << 30
ZONES_PER_REGION = 3
FLEET_DEFAULT, FLEET_NONE = "default", "none"
DEFAULT_NODES = 3

# Rows of ../shared/data/cloud_prices.csv (sha256 93187121…85c3; SkyPilot catalog, see
# the source column and MANIFEST.md), copied verbatim: the default fleet's rows, used
# only when the shared data directory is absent. tests/test_fleetspec.py checks that
# they still equal the shared file's rows.
EMBEDDED_PRICES = """\
cloud,region,instance_type,gpu_model,gpu_count,vcpus,memory_gib,ondemand_usd_per_h,spot_usd_per_h,source
aws,us-east-1,g4dn.xlarge,T4,1,4,16,0.526,0.184500,skypilot-org/skypilot-catalog@001367d22a00:catalogs/v7/aws/vms.csv; spot=min over 5 zone row(s) (use1-az5)
aws,ap-northeast-1,g5.xlarge,A10G,1,4,16,1.459,0.691300,skypilot-org/skypilot-catalog@001367d22a00:catalogs/v7/aws/vms.csv; spot=min over 2 zone row(s) (apne1-az4)
aws,eu-central-1,g6.xlarge,L4,1,4,16,1.0064,0.360300,skypilot-org/skypilot-catalog@001367d22a00:catalogs/v7/aws/vms.csv; spot=min over 2 zone row(s) (euc1-az2)
gcp,asia-southeast1,n2-standard-4,,,4,16,0.23961,0.08555,skypilot-org/skypilot-catalog@017e2502fb63:catalogs/v7/gcp/vms.csv; spot=min over 3 zone row(s) (asia-southeast1-a/asia-southeast1-b/asia-southeast1-c)
gcp,europe-west4,n2-standard-8,,,8,32,0.42766,0.14174,skypilot-org/skypilot-catalog@017e2502fb63:catalogs/v7/gcp/vms.csv; spot=min over 3 zone row(s) (europe-west4-a/europe-west4-b/europe-west4-c)
azure,westus2,Standard_NC24ads_A100_v4,A100-80GB,1,24,220,3.673,0.615962,skypilot-org/skypilot-catalog@098741e70562:catalogs/v6/azure/vms.csv; single row per region (no AZ split)
azure,eastus,Standard_NC4as_T4_v3,T4,1,4,28,0.526,0.062699,skypilot-org/skypilot-catalog@098741e70562:catalogs/v6/azure/vms.csv; single row per region (no AZ split)
"""  # noqa: E501 (verbatim CSV rows)

# GPU memory of table models that parse_gpus does not know by name: the table's A100
# rows (p4d.24xlarge, GCP a2, Azure ND96asr_v4) are the 40 GB part.
TABLE_GPU_MEMORY_GIB: Mapping[str, int] = {"A100": 40}
# The default fleet's edge sites (metro -> geography), named as the simulator's metros.
EDGE_METROS: Mapping[str, str] = {"frankfurt": "EU", "tokyo": "APAC"}

# (cloud, region or edge metro, instance type or edge model, spot)
DEFAULT_FLEET: tuple[tuple[str, str, str, bool], ...] = (
    ("aws", "us-east-1", "g4dn.xlarge", False),
    ("gcp", "europe-west4", "n2-standard-8", False),
    ("edge", "frankfurt", "Jetson-AGX-Orin", False),
    ("aws", "us-east-1", "g4dn.xlarge", True),
    ("azure", "eastus", "Standard_NC4as_T4_v3", True),
    ("aws", "ap-northeast-1", "g5.xlarge", False),
    ("gcp", "asia-southeast1", "n2-standard-4", True),
    ("edge", "tokyo", "Jetson-AGX-Xavier", False),
    ("aws", "eu-central-1", "g6.xlarge", True),
    ("azure", "westus2", "Standard_NC24ads_A100_v4", False),
)

ENTRY_KEYS = (
    "cloud", "region", "zone", "geography", "instance-type", "spot", "price-per-hour",
    "cpu", "memory", "gpus", "labels",
)  # fmt: skip
_IDENTITY_LABELS = frozenset(
    {CLOUD, REGION, ZONE, GEOGRAPHY, INSTANCE_TYPE, SPOT, PRICE_PER_HOUR, EDGE}
)


class FleetError(ValueError):
    """A bad ``--fleet`` value or fleet file; the message names the entry and field."""


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """What one local node advertises: placement labels, price and nominal capacity.

    ``cpu_millis``/``memory_bytes``/``gpus`` are the instance's nominal capacity, not
    this machine's. ``zone`` and ``geography`` may be "" (no label).
    """

    cloud: str
    region: str
    zone: str
    geography: str
    instance_type: str  # "" for none; a label value (GCP GPU rows: the host VM type)
    spot: bool
    price_per_hour: float
    edge: bool
    cpu_millis: int
    memory_bytes: int
    gpus: tuple[Gpu, ...] = ()
    extra_labels: tuple[tuple[str, str], ...] = ()

    def labels(self) -> dict[str, str]:
        """The node's labels, normalized (full keys, sorted); raises ValueError."""
        raw = {
            CLOUD: self.cloud,
            REGION: self.region,
            SPOT: "true" if self.spot else "false",
            PRICE_PER_HOUR: format_price(self.price_per_hour),
            EDGE: "true" if self.edge else "false",
        }
        if self.zone:
            raw[ZONE] = self.zone
        if self.geography:
            raw[GEOGRAPHY] = self.geography
        if self.instance_type:
            raw[INSTANCE_TYPE] = self.instance_type
        raw.update(self.extra_labels)
        return normalize_labels(raw)

    def gpus_arg(self) -> str:
        """The ``--gpus`` value: ``MODEL:COUNT:GiB,...`` ("" for none)."""
        return ",".join(f"{g.model}:{g.count}:{_gib(g.memory_bytes)}" for g in self.gpus)

    def node_args(self) -> list[str]:
        """The ``hyperion node start`` flags that make a node this identity."""
        labels = ",".join(f"{k}={v}" for k, v in self.labels().items())
        args = ["--labels", labels, "--cpu", f"{self.cpu_millis}m", "--memory"]
        mem = self.memory_bytes
        args.append(f"{mem // GIB}Gi" if mem % GIB == 0 else str(mem))
        if self.gpus:
            args += ["--gpus", self.gpus_arg()]
        return args


def format_price(usd_per_h: float) -> str:
    """A price as a label value: at most 6 decimals (the table's precision), no exponent."""
    text = f"{usd_per_h:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _gib(n_bytes: int) -> str:
    return str(n_bytes // GIB) if n_bytes % GIB == 0 else f"{n_bytes / GIB:.6f}".rstrip("0")


def zone_of(cloud: str, region: str, k: int) -> str:
    """The ``k``-th zone (from 0) of a region, in its cloud's naming convention."""
    k %= ZONES_PER_REGION
    if cloud == "aws":
        return f"{region}{'abc'[k]}"
    if cloud == "gcp":
        return f"{region}-{'abc'[k]}"
    return f"{region}-{k + 1}"  # azure (eastus-1), edge and onprem sites


def price_table() -> tuple[tuple[data.PriceRow, ...], str]:
    """The price rows and where they came from: ``cloud_prices.csv``, else the embedded
    copy of the default fleet's rows."""
    try:
        return data.prices(), data.PRICES_FILE
    except DataError:
        raw = list(csv.DictReader(io.StringIO(EMBEDDED_PRICES)))
        return data.price_rows(raw, "the embedded price table"), "the embedded price table"


def _table_gpus(row: data.PriceRow) -> tuple[Gpu, ...]:
    if not row.gpu_model:
        return ()
    mem = TABLE_GPU_MEMORY_GIB.get(row.gpu_model)
    spec = f"{row.gpu_model}:{row.gpus}" + (f":{mem}" if mem is not None else "")
    return parse_gpus(spec)


def _from_row(row: data.PriceRow, spot: bool, zone: str) -> NodeIdentity:
    return NodeIdentity(
        cloud=row.cloud,
        region=row.region,
        zone=zone,
        geography=geography_of_region(row.region) or "",
        instance_type=row.instance_type.partition("+")[0],
        spot=spot,
        price_per_hour=row.spot_usd_per_h if spot else row.ondemand_usd_per_h,
        edge=False,
        cpu_millis=row.vcpus * 1000,
        memory_bytes=int(row.memory_gib * GIB),
        gpus=_table_gpus(row),
    )


def _edge_model(model: str) -> tuple[int, int] | None:
    return next(((c, m) for name, c, m in EDGE_MODELS if name == model), None)


def _edge_box(metro: str, model: str, zone: str) -> NodeIdentity:
    shape = _edge_model(model)
    assert shape is not None, model
    vcpus, mem_gib = shape
    return NodeIdentity(
        cloud="edge",
        region=f"edge-{metro}",
        zone=zone,
        geography=EDGE_METROS[metro],
        instance_type=model,
        spot=False,
        price_per_hour=EDGE_USD_PER_H,
        edge=True,
        cpu_millis=vcpus * 1000,
        memory_bytes=mem_gib * GIB,
        gpus=(Gpu(model, mem_gib * GIB, 1, 1),),
    )


def default_fleet(n: int) -> list[NodeIdentity]:
    """``n`` identities: ``DEFAULT_FLEET`` in order, cycled with each region's next zone.

    Deterministic; prices and shapes from ``price_table()`` (the spot price for spot
    nodes). Raises ValueError for ``n < 0``, DataError if the table lacks a row.
    """
    if n < 0:
        raise ValueError(f"a fleet of {n} nodes")
    rows, where = price_table()
    by_key = {(r.cloud, r.region, r.instance_type): r for r in rows}
    seen: dict[tuple[str, str], int] = {}
    out: list[NodeIdentity] = []
    for i in range(n):
        cloud, region, itype, spot = DEFAULT_FLEET[i % len(DEFAULT_FLEET)]
        site = f"edge-{region}" if cloud == "edge" else region
        k = seen.get((cloud, site), 0)
        seen[(cloud, site)] = k + 1
        zone = zone_of(cloud, site, k)
        if cloud == "edge":
            out.append(_edge_box(region, itype, zone))
            continue
        row = by_key.get((cloud, region, itype))
        if row is None:
            raise DataError(f"{where} has no row for {cloud} {region} {itype}")
        out.append(_from_row(row, spot, zone))
    return out


# ----------------------------------------------------------------------------- YAML


class _Entry:
    """Reads the fields of one YAML entry, raising FleetError that names them."""

    def __init__(self, where: str, index: int, raw: Mapping[str, Any]) -> None:
        self.where, self.index, self.raw = where, index, raw

    def error(self, field: str, msg: str) -> FleetError:
        at = f"{self.where}: nodes[{self.index}] (node-{self.index + 1})"
        return FleetError(f"{at}: {field}: {msg}" if field else f"{at}: {msg}")

    def text(self, field: str, *, required: bool = False) -> str:
        value = self.raw.get(field)
        if value is None:
            if required:
                raise self.error(field, "missing (required)")
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.error(field, f"expected a non-empty string, not {value!r}")
        return value.strip()

    def flag(self, field: str) -> bool:
        value = self.raw.get(field, False)
        if not isinstance(value, bool):
            raise self.error(field, f"expected true or false, not {value!r}")
        return value

    def price(self) -> float | None:
        field = "price-per-hour"
        value = self.raw.get(field)
        if value is None:
            return None
        try:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            price = float(value)
        except ValueError:
            raise self.error(field, f"expected a number of USD per hour, not {value!r}") from None
        if not (math.isfinite(price) and price >= 0):
            raise self.error(field, f"must be a finite non-negative number, not {value!r}")
        return price

    def quantity(self, field: str, scale: int) -> int | None:
        value = self.raw.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.error(field, f"expected a quantity such as 4, 500m or 8Gi, not {value!r}")
        try:
            amount = int(parse_quantity(str(value).strip()) * scale)
        except ValueError as e:
            raise self.error(field, str(e)) from None
        if amount <= 0:
            raise self.error(field, f"must be positive, not {value!r}")
        return amount

    def gpus(self) -> tuple[Gpu, ...] | None:
        value = self.raw.get("gpus")
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error("gpus", f"expected a string such as 'T4:1' or 'X:1:32', not {value!r}")
        try:
            return parse_gpus(value)
        except ValueError as e:
            raise self.error("gpus", str(e)) from None

    def extra_labels(self) -> tuple[tuple[str, str], ...]:
        value = self.raw.get("labels")
        if value is None:
            return ()
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in value.items()
        ):
            raise self.error("labels", "expected a mapping of label keys to values")
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            text = str(v).lower() if isinstance(v, bool) else str(v)
            if SHORT_KEYS.get(k, k) in _IDENTITY_LABELS:
                raise self.error("labels", f"{k!r} is set by the entry's own fields; use them")
            try:
                out.extend(normalize_labels({k: text}).items())
            except ValueError as e:
                raise self.error("labels", str(e)) from None
        return tuple(out)


def _entry_identity(
    e: _Entry, rows: Sequence[data.PriceRow], where_prices: str, zone_index: int
) -> NodeIdentity:
    unknown = sorted(str(k) for k in e.raw if k not in ENTRY_KEYS)
    if unknown:
        raise e.error(unknown[0], f"unknown key (known: {', '.join(ENTRY_KEYS)})")
    cloud = e.text("cloud", required=True).lower()
    if cloud not in CLOUDS:
        raise e.error("cloud", f"unknown cloud {cloud!r} (choose {', '.join(CLOUDS)})")
    region = e.text("region", required=True)
    itype = e.text("instance-type")
    spot = e.flag("spot")
    price, gpus = e.price(), e.gpus()
    cpu, memory = e.quantity("cpu", 1000), e.quantity("memory", 1)
    on_premises = cloud in ("edge", "onprem")
    if on_premises and spot:
        raise e.error("spot", f"{cloud} machines have no spot market")
    if on_premises:
        shape = _edge_model(itype) if cloud == "edge" else None
        if shape is not None:
            cpu = cpu if cpu is not None else shape[0] * 1000
            memory = memory if memory is not None else shape[1] * GIB
            gpus = gpus if gpus is not None else (Gpu(itype, shape[1] * GIB, 1, 1),)
            price = price if price is not None else EDGE_USD_PER_H
        for field, v in (("cpu", cpu), ("memory", memory)):
            if v is None:
                models = ", ".join(m for m, _, _ in EDGE_MODELS)
                msg = f"missing: {cloud} machines need cpu and memory"
                raise e.error(
                    field, msg + (f" (or instance-type {models})" if cloud == "edge" else "")
                )
        price = 0.0 if price is None else price
    else:
        row = next(
            (r for r in rows if (r.cloud, r.region, r.instance_type) == (cloud, region, itype)),
            None,
        )
        if row is not None:
            base = _from_row(row, spot, "")
            price = base.price_per_hour if price is None else price
            cpu = base.cpu_millis if cpu is None else cpu
            memory = base.memory_bytes if memory is None else memory
            gpus = base.gpus if gpus is None else gpus
            itype = base.instance_type
        elif price is None or cpu is None or memory is None:
            given = (("price-per-hour", price), ("cpu", cpu), ("memory", memory))
            missing = [f for f, v in given if v is None]
            have = sorted(r.instance_type for r in rows if (r.cloud, r.region) == (cloud, region))
            if itype:
                msg = f"{itype!r} is not in {where_prices} for {cloud} {region}"
            else:
                msg = f"missing: give one from {where_prices}"
            msg += (
                f" (it has: {', '.join(have)})" if have else f" (it has no {cloud} {region} rows)"
            )
            raise e.error("instance-type", f"{msg}, or give {', '.join(missing)} explicitly")
    assert cpu is not None and memory is not None and price is not None
    geography = e.text("geography").upper()
    if geography and geography not in GEOGRAPHIES:
        raise e.error("geography", f"{geography!r} is not one of {', '.join(GEOGRAPHIES)}")
    if not geography:
        geography = geography_of_region(region) or ""
        if not geography and on_premises:
            raise e.error("geography", f"missing: region {region!r} implies none")
    identity = NodeIdentity(
        cloud=cloud,
        region=region,
        zone=e.text("zone") or zone_of(cloud, region, zone_index),
        geography=geography,
        instance_type=itype,
        spot=spot,
        price_per_hour=price,
        edge=cloud == "edge",
        cpu_millis=cpu,
        memory_bytes=memory,
        gpus=gpus or (),
        extra_labels=e.extra_labels(),
    )
    try:
        identity.labels()
    except ValueError as err:
        raise e.error("", str(err)) from None
    return identity


def parse_fleet(text: str, where: str = "<fleet>") -> list[NodeIdentity]:
    """Identities from fleet YAML (format in the module docstring); raises FleetError."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or " ".join(str(e).split())
        raise FleetError(f"{where}: not valid YAML{at}: {problem}") from None
    if not isinstance(doc, dict) or "nodes" not in doc:
        raise FleetError(f"{where}: expected a mapping with a 'nodes' list")
    extra = sorted(str(k) for k in doc if k != "nodes")
    if extra:
        raise FleetError(f"{where}: unknown top-level key {extra[0]!r} (only 'nodes')")
    entries = doc["nodes"]
    if not isinstance(entries, list) or not entries:
        raise FleetError(f"{where}: 'nodes' must be a non-empty list")
    rows, where_prices = price_table()
    seen: dict[tuple[str, str], int] = {}
    out: list[NodeIdentity] = []
    for i, raw in enumerate(entries):
        if not isinstance(raw, dict):
            raise FleetError(f"{where}: nodes[{i}] (node-{i + 1}): expected a mapping")
        entry = _Entry(where, i, raw)
        key = (str(raw.get("cloud", "")).lower(), str(raw.get("region", "")))
        identity = _entry_identity(entry, rows, where_prices, seen.get(key, 0))
        seen[key] = seen.get(key, 0) + 1
        out.append(identity)
    return out


def load_fleet(path: Path | str) -> list[NodeIdentity]:
    """Identities from a fleet YAML file, one per entry; raises FleetError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise FleetError(f"cannot read fleet file {path}: {e.strerror or e}") from None
    return parse_fleet(text, str(path))


def resolve_fleet(value: str, nodes: int | None) -> tuple[int, list[NodeIdentity] | None]:
    """``hyperion up --fleet VALUE [--nodes N]``: the node count and their identities.

    ``default``: ``default_fleet`` (``DEFAULT_NODES`` nodes unless ``nodes``); ``none``:
    no identities (local capacity, no cloud labels); otherwise a YAML file, whose entry
    count is the default node count; more ``nodes`` than entries is an error, fewer use
    the first entries. Raises FleetError.
    """
    if nodes is not None and nodes < 1:
        raise FleetError("--nodes must be at least 1")
    if value == FLEET_NONE:
        return nodes or DEFAULT_NODES, None
    if value == FLEET_DEFAULT:
        n = nodes or DEFAULT_NODES
        try:
            return n, default_fleet(n)
        except DataError as e:
            raise FleetError(f"--fleet default: {e}") from None
    path = Path(value)
    if not path.is_file():
        raise FleetError(
            f"--fleet {value!r}: expected {FLEET_DEFAULT}, {FLEET_NONE} or a YAML file "
            "(no such file)"
        )
    fleet = load_fleet(path)
    if nodes is None:
        return len(fleet), fleet
    if nodes > len(fleet):
        raise FleetError(
            f"{path} describes {len(fleet)} node(s) but --nodes is {nodes}: "
            f"add entries or pass --nodes {len(fleet)} or fewer"
        )
    return nodes, fleet[:nodes]
