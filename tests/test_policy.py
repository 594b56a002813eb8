"""Placement policy: filters, scores, explain, reward, rules, the numpy rl evaluator."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperion.policy import (
    GPU_PRODUCT_LABEL,
    VIOLATION_REWARD,
    Candidate,
    Code,
    Decision,
    MatchExpression,
    NoFit,
    Request,
    RulesPolicy,
    VersionRange,
    check,
    explain,
    feasible,
    get_policy,
    reward,
    tie_break,
)
from hyperion.policy.model import GOALS
from hyperion.policy.plugins import BATCH_SCORERS, FILTERS, SCORERS, normalize
from hyperion.policy.reward import REWARD_WEIGHTS
from hyperion.policy.rl import MAX_CANDIDATES, RlPolicy, observation, shortlist
from hyperion.policy.rules import best, scores
from hyperion.sim.fleet.baselines import (
    GreedyCostPolicy,
    K8sDefaultPolicy,
    SkyPilotLikePolicy,
    StaticPolicy,
)

GIB = 1 << 30


def cand(node_id: str, **kw: object) -> Candidate:
    base: dict[str, object] = dict(
        cloud="aws",
        region="us-east-1",
        zone="us-east-1a",
        geography="US",
        price_per_hour=1.0,
        rtt_ms={"US": 20.0, "EU": 90.0, "APAC": 160.0, "SA": 130.0},
        cpu_millis=8000,
        cpu_millis_free=8000,
        memory_bytes=32 * GIB,
        memory_bytes_free=32 * GIB,
        gpus=1,
        gpus_free=1,
        gpu_model="T4",
        software_version="0.2.0",
        labels={GPU_PRODUCT_LABEL: "T4", "hyperion.io/tier": "prod"},
    )
    base.update(kw)
    return Candidate(node_id=node_id, **base)  # type: ignore[arg-type]


def req(**kw: object) -> Request:
    base: dict[str, object] = dict(workload_id="w", cpu_millis=1000, memory_bytes=GIB, gpus=1)
    base.update(kw)
    return Request(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reward


def test_reward_at_reference_point_is_one_for_every_goal() -> None:
    for goal, (w1, w2) in REWARD_WEIGHTS.items():
        assert reward(1.0, 150.0, goal) == pytest.approx(w1 / 1.0 + w2 / 150.0)
        assert reward(1.0, 150.0, goal) == pytest.approx(1.0)


def test_reward_prefers_cheaper_and_faster_and_weights_follow_goal() -> None:
    assert reward(0.5, 150.0) > reward(1.0, 150.0)
    assert reward(1.0, 75.0) > reward(1.0, 150.0)
    # halving cost helps a cost goal more than halving latency does; latency goal: reverse
    assert reward(0.5, 150, "cost") > reward(1.0, 75, "cost")
    assert reward(1.0, 75, "latency") > reward(0.5, 150, "latency")


def test_reward_violation_is_large_negative_and_floors_keep_it_finite() -> None:
    assert reward(0.1, 10.0, violations=1) == VIOLATION_REWARD
    assert reward(0.1, 10.0, violations=3) == 3 * VIOLATION_REWARD
    best = max(reward(0.0, 0.0, g) for g in REWARD_WEIGHTS)  # at the floors
    assert -best > VIOLATION_REWARD  # below anything feasible
    assert math.isfinite(reward(0.0, 0.0))
    assert reward(1.0, math.inf) == pytest.approx(REWARD_WEIGHTS["default"][0])
    with pytest.raises(ValueError):
        reward(1.0, 1.0, goal="fast")
    with pytest.raises(ValueError):
        reward(1.0, 1.0, violations=-1)


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("request_kw", "cand_kw", "code", "reason"),
    [
        ({"geographies": ("EU",)}, {}, Code.UNRESOLVABLE, "not in geographies [EU]"),
        ({"clouds": ("gcp",)}, {}, Code.UNRESOLVABLE, "not in clouds [gcp]"),
        (
            {"node_selector": {"hyperion.io/tier": "dev"}},
            {},
            Code.UNRESOLVABLE,
            "didn't match the node selector",
        ),
        (
            {"affinity": ((MatchExpression(GPU_PRODUCT_LABEL, "In", ("A100",)),),)},
            {},
            Code.UNRESOLVABLE,
            "didn't match the required node affinity",
        ),
        (
            {"version_range": VersionRange(">=0.3")},
            {},
            Code.UNRESOLVABLE,
            "software version not in >=0.3",
        ),
        ({"gpu_model": "A100"}, {}, Code.UNRESOLVABLE, "no gpu model A100"),
        ({"gpus": 2}, {}, Code.UNRESOLVABLE, "insufficient nvidia.com/gpu"),
        ({}, {"gpus_free": 0}, Code.UNSCHEDULABLE, "insufficient nvidia.com/gpu"),
        ({}, {"cpu_millis_free": 500}, Code.UNSCHEDULABLE, "insufficient cpu"),
        ({"memory_bytes": 64 * GIB}, {}, Code.UNRESOLVABLE, "insufficient memory"),
    ],
)
def test_filters_name_the_constraint(
    request_kw: dict[str, object], cand_kw: dict[str, object], code: Code, reason: str
) -> None:
    st_ = check(req(**request_kw), cand("n", **cand_kw))
    assert (st_.code, st_.reason) == (code, reason)
    assert check(req(), cand("n")).ok


def test_affinity_terms_are_or_of_and() -> None:
    a100 = MatchExpression(GPU_PRODUCT_LABEL, "In", ("A100",))
    prod = MatchExpression("hyperion.io/tier", "In", ("prod",))
    edge = MatchExpression("hyperion.io/edge", "Exists")
    assert check(req(affinity=((a100,), (prod,))), cand("n")).ok
    assert not check(req(affinity=((a100, prod),)), cand("n")).ok
    assert not check(req(affinity=((edge,),)), cand("n")).ok
    assert check(req(affinity=((MatchExpression("x", "DoesNotExist"),),)), cand("n")).ok
    gt = MatchExpression("cores", "Gt", ("4",))
    assert check(req(affinity=((gt,),)), cand("n", labels={"cores": "8"})).ok
    assert not check(req(affinity=((gt,),)), cand("n", labels={"cores": "x"})).ok
    with pytest.raises(ValueError):
        MatchExpression("k", "In")
    with pytest.raises(ValueError):
        MatchExpression("k", "Near", ("a",))


def test_version_range_uses_semver_precedence() -> None:
    r = VersionRange(">=0.2,<1")
    assert r.contains("0.2.0") and r.contains("0.9.9")
    assert not r.contains("0.2.0-rc.1") and not r.contains("1.0.0") and not r.contains("junk")
    assert VersionRange("version>=0.2").contains("0.2.1")
    with pytest.raises(ValueError):
        VersionRange(">=zero")
    with pytest.raises(ValueError):
        VersionRange("cpu>=2")


def test_explain_counts_reasons_like_kube_scheduler() -> None:
    cands = [cand(f"us{i}") for i in range(8)] + [
        cand(f"eu{i}", geography="EU", gpus_free=0) for i in range(4)
    ]
    out = explain(req(geographies=("EU",)), cands)
    assert out.message == (
        "0/12 nodes are available: 8 not in geographies [EU], 4 insufficient nvidia.com/gpu."
    )
    assert out.resolvable  # GPUs may free up
    only_geo = explain(req(geographies=("EU",)), cands[:8])
    assert not only_geo.resolvable
    assert RulesPolicy().choose(req(geographies=("SA",)), cands, "t") == explain(
        req(geographies=("SA",)), cands
    )
    assert explain(req(), []).message == "0/0 nodes are available."


def test_request_validates_itself() -> None:
    for bad in (
        {"goal": "fast"},
        {"geographies": ("Mars",)},
        {"gpus": 0, "gpu_model": "T4"},
        {"cpu_millis": -1},
        {"replica": 3, "replicas": 2},
        {"data_locality": "us-east-1"},
        {"kind": "cron"},
    ):
        with pytest.raises(ValueError):
            req(**bad)
    with pytest.raises(ValueError):
        cand("n", gpus_free=2)
    with pytest.raises(ValueError):
        cand("n", interruption_band=5, spot=True)


# --------------------------------------------------------------------------- rules


def test_rules_cost_goal_picks_cheapest_and_latency_goal_picks_nearest() -> None:
    cheap_far = cand("cheap", price_per_hour=0.2, rtt_ms={"US": 150.0})
    dear_near = cand("near", price_per_hour=2.0, rtt_ms={"US": 20.0})
    users = (("US", 1.0),)
    pick = RulesPolicy().choose
    assert pick(req(goal="cost", users=users), [dear_near, cheap_far], "t").node_id == "cheap"  # type: ignore[union-attr]
    assert pick(req(goal="latency", users=users), [cheap_far, dear_near], "t").node_id == "near"  # type: ignore[union-attr]


def test_rules_ties_break_on_hash_of_tender_and_node() -> None:
    cands = [cand(f"n{i}") for i in range(10)]
    winners = set()
    for t in range(20):
        out = RulesPolicy().choose(req(), cands, f"tender-{t}")
        assert isinstance(out, Decision)
        again = RulesPolicy().choose(req(), list(reversed(cands)), f"tender-{t}")
        assert isinstance(again, Decision) and again.node_id == out.node_id
        assert out.node_id == min(cands, key=lambda c: tie_break(f"tender-{t}", c.node_id)).node_id
        winners.add(out.node_id)
    assert len(winners) > 3  # spread over nodes, not always the first


def test_rules_spreads_replicas_and_uses_placed_rtt() -> None:
    a = cand("a", replicas_on_node=1, replicas_in_zone=1, replicas_in_region=1)
    b = cand("b", zone="us-east-1b")
    assert RulesPolicy().choose(req(), [a, b], "t").node_id == "b"  # type: ignore[union-attr]
    us = cand("us", rtt_ms={"US": 20.0, "EU": 90.0})
    eu = cand("eu", rtt_ms={"US": 90.0, "EU": 20.0}, geography="EU")
    users = (("US", 0.6), ("EU", 0.4))
    first = RulesPolicy().choose(req(goal="latency", users=users), [us, eu], "t")
    assert first.node_id == "us"  # type: ignore[union-attr]
    second = req(goal="latency", users=users, placed_rtt_ms={"US": 20.0, "EU": 90.0})
    assert RulesPolicy().choose(second, [us, eu], "t").node_id == "eu"  # type: ignore[union-attr]


def test_a_negligible_price_difference_does_not_outweigh_spreading() -> None:
    """Min-max alone would give the 1 % cheaper node the whole cost scale (300 points
    for the default goal) against spreading's 150: every replica on one node."""
    a = cand("a", price_per_hour=1.00, replicas_on_node=1, replicas_in_zone=1, replicas_in_region=1)
    b = cand("b", price_per_hour=1.01, zone="us-east-1b")
    for goal in GOALS:
        assert RulesPolicy().choose(req(goal=goal), [a, b], "t").node_id == "b"  # type: ignore[union-attr]
    # a real price difference still wins for the cost goal: twice the price
    c = cand("c", price_per_hour=2.0, zone="us-east-1b")
    assert RulesPolicy().choose(req(goal="cost"), [a, c], "t").node_id == "a"  # type: ignore[union-attr]


