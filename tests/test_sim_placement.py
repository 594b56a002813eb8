"""``hyperion sim placement`` at small scale: every workload ends placed or with a
reason, no overcommit, no hard-constraint violation, deterministic for a seed."""

from __future__ import annotations

import pytest

from hyperion.sim.fleet import data
from hyperion.sim.placement_run import PlacementExperiment

try:
    data.prices()
except data.DataError:  # pragma: no cover - CI has ../shared/data beside the project
    pytest.skip("shared data not found", allow_module_level=True)

_WALL = ("placements_per_s_wall", "setup_s", "run_wall_s", "wall_s", "peak_rss_mib")


def _run(**kw: object) -> dict[str, object]:
    r = PlacementExperiment(**kw).run()  # type: ignore[arg-type]
    return {k: v for k, v in r.items() if k not in _WALL}


def test_places_everything_it_can_and_explains_the_rest() -> None:
    r = _run(nodes=300, workloads=600, seed=3)
    assert r["overcommits"] == 0 and r["constraint_violations"] == 0
    assert r["still_pending"] == 0
    assert r["placed"] + r["unplaced"] == 600  # type: ignore[operator]
    assert r["placed"] >= 550  # type: ignore[operator]
    assert r["unplaced_reasons"]  # impossible ones are worded
    assert r["double_placements"] == 0


def test_loss_and_undetected_dead_nodes_still_converge_safely() -> None:
    r = _run(nodes=300, workloads=400, seed=4, loss=0.05, dead_fraction=0.1)
    assert r["overcommits"] == 0 and r["constraint_violations"] == 0
    assert r["still_pending"] == 0
    proto = r["protocol"]
    assert isinstance(proto, dict) and proto.get("windows_timed_out", 0) > 0


def test_same_seed_same_run() -> None:
    assert _run(nodes=200, workloads=300, seed=5) == _run(nodes=200, workloads=300, seed=5)


@pytest.mark.parametrize(
    "kw",
    [{"nodes": 1}, {"workloads": 0}, {"loss": 1.0}, {"dead_fraction": 0.6}, {"policy": "x"}],
)
def test_bad_parameters_are_refused(kw: dict[str, object]) -> None:
    args: dict[str, object] = {"nodes": 10, "workloads": 10, "seed": 1}
    args.update(kw)
    with pytest.raises(ValueError):
        PlacementExperiment(**args)  # type: ignore[arg-type]
