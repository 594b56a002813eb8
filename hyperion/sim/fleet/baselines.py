"""The policies Hyperion is compared with, each as strong as its idea allows.

* ``static`` — the proposal's control group: one home region, on demand only (it runs on
  ``scenario.static_pool``), the cheapest instance type that fits, replicas spread over
  zones as the default kube-scheduler's PodTopologySpread does.
* ``k8s-default`` — kube-scheduler's default scoring over the whole fleet: the same hard
  filters, then NodeResourcesFit LeastAllocated + BalancedAllocation + topology spread;
  blind to price and to where users are.
* ``greedy-cost`` — the cheapest feasible share (per unit of work for a batch job),
  spot allowed.
* ``skypilot-like`` — SkyPilot's optimizer and managed spot: the cheapest feasible
  (region, instance), spot first with on-demand fallback when no spot bid fits,
  replicas of one service hedged over zones (SpotHedge), and after a preemption the
  region it happened in is avoided (failover) while any other fits.

All respect hard constraints through the shared filters; ties break on the
(tender id, node id) hash. ``rules`` and ``rl`` live in ``hyperion.policy``.
"""

from __future__ import annotations

from collections.abc import Sequence

from hyperion.policy.model import Candidate, Decision, NoFit, Request
from hyperion.policy.plugins import explain, feasible
from hyperion.policy.rules import tie_break


def _pick(
    name: str,
    req: Request,
    cands: Sequence[Candidate],
    tender: str,
    key: object,
    ok: Sequence[int] | None = None,
) -> Decision | NoFit:
    idx = feasible(req, cands) if ok is None else list(ok)
    if not idx:
        return explain(req, cands)
    keyf = key  # a callable (Candidate) -> tuple; lower is better
    assert callable(keyf)
    i = min(idx, key=lambda j: (*keyf(cands[j]), tie_break(tender, cands[j].node_id)))
    return Decision(cands[i].node_id, i, 0.0, name)


def _unit_cost(req: Request, c: Candidate) -> float:
    cost = c.cost_per_hour(req)
    return cost / c.speed if req.kind == "batch" else cost


class StaticPolicy:
    """Cheapest fitting instance type in the home pool, spread over zones."""

    name = "static"

    def choose(
        self, request: Request, candidates: Sequence[Candidate], tender_id: str
    ) -> Decision | NoFit:
        return _pick(
            self.name,
            request,
            candidates,
            tender_id,
            lambda c: (round(c.cost_per_hour(request), 6), c.replicas_in_zone, c.load),
        )


class K8sDefaultPolicy:
    """LeastAllocated + BalancedAllocation + PodTopologySpread (zone), equal weights."""

    name = "k8s-default"

    def choose(
        self, request: Request, candidates: Sequence[Candidate], tender_id: str
    ) -> Decision | NoFit:
        def key(c: Candidate) -> tuple[float, ...]:
            cpu_after = 1 - (c.cpu_millis_free - request.cpu_millis) / max(c.cpu_millis, 1)
            mem_after = 1 - (c.memory_bytes_free - request.memory_bytes) / max(c.memory_bytes, 1)
            least = 100 * (1 - (cpu_after + mem_after) / 2)
            balanced = 100 * (1 - abs(cpu_after - mem_after))
            spread = 100 / (1 + c.replicas_in_zone + 2 * c.replicas_on_node)
            return (-round(least + balanced + spread, 6),)

        return _pick(self.name, request, candidates, tender_id, key)


class GreedyCostPolicy:
    name = "greedy-cost"

    def choose(
        self, request: Request, candidates: Sequence[Candidate], tender_id: str
    ) -> Decision | NoFit:
        return _pick(
            self.name,
            request,
            candidates,
            tender_id,
            lambda c: (round(_unit_cost(request, c), 6),),
        )


class SkyPilotLikePolicy:
    """Cheapest region/instance, spot first, on-demand fallback, region failover."""

    name = "skypilot-like"

    def __init__(self) -> None:
        self._avoid: dict[str, set[str]] = {}

    def observe_preemption(self, workload_id: str, cloud_region: str) -> None:
        self._avoid.setdefault(workload_id, set()).add(cloud_region)

    def choose(
        self, request: Request, candidates: Sequence[Candidate], tender_id: str
    ) -> Decision | NoFit:
        ok = feasible(request, candidates)
        avoid = self._avoid.get(request.workload_id, set())
        elsewhere = [i for i in ok if candidates[i].cloud_region not in avoid]
        pool = elsewhere or ok
        # spot first; machines outside the clouds (edge, on-prem) have no spot market
        spot = [i for i in pool if candidates[i].spot or candidates[i].edge]
        pool = spot or pool
        return _pick(
            self.name,
            request,
            candidates,
            tender_id,
            lambda c: (round(_unit_cost(request, c) * (1 + 0.25 * c.replicas_in_zone), 6),),
            pool,
        )
