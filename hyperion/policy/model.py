"""What a placement decision is made from and what it returns.

Owns the tender side (``Request``: one replica's resources, hard constraints and soft
preferences), the bid side (``Candidate``: a node's snapshot as it bids), the plug-in
``Status`` and the outcome (``Decision`` or ``NoFit``), and the ``Policy`` protocol every
policy implements (``rules``, ``rl``, the baselines of the fleet benchmark).

Pure data: no I/O, no clocks, no randomness. Everything is a frozen, slotted dataclass
that validates itself, so a bad tender fails where it is built, not inside a scorer.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Protocol

from hyperion.mesh.records import GEOGRAPHIES, Selector, Version, parse_selector, parse_version

GOALS = ("cost", "latency", "default")
KINDS = ("service", "batch")
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # as NVIDIA's GPU feature discovery names it
AFFINITY_OPS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
MAX_AFFINITY_TERMS = 16
MAX_EXPRESSIONS = 32
NEAR_MS = 80.0  # a replica this close (RTT) to a user geography serves it locally
INTERRUPTION_BANDS = 5  # AWS Spot Advisor: <5%, 5-10%, 10-15%, 15-20%, >20% per month


def _no_labels() -> Mapping[str, str]:
    return MappingProxyType({})


def _no_rtts() -> Mapping[str, float]:
    return MappingProxyType({})


def _no_counts() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class MatchExpression:
    """One Kubernetes node-affinity requirement (``requiredDuringScheduling...``)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if self.operator not in AFFINITY_OPS:
            raise ValueError(
                f"node affinity operator {self.operator!r} is not one of {AFFINITY_OPS}"
            )
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"node affinity {self.key} {self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"node affinity {self.key} {self.operator} takes no values")
        if self.operator in ("Gt", "Lt") and (len(self.values) != 1 or not _is_int(self.values[0])):
            raise ValueError(f"node affinity {self.key} {self.operator} needs one integer")

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.key)
        op = self.operator
        if op == "Exists":
            return have is not None
        if op == "DoesNotExist":
            return have is None
        if op == "In":
            return have is not None and have in self.values
        if op == "NotIn":
            return have is None or have not in self.values
        if have is None or not _is_int(have):
            return False
        bound = int(self.values[0])
        return int(have) > bound if op == "Gt" else int(have) < bound

    def __str__(self) -> str:
        if self.operator in ("Exists", "DoesNotExist"):
            return f"{self.key} {self.operator}"
        return f"{self.key} {self.operator} [{','.join(self.values)}]"


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit() and len(text) < 19


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A semver range in selector syntax: ``>=0.2,<1`` or ``version>=0.2,version<1``.

    Parsed once with ``hyperion.mesh.records.parse_selector`` (the ``version`` pseudo-key,
    shorthand ``0.2`` = ``0.2.0``); only ``version`` requirements are allowed.
    """

    text: str
    _selector: Selector = field(init=False, repr=False, compare=False)
    _bounds: tuple[tuple[str, tuple[Version, ...]], ...] = field(
        init=False, repr=False, compare=False
    )
    # version -> contained: a tender asks the same few versions over and over
    _memo: dict[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = [p.strip() for p in self.text.split(",") if p.strip()]
        spelled = ",".join(p if p.startswith("version") else "version" + p for p in parts)
        sel = parse_selector(spelled)
        for r in sel.requirements:
            if r.key != "version":
                raise ValueError(f"version range {self.text!r}: only version bounds allowed")
        object.__setattr__(self, "_selector", sel)
        bounds = tuple(
            (r.op, tuple(parse_version(v, shorthand=True) for v in r.values))
            for r in sel.requirements
        )
        object.__setattr__(self, "_bounds", bounds)
        object.__setattr__(self, "_memo", {})

    def contains(self, version: str) -> bool:
        memo = self._memo
        hit = memo.get(version)
        if hit is not None:
            return hit
        have = _parse_or_none(version)
        ok = have is not None and all(_holds(have, op, wanted) for op, wanted in self._bounds)
        if len(memo) < _VERSION_MEMO_MAX:
            memo[version] = ok
        return ok

    def __str__(self) -> str:
        return self.text


_VERSION_MEMO_MAX = 256  # distinct versions remembered per range (a mesh runs a few)


@functools.lru_cache(maxsize=256)
def _parse_or_none(version: str) -> Version | None:
    try:
        return parse_version(version)
    except ValueError:
        return None


def _holds(have: Version, op: str, wanted: tuple[Version, ...]) -> bool:
    if op in ("=", "in"):
        return have in wanted
    if op in ("!=", "notin"):
        return have not in wanted
    bound = wanted[0]
    return {
        ">": have > bound,
        "<": have < bound,
        ">=": have >= bound,
        "<=": have <= bound,
    }[op]


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One replica to place: the tender's content (DESIGN §6).

    Hard constraints filter; soft preferences score. ``users`` is (geography, weight)
    with weights summing to 1 when present; ``placed_rtt_ms`` is, per user geography,
    the best RTT already offered by running replicas of this workload (the custodian
    knows where they run), so a latency scorer can value what a new replica adds;
    ``placed_capacity`` is, per user geography, the serving speed (in units of a
    reference GPU, as ``Candidate.speed``) of the running replicas within ``NEAR_MS``.
    """

    workload_id: str
    replica: int = 0
    replicas: int = 1
    kind: str = "service"  # "service" (long-running) or "batch" (runs to completion)
    cpu_millis: int = 0
    memory_bytes: int = 0
    gpus: int = 0
    gpu_model: str | None = None
    # hard constraints
    geographies: tuple[str, ...] = ()
    clouds: tuple[str, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=_no_labels)
    affinity: tuple[tuple[MatchExpression, ...], ...] = ()  # OR of terms, AND within one
    version_range: VersionRange | None = None
    # soft preferences
    prefer_spot: bool = False
    data_locality: str | None = None  # "cloud:region", e.g. "aws:us-east-1"
    goal: str = "default"
    users: tuple[tuple[str, float], ...] = ()
    placed_rtt_ms: Mapping[str, float] = field(default_factory=_no_rtts)
    placed_capacity: Mapping[str, float] = field(default_factory=_no_rtts)

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_selector", MappingProxyType(dict(self.node_selector)))
        object.__setattr__(self, "placed_rtt_ms", MappingProxyType(dict(self.placed_rtt_ms)))
        object.__setattr__(self, "placed_capacity", MappingProxyType(dict(self.placed_capacity)))
        object.__setattr__(self, "geographies", tuple(self.geographies))
        object.__setattr__(self, "clouds", tuple(self.clouds))
        object.__setattr__(self, "users", tuple((g, float(w)) for g, w in self.users))
        object.__setattr__(self, "affinity", tuple(tuple(t) for t in self.affinity))
        if not self.workload_id:
            raise ValueError("workload_id is empty")
        if not 0 <= self.replica < max(self.replicas, 1):
            raise ValueError(f"replica {self.replica} is not in 0..{self.replicas - 1}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {KINDS}")
        if min(self.cpu_millis, self.memory_bytes, self.gpus) < 0:
            raise ValueError("resource requests must be non-negative")
        if self.gpu_model is not None and self.gpus == 0:
            raise ValueError("gpu_model given without gpus")
        if self.goal not in GOALS:
            raise ValueError(f"goal {self.goal!r} is not one of {GOALS}")
        for g in self.geographies:
            if g not in GEOGRAPHIES:
                raise ValueError(f"geography {g!r} is not one of {GEOGRAPHIES}")
        for u, _ in self.users:
            geo, colon, place = u.partition(":")
            if geo not in GEOGRAPHIES or (colon and not _PLACE.fullmatch(place)):
                raise ValueError(
                    f"user location {u!r} is not a geography ({', '.join(GEOGRAPHIES)}), "
                    "optionally with :place (lowercase letters, digits, '-')"
                )
        if any(not (math.isfinite(v) and v >= 0) for v in self.placed_capacity.values()):
            raise ValueError("placed capacity must be finite and non-negative")
        if any(not (math.isfinite(w) and w >= 0) for _, w in self.users):
            raise ValueError("user weights must be finite and non-negative")
        if len(self.affinity) > MAX_AFFINITY_TERMS or any(
            not t or len(t) > MAX_EXPRESSIONS for t in self.affinity
        ):
            raise ValueError(
                f"node affinity: 1-{MAX_AFFINITY_TERMS} terms of 1-{MAX_EXPRESSIONS} expressions"
            )
        if self.data_locality is not None and ":" not in self.data_locality:
            raise ValueError(f"data locality {self.data_locality!r} is not cloud:region")

    def user_weights(self) -> tuple[tuple[str, float], ...]:
        """Users per location, normalized to sum 1 (empty when no users are declared)."""
        total = sum(w for _, w in self.users)
        if total <= 0:
            return ()
        return tuple((g, w / total) for g, w in self.users)

    def with_siblings(self, siblings: Sequence[Candidate]) -> Request:
        """This request with ``placed_rtt_ms`` and ``placed_capacity`` filled from the
        nodes its running replicas are on, as those nodes bid: per user location (each
        key of their ``rtt_ms``) the best RTT, and the summed ``speed`` of those within
        ``NEAR_MS``. The fleet simulator and the real custodian both tender this way."""
        placed: dict[str, float] = {}
        capacity: dict[str, float] = {}
        for c in siblings:
            for loc, rtt in c.rtt_ms.items():
                placed[loc] = min(placed.get(loc, math.inf), rtt)
                if rtt <= NEAR_MS:
                    capacity[loc] = capacity.get(loc, 0.0) + c.speed
        return dataclasses.replace(self, placed_rtt_ms=placed, placed_capacity=capacity)

    def geography_weights(self) -> dict[str, float]:
        """``user_weights`` summed per geography."""
        out: dict[str, float] = {}
        for u, w in self.user_weights():
            g = geography_of(u)
            out[g] = out.get(g, 0.0) + w
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A node's bid: its snapshot when it answered the tender (DESIGN §6 step 2).

    ``price_per_hour`` is the whole node's price; a replica is charged its share
    (``share_of``). ``interruption_band`` is 0-4 for spot nodes (AWS Spot Advisor bands),
    None on demand. ``rtt_ms`` maps user geography -> RTT from a user there (last mile
    included). ``replicas_on_node/zone/region`` count this workload's replicas already
    placed there.
    """

    node_id: str
    cloud: str
    region: str
    zone: str = ""
    geography: str | None = None
    price_per_hour: float = 0.0
    spot: bool = False
    interruption_band: int | None = None
    rtt_ms: Mapping[str, float] = field(default_factory=_no_rtts)
    cpu_millis: int = 0
    cpu_millis_free: int = 0
    memory_bytes: int = 0
    memory_bytes_free: int = 0
    gpus: int = 0
    gpus_free: int = 0
    gpu_model: str | None = None
    load: float = 0.0  # fraction of the node allocated, 0..1
    reliability: float = 1.0  # probability the node is still up in an hour, 0..1
    software_version: str = "0.0.0"
    protocol_versions: tuple[int, ...] = (1,)
    labels: Mapping[str, str] = field(default_factory=_no_labels)
    edge: bool = False
    speed: float = 1.0  # the bidder's throughput for this workload relative to one T4 GPU
    replicas_on_node: int = 0
    replicas_in_zone: int = 0
    replicas_in_region: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rtt_ms", MappingProxyType(dict(self.rtt_ms)))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "protocol_versions", tuple(self.protocol_versions))
        if not self.node_id:
            raise ValueError("node_id is empty")
        if not (math.isfinite(self.price_per_hour) and self.price_per_hour >= 0):
            raise ValueError(f"{self.node_id}: price must be finite and non-negative")
        if self.interruption_band is not None and not (
            0 <= self.interruption_band < INTERRUPTION_BANDS
        ):
            raise ValueError(f"{self.node_id}: interruption band must be 0-4")
        if not (0 <= self.cpu_millis_free <= self.cpu_millis):
            raise ValueError(f"{self.node_id}: free cpu must be within capacity")
        if not (0 <= self.memory_bytes_free <= self.memory_bytes):
            raise ValueError(f"{self.node_id}: free memory must be within capacity")
        if not (0 <= self.gpus_free <= self.gpus):
            raise ValueError(f"{self.node_id}: free gpus must be within capacity")
        if not (math.isfinite(self.speed) and self.speed > 0):
            raise ValueError(f"{self.node_id}: speed must be positive")
        if not (0.0 <= self.load <= 1.0 and 0.0 <= self.reliability <= 1.0):
            raise ValueError(f"{self.node_id}: load and reliability must be in [0, 1]")

    def with_free(
        self, cpu_millis_free: int, memory_bytes_free: int, gpus_free: int, load: float
    ) -> Candidate:
        """This snapshot with other free resources and load: what ``dataclasses.replace``
        gives, validated alike, at a third of the cost (a bidder rebuilds its snapshot on
        every reservation). The read-only maps are shared, not copied."""
        if not (0 <= cpu_millis_free <= self.cpu_millis):
            raise ValueError(f"{self.node_id}: free cpu must be within capacity")
        if not (0 <= memory_bytes_free <= self.memory_bytes):
            raise ValueError(f"{self.node_id}: free memory must be within capacity")
        if not (0 <= gpus_free <= self.gpus):
            raise ValueError(f"{self.node_id}: free gpus must be within capacity")
        if not (0.0 <= load <= 1.0):
            raise ValueError(f"{self.node_id}: load and reliability must be in [0, 1]")
        new = object.__new__(Candidate)
        for name in _CANDIDATE_FIELDS:
            _set(new, name, getattr(self, name))
        _set(new, "cpu_millis_free", cpu_millis_free)
        _set(new, "memory_bytes_free", memory_bytes_free)
        _set(new, "gpus_free", gpus_free)
        _set(new, "load", load)
        return new

    @property
    def cloud_region(self) -> str:
        return f"{self.cloud}:{self.region}"

    def share_of(self, req: Request) -> float:
        """The fraction of this node a replica of ``req`` occupies (what it pays for)."""
        shares = [0.0]
        if self.gpus and req.gpus:
            shares.append(req.gpus / self.gpus)
        if self.cpu_millis and req.cpu_millis:
            shares.append(req.cpu_millis / self.cpu_millis)
        if self.memory_bytes and req.memory_bytes:
            shares.append(req.memory_bytes / self.memory_bytes)
        return min(1.0, max(shares))

    def cost_per_hour(self, req: Request) -> float:
        """USD per hour that a replica of ``req`` costs on this node."""
        return self.price_per_hour * self.share_of(req)

    def user_rtt_ms(self, req: Request) -> float:
        """Demand-weighted RTT from the request's users (the mean RTT when none declared)."""
        weights = req.user_weights()
        if weights:
            return sum(w * location_rtt(self.rtt_ms, g, _FAR_MS) for g, w in weights)
        if self.rtt_ms:
            return sum(self.rtt_ms.values()) / len(self.rtt_ms)
        return _FAR_MS


