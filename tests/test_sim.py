"""The deterministic simulator: reproducibility, faults, and SWIM at small scale."""

from __future__ import annotations

import gc
import random

import pytest

from hyperion.mesh.membership import PROFILES, Membership
from hyperion.sim import rtt
from hyperion.sim.engine import Simulator
from hyperion.sim.membership_run import MembershipExperiment, cyclic_gc_paused, sim_node_id

VOLATILE = ("wall_s", "peak_rss_mib")


def run(**kw: object) -> dict[str, object]:
    res = MembershipExperiment(trace=True, **kw).run()  # type: ignore[arg-type]
    return {k: v for k, v in res.items() if k not in VOLATILE}


def test_same_seed_same_run_bit_for_bit() -> None:
    a = run(nodes=120, seed=7, duration_s=30, crash_fraction=0.05, loss=0.02)
    b = run(nodes=120, seed=7, duration_s=30, crash_fraction=0.05, loss=0.02)
    assert a == b
    c = run(nodes=120, seed=8, duration_s=30, crash_fraction=0.05, loss=0.02)
    assert c["trace_digest"] != a["trace_digest"]


def test_crashes_are_detected_by_everyone_without_false_deaths() -> None:
    r = run(nodes=300, seed=3, duration_s=45, crash_fraction=0.03, loss=0.01)
    assert r["crashed"] == 9
    assert r["undetected"] == 0
    assert r["false_dead"] == 0
    assert r["detect_s_p99"] is not None and r["detect_s_p99"] < 10
    assert r["converged_s"] is not None


def test_join_phase_converges() -> None:
    r = run(nodes=60, seed=4, duration_s=60, start="join", loss=0.01)
    assert r["converged_s"] is not None and r["converged_s"] < 40
    assert r["false_dead"] == 0


def test_reserved_sequence_numbers_order_a_chained_stream_as_if_scheduled_at_once() -> None:
    times = [0.5, 1.0, 1.0, 2.0]

    def order(chained: bool) -> list[str]:
        sim = Simulator(0)
        seen: list[str] = []
        if chained:
            first = sim.reserve(len(times))

            def arrive(k: int) -> None:
                seen.append(f"a{k}")
                if k + 1 < len(times):
                    sim.at(times[k + 1], lambda: arrive(k + 1), seq=first + k + 1)

            sim.at(times[0], lambda: arrive(0), seq=first)
        else:
            for k, t in enumerate(times):
                sim.at(t, lambda k=k: seen.append(f"a{k}"))
        sim.at(1.0, lambda: seen.append("later"))  # same time, scheduled after the stream
        sim.run(3.0)
        return seen

    assert order(True) == order(False) == ["a0", "a1", "a2", "later", "a3"]


def test_rtt_matrix_uses_measured_regions() -> None:
    m = rtt.load()
    assert len(m.regions) == 69
    assert m.rtt_ms("aws:us-east-1", "aws:us-east-1") == rtt.INTRA_REGION_RTT_MS
    # A measured pair, and a symmetric lookup.
    assert 60 < m.rtt_ms("aws:us-east-1", "aws:eu-west-1") < 100
    assert m.rtt_ms("aws:eu-west-1", "aws:us-east-1") == m.rtt_ms("aws:us-east-1", "aws:eu-west-1")
    # A GCP-GCP pair is not measured: filled with a triangle lower bound, never 0.
    assert not m.measured[m.index("gcp:us-east1")][m.index("gcp:europe-west1")]
    assert m.rtt_ms("gcp:us-east1", "gcp:europe-west1") > 50


def _mesh(n: int, seed: int, loss: float = 0.0) -> tuple[Simulator, list[Membership]]:
    sim = Simulator(seed, rtt.load(), loss=loss)
    cores = []
    for i in range(n):
        c = Membership(
            sim_node_id(seed, i),
            f"sim://{i}",
            name=f"n{i}",
            rng=random.Random(i),
            now=0.0,
            config=PROFILES["lan"],
        )
        cores.append(c)
        sim.add_node(c.addr, c, region=i % 12)
    for i in range(1, n):
        sim.inject(i, cores[i].join(["sim://0"], 0.0))
    return sim, cores


def test_partition_then_heal_merges_views() -> None:
    sim, cores = _mesh(30, seed=11, loss=0.01)
    sim.run(15)
    assert {c.table.alive for c in cores} == {30}
    left, right = list(range(15)), list(range(15, 30))
    sim.cut(left, right)
    sim.run(45)
    assert {cores[i].table.alive for i in left} == {15}
    assert {cores[i].table.alive for i in right} == {15}
    sim.heal()
    sim.run(90)
    assert {c.table.alive for c in cores} == {30}


def test_crash_and_restart_rejoins_with_higher_incarnation() -> None:
    sim, cores = _mesh(20, seed=12)
    sim.run(10)
    victim = 5
    vid = cores[victim].node_id
    sim.crash(victim)
    sim.run(25)
    assert all(c.state_of(vid) == "dead" for i, c in enumerate(cores) if i != victim)
    fresh = Membership(
        vid, cores[victim].addr, name="n5", rng=random.Random(99), now=25.0, config=PROFILES["lan"]
    )
    sim.restart(victim, fresh, fresh.join(["sim://0"], 25.0))
    sim.run(40)
    assert fresh.incarnation >= 1
    assert all(c.state_of(vid) == "alive" for i, c in enumerate(cores) if i != victim)


def test_isolated_node_is_declared_dead_and_comes_back() -> None:
    sim, cores = _mesh(12, seed=13)
    sim.run(10)
    sim.isolate(3)
    sim.run(30)
    assert all(c.state_of(cores[3].node_id) == "dead" for i, c in enumerate(cores) if i != 3)
    sim.heal()
    sim.run(60)
    assert {c.table.alive for c in cores} == {12}


def test_bad_parameters_are_rejected() -> None:
    for kw in (
        {"nodes": 1},
        {"nodes": 10, "loss": 1.0},
        {"nodes": 10, "crash_fraction": -0.1},
        {"nodes": 10, "profile": "mars"},
        {"nodes": 10, "start": "later"},
    ):
        with pytest.raises(ValueError):
            MembershipExperiment(seed=1, **kw)  # type: ignore[arg-type]


def test_cyclic_gc_paused_restores_the_collector() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # a caller that paused it keeps it paused
    finally:
        gc.enable()
