"""``hyperion sim placement``: the tender → bid → award protocol at mesh scale.

Runs one unmodified ``Scheduler`` core per node in the deterministic simulator, with
one-way delays drawn from the measured inter-region RTTs. The fleet is built from the
price table as in the fleet benchmark (``hyperion/sim/fleet/scenario.py``): cloud
instances on demand and spot in every priced region, plus edge boxes at user metros
(about 3 %). Every node's directory holds every node's advertised snapshot, taken at
the start (so free capacity in it goes stale as replicas land — bidders answer with
their true state); the nodes share one ``NodeView`` object for memory's sake.

Workloads arrive as a Poisson stream (``rate`` per virtual second), one replica each,
with a random mix of requests (CPU, memory, GPUs of a given model), hard constraints
(geographies, clouds, node selector, version range) and goals; a small share is
impossible (a geography no node is in, more GPUs than any node has). Each is tendered
by its custodian: the live node closest to the workload's key by XOR, as in the real
mesh. When an award is accepted the custodian's binding is assumed to reach the
winner (it confirms the reservation), as the object catalog would carry it.

Checkers run on every reservation: no node ever holds more than its capacity
(``overcommits``), and every placement satisfies the workload's hard constraints on the
winner's *true* features (``constraint_violations``). Optional faults: a fraction of
nodes dead and not yet detected, and random message loss.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from hyperion.control.scheduler import (
    NodeView,
    Placed,
    Reserved,
    Scheduler,
    SchedulerConfig,
    Unplaced,
)
from hyperion.policy import POLICIES, Candidate, Request, get_policy
from hyperion.policy.model import VersionRange
from hyperion.policy.plugins import check
from hyperion.sim import rtt as rtt_mod
from hyperion.sim.engine import Simulator, cyclic_gc_paused
from hyperion.sim.fleet import data
from hyperion.sim.fleet import scenario as fleet
from hyperion.sim.metrics import peak_rss_mib, percentile, rounded

EDGE_SHARE = 0.03
IMPOSSIBLE_SHARE = 0.005
_GIB = 1 << 30


def node_id_of(seed: int, i: int) -> str:
    return hashlib.sha1(f"hyperion-sim-node:{seed}:{i}".encode()).hexdigest()


@dataclass
class PlacementExperiment:
    nodes: int
    workloads: int
    seed: int
    rate: float = 2000.0  # workload arrivals per virtual second
    sample: int = 8  # d: bidders asked per tender
    loss: float = 0.0
    dead_fraction: float = 0.0
    policy: str = "rules"

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise ValueError("--nodes must be at least 2")
        if self.workloads < 1:
            raise ValueError("--workloads must be at least 1")
        if not self.rate > 0:
            raise ValueError("--rate must be positive")
        if self.sample < 1:
            raise ValueError("--sample must be at least 1")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("--loss must be in [0, 1)")
        if not 0.0 <= self.dead_fraction < 0.5:
            raise ValueError("--dead-fraction must be in [0, 0.5)")
        if self.policy not in POLICIES:
            raise ValueError(f"--policy must be one of {', '.join(POLICIES)}")

    # ------------------------------------------------------------------ fleet

    def _fleet(self, rng: np.random.Generator) -> list[fleet.Node]:
        rows = data.prices()
        out: list[fleet.Node] = []
        n_edge = int(self.nodes * EDGE_SHARE)
        for i in range(self.nodes - n_edge):
            row = rows[int(rng.integers(len(rows)))]
            out.append(fleet._make_node(rng, i, row, bool(rng.random() < 0.4), 0.0, 1.0))
        for _ in range(n_edge):
            metro = int(rng.integers(len(fleet.METRO_NAMES)))
            out.append(fleet._edge_node(rng, len(out), metro))
        return out

    def _request(self, rng: random.Random, k: int) -> Request:
        wid = f"w{k}"
        if rng.random() < IMPOSSIBLE_SHARE:
            if rng.random() < 0.5:
                return Request(workload_id=wid, cpu_millis=500, geographies=("AF",))
            return Request(workload_id=wid, gpus=1000)
        gpus = 1 if rng.random() < 0.25 else 0
        model = None
        if gpus and rng.random() < 0.3:
            model = rng.choice(("T4", "A10G", "L4", "A100", "H100"))
        users: tuple[tuple[str, float], ...] = ()
        if rng.random() < 0.6:
            geos = rng.sample(fleet.USER_GEOS, rng.randint(1, 3))
            users = tuple((g, round(rng.random() + 0.1, 3)) for g in geos)
        return Request(
            workload_id=wid,
            kind="batch" if rng.random() < 0.3 else "service",
            cpu_millis=rng.choice((250, 500, 1000, 2000, 4000)),
            memory_bytes=rng.choice((1, 2, 4, 8)) * _GIB // 2,
            gpus=gpus,
            gpu_model=model,
            geographies=tuple(rng.sample(("US", "EU", "APAC"), rng.randint(1, 2)))
            if rng.random() < 0.3
            else (),
            clouds=(rng.choice(("aws", "gcp", "azure")),) if rng.random() < 0.1 else (),
            node_selector={fleet.TIER_LABEL: "prod"} if rng.random() < 0.1 else {},
            version_range=VersionRange(">=0.2") if rng.random() < 0.15 else None,
            prefer_spot=rng.random() < 0.4,
            goal=rng.choice(("cost", "latency", "default")),
            users=users,
        )

    # -------------------------------------------------------------------- run

    def run(self) -> dict[str, object]:
        # As in the membership simulation: the run's messages, effects and heap entries
        # make no reference cycles, so reference counting frees them, and the cyclic
        # collector would only keep re-scanning the 10,000 cores' long-lived state.
        with cyclic_gc_paused():
            return self._run()

    def _run(self) -> dict[str, object]:
        wall0 = time.perf_counter()
        rng_np = np.random.default_rng([self.seed, 11])
        rng = random.Random(self.seed)
        matrix = rtt_mod.load()
        nodes = self._fleet(rng_np)
        ids = [node_id_of(self.seed, i) for i in range(len(nodes))]
        truth = [n.candidate(node_id=ids[i]) for i, n in enumerate(nodes)]
        view = NodeView()
        for nid, c in zip(ids, truth, strict=True):
            view.observe(nid, nid, c)
        sim = Simulator(self.seed, matrix, loss=self.loss)
        policy = get_policy(self.policy)
        config = SchedulerConfig(sample=self.sample)
        scheds: list[Scheduler] = []
        for i, (nid, c) in enumerate(zip(ids, truth, strict=True)):
            s = Scheduler(nid, policy=policy, rng=random.Random(rng.random()), config=config,
                          view=view)  # fmt: skip
            s.set_self(c)
            scheds.append(s)
            sim.add_node(nid, s, region=self._region_index(matrix, nodes[i]))
        index = {nid: i for i, nid in enumerate(ids)}
        dead = set(rng.sample(range(len(nodes)), int(self.dead_fraction * len(nodes))))
        for i in sorted(dead):
            sim.crash(i)  # still in everyone's view: dead and not yet detected
        live = np.array([i for i in range(len(nodes)) if i not in dead], dtype=np.int64)
        keys = np.array([int(nid[:16], 16) for nid in ids], dtype=np.uint64)[live]

        requests: dict[str, Request] = {}
        placed_at: dict[str, str] = {}
        latencies: list[float] = []
        unplaced: dict[str, str] = {}
        counts = {"overcommits": 0, "constraint_violations": 0, "double_placements": 0}
        capacity: list[Candidate | None] = [None] * len(truth)  # _capacity_free(truth[j])

        def on_notify(i: int, ev: object, now: float) -> None:
            if type(ev) is Reserved:
                cpu, mem, gpus = scheds[i].free()
                if cpu < 0 or mem < 0 or gpus < 0:
                    counts["overcommits"] += 1
            elif type(ev) is Placed:
                req = requests[ev.pod]
                if ev.pod in placed_at:
                    counts["double_placements"] += 1
                placed_at[ev.pod] = ev.node_id
                latencies.append(ev.elapsed_s)
                j = index[ev.node_id]
                cap = capacity[j]
                if cap is None:
                    cap = capacity[j] = _capacity_free(truth[j])
                if not check(req, cap).ok:
                    counts["constraint_violations"] += 1
                winner = sim.cores[j]
                if isinstance(winner, Scheduler):
                    winner.confirm(ev.pod)  # the custodian's binding reaches it
            elif type(ev) is Unplaced:
                unplaced[ev.pod] = ev.message

        sim.on_notify = on_notify
        t = 0.0
        arrivals: list[tuple[float, int, str, Request]] = []  # (time, custodian, pod, request)
        for k in range(self.workloads):
            t += rng.expovariate(self.rate)
            req = self._request(rng, k)
            pod = f"default/{req.workload_id}-0"
            requests[pod] = req
            key = int(hashlib.sha1(pod.encode()).hexdigest()[:16], 16)
            custodian = int(live[int(np.argmin(keys ^ np.uint64(key)))])
            arrivals.append((t, custodian, pod, req))
        # Each arrival schedules the next, under the sequence number it would have had if
        # all were scheduled now: the same run, with one pending arrival in the event heap
        # instead of all of them.
        first_seq = sim.reserve(len(arrivals))

        def start(k: int) -> None:
            _, c, p, r = arrivals[k]
            s = sim.cores[c]
            assert isinstance(s, Scheduler)
            _, fx = s.tender(p, r, sim.now)
            sim.inject(c, fx)
            if k + 1 < len(arrivals):
                sim.at(arrivals[k + 1][0], lambda: start(k + 1), seq=first_seq + k + 1)

        sim.at(arrivals[0][0], lambda: start(0), seq=first_seq)
        setup_s = time.perf_counter() - wall0
        run0 = time.perf_counter()
        sim.run(t + 30.0)
        run_s = time.perf_counter() - run0
        # Final audit over every node, not only those that reserved.
        over = sum(1 for s in scheds if min(s.free()) < 0)
        counts["overcommits"] += over
        reasons = Counter(msg.split(": ", 1)[-1][:80] for msg in unplaced.values())
        pending = len(requests) - len(placed_at) - len(unplaced)
        totals: Counter[str] = Counter()
        for sch in scheds:
            totals.update(sch.counters)
        out: dict[str, object] = {
            "nodes": len(nodes),
            "dead_nodes": len(dead),
            "workloads": self.workloads,
            "seed": self.seed,
            "policy": self.policy,
            "sample": self.sample,
            "loss": self.loss,
            "placed": len(placed_at),
            "unplaced": len(unplaced),
            "still_pending": pending,
            "placements_per_s_wall": len(placed_at) / run_s,
            "tender_to_award_ms_p50": _ms(percentile(latencies, 50)),
            "tender_to_award_ms_p99": _ms(percentile(latencies, 99)),
            "overcommits": counts["overcommits"],
            "constraint_violations": counts["constraint_violations"],
            "double_placements": counts["double_placements"],
            "unplaced_reasons": dict(reasons.most_common(5)),
            "protocol": dict(sorted(totals.items())),
            "messages": sim.stats.sent,
            "messages_per_placement": sim.stats.sent / max(len(placed_at), 1),
            "virtual_s": t,
            "setup_s": setup_s,
            "run_wall_s": run_s,
            "wall_s": time.perf_counter() - wall0,
            "peak_rss_mib": peak_rss_mib(),
        }
        return {k: rounded(v) if isinstance(v, float) else v for k, v in out.items()}

    @staticmethod
    def _region_index(matrix: rtt_mod.RttMatrix, n: fleet.Node) -> int:
        if n.edge:
            metro = n.region.removeprefix("edge-")
            anchor = dict(m for ms in fleet.METROS.values() for m in ms)[metro]
            return matrix.index(anchor)
        cr = n.cloud_region
        return matrix.index(data.RTT_PROXY.get(cr, cr))


def _capacity_free(c: Candidate) -> Candidate:
    """Hard constraints only: a node's full capacity counts as free (overcommit is
    checked separately, on the reservations)."""
    return c.with_free(c.cpu_millis, c.memory_bytes, c.gpus, c.load)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds
