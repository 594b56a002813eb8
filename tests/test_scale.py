"""Scale runs with the issue's targets. Slow: excluded by default, run with ``pytest -m slow``."""

from __future__ import annotations

import pytest

from hyperion.sim.membership_run import MembershipExperiment


@pytest.mark.slow
def test_swim_10k_nodes_meets_targets() -> None:
    r = MembershipExperiment(
        nodes=10_000, seed=1, duration_s=60, crash_fraction=0.01, loss=0.01
    ).run()
    assert r["false_dead"] == 0
    assert r["undetected"] == 0
    assert r["detect_s_p99"] is not None and r["detect_s_p99"] <= 10.0
    assert r["peak_rss_mib"] <= 500  # type: ignore[operator]
    # wall_s is reported, not asserted: it depends on the machine (README has the number).