_CANDIDATE_FIELDS = tuple(f.name for f in fields(Candidate))
_set = object.__setattr__  # Candidate is frozen

_FAR_MS = 300.0  # RTT assumed to a geography a node reports nothing for (antipodal)
_PLACE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def geography_of(location: str) -> str:
    """The geography of a user location: ``"EU"`` and ``"EU:frankfurt"`` (a metro or
    site in it) are both in ``"EU"``."""
    return location.partition(":")[0]


def location_rtt(rtts: Mapping[str, float], location: str, default: float) -> float:
    """The RTT for users at ``location`` from a map keyed by locations and/or
    geographies: its own entry, else its geography's (a node that measures only per
    geography still answers a tender whose users are per metro), else ``default``."""
    v = rtts.get(location)
    if v is None and ":" in location:
        v = rtts.get(geography_of(location))
    return default if v is None else v


class Code(enum.Enum):
    """Plug-in result codes, as in the Kubernetes scheduler framework."""

    SUCCESS = "Success"
    UNSCHEDULABLE = "Unschedulable"  # could fit once capacity frees up
    UNRESOLVABLE = "UnschedulableAndUnresolvable"  # never fits this node


@dataclass(frozen=True, slots=True)
class Status:
    code: Code = Code.SUCCESS
    reason: str = ""  # names the constraint: "not in geographies [EU]"
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code is Code.SUCCESS


SUCCESS = Status()


@dataclass(frozen=True, slots=True)
class Decision:
    """The chosen candidate: its index in the list passed to ``choose``, and why."""

    node_id: str
    index: int
    score: float
    policy: str


@dataclass(frozen=True, slots=True)
class NoFit:
    """No candidate passes the filters; ``message`` is the ``Unschedulable`` condition
    message, ``resolvable`` False when no candidate could ever fit (only
    UnschedulableAndUnresolvable statuses)."""

    message: str
    resolvable: bool
    reasons: Mapping[str, int] = field(default_factory=_no_counts)  # reason -> number of candidates


class Policy(Protocol):
    """A placement policy. ``choose`` is pure and deterministic for its arguments."""

    name: str

    def choose(
        self, request: Request, candidates: Sequence[Candidate], tender_id: str
    ) -> Decision | NoFit: ...
