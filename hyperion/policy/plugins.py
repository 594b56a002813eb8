"""Filter and Score plug-ins over a bid snapshot (the Kubernetes scheduler framework).

Theory of operation: every Filter sees one (request, candidate) pair and returns a
``Status``; a candidate is feasible when all filters succeed. Filters run in a fixed
order and the first failure names the candidate's reason, so ``explain`` can count
"8 not in geographies [EU], 4 insufficient nvidia.com/gpu" as kube-scheduler does.
Hard constraints that no amount of freed capacity can fix are UnschedulableAndUnresolvable;
lack of free capacity is Unschedulable.

Every Score plug-in maps the feasible candidates to raw values (higher is better), then
``normalize`` scales them to integers in [0, 100]: the best gets 100 and the others lose
in proportion to how far they are behind it, over the range of the values or the
plug-in's ``MIN_SPAN``, whichever is larger. Over a spread-out bid list that is min-max
(as kube-scheduler's DefaultNormalizeScore per plug-in); the floor keeps a negligible
difference negligible (two nodes 1 % apart in price differ by 1 point of cost, not 100,
so spreading still counts). A policy sums them with the weights of the request's goal.
Pure: no I/O, no clocks, no randomness.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from hyperion.policy.model import (
    GPU_RESOURCE,
    SUCCESS,
    Candidate,
    Code,
    NoFit,
    Request,
    Status,
    location_rtt,
)

MAX_SCORE = 100
_OK = Code.SUCCESS

FilterFn = Callable[[Request, Candidate], Status]
ScoreFn = Callable[[Request, Candidate], float]


def _unresolvable(plugin: str, reason: str) -> Status:
    return Status(Code.UNRESOLVABLE, reason, plugin)


# A failing filter's Status depends only on the request, so it is worded once and shared
# (Status is frozen): most of a tender's checks fail, on the tenderer's sample and in
# ``explain``. The caches are bounded; what they hold is a pure function of the key.
_STATUS_CACHE_MAX = 1024


@functools.lru_cache(maxsize=_STATUS_CACHE_MAX)
def _not_in_geographies(geographies: tuple[str, ...]) -> Status:
    return _unresolvable("Geography", f"not in geographies [{','.join(geographies)}]")


@functools.lru_cache(maxsize=_STATUS_CACHE_MAX)
def _not_in_clouds(clouds: tuple[str, ...]) -> Status:
    return _unresolvable("Cloud", f"not in clouds [{','.join(clouds)}]")


@functools.lru_cache(maxsize=_STATUS_CACHE_MAX)
def _version_not_in(version_range: str) -> Status:
    return _unresolvable("Version", f"software version not in {version_range}")


@functools.lru_cache(maxsize=_STATUS_CACHE_MAX)
def _no_gpu_model(gpu_model: str) -> Status:
    return _unresolvable("GpuModel", f"no gpu model {gpu_model}")


_SELECTOR_MISMATCH = _unresolvable("NodeSelector", "didn't match the node selector")
_AFFINITY_MISMATCH = _unresolvable("NodeAffinity", "didn't match the required node affinity")
_TOO_SMALL = {
    name: _unresolvable("NodeResourcesFit", f"insufficient {name}")
    for name in (GPU_RESOURCE, "cpu", "memory")
}
_TOO_FULL = {
    name: Status(Code.UNSCHEDULABLE, f"insufficient {name}", "NodeResourcesFit")
    for name in (GPU_RESOURCE, "cpu", "memory")
}


def filter_geography(req: Request, c: Candidate) -> Status:
    if req.geographies and c.geography not in req.geographies:
        return _not_in_geographies(req.geographies)
    return SUCCESS


def filter_cloud(req: Request, c: Candidate) -> Status:
    if req.clouds and c.cloud not in req.clouds:
        return _not_in_clouds(req.clouds)
    return SUCCESS


def filter_node_selector(req: Request, c: Candidate) -> Status:
    for k, v in req.node_selector.items():
        if c.labels.get(k) != v:
            return _SELECTOR_MISMATCH
    return SUCCESS


def filter_node_affinity(req: Request, c: Candidate) -> Status:
    if req.affinity and not any(all(e.matches(c.labels) for e in term) for term in req.affinity):
        return _AFFINITY_MISMATCH
    return SUCCESS


def filter_version(req: Request, c: Candidate) -> Status:
    if req.version_range is not None and not req.version_range.contains(c.software_version):
        return _version_not_in(str(req.version_range))
    return SUCCESS


def filter_gpu_model(req: Request, c: Candidate) -> Status:
    if req.gpu_model is not None and (c.gpu_model or "").casefold() != req.gpu_model.casefold():
        return _no_gpu_model(req.gpu_model)
    return SUCCESS


def filter_resources(req: Request, c: Candidate) -> Status:
    """NodeResourcesFit: Unresolvable when the node's capacity is too small, else
    Unschedulable while its free resources are."""
    for name, want, total, free in (
        (GPU_RESOURCE, req.gpus, c.gpus, c.gpus_free),
        ("cpu", req.cpu_millis, c.cpu_millis, c.cpu_millis_free),
        ("memory", req.memory_bytes, c.memory_bytes, c.memory_bytes_free),
    ):
        if want > total:
            return _TOO_SMALL[name]
        if want > free:
            return _TOO_FULL[name]
    return SUCCESS


# Fixed order: the cheapest and most selective checks first; the first failure is the
# reason a candidate is counted under.
FILTERS: tuple[FilterFn, ...] = (
    filter_geography,
    filter_cloud,
    filter_node_selector,
    filter_node_affinity,
    filter_version,
    filter_gpu_model,
    filter_resources,
)


def check(req: Request, c: Candidate, filters: Sequence[FilterFn] = FILTERS) -> Status:
    """The first failing filter's status, or SUCCESS."""
    if filters is FILTERS:
        # The hot path of every tender, bid, award and checker step: FILTERS inline, in
        # FILTERS' order, returning the Status the loop below would return (a property
        # test compares the two: a filter added to FILTERS must be added here too).
        if req.geographies and c.geography not in req.geographies:
            return _not_in_geographies(req.geographies)
        if req.clouds and c.cloud not in req.clouds:
            return _not_in_clouds(req.clouds)
        if req.node_selector and (st := filter_node_selector(req, c)).code is not _OK:
            return st
        if req.affinity and (st := filter_node_affinity(req, c)).code is not _OK:
            return st
        vr = req.version_range
        if vr is not None and not vr.contains(c.software_version):
            return _version_not_in(str(vr))
        if req.gpu_model is not None and (st := filter_gpu_model(req, c)).code is not _OK:
            return st
        # filter_resources, unrolled
        want = req.gpus
        if want > c.gpus:
            return _TOO_SMALL[GPU_RESOURCE]
        if want > c.gpus_free:
            return _TOO_FULL[GPU_RESOURCE]
        want = req.cpu_millis
        if want > c.cpu_millis:
            return _TOO_SMALL["cpu"]
        if want > c.cpu_millis_free:
            return _TOO_FULL["cpu"]
        want = req.memory_bytes
        if want > c.memory_bytes:
            return _TOO_SMALL["memory"]
        if want > c.memory_bytes_free:
            return _TOO_FULL["memory"]
        return SUCCESS
    for f in filters:
        st = f(req, c)
        if st.code is not _OK:
            return st
    return SUCCESS


