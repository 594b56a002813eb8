"""Filter and Score plug-ins over a bid snapshot (the Kubernetes scheduler framework).

Theory of operation: every Filter sees one (request, candidate) pair and returns a
``Status``; a candidate is feasible when all filters succeed. Filters run in a fixed
order and the first failure names the candidate's reason, so ``explain`` can count
"8 not in geographies [EU], 4 insufficient nvidia.com/gpu" as kube-scheduler does.
Hard constraints that no amount of freed capacity can fix are UnschedulableAndUnresolvable;
lack of free capacity is Unschedulable.

Every Score plug-in maps the feasible candidates to raw values (higher is better), then
``normalize`` scales them to integers in [0, 100] (min-max over the candidates, as
kube-scheduler's DefaultNormalizeScore does per plug-in); a policy sums them with the
weights of the request's goal. Pure: no I/O, no clocks, no randomness.
"""

from __future__ import annotations

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
)

MAX_SCORE = 100
_OK = Code.SUCCESS

FilterFn = Callable[[Request, Candidate], Status]
ScoreFn = Callable[[Request, Candidate], float]


def _unresolvable(plugin: str, reason: str) -> Status:
    return Status(Code.UNRESOLVABLE, reason, plugin)


def filter_geography(req: Request, c: Candidate) -> Status:
    if req.geographies and c.geography not in req.geographies:
        return _unresolvable("Geography", f"not in geographies [{','.join(req.geographies)}]")
    return SUCCESS


def filter_cloud(req: Request, c: Candidate) -> Status:
    if req.clouds and c.cloud not in req.clouds:
        return _unresolvable("Cloud", f"not in clouds [{','.join(req.clouds)}]")
    return SUCCESS


def filter_node_selector(req: Request, c: Candidate) -> Status:
    for k, v in req.node_selector.items():
        if c.labels.get(k) != v:
            return _unresolvable("NodeSelector", "didn't match the node selector")
    return SUCCESS


def filter_node_affinity(req: Request, c: Candidate) -> Status:
    if req.affinity and not any(all(e.matches(c.labels) for e in term) for term in req.affinity):
        return _unresolvable("NodeAffinity", "didn't match the required node affinity")
    return SUCCESS


def filter_version(req: Request, c: Candidate) -> Status:
    if req.version_range is not None and not req.version_range.contains(c.software_version):
        return _unresolvable("Version", f"software version not in {req.version_range}")
    return SUCCESS


def filter_gpu_model(req: Request, c: Candidate) -> Status:
    if req.gpu_model is not None and (c.gpu_model or "").casefold() != req.gpu_model.casefold():
        return _unresolvable("GpuModel", f"no gpu model {req.gpu_model}")
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
            return _unresolvable("NodeResourcesFit", f"insufficient {name}")
        if want > free:
            return Status(Code.UNSCHEDULABLE, f"insufficient {name}", "NodeResourcesFit")
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
    for f in filters:
        st = f(req, c)
        if st.code is not _OK:  # the hot path of every tender: no property call
            return st
    return SUCCESS


def violates_hard_constraints(req: Request, c: Candidate) -> bool:
    """Whether placing ``req`` on ``c`` breaks a hard constraint or overcommits it."""
    return not check(req, c).ok


def feasible(req: Request, candidates: Sequence[Candidate]) -> list[int]:
    return [i for i, c in enumerate(candidates) if check(req, c).ok]


def explain(req: Request, candidates: Sequence[Candidate]) -> NoFit:
    """Why no candidate fits, as kube-scheduler words it:
    ``0/12 nodes are available: 4 insufficient nvidia.com/gpu, 8 not in geographies [EU].``
    """
    counts: dict[str, int] = {}
    resolvable = False
    for c in candidates:
        st = check(req, c)
        if st.ok:
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
        mine = c.rtt_ms.get(g, 300.0)
        placed = req.placed_rtt_ms.get(g)
        total += w * (mine if placed is None else min(mine, placed))
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


def normalize(raw: Sequence[float]) -> list[int]:
    """Min-max to integers in [0, 100]; all-equal values score 100."""
    if not raw:
        return []
    lo, hi = min(raw), max(raw)
    if hi - lo <= 1e-12:
        return [MAX_SCORE] * len(raw)
    return [round(MAX_SCORE * (v - lo) / (hi - lo)) for v in raw]
