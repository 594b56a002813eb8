"""One run of a placement policy on a scenario: placements, reclamations, metrics.

Theory of operation: ``FleetSim`` is a small discrete-event loop driven from outside.
``next_decision()`` returns the next replica to place (with the bid snapshot at that
moment) or None when the run is over; ``apply(outcome)`` records the policy's answer.
The benchmark loop and the gymnasium environment drive the same object, so what the
RL policy is trained on is what it is measured on.

* t = 0: every replica of the service, then the batch job, is placed in turn; each
  decision sees the capacity the previous ones took.
* A spot node's reclamation (``Node.reclaim_s``) is announced ``NOTICE_S`` earlier. At
  the notice, each replica on it is re-tendered (the announced node no longer bids);
  the new service replica serves from notice + startup, the old one until the
  reclamation, so a service gap appears only when startup exceeds the notice. The
  batch job restarts from its last periodic checkpoint once the node is gone and the new
  one has started.
* Costs: a replica pays its node's price times its share from the moment it is placed
  (startup included). The service is charged over the hour; the batch job in full.
  ``cost_per_hour`` = service USD in the hour + batch USD, per hour.
* Latency: the hour's requests (module scenario) are replayed 10x compressed at the
  service's real rate. Clients route latency-aware: each metro's traffic goes to its
  nearest replicas, each filled to ``RHO_MAX`` of its service rate before spilling to
  the next nearest (what a geo load balancer with outlier ejection approximates);
  each replica is a FIFO server (batch 1). Client latency = RTT (last mile included) +
  wait + service time. With no replica up, a request fails at ``FAIL_MS``.
* Violations: every placement is re-checked against the hard constraints and the
  capacity of the node it went to, independently of the policy.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hyperion.policy.model import Candidate, Decision, NoFit, Policy, Request
from hyperion.policy.plugins import violates_hard_constraints
from hyperion.policy.reward import reward
from hyperion.sim.fleet import data
from hyperion.sim.fleet.scenario import (
    HOUR_S,
    NOTICE_S,
    WINDOW_S,
    Node,
    Scenario,
    Workload,
)

RHO_MAX = 0.5  # mean utilization a replica is filled to before clients spill over:
# the Azure traces burst to ~4x their mean within seconds, so more would queue
ROUTE_SLACK_MS = 10.0  # replicas this close in RTT are "equally near" to a client
FAIL_MS = 10_000.0  # a request with no replica up times out
BATCH_HORIZON_S = 72 * HOUR_S  # a batch job not done by then is reported unfinished
MAX_DECISIONS = 200  # placements per run, re-tenders included (runs stay bounded)


@dataclass(slots=True)
class Replica:
    workload: Workload
    slot: int
    node: int
    placed_s: float  # charged from here
    start_s: float  # serving / computing from here
    end_s: float = math.inf


@dataclass(frozen=True, slots=True)
class Pending:
    """A replica waiting for a decision: the tender and the bids."""

    request: Request
    candidates: tuple[Candidate, ...]
    nodes: tuple[int, ...]  # scenario node index per candidate
    tender_id: str
    time_s: float
    workload: Workload
    slot: int


@dataclass(frozen=True, slots=True)
class RunMetrics:
    reward: float
    cost_per_hour: float
    p99_latency_ms: float
    bert_completion_min: float  # inf when unfinished
    bert_cost_usd: float
    violations: int
    preemptions: int
    unplaced: int
    decisions: int
    service_cost_per_hour: float
    p50_latency_ms: float

    def to_json(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {}
        for k in self.__slots__:
            v = getattr(self, k)
            out[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        return out


class PreemptionAware(Protocol):
    def observe_preemption(self, workload_id: str, cloud_region: str) -> None: ...


@dataclass
class _State:
    free_gpus: list[int]
    free_cpu: list[int]
    free_mem: list[int]
    replicas: list[Replica] = field(default_factory=list)
    queue: list[tuple[float, Workload, int, int]] = field(default_factory=list)
    events: list[tuple[float, int]] = field(default_factory=list)  # (notice time, node)
    watched: set[int] = field(default_factory=set)
    violations: int = 0
    preemptions: int = 0
    unplaced: int = 0
    decisions: int = 0
    preempted_regions: list[tuple[str, str]] = field(default_factory=list)


class FleetSim:
    """A run of one scenario on ``nodes`` (the scenario's fleet, or a static pool)."""

    def __init__(self, scenario: Scenario, nodes: Sequence[Node] | None = None) -> None:
        self.scenario = scenario
        self.nodes = tuple(scenario.nodes if nodes is None else nodes)
        figs = data.service_figures()
        self._service_ms = [figs.inference_ms.get(n.gpu_model or "", math.inf) for n in self.nodes]
        t4_ms = figs.inference_ms[data.REFERENCE_GPU]
        t4_sps = figs.bert_samples_per_s[data.REFERENCE_GPU]
        self._speed_service = [t4_ms / ms if math.isfinite(ms) else 1.0 for ms in self._service_ms]
        self._bert_sps = [figs.bert_samples_per_s.get(n.gpu_model or "", 0.0) for n in self.nodes]
        self._speed_batch = [s / t4_sps if s > 0 else 1.0 for s in self._bert_sps]
        self.st = _State(
            free_gpus=[n.gpus - n.background_gpus for n in self.nodes],
            free_cpu=[n.cpu_millis - n.background_cpu_millis for n in self.nodes],
            free_mem=[n.memory_bytes - n.background_memory_bytes for n in self.nodes],
        )
        svc, job = scenario.service, scenario.batch
        self.st.queue = [(0.0, svc, k, 0) for k in range(svc.replicas)] + [(0.0, job, 0, 0)]
        self._pending: Pending | None = None
        # batch progress
        self._batch_done = 0.0  # checkpointed samples
        self._batch_segment: Replica | None = None
        self._batch_finish_s = math.inf
        self._batch_cost = 0.0
        self._batch_gone_s = 0.0  # when the batch job's previous node disappeared

    # ------------------------------------------------------------------ decisions

    def next_decision(self) -> Pending | None:
        """The next replica to place, or None when the run is over."""
        if self._pending is not None:
            return self._pending
        while not self.st.queue:
            if not self._advance():
                return None
        if self.st.decisions >= MAX_DECISIONS:
            self.st.queue.clear()
            return None
        t, w, slot, attempt = self.st.queue[0]
        self._pending = self._tender(t, w, slot, attempt)
        return self._pending

    def apply(self, outcome: Decision | NoFit) -> None:
        p = self._pending
        assert p is not None, "apply() without a pending decision"
        self._pending = None
        self.st.queue.pop(0)
        self.st.decisions += 1
        if isinstance(outcome, NoFit) or not 0 <= outcome.index < len(p.candidates):
            if isinstance(outcome, Decision):
                self.st.violations += 1  # chose something that did not bid
            self.st.unplaced += 1
            return
        cand = p.candidates[outcome.index]
        if violates_hard_constraints(p.request, cand):
            self.st.violations += 1
        i = p.nodes[outcome.index]
        w = p.workload
        self.st.free_gpus[i] -= w.gpus
        self.st.free_cpu[i] -= w.cpu_millis
        self.st.free_mem[i] -= w.memory_bytes
        start = p.time_s + (w.startup_s if p.time_s > 0 else 0.0)
        rep = Replica(w, p.slot, i, p.time_s, start)
        self.st.replicas.append(rep)
        if w.kind == "batch":
            begin = max(start, self._batch_gone_s)
            rep.start_s = begin
            self._batch_segment = rep
            remaining = (w.samples - self._batch_done) / max(self._bert_sps[i], 1e-9)
            self._batch_finish_s = begin + remaining
        node = self.nodes[i]
        if math.isfinite(node.reclaim_s) and i not in self.st.watched:
            self.st.watched.add(i)
            heapq.heappush(self.st.events, (node.reclaim_s - NOTICE_S, i))

    # ------------------------------------------------------------------ internals

    def _tender(self, t: float, w: Workload, slot: int, attempt: int) -> Pending:
        active = [r for r in self.st.replicas if r.workload is w and r.end_s > t]
        on_node: dict[int, int] = {}
        in_zone: dict[str, int] = {}
        in_region: dict[str, int] = {}
        for r in active:
            n = self.nodes[r.node]
            on_node[r.node] = on_node.get(r.node, 0) + 1
            in_zone[n.zone] = in_zone.get(n.zone, 0) + 1
            in_region[n.cloud_region] = in_region.get(n.cloud_region, 0) + 1
        req = Request(
            workload_id=w.workload_id,
            replica=slot,
            replicas=w.replicas,
            kind=w.kind,
            cpu_millis=w.cpu_millis,
            memory_bytes=w.memory_bytes,
            gpus=w.gpus,
            geographies=w.geographies,
            clouds=w.clouds,
            node_selector=w.node_selector,
            affinity=w.affinity,
            version_range=w.version_range,
            prefer_spot=w.prefer_spot,
            data_locality=w.data_locality,
            goal=w.goal,
            users=w.users,
        )
        if w.kind == "service":  # where the running replicas serve users from
            req = req.with_siblings(
                [self.nodes[r.node].candidate(speed=self._speed_service[r.node]) for r in active]
            )
        speeds = self._speed_service if w.kind == "service" else self._speed_batch
        cands: list[Candidate] = []
        idx: list[int] = []
        for i, n in enumerate(self.nodes):
            if n.reclaim_s - NOTICE_S <= t:
                continue  # reclaimed, or announced: it no longer bids
            cands.append(self._candidate(i, n, speeds[i], on_node, in_zone, in_region))
            idx.append(i)
        return Pending(
            req, tuple(cands), tuple(idx), f"{w.workload_id}/{slot}/{attempt}", t, w, slot
        )

    def _candidate(
        self,
        i: int,
        n: Node,
        speed: float,
        on_node: dict[int, int],
        in_zone: dict[str, int],
        in_region: dict[str, int],
    ) -> Candidate:
        st = self.st
        free_g, free_c, free_m = st.free_gpus[i], st.free_cpu[i], st.free_mem[i]
        load = 1.0 - free_g / n.gpus if n.gpus else 1.0 - free_c / max(n.cpu_millis, 1)
        return n.candidate(
            free=(max(free_g, 0), max(free_c, 0), max(free_m, 0)),
            load=min(max(load, 0.0), 1.0),
            speed=speed,
            placed=(
                on_node.get(i, 0),
                in_zone.get(n.zone, 0),
                in_region.get(n.cloud_region, 0),
            ),
        )

    def _advance(self) -> bool:
        """Process the next reclamation notice that matters; False when none is left."""
        while self.st.events:
            t, i = heapq.heappop(self.st.events)
            node = self.nodes[i]
            hit = False
            for r in self.st.replicas:
                if r.node != i or r.end_s <= t:
                    continue
                if r.workload.kind == "service":
                    if t >= HOUR_S:
                        continue
                elif r is not self._batch_segment or self._batch_finish_s <= node.reclaim_s:
                    continue
                r.end_s = node.reclaim_s
                hit = True
                self.st.preemptions += 1
                self.st.preempted_regions.append((r.workload.workload_id, node.cloud_region))
                if r.workload.kind == "batch":
                    self._interrupt_batch(r, node.reclaim_s)
                attempts = sum(1 for q in self.st.replicas if q.workload is r.workload)
                self.st.queue.append((t, r.workload, r.slot, attempts))
            if hit:
                return True
        return False

    def _interrupt_batch(self, r: Replica, gone_s: float) -> None:
        w = r.workload
        ran = max(gone_s - r.start_s, 0.0)
        ckpt = math.floor(ran / w.checkpoint_s) * w.checkpoint_s
        self._batch_done = min(w.samples, self._batch_done + ckpt * self._bert_sps[r.node])
        self._batch_cost += self._charge(r, gone_s)
        self._batch_segment = None
        self._batch_finish_s = math.inf
        self._batch_gone_s = gone_s

    def _price(self, r: Replica) -> float:
        n = self.nodes[r.node]
        w = r.workload
        shares = [w.gpus / n.gpus if n.gpus and w.gpus else 0.0]
        if n.cpu_millis:
            shares.append(w.cpu_millis / n.cpu_millis)
        if n.memory_bytes:
            shares.append(w.memory_bytes / n.memory_bytes)
        return n.price_per_hour * min(1.0, max(shares))

    def _charge(self, r: Replica, until_s: float) -> float:
        return self._price(r) * max(until_s - r.placed_s, 0.0) / HOUR_S

    # ------------------------------------------------------------------ metrics

    def finish(self) -> RunMetrics:
        """Metrics of the run; call once ``next_decision()`` has returned None."""
        svc = self.scenario.service
        service_usd = sum(
            self._charge(r, min(r.end_s, HOUR_S))
            for r in self.st.replicas
            if r.workload is svc and r.placed_s < HOUR_S
        )
        seg = self._batch_segment
        bert_cost = self._batch_cost
        finish = self._batch_finish_s
        if seg is not None and math.isfinite(finish) and finish <= BATCH_HORIZON_S:
            bert_cost += self._charge(seg, finish)
            completion = finish / 60.0
        else:
            if seg is not None:
                bert_cost += self._charge(seg, BATCH_HORIZON_S)
            completion = math.inf
        latencies = self._latencies()
        p99 = float(np.percentile(latencies, 99)) if latencies.size else FAIL_MS
        p50 = float(np.percentile(latencies, 50)) if latencies.size else FAIL_MS
        cost_h = service_usd + bert_cost
        r = reward(cost_h, p99, svc.goal, self.st.violations)
        return RunMetrics(
            reward=r,
            cost_per_hour=cost_h,
            p99_latency_ms=p99,
            bert_completion_min=completion,
            bert_cost_usd=bert_cost,
            violations=self.st.violations,
            preemptions=self.st.preemptions,
            unplaced=self.st.unplaced,
            decisions=self.st.decisions,
            service_cost_per_hour=service_usd,
            p50_latency_ms=p50,
        )

    def _latencies(self) -> np.ndarray:
        sc = self.scenario
        reps = [r for r in self.st.replicas if r.workload is sc.service]
        n = sc.arrivals_s.size
        hour_t = sc.arrivals_s * (HOUR_S / WINDOW_S)
        bounds = sorted(
            {0.0, HOUR_S}
            | {r.start_s for r in reps if 0 < r.start_s < HOUR_S}
            | {r.end_s for r in reps if 0 < r.end_s < HOUR_S}
        )
        assign = np.full(n, -1, dtype=np.int64)
        metros = sc.request_metro
        demand = sc.metro_weights * sc.service.rate_rps
        for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True):
            lo, hi = np.searchsorted(hour_t, [b0, b1])
            if lo == hi:
                continue
            active = [k for k, r in enumerate(reps) if r.start_s <= b0 and r.end_s >= b1]
            if not active:
                continue
            split = self._split(demand, [reps[k] for k in active])
            sel_m = metros[lo:hi]
            u = sc.request_u[lo:hi]
            out = np.empty(hi - lo, dtype=np.int64)
            for m in range(split.shape[0]):
                mask = sel_m == m
                if not mask.any():
                    continue
                cum = np.cumsum(split[m])
                pick = np.searchsorted(cum, u[mask] * cum[-1], side="right")
                out[mask] = np.asarray(active)[np.minimum(pick, len(active) - 1)]
            assign[lo:hi] = out
        lat = np.full(n, FAIL_MS)
        for k, r in enumerate(reps):
            sel = np.nonzero(assign == k)[0]
            if sel.size == 0:
                continue
            a = sc.arrivals_s[sel]
            s = self._service_ms[r.node] / 1000.0 * sc.request_jitter[sel]
            c = np.cumsum(s)
            depart = c + np.maximum.accumulate(a - (c - s))
            wait = depart - s - a
            rtt = np.asarray(self.nodes[r.node].rtt_metro_ms)[metros[sel]]
            lat[sel] = rtt + (wait + s) * 1000.0
        return lat

    def _split(self, demand: np.ndarray, reps: list[Replica]) -> np.ndarray:
        """Traffic share per (metro, replica): replicas within ``ROUTE_SLACK_MS`` of
        each other count as equally near and share a metro's traffic in proportion to
        their spare capacity; nearer groups fill first, each replica up to RHO_MAX of
        its service rate; what is left goes by capacity."""
        nm, nr = demand.size, len(reps)
        cap = np.array([RHO_MAX * 1000.0 / self._service_ms[r.node] for r in reps])
        rtt = np.array([[self.nodes[r.node].rtt_metro_ms[m] for r in reps] for m in range(nm)])
        bucket = np.floor(rtt / ROUTE_SLACK_MS)
        left = demand.astype(float).copy()
        room = cap.copy()
        flow = np.zeros((nm, nr))
        for level in np.unique(bucket):
            for m in np.argsort(-left, kind="stable"):
                near = bucket[m] == level
                spare = np.where(near, room, 0.0)
                total = spare.sum()
                take = min(left[m], total)
                if take <= 0:
                    continue
                part = take * spare / total
                flow[m] += part
                room -= part
                left[m] -= take
        if left.sum() > 0:
            flow += np.outer(left, cap / cap.sum())
        totals = flow.sum(axis=1, keepdims=True)
        uniform = np.full((nm, nr), 1.0 / nr)
        return np.where(totals > 0, flow / np.where(totals > 0, totals, 1.0), uniform)


def run(scenario: Scenario, policy: Policy, nodes: Sequence[Node] | None = None) -> RunMetrics:
    """Drive one run to the end with ``policy``."""
    sim = FleetSim(scenario, nodes)
    seen = 0
    while (p := sim.next_decision()) is not None:
        regions = sim.st.preempted_regions
        if hasattr(policy, "observe_preemption"):
            for wid, region in regions[seen:]:
                policy.observe_preemption(wid, region)
        seen = len(regions)
        sim.apply(policy.choose(p.request, p.candidates, p.tender_id))
    return sim.finish()