def violates_hard_constraints(req: Request, c: Candidate) -> bool:
    """Whether placing ``req`` on ``c`` breaks a hard constraint or overcommits it."""
    return check(req, c).code is not _OK


def feasible(req: Request, candidates: Sequence[Candidate]) -> list[int]:
    return [i for i, c in enumerate(candidates) if check(req, c).code is _OK]


def explain(req: Request, candidates: Sequence[Candidate]) -> NoFit:
    """Why no candidate fits, as kube-scheduler words it:
    ``0/12 nodes are available: 4 insufficient nvidia.com/gpu, 8 not in geographies [EU].``
    """
    counts: dict[str, int] = {}
    resolvable = False
    for c in candidates:
        st = check(req, c)
        if st.code is _OK:
            continue
        counts[st.reason] = counts.get(st.reason, 0) + 1
        resolvable = resolvable or st.code is Code.UNSCHEDULABLE
    parts = ", ".join(f"{n} {r}" for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    n = len(candidates)
    msg = f"0/{n} nodes are available" + (f": {parts}." if parts else ".")
    return NoFit(msg, resolvable, MappingProxyType(counts))


# --------------------------------------------------------------------------- scores

# An hour of a spot replica is worth less by the chance it is reclaimed; the band
# midpoints are the Spot Advisor's monthly interruption rates (0.3 for ">20%").
BAND_MONTHLY_RATE = (0.025, 0.075, 0.125, 0.175, 0.3)


def score_cost(req: Request, c: Candidate) -> float:
    """Cheaper share is better (per unit of work for a batch job, which finishes sooner
    on a faster node); spot is preferred when asked, penalized by its band otherwise
    (a workload that did not ask for spot pays for interruptions)."""
    cost = c.cost_per_hour(req)
    if req.kind == "batch":
        cost /= c.speed
    value = -math.log(cost + 1e-3)
    if c.spot:
        band = c.interruption_band if c.interruption_band is not None else 2
        value += 0.2 if req.prefer_spot else -2.0 * BAND_MONTHLY_RATE[band]
    return value


def score_latency(req: Request, c: Candidate) -> float:
    """Demand-weighted RTT; when replicas already run, the RTT a user would get with
    this one added (the best of the placed ones and this), so replicas go where users
    are not yet served."""
    weights = req.user_weights()
    if not weights:
        return 0.0  # no users (a batch job): latency does not separate candidates
    total = 0.0
    for g, w in weights:
        mine = location_rtt(c.rtt_ms, g, 300.0)
        placed = location_rtt(req.placed_rtt_ms, g, math.inf)
        total += w * min(mine, placed)
    return -total


def score_locality(req: Request, c: Candidate) -> float:
    if req.data_locality is None:
        return 0.0
    cloud, _, region = req.data_locality.partition(":")
    if c.cloud == cloud and c.region == region:
        return 2.0
    return 1.0 if c.cloud == cloud else 0.0


def score_spread(req: Request, c: Candidate) -> float:
    """PodTopologySpread-like: fewer replicas of this workload on the node, zone, region."""
    return -(4.0 * c.replicas_on_node + 2.0 * c.replicas_in_zone + 1.0 * c.replicas_in_region)


def score_load(req: Request, c: Candidate) -> float:
    """LeastAllocated: the emptier node scores higher."""
    return 1.0 - c.load


SCORERS: Mapping[str, ScoreFn] = MappingProxyType(
    {
        "cost": score_cost,
        "latency": score_latency,
        "locality": score_locality,
        "spread": score_spread,
        "load": score_load,
    }
)

# Weights per goal. Cost and latency dominate the goal they name; spread keeps replicas
# apart (failure domains, DESIGN §6 step 3); load and locality break near-ties.
GOAL_WEIGHTS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "cost": MappingProxyType(
            {"cost": 6.0, "latency": 1.0, "locality": 1.0, "spread": 1.0, "load": 0.5}
        ),
        "latency": MappingProxyType(
            {"cost": 1.0, "latency": 6.0, "locality": 1.0, "spread": 1.5, "load": 0.5}
        ),
        "default": MappingProxyType(
            {"cost": 3.0, "latency": 3.0, "locality": 1.0, "spread": 1.5, "load": 0.5}
        ),
    }
)


