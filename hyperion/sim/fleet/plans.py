"""The search teacher's plans: searched over training seeds in parallel, saved,
loaded and replayed into behaviour-cloning data.

A plan (``expert.Plan``) is kept apart from any observation layout, so replaying it
(one simulator run per scenario) rebuilds the samples with the features of the code at
hand. The file format is JSON inside an ``.npz``, validated on load: training seeds
only, node ids, finite values, and every plan must replay. No torch: ``hyperion policy
plan`` runs the search without the ``rl`` extra; module ``train`` clones from the
result.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from hyperion.policy.rl import MlpWeights, RlPolicy
from hyperion.sim.fleet import seeds
from hyperion.sim.fleet.expert import Plan, SearchResult, labelled, search

# observations, masks, the teacher's slots, and each slot's value where the teacher
# measured it (NaN elsewhere; a row of NaN is a plain label)
Dataset = tuple[
    npt.NDArray[np.float32], npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.float32]
]


def check_training(scenario_seeds: range | Sequence[int]) -> None:
    if any(x not in seeds.TRAIN for x in scenario_seeds):
        raise ValueError("behaviour cloning draws training seeds only")


def search_plans(
    scenario_seeds: range, jobs: int = 1, worlds: int = 1, start: MlpWeights | None = None
) -> tuple[list[Plan], dict[str, Any]]:
    """The search teacher's plans (module ``expert``, scoring choices on ``worlds``
    draws of each scenario's chance, starting from ``skypilot-like`` or from the ``rl``
    policy with weights ``start``) on ``scenario_seeds`` (training seeds), in ``jobs``
    processes; and a summary of what the search found."""
    check_training(scenario_seeds)
    begin = None if start is None else functools.partial(RlPolicy, start)
    teacher = functools.partial(search, worlds=worlds, start=begin)
    results: list[SearchResult]
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.map(teacher, scenario_seeds, chunksize=4)
    else:
        results = [teacher(s) for s in scenario_seeds]
    summary = {
        "search_start_reward": round(float(np.mean([r.start_reward for r in results])), 4),
        "search_best_reward": round(float(np.mean([r.best_reward for r in results])), 4),
        "search_runs": int(sum(r.runs for r in results)),
        "teacher_worlds": worlds,
    }
    return [r.plan for r in results], summary


def plans_dataset(plans: Sequence[Plan]) -> Dataset:
    """Replay ``plans`` into cloning data with this code's observation (one run per
    scenario); ValueError if a plan does not replay."""
    check_training([p.seed for p in plans])
    samples = [x for p in plans for x in labelled(p)]
    if not samples:
        raise ValueError("the plans hold no decision")
    return (
        np.stack([x[0] for x in samples]),
        np.stack([x[1] for x in samples]),
        np.asarray([x[2] for x in samples], dtype=np.int64),
        np.stack([x[3] for x in samples]),
    )


def save_plans(path: Path, plans: Sequence[Plan], summary: dict[str, Any]) -> None:
    """Write the search teacher's plans (and what it found) for reuse: JSON in an
    ``.npz``, independent of the observation layout."""
    doc = [
        {
            "seed": p.seed,
            "override": {str(k): v for k, v in p.override.items()},
            "values": {str(k): v for k, v in p.values.items()},
        }
        for p in plans
    ]
    np.savez_compressed(
        path, plans=np.asarray(json.dumps(doc)), summary=np.asarray(json.dumps(summary))
    )


def load_plans(path: Path) -> tuple[list[Plan], dict[str, Any]]:
    """Read plans written by ``save_plans``; ValueError if the file is not such a file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            doc = json.loads(str(z["plans"]))
            summary = json.loads(str(z["summary"]))
        plans = [
            Plan(
                int(d["seed"]),
                {_index(k): _node(v) for k, v in d["override"].items()},
                {
                    _index(k): {_node(n): _value(x) for n, x in opts.items()}
                    for k, opts in d["values"].items()
                },
            )
            for d in doc
        ]
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"cannot read cloning data {path}: {e}") from e
    if not isinstance(summary, dict) or not plans:
        raise ValueError(f"{path}: no plans, or the summary is not an object")
    check_training([p.seed for p in plans])
    return plans, summary


def _index(text: str) -> int:
    k = int(text)
    if k < 0:
        raise ValueError(f"decision index {k} is negative")
    return k


def _node(v: object) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"node id {v!r} is not a string")
    return v


def _value(v: object) -> float:
    if not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"value {v!r} is not a finite number")
    return float(v)


def load_dataset(paths: Sequence[Path]) -> tuple[Dataset, dict[str, Any]]:
    """The plans of every file in ``paths`` replayed into one cloning dataset (a DAgger
    round's plans join the earlier rounds'), and what each search found; ValueError if
    a file cannot be read or a plan does not replay."""
    if not paths:
        raise ValueError("no plans file given")
    parts: list[Dataset] = []
    found: list[dict[str, Any]] = []
    for path in paths:
        plans, summary = load_plans(path)
        try:
            parts.append(plans_dataset(plans))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
        found.append({"file": str(path), **summary})
    data = tuple(np.concatenate([part[i] for part in parts]) for i in range(4))
    return cast(Dataset, data), {"searches": found}
