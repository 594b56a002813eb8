"""A gymnasium environment on the fleet model, for training the ``rl`` policy.

One episode is one scenario run (module run): every decision the run asks for, initial
placements and re-tenders after reclamations alike, is one step. Observation and mask
are ``hyperion.policy.rl.observation`` over the shortlist of feasible bids, so the
network trained here sees exactly what ``RlPolicy`` computes at run time; infeasible
bids are masked (a hard-constraint violation cannot be chosen). A decision with no
feasible bid is answered ``NoFit`` by the environment itself. The reward is 0 until the
run ends, then the run's ``reward`` (``hyperion.policy.reward``) less a per-scenario
baseline: what ``skypilot-like`` earns on the same scenario. Scenarios differ in
attainable reward far more than policies do; subtracting a number the policy cannot
change leaves the objective (the mean reward) as it is and cuts the variance PPO has
to average away. ``baseline="ratio"`` divides instead (reward / baseline - 1), which
optimizes the mean ratio, a different objective; ``"none"`` gives the raw reward.

Scenario seeds come from the caller's range (module ``seeds``): training never sees a
validation or test seed. Needs the ``rl`` extra (gymnasium); imported lazily.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from hyperion.policy.model import Decision
from hyperion.policy.plugins import explain
from hyperion.policy.rl import CAND_DIM, CTX_DIM, MAX_CANDIDATES, observation, shortlist
from hyperion.sim.fleet import scenario as scenarios
from hyperion.sim.fleet.baselines import SkyPilotLikePolicy
from hyperion.sim.fleet.run import FleetSim, Pending, RunMetrics, run

BASELINES = ("difference", "ratio", "none")


class FleetEnv(gym.Env[npt.NDArray[np.float32], np.int64]):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, seeds: range, *, baseline: str = "difference") -> None:
        super().__init__()
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}")
        self.baseline = baseline
        self._reference = 0.0
        if len(seeds) == 0:
            raise ValueError("no scenario seeds")
        self.seeds = seeds
        self.observation_space = gym.spaces.Box(
            -10.0, 10.0, shape=(CTX_DIM + MAX_CANDIDATES * CAND_DIM,), dtype=np.float32
        )
        self.action_space = gym.spaces.Discrete(MAX_CANDIDATES)
        self._sim: FleetSim | None = None
        self._pending: Pending | None = None
        self._slots: list[int] = []
        self._mask = np.zeros(MAX_CANDIDATES, dtype=np.bool_)
        self.last_metrics: RunMetrics | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        k = int(self.np_random.integers(len(self.seeds)))
        sc = scenarios.make(self.seeds[k])
        if self.baseline != "none":
            self._reference = run(sc, SkyPilotLikePolicy()).reward
        self._sim = FleetSim(sc)
        obs = self._next()
        assert obs is not None, "a scenario always has a first decision"
        return obs, {}

    def _next(self) -> npt.NDArray[np.float32] | None:
        sim = self._sim
        assert sim is not None
        while (p := sim.next_decision()) is not None:
            slots = shortlist(p.request, p.candidates, p.tender_id)
            if not slots:
                sim.apply(explain(p.request, p.candidates))
                continue
            self._pending, self._slots = p, slots
            obs, self._mask = observation(p.request, p.candidates, slots)
            return obs
        return None

    def action_masks(self) -> npt.NDArray[np.bool_]:
        return self._mask

    def step(
        self, action: np.int64 | int
    ) -> tuple[npt.NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        sim, p = self._sim, self._pending
        assert sim is not None and p is not None
        a = int(action)
        if not self._mask[a]:
            raise ValueError(f"action {a} is masked")
        i = self._slots[a]
        sim.apply(Decision(p.candidates[i].node_id, i, 0.0, "rl"))
        obs = self._next()
        if obs is None:
            m = sim.finish()
            self.last_metrics = m
            zero = np.zeros(CTX_DIM + MAX_CANDIDATES * CAND_DIM, dtype=np.float32)
            if self.baseline == "ratio":
                r = m.reward / max(self._reference, 1e-3) - 1.0
            else:
                r = m.reward - self._reference
            return zero, float(r), True, False, {"metrics": m}
        return obs, 0.0, False, False, {}