# The same scorers over a whole bid list, for ``rules.scores``: per-request work (the
# users' weights, the request's shares) is done once, not once per candidate. Each gives
# exactly the floats its per-candidate scorer gives, operation for operation, or None
# when they are all the same (no users, no data locality, no replicas placed yet), which
# ``normalize`` would score MAX_SCORE each.
BatchScoreFn = Callable[[Request, Sequence[Candidate]], list[float] | None]


def _cost_all(req: Request, cands: Sequence[Candidate]) -> list[float]:
    want_gpus, want_cpu, want_mem = req.gpus, req.cpu_millis, req.memory_bytes
    per_work = req.kind == "batch"
    spot_bonus = 0.2 if req.prefer_spot else None
    log = math.log
    out = []
    for c in cands:
        share = 0.0  # Candidate.share_of, inline
        if c.gpus and want_gpus and (x := want_gpus / c.gpus) > share:
            share = x
        if c.cpu_millis and want_cpu and (x := want_cpu / c.cpu_millis) > share:
            share = x
        if c.memory_bytes and want_mem and (x := want_mem / c.memory_bytes) > share:
            share = x
        cost = c.price_per_hour * min(1.0, share)
        if per_work:
            cost /= c.speed
        value = -log(cost + 1e-3)
        if c.spot:
            if spot_bonus is not None:
                value += spot_bonus
            else:
                band = c.interruption_band if c.interruption_band is not None else 2
                value += -2.0 * BAND_MONTHLY_RATE[band]
        out.append(value)
    return out


