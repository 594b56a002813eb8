"""A search teacher for the ``rl`` policy: per-scenario coordinate search over decisions.

Theory of operation: a run is a short sequence of decisions (the service's replicas,
the batch job, re-tenders). Starting from ``skypilot-like``'s choices, ``search`` tries,
decision by decision, every distinct kind of feasible bid (one per zone, instance type,
spot and price: bids of one kind differ only in background load), re-runs the whole
scenario with that one choice changed and keeps it when the run's reward improves;
``passes`` sweeps. The result is the best trajectory found: (observation, mask, slot) at
each decision, exactly what ``hyperion.policy.rl`` sees, plus what the search measured
every slot's kind of bid to be worth there (the other decisions fixed): soft targets
for behaviour cloning, which teach the network how much worse the other choices are,
not only which one won.

With ``worlds=1`` the search sees the scenario's own random draws (when spot nodes are
reclaimed, which requests burst): a clairvoyant teacher, part of whose gain no policy
can learn. With ``worlds=W > 1`` a choice is scored by its mean reward over ``W``
re-draws of the scenario's chance, never its own (module ``scenario.redraw``: same
fleet and users, other reclamations and bursts), so it keeps what pays on average:
the planner of module ``headroom``. Only the decisions at t = 0 are searched then,
since later ones (re-tenders) differ from world to world. It runs on training seeds
only (the caller's range is checked), never on validation or test seeds. Pure: no I/O.

The start policy, which also plays every decision the search does not change, is
``skypilot-like`` unless the caller gives another: with the learned policy there, the
search labels the states that policy reaches and values each option with that policy
playing the rest of the run (a DAgger round: its errors in sequence become training
data), and is itself a stronger planner than the one starting from ``skypilot-like``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hyperion.policy.model import Candidate, Decision, NoFit, Policy, Request
from hyperion.policy.rl import MAX_CANDIDATES, observation, shortlist
from hyperion.sim.fleet import scenario as scenarios
from hyperion.sim.fleet import seeds
from hyperion.sim.fleet.baselines import SkyPilotLikePolicy
from hyperion.sim.fleet.run import RunMetrics, run

MAX_SEARCHED_DECISIONS = 12  # re-tenders late in a storm run are left to the start policy

Sample = tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_], int]
# a teacher's sample: observation, mask, chosen slot, each slot's value (NaN: unknown)
Labelled = tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_], int, npt.NDArray[np.float32]]


def _kind(c: Candidate) -> tuple[object, ...]:
    return (c.zone, c.cloud, c.gpu_model, c.spot, c.edge, round(c.price_per_hour, 6))


# makes the policy a search starts from and completes its runs with (fresh per run:
# ``skypilot-like`` remembers the regions that preempted it)
StartPolicy = Callable[[], Policy]


class _Scripted:
    """The start policy (``skypilot-like`` unless told) except at the decisions
    ``override`` names (index -> node id); records every decision's observation, mask
    and slot."""

    name = "search"

    def __init__(self, override: dict[int, str], start: StartPolicy = SkyPilotLikePolicy) -> None:
        self.override = override
        self.start = start()
        self.slot_kinds: list[list[str]] = []  # per decision: each slot's kind (its option)
        self.chosen: list[str | None] = []  # per decision: the node id picked
        self.samples: list[Sample | None] = []

    def options(self, k: int) -> list[str]:
        """Decision ``k``'s options: one node id per kind of bid, in slot order."""
        return list(dict.fromkeys(self.slot_kinds[k]))

    def observe_preemption(self, workload_id: str, cloud_region: str) -> None:
        observe = getattr(self.start, "observe_preemption", None)
        if observe is not None:
            observe(workload_id, cloud_region)

    def choose(self, req: Request, cands: Sequence[Candidate], tender_id: str) -> Decision | NoFit:
        k = len(self.slot_kinds)
        slots = shortlist(req, cands, tender_id)
        kinds: dict[tuple[object, ...], str] = {}
        for i in slots:
            kinds.setdefault(_kind(cands[i]), cands[i].node_id)
        self.slot_kinds.append([kinds[_kind(cands[i])] for i in slots])
        out: Decision | NoFit | None = None
        want = self.override.get(k)
        if want is not None:
            out = next(
                (Decision(want, i, 0.0, self.name) for i in slots if cands[i].node_id == want),
                None,
            )
        if out is None:
            out = self.start.choose(req, cands, tender_id)
        self.chosen.append(out.node_id if isinstance(out, Decision) else None)
        if isinstance(out, Decision) and out.index in slots:
            obs, mask = observation(req, cands, slots)
            self.samples.append((obs, mask, slots.index(out.index)))
        else:
            self.samples.append(None)
        return out


def run_scripted(
    sc: scenarios.Scenario, override: dict[int, str], start: StartPolicy = SkyPilotLikePolicy
) -> tuple[RunMetrics, _Scripted]:
    """One run of ``sc``: ``start``'s policy except at the decisions ``override`` names."""
    pol = _Scripted(override, start)
    return run(sc, pol), pol


@dataclass(frozen=True, slots=True)
class Plan:
    """What the search settled on for one training scenario, kept apart from any
    observation layout: the decisions it changed (index -> node id) and what every
    option it tried was worth (decision -> option's node id -> mean reward). Replaying
    it (``labelled``) rebuilds the samples with the features of the code at hand, so a
    change of features costs one run per scenario, not a new search."""

    seed: int
    override: dict[int, str]
    values: dict[int, dict[str, float]]


