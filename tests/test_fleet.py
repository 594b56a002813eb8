"""Fleet model and benchmark: seeded determinism, metrics, the torch/numpy parity."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hyperion.policy import RulesPolicy
from hyperion.policy.model import Decision
from hyperion.policy.plugins import violates_hard_constraints
from hyperion.policy.rl import MAX_CANDIDATES
from hyperion.sim.fleet import data, scenario, seeds
from hyperion.sim.fleet.bench import POLICY_NAMES, make_policy, run_bench, run_one
from hyperion.sim.fleet.run import FleetSim, run

try:
    data.prices()
    data.arrival_shapes()
except data.DataError:  # pragma: no cover - CI has ../shared/data beside the project
    pytest.skip("shared data not found", allow_module_level=True)


def test_seed_ranges_are_disjoint() -> None:
    test = seeds.test_seeds(0, 100)
    for a, b in ((seeds.TRAIN, seeds.VALIDATION), (seeds.TRAIN, test), (seeds.VALIDATION, test)):
        assert a.stop <= b.start or b.stop <= a.start
    with pytest.raises(ValueError):
        seeds.test_seeds(100, 1)


def test_scenario_is_a_function_of_its_seed() -> None:
    a, b, c = scenario.make(11), scenario.make(11), scenario.make(12)
    assert a.nodes == b.nodes and a.service == b.service and a.batch == b.batch
    assert np.array_equal(a.arrivals_s, b.arrivals_s)
    assert np.array_equal(a.request_jitter, b.request_jitter)
    assert a.nodes != c.nodes
    assert abs(a.metro_weights.sum() - 1) < 1e-9
    assert any(n.edge for n in a.nodes) or any(n.spot for n in a.nodes)


def test_service_figures_follow_the_data() -> None:
    f = data.service_figures()
    assert f.inference_ms["T4"] == pytest.approx(12.96)
    assert f.inference_ms["A100"] < f.inference_ms["T4"] < f.inference_ms["Jetson-AGX-Xavier"]
    assert f.bert_samples_per_s["H100"] == 812 and f.bert_samples_per_s["T4"] == 67.5
    gcp = [r for r in data.prices() if r.cloud == "gcp" and r.gpus]
    assert gcp and all(r.vcpus == 8 * r.gpus for r in gcp)  # host VM added


def test_run_metrics_are_sane_and_placements_are_checked() -> None:
    sc = scenario.make(5)
    sim = FleetSim(sc)
    while (p := sim.next_decision()) is not None:
        out = RulesPolicy().choose(p.request, p.candidates, p.tender_id)
        if hasattr(out, "index"):
            assert not violates_hard_constraints(p.request, p.candidates[out.index])  # type: ignore[union-attr]
        sim.apply(out)
    m = sim.finish()
    assert m.violations == 0 and m.unplaced == 0
    assert m.decisions >= sc.service.replicas + 1
    assert 0 < m.cost_per_hour < 100 and 1 < m.p99_latency_ms < 10_000
    assert m.p50_latency_ms <= m.p99_latency_ms
    assert math.isfinite(m.bert_completion_min) and m.bert_cost_usd > 0


def test_tender_tells_the_capacity_already_near_each_user_geography() -> None:
    from hyperion.policy.model import NEAR_MS

    sc = scenario.make(5)
    sim = FleetSim(sc)
    figs = data.service_figures()
    placed: list[int] = []
    while (p := sim.next_decision()) is not None and p.workload is sc.service:
        want: dict[str, float] = {}
        for i in placed:
            n = sc.nodes[i]
            for g, rtt in n.rtt_ms().items():  # per geography and per metro
                if rtt <= NEAR_MS:
                    speed = figs.inference_ms[data.REFERENCE_GPU] / figs.inference_ms[n.gpu_model]
                    want[g] = want.get(g, 0.0) + speed
        assert dict(p.request.placed_capacity) == pytest.approx(want)
        out = RulesPolicy().choose(p.request, p.candidates, p.tender_id)
        assert isinstance(out, Decision)
        placed.append(p.nodes[out.index])
        sim.apply(out)
    assert len(placed) == sc.service.replicas


def test_static_runs_only_in_its_home_region_on_demand() -> None:
    sc = scenario.make(3)
    pool = scenario.static_pool(sc)
    assert len({n.cloud_region for n in pool}) == 1 and not any(n.spot for n in pool)
    m = run_one(sc, "static")
    assert m.violations == 0 and m.preemptions == 0


def test_benchmark_is_deterministic_for_a_seed() -> None:
    a = run_bench(3, 3, timing=False)
    b = run_bench(3, 3, timing=False)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert set(a["policies"]) == set(POLICY_NAMES)
    for row in a["policies"].values():
        assert row["violations"] == 0
        assert set(row) >= {
            "reward",
            "cost_per_hour",
            "p99_latency_ms",
            "bert_completion_min",
            "bert_cost_usd",
            "violations",
            "preemptions",
        }
    assert a["scenario_seeds"][0] >= seeds.TEST_BASE
    for kind in ("families", "goals"):  # the groups split the same scenarios
        assert sum(g["scenarios"] for g in a[kind].values()) == 3


def test_bench_cli_prints_json() -> None:
    from hyperion.cli.fleet import bench_app

    res = CliRunner().invoke(bench_app, ["fleet", "--scenarios", "2", "--seed", "4", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["seed"] == 4 and out["scenarios"] == 2
    assert out["rl_decision_us"] > 0
    res = CliRunner().invoke(bench_app, ["fleet", "--scenarios", "1", "--seed", "400"])
    assert res.exit_code == 2


def test_policy_train_cli_refuses_bad_teacher_options(tmp_path: Path) -> None:
    from hyperion.cli.fleet import policy_app

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a dataset")
    for argv in (
        ["--teacher-worlds", "0"],
        ["--clone-temperature", "0"],
        ["--clone-data", str(tmp_path / "missing.npz")],
        ["--clone", "skypilot-like", "--clone-data", str(bad)],
    ):
        res = CliRunner().invoke(policy_app, ["train", "--steps", "0", *argv])
        assert res.exit_code == 2, (argv, res.output)
    res = CliRunner().invoke(policy_app, ["train", "--steps", "0", "--clone-data", str(bad)])
    assert res.exit_code == 2, res.output  # unreadable (or, without the rl extra, untrainable)
    assert "cloning data" in res.output or "rl extra" in res.output


def test_numpy_evaluator_matches_torch_policy() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sb3_contrib")
    pytest.importorskip("gymnasium")
    import torch
    from sb3_contrib import MaskablePPO

    from hyperion.policy.rl import RlPolicy
    from hyperion.sim.fleet.env import FleetEnv
    from hyperion.sim.fleet.train import CandidatePolicy, export

    env = FleetEnv(range(0, 50))
    model = MaskablePPO(CandidatePolicy, env, n_steps=64, batch_size=32, seed=3, device="cpu")
    with torch.no_grad():  # make the untrained logits far from uniform
        for p in model.policy.mlp_extractor.parameters():
            p.mul_(3.0)
    w = export(model)
    pol = RlPolicy(w)
    obs, _ = env.reset(seed=0)
    checked = 0
    for _ in range(40):
        mask = env.action_masks()
        a_torch, _ = model.predict(obs, action_masks=mask, deterministic=True)
        p = env._pending
        assert p is not None
        out = pol.choose(p.request, p.candidates, p.tender_id)
        assert out.index == env._slots[int(a_torch)]  # type: ignore[union-attr]
        checked += 1
        obs, _, done, _, _ = env.step(a_torch)
        if done:
            obs, _ = env.reset()
    assert checked == 40


def test_behaviour_cloning_dataset_is_training_only_and_matches_the_teacher() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sb3_contrib")
    pytest.importorskip("gymnasium")
    from hyperion.sim.fleet.train import clone_dataset

    with pytest.raises(ValueError):
        clone_dataset("skypilot-like", seeds.validation_seeds(2))
    obs, mask, act, values = clone_dataset("skypilot-like", range(10, 13))
    assert obs.shape[0] == mask.shape[0] == act.shape[0] == values.shape[0] > 0
    assert mask[np.arange(act.size), act].all()  # the teacher's pick is never masked
    assert np.isnan(values).all()  # a heuristic teacher gives labels, not values


def test_decision_weights_follow_what_is_at_stake() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sb3_contrib")
    from hyperion.sim.fleet.train import decision_weights

    k = MAX_CANDIDATES
    mask = np.zeros((3, k), dtype=np.bool_)
    mask[:, :2] = True
    values = np.full((3, k), np.nan, dtype=np.float32)
    values[0, :2] = [1.0, 1.0]  # nothing at stake
    values[1, :2] = [1.0, 2.0]  # a whole unit of reward
    data = (np.zeros((3, 1), dtype=np.float32), mask, np.zeros(3, dtype=np.int64), values)
    # spreads (best less mean) 0 and 0.5, over their mean 0.25; the plain label gets 1
    assert decision_weights(data).tolist() == pytest.approx([0.0, 2.0, 1.0])


def test_clone_targets_weigh_options_by_value_and_keep_plain_labels() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sb3_contrib")
    from hyperion.sim.fleet.train import clone_targets

    k = MAX_CANDIDATES
    obs = np.zeros((2, 1), dtype=np.float32)
    mask = np.zeros((2, k), dtype=np.bool_)
    mask[:, :3] = True
    act = np.array([1, 2])
    values = np.full((2, k), np.nan, dtype=np.float32)
    values[0, :3] = [1.00, 1.02, 0.90]  # row 0: searched; row 1: a plain label
    t = clone_targets((obs, mask, act, values), 0.02)
    assert t.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert t[0, 1] / t[0, 0] == pytest.approx(math.e)  # 0.02 better: e times the weight
    assert t[0, 2] < 1e-2 and (t[0, 3:] == 0).all()  # masked slots get nothing
    assert t[1, 2] == 1.0 and t[1].sum() == 1.0
    with pytest.raises(ValueError):
        clone_targets((obs, mask, act, values), 0.0)


def test_redraw_keeps_the_world_and_redraws_its_chance() -> None:
    sc = scenario.make(6)  # a storm scenario: many spot nodes are reclaimed within the hour
    a, b = scenario.redraw(sc, 1), scenario.redraw(sc, 2)
    assert _same_draws(scenario.redraw(sc, 1), a)  # deterministic
    for w in (a, b):
        assert (w.service, w.batch, w.family) == (sc.service, sc.batch, sc.family)
        assert np.array_equal(w.metro_weights, sc.metro_weights)
        assert len(w.nodes) == len(sc.nodes)
        for n, m in zip(sc.nodes, w.nodes, strict=True):
            assert n == replace(m, reclaim_s=n.reclaim_s)  # only the reclamation moves
            assert math.isinf(m.reclaim_s) == math.isinf(n.reclaim_s)
    assert not _same_draws(a, b) and not _same_draws(a, sc)
    assert [n.reclaim_s for n in a.nodes] != [n.reclaim_s for n in sc.nodes]
    with pytest.raises(ValueError):
        scenario.redraw(sc, 0)


def _same_draws(x: scenario.Scenario, y: scenario.Scenario) -> bool:
    return (
        [n.reclaim_s for n in x.nodes] == [n.reclaim_s for n in y.nodes]
        and np.array_equal(x.arrivals_s, y.arrivals_s)
        and np.array_equal(x.request_metro, y.request_metro)
        and np.array_equal(x.request_jitter, y.request_jitter)
    )


def test_search_teacher_over_several_worlds_scores_the_mean() -> None:
    from hyperion.sim.fleet.expert import search

    seed = 25  # three replicas: a short search
    r = search(seed, worlds=2)
    sc = scenario.make(seed)
    worlds = (scenario.redraw(sc, 1), scenario.redraw(sc, 2))  # never the scenario's own
    start = np.mean([run(w, make_policy("skypilot-like")).reward for w in worlds])
    assert r.start_reward == pytest.approx(start)
    assert r.best_reward >= r.start_reward
    assert r.samples and r.runs > 2 * len(r.samples)
    searched = [x for x in r.samples if np.isfinite(x[3]).any()]
    assert len(searched) == sc.service.replicas + 1  # the decisions at t = 0
    with pytest.raises(ValueError):
        search(seed, worlds=0)


def test_search_plans_round_trip_replay_and_a_bad_file_is_refused(tmp_path: Path) -> None:
    from hyperion.sim.fleet.expert import Plan, search
    from hyperion.sim.fleet.plans import load_dataset, load_plans, save_plans

    r = search(25)  # three replicas: a short search
    path = tmp_path / "d.npz"
    save_plans(path, [r.plan], {"search_best_reward": 1.5})
    plans, summary = load_plans(path)
    assert plans == [r.plan] and summary == {"search_best_reward": 1.5}
    (obs, mask, act, values), found = load_dataset([path])  # replayed with this code's features
    assert found == {"searches": [{"file": str(path), "search_best_reward": 1.5}]}
    want = r.samples
    assert len(want) == act.size
    for k, (o, m, a, v) in enumerate(want):
        assert np.array_equal(o, obs[k]) and np.array_equal(m, mask[k]) and a == act[k]
        assert np.array_equal(v, values[k], equal_nan=True)
    twice, _ = load_dataset([path, path])  # files join: a DAgger round adds to the last
    assert np.array_equal(twice[2], np.concatenate([act, act]))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a numpy file")
    with pytest.raises(ValueError):
        load_plans(bad)
    first = next(iter(r.plan.values))
    for variant in (
        Plan(seeds.validation_seeds(1)[0], {}, {}),  # not a training seed
        Plan(25, {first: "no-such-node"}, {}),  # does not replay
        Plan(25, {}, {first: {"n": float("nan")}}),  # not a value
        Plan(25, {-1: "n"}, {}),  # not a decision
    ):
        save_plans(bad, [variant], {})
        with pytest.raises(ValueError):
            load_dataset([path, bad])
    for paths in ([tmp_path / "missing.npz"], []):
        with pytest.raises(ValueError):
            load_dataset(paths)


def test_policy_plan_cli_labels_the_states_an_rl_policy_reaches(tmp_path: Path) -> None:
    """A DAgger round: the search starts from the rl policy and completes every run
    with it, and the plan it writes pins every decision, so it replays without it."""
    import functools

    from hyperion.cli.fleet import policy_app
    from hyperion.policy.rl import WEIGHTS_FILE, RlPolicy, load_weights
    from hyperion.sim.fleet.expert import labelled, run_scripted
    from hyperion.sim.fleet.plans import load_plans

    out = tmp_path / "p.npz"
    seed = 39  # three replicas (a short search), and a spot reclamation re-tenders one
    argv = ["plan", "--first", str(seed), "--count", "1", "--out", str(out)]
    res = CliRunner().invoke(policy_app, [*argv, "--start", str(WEIGHTS_FILE)])
    assert res.exit_code == 0, res.output
    (plan,), summary = load_plans(out)
    assert summary["start"] == str(WEIGHTS_FILE) and summary["teacher_worlds"] == 2
    rl = functools.partial(RlPolicy, load_weights())
    sc = scenario.make(seed)
    start = np.mean([run(scenario.redraw(sc, k), rl()).reward for k in (1, 2)])
    assert summary["search_start_reward"] == pytest.approx(start, abs=1e-4)
    searched = {k: plan.override[k] for k in plan.values if k in plan.override}
    by_rl, pol = run_scripted(sc, searched, rl)  # rl plays every other decision
    replayed, again = run_scripted(sc, plan.override)  # skypilot-like would, but is pinned
    assert again.chosen == pol.chosen and replayed.reward == by_rl.reward
    assert len(plan.override) > len(plan.values) and labelled(plan)
    for bad in (
        ["--first", "0", "--count", "0"],
        ["--first", str(seeds.TRAIN.stop - 1), "--count", "2"],
        ["--first", str(seeds.VALIDATION.start)],
        ["--first", "-1"],
        ["--first", "0", "--teacher-worlds", "0"],
        ["--first", "0", "--start", str(tmp_path / "missing.npz")],
    ):
        res = CliRunner().invoke(policy_app, ["plan", "--out", str(out), *bad])
        assert res.exit_code == 2, (bad, res.output)


def test_search_teacher_runs_on_training_seeds_and_never_does_worse() -> None:
    from hyperion.sim.fleet.expert import search

    with pytest.raises(ValueError):
        search(seeds.validation_seeds(1)[0])
    with pytest.raises(ValueError):
        search(seeds.test_seeds(0, 1)[0])
    seed = 7  # a training scenario where skypilot-like leaves reward on the table
    r = search(seed)
    start = run(scenario.make(seed), make_policy("skypilot-like")).reward
    assert r.start_reward == pytest.approx(start)  # the search starts from skypilot-like
    assert r.best_reward >= r.start_reward
    assert r.best_reward > r.start_reward * 1.5  # it finds the p99 blow-up (0.17 -> 1.03)
    assert r.samples and r.runs > len(r.samples)
    valued = 0
    for obs, mask, slot, values in r.samples:
        assert mask[slot]  # a chosen slot is never masked
        assert obs.dtype == np.float32
        assert np.isnan(values[~mask]).all()
        if np.isfinite(values).any():
            valued += 1
            assert np.isfinite(values[mask]).all()  # every feasible kind of bid was tried
            assert values[mask].max() <= r.best_reward + 1e-9  # and the best was kept
    assert valued > 0


def test_headroom_planner_plans_on_redraws_only_and_the_search_never_does_worse() -> None:
    from hyperion.sim.fleet.expert import coordinate_search, run_scripted
    from hyperion.sim.fleet.headroom import headroom

    seed = 25  # three replicas: a short search
    h = headroom(seed, worlds=1)
    sc = scenario.make(seed)
    sky = run(sc, make_policy("skypilot-like")).reward
    assert h.skypilot == pytest.approx(sky)
    assert h.clairvoyant >= sky  # starts from skypilot-like, keeps only improvements
    # the planner's plan is the search's on the first re-draw, never on the scenario
    redraw = scenario.redraw(sc, 1)
    plan = coordinate_search(sc, [redraw], passes=1, limit=sc.service.replicas + 1)
    assert h.planner_expected == pytest.approx(plan.best_value)
    assert plan.best_value >= run(redraw, make_policy("skypilot-like")).reward
    assert h.planner == pytest.approx(run_scripted(sc, plan.override)[0].reward)
    with pytest.raises(ValueError):
        headroom(seed, worlds=0)