def _latency_all(req: Request, cands: Sequence[Candidate]) -> list[float] | None:
    weights = req.user_weights()
    if not weights:
        return None  # 0.0 each
    placed_rtt = req.placed_rtt_ms
    placed = [(g, w, location_rtt(placed_rtt, g, math.inf)) for g, w in weights]
    out = []
    for c in cands:
        rtt = c.rtt_ms
        total = 0.0
        for g, w, p in placed:
            total += w * min(location_rtt(rtt, g, 300.0), p)
        out.append(-total)
    return out


def _locality_all(req: Request, cands: Sequence[Candidate]) -> list[float] | None:
    if req.data_locality is None:
        return None  # 0.0 each
    return [score_locality(req, c) for c in cands]


def _spread_all(req: Request, cands: Sequence[Candidate]) -> list[float] | None:
    if not any(c.replicas_on_node or c.replicas_in_zone or c.replicas_in_region for c in cands):
        return None  # -0.0 each
    return [
        -(4.0 * c.replicas_on_node + 2.0 * c.replicas_in_zone + 1.0 * c.replicas_in_region)
        for c in cands
    ]


def _load_all(req: Request, cands: Sequence[Candidate]) -> list[float]:
    return [1.0 - c.load for c in cands]


BATCH_SCORERS: Mapping[str, BatchScoreFn] = MappingProxyType(
    {
        "cost": _cost_all,
        "latency": _latency_all,
        "locality": _locality_all,
        "spread": _spread_all,
        "load": _load_all,
    }
)


# The smallest raw range that spans the whole score scale, per plug-in: a 2x price
# (cost is a log), 50 ms of demand-weighted RTT, one replica already on the node (4 + 2
# + 1), half a node's allocation; locality's values are 0, 1 and 2.
MIN_SPAN: Mapping[str, float] = MappingProxyType(
    {"cost": math.log(2.0), "latency": 50.0, "locality": 2.0, "spread": 7.0, "load": 0.5}
)


def normalize(raw: Sequence[float], min_span: float = 0.0) -> list[int]:
    """Integers in [0, 100]: ``100 * (1 - (max - v) / span)`` with ``span`` the range
    of ``raw`` or ``min_span`` if larger (min-max when ``min_span`` is 0); all-equal
    values score 100."""
    if not raw:
        return []
    lo, hi = min(raw), max(raw)
    span = max(hi - lo, min_span)
    if span <= 1e-12:
        return [MAX_SCORE] * len(raw)
    return [round(MAX_SCORE * (1.0 - (hi - v) / span)) for v in raw]
