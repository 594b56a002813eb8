"""Headroom of the ``rl`` target: how much a non-clairvoyant planner and a clairvoyant
search gain over ``skypilot-like`` on the fleet benchmark's held-out scenarios (module
``hyperion.sim.fleet.headroom``); ``hyperion bench fleet`` gives the shipped ``rl``
policy's gain on the same scenarios, per goal too. Prints one JSON object.

python bench/fleet_headroom.py [--seed S] [--scenarios N | --quick] [--worlds W]
                               [--passes P] [--jobs J]

About (W + 1) x 300 simulator runs per scenario: 120 scenarios with W = 2 take about
13 minutes on 2 cores; --quick (20 scenarios) about 2.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from functools import partial
from multiprocessing import Pool

from hyperion.sim.fleet import seeds
from hyperion.sim.fleet.headroom import Headroom, headroom


def _summary(rows: list[Headroom]) -> dict[str, float | int]:
    n = len(rows)
    sky = sum(h.skypilot for h in rows) / n
    means = {
        "skypilot-like": sky,
        "planner": sum(h.planner for h in rows) / n,
        "planner_on_its_worlds": sum(h.planner_expected for h in rows) / n,
        "clairvoyant": sum(h.clairvoyant for h in rows) / n,
    }
    out: dict[str, float | int] = {"scenarios": n}
    for k, v in means.items():
        out[k] = round(v, 4)
        if k != "skypilot-like":
            out[f"{k}_gain_pct"] = round(100 * (v / sky - 1), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="benchmark seed (test block)")
    ap.add_argument("--scenarios", type=int, default=120)
    ap.add_argument("--quick", action="store_true", help="20 scenarios")
    ap.add_argument("--worlds", type=int, default=2, help="re-draws the planner plans on")
    ap.add_argument("--passes", type=int, default=1, help="coordinate-search sweeps")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    if a.worlds < 1 or a.passes < 1 or a.jobs < 1:
        ap.error("--worlds, --passes and --jobs must be positive")
    n = 20 if a.quick else a.scenarios
    try:
        scenario_seeds = seeds.test_seeds(a.seed, n)
    except ValueError as e:
        ap.error(str(e))
    t0 = time.perf_counter()
    with Pool(a.jobs) as pool:
        rows = pool.map(partial(headroom, worlds=a.worlds, passes=a.passes), scenario_seeds, 1)
    by_goal: dict[str, list[Headroom]] = defaultdict(list)
    for row in rows:
        by_goal[row.goal].append(row)
    print(
        json.dumps(
            {
                "seed": a.seed,
                "first_scenario": scenario_seeds.start,
                "worlds": a.worlds,
                "passes": a.passes,
                "all": _summary(rows),
                "by_goal": {g: _summary(r) for g, r in sorted(by_goal.items())},
                "simulator_runs": sum(h.runs for h in rows),
                "wall_s": round(time.perf_counter() - t0, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