def labelled(plan: Plan) -> tuple[Labelled, ...]:
    """Replay ``plan`` on its scenario: at each decision of the run, the observation,
    mask, slot taken and each slot's value (NaN where the search did not measure it).
    ValueError when the replay does not make the plan's choices (a plan made by other
    scenario code)."""
    _, pol = run_scripted(scenarios.make(plan.seed), plan.override)
    for k, want in plan.override.items():
        if k >= len(pol.chosen) or pol.chosen[k] != want:
            raise ValueError(f"scenario {plan.seed}: decision {k} cannot take {want!r}")
    out: list[Labelled] = []
    for k, x in enumerate(pol.samples):
        if x is None:
            continue
        values = np.full(MAX_CANDIDATES, np.nan, dtype=np.float32)
        seen = plan.values.get(k)
        if seen is not None:
            for j, option in enumerate(pol.slot_kinds[k]):
                values[j] = seen.get(option, np.nan)
        out.append((*x, values))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SearchResult:
    seed: int
    start_reward: float
    best_reward: float
    runs: int
    plan: Plan

    @property
    def samples(self) -> tuple[Labelled, ...]:
        return labelled(self.plan)


def search(
    seed: int, *, passes: int = 1, worlds: int = 1, start: StartPolicy | None = None
) -> SearchResult:
    """The best trajectory the coordinate search finds on training scenario ``seed``,
    with what each searched choice was worth: scored on the scenario's own draws
    (``worlds=1``, clairvoyant) or on ``worlds`` re-draws of its chance, never its own
    (``worlds > 1``: the planner of module ``headroom``, which plans for what a policy
    can know). The search starts from, and completes every run with, ``skypilot-like``,
    or ``start``'s policy: a learned policy there makes this a DAgger round (the teacher
    labels the states the learner reaches, each option valued with the learner playing
    the rest). The plan then pins every decision of its run, so it replays without the
    start policy."""
    if seed not in seeds.TRAIN:
        raise ValueError("the search teacher runs on training seeds only")
    if passes < 1 or worlds < 1:
        raise ValueError("passes and worlds must be positive")
    sc = scenarios.make(seed)
    begin = start or SkyPilotLikePolicy
    if worlds == 1:
        found = coordinate_search(
            sc, [sc], passes=passes, limit=MAX_SEARCHED_DECISIONS, start=begin
        )
    else:
        found = planner(sc, worlds, passes=passes, start=begin)
    override = found.override
    if start is not None:
        override = {k: node for k, node in enumerate(found.policy.chosen) if node is not None}
    plan = Plan(seed, override, found.values)
    return SearchResult(seed, found.start_value, found.best_value, found.runs, plan)


@dataclass(frozen=True, slots=True)
class Found:
    """What ``coordinate_search`` found: the decisions it changed (index -> node id),
    their mean reward over the worlds it scored on, and the scripted run on the
    scenario itself with those changes (its metrics, samples and options)."""

    override: dict[int, str]
    start_value: float
    best_value: float
    runs: int
    metrics: RunMetrics
    policy: _Scripted
    values: dict[int, dict[str, float]]  # decision -> option (node id) -> its mean reward


def planner(
    sc: scenarios.Scenario,
    worlds: int,
    *,
    passes: int = 1,
    start: StartPolicy = SkyPilotLikePolicy,
) -> Found:
    """The non-clairvoyant planner: the coordinate search over the decisions at t = 0,
    each choice scored on ``worlds`` re-draws of ``sc``'s chance, never its own."""
    redraws = [scenarios.redraw(sc, k) for k in range(1, worlds + 1)]
    return coordinate_search(sc, redraws, passes=passes, limit=sc.service.replicas + 1, start=start)


def coordinate_search(
    sc: scenarios.Scenario,
    worlds: Sequence[scenarios.Scenario],
    *,
    passes: int,
    limit: int,
    start: StartPolicy = SkyPilotLikePolicy,
) -> Found:
    """From ``start``'s decisions on ``sc``, try every kind of feasible bid at each of
    the first ``limit`` decisions in turn and keep a change when the mean reward over
    ``worlds`` (draws of ``sc``'s chance, ``sc`` itself or not) improves, ``start``
    playing every decision not changed; ``passes`` sweeps, stopping early when one
    changes nothing."""
    runs = 0

    def value(override: dict[int, str]) -> float:
        nonlocal runs
        runs += len(worlds)
        return sum(run_scripted(w, override, start)[0].reward for w in worlds) / len(worlds)

    m, pol = run_scripted(sc, {}, start)
    first = best = value({})
    override: dict[int, str] = {}
    values: dict[int, dict[str, float]] = {}
    for _ in range(passes):
        improved = False
        k = 0
        while k < min(len(pol.slot_kinds), limit):  # a choice can end a run's
            values[k] = {}
            for node_id in pol.options(k):  # re-tenders, so the count can shrink
                trial = {**override, k: node_id}
                v = values[k][node_id] = value(trial)
                if v > best + 1e-9:
                    best, override, improved = v, trial, True
            # the options of later decisions follow the choice
            m, pol = run_scripted(sc, override, start)
            runs += 1
            k += 1
        if not improved:
            break
    return Found(override, first, best, runs, m, pol, values)