def test_normalize_is_min_max_over_a_wide_range_and_keeps_small_gaps_small() -> None:
    assert normalize([0.0, 5.0, 10.0]) == [0, 50, 100]
    assert normalize([0.0, 5.0, 10.0], min_span=4.0) == [0, 50, 100]
    assert normalize([0.0, 1.0], min_span=10.0) == [90, 100]
    assert normalize([3.0, 3.0], min_span=1.0) == [100, 100] and normalize([]) == []


def test_get_policy_by_name() -> None:
    assert get_policy("rules").name == "rules"
    assert get_policy("rl").name == "rl"
    with pytest.raises(ValueError, match="unknown policy"):
        get_policy("random")


# --------------------------------------------------------------------------- property

GEOS = ("US", "EU", "APAC", "SA")
MODELS = ("T4", "L4", "A100", "Jetson-AGX-Orin")

candidates_st = st.lists(
    st.builds(
        lambda i, cloud, geo, price, spot, band, g, gf, model, cpu_free, ver, tier, rtts, n: cand(
            f"node{i}",
            cloud=cloud,
            geography=geo,
            price_per_hour=price,
            spot=spot,
            interruption_band=band if spot else None,
            gpus=g,
            gpus_free=min(gf, g),
            gpu_model=model,
            cpu_millis_free=cpu_free,
            software_version=ver,
            labels={GPU_PRODUCT_LABEL: model, "hyperion.io/tier": tier},
            rtt_ms=dict(zip(GEOS, rtts, strict=True)),
            replicas_on_node=n,
        ),
        st.integers(0, 10**6),
        st.sampled_from(("aws", "gcp", "azure", "edge")),
        st.sampled_from(GEOS),
        st.floats(0.0, 40.0),
        st.booleans(),
        st.integers(0, 4),
        st.integers(0, 8),
        st.integers(0, 8),
        st.sampled_from(MODELS),
        st.integers(0, 8000),
        st.sampled_from(("0.1.4", "0.2.0", "1.0.0")),
        st.sampled_from(("prod", "dev")),
        st.lists(st.floats(1.0, 300.0), min_size=4, max_size=4),
        st.integers(0, 3),
    ),
    max_size=80,
    unique_by=lambda c: c.node_id,
)
requests_st = st.builds(
    lambda geos, clouds, sel, aff, ver, gpus, model, goal, spot, kind, users: req(
        geographies=geos,
        clouds=clouds,
        node_selector=sel,
        affinity=((MatchExpression(GPU_PRODUCT_LABEL, "In", aff),),) if aff else (),
        version_range=VersionRange(ver) if ver else None,
        gpus=gpus,
        gpu_model=model if gpus else None,
        goal=goal,
        prefer_spot=spot,
        kind=kind,
        users=tuple(zip(GEOS, users, strict=True)),
    ),
    st.lists(st.sampled_from(GEOS), max_size=2, unique=True).map(tuple),
    st.lists(st.sampled_from(("aws", "gcp", "azure", "edge")), max_size=2, unique=True).map(tuple),
    st.sampled_from(({}, {"hyperion.io/tier": "prod"})),
    st.lists(st.sampled_from(MODELS), max_size=2, unique=True).map(tuple),
    st.sampled_from((None, ">=0.2", ">=0.2,<1")),
    st.integers(0, 2),
    st.sampled_from((None, "T4", "A100")),
    st.sampled_from(("cost", "latency", "default")),
    st.booleans(),
    st.sampled_from(("service", "batch")),
    st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
)

