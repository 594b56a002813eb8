"""The fleet benchmark: every policy on the same held-out scenarios, means and a chart.

``run_bench(seed)`` runs the six policies on the test seeds of block ``seed`` (module
seeds; never a training or validation seed) and returns the JSON of
``hyperion bench fleet --json``: means over scenarios per policy, the same per scenario
family, reductions versus ``static``, and the RL decision time (numpy, measured here,
the only field that is not a pure function of the seed).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hyperion.policy.model import Candidate, Policy, Request
from hyperion.policy.rl import RlPolicy, candidate_features, context_features, shortlist
from hyperion.policy.rules import RulesPolicy
from hyperion.sim.fleet import data, scenario, seeds
from hyperion.sim.fleet.baselines import (
    GreedyCostPolicy,
    K8sDefaultPolicy,
    SkyPilotLikePolicy,
    StaticPolicy,
)
from hyperion.sim.fleet.run import FleetSim, RunMetrics, run

POLICY_NAMES = ("static", "k8s-default", "greedy-cost", "skypilot-like", "rules", "rl")
HEURISTICS = ("k8s-default", "greedy-cost", "skypilot-like", "rules")
QUICK_SCENARIOS = 24
FULL_SCENARIOS = 120
METRICS = (
    "reward",
    "cost_per_hour",
    "p99_latency_ms",
    "bert_completion_min",
    "bert_cost_usd",
    "violations",
    "preemptions",
)


def make_policy(name: str, rl: RlPolicy | None = None) -> Policy:
    """A fresh policy (skypilot-like keeps per-run failover memory)."""
    factories: dict[str, Callable[[], Policy]] = {
        "static": StaticPolicy,
        "k8s-default": K8sDefaultPolicy,
        "greedy-cost": GreedyCostPolicy,
        "skypilot-like": SkyPilotLikePolicy,
        "rules": RulesPolicy,
        "rl": lambda: rl if rl is not None else RlPolicy.load(),
    }
    if name not in factories:
        raise ValueError(f"unknown policy {name!r}: one of {', '.join(POLICY_NAMES)}")
    return factories[name]()


def run_one(sc: scenario.Scenario, name: str, rl: RlPolicy | None = None) -> RunMetrics:
    pool = scenario.static_pool(sc) if name == "static" else None
    return run(sc, make_policy(name, rl), pool)


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return round(statistics.fmean(finite), 4) if finite else None


def _summary(rows: Sequence[RunMetrics]) -> dict[str, Any]:
    out: dict[str, Any] = {k: _mean([float(getattr(r, k)) for r in rows]) for k in METRICS}
    p99 = [r.p99_latency_ms for r in rows]
    out["p99_latency_ms_median"] = round(statistics.median(p99), 1) if p99 else None
    out["violations"] = sum(r.violations for r in rows)
    out["preemptions"] = sum(r.preemptions for r in rows)
    out["unplaced"] = sum(r.unplaced for r in rows)
    out["bert_unfinished"] = sum(1 for r in rows if not math.isfinite(r.bert_completion_min))
    return out


def _reduction(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return round(100.0 * (1.0 - new / old), 1)


def rl_decision_us(rl: RlPolicy, seed: int, decisions: int = 200) -> dict[str, float]:
    """Median microseconds per ``rl`` decision on recorded bids: the network alone
    (features precomputed) and the whole ``choose`` (filters, shortlist, features)."""
    recorded: list[tuple[Request, tuple[Candidate, ...], str]] = []
    for s in seeds.test_seeds(seed, 8):
        sim = FleetSim(scenario.make(s))
        while (p := sim.next_decision()) is not None and len(recorded) < decisions:
            recorded.append((p.request, p.candidates, p.tender_id))
            sim.apply(RulesPolicy().choose(p.request, p.candidates, p.tender_id))
        if len(recorded) >= decisions:
            break
    forward, whole = [], []
    for req, cands, tender in recorded:
        slots = shortlist(req, cands, tender)
        if not slots:
            continue
        ctx = context_features(req, len(slots))
        feats = candidate_features(req, [cands[i] for i in slots])
        for _ in range(3):
            t0 = time.perf_counter()
            rl.weights.logits(ctx, feats)
            t1 = time.perf_counter()
            rl.choose(req, cands, tender)
            t2 = time.perf_counter()
            forward.append(t1 - t0)
            whole.append(t2 - t1)
    return {
        "forward_us": round(1e6 * statistics.median(forward), 1),
        "choose_us": round(1e6 * statistics.median(whole), 1),
        "candidates_mean": round(statistics.fmean(len(c) for _, c, _ in recorded), 1),
    }


def run_bench(
    seed: int = 0,
    n_scenarios: int = FULL_SCENARIOS,
    *,
    rl: RlPolicy | None = None,
    timing: bool = True,
    policies: Sequence[str] = POLICY_NAMES,
) -> dict[str, Any]:
    rl = rl if rl is not None else (RlPolicy.load() if "rl" in policies else None)
    test = seeds.test_seeds(seed, n_scenarios)
    per: dict[str, list[RunMetrics]] = {p: [] for p in policies}
    # the same means per scenario family and per service goal
    groups: dict[str, dict[str, dict[str, list[RunMetrics]]]] = {"families": {}, "goals": {}}
    for s in test:
        sc = scenario.make(s)
        for name in policies:
            m = run_one(sc, name, rl)
            per[name].append(m)
            for kind, key in (("families", sc.family), ("goals", sc.service.goal)):
                groups[kind].setdefault(key, {p: [] for p in policies})[name].append(m)
    out: dict[str, Any] = {
        "seed": seed,
        "scenarios": n_scenarios,
        "scenario_seeds": [test.start, test.stop],
        "rl_decision_us": None,
        "policies": {p: _summary(rows) for p, rows in per.items()},
        **{
            kind: {
                k: {
                    "scenarios": len(next(iter(d.values()))),
                    **{p: _summary(r) for p, r in d.items()},
                }
                for k, d in sorted(g.items())
            }
            for kind, g in groups.items()
        },
        "background_load": "alibaba" if data.alibaba_pods() is not None else "uniform",
    }
    pol = out["policies"]
    if "static" in pol:
        out["vs_static_pct"] = {
            p: {
                "cost_reduction": _reduction(
                    pol[p]["cost_per_hour"], pol["static"]["cost_per_hour"]
                ),
                "p99_reduction": _reduction(
                    pol[p]["p99_latency_ms"], pol["static"]["p99_latency_ms"]
                ),
            }
            for p in policies
            if p != "static"
        }
    heur = [p for p in HEURISTICS if p in pol]
    if "rl" in pol and heur:
        best = max(heur, key=lambda p: pol[p]["reward"])
        out["rl_vs_best_heuristic"] = {
            "best_heuristic": best,
            "reward_gain_pct": round(100 * (pol["rl"]["reward"] / pol[best]["reward"] - 1), 1),
            "per_scenario_wins": sum(
                1
                for a, *bs in zip(per["rl"], *(per[h] for h in heur), strict=True)
                if a.reward > max(b.reward for b in bs)
            ),
        }
    if timing and rl is not None:
        t = rl_decision_us(rl, seed)
        out["rl_decision_us"] = t["forward_us"]
        out["rl_choose_us"] = t["choose_us"]
        out["rl_candidates_mean"] = t["candidates_mean"]
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    """Cost vs P99 per policy, and BERT completion bars (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pol = result["policies"]
    names = list(pol)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for n in names:
        a.scatter(pol[n]["cost_per_hour"], pol[n]["p99_latency_ms"], s=60)
        a.annotate(
            n,
            (pol[n]["cost_per_hour"], pol[n]["p99_latency_ms"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=9,
        )
    a.set_xscale("log")
    a.set_xlabel("cost, USD per hour (log)")
    a.set_ylabel("client P99 latency, ms")
    a.set_title(f"mean over {result['scenarios']} held-out scenarios")
    vals = [pol[n]["bert_completion_min"] or np.nan for n in names]
    b.bar(names, vals, color="tab:gray")
    b.set_ylabel("BERT-base fine-tune completion, min")
    b.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
