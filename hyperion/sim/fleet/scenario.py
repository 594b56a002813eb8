"""Seeded scenarios of a hybrid fleet: nodes, users, workloads and their random draws.

Owns everything a scenario is made of, drawn once from its seed so that every policy
faces the same world (common random numbers): which cloud instances exist (rows of
``cloud_prices.csv``, on-demand and spot markets), edge boxes at user metros, background
load (Alibaba pods when that trace is present, else uniform), when each spot node is
reclaimed (Spot Advisor band, exponential), where users are and what they send (Azure
trace shape), and per-request service-time jitter.

Families (chosen by the seed): ``geo`` users spread over US/EU/APAC/SA; ``us`` users
mostly in the US (the case where a static us-east-1 deployment is already close);
``eu`` EU data residency (service and job constrained to EU geographies); ``storm``
like ``geo`` with spot reclamation rates multiplied by ``STORM_MULTIPLIER`` (a stress
test, not a measurement: at the advisor's rates a reclaim within an hour is rare).

Assumptions, named once: last mile ``LAST_MILE_MS`` from a user to any cloud region,
``EDGE_ACCESS_MS`` to an edge box in the user's own metro, ``EDGE_UPLINK_MS`` added
between an edge box and another metro; edge boxes cost ``EDGE_USD_PER_H`` (power).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from hyperion.mesh.records import geography_of_region
from hyperion.policy.model import GPU_PRODUCT_LABEL, Candidate, MatchExpression, VersionRange
from hyperion.policy.plugins import BAND_MONTHLY_RATE
from hyperion.sim import rtt as rtt_matrix
from hyperion.sim.fleet import data

LAST_MILE_MS = 15.0  # user to a nearby cloud region over broadband/mobile, round trip
EDGE_ACCESS_MS = 4.0  # user to an edge box in the same metro (LAN / 5G MEC)
EDGE_UPLINK_MS = 10.0  # an edge box's own access link, crossed by remote users
EDGE_USD_PER_H = 0.02  # a Jetson at ~60 W and $0.3/kWh; hardware already owned
HOURS_PER_MONTH = 730.0
STORM_MULTIPLIER = 1000.0
NOTICE_S = 120.0  # the usual spot reclamation notice
HOUR_S = 3600.0
WINDOW_S = 360.0  # the hour's arrivals are replayed 10x compressed (module run.py)
BERT_EPOCH_SAMPLES = 88_641  # SQuAD v1.1 training set
SERVICE_RPS_PER_REPLICA = 12.0  # mean load per replica: a T4 ~16 % busy, ~60 % in 4x bursts
TIER_LABEL = "hyperion.io/tier"
FAMILIES = ("geo", "us", "eu", "storm")

# User metros, each anchored at the measured region nearest to it.
METROS: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {
        "US": (("virginia", "aws:us-east-1"), ("california", "aws:us-west-1")),
        "EU": (("london", "aws:eu-west-2"), ("frankfurt", "aws:eu-central-1")),
        "APAC": (("tokyo", "aws:ap-northeast-1"), ("singapore", "aws:ap-southeast-1")),
        "SA": (("sao-paulo", "aws:sa-east-1"),),
    }
)
USER_GEOS = tuple(METROS)
METRO_NAMES = tuple(m for ms in METROS.values() for m, _ in ms)
METRO_LOCATIONS = tuple(f"{g}:{m}" for g, ms in METROS.items() for m, _ in ms)  # Request.users
DATACENTER_GPUS = ("T4", "A10G", "L4", "V100", "V100-32GB", "A100", "A100-80GB", "H100")
EDGE_MODELS = (  # (model, vcpus, memory GiB)
    ("Jetson-AGX-Orin", 12, 64),
    ("Jetson-AGX-Xavier", 8, 32),
)
_GIB = 1 << 30

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Node:
    node_id: str
    cloud: str
    region: str  # provider's name; "" for edge
    zone: str
    geography: str
    instance_type: str
    gpu_model: str | None
    gpus: int
    cpu_millis: int
    memory_bytes: int
    price_per_hour: float
    spot: bool
    band: int | None
    reclaim_s: float  # when the provider takes it back (inf: never)
    software_version: str
    protocol_versions: tuple[int, ...]
    labels: Mapping[str, str]
    edge: bool
    rtt_metro_ms: tuple[float, ...]  # per METRO_NAMES
    rtt_geo_ms: Mapping[str, float]  # per user geography, metro mean
    background_gpus: int
    background_cpu_millis: int
    background_memory_bytes: int
    reliability: float

    @property
    def cloud_region(self) -> str:
        return f"{self.cloud}:{self.region}"

    def rtt_ms(self) -> dict[str, float]:
        """RTT from users per geography (the metro mean) and per metro (``geo:metro``,
        the locations the service's users are given in)."""
        out = dict(self.rtt_geo_ms)
        out.update(zip(METRO_LOCATIONS, self.rtt_metro_ms, strict=True))
        return out

    def candidate(
        self,
        *,
        node_id: str | None = None,
        free: tuple[int, int, int] | None = None,
        load: float = 0.0,
        speed: float = 1.0,
        placed: tuple[int, int, int] = (0, 0, 0),
    ) -> Candidate:
        """This node as a bidder: ``free`` is (gpus, cpu millis, memory bytes), all of
        its capacity when None; ``placed`` counts the workload's replicas already on the
        node, in its zone and in its region."""
        gpus, cpu, mem = (self.gpus, self.cpu_millis, self.memory_bytes) if free is None else free
        on_node, in_zone, in_region = placed
        return Candidate(
            node_id=self.node_id if node_id is None else node_id,
            cloud=self.cloud,
            region=self.region,
            zone=self.zone,
            geography=self.geography,
            price_per_hour=self.price_per_hour,
            spot=self.spot,
            interruption_band=self.band,
            rtt_ms=self.rtt_ms(),
            cpu_millis=self.cpu_millis,
            cpu_millis_free=cpu,
            memory_bytes=self.memory_bytes,
            memory_bytes_free=mem,
            gpus=self.gpus,
            gpus_free=gpus,
            gpu_model=self.gpu_model,
            load=load,
            reliability=self.reliability,
            software_version=self.software_version,
            protocol_versions=self.protocol_versions,
            labels=self.labels,
            edge=self.edge,
            speed=speed,
            replicas_on_node=on_node,
            replicas_in_zone=in_zone,
            replicas_in_region=in_region,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    workload_id: str
    kind: str  # "service" | "batch"
    replicas: int
    cpu_millis: int
    memory_bytes: int
    gpus: int
    goal: str
    prefer_spot: bool
    geographies: tuple[str, ...] = ()
    clouds: tuple[str, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    affinity: tuple[tuple[MatchExpression, ...], ...] = ()
    version_range: VersionRange | None = None
    data_locality: str | None = None
    users: tuple[tuple[str, float], ...] = ()
    rate_rps: float = 0.0  # service: total offered load
    samples: int = 0  # batch: work to do
    checkpoint_s: float = 600.0  # batch: checkpoint interval
    startup_s: float = 90.0  # container start + model load


@dataclass(frozen=True, slots=True)
class Scenario:
    seed: int
    family: str
    nodes: tuple[Node, ...]
    service: Workload
    batch: Workload
    metro_weights: FloatArray  # per METRO_NAMES, sums to 1
    arrivals_s: FloatArray  # request times in [0, WINDOW_S), sorted
    request_metro: IntArray  # metro index per request
    request_u: FloatArray  # uniform per request, for routing
    request_jitter: FloatArray  # service-time multiplier per request (lognormal)
    hazard_multiplier: float
    background_source: str  # "alibaba" or "uniform"


@functools.cache
def _rtt() -> rtt_matrix.RttMatrix:
    return rtt_matrix.load()


def region_rtt_ms(a: str, b: str) -> float:
    m = _rtt()
    return m.rtt_ms(data.RTT_PROXY.get(a, a), data.RTT_PROXY.get(b, b))


@functools.cache
def _nearest_aws(cloud_region: str) -> str:
    m = _rtt()
    aws = [r for r in m.regions if r.startswith("aws:")]
    best = min(aws, key=lambda r: region_rtt_ms(cloud_region, r))
    return best.split(":", 1)[1]


def _metro_anchor() -> tuple[str, ...]:
    return tuple(a for ms in METROS.values() for _, a in ms)


def _geo_mean(per_metro: list[float]) -> Mapping[str, float]:
    out: dict[str, float] = {}
    i = 0
    for g, ms in METROS.items():
        out[g] = sum(per_metro[i : i + len(ms)]) / len(ms)
        i += len(ms)
    return MappingProxyType(out)


@functools.cache
def _cloud_rtts(cloud_region: str) -> tuple[tuple[float, ...], Mapping[str, float]]:
    per = [LAST_MILE_MS + region_rtt_ms(a, cloud_region) for a in _metro_anchor()]
    return tuple(per), _geo_mean(per)


@functools.cache
def _edge_rtts(metro: int) -> tuple[tuple[float, ...], Mapping[str, float]]:
    anchors = _metro_anchor()
    per = [
        EDGE_ACCESS_MS
        if j == metro
        else LAST_MILE_MS + EDGE_UPLINK_MS + region_rtt_ms(anchors[j], anchors[metro])
        for j in range(len(anchors))
    ]
    return tuple(per), _geo_mean(per)


def hazard_per_s(band: int, multiplier: float) -> float:
    return BAND_MONTHLY_RATE[band] / (HOURS_PER_MONTH * 3600.0) * multiplier


def _reclaim_s(rng: np.random.Generator, band: int, multiplier: float) -> float:
    """When a spot node of ``band`` is reclaimed: exponential at the band's rate."""
    return float(rng.exponential(1.0 / hazard_per_s(band, multiplier)))


def _background(
    rng: np.random.Generator, gpus: int, cpu: int, mem: int, util: float
) -> tuple[int, int, int]:
    """Capacity already taken on a node: Alibaba pods packed to ``util`` of its GPUs
    (CPU-only nodes: of its CPU) when the trace is present, else that fraction."""
    pods = data.alibaba_pods()
    target_g = int(math.floor(util * gpus + rng.random()))
    if pods is None:
        return (
            min(target_g, gpus),
            int(cpu * util * 0.8),
            int(mem * util * 0.8),
        )
    used_g = used_c = used_m = 0
    for _ in range(32):  # bounded packing attempts
        k = int(rng.integers(pods.gpus.size))
        g, c, m = int(pods.gpus[k]), int(pods.cpu_millis[k]), int(pods.memory_mib[k]) << 20
        if gpus and g == 0:
            continue
        if used_g + g > gpus or used_c + c > cpu * 0.9 or used_m + m > mem * 0.9:
            continue
        used_g, used_c, used_m = used_g + g, used_c + c, used_m + m
        done = used_g >= target_g if gpus else used_c >= util * cpu
        if done:
            break
    return used_g, used_c, used_m


def _make_node(
    rng: np.random.Generator,
    idx: int,
    row: data.PriceRow,
    spot: bool,
    util: float,
    hazard_multiplier: float,
) -> Node:
    zone = row.region + "abc"[int(rng.integers(3))] if row.cloud != "azure" else row.region + "-1"
    band = data.band_for(row, _nearest_aws(row.cloud_region)) if spot else None
    if band is not None:
        reclaim = _reclaim_s(rng, band, hazard_multiplier)
    else:
        rng.random()  # keep the draw count independent of the market
        reclaim = math.inf
    cpu, mem = row.vcpus * 1000, int(row.memory_gib * _GIB)
    bg = _background(rng, row.gpus, cpu, mem, util)
    geo = geography_of_region(row.region) or "US"
    old = rng.random() < 0.15
    labels = {
        "hyperion.io/cloud": row.cloud,
        "topology.kubernetes.io/region": row.region,
        "topology.kubernetes.io/zone": zone,
        "hyperion.io/geography": geo,
        "node.kubernetes.io/instance-type": row.instance_type,
        "hyperion.io/spot": "true" if spot else "false",
        TIER_LABEL: "prod" if rng.random() < 0.7 else "dev",
    }
    if row.gpu_model:
        labels[GPU_PRODUCT_LABEL] = row.gpu_model
    per_metro, per_geo = _cloud_rtts(row.cloud_region)
    price = row.spot_usd_per_h if spot else row.ondemand_usd_per_h
    return Node(
        node_id=f"n{idx:04d}-{row.cloud}-{row.region}-{'spot' if spot else 'od'}",
        cloud=row.cloud,
        region=row.region,
        zone=zone,
        geography=geo,
        instance_type=row.instance_type,
        gpu_model=row.gpu_model or None,
        gpus=row.gpus,
        cpu_millis=cpu,
        memory_bytes=mem,
        price_per_hour=price,
        spot=spot,
        band=band,
        reclaim_s=reclaim,
        software_version="0.1.4" if old else "0.2.0",
        protocol_versions=(1,) if old else (1, 2),
        labels=MappingProxyType(labels),
        edge=False,
        rtt_metro_ms=per_metro,
        rtt_geo_ms=per_geo,
        background_gpus=bg[0],
        background_cpu_millis=bg[1],
        background_memory_bytes=bg[2],
        reliability=math.exp(-hazard_per_s(band, hazard_multiplier) * HOUR_S)
        if band is not None
        else 0.9999,
    )


def _edge_node(rng: np.random.Generator, idx: int, metro: int) -> Node:
    model, vcpus, mem_gib = EDGE_MODELS[int(rng.integers(len(EDGE_MODELS)))]
    name = METRO_NAMES[metro]
    geo = next(g for g, ms in METROS.items() if any(m == name for m, _ in ms))
    per_metro, per_geo = _edge_rtts(metro)
    labels = {
        "hyperion.io/cloud": "edge",
        "hyperion.io/edge": "true",
        "hyperion.io/geography": geo,
        "topology.kubernetes.io/zone": f"edge-{name}",
        GPU_PRODUCT_LABEL: model,
        TIER_LABEL: "edge",
    }
    return Node(
        node_id=f"n{idx:04d}-edge-{name}",
        cloud="edge",
        region=f"edge-{name}",
        zone=f"edge-{name}",
        geography=geo,
        instance_type=model,
        gpu_model=model,
        gpus=1,
        cpu_millis=vcpus * 1000,
        memory_bytes=mem_gib * _GIB,
        price_per_hour=EDGE_USD_PER_H,
        spot=False,
        band=None,
        reclaim_s=math.inf,
        software_version="0.2.0",
        protocol_versions=(1, 2),
        labels=MappingProxyType(labels),
        edge=True,
        rtt_metro_ms=per_metro,
        rtt_geo_ms=per_geo,
        background_gpus=0,
        background_cpu_millis=0,
        background_memory_bytes=0,
        reliability=0.999,
    )


def _users(rng: np.random.Generator, family: str) -> FloatArray:
    """Weights per metro (sums to 1)."""
    n = len(METRO_NAMES)
    geo_w: dict[str, float]
    if family == "us":
        rest = rng.dirichlet(np.ones(3)) * float(rng.uniform(0.03, 0.12))
        geo_w = {"US": 1 - float(rest.sum()), "EU": rest[0], "APAC": rest[1], "SA": rest[2]}
    elif family == "eu":
        rest = rng.dirichlet(np.ones(3)) * float(rng.uniform(0.05, 0.3))
        geo_w = {"EU": 1 - float(rest.sum()), "US": rest[0], "APAC": rest[1], "SA": rest[2]}
    else:
        w = rng.dirichlet(np.full(len(USER_GEOS), 0.8))
        geo_w = {g: float(x) for g, x in zip(USER_GEOS, w, strict=True)}
    out = np.zeros(n)
    i = 0
    for g, ms in METROS.items():
        split = rng.dirichlet(np.full(len(ms), 2.0))
        out[i : i + len(ms)] = geo_w[g] * split
        i += len(ms)
    normalized: FloatArray = out / out.sum()
    return normalized


def _arrivals(rng: np.random.Generator, rate_rps: float) -> FloatArray:
    """Arrivals for the hour compressed into WINDOW_S: copies of an Azure trace's
    arrival shape, each circularly shifted, superposed and thinned to the rate."""
    shapes = data.arrival_shapes()
    shape = shapes[int(rng.integers(len(shapes)))]
    n = int(rate_rps * WINDOW_S)
    copies = max(1, math.ceil(n / shape.size))
    t = np.concatenate([(shape + rng.random()) % 1.0 for _ in range(copies)])
    keep = rng.choice(t.size, size=min(n, t.size), replace=False)
    return np.sort(t[keep]) * WINDOW_S


def _requests(
    rng: np.random.Generator, rate_rps: float, metro_w: FloatArray
) -> tuple[FloatArray, IntArray, FloatArray, FloatArray]:
    """The hour's requests: arrival times, metro, routing uniform, service-time jitter."""
    arrivals = _arrivals(rng, rate_rps)
    n = arrivals.size
    metro: IntArray = rng.choice(len(METRO_NAMES), size=n, p=metro_w).astype(np.int64)
    return arrivals, metro, rng.random(n), rng.lognormal(0.0, 0.25, size=n)


def make(seed: int) -> Scenario:
    """The scenario of ``seed``: same seed, same scenario, bit for bit."""
    rng = np.random.default_rng([seed, 7])
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    mult = STORM_MULTIPLIER if family == "storm" else 1.0
    pods = data.alibaba_pods()
    util_mean = float(rng.uniform(0.2, 0.6))
    nodes: list[Node] = []
    for row in data.prices():
        for spot in (False, True):
            p_exists = 0.5 if row.gpus else 0.25
            if rng.random() < p_exists:
                util = float(np.clip(rng.normal(util_mean, 0.15), 0.0, 0.95))
                nodes.append(_make_node(rng, len(nodes), row, spot, util, mult))
    for metro in range(len(METRO_NAMES)):
        for _ in range(int(rng.integers(0, 3))):
            nodes.append(_edge_node(rng, len(nodes), metro))
    metro_w = _users(rng, family)
    users = tuple((m, round(float(w), 6)) for m, w in zip(METRO_LOCATIONS, metro_w, strict=True))

    replicas = int(rng.integers(3, 9))
    svc_goal = str(rng.choice(["latency", "default", "cost"], p=[0.5, 0.35, 0.15]))
    geos: tuple[str, ...] = ("EU",) if family == "eu" else ()
    clouds: tuple[str, ...] = ()
    if rng.random() < 0.2:
        clouds = tuple(sorted(rng.choice(["aws", "gcp", "azure", "edge"], size=3, replace=False)))
    selector = {TIER_LABEL: "prod"} if rng.random() < 0.25 else {}
    version = VersionRange(">=0.2") if rng.random() < 0.4 else None
    svc_affinity: tuple[tuple[MatchExpression, ...], ...] = ()
    if rng.random() < 0.3:
        svc_affinity = ((MatchExpression(GPU_PRODUCT_LABEL, "NotIn", ("Jetson-AGX-Xavier",)),),)
    service = Workload(
        workload_id=f"resnet50-{seed}",
        kind="service",
        replicas=replicas,
        cpu_millis=2000,
        memory_bytes=4 * _GIB,
        gpus=1,
        goal=svc_goal,
        prefer_spot=bool(rng.random() < 0.5),
        geographies=geos,
        clouds=clouds,
        node_selector=MappingProxyType(selector),
        affinity=svc_affinity,
        version_range=version,
        data_locality=None,
        users=users,
        rate_rps=SERVICE_RPS_PER_REPLICA * replicas,
        startup_s=90.0,
    )
    loc_rows = [r for r in data.prices() if r.gpus and (not geos or _geo(r) in geos)]
    loc = loc_rows[int(rng.integers(len(loc_rows)))]
    batch = Workload(
        workload_id=f"bert-{seed}",
        kind="batch",
        replicas=1,
        cpu_millis=4000,
        memory_bytes=12 * _GIB,
        gpus=1,
        goal=str(rng.choice(["cost", "default"], p=[0.7, 0.3])),
        prefer_spot=True,
        geographies=geos,
        affinity=((MatchExpression(GPU_PRODUCT_LABEL, "In", DATACENTER_GPUS),),),
        version_range=VersionRange(">=0.2") if rng.random() < 0.3 else None,
        data_locality=loc.cloud_region if rng.random() < 0.5 else None,
        samples=BERT_EPOCH_SAMPLES * int(rng.integers(2, 9)),
        checkpoint_s=600.0,
        startup_s=180.0,
    )
    arrivals, request_metro, request_u, request_jitter = _requests(rng, service.rate_rps, metro_w)
    return Scenario(
        seed=seed,
        family=family,
        nodes=tuple(nodes),
        service=service,
        batch=batch,
        metro_weights=metro_w,
        arrivals_s=arrivals,
        request_metro=request_metro,
        request_u=request_u,
        request_jitter=request_jitter,
        hazard_multiplier=mult,
        background_source="uniform" if pods is None else "alibaba",
    )


def redraw(scenario: Scenario, k: int) -> Scenario:
    """Another world of the same scenario: the same fleet, background load, users and
    workloads, with fresh draws (``k`` >= 1) of everything left to chance: when each
    spot node is reclaimed, the arrival pattern, which metro sends each request,
    routing and service-time jitter. A teacher that plans against several worlds plans
    for what a policy can know, not for one world's luck (module ``expert``)."""
    if k < 1:
        raise ValueError("world 0 is the scenario itself; redraws are numbered from 1")
    rng = np.random.default_rng([scenario.seed, 11, k])
    nodes = tuple(
        n
        if n.band is None
        else replace(n, reclaim_s=_reclaim_s(rng, n.band, scenario.hazard_multiplier))
        for n in scenario.nodes
    )
    arrivals, metro, u, jitter = _requests(rng, scenario.service.rate_rps, scenario.metro_weights)
    return replace(
        scenario,
        nodes=nodes,
        arrivals_s=arrivals,
        request_metro=metro,
        request_u=u,
        request_jitter=jitter,
    )


def _geo(row: data.PriceRow) -> str:
    return geography_of_region(row.region) or "US"


def static_pool(scenario: Scenario) -> tuple[Node, ...]:
    """The control group's own cluster: on-demand instances of every GPU type in one
    home region (AWS us-east-1, or the first of a fixed list that the service's
    geography and cloud constraints allow), three zones, nine of each type, nothing
    else running on them."""
    svc = scenario.service
    cloud, home = next(
        (c, r)
        for c, r in (
            ("aws", "us-east-1"),
            ("gcp", "us-east4"),
            ("azure", "eastus"),
            ("aws", "eu-central-1"),
            ("gcp", "europe-west4"),
        )
        if (not svc.geographies or (geography_of_region(r) or "") in svc.geographies)
        and (not svc.clouds or c in svc.clouds)
    )
    out: list[Node] = []
    rows = [r for r in data.prices() if r.cloud == cloud and r.region == home and r.gpus]
    per_metro, per_geo = _cloud_rtts(f"{cloud}:{home}")
    for row in rows:
        for k in range(9):
            zone = f"{home}{'abc'[k % 3]}"
            labels = {
                "hyperion.io/cloud": cloud,
                "topology.kubernetes.io/region": home,
                "topology.kubernetes.io/zone": zone,
                "hyperion.io/geography": _geo(row),
                "node.kubernetes.io/instance-type": row.instance_type,
                "hyperion.io/spot": "false",
                TIER_LABEL: "prod",
                GPU_PRODUCT_LABEL: row.gpu_model,
            }
            out.append(
                Node(
                    node_id=f"static-{row.instance_type}-{k}",
                    cloud=cloud,
                    region=home,
                    zone=zone,
                    geography=_geo(row),
                    instance_type=row.instance_type,
                    gpu_model=row.gpu_model,
                    gpus=row.gpus,
                    cpu_millis=row.vcpus * 1000,
                    memory_bytes=int(row.memory_gib * _GIB),
                    price_per_hour=row.ondemand_usd_per_h,
                    spot=False,
                    band=None,
                    reclaim_s=math.inf,
                    software_version="0.2.0",
                    protocol_versions=(1, 2),
                    labels=MappingProxyType(labels),
                    edge=False,
                    rtt_metro_ms=per_metro,
                    rtt_geo_ms=per_geo,
                    background_gpus=0,
                    background_cpu_millis=0,
                    background_memory_bytes=0,
                    reliability=0.9999,
                )
            )
    return tuple(out)