ALL_POLICIES = [
    RulesPolicy(),
    RlPolicy.load(),
    StaticPolicy(),
    K8sDefaultPolicy(),
    GreedyCostPolicy(),
    SkyPilotLikePolicy(),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests_st, candidates_st, st.text(max_size=8))
def test_every_policy_respects_hard_constraints(
    request: Request, candidates: list[Candidate], tender: str
) -> None:
    ok = set(feasible(request, candidates))
    for policy in ALL_POLICIES:
        out = policy.choose(request, candidates, tender)
        if ok:
            assert isinstance(out, Decision), policy.name
            assert out.index in ok, policy.name
            assert out.node_id == candidates[out.index].node_id
        else:
            assert isinstance(out, NoFit), policy.name
            assert out.message.startswith(f"0/{len(candidates)} nodes are available")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    requests_st,
    candidates_st,
    st.text(max_size=8),
    st.sampled_from((None, "aws:us-east-1", "gcp:europe-west1")),
    st.dictionaries(st.sampled_from(GEOS), st.floats(1.0, 300.0), max_size=2),
)
def test_fast_paths_agree_with_the_plugins(
    request: Request,
    candidates: list[Candidate],
    tender: str,
    locality: str | None,
    placed_rtt: dict[str, float],
) -> None:
    """check's inline filters, the batch scorers, best's lazy tie-break and with_free give
    exactly what the plug-ins, the per-candidate scorers, the full sort and replace give."""
    request = dataclasses.replace(request, data_locality=locality, placed_rtt_ms=placed_rtt)
    for c in candidates:
        assert check(request, c) == check(request, c, list(FILTERS))
        used = (c.cpu_millis_free // 2, c.memory_bytes_free // 3, c.gpus_free // 2)
        load = min(1.0, used[0] / c.cpu_millis)
        assert c.with_free(*used, load) == dataclasses.replace(
            c, cpu_millis_free=used[0], memory_bytes_free=used[1], gpus_free=used[2], load=load
        )
    for name, fn in SCORERS.items():
        each = [fn(request, c) for c in candidates]
        batch = BATCH_SCORERS[name](request, candidates)
        assert batch == each if batch is not None else len(set(each)) <= 1
    values = scores(request, candidates)
    indices = list(range(len(candidates)))
    if candidates:
        assert best(candidates, indices, values, tender) == min(
            indices, key=lambda k: (-values[k], tie_break(tender, candidates[k].node_id))
        )
        ties = [1.0] * len(candidates)
        assert best(candidates, indices, ties, tender) == min(
            indices, key=lambda k: tie_break(tender, candidates[k].node_id)
        )


# --------------------------------------------------------------------------- rl


def test_rl_observation_layout_and_shortlist_bound() -> None:
    cands = [cand(f"n{i}", price_per_hour=0.1 + i / 10) for i in range(100)]
    r = req(users=(("US", 1.0),))
    slots = shortlist(r, cands, "t")
    assert len(slots) == MAX_CANDIDATES and slots == sorted(slots)
    obs, mask = observation(r, cands, slots)
    assert mask.sum() == MAX_CANDIDATES and np.isfinite(obs).all()
    assert np.abs(obs).max() <= 10.0
    out = RlPolicy.load().choose(r, cands, "t")
    assert isinstance(out, Decision) and out.index in slots


def test_rl_weights_load_errors(tmp_path: object) -> None:
    from pathlib import Path

    from hyperion.policy.rl import load_weights

    assert isinstance(tmp_path, Path)
    with pytest.raises(ValueError, match="cannot read"):
        load_weights(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, w1=np.zeros((2, 2)), features_version=np.int64(999))
    with pytest.raises(ValueError):
        load_weights(bad)


def test_tail_rtt_is_set_by_the_farthest_users_above_one_percent() -> None:
    from hyperion.policy.rl import tail_rtt_ms

    users = (("US", 0.97), ("EU", 0.02), ("SA", 0.01))
    rtt = {"US": 20.0, "EU": 120.0, "SA": 250.0}
    assert tail_rtt_ms(rtt, users) == 120.0  # SA's 1 % is the P99 itself, EU's 2 % is not
    assert tail_rtt_ms({"US": 20.0, "EU": 30.0, "SA": 250.0}, users) == 30.0
    assert tail_rtt_ms({"US": 20.0}, users) == 300.0  # nobody serves EU yet: far
    assert tail_rtt_ms(rtt, (("US", 1.0),)) == 20.0
    assert tail_rtt_ms(rtt, ()) == 0.0  # no users, no tail


def test_rl_features_value_covering_the_tail() -> None:
    from hyperion.policy.rl import (
        CANDIDATE_FEATURES,
        CONTEXT_FEATURES,
        candidate_features,
        context_features,
    )

    r = req(
        users=(("US", 0.9), ("APAC", 0.1)),
        placed_rtt_ms={"US": 20.0, "APAC": 200.0},
    )
    near_apac = cand("tokyo", rtt_ms={"US": 150.0, "APAC": 30.0})
    near_us = cand("ohio", rtt_ms={"US": 15.0, "APAC": 210.0})
    ctx = context_features(r, 2)
    assert ctx[CONTEXT_FEATURES.index("tail_rtt")] == pytest.approx(2.0)  # APAC at 200 ms
    feats = candidate_features(r, [near_apac, near_us])
    tail = feats[:, CANDIDATE_FEATURES.index("tail_rtt_after")]
    gain = feats[:, CANDIDATE_FEATURES.index("tail_rtt_gain")]
    assert tail.tolist() == pytest.approx([0.3, 2.0])  # Tokyo brings the APAC tail to 30 ms
    assert gain.tolist() == pytest.approx([1.7, 0.0])


def test_uncovered_demand_counts_users_without_enough_capacity_near_them() -> None:
    from hyperion.policy.rl import uncovered

    r = req(replicas=4, users=(("US", 0.75), ("EU", 0.25)))
    assert uncovered(r, {}) == pytest.approx(1.0)  # nothing placed: everyone uncovered
    assert uncovered(r, {"US": 3.0, "EU": 1.0}) == pytest.approx(0.0)  # 3 + 1 units needed
    assert uncovered(r, {"US": 1.5}) == pytest.approx(0.75 * 0.5 + 0.25)
    assert uncovered(r, {"US": 30.0}) == pytest.approx(0.25)  # surplus elsewhere does not count


def test_placed_capacity_is_validated() -> None:
    with pytest.raises(ValueError):
        req(placed_capacity={"US": -1.0})
    with pytest.raises(ValueError):
        req(placed_capacity={"US": float("nan")})


def test_user_locations_are_geographies_or_metros_and_rtts_fall_back_to_the_geography() -> None:
    from hyperion.policy.model import location_rtt

    r = req(users=(("US:virginia", 3.0), ("US:california", 1.0), ("EU", 1.0)))
    assert r.geography_weights() == pytest.approx({"US": 0.8, "EU": 0.2})
    for bad in ("XX", "XX:paris", "US:", "US:Bad_Place", "US:a:b"):
        with pytest.raises(ValueError, match="user location"):
            req(users=((bad, 1.0),))
    rtts = {"US": 50.0, "US:virginia": 5.0}
    assert location_rtt(rtts, "US:virginia", 300.0) == 5.0
    assert location_rtt(rtts, "US:california", 300.0) == 50.0  # a node measuring per geography
    assert location_rtt(rtts, "EU:london", 300.0) == 300.0
    near = cand("n", rtt_ms=rtts)
    assert near.user_rtt_ms(r) == pytest.approx(0.6 * 5.0 + 0.2 * 50.0 + 0.2 * 300.0)


def test_with_siblings_tells_where_the_running_replicas_serve_from() -> None:
    r = req(users=(("US", 0.5), ("EU", 0.5)))
    east = cand("east", rtt_ms={"US": 20.0, "EU": 90.0}, speed=2.0)
    west = cand("west", rtt_ms={"US": 60.0, "EU": 150.0}, speed=1.0)
    frankfurt = cand("fra", rtt_ms={"US": 110.0, "EU": 15.0}, speed=3.0)
    out = r.with_siblings([east, west, frankfurt])
    assert dict(out.placed_rtt_ms) == {"US": 20.0, "EU": 15.0}
    assert dict(out.placed_capacity) == pytest.approx({"US": 3.0, "EU": 3.0})  # within 80 ms
    assert out.users == r.users and out.workload_id == r.workload_id
    assert not r.with_siblings([]).placed_rtt_ms
