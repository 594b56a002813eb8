"""``hyperion sim catalog``: a healed partition converges to the LWW state, reproducibly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hyperion.sim.catalog_run import CatalogExperiment, sim_catalog


def test_200_nodes_converge_after_heal_to_the_expected_state() -> None:
    r = sim_catalog(200, 7, writes=300, loss=0.01, partition_at=4.0, heal_at=10.0, keys=40)
    assert r["identical"] is True and r["correct"] is True
    assert isinstance(r["converged_s_after_heal"], float) and r["converged_s_after_heal"] < 5.0
    assert isinstance(r["conflicts"], int) and r["conflicts"] > 5  # both sides wrote the keys
    assert r["deletes"] and r["lost"] and r["cut"]
    assert r["rejected"] == 0


def test_same_seed_same_run() -> None:
    kw = dict(nodes=60, seed=3, writes=80, loss=0.02, partition_at=2.0, heal_at=5.0, keys=15)
    a = CatalogExperiment(trace=True, **kw).run()  # type: ignore[arg-type]
    b = CatalogExperiment(trace=True, **kw).run()  # type: ignore[arg-type]
    for k in ("wall_s", "peak_rss_mib"):
        a.pop(k), b.pop(k)
    assert a == b and a["identical"] is True
    c = CatalogExperiment(trace=True, **{**kw, "seed": 4}).run()  # type: ignore[arg-type]
    assert c["trace"] != a["trace"]


@pytest.mark.parametrize(
    "kw",
    [
        {"nodes": 1},
        {"writes": 0},
        {"loss": 1.0},
        {"partition_at": 5.0, "heal_at": 4.0},
        {"keys": 0},
    ],
)
def test_bad_settings_are_refused(kw: dict[str, object]) -> None:
    args: dict[str, object] = {"nodes": 10, "seed": 1, **kw}
    with pytest.raises(ValueError):
        CatalogExperiment(**args)  # type: ignore[arg-type]


def test_cli_prints_one_json_object_and_refuses_bad_settings() -> None:
    args = [sys.executable, "-m", "hyperion", "sim", "catalog", "--nodes", "40", "--seed", "2"]
    args += ["--writes", "40", "--loss", "0.01", "--partition-at", "1", "--heal-at", "3"]
    r = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["nodes"] == 40 and out["identical"] is True and "converged_s_after_heal" in out
    bad = subprocess.run([*args, "--heal-at", "0.5"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~4-6 min on a shared 2-core host
def test_10000_nodes_identical_within_5_s_of_heal() -> None:
    r = sim_catalog(10_000, 1, writes=1000, loss=0.01, heal_at=30.0)
    assert r["identical"] is True and r["correct"] is True
    assert isinstance(r["converged_s_after_heal"], float) and r["converged_s_after_heal"] <= 5.0
    assert isinstance(r["peak_rss_mib"], float) and r["peak_rss_mib"] < 2048
