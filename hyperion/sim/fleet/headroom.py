"""How much better than ``skypilot-like`` a policy could do on a scenario: two searches.

A measurement, not a teacher (it returns rewards, never training samples), so it may
run on held-out seeds: it is how the README's statement of the ``rl`` target's
headroom is reproduced (``python bench/fleet_headroom.py``).

* **planner** (not clairvoyant): the coordinate search of module ``expert`` over the
  decisions at t = 0 (the service's replicas and the batch job), each choice scored by
  its mean reward on ``worlds`` re-draws of the scenario's chance (``scenario.redraw``:
  the same fleet, background load, per-metro users and workloads; other reclamations,
  arrival bursts, routing and jitter), never on the scenario's own draws; the plan it
  settles on is then run on the scenario itself. It knows far more than any policy is
  told (the exact fleet, every node's future bids, the per-metro user mix, the traffic
  model), but not the future: what it gains is an estimate of what planning can earn
  in expectation, which a per-decision policy learning from bids can at most approach.
* **clairvoyant**: the same search scored on the scenario's own draws (it sees which
  spot nodes are reclaimed and when the bursts come): an upper reference, unreachable.

Pure apart from the CPU it burns: each scenario costs about ``(worlds + 1) x`` a few
hundred simulator runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyperion.sim.fleet import scenario as scenarios
from hyperion.sim.fleet.expert import coordinate_search, planner


@dataclass(frozen=True, slots=True)
class Headroom:
    seed: int
    family: str
    goal: str
    skypilot: float  # skypilot-like's reward on the scenario
    planner: float  # the non-clairvoyant plan's reward on the scenario itself
    planner_expected: float  # the plan's mean reward on the worlds it planned on
    clairvoyant: float  # the search scored on the scenario's own draws
    runs: int


def headroom(seed: int, *, worlds: int = 2, passes: int = 1) -> Headroom:
    """Both searches on scenario ``seed`` (any seed: nothing is learned from it)."""
    if worlds < 1 or passes < 1:
        raise ValueError("worlds and passes must be positive")
    sc = scenarios.make(seed)
    plan = planner(sc, worlds, passes=passes)
    seen = coordinate_search(sc, [sc], passes=passes, limit=sc.service.replicas + 1)
    return Headroom(
        seed=seed,
        family=sc.family,
        goal=sc.service.goal,
        skypilot=seen.start_value,  # the search starts from skypilot-like's run of sc
        planner=plan.metrics.reward,
        planner_expected=plan.best_value,
        clairvoyant=seen.best_value,
        runs=plan.runs + seen.runs,
    )
